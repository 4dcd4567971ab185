//! One shard of the keyspace: a hash table for point operations, an ordered set of its keys for
//! listings, the same keys ordered by a fixed hash for SCAN cursors, and an index of expiry
//! instants for the background sweep. All of them change together under the shard's write lock,
//! so they always agree.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashMap};

use crate::entry::{Entry, Millis};
use crate::journal;

/// Bits of a key's scan hash: a SCAN cursor holds the shard (7 bits) and this (57 bits).
pub(crate) const SCAN_HASH_BITS: u32 = 57;

#[derive(Debug, Default)]
pub struct Shard {
    map: HashMap<Bytes, Entry>,
    order: BTreeSet<Bytes>,
    /// Keys by (scan hash, key): positions that inserting or removing other keys never shift,
    /// so a SCAN cursor pointing into it never skips a key.
    scan: BTreeSet<(u64, Bytes)>,
    scan_hasher: DefaultHashBuilder,
    expiries: BTreeSet<(Millis, Bytes)>,
}

impl Shard {
    /// The entry under `key` if it exists and has not expired at `now`.
    pub fn live(&self, key: &[u8], now: Millis) -> Option<&Entry> {
        self.map.get(key).filter(|e| e.is_live(now))
    }

    /// Writes `key` with one hash lookup. `decide` sees the live entry (`None` when the key is
    /// absent or expired) and returns the entry to store, or an error to leave the key unchanged.
    /// On success returns the live entry that was replaced.
    pub(crate) fn update<E>(
        &mut self,
        key: &Bytes,
        now: Millis,
        decide: impl FnOnce(Option<&Entry>) -> Result<Entry, E>,
    ) -> Result<Option<Entry>, E> {
        let Some(slot) = self.map.get_mut(key.as_ref()) else {
            let entry = decide(None)?;
            self.put(key.clone(), entry);
            return Ok(None);
        };
        let live = slot.is_live(now);
        let entry = decide(live.then_some(&*slot))?;
        let new_expiry = entry.expires_at;
        journal::put(key, &entry);
        let old = std::mem::replace(slot, entry);
        if old.expires_at != new_expiry {
            if let Some(at) = old.expires_at {
                self.expiries.remove(&(at, key.clone()));
            }
            if let Some(at) = new_expiry {
                self.expiries.insert((at, key.clone()));
            }
        }
        Ok(live.then_some(old))
    }

    /// Where `key` sits in this shard's scan order.
    pub(crate) fn scan_hash(&self, key: &[u8]) -> u64 {
        self.scan_hasher.hash_one(key) >> (64 - SCAN_HASH_BITS)
    }

    /// Keys in scan order from scan hash `from` on.
    pub(crate) fn scan_from(&self, from: u64) -> impl Iterator<Item = &(u64, Bytes)> {
        self.scan.range((from, Bytes::new())..)
    }

    /// Stores `entry` under `key`, replacing whatever was there, and returns the previous entry
    /// (which may be an expired one the caller must treat as absent).
    pub(crate) fn put(&mut self, key: Bytes, entry: Entry) -> Option<Entry> {
        journal::put(&key, &entry);
        let new_expiry = entry.expires_at;
        let previous = self.map.insert(key.clone(), entry);
        match &previous {
            Some(old) => {
                if old.expires_at != new_expiry {
                    if let Some(at) = old.expires_at {
                        self.expiries.remove(&(at, key.clone()));
                    }
                    if let Some(at) = new_expiry {
                        self.expiries.insert((at, key));
                    }
                }
            }
            None => {
                if let Some(at) = new_expiry {
                    self.expiries.insert((at, key.clone()));
                }
                self.scan.insert((self.scan_hash(&key), key.clone()));
                self.order.insert(key);
            }
        }
        previous
    }

    /// Removes `key` and returns its entry, expired or not.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.unlink(key)?;
        journal::remove(key);
        Some(entry)
    }

    /// Removes `key` without noting it in the journal: for expired keys, whose records already
    /// carry their absolute expiry.
    fn unlink(&mut self, key: &[u8]) -> Option<Entry> {
        let (key, entry) = self.map.remove_entry(key)?;
        self.order.remove(&key);
        self.scan.remove(&(self.scan_hash(&key), key.clone()));
        if let Some(at) = entry.expires_at {
            self.expiries.remove(&(at, key));
        }
        Some(entry)
    }

    /// Number of keys held, including expired ones not yet reclaimed.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
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

    /// Whether some key has expired at `now` and awaits reclaiming.
    pub(crate) fn has_expired(&self, now: Millis) -> bool {
        self.expiries.first().is_some_and(|(at, _)| *at <= now)
    }

    /// Removes up to `budget` keys that expired at or before `now`; returns how many it removed.
    pub(crate) fn sweep(&mut self, now: Millis, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some((at, key)) = self.expiries.first().cloned() else {
                break;
            };
            if at > now {
                break;
            }
            self.unlink(&key);
            removed += 1;
        }
        removed
    }

    /// The ordered keys of this shard, for listings.
    pub(crate) fn ordered_keys(&self) -> &BTreeSet<Bytes> {
        &self.order
    }

    /// Removes every key of every shard in `shards` (which must be all of the store's).
    pub(crate) fn clear_all(shards: &mut [&mut Shard]) {
        shards.iter_mut().for_each(|s| s.clear());
        journal::clear();
    }

    /// Removes every key.
    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
        self.scan.clear();
        self.expiries.clear();
    }
}
