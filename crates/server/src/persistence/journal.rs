//! The store's journal in a durable server: each record goes to the write-ahead log, and the
//! LSN it got is left for the engine on the same thread, so the command that produced it can
//! wait for that LSN before it is acknowledged.

use std::cell::Cell;
use std::sync::Arc;

use kvs_store::Journal;
use kvs_wal::Log;

/// What the last record appended on this thread became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Queued in the log with this LSN.
    Lsn(u64),
    /// The log refused it: it has failed.
    Refused,
}

thread_local! {
    static LAST: Cell<Option<Appended>> = const { Cell::new(None) };
}

/// Forgets what this thread appended so far; call before applying a command.
pub(crate) fn reset() {
    LAST.set(None);
}

/// What this thread appended since [`reset`]: the latest LSN, or a refusal if any append failed.
pub(crate) fn take() -> Option<Appended> {
    LAST.take()
}

#[derive(Debug)]
pub(crate) struct LogJournal {
    pub(crate) log: Arc<Log>,
}

impl Journal for LogJournal {
    fn append(&self, record: &[u8]) {
        let appended = match self.log.append(record) {
            Ok(lsn) => Appended::Lsn(lsn),
            Err(_) => Appended::Refused,
        };
        // A refusal sticks until the engine takes it; otherwise the latest LSN covers the rest.
        if LAST.get() != Some(Appended::Refused) {
            LAST.set(Some(appended));
        }
    }
}
