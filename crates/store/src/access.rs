//! How commands reach shards. A command is written once against [`Keyspace`] and runs two ways:
//! on the [`Store`], where each access takes the shard locks it needs for as long as it needs
//! them, or inside a [`Transaction`], which already holds the write locks of every shard the
//! transaction touches, so a whole `MULTI`/`EXEC` block applies at one instant.
//!
//! Whenever several shards are locked at once they are locked in ascending index order, the one
//! order every multi-shard lock in kvs follows, so no two of them can deadlock.

use std::cell::RefCell;

use parking_lot::RwLockWriteGuard;

use crate::keyspace::{Scope, Store};
use crate::shard::Shard;

/// Access to shards for one command. Implemented by [`Store`] and [`Transaction`].
pub trait Keyspace {
    /// The store these shards belong to.
    fn store(&self) -> &Store;
    /// Runs `f` on the shard of `key`, for reading.
    fn read<R>(&self, key: &[u8], f: impl FnOnce(&Shard) -> R) -> R;
    /// Runs `f` on shard number `index` (below the store's shard count), for reading.
    fn read_index<R>(&self, index: usize, f: impl FnOnce(&Shard) -> R) -> R;
    /// Runs `f` on the shard of `key`, for writing.
    fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Shard) -> R) -> R;
    /// Runs `f` with the shards of all `keys` held at once, for reading.
    fn read_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&Picked<'_, &Shard>) -> R) -> R;
    /// Runs `f` with the shards of all `keys` held at once, for writing.
    fn write_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Picked<'_, &mut Shard>) -> R) -> R;
    /// Runs `f` with every shard held, in index order, for reading.
    fn read_every<R>(&self, f: impl FnOnce(&[&Shard]) -> R) -> R;
    /// Runs `f` with every shard held, in index order, for writing.
    fn write_every<R>(&self, f: impl FnOnce(&mut [&mut Shard]) -> R) -> R;
    /// The next version. Call it only while holding the written key's shard for writing.
    fn next_version(&self) -> u64 {
        self.store().next_version()
    }
}

/// Several shards held together, found again by key.
#[derive(Debug)]
pub struct Picked<'a, S> {
    store: &'a Store,
    /// Shard indices, ascending, one per entry of `shards`.
    indices: Vec<usize>,
    shards: Vec<S>,
}

impl<S> Picked<'_, S> {
    fn position(&self, key: &[u8]) -> Option<usize> {
        self.indices
            .binary_search(&self.store.shard_index(key))
            .ok()
    }
}

impl Picked<'_, &Shard> {
    /// The shard of `key`; `None` only if `key` was not among the keys asked for.
    pub(crate) fn shard(&self, key: &[u8]) -> Option<&Shard> {
        self.position(key).map(|i| self.shards[i])
    }
}

impl Picked<'_, &mut Shard> {
    /// The shard of `key`; `None` only if `key` was not among the keys asked for.
    pub(crate) fn shard(&mut self, key: &[u8]) -> Option<&mut Shard> {
        self.position(key).map(|i| &mut *self.shards[i])
    }
}

/// Distinct shard indices of `keys`, ascending.
pub(crate) fn indices_of(store: &Store, keys: &[&[u8]]) -> Vec<usize> {
    let mut indices: Vec<usize> = keys.iter().map(|k| store.shard_index(k)).collect();
    indices.sort_unstable();
    indices.dedup();
    indices
}

impl Keyspace for Store {
    fn store(&self) -> &Store {
        self
    }

    fn read<R>(&self, key: &[u8], f: impl FnOnce(&Shard) -> R) -> R {
        f(&self.shard_at(self.shard_index(key)).read())
    }

    fn read_index<R>(&self, index: usize, f: impl FnOnce(&Shard) -> R) -> R {
        f(&self.shard_at(index).read())
    }

    fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut guard = self.shard_at(self.shard_index(key)).write();
        let _scope = self.scope();
        f(&mut guard)
    }

    fn read_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&Picked<'_, &Shard>) -> R) -> R {
        let indices = indices_of(self, keys);
        let guards: Vec<_> = indices.iter().map(|&i| self.shard_at(i).read()).collect();
        let shards = guards.iter().map(|g| &**g).collect();
        f(&Picked {
            store: self,
            indices,
            shards,
        })
    }

    fn write_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Picked<'_, &mut Shard>) -> R) -> R {
        let indices = indices_of(self, keys);
        let mut guards: Vec<_> = indices.iter().map(|&i| self.shard_at(i).write()).collect();
        let _scope = self.scope();
        let shards = guards.iter_mut().map(|g| &mut **g).collect();
        f(&mut Picked {
            store: self,
            indices,
            shards,
        })
    }

    fn read_every<R>(&self, f: impl FnOnce(&[&Shard]) -> R) -> R {
        let guards: Vec<_> = (0..self.shard_count())
            .map(|i| self.shard_at(i).read())
            .collect();
        let shards: Vec<&Shard> = guards.iter().map(|g| &**g).collect();
        f(&shards)
    }

    fn write_every<R>(&self, f: impl FnOnce(&mut [&mut Shard]) -> R) -> R {
        let mut guards: Vec<_> = (0..self.shard_count())
            .map(|i| self.shard_at(i).write())
            .collect();
        let _scope = self.scope();
        let mut shards: Vec<&mut Shard> = guards.iter_mut().map(|g| &mut **g).collect();
        f(&mut shards)
    }
}

/// The write locks of a set of shards, held while a block of commands runs (`MULTI`/`EXEC`).
/// Other clients' operations on those shards wait until it is dropped; operations on other
/// shards go on. Commands run inside it may only touch the shards it was opened for.
#[derive(Debug)]
pub struct Transaction<'a> {
    store: &'a Store,
    /// Gathers the block's changes into one journal record; declared before `held` so it is
    /// dropped, and the record handed over, while the locks are still held.
    _scope: Scope<'a>,
    /// One slot per shard of the store; `Some` for the shards this transaction holds.
    held: Vec<Option<RefCell<RwLockWriteGuard<'a, Shard>>>>,
}

impl<'a> Transaction<'a> {
    /// Takes the write locks of the shards of `keys` (all shards for `None`), in index order.
    pub fn lock(store: &'a Store, keys: Option<&[&[u8]]>) -> Self {
        let wanted = match keys {
            Some(keys) => indices_of(store, keys),
            None => (0..store.shard_count()).collect(),
        };
        let mut held: Vec<Option<RefCell<RwLockWriteGuard<'a, Shard>>>> =
            (0..store.shard_count()).map(|_| None).collect();
        for i in wanted {
            held[i] = Some(RefCell::new(store.shard_at(i).write()));
        }
        Self {
            store,
            _scope: store.scope(),
            held,
        }
    }

    /// The held guard of shard `i`. Reaching a shard the transaction was not opened for means a
    /// command misreported its keys: a bug, stopped here rather than risking a deadlock.
    fn slot(&self, i: usize) -> &RefCell<RwLockWriteGuard<'a, Shard>> {
        match &self.held[i] {
            Some(cell) => cell,
            None => panic!("a transaction reached shard {i}, which it does not hold"),
        }
    }
}

impl Keyspace for Transaction<'_> {
    fn store(&self) -> &Store {
        self.store
    }

    fn read<R>(&self, key: &[u8], f: impl FnOnce(&Shard) -> R) -> R {
        f(&self.slot(self.store.shard_index(key)).borrow())
    }

    fn read_index<R>(&self, index: usize, f: impl FnOnce(&Shard) -> R) -> R {
        f(&self.slot(index).borrow())
    }

    fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Shard) -> R) -> R {
        f(&mut self.slot(self.store.shard_index(key)).borrow_mut())
    }

    fn read_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&Picked<'_, &Shard>) -> R) -> R {
        let indices = indices_of(self.store, keys);
        let borrows: Vec<_> = indices.iter().map(|&i| self.slot(i).borrow()).collect();
        let shards = borrows.iter().map(|b| &***b).collect();
        f(&Picked {
            store: self.store,
            indices,
            shards,
        })
    }

    fn write_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Picked<'_, &mut Shard>) -> R) -> R {
        let indices = indices_of(self.store, keys);
        let mut borrows: Vec<_> = indices.iter().map(|&i| self.slot(i).borrow_mut()).collect();
        let shards = borrows.iter_mut().map(|b| &mut ***b).collect();
        f(&mut Picked {
            store: self.store,
            indices,
            shards,
        })
    }

    fn read_every<R>(&self, f: impl FnOnce(&[&Shard]) -> R) -> R {
        let borrows: Vec<_> = (0..self.held.len())
            .map(|i| self.slot(i).borrow())
            .collect();
        let shards: Vec<&Shard> = borrows.iter().map(|b| &***b).collect();
        f(&shards)
    }

    fn write_every<R>(&self, f: impl FnOnce(&mut [&mut Shard]) -> R) -> R {
        let mut borrows: Vec<_> = (0..self.held.len())
            .map(|i| self.slot(i).borrow_mut())
            .collect();
        let mut shards: Vec<&mut Shard> = borrows.iter_mut().map(|b| &mut ***b).collect();
        f(&mut shards)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{Command, Reply};

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// Every command runs inside a transaction opened for exactly the keys it reports, touching
    /// no other shard (a wrong `keys()` would stop the test), and answers as it does outside one.
    #[test]
    fn every_command_stays_within_the_shards_it_reports() {
        let lines = [
            "SET a 1",
            "GET a",
            "GETDEL a",
            "SET a 5 EX 100",
            "GETEX a PERSIST",
            "APPEND a 2",
            "STRLEN a",
            "GETRANGE a 0 1",
            "SETRANGE a 1 x",
            "INCR n",
            "INCRBYFLOAT f 1.5",
            "MSET b 1 c 2 d 3",
            "MGET a b c d",
            "DEL b c",
            "EXISTS a d",
            "EXPIRE a 10",
            "TTL a",
            "PERSIST a",
            "TYPE a",
            "OBJECT ENCODING n",
            "RENAME d e",
            "COPY e g",
            "KEYS *",
            "RANDOMKEY",
            "DBSIZE",
            "FLUSHALL",
        ];
        let plain = Store::with_shards(16);
        let inside = Store::with_shards(16);
        for line in lines {
            let command = Command::from_argv(&argv(line)).expect(line);
            let want = plain.execute(command.clone(), 0);
            let keys = command.keys();
            let txn = Transaction::lock(&inside, keys.as_deref());
            let got = command.apply(&txn, 0);
            drop(txn);
            let comparable = |r: &Reply| match r {
                Reply::Bulk(_) if line == "RANDOMKEY" => Reply::Nil,
                other => other.clone(),
            };
            assert_eq!(comparable(&got), comparable(&want), "{line}");
        }
    }
}
