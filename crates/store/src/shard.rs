//! One shard of the keyspace: a hash table of packed entries (see [`crate::packed`]) for every
//! operation on a key, an index of expiry instants for the background sweep, and — built on the
//! first ordered listing and kept up to date from then on — the shard's keys in byte order. All of
//! them change together under the shard's write lock, so they always agree.
//!
//! The ordered index is built on demand because it costs memory in proportion to the keyspace
//! (about a third of what the entries themselves take for small values) and only ordered listings
//! need it; a deployment that never lists never pays for it. SCAN needs no index at all: it walks
//! the hash table's buckets (see [`Shard::scan`]).

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::collection::{Collection, Edit};
use crate::effects::Removal;
use crate::entry::{Entry, Millis, Value};
use crate::error::CommandError;
use crate::packed::{EntryRef, Packed};
use crate::s3fifo::{Queues, Slot};
use crate::usage::{
    Policy, Tracking, s3_carried, s3_freq, s3_in_main, s3_ticket, s3_with, size_class,
};

/// Bytes each bucket of the hash table takes: the entry's pointer and a control byte. The table
/// is counted whole, spare buckets included, since that is what it allocates (and growing it is
/// a jump in memory the limit must see at once).
const BUCKET: usize = size_of::<Packed>() + 1;
/// Bytes a key's place in the expiry index takes besides its copy of the key.
const EXPIRY_ENTRY: usize = 40;
/// A shard reports its change in footprint to the store once it reaches this many bytes, so the
/// store's total is never more than this much per shard behind and writes rarely share a counter.
const REPORT_EVERY: i64 = 8 << 10;

/// Entries taken out of a shard whole (FLUSHALL), to be freed later and elsewhere: freeing
/// millions of entries takes a while, and no lock needs to be held for it.
/// Dropping it frees them.
#[derive(Debug, Default)]
pub struct Garbage {
    table: HashTable<Packed>,
    /// Held only to be freed with the rest.
    _expiries: BTreeSet<(Millis, Box<[u8]>)>,
    /// Held only to be freed with the rest.
    _order: Option<BTreeSet<Box<[u8]>>>,
}

impl Garbage {
    /// Entries it holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// What the eviction sampler sees of an entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) usage: u64,
    pub(crate) expires_at: Option<Millis>,
}

#[derive(Debug, Default)]
pub struct Shard {
    table: HashTable<Packed>,
    hasher: DefaultHashBuilder,
    /// Changes whenever the table may have moved entries between buckets (it grows or reorganises
    /// only on an insert into a full table), so a bucket position taken before is stale.
    layout_epoch: u64,
    /// Keys in byte order, once some listing asked for them.
    order: OnceLock<BTreeSet<Box<[u8]>>>,
    expiries: BTreeSet<(Millis, Box<[u8]>)>,
    /// The sum of the expiry instants in `expiries`, for the average time to live.
    expiry_sum: u128,
    /// The policy and counters every shard of the store shares.
    tracking: Arc<Tracking>,
    /// Bytes the entries of this shard take (see [`Shard::cost`]).
    bytes: usize,
    /// Change in `bytes` not yet added to the store's total.
    unreported: i64,
    /// allkeys-s3fifo's queues, while that is the policy (built on first need, dropped after).
    s3: Option<Box<Queues>>,
}

/// What applying an edit to a key did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Edited {
    /// What [`Collection::apply`] returned.
    pub(crate) count: usize,
    /// The key did not exist before (or had expired).
    pub(crate) created: bool,
    /// The collection ended empty, so the key is gone.
    pub(crate) removed: bool,
    /// Replay found the key already at or past the edit's version and left it alone.
    pub(crate) skipped: bool,
}

/// Where a bucket walk stopped: the bucket to start from next, or the end of the shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    Next(usize),
    Done,
}

impl Shard {
    /// An empty shard sharing `tracking` with the other shards of its store.
    pub(crate) fn with_tracking(tracking: Arc<Tracking>) -> Self {
        Self {
            tracking,
            ..Self::default()
        }
    }

    /// The policy and counters this shard shares with the rest of its store.
    pub(crate) fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, key: &[u8]) -> Option<&Packed> {
        self.table.find(self.hash(key), |p| p.key() == key)
    }

    /// The entry under `key` if it exists and has not expired at `now`, counted as an access
    /// (its usage word moves to `now`; see [`crate::usage`]).
    pub fn live(&self, key: &[u8], now: Millis) -> Option<EntryRef<'_>> {
        let packed = self.find(key)?;
        let entry = packed.view();
        if !entry.is_live(now) {
            return None;
        }
        let word = packed.usage().load(Ordering::Relaxed);
        let touched = self.tracking.touched(word, now);
        if touched != word {
            packed.usage().store(touched, Ordering::Relaxed);
        }
        Some(entry)
    }

    /// The live entry under `key`, without counting an access: for commands that inspect a key
    /// rather than use it (TYPE, TTL, EXISTS, OBJECT, WATCH), as Redis's `LOOKUP_NOTOUCH`.
    pub fn peek(&self, key: &[u8], now: Millis) -> Option<EntryRef<'_>> {
        self.find(key).map(Packed::view).filter(|e| e.is_live(now))
    }

    /// The live entry under `key` with its usage word, without counting an access.
    pub(crate) fn peek_usage(&self, key: &[u8], now: Millis) -> Option<(EntryRef<'_>, u64)> {
        let packed = self.find(key)?;
        let entry = packed.view();
        entry
            .is_live(now)
            .then(|| (entry, packed.usage().load(Ordering::Relaxed)))
    }

    /// Bytes a key and its entry take: the entry and its place in the expiry index (its bucket
    /// is counted with the table).
    fn cost(packed: &Packed, key_len: usize, expires: bool) -> usize {
        packed.footprint()
            + if expires {
                EXPIRY_ENTRY + size_class(key_len)
            } else {
                0
            }
    }

    /// Bytes the live-or-not entry under `key` takes, if the key is held: its own, and its
    /// share of the table.
    pub(crate) fn cost_of(&self, key: &[u8]) -> Option<usize> {
        let packed = self.find(key)?;
        let share = self.table.num_buckets() * BUCKET / self.table.len().max(1);
        Some(Self::cost(packed, key.len(), packed.view().expires_at.is_some()) + share)
    }

    /// The expiry of the entry under `key` (live or not), if the key is held.
    pub(crate) fn find_expiry(&self, key: &[u8]) -> Option<Option<Millis>> {
        self.find(key).map(|p| p.view().expires_at)
    }

    /// Bytes this shard's entries take.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records a change in this shard's footprint.
    fn account(&mut self, added: usize, removed: usize) {
        self.bytes = (self.bytes + added).saturating_sub(removed);
        self.unreported += added as i64 - removed as i64;
        if self.unreported.abs() >= REPORT_EVERY || self.tracking.precise() {
            self.tracking.report(self.unreported);
            self.unreported = 0;
        }
    }

    /// Writes `key` with one hash lookup. `decide` sees the live entry (`None` when the key is
    /// absent or expired) and returns the entry to store, or an error to leave the key unchanged.
    /// On success returns the live entry that was replaced.
    pub(crate) fn update<E>(
        &mut self,
        key: &Bytes,
        now: Millis,
        decide: impl FnOnce(Option<EntryRef<'_>>) -> Result<Entry, E>,
    ) -> Result<Option<Packed>, E> {
        let hash = self.hash(key);
        let Some(slot) = self.table.find_mut(hash, |p| p.key() == &key[..]) else {
            let entry = decide(None)?;
            self.put(key.clone(), entry);
            return Ok(None);
        };
        let current = slot.view();
        let live = current.is_live(now);
        let entry = decide(live.then_some(current))?;
        let packed = Packed::new(key, &entry);
        // A write is an access: the key keeps its frequency, as Redis keeps an overwritten key's
        // LFU counter. An expired entry's history ends with it, but not its queue place.
        let word = slot.usage().load(Ordering::Relaxed);
        let new_word = if live {
            self.tracking.touched(word, now)
        } else {
            s3_carried(packed.usage().load(Ordering::Relaxed), word)
        };
        packed.usage().store(new_word, Ordering::Relaxed);
        let old = std::mem::replace(slot, packed);
        let added = Self::cost(slot, key.len(), entry.expires_at.is_some());
        let removed = Self::cost(&old, key.len(), old.view().expires_at.is_some());
        self.note_expiry(key, old.view().expires_at, entry.expires_at);
        self.account(added, removed);
        if let Some(q) = self.s3.as_deref_mut() {
            q.resize(s3_in_main(new_word), removed, added);
        }
        Ok(live.then_some(old))
    }

    /// Applies `edit` to the collection under `key`, creating it when the key is absent, and
    /// gives the key `version` at `now` (keeping its expiry). A key holding another type is
    /// WRONGTYPE, unless `replaying`, when it is replaced (the log says what came after it); while
    /// `replaying`, a key already at `version` or later is left alone. A collection left empty
    /// removes its key, as Redis removes it.
    pub(crate) fn edit(
        &mut self,
        key: &Bytes,
        now: Millis,
        version: u64,
        modified_at: Millis,
        edit: &Edit,
        replaying: bool,
    ) -> Result<Edited, CommandError> {
        let limits = self.tracking.limits();
        let hash = self.hash(key);
        let mut out = Edited::default();
        let mut mutated = None;
        if let Some(slot) = self.table.find_mut(hash, |p| p.key() == &key[..]) {
            let view = slot.view();
            if view.is_live(now) {
                if replaying && view.version >= version {
                    out.skipped = true;
                    return Ok(out);
                }
                if view.kind == edit.kind() {
                    let before = slot.footprint();
                    let handle = slot.collection_mut().ok_or(CommandError::WrongType)?;
                    let collection = Arc::make_mut(handle);
                    out.count = collection.apply(edit, &limits);
                    let empty = collection.is_empty();
                    let word = slot.usage().load(Ordering::Relaxed);
                    let touched = self.tracking.touched(word, now);
                    // The usual case: the same handle, the header's version and time rewritten
                    // where they are; no allocation, no second lookup.
                    if !empty && slot.restamp(version, modified_at) {
                        slot.usage().store(touched, Ordering::Relaxed);
                        let after = slot.footprint();
                        self.account(after, before);
                        if let Some(q) = self.s3.as_deref_mut() {
                            q.resize(s3_in_main(touched), before, after);
                        }
                        return Ok(out);
                    }
                    let handle = slot
                        .collection_mut()
                        .ok_or(CommandError::WrongType)?
                        .clone();
                    let after = slot.footprint();
                    mutated = Some((handle, empty, before, after));
                } else if !replaying {
                    return Err(CommandError::WrongType);
                }
            }
        }
        let collection = match mutated {
            Some((handle, empty, before, after)) => {
                self.account(after, before);
                if empty {
                    drop(handle);
                    self.remove(key);
                    out.removed = true;
                    return Ok(out);
                }
                handle
            }
            None => {
                let mut collection = Collection::empty(edit.kind());
                out.count = collection.apply(edit, &limits);
                out.created = true;
                if collection.is_empty() {
                    // Nothing to hold: a key of another type stays only if this is not replay.
                    if replaying {
                        self.remove(key);
                    }
                    return Ok(out);
                }
                Arc::new(collection)
            }
        };
        let created = out.created;
        let written: Result<_, CommandError> = self.update(key, now, |current| {
            Ok(Entry {
                value: Value::Collection(collection),
                content_type: current.filter(|_| !created).map_or_else(
                    || Bytes::from_static(crate::entry::DEFAULT_CONTENT_TYPE.as_bytes()),
                    |e| e.content_type_bytes(),
                ),
                version,
                modified_at,
                expires_at: if created {
                    None
                } else {
                    current.and_then(|e| e.expires_at)
                },
            })
        });
        written.map(|_| out)
    }

    /// Gives the live collection under `key` new metadata, if its version is below `version`
    /// (replay of a [`crate::Change::Restamp`]).
    pub(crate) fn restamp(
        &mut self,
        key: &Bytes,
        now: Millis,
        version: u64,
        modified_at: Millis,
        expires_at: Option<Millis>,
    ) {
        let _ = self.update(key, now, |current| {
            let current = current.filter(|e| e.version < version && e.collection().is_some());
            let current = current.ok_or(())?;
            Ok::<_, ()>(Entry {
                version,
                modified_at,
                expires_at,
                ..current.to_entry()
            })
        });
    }

    /// Adds a snapshot's further elements to the collection under `key`, whatever its version.
    pub(crate) fn extend(&mut self, key: &[u8], edit: &Edit) {
        let limits = self.tracking.limits();
        let hash = self.hash(key);
        let Some(slot) = self.table.find_mut(hash, |p| p.key() == key) else {
            return;
        };
        if slot.view().kind != edit.kind() {
            return;
        }
        let before = slot.footprint();
        if let Some(handle) = slot.collection_mut() {
            Arc::make_mut(handle).apply(edit, &limits);
        }
        let after = slot.footprint();
        self.account(after, before);
    }

    /// Stores `entry` under `key`, replacing whatever was there, and returns the previous entry
    /// (which may be an expired one the caller must treat as absent).
    pub(crate) fn put(&mut self, key: Bytes, entry: Entry) -> Option<Packed> {
        let packed = Packed::new(&key, &entry);
        let added = Self::cost(&packed, key.len(), entry.expires_at.is_some());
        let hash = self.hash(&key);
        if let Some(slot) = self.table.find_mut(hash, |p| p.key() == &key[..]) {
            // The key's usage so far carries over to its new entry.
            packed
                .usage()
                .store(slot.usage().load(Ordering::Relaxed), Ordering::Relaxed);
            let old = std::mem::replace(slot, packed);
            let removed = Self::cost(&old, key.len(), old.view().expires_at.is_some());
            let word = old.usage().load(Ordering::Relaxed);
            self.note_expiry(&key, old.view().expires_at, entry.expires_at);
            self.account(added, removed);
            if let Some(q) = self.s3.as_deref_mut() {
                q.resize(s3_in_main(word), removed, added);
            }
            return Some(old);
        }
        self.s3_sync();
        if let Some(q) = self.s3.as_deref_mut() {
            let main = q.admit_to_main(hash);
            let ticket = q.ticket();
            let word = packed.usage().load(Ordering::Relaxed);
            packed
                .usage()
                .store(s3_with(word, main, 0, ticket), Ordering::Relaxed);
            q.push(main, Slot { hash, ticket }, added);
        }
        let buckets = self.table.num_buckets();
        if self.table.len() == self.table.capacity() {
            self.layout_epoch += 1;
        }
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, packed, |p| hasher.hash_one(p.key()));
        let grown = self.table.num_buckets();
        if grown != buckets {
            self.account(grown * BUCKET, buckets * BUCKET);
        }
        self.note_expiry(&key, None, entry.expires_at);
        if let Some(order) = self.order.get_mut() {
            order.insert(key.to_vec().into_boxed_slice());
        }
        self.account(added, 0);
        None
    }

    /// Keeps the expiry index in step with a key's expiry changing from `old` to `new`.
    fn note_expiry(&mut self, key: &[u8], old: Option<Millis>, new: Option<Millis>) {
        if old == new {
            return;
        }
        if let Some(at) = old
            && self.expiries.remove(&(at, Box::from(key)))
        {
            self.expiry_sum -= u128::from(at);
        }
        if let Some(at) = new
            && self.expiries.insert((at, Box::from(key)))
        {
            self.expiry_sum += u128::from(at);
        }
    }

    /// The sum of the expiry instants of the keys that have one, and how many they are.
    pub(crate) fn expiry_sum(&self) -> (u128, usize) {
        (self.expiry_sum, self.expiries.len())
    }

    /// Removes `key` and returns its entry, expired or not.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Packed> {
        let hash = self.hash(key);
        let found = self.table.find_entry(hash, |p| p.key() == key).ok()?;
        let (packed, _) = found.remove();
        if let Some(order) = self.order.get_mut() {
            order.remove(key);
        }
        let expires = packed.view().expires_at;
        self.note_expiry(key, expires, None);
        let cost = Self::cost(&packed, key.len(), expires.is_some());
        self.account(0, cost);
        if let Some(q) = self.s3.as_deref_mut() {
            q.forget(s3_in_main(packed.usage().load(Ordering::Relaxed)), cost);
        }
        Some(packed)
    }

    /// Builds allkeys-s3fifo's queues when it became the policy (every key held starts in main,
    /// as established), and drops them when it stopped being it.
    fn s3_sync(&mut self) {
        let active = self.tracking.policy() == Policy::AllKeysS3Fifo;
        if active == self.s3.is_some() {
            return;
        }
        if !active {
            self.s3 = None;
            return;
        }
        let mut q = Box::<Queues>::default();
        for packed in self.table.iter() {
            let ticket = q.ticket();
            let word = packed.usage().load(Ordering::Relaxed);
            packed
                .usage()
                .store(s3_with(word, true, 0, ticket), Ordering::Relaxed);
            let view = packed.view();
            let cost = Self::cost(packed, packed.key().len(), view.expires_at.is_some());
            let hash = self.hasher.hash_one(packed.key());
            q.push(true, Slot { hash, ticket }, cost);
        }
        self.s3 = Some(q);
    }

    /// The entry a queue slot names, if it still does.
    fn s3_resolve(&self, slot: Slot, main: bool) -> Option<&Packed> {
        let found = self.table.find(slot.hash, |p| {
            let word = p.usage().load(Ordering::Relaxed);
            s3_ticket(word) == slot.ticket && s3_in_main(word) == main
        })?;
        (self.hash(found.key()) == slot.hash).then_some(found)
    }

    /// One eviction by allkeys-s3fifo: moves keys between queues until one goes (at most 4,096
    /// steps), and returns its key, why it went (an expired key goes as expired) and the bytes
    /// freed. `None`: nothing in this shard to evict.
    pub(crate) fn s3_evict(&mut self, now: Millis) -> Option<(Box<[u8]>, Removal, usize)> {
        self.s3_sync();
        let mut q = self.s3.take()?;
        q.evicted_any = true;
        let mut victim = None;
        for main in [false, true] {
            if q.stale(main) {
                let queue = if main { &mut q.main } else { &mut q.small };
                let mut kept = std::mem::take(queue);
                kept.retain(|s| self.s3_resolve(*s, main).is_some());
                *(if main { &mut q.main } else { &mut q.small }) = kept;
            }
        }
        for _ in 0..4096 {
            let from_small = q.evict_from_small();
            let Some(slot) = (if from_small {
                q.small.pop_front()
            } else {
                q.main.pop_front()
            }) else {
                break;
            };
            let Some(packed) = self.s3_resolve(slot, !from_small) else {
                continue;
            };
            let word = packed.usage().load(Ordering::Relaxed);
            let view = packed.view();
            let expired = !view.is_live(now);
            let freq = s3_freq(word);
            if !expired && from_small && freq >= 2 {
                let cost = Self::cost(packed, packed.key().len(), view.expires_at.is_some());
                packed
                    .usage()
                    .store(s3_with(word, true, 0, slot.ticket), Ordering::Relaxed);
                q.promote(slot, cost);
                continue;
            }
            if !expired && !from_small && freq >= 1 {
                packed.usage().store(
                    s3_with(word, true, freq - 1, slot.ticket),
                    Ordering::Relaxed,
                );
                q.main.push_back(slot);
                continue;
            }
            if from_small && !expired {
                q.remember(slot.hash);
            }
            let why = if expired {
                Removal::Expired
            } else {
                Removal::Evicted
            };
            victim = Some((Box::<[u8]>::from(packed.key()), why));
            break;
        }
        self.s3 = Some(q);
        let (key, why) = victim?;
        let before = self.bytes;
        self.remove(&key);
        Some((key, why, before.saturating_sub(self.bytes)))
    }

    /// Number of keys held, including expired ones not yet reclaimed.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Number of keys held that have an expiry.
    pub(crate) fn expiring(&self) -> usize {
        self.expiries.len()
    }

    /// Number of keys that are expired at `now` but still held. Costs work in proportion to that
    /// number, which the background sweep keeps small.
    pub(crate) fn expired_count(&self, now: Millis) -> usize {
        self.expiries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .count()
    }

    /// The earliest expiry instant of any key held, if some key has one.
    pub(crate) fn next_expiry(&self) -> Option<Millis> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Whether some key has expired at `now` and awaits reclaiming.
    pub(crate) fn has_expired(&self, now: Millis) -> bool {
        self.expiries.first().is_some_and(|(at, _)| *at <= now)
    }

    /// Removes up to `budget` keys that expired at or before `now`, telling `removed` each one;
    /// returns how many it removed.
    pub(crate) fn sweep(
        &mut self,
        now: Millis,
        budget: usize,
        mut removed_key: impl FnMut(&[u8]),
    ) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some((at, key)) = self.expiries.first() else {
                break;
            };
            if *at > now {
                break;
            }
            let key = key.clone();
            self.remove(&key);
            removed_key(&key);
            removed += 1;
        }
        removed
    }

    /// The shard's keys in byte order, for listings. The first call builds the index.
    pub(crate) fn ordered_keys(&self) -> &BTreeSet<Box<[u8]>> {
        self.order
            .get_or_init(|| self.table.iter().map(|p| Box::from(p.key())).collect())
    }

    /// Every key held with its entry, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        self.table.iter().map(|p| (p.key(), p.view()))
    }

    /// The current layout epoch: a bucket position is valid only while this stays the same.
    pub(crate) fn layout_epoch(&self) -> u64 {
        self.layout_epoch
    }

    /// Visits held entries bucket by bucket from bucket `from`, until `visit` returns `false` for
    /// one (that entry counts as visited) or the table ends. Inserting or removing other keys never
    /// moves an entry to another bucket; only a change of [`Shard::layout_epoch`] does.
    pub(crate) fn scan(
        &self,
        from: usize,
        mut visit: impl FnMut(&[u8], EntryRef<'_>) -> bool,
    ) -> Walk {
        for bucket in from..self.table.num_buckets() {
            if let Some(p) = self.table.get_bucket(bucket)
                && !visit(p.key(), p.view())
            {
                return Walk::Next(bucket + 1);
            }
        }
        Walk::Done
    }

    /// A held key chosen by `pick` (any number; it is reduced to a bucket), found by walking on
    /// from that bucket to the first live entry.
    pub(crate) fn key_near(&self, pick: u64, now: Millis) -> Option<&[u8]> {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            return None;
        }
        let start = (pick % buckets as u64) as usize;
        (start..buckets)
            .chain(0..start)
            .filter_map(|b| self.table.get_bucket(b))
            .find(|p| p.view().is_live(now))
            .map(Packed::key)
    }

    /// Removes every key and hands the entries back, to be freed by the caller, in its own time.
    pub(crate) fn take_all(&mut self) -> Garbage {
        self.layout_epoch += 1;
        self.s3 = None;
        self.account(0, self.bytes);
        self.bytes = 0;
        Garbage {
            table: std::mem::take(&mut self.table),
            _expiries: {
                self.expiry_sum = 0;
                std::mem::take(&mut self.expiries)
            },
            _order: self.order.get_mut().map(std::mem::take),
        }
    }

    /// Removes every key.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.layout_epoch += 1;
        if let Some(order) = self.order.get_mut() {
            order.clear();
        }
        self.expiries.clear();
        self.expiry_sum = 0;
        self.account(0, self.bytes);
        self.s3 = None;
    }

    /// Shows `visit` up to `n` held entries (expired or not), walking the table from a bucket
    /// chosen by `pick`. Visits at most every bucket once.
    pub(crate) fn sample(&self, pick: u64, n: usize, mut visit: impl FnMut(Seen<'_>)) {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 || n == 0 {
            return;
        }
        let start = (pick % buckets as u64) as usize;
        let mut seen = 0;
        for b in (start..buckets).chain(0..start) {
            if let Some(p) = self.table.get_bucket(b) {
                visit(Seen {
                    key: p.key(),
                    usage: p.usage().load(Ordering::Relaxed),
                    expires_at: p.view().expires_at,
                });
                seen += 1;
                if seen == n {
                    return;
                }
            }
        }
    }

    /// Shows `visit` up to `n` entries that have an expiry: the soonest to expire when `pick` is
    /// `None`, else consecutive ones (in expiry order) from a point chosen by `pick`.
    pub(crate) fn sample_expiring(
        &self,
        pick: Option<u64>,
        n: usize,
        mut visit: impl FnMut(Seen<'_>),
    ) {
        let (Some((first, _)), Some((last, _))) = (self.expiries.first(), self.expiries.last())
        else {
            return;
        };
        let from = match pick {
            None => *first,
            Some(pick) => first + pick % (last - first + 1),
        };
        let start: (Millis, Box<[u8]>) = (from, Box::default());
        let wrapped = self
            .expiries
            .range((Bound::Included(start), Bound::Unbounded))
            .chain(self.expiries.iter())
            .take(n.min(self.expiries.len()));
        for (at, key) in wrapped {
            if let Some(p) = self.find(key) {
                visit(Seen {
                    key: p.key(),
                    usage: p.usage().load(Ordering::Relaxed),
                    expires_at: Some(*at),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &'static str) -> Entry {
        Entry {
            value: Value::String(Bytes::from_static(value.as_bytes())),
            content_type: Bytes::from_static(crate::DEFAULT_CONTENT_TYPE.as_bytes()),
            version: 1,
            modified_at: 0,
            expires_at: None,
        }
    }

    fn ordered(shard: &Shard) -> Vec<&[u8]> {
        shard.ordered_keys().iter().map(|k| &k[..]).collect()
    }

    #[test]
    fn the_ordered_index_is_built_on_demand_and_then_kept_in_step() {
        let mut shard = Shard::default();
        shard.put(Bytes::from_static(b"b"), entry("1"));
        shard.put(Bytes::from_static(b"a"), entry("1"));
        assert!(shard.order.get().is_none(), "no listing yet, no index");
        assert_eq!(ordered(&shard), [b"a", b"b"]);
        shard.put(Bytes::from_static(b"c"), entry("1"));
        shard.put(Bytes::from_static(b"a"), entry("2"));
        shard.remove(b"b");
        let mut expiring = entry("3");
        expiring.expires_at = Some(5);
        shard.put(Bytes::from_static(b"0"), expiring);
        assert_eq!(ordered(&shard), [&b"0"[..], b"a", b"c"]);
        let mut swept = Vec::new();
        assert_eq!(shard.sweep(5, 10, |k| swept.push(k.to_vec())), 1);
        assert_eq!(swept, [b"0".to_vec()]);
        assert_eq!(ordered(&shard), [b"a", b"c"]);
        shard.clear();
        assert!(ordered(&shard).is_empty());
    }

    #[test]
    fn growing_the_table_changes_the_layout_epoch_and_nothing_else_does() {
        let mut shard = Shard::default();
        let mut epochs = BTreeSet::new();
        for i in 0..1_000u32 {
            let before = (shard.layout_epoch(), shard.table.num_buckets());
            shard.put(Bytes::from(i.to_string()), entry("v"));
            let after = (shard.layout_epoch(), shard.table.num_buckets());
            if before.1 != after.1 {
                assert_ne!(
                    before.0, after.0,
                    "the table grew at key {i} under the same epoch"
                );
            }
            epochs.insert(after.0);
        }
        assert!(epochs.len() > 5, "1,000 keys grow the table several times");
        let epoch = shard.layout_epoch();
        for i in 0..500u32 {
            shard.remove(i.to_string().as_bytes());
        }
        assert_eq!(shard.layout_epoch(), epoch, "removals never move entries");
    }
}
