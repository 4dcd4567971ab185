//! The sharded keyspace and its store-wide revision counter.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use hashbrown::DefaultHashBuilder;
use parking_lot::RwLock;

use crate::effects::{Change, Commit, Effects, Removal, Ticket};
use crate::entry::Millis;
use crate::evict::Pool;
use crate::shard::{Garbage, Shard};
use crate::usage::Tracking;

/// Shards in a store made by [`Store::new`]. Enough that two writers rarely meet on one lock even
/// with dozens of cores, few enough that a listing's merge over all shards stays cheap.
pub const DEFAULT_SHARDS: usize = 64;

/// One shard's lock on a cache line of its own, so writers on neighbouring shards do not slow
/// each other down by invalidating a shared line (false sharing).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(RwLock<Shard>);

impl std::ops::Deref for Padded {
    type Target = RwLock<Shard>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The keyspace. Share it between threads behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Store {
    /// A power-of-two number of shards, so a hash picks one with a mask.
    shards: Box<[Padded]>,
    hasher: DefaultHashBuilder,
    /// The last version handed out. Versions are assigned under the written key's shard lock, so
    /// for each key they increase in the order its writes were applied.
    revision: AtomicU64,
    /// Where the next bounded sweep starts, so successive sweeps visit every shard in turn.
    sweep_cursor: AtomicUsize,
    /// Where the effects of writes go: the write-ahead log when the store is durable.
    commit: Option<Arc<dyn Commit>>,
    /// Whether writes note their effects and submit them to `commit` now. Read by each write
    /// scope once its locks are taken (see [`Store::start_noting`]).
    noting: AtomicBool,
    /// Whether writes also note the keyspace events they raise (see [`Store::set_notifying`]).
    notifying: AtomicBool,
    /// The eviction policy and the memory entries take, shared with every shard.
    pub(crate) tracking: Arc<Tracking>,
    /// The best eviction candidates seen so far (see [`crate::evict`]).
    pub(crate) pool: parking_lot::Mutex<Pool>,
    /// Keys evicted since the store was made.
    pub(crate) evicted: AtomicU64,
    /// Keys the expiry sweep removed since the store was made.
    expired: AtomicU64,
    /// Where allkeys-s3fifo's next eviction looks (it goes round the shards).
    pub(crate) evict_cursor: AtomicUsize,
    /// Entries removed by FLUSHALL and not yet freed (see [`Store::take_garbage`]).
    garbage: parking_lot::Mutex<Vec<Garbage>>,
    has_garbage: AtomicBool,
    /// State the server keeps beside the keyspace, by name, opaque to the store (the scripting
    /// engine's function libraries): logged and snapshotted with the keys, untouched by FLUSHALL.
    meta: RwLock<BTreeMap<Bytes, Bytes>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store with [`DEFAULT_SHARDS`] shards.
    pub fn new() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }

    /// An empty store with `shards` shards, rounded up to a power of two.
    pub fn with_shards(shards: usize) -> Self {
        let shards = shards.max(1).next_power_of_two();
        let tracking = Arc::new(Tracking::default());
        Self {
            shards: (0..shards)
                .map(|_| Padded(RwLock::new(Shard::with_tracking(tracking.clone()))))
                .collect(),
            tracking,
            pool: parking_lot::Mutex::new(Pool::default()),
            evicted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            evict_cursor: AtomicUsize::new(0),
            garbage: parking_lot::Mutex::new(Vec::new()),
            has_garbage: AtomicBool::new(false),
            meta: RwLock::new(BTreeMap::new()),
            hasher: DefaultHashBuilder::default(),
            revision: AtomicU64::new(0),
            sweep_cursor: AtomicUsize::new(0),
            commit: None,
            noting: AtomicBool::new(false),
            notifying: AtomicBool::new(false),
        }
    }

    /// The server state kept under `name` beside the keyspace (see [`crate::Transaction::set_meta`]);
    /// `None` if never set.
    pub fn meta(&self, name: &[u8]) -> Option<Bytes> {
        self.meta.read().get(name).cloned()
    }

    /// Every piece of server state kept beside the keyspace, for a snapshot.
    pub(crate) fn all_meta(&self) -> Vec<(Bytes, Bytes)> {
        self.meta
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Sets the server state `name` (replay, and transactions holding every shard).
    pub(crate) fn put_meta(&self, name: Bytes, value: Bytes) {
        self.meta.write().insert(name, value);
    }

    /// The last version assigned by any write (0 for a store never written).
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Number of live keys at `now`, counted with every shard's read lock held at once, so the
    /// count is of one instant.
    pub fn len(&self, now: Millis) -> u64 {
        let guards: Vec<_> = self.shards.iter().map(|s| s.read()).collect();
        let shards: Vec<&Shard> = guards.iter().map(|g| &**g).collect();
        live_count(&shards, now)
    }

    /// Number of keys held in memory, including expired ones the sweep has not reclaimed yet.
    pub fn held(&self) -> u64 {
        self.shards.iter().map(|s| s.read().len() as u64).sum()
    }

    /// Number of keys held that have an expiry (including expired ones not yet reclaimed).
    pub fn expiring(&self) -> u64 {
        self.shards.iter().map(|s| s.read().expiring() as u64).sum()
    }

    /// The earliest expiry instant of any key held (expired or not), or `None` when no key has an
    /// expiry. Takes each shard's read lock in turn, briefly.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.shards
            .iter()
            .filter_map(|s| s.read().next_expiry())
            .min()
    }

    /// Whether no key is live at `now`.
    pub fn is_empty(&self, now: Millis) -> bool {
        self.len(now) == 0
    }

    /// Reclaims up to `budget` expired keys, taking each shard's write lock only when that shard
    /// holds an expired key and only for a bounded number of removals. Each removal is an effect
    /// ([`Removal::Expired`]) submitted to the pipeline under the shard's lock, so a restart, a
    /// watcher and a replica all see the key go at the same place in the order of changes.
    /// Returns how many keys it removed.
    pub fn sweep_expired(&self, now: Millis, budget: usize) -> usize {
        let n = self.shards.len();
        let start = self.sweep_cursor.fetch_add(1, Ordering::Relaxed) % n;
        let mut removed = 0;
        for i in 0..n {
            if removed >= budget {
                break;
            }
            let lock = &self.shards[(start + i) % n];
            if !lock.read().has_expired(now) {
                continue;
            }
            let mut shard = lock.write();
            let mut changes = Vec::new();
            let noting = self.noting();
            removed += shard.sweep(now, budget - removed, |key| {
                if noting {
                    changes.push(Change::Remove(
                        Bytes::copy_from_slice(key),
                        Removal::Expired,
                    ));
                }
            });
            if !changes.is_empty() {
                // Nobody waits for these: the pipeline makes them durable in its own time.
                let _ = self.submit(&Effects {
                    revision: self.revision(),
                    changes,
                    events: Vec::new(),
                });
            }
            drop(shard);
        }
        if removed > 0 {
            self.expired.fetch_add(removed as u64, Ordering::Relaxed);
        }
        removed
    }

    /// The average time to live left, in milliseconds, of the keys that have one (0 when none
    /// has): Redis's `avg_ttl`, exact rather than sampled.
    pub fn average_ttl(&self, now: Millis) -> u64 {
        let (mut sum, mut count) = (0u128, 0u128);
        for shard in self.shards.iter() {
            let (s, n) = shard.read().expiry_sum();
            sum += s;
            count += n as u128;
        }
        if count == 0 {
            return 0;
        }
        u64::try_from((sum / count).saturating_sub(u128::from(now))).unwrap_or(u64::MAX)
    }

    /// Keys removed because their time to live ran out, since the store was made.
    pub fn expired_keys(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// Keeps entries removed whole for [`Store::take_garbage`].
    pub(crate) fn defer_free(&self, garbage: Garbage) {
        if !garbage.is_empty() {
            self.garbage.lock().push(garbage);
            self.has_garbage.store(true, Ordering::Release);
        }
    }

    /// Entries removed by FLUSHALL and not freed yet (Redis's `lazyfree_pending_objects`).
    pub fn pending_free(&self) -> u64 {
        self.garbage.lock().iter().map(|g| g.len() as u64).sum()
    }

    /// The entries FLUSHALL removed, for the caller to free (by dropping them) on a thread of its
    /// choosing, as Redis's lazyfree does: FLUSHALL only swaps each shard's table for an empty
    /// one under the locks. Cheap when there are none.
    pub fn take_garbage(&self) -> Option<Vec<Garbage>> {
        // A plain load first: every command asks, and a swap would write a shared cache line.
        if !self.has_garbage.load(Ordering::Acquire)
            || !self.has_garbage.swap(false, Ordering::AcqRel)
        {
            return None;
        }
        let taken = std::mem::take(&mut *self.garbage.lock());
        (!taken.is_empty()).then_some(taken)
    }

    /// Removes every key without noting it anywhere (recovery's FLUSHALL). Versions keep
    /// increasing afterwards.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            shard.write().clear();
        }
    }

    /// From now on, hands the effects of every write to `commit` (see [`crate::effects`]). Set it
    /// after recovery and before the store is shared.
    pub fn set_commit(&mut self, commit: Arc<dyn Commit>) {
        self.commit = Some(commit);
        *self.noting.get_mut() = true;
    }

    /// Installs `commit` without handing it anything yet: writes note no effects (and cost
    /// nothing extra) until [`Store::start_noting`]. For a pipeline that only feeds listeners,
    /// such as the change feed of a store kept in memory.
    pub fn set_commit_on_demand(&mut self, commit: Arc<dyn Commit>) {
        self.commit = Some(commit);
    }

    /// Makes every write from now on submit its effects to the pipeline. When it returns, each
    /// write scope either finished before it (and noted nothing) or notes all of its changes:
    /// the flag is raised, then every shard's write lock is taken and released once, which waits
    /// out the scopes that took their locks before they could see it. Later submissions
    /// therefore form a complete suffix of the order of changes. Does nothing without a
    /// pipeline, or when already noting.
    pub fn start_noting(&self) {
        if self.commit.is_none() || self.noting.swap(true, Ordering::SeqCst) {
            return;
        }
        for shard in self.shards.iter() {
            drop(shard.write());
        }
    }

    /// Whether writes note their effects and submit them to a pipeline.
    pub(crate) fn noting(&self) -> bool {
        self.noting.load(Ordering::Acquire)
    }

    /// Whether the effects of writes list the keyspace events each command raised (Redis's
    /// names: `set`, `del`, `expire`, ...), for keyspace notifications. Off, writes cost nothing
    /// extra for it. Events are noted only while effects are ([`Store::start_noting`]).
    pub fn set_notifying(&self, on: bool) {
        self.notifying.store(on, Ordering::Release);
    }

    /// Whether writes note keyspace events.
    pub fn notifying(&self) -> bool {
        self.notifying.load(Ordering::Relaxed)
    }

    /// Hands `effects` to the pipeline; `None` when there is none. Call it with the shard locks of
    /// every key they change held.
    pub(crate) fn submit(&self, effects: &Effects) -> Option<Ticket> {
        self.commit.as_ref().map(|c| c.submit(effects))
    }

    /// Makes the next version greater than `version` (used when replaying).
    pub(crate) fn raise_revision(&self, version: u64) {
        self.revision.fetch_max(version, Ordering::AcqRel);
    }

    pub(crate) fn shard_index(&self, key: &[u8]) -> usize {
        // The high bits: the shard's own table uses another hasher, so the two stay independent.
        let hash = self.hasher.hash_one(key);
        ((hash >> 32) as usize) & (self.shards.len() - 1)
    }

    /// When collections leave their compact encodings.
    pub fn collection_limits(&self) -> crate::collection::Limits {
        self.tracking.limits()
    }

    /// Changes when collections leave their compact encodings (Redis's `*-max-listpack-*`
    /// settings), for writes from now on.
    pub fn set_collection_limits(&self, limits: crate::collection::Limits) {
        self.tracking.set_limits(limits);
    }

    /// Shards the keyspace is split into.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub(crate) fn shard_at(&self, index: usize) -> &RwLock<Shard> {
        &self.shards[index]
    }

    /// The next version. Call it while holding the write lock of the key being written.
    pub(crate) fn next_version(&self) -> u64 {
        self.revision.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// Live keys across `shards` at `now`.
pub(crate) fn live_count(shards: &[&Shard], now: Millis) -> u64 {
    shards
        .iter()
        .map(|s| (s.len() - s.expired_count(now)) as u64)
        .sum()
}
