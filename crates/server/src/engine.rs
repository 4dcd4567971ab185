//! The engine: the one place front doors send commands. It owns the store, the clock and, when
//! kvs is durable, the log: a write is answered only once the log acknowledges the record of its
//! effects under the fsync policy.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kvs_store::{Command, CommandError, Keyspace, Millis, Reply, Store, Transaction};
use tokio::sync::oneshot;

use crate::config::Persistence;
use crate::persistence::journal::{self, Appended};
use crate::persistence::{Durability, PersistenceError, SnapshotDone};

/// Shared by every connection. Executing a command takes only the affected shard's lock, so it is
/// cheap enough to run directly on an async worker; waiting for the log is asynchronous.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    started: Instant,
    started_unix: u64,
    durability: Option<Durability>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// What must happen before a command's reply may be sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Pending(Option<Appended>);

impl Pending {
    /// Nothing to wait for.
    pub const NONE: Pending = Pending(None);

    /// The later of two waits.
    pub fn and(self, other: Pending) -> Pending {
        match (self.0, other.0) {
            (Some(Appended::Refused), _) | (_, Some(Appended::Refused)) => {
                Pending(Some(Appended::Refused))
            }
            (Some(Appended::Lsn(a)), Some(Appended::Lsn(b))) => {
                Pending(Some(Appended::Lsn(a.max(b))))
            }
            (a, b) => Pending(a.or(b)),
        }
    }

    /// Whether the command recorded a change.
    pub fn wrote(&self) -> bool {
        self.0.is_some()
    }
}

/// Why a snapshot could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotRefused {
    #[error("kvs runs in memory (--in-memory): there is no data directory to snapshot into")]
    InMemory,
    #[error("Background save already in progress")]
    InProgress,
}

impl Engine {
    /// An engine that keeps nothing on disk.
    pub fn new() -> Self {
        Self {
            store: Store::new(),
            started: Instant::now(),
            started_unix: now_millis() / 1000,
            durability: None,
        }
    }

    /// An engine as `persistence` says: in memory, or recovered from its data directory
    /// (blocking while it recovers).
    pub fn open(persistence: &Persistence) -> Result<Self, PersistenceError> {
        if persistence.in_memory {
            tracing::info!("running in memory: nothing is kept on disk");
            return Ok(Self::new());
        }
        let mut store = Store::new();
        let durability = Durability::open(persistence, &mut store)?;
        Ok(Self::durable(store, durability, persistence))
    }

    /// A durable engine whose files live in `storage` (see [`Durability::open_in`]).
    pub fn open_in(
        storage: Arc<dyn kvs_wal::Storage>,
        persistence: &Persistence,
    ) -> Result<Self, PersistenceError> {
        let mut store = Store::new();
        let durability = Durability::open_in(storage, persistence, &mut store)?;
        Ok(Self::durable(store, durability, persistence))
    }

    fn durable(store: Store, durability: Durability, persistence: &Persistence) -> Self {
        tracing::info!(
            "data directory {}, fsync {}",
            persistence.data_dir.display(),
            persistence.fsync
        );
        Self {
            store,
            started: Instant::now(),
            started_unix: now_millis() / 1000,
            durability: Some(durability),
        }
    }

    /// The durable half, when kvs keeps data on disk.
    pub fn durability(&self) -> Option<&Durability> {
        self.durability.as_ref()
    }

    /// Why writes are refused, if they are: the log has failed.
    pub fn write_refusal(&self) -> Option<CommandError> {
        let failed = self.durability.as_ref()?.progress().failed?;
        Some(CommandError::LogUnavailable(failed.0.to_string()))
    }

    /// Applies `command` now and says what its reply must wait for ([`Engine::settle`]). Writes
    /// are refused while the log is failed.
    pub fn apply(&self, command: Command) -> (Reply, Pending) {
        if self.durability.is_none() {
            return (self.store.execute(command, now_millis()), Pending::NONE);
        }
        if command.writes()
            && let Some(refusal) = self.write_refusal()
        {
            return (Reply::Error(refusal), Pending::NONE);
        }
        journal::reset();
        let reply = self.store.execute(command, now_millis());
        (reply, Pending(journal::take()))
    }

    /// Waits until the log acknowledges what `pending` recorded; an error if it cannot.
    pub async fn settle(&self, pending: Pending) -> Result<(), CommandError> {
        let refused = || {
            self.write_refusal().unwrap_or(CommandError::LogUnavailable(
                "the log refused the write".into(),
            ))
        };
        match (pending.0, &self.durability) {
            (None, _) | (_, None) => Ok(()),
            (Some(Appended::Refused), _) => Err(refused()),
            (Some(Appended::Lsn(lsn)), Some(d)) => d
                .log()
                .wait(lsn)
                .await
                .map_err(|e| CommandError::LogUnavailable(e.0.to_string())),
        }
    }

    /// Applies `command` and answers once its effects are as durable as the fsync policy says.
    pub async fn execute(&self, command: Command) -> Reply {
        let (reply, pending) = self.apply(command);
        match self.settle(pending).await {
            Ok(()) => reply,
            Err(e) => Reply::Error(e),
        }
    }

    /// Starts a snapshot on a thread of its own; the receiver resolves when it is written.
    pub fn start_snapshot(
        self: &Arc<Self>,
    ) -> Result<oneshot::Receiver<Result<SnapshotDone, String>>, SnapshotRefused> {
        let durability = self.durability.as_ref().ok_or(SnapshotRefused::InMemory)?;
        if !durability.try_begin() {
            return Err(SnapshotRefused::InProgress);
        }
        let (tx, rx) = oneshot::channel();
        let engine = self.clone();
        let spawned = std::thread::Builder::new()
            .name("kvs-snapshot".into())
            .spawn(move || {
                if let Some(d) = engine.durability.as_ref() {
                    let _ = tx.send(d.snapshot(&engine.store));
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a snapshot thread: {e}");
            let _ = durability.snapshot(&self.store);
        }
        Ok(rx)
    }

    /// Flushes and closes the log (at shutdown).
    pub fn close(&self) {
        if let Some(d) = &self.durability {
            d.close();
        }
    }

    /// Unix seconds when this engine started.
    pub fn started_unix(&self) -> u64 {
        self.started_unix
    }

    /// How long this engine has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The version of the live entry under `key`, if any: what `WATCH` remembers.
    pub fn version_of(&self, key: &[u8]) -> Option<u64> {
        let now = now_millis();
        self.store
            .read(key, |shard| shard.live(key, now).map(|e| e.version))
    }

    /// Runs `commands` as one block that no other client can interleave with (`MULTI`/`EXEC`):
    /// the write locks of every shard they touch, and of every watched key, are taken first, in
    /// index order. If any watched key's version differs from the one remembered, nothing runs
    /// and the answer is `None`.
    pub fn execute_block(
        &self,
        commands: Vec<Command>,
        watched: &[(Bytes, Option<u64>)],
    ) -> Option<(Vec<Reply>, Pending)> {
        if self.durability.is_some()
            && commands.iter().any(Command::writes)
            && let Some(refusal) = self.write_refusal()
        {
            let replies = commands
                .iter()
                .map(|_| Reply::Error(refusal.clone()))
                .collect();
            return Some((replies, Pending::NONE));
        }
        journal::reset();
        let replies = self.run_block(commands, watched)?;
        Some((replies, Pending(journal::take())))
    }

    fn run_block(
        &self,
        commands: Vec<Command>,
        watched: &[(Bytes, Option<u64>)],
    ) -> Option<Vec<Reply>> {
        let mut keys: Option<Vec<&[u8]>> = Some(watched.iter().map(|(k, _)| &k[..]).collect());
        for command in &commands {
            match (command.keys(), keys.as_mut()) {
                (Some(more), Some(all)) => all.extend(more),
                _ => keys = None,
            }
        }
        let txn = Transaction::lock(&self.store, keys.as_deref());
        let now = now_millis();
        let unchanged = watched.iter().all(|(key, version)| {
            txn.read(key, |shard| shard.live(key, now).map(|e| e.version)) == *version
        });
        if !unchanged {
            return None;
        }
        Some(commands.into_iter().map(|c| c.apply(&txn, now)).collect())
    }

    /// The keyspace, for maintenance tasks such as the expiry sweep.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
