//! The engine: the one place front doors send commands. It owns the store and the clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kvs_store::{Command, Keyspace, Millis, Reply, Store, Transaction};

/// Shared by every connection. Executing a command takes only the affected shard's lock, so it is
/// cheap enough to run directly on an async worker.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    started: Instant,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self {
            store: Store::new(),
            started: Instant::now(),
        }
    }

    /// How long this engine has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Applies `command` at the current wall-clock time.
    pub fn execute(&self, command: Command) -> Reply {
        self.store.execute(command, now_millis())
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
