//! What a write did, as values: the effects a command (or a whole `MULTI`/`EXEC` block) leaves
//! behind, and the commit pipeline they are handed to.
//!
//! A write never reaches the log, a watcher or a replica as a command ("INCR k"); it reaches them
//! as its effects: the entry each key now holds, the keys removed and why, or the removal of
//! every key, stamped with the store's revision. Replaying the same effects always rebuilds the
//! same keyspace, whatever the clock says.
//!
//! Effects are gathered by the keyspace handle a command runs on (see [`crate::access`]) and
//! submitted to the store's [`Commit`] pipeline while the shard locks of every key they touch are
//! still held, so for each key the pipeline receives changes in the order they were applied. The
//! pipeline answers with a [`Ticket`]; whoever answers the client waits for that ticket to be
//! durable first. Nothing travels through thread-locals: the effects and the ticket are returned.

use std::cell::{Cell, RefCell};

use bytes::Bytes;

use crate::collection::Edit;
use crate::entry::{Entry, Millis};

/// Why a key stopped existing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// A client deleted it (DEL, GETDEL, DELETE over HTTP, RENAME's source, ...).
    Deleted,
    /// Its expiry passed and the store reclaimed it.
    Expired,
    /// The memory limit pushed it out.
    Evicted,
}

/// One change to the keyspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The key now holds this entry (created or replaced).
    Put(Bytes, Entry),
    /// The key was removed.
    Remove(Bytes, Removal),
    /// Every key was removed (FLUSHALL).
    Flush,
    /// The collection under the key changed by `edit` (created by it, if the key was absent),
    /// making its version `version` at `modified_at`.
    Edit {
        key: Bytes,
        version: u64,
        modified_at: Millis,
        edit: Edit,
    },
    /// The collection under the key kept its contents and got this metadata (EXPIRE, PERSIST):
    /// logged without the elements.
    Restamp {
        key: Bytes,
        version: u64,
        modified_at: Millis,
        expires_at: Option<Millis>,
    },
    /// More elements of a collection a snapshot is carrying, after its put: applied whatever the
    /// key's version.
    Extend(Bytes, Edit),
    /// Server state kept beside the keyspace, under its name, now holds this value (the
    /// scripting engine's function libraries). Not a key: no feed shows it.
    Meta(Bytes, Bytes),
}

impl Change {
    /// The key it changes; `None` for a flush.
    pub fn key(&self) -> Option<&Bytes> {
        match self {
            Change::Put(key, _)
            | Change::Remove(key, _)
            | Change::Edit { key, .. }
            | Change::Restamp { key, .. }
            | Change::Extend(key, _) => Some(key),
            Change::Flush | Change::Meta(..) => None,
        }
    }
}

/// A keyspace event a command raised, named as Redis names it (keyspace notifications). Expiries
/// and evictions are not listed here: their [`Removal`]s say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key did not exist before this write (Redis's `new`, flag `n`).
    New,
    Set,
    Append,
    Setrange,
    Setbit,
    Incrby,
    Incrbyfloat,
    Del,
    Expire,
    Persist,
    RenameFrom,
    RenameTo,
    CopyTo,
    /// A hash command's event (`hset`, `hdel`, `hincrby`, ...).
    Hashes(&'static str),
    /// A list command's event (`lpush`, `rpop`, `linsert`, ...).
    Lists(&'static str),
    /// A set command's event (`sadd`, `srem`, `spop`, ...).
    Sets(&'static str),
    /// A sorted set command's event (`zadd`, `zincr`, `zrem`, ...).
    Sorted(&'static str),
    /// A stream command's event (`xadd`, `xtrim`, `xdel`, `xsetid`).
    Streams(&'static str),
    /// A store command's result replaced the key (`sinterstore`, `sortstore`, ...).
    Stored(&'static str),
}

impl Event {
    /// Redis's name for it, as it appears on `__keyevent@0__:<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Event::New => "new",
            Event::Set => "set",
            Event::Append => "append",
            Event::Setrange => "setrange",
            Event::Setbit => "setbit",
            Event::Incrby => "incrby",
            Event::Incrbyfloat => "incrbyfloat",
            Event::Del => "del",
            Event::Expire => "expire",
            Event::Persist => "persist",
            Event::RenameFrom => "rename_from",
            Event::RenameTo => "rename_to",
            Event::CopyTo => "copy_to",
            Event::Hashes(n)
            | Event::Lists(n)
            | Event::Sets(n)
            | Event::Sorted(n)
            | Event::Streams(n)
            | Event::Stored(n) => n,
        }
    }
}

/// The changes of one command or one block, applied at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// The store's revision when the changes were submitted: at least the version of every entry
    /// they put, so versions continue above it after a restart.
    pub revision: u64,
    pub changes: Vec<Change>,
    /// The keyspace events the commands raised, in order, with their keys. Noted only while
    /// someone listens for them ([`crate::Store::set_notifying`]); never written to the log.
    pub events: Vec<(Event, Bytes)>,
}

/// A place in the commit pipeline: what a reply waits for before it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticket {
    /// Queued with this sequence number; durable once the pipeline says so.
    Queued(u64),
    /// The pipeline refused the changes (its log has failed): they are in memory only and the
    /// write must be answered with an error.
    Refused,
}

impl Ticket {
    /// The ticket that covers both: the later one, or a refusal if either was refused.
    pub fn and(self, other: Ticket) -> Ticket {
        match (self, other) {
            (Ticket::Queued(a), Ticket::Queued(b)) => Ticket::Queued(a.max(b)),
            _ => Ticket::Refused,
        }
    }

    /// [`Ticket::and`] over optional tickets.
    pub fn join(a: Option<Ticket>, b: Option<Ticket>) -> Option<Ticket> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.and(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Where a store sends the effects of its writes: the write-ahead log in a durable server.
pub trait Commit: Send + Sync + std::fmt::Debug {
    /// Takes `effects` and says where they stand in the pipeline. Called with the shard locks of
    /// every key they change held, so it must be quick, must not wait for I/O and must not touch
    /// the store.
    fn submit(&self, effects: &Effects) -> Ticket;
}

/// The changes a keyspace handle has noted and not yet submitted.
///
/// A handle arms it each time it takes the locks of a write scope, with whether the store notes
/// effects at that moment: a store with no pipeline (or whose pipeline nobody listens to yet) notes
/// nothing, and a write costs nothing extra. Deciding once per scope, under its locks, means a
/// scope's changes are noted all or none (see [`crate::Store::start_noting`]).
#[derive(Debug, Default)]
pub(crate) struct Noted {
    changes: RefCell<Vec<Change>>,
    events: RefCell<Vec<(Event, Bytes)>>,
    armed: Cell<bool>,
    /// Keyspace events are noted too.
    notify: Cell<bool>,
}

impl Noted {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Whether the scope whose locks were just taken notes its changes, and its events.
    pub(crate) fn arm(&self, on: bool, notify: bool) {
        self.armed.set(on);
        self.notify.set(on && notify);
    }

    /// Notes that a command raised `event` on `key`.
    pub(crate) fn event(&self, event: Event, key: &[u8]) {
        if self.notify.get() {
            self.events
                .borrow_mut()
                .push((event, Bytes::copy_from_slice(key)));
        }
    }

    /// Notes that `key` now holds `entry`.
    pub(crate) fn put(&self, key: &Bytes, entry: &Entry) {
        if self.armed.get() {
            self.changes
                .borrow_mut()
                .push(Change::Put(key.clone(), entry.clone()));
        }
    }

    /// Notes that the collection under `key` changed by `edit`.
    pub(crate) fn edit(&self, key: &Bytes, version: u64, modified_at: Millis, edit: Edit) {
        if self.armed.get() {
            self.changes.borrow_mut().push(Change::Edit {
                key: key.clone(),
                version,
                modified_at,
                edit,
            });
        }
    }

    /// Notes that the collection under `key` has new metadata and the same elements.
    pub(crate) fn restamp(&self, key: &Bytes, entry: &Entry) {
        if self.armed.get() {
            self.changes.borrow_mut().push(Change::Restamp {
                key: key.clone(),
                version: entry.version,
                modified_at: entry.modified_at,
                expires_at: entry.expires_at,
            });
        }
    }

    /// Notes that `key` was removed.
    pub(crate) fn remove(&self, key: &[u8], why: Removal) {
        if self.armed.get() {
            self.changes
                .borrow_mut()
                .push(Change::Remove(Bytes::copy_from_slice(key), why));
        }
    }

    /// Notes that the server state `name` now holds `value`.
    pub(crate) fn meta(&self, name: &Bytes, value: &Bytes) {
        if self.armed.get() {
            self.changes
                .borrow_mut()
                .push(Change::Meta(name.clone(), value.clone()));
        }
    }

    /// Notes that every key was removed; earlier changes to keys no longer matter.
    pub(crate) fn flush(&self) {
        if self.armed.get() {
            let mut changes = self.changes.borrow_mut();
            changes.retain(|c| matches!(c, Change::Meta(..)));
            changes.push(Change::Flush);
        }
    }

    /// Takes what was noted since the last call, stamped with `revision`; `None` if nothing.
    pub(crate) fn take(&self, revision: u64) -> Option<Effects> {
        let changes = std::mem::take(&mut *self.changes.borrow_mut());
        let events = std::mem::take(&mut *self.events.borrow_mut());
        (!changes.is_empty()).then_some(Effects {
            revision,
            changes,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_combine_to_the_later_and_refusal_wins() {
        let (a, b) = (Ticket::Queued(3), Ticket::Queued(7));
        assert_eq!(a.and(b), Ticket::Queued(7));
        assert_eq!(b.and(a), Ticket::Queued(7));
        assert_eq!(a.and(Ticket::Refused), Ticket::Refused);
        assert_eq!(Ticket::join(None, Some(a)), Some(a));
        assert_eq!(Ticket::join(None, None), None);
    }

    #[test]
    fn nothing_is_noted_unless_armed() {
        let off = Noted::new();
        off.remove(b"k", Removal::Deleted);
        off.event(Event::Del, b"k");
        assert_eq!(off.take(1), None);
        let on = Noted::new();
        on.arm(true, true);
        on.remove(b"k", Removal::Deleted);
        on.event(Event::Del, b"k");
        on.flush();
        assert_eq!(
            on.take(4),
            Some(Effects {
                revision: 4,
                changes: vec![Change::Flush],
                events: vec![(Event::Del, Bytes::from_static(b"k"))],
            })
        );
        let quiet = Noted::new();
        quiet.arm(true, false);
        quiet.remove(b"k", Removal::Deleted);
        quiet.event(Event::Del, b"k");
        assert_eq!(
            quiet.take(2).map(|e| e.events.len()),
            Some(0),
            "events only when notifying"
        );
        assert_eq!(on.take(5), None, "taken once");
    }
}
