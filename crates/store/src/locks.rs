//! Locking several shards at once, for commands that touch several keys atomically (MSET, DEL
//! k1 k2, MGET). Shards are always locked in ascending index order, the one order every
//! multi-shard lock in kvs follows, so two such commands can never deadlock.

use parking_lot::{RwLockReadGuard, RwLockWriteGuard};

use crate::keyspace::Store;
use crate::shard::Shard;

/// Guards on a set of shards, found again by key.
pub(crate) struct Locked<'a, G> {
    store: &'a Store,
    /// Shard indices, ascending, one per guard.
    indices: Vec<usize>,
    guards: Vec<G>,
}

impl<'a, G> Locked<'a, G> {
    fn position(&self, key: &[u8]) -> Option<usize> {
        self.indices
            .binary_search(&self.store.shard_index(key))
            .ok()
    }
}

impl<'a> Locked<'a, RwLockReadGuard<'a, Shard>> {
    /// The shard of `key`; `None` only if `key` was not among the keys locked.
    pub(crate) fn shard(&self, key: &[u8]) -> Option<&Shard> {
        self.position(key).map(|i| &*self.guards[i])
    }
}

impl<'a> Locked<'a, RwLockWriteGuard<'a, Shard>> {
    /// The shard of `key`, for writing; `None` only if `key` was not among the keys locked.
    pub(crate) fn shard(&mut self, key: &[u8]) -> Option<&mut Shard> {
        self.position(key).map(|i| &mut *self.guards[i])
    }
}

fn sorted_indices<'k>(store: &Store, keys: impl IntoIterator<Item = &'k [u8]>) -> Vec<usize> {
    let mut indices: Vec<usize> = keys.into_iter().map(|k| store.shard_index(k)).collect();
    indices.sort_unstable();
    indices.dedup();
    indices
}

impl Store {
    /// Read locks on the shards of `keys`: a consistent view of all of them at one instant.
    pub(crate) fn read_keys<'a, 'k>(
        &'a self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Locked<'a, RwLockReadGuard<'a, Shard>> {
        let indices = sorted_indices(self, keys);
        let guards = indices.iter().map(|&i| self.shard_at(i).read()).collect();
        Locked {
            store: self,
            indices,
            guards,
        }
    }

    /// Write locks on the shards of `keys`: changes to all of them become visible together.
    pub(crate) fn write_keys<'a, 'k>(
        &'a self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Locked<'a, RwLockWriteGuard<'a, Shard>> {
        let indices = sorted_indices(self, keys);
        let guards = indices.iter().map(|&i| self.shard_at(i).write()).collect();
        Locked {
            store: self,
            indices,
            guards,
        }
    }
}
