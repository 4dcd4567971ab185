//! Recording what writes change, for a durable log. A store given a [`Journal`] hands it one
//! record per lock scope (one command on the store, or one whole `MULTI`/`EXEC` block) while the
//! shard locks of every changed key are still held, so for each key the journal receives records
//! in the order the changes were applied, and a block's changes arrive as one record: replay
//! applies all of them or none.
//!
//! A record holds effects, never commands: the entry a key ended up with (value, content type,
//! version, modification time, absolute expiry), or its removal, or the removal of every key.
//! Replaying the same records therefore always yields the same keyspace, whatever the clock says.
//!
//! Changes are gathered in a buffer of the writing thread while its scope runs; a scope never
//! spans an `await`, since commands apply synchronously.

use std::cell::RefCell;

use bytes::Bytes;

use crate::change;
use crate::entry::Entry;

/// Where a durable store sends its records.
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Takes one record (see [`crate::change`] for its layout). Called with the shard locks of
    /// every key it changes held, so it must be quick and must not take those locks itself.
    fn append(&self, record: &[u8]);
}

#[derive(Default)]
struct Capture {
    /// Nesting depth of open scopes on this thread; changes are noted only inside one.
    depth: u32,
    buf: Vec<u8>,
}

thread_local! {
    static CAPTURE: RefCell<Capture> = RefCell::new(Capture::default());
}

/// Opens a capture scope on this thread.
pub(crate) fn begin() {
    CAPTURE.with_borrow_mut(|c| {
        if c.depth == 0 {
            c.buf.clear();
            // Room for the revision, filled in when the scope closes.
            c.buf.extend_from_slice(&[0; 8]);
        }
        c.depth += 1;
    });
}

/// Closes the scope opened by the matching [`begin`]. When the outermost scope closes and it
/// noted changes, hands `journal` one record stamped with `revision`.
pub(crate) fn end(journal: &dyn Journal, revision: u64) {
    CAPTURE.with_borrow_mut(|c| {
        c.depth = c.depth.saturating_sub(1);
        if c.depth == 0 && c.buf.len() > 8 {
            c.buf[..8].copy_from_slice(&revision.to_le_bytes());
            journal.append(&c.buf);
            c.buf.clear();
            if c.buf.capacity() > 1 << 20 {
                c.buf = Vec::new();
            }
        }
    });
}

fn note(f: impl FnOnce(&mut Vec<u8>)) {
    CAPTURE.with_borrow_mut(|c| {
        if c.depth > 0 {
            f(&mut c.buf);
        }
    });
}

/// Notes that `key` now holds `entry`.
pub(crate) fn put(key: &Bytes, entry: &Entry) {
    note(|buf| change::encode_put(buf, key, entry.view()));
}

/// Notes that `key` was removed.
pub(crate) fn remove(key: &[u8]) {
    note(|buf| change::encode_remove(buf, key));
}

/// Notes that every key was removed.
pub(crate) fn clear() {
    note(change::encode_clear);
}
