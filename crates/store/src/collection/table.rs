//! The large encoding of hashes, sets and a sorted set's index: a hash table of boxed byte items,
//! each holding its key (a field, a member) and whatever goes with it in one allocation, so an
//! element costs its bucket (16 bytes and a control byte) and one allocation of about its size.

use std::hash::BuildHasher;
use std::marker::PhantomData;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::Rng;
use crate::usage::size_class;

/// Bytes each bucket takes: a boxed slice and a control byte.
const BUCKET: usize = size_of::<Box<[u8]>>() + 1;

/// Where an item's key lies inside it.
pub trait Keyed {
    fn key(item: &[u8]) -> &[u8];
}

/// The item is its key (a set member).
#[derive(Clone, Copy, Debug)]
pub struct Whole;

impl Keyed for Whole {
    fn key(item: &[u8]) -> &[u8] {
        item
    }
}

/// A varint length, the key, then the rest (a hash field and its value).
#[derive(Clone, Copy, Debug)]
pub struct Prefixed;

impl Keyed for Prefixed {
    fn key(item: &[u8]) -> &[u8] {
        let (h, n) = split_varint(item);
        &item[h..h + n]
    }
}

/// Eight bytes of score, then the key (a sorted set member).
#[derive(Clone, Copy, Debug)]
pub struct Scored;

impl Keyed for Scored {
    fn key(item: &[u8]) -> &[u8] {
        &item[8..]
    }
}

/// The varint at the start of `item`: (its length, its value).
pub(crate) fn split_varint(item: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, &byte) in item.iter().enumerate() {
        n |= usize::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return (i + 1, n);
        }
    }
    (item.len(), n)
}

/// Items found by key, in no order.
pub struct Table<K> {
    table: HashTable<Box<[u8]>>,
    hasher: DefaultHashBuilder,
    /// Changes whenever items may have moved between buckets, so a scan cursor taken before is
    /// stale.
    epoch: u64,
    /// Bytes the items' allocations take.
    item_bytes: usize,
    _keyed: PhantomData<K>,
}

impl<K> Clone for Table<K> {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
            hasher: self.hasher.clone(),
            epoch: self.epoch,
            item_bytes: self.item_bytes,
            _keyed: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Table<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.table.len())
            .finish()
    }
}

impl<K: Keyed> Default for Table<K> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<K: Keyed> Table<K> {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            table: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
            epoch: 0,
            item_bytes: 0,
            _keyed: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes the table and its items take from the allocator.
    pub fn footprint(&self) -> usize {
        self.table.num_buckets() * BUCKET + self.item_bytes
    }

    /// The item under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |i| K::key(i) == key).map(|b| &b[..])
    }

    /// Stores `item`, replacing the one with the same key; returns the replaced one.
    pub fn insert(&mut self, item: Box<[u8]>) -> Option<Box<[u8]>> {
        let hash = self.hasher.hash_one(K::key(&item));
        self.item_bytes += size_class(item.len());
        if let Some(slot) = self.table.find_mut(hash, |i| K::key(i) == K::key(&item)) {
            let old = std::mem::replace(slot, item);
            self.item_bytes -= size_class(old.len());
            return Some(old);
        }
        if self.table.len() == self.table.capacity() {
            self.epoch += 1;
        }
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, item, |i| hasher.hash_one(K::key(i)));
        None
    }

    /// Removes and returns the item under `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Box<[u8]>> {
        let hash = self.hasher.hash_one(key);
        let (item, _) = self
            .table
            .find_entry(hash, |i| K::key(i) == key)
            .ok()?
            .remove();
        self.item_bytes -= size_class(item.len());
        // A table left mostly empty gives its buckets back, as Redis's dicts shrink.
        if self.table.num_buckets() > 64 && self.table.len() * 8 < self.table.num_buckets() {
            let hasher = &self.hasher;
            self.table.shrink_to_fit(|i| hasher.hash_one(K::key(i)));
            self.epoch += 1;
        }
        Some(item)
    }

    /// Every item, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.table.iter().map(|b| &b[..])
    }

    /// An item chosen at random, each with the same chance.
    pub fn random(&self, rng: &mut Rng) -> Option<&[u8]> {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            return None;
        }
        // Pick buckets until one is full: fair, and quick while the table is at least an eighth
        // full (it shrinks below that).
        for _ in 0..256 {
            if let Some(item) = self.table.get_bucket(rng.below(buckets as u64) as usize) {
                return Some(item);
            }
        }
        self.table.iter().next().map(|b| &b[..])
    }

    /// Visits the items of about `count` buckets from `cursor` (0 starts); returns the cursor to
    /// continue from, 0 when done. A cursor from before the items moved restarts the walk: items
    /// may then be seen twice, but one held throughout is never missed.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8])) -> u64 {
        let buckets = self.table.num_buckets();
        let epoch = self.epoch & 0xffff;
        let mut from = (cursor >> 16) as usize;
        if cursor & 0xffff != epoch || from > buckets {
            from = 0;
        }
        from = from.saturating_sub(1);
        let mut seen = 0;
        let mut bucket = from;
        while bucket < buckets {
            if let Some(item) = self.table.get_bucket(bucket) {
                visit(item);
                seen += 1;
            }
            bucket += 1;
            if seen >= count.max(1) {
                break;
            }
        }
        if bucket >= buckets {
            0
        } else {
            ((bucket as u64 + 1) << 16) | epoch
        }
    }
}
