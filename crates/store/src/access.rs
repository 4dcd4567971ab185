//! How commands reach shards, and how their writes become effects. A command is written once
//! against [`Keyspace`] and runs on one of two handles:
//!
//! - a [`Call`] on the [`Store`], where each access takes the shard locks it needs for as long as
//!   it needs them, and each write scope's effects are submitted before its locks are released;
//! - a [`Transaction`], which already holds the write locks of every shard a `MULTI`/`EXEC` block
//!   touches, gathers the whole block's effects and submits them as one when it commits.
//!
//! Either way writes go through a [`Writer`], which notes every change as an effect, and the
//! handle returns the pipeline's [`Ticket`] to its caller: nothing is carried on the side.
//!
//! Whenever several shards are locked at once they are locked in ascending index order, the one
//! order every multi-shard lock in kvs follows, so no two of them can deadlock.

use std::cell::{Cell, RefCell};
use std::ops::Deref;

use bytes::Bytes;
use parking_lot::RwLockWriteGuard;

use crate::collection::Edit;
use crate::effects::{Event, Noted, Removal, Ticket};
use crate::entry::{Entry, Millis, Value};
use crate::error::CommandError;
use crate::keyspace::Store;
use crate::packed::{EntryRef, Packed};
use crate::shard::{Edited, Shard};

/// Access to shards for one command. Implemented by [`Call`], [`Transaction`] and, for a store
/// without a commit pipeline (tests, tools), by [`Store`] itself.
pub trait Keyspace {
    /// The store these shards belong to.
    fn store(&self) -> &Store;
    /// Runs `f` on the shard of `key`, for reading.
    fn read<R>(&self, key: &[u8], f: impl FnOnce(&Shard) -> R) -> R;
    /// Runs `f` on shard number `index` (below the store's shard count), for reading.
    fn read_index<R>(&self, index: usize, f: impl FnOnce(&Shard) -> R) -> R;
    /// Runs `f` on the shard of `key`, for writing.
    fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Writer<'_>) -> R) -> R;
    /// Runs `f` with the shards of all `keys` held at once, for reading.
    fn read_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&Picked<'_, &Shard>) -> R) -> R;
    /// Runs `f` with the shards of all `keys` held at once, for writing.
    fn write_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Picked<'_, Writer<'_>>) -> R) -> R;
    /// Runs `f` with every shard held, in index order, for reading.
    fn read_every<R>(&self, f: impl FnOnce(&[&Shard]) -> R) -> R;
    /// Runs `f` with every shard held, in index order, for writing.
    fn write_every<R>(&self, f: impl FnOnce(&mut [Writer<'_>]) -> R) -> R;
    /// The next version. Call it only while holding the written key's shard for writing.
    fn next_version(&self) -> u64 {
        self.store().next_version()
    }
}

/// A shard held for writing. Reads go straight to the shard (it dereferences to one); every
/// change goes through here and is noted as an effect of the command.
#[derive(Debug)]
pub struct Writer<'a> {
    shard: &'a mut Shard,
    noted: &'a Noted,
}

impl Deref for Writer<'_> {
    type Target = Shard;

    fn deref(&self) -> &Shard {
        self.shard
    }
}

impl Writer<'_> {
    /// [`Shard::update`], noting the entry written.
    pub(crate) fn update<E>(
        &mut self,
        key: &Bytes,
        now: Millis,
        decide: impl FnOnce(Option<EntryRef<'_>>) -> Result<Entry, E>,
    ) -> Result<Option<Packed>, E> {
        let noted = self.noted;
        self.shard.update(key, now, |current| {
            let created = current.is_none();
            let same = current.and_then(|c| c.collection());
            let entry = decide(current)?;
            if created {
                noted.event(Event::New, key);
            }
            match (same, &entry.value) {
                // The same collection with new metadata: logged without its elements.
                (Some(a), Value::Collection(b)) if std::sync::Arc::ptr_eq(a, b) => {
                    noted.restamp(key, &entry)
                }
                _ => noted.put(key, &entry),
            }
            Ok(entry)
        })
    }

    /// Applies `edit` to the collection under `key` (creating it on a missing key) and gives the
    /// key `version`; notes the edit. WRONGTYPE if the key holds another type.
    pub(crate) fn edit(
        &mut self,
        key: &Bytes,
        now: Millis,
        version: u64,
        edit: Edit,
    ) -> Result<Edited, CommandError> {
        let done = self.shard.edit(key, now, version, now, &edit, false)?;
        if done.created && !done.removed {
            self.noted.event(Event::New, key);
        }
        if done.created && done.removed {
            // Nothing was held and nothing is: no change to note.
            return Ok(done);
        }
        self.noted.edit(key, version, now, edit);
        Ok(done)
    }

    /// Stores `entry` under `key`, replacing whatever was there; returns the previous entry
    /// (which may be an expired one the caller must treat as absent).
    pub(crate) fn put(&mut self, key: Bytes, entry: Entry, now: Millis) -> Option<Packed> {
        self.noted.put(&key, &entry);
        let old = self.shard.put(key.clone(), entry);
        if old.as_ref().is_none_or(|o| !o.is_live(now)) {
            self.noted.event(Event::New, &key);
        }
        old
    }

    /// Notes that the command raised `event` on `key` (keyspace notifications).
    pub(crate) fn event(&self, event: Event, key: &[u8]) {
        self.noted.event(event, key);
    }

    /// Removes `key` and returns its entry, expired or not.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Packed> {
        let old = self.shard.remove(key)?;
        self.noted.remove(key, Removal::Deleted);
        Some(old)
    }

    /// Removes every key of every shard in `shards`, which must be all of `store`'s. The entries
    /// are left to [`Store::take_garbage`] to free, so the locks are held only to swap tables.
    pub(crate) fn clear_all(store: &Store, shards: &mut [Writer<'_>]) {
        for w in shards.iter_mut() {
            store.defer_free(w.shard.take_all());
        }
        if let Some(first) = shards.first() {
            first.noted.flush();
        }
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

impl<'w> Picked<'_, Writer<'w>> {
    /// The shard of `key`; `None` only if `key` was not among the keys asked for.
    pub(crate) fn shard(&mut self, key: &[u8]) -> Option<&mut Writer<'w>> {
        self.position(key).map(|i| &mut self.shards[i])
    }
}

/// Distinct shard indices of `keys`, ascending.
pub(crate) fn indices_of(store: &Store, keys: &[&[u8]]) -> Vec<usize> {
    let mut indices: Vec<usize> = keys.iter().map(|k| store.shard_index(k)).collect();
    indices.sort_unstable();
    indices.dedup();
    indices
}

/// One command's handle on the store: locks as each access needs them, notes the effects of
/// each write scope and submits them to the store's pipeline before that scope's locks are
/// released. [`Call::finish`] gives the ticket that covers every submission.
#[derive(Debug)]
pub struct Call<'s> {
    store: &'s Store,
    noted: Noted,
    ticket: Cell<Option<Ticket>>,
}

impl<'s> Call<'s> {
    pub fn new(store: &'s Store) -> Self {
        Self {
            store,
            noted: Noted::new(),
            ticket: Cell::new(None),
        }
    }

    /// Submits what was noted. Call it while the locks of the changed keys are held.
    fn submit(&self) {
        if let Some(effects) = self.noted.take(self.store.revision())
            && let Some(ticket) = self.store.submit(&effects)
        {
            self.ticket
                .set(Ticket::join(self.ticket.get(), Some(ticket)));
        }
    }

    /// What the command's writes wait for; `None` when it wrote nothing.
    pub fn finish(self) -> Option<Ticket> {
        self.ticket.get()
    }
}

impl Keyspace for Call<'_> {
    fn store(&self) -> &Store {
        self.store
    }

    fn read<R>(&self, key: &[u8], f: impl FnOnce(&Shard) -> R) -> R {
        f(&self.store.shard_at(self.store.shard_index(key)).read())
    }

    fn read_index<R>(&self, index: usize, f: impl FnOnce(&Shard) -> R) -> R {
        f(&self.store.shard_at(index).read())
    }

    fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Writer<'_>) -> R) -> R {
        let mut guard = self.store.shard_at(self.store.shard_index(key)).write();
        self.noted.arm(self.store.noting(), self.store.notifying());
        let out = f(&mut Writer {
            shard: &mut guard,
            noted: &self.noted,
        });
        self.submit();
        out
    }

    fn read_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&Picked<'_, &Shard>) -> R) -> R {
        let indices = indices_of(self.store, keys);
        let guards: Vec<_> = indices
            .iter()
            .map(|&i| self.store.shard_at(i).read())
            .collect();
        let shards = guards.iter().map(|g| &**g).collect();
        f(&Picked {
            store: self.store,
            indices,
            shards,
        })
    }

    fn write_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Picked<'_, Writer<'_>>) -> R) -> R {
        let indices = indices_of(self.store, keys);
        let mut guards: Vec<_> = indices
            .iter()
            .map(|&i| self.store.shard_at(i).write())
            .collect();
        self.noted.arm(self.store.noting(), self.store.notifying());
        let shards = guards
            .iter_mut()
            .map(|g| Writer {
                shard: g,
                noted: &self.noted,
            })
            .collect();
        let out = f(&mut Picked {
            store: self.store,
            indices,
            shards,
        });
        self.submit();
        out
    }

    fn read_every<R>(&self, f: impl FnOnce(&[&Shard]) -> R) -> R {
        let guards: Vec<_> = (0..self.store.shard_count())
            .map(|i| self.store.shard_at(i).read())
            .collect();
        let shards: Vec<&Shard> = guards.iter().map(|g| &**g).collect();
        f(&shards)
    }

    fn write_every<R>(&self, f: impl FnOnce(&mut [Writer<'_>]) -> R) -> R {
        let mut guards: Vec<_> = (0..self.store.shard_count())
            .map(|i| self.store.shard_at(i).write())
            .collect();
        self.noted.arm(self.store.noting(), self.store.notifying());
        let mut shards: Vec<Writer<'_>> = guards
            .iter_mut()
            .map(|g| Writer {
                shard: g,
                noted: &self.noted,
            })
            .collect();
        let out = f(&mut shards);
        self.submit();
        out
    }
}

/// A store with no commit pipeline is its own handle: each access is a [`Call`] of its own. A
/// durable store must be driven through a [`Call`] (or [`Store::apply`]), whose ticket its caller
/// waits for; here the ticket would be dropped.
impl Keyspace for Store {
    fn store(&self) -> &Store {
        self
    }

    fn read<R>(&self, key: &[u8], f: impl FnOnce(&Shard) -> R) -> R {
        Call::new(self).read(key, f)
    }

    fn read_index<R>(&self, index: usize, f: impl FnOnce(&Shard) -> R) -> R {
        Call::new(self).read_index(index, f)
    }

    fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Writer<'_>) -> R) -> R {
        debug_assert!(!self.noting(), "a durable store written without its ticket");
        Call::new(self).write(key, f)
    }

    fn read_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&Picked<'_, &Shard>) -> R) -> R {
        Call::new(self).read_keys(keys, f)
    }

    fn write_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Picked<'_, Writer<'_>>) -> R) -> R {
        debug_assert!(!self.noting(), "a durable store written without its ticket");
        Call::new(self).write_keys(keys, f)
    }

    fn read_every<R>(&self, f: impl FnOnce(&[&Shard]) -> R) -> R {
        Call::new(self).read_every(f)
    }

    fn write_every<R>(&self, f: impl FnOnce(&mut [Writer<'_>]) -> R) -> R {
        debug_assert!(!self.noting(), "a durable store written without its ticket");
        Call::new(self).write_every(f)
    }
}

/// The write locks of a set of shards, held while a block of commands runs (`MULTI`/`EXEC`).
/// Other clients' operations on those shards wait until it is dropped; operations on other
/// shards go on. Commands run inside it may only touch the shards it was opened for. The block's
/// effects are submitted as one, under those locks, by [`Transaction::commit`] (or, should the
/// transaction be dropped without it, on drop, so the pipeline never misses a change).
#[derive(Debug)]
pub struct Transaction<'a> {
    store: &'a Store,
    noted: Noted,
    committed: bool,
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
        let noted = Noted::new();
        noted.arm(store.noting(), store.notifying());
        Self {
            store,
            noted,
            committed: false,
            held,
        }
    }

    /// Sets the server state `name` kept beside the keyspace to `value` (see [`Store::meta`]):
    /// it is logged with the transaction's other changes, as one record. Only a transaction
    /// holding every shard may, so that no other change can come between.
    pub fn set_meta(&self, name: Bytes, value: Bytes) {
        assert!(
            self.held.iter().all(Option::is_some),
            "server state is set only by a transaction over every shard"
        );
        self.noted.meta(&name, &value);
        self.store.put_meta(name, value);
    }

    /// Submits the block's effects as one, still under its locks, then releases them. Returns
    /// what the block's replies wait for; `None` when it wrote nothing.
    pub fn commit(mut self) -> Option<Ticket> {
        self.committed = true;
        self.submit()
    }

    fn submit(&self) -> Option<Ticket> {
        let effects = self.noted.take(self.store.revision())?;
        self.store.submit(&effects)
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

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // Runs before the guards in `held` are released.
        if !self.committed {
            let _ = self.submit();
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

    fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Writer<'_>) -> R) -> R {
        let mut guard = self.slot(self.store.shard_index(key)).borrow_mut();
        f(&mut Writer {
            shard: &mut guard,
            noted: &self.noted,
        })
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

    fn write_keys<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Picked<'_, Writer<'_>>) -> R) -> R {
        let indices = indices_of(self.store, keys);
        let mut borrows: Vec<_> = indices.iter().map(|&i| self.slot(i).borrow_mut()).collect();
        let shards = borrows
            .iter_mut()
            .map(|b| Writer {
                shard: b,
                noted: &self.noted,
            })
            .collect();
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

    fn write_every<R>(&self, f: impl FnOnce(&mut [Writer<'_>]) -> R) -> R {
        let mut borrows: Vec<_> = (0..self.held.len())
            .map(|i| self.slot(i).borrow_mut())
            .collect();
        let mut shards: Vec<Writer<'_>> = borrows
            .iter_mut()
            .map(|b| Writer {
                shard: b,
                noted: &self.noted,
            })
            .collect();
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
