//! The one answer language of the store; each front door encodes it its own way.

use crate::entry::Entry;
use crate::listing::Page;

/// What a [`crate::Command`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The live entry under the key.
    Value(Entry),
    /// No live entry under the key.
    NotFound,
    /// A write took effect with `version`; `created` tells whether the key was absent before.
    Stored {
        version: u64,
        created: bool,
        /// The live entry the write replaced, if any.
        previous: Option<Entry>,
    },
    /// The key was deleted; this was its entry.
    Deleted(Entry),
    /// A conditional write was refused. `current` is the version the key has now, if it exists.
    ConditionFailed { current: Option<u64> },
    /// The expiry of an existing key changed; the key now has `version`.
    ExpirySet { version: u64 },
    /// One page of a listing.
    Page(Page),
    /// A number of keys.
    Count(u64),
}
