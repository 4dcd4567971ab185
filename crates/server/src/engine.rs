//! The engine: the one place front doors send commands. It owns the store, the clock and, when
//! kvs is durable, the log: a write is answered only once the log acknowledges the record of its
//! effects under the fsync policy.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvs_store::{Command, CommandError, Millis, Reply, Store, Ticket, Watched};
use tokio::sync::oneshot;

use crate::commit::{Committed, Uncommitted};
use crate::config::Persistence;
use crate::feed::{Feed, MemoryCommit, Start, Subscription};
use crate::memory::Memory;
use crate::persistence::{Durability, PersistenceError, SnapshotDone};
use crate::pubsub::PubSub;
use crate::stats::Stats;

/// Shared by every connection. Executing a command takes only the affected shard's lock, so it is
/// cheap enough to run directly on an async worker; waiting for the log is asynchronous.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    started: Instant,
    started_unix: u64,
    durability: Option<Durability>,
    /// Every committed change, for listeners (see [`crate::feed`]).
    feed: Arc<Feed>,
    /// The pipeline of a store kept in memory, which only feeds listeners.
    in_memory: Option<Arc<MemoryCommit>>,
    /// The memory limit and what counts against it.
    memory: Memory,
    /// Channels and their subscribers, and keyspace notifications.
    pubsub: Arc<PubSub>,
    /// Serializes changes of `notify-keyspace-events`.
    notify_lock: parking_lot::Mutex<()>,
    /// What the server counts about itself (see [`crate::stats`]).
    stats: Arc<Stats>,
    /// The Lua script running now, if any: it holds every shard's lock.
    script: Arc<crate::script::Running>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
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
        let mut store = Store::new();
        let feed = Arc::new(Feed::default());
        let memory = Arc::new(MemoryCommit::new(feed.clone()));
        store.set_commit_on_demand(memory.clone());
        Self {
            store,
            started: Instant::now(),
            started_unix: now_millis() / 1000,
            durability: None,
            feed,
            in_memory: Some(memory),
            memory: Memory::default(),
            pubsub: Arc::default(),
            notify_lock: parking_lot::Mutex::new(()),
            stats: Arc::default(),
            script: Arc::default(),
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
        let feed = Arc::new(Feed::default());
        let durability = Durability::open(persistence, &mut store, feed.clone())?;
        Ok(Self::durable(store, durability, feed, persistence))
    }

    /// A durable engine whose files live in `storage` (see [`Durability::open_in`]).
    pub fn open_in(
        storage: Arc<dyn kvs_wal::Storage>,
        persistence: &Persistence,
    ) -> Result<Self, PersistenceError> {
        let mut store = Store::new();
        let feed = Arc::new(Feed::default());
        let durability = Durability::open_in(storage, persistence, &mut store, feed.clone())?;
        Ok(Self::durable(store, durability, feed, persistence))
    }

    fn durable(
        store: Store,
        durability: Durability,
        feed: Arc<Feed>,
        persistence: &Persistence,
    ) -> Self {
        tracing::info!(
            "data directory {}, fsync {}",
            persistence.data_dir.display(),
            persistence.fsync
        );
        let stats = Arc::new(Stats::default());
        durability.log().on_fsync({
            let stats = stats.clone();
            move |took| stats.fsync.record(crate::stats::nanos(took))
        });
        Self {
            store,
            started: Instant::now(),
            started_unix: now_millis() / 1000,
            durability: Some(durability),
            feed,
            in_memory: None,
            memory: Memory::default(),
            pubsub: Arc::default(),
            notify_lock: parking_lot::Mutex::new(()),
            stats,
            script: Arc::default(),
        }
    }

    /// Pub/sub channels and keyspace notifications.
    pub fn pubsub(&self) -> &Arc<PubSub> {
        &self.pubsub
    }

    /// Sets `notify-keyspace-events`, from the next position of the feed on: every write that
    /// begins after this returns is published as these flags say, and every earlier one as the
    /// flags before (the notifier reads the feed in order, and may be behind). Turning them on
    /// opens the feed and makes writes note their events.
    pub fn set_notify_flags(&self, flags: u32) {
        let _one_at_a_time = self.notify_lock.lock();
        let on = crate::pubsub::delivers(flags);
        if !on && !self.feed.is_open() {
            // Never on, nothing to stop: the feed stays closed, and writes cost nothing extra.
            self.pubsub.set_notify_flags(flags, None);
            return;
        }
        if on {
            self.store.set_notifying(true);
        }
        let from = self.subscribe(Start::Next).position();
        if !on {
            self.store.set_notifying(false);
        }
        self.pubsub.set_notify_flags(flags, Some(from));
    }

    /// The clients blocked on keys (BLPOP and kin).
    pub fn blocking(&self) -> &Arc<crate::blocking::Blocking> {
        &self.feed.blocking
    }

    /// Queues a client on `keys` until a write to one of them reaches it. Writes note their
    /// effects from now on even in a server kept in memory, so every write is seen.
    pub fn block_on(&self, keys: &[bytes::Bytes]) -> crate::blocking::Waiter {
        self.store.start_noting();
        self.feed.blocking.register(keys)
    }

    /// The change feed, e.g. to set how much history it keeps.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// A new listener on the change feed, starting at `start`. The first one opens the feed:
    /// in a server kept in memory, writes note their effects only from then on.
    pub fn subscribe(&self, start: Start) -> Subscription {
        self.feed.open_once(|| {
            self.store.start_noting();
            self.sequenced(|next| self.feed.begin(next));
        });
        let next = match start {
            Start::Next => self.sequenced(|next| next),
            Start::At(position) => position,
        };
        Subscription::new(self.feed.clone(), next)
    }

    /// The position of the latest change submitted, once the feed is open: every change a read
    /// made after this call can see has this position or a smaller one.
    pub fn feed_position(&self) -> Option<u64> {
        self.feed
            .is_open()
            .then(|| self.sequenced(|next| next.saturating_sub(1)))
    }

    /// The changes at positions from `from` up to (not including) `until`, read back from the
    /// log, about `max_bytes` of them at most: for a listener resuming from before what the
    /// feed holds in memory (after a restart, say). Only changes already committed are read.
    pub fn log_items(
        &self,
        from: u64,
        until: u64,
        max_bytes: usize,
    ) -> Result<Vec<crate::feed::FeedItem>, crate::feed::FeedError> {
        let compacted = |oldest| crate::feed::FeedError::Compacted {
            wanted: from,
            oldest,
        };
        let Some(d) = &self.durability else {
            return Err(compacted(until));
        };
        let log = d.log();
        let until = until.min(log.progress().acknowledged);
        if from >= until {
            return Ok(Vec::new());
        }
        let records = kvs_wal::read_records(&*log.storage(), from, until, max_bytes).map_err(
            |e| match e {
                kvs_wal::TailError::Removed { oldest, .. } => compacted(oldest),
                kvs_wal::TailError::Io(why) => {
                    tracing::warn!("cannot read the log back for a listener: {why}");
                    compacted(until)
                }
            },
        )?;
        records
            .into_iter()
            .map(
                |(position, payload)| match kvs_store::change::decode(&payload) {
                    Ok(effects) => Ok(crate::feed::FeedItem { position, effects }),
                    Err(e) => {
                        tracing::warn!("a log record read back for a listener is malformed: {e}");
                        Err(compacted(position + 1))
                    }
                },
            )
            .collect()
    }

    /// Runs `f` with the position the next submission of effects gets, with none in between.
    fn sequenced<R>(&self, f: impl FnOnce(u64) -> R) -> R {
        match (&self.durability, &self.in_memory) {
            (Some(d), _) => d.log().sequenced(f),
            (None, Some(memory)) => memory.sequenced(f),
            (None, None) => f(0),
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

    /// The memory limit, its policy and the memory figures.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// Makes room for a command that may need memory, by evicting if the policy allows; Redis's
    /// OOM error if memory is over the limit and nothing can be evicted. Free under no limit.
    pub fn admit(&self) -> Result<(), CommandError> {
        self.memory.admit(self, now_millis())
    }

    /// Applies `command` now. Its reply may be sent only once [`Engine::commit`] has acknowledged
    /// the writes it made (see [`crate::commit`]). Writes are refused while the log is failed,
    /// and those that need memory while memory is over the limit and nothing can be evicted.
    pub fn apply(&self, command: Command) -> Uncommitted<Reply> {
        if self.durability.is_some()
            && command.writes()
            && let Some(refusal) = self.write_refusal()
        {
            return Uncommitted::nothing_written(Reply::Error(refusal));
        }
        if command.denyoom()
            && let Err(refusal) = self.admit()
        {
            return Uncommitted::nothing_written(Reply::Error(refusal));
        }
        let lookup = matches!(
            command,
            Command::Get(_) | Command::GetDel(_) | Command::GetEx(_) | Command::MGet(_)
        );
        let applied = self.store.apply(command, now_millis());
        if lookup {
            self.count_lookups(&applied.value);
        }
        self.free_flushed();
        Uncommitted::new(applied)
    }

    /// Counts a read's keys that were found (hits) and not (misses), as `INFO`'s
    /// `keyspace_hits` and `keyspace_misses` do.
    fn count_lookups(&self, reply: &Reply) {
        let (hits, misses) = match reply {
            Reply::NotFound | Reply::Nil => (0, 1),
            Reply::Array(items) => {
                let misses = items
                    .iter()
                    .filter(|r| matches!(r, Reply::Nil | Reply::NotFound))
                    .count() as u64;
                (items.len() as u64 - misses, misses)
            }
            Reply::Error(_) => (0, 0),
            _ => (1, 0),
        };
        self.stats.lookups(hits, misses);
    }

    /// What the server counts about itself.
    pub(crate) fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Frees what a FLUSHALL removed on a thread of its own, so neither the shards nor this
    /// request wait for millions of entries to be freed (Redis's lazyfree).
    fn free_flushed(&self) {
        let Some(garbage) = self.store.take_garbage() else {
            return;
        };
        let freeing = std::thread::Builder::new()
            .name("kvs-free".into())
            .spawn(move || drop(garbage));
        if let Err(e) = freeing {
            // Without a thread, the memory is freed here, late but surely.
            tracing::warn!("cannot start a thread to free flushed keys: {e}");
        }
    }

    /// Waits until the commit pipeline acknowledges `ticket` (and everything before it) under the
    /// fsync policy, and returns the proof that releases the answers it covers; an error if the
    /// log refused or failed.
    pub async fn commit(&self, ticket: Option<Ticket>) -> Result<Committed, CommandError> {
        let refused = || {
            self.write_refusal().unwrap_or(CommandError::LogUnavailable(
                "the log refused the write".into(),
            ))
        };
        let proof = match (ticket, &self.durability) {
            (None, _) => return Ok(Committed::nothing()),
            (Some(Ticket::Refused), _) => return Err(refused()),
            // Kept in memory: a write is committed once it has its place in the feed.
            (Some(ticket @ Ticket::Queued(_)), None) => Committed::up_to(ticket),
            (Some(Ticket::Queued(lsn)), Some(d)) => d
                .log()
                .wait(lsn)
                .await
                .map(|()| Committed::up_to(Ticket::Queued(lsn)))
                .map_err(|e| CommandError::LogUnavailable(e.0.to_string()))?,
        };
        // With keyspace notifications on, a write is answered after its events are published.
        if let Some(Ticket::Queued(position)) = ticket
            && self.store.notifying()
        {
            self.pubsub.events_published(position).await;
        }
        Ok(proof)
    }

    /// Waits for `answer`'s writes, then gives the answer; `refused` makes the error answer when
    /// the log could not make them durable.
    pub async fn settle<T>(
        &self,
        answer: Uncommitted<T>,
        refused: impl FnOnce(CommandError) -> T,
    ) -> T {
        let answer = match answer.ready() {
            Ok(value) => return value,
            Err(answer) => answer,
        };
        match self.commit(answer.ticket()).await {
            Ok(proof) => answer.release(&proof).unwrap_or_else(|_| {
                refused(CommandError::LogUnavailable(
                    "the log did not acknowledge the write".into(),
                ))
            }),
            Err(e) => refused(e),
        }
    }

    /// Applies `command` and answers once its effects are as durable as the fsync policy says.
    pub async fn execute(&self, command: Command) -> Reply {
        self.script_done().await;
        let answer = self.apply(command);
        self.settle(answer, Reply::Error).await
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
        self.feed.close();
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
        self.store.version_of(key, now_millis())
    }

    /// Runs `commands` as one block that no other client can interleave with (`MULTI`/`EXEC`).
    /// If any watched key's version differs from the one remembered, nothing runs and the answer
    /// is `None`. Writes are refused while the log is failed.
    pub fn apply_block(
        &self,
        commands: Vec<Command>,
        watched: &[Watched],
    ) -> Option<Uncommitted<Vec<Reply>>> {
        if self.durability.is_some()
            && commands.iter().any(Command::writes)
            && let Some(refusal) = self.write_refusal()
        {
            let replies = commands
                .iter()
                .map(|_| Reply::Error(refusal.clone()))
                .collect();
            return Some(Uncommitted::nothing_written(replies));
        }
        let applied = self
            .store
            .apply_block(commands, watched, now_millis())
            .map(Uncommitted::new);
        self.free_flushed();
        applied
    }

    /// The script running now, if any (see [`crate::script`]).
    pub(crate) fn script(&self) -> &Arc<crate::script::Running> {
        &self.script
    }

    /// Waits, without holding a thread, until no script runs: a script holds every shard, so
    /// anything that takes a shard's lock would otherwise stop its thread until the script ends.
    /// A quick script on a connection thread is not waited for: it is over in microseconds.
    pub(crate) async fn script_done(&self) {
        while self.script.holds_shards_for_long() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Runs `f` with the write lock of every shard held, so nothing from any door interleaves
    /// with it (a script); what it wrote is submitted as one record when it returns.
    pub(crate) fn apply_exclusive<R>(
        &self,
        f: impl FnOnce(&kvs_store::Transaction<'_>, Millis) -> R,
    ) -> Uncommitted<R> {
        let now = now_millis();
        let txn = kvs_store::Transaction::lock(&self.store, None);
        let value = f(&txn, now);
        let ticket = txn.commit();
        self.free_flushed();
        Uncommitted::new(kvs_store::Applied { value, ticket })
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
