//! The one answer language of the store; each front door encodes it its own way.

use bytes::Bytes;

use crate::collection::Score;
use crate::entry::Entry;
use crate::error::CommandError;
use crate::listing::Page;

/// What a [`crate::Command`] produced. The first group carries structure (HTTP builds headers from
/// it); the second is shaped like Redis replies, for commands whose answer is a plain value.
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
    ConditionFailed {
        current: Option<u64>,
    },
    /// The expiry of an existing key changed; the key now has `version`.
    ExpirySet {
        version: u64,
    },
    /// One page of a listing.
    Page(Page),
    /// A number of keys.
    Count(u64),

    /// Success with nothing to return (`+OK`).
    Ok,
    /// No value (`nil`).
    Nil,
    Integer(i64),
    Bulk(Bytes),
    /// A short status word such as `string` or `none`.
    Status(&'static str),
    Array(Vec<Reply>),
    /// Pairs: a map in RESP3, a flat array of keys and values in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// Pairs that may repeat: an array of two-element arrays in RESP3, a flat array in RESP2.
    Pairs(Vec<(Reply, Reply)>),
    /// Keys each with its group of items (XREAD): a map in RESP3, an array of two-element
    /// arrays in RESP2.
    Grouped(Vec<(Reply, Reply)>),
    /// Members of a set: a set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// A double: a double in RESP3, its text (as Redis 7.0 writes it) in RESP2.
    Double(Score),
    /// No array (`*-1` in RESP2): what a blocking pop answers when it times out.
    NilArray,
    /// The command was refused; nothing changed.
    Error(CommandError),
}

impl From<CommandError> for Reply {
    fn from(e: CommandError) -> Self {
        Reply::Error(e)
    }
}

impl From<Option<Bytes>> for Reply {
    fn from(v: Option<Bytes>) -> Self {
        v.map_or(Reply::Nil, Reply::Bulk)
    }
}
