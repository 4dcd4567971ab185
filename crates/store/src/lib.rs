//! `kvs-store` owns the keyspace of kvs: keys and values as bytes, each value with its content
//! type, version, last-modified time and optional expiry, and the `Command`/`Reply` language that
//! every front door (HTTP, RESP, the line protocol) translates to and from.
//!
//! It is not a server: it opens no sockets or files, starts no threads and never reads the clock.
//! Every operation is given the current time (`now`, milliseconds since the Unix epoch) by its
//! caller, so tests control time exactly and the log can replay writes deterministically.
//!
//! Concurrency contract: the keyspace is split into shards, each behind its own reader-writer lock.
//! Readers never wait for readers; writers wait only for operations on the same shard. Every
//! per-key operation runs entirely under its shard's lock and is therefore linearizable.

mod access;
pub mod change;
mod command;
pub mod effects;
mod entry;
mod error;
mod keyspace;
mod listing;
mod packed;
mod pattern;
mod reply;
mod shard;
mod snapshot;

pub use access::{Call, Keyspace, Picked, Transaction, Writer};
pub use command::spec::{Category, Flag, KeySpec, Spec};
pub use command::{
    Append, Command, Condition, Copy, Count, Del, Delete, Exists, Expire, ExpireCondition,
    ExpireIf, ExpiryUpdate, Flush, Get, GetDel, GetEx, GetRange, IncrBy, IncrByFloat, Keys, List,
    MAX_VALUE_LEN, MGet, MSet, Object, ObjectQuery, Persist, RandomKey, Rename, Set, SetRange,
    SetReply, Strlen, Ttl, TtlForm, TypeOf, parse_integer,
};
pub use command::{Applied, Watched};
pub use command::{data_spec, data_specs};
pub use effects::{Change, Commit, Effects, Removal, Ticket};
pub use entry::{DEFAULT_CONTENT_TYPE, Entry, KeyInfo, Millis};
pub use error::CommandError;
pub use keyspace::{DEFAULT_SHARDS, Store};
pub use listing::Page;
pub use packed::{EntryRef, INLINE_MAX};
pub use pattern::glob_match;
pub use reply::Reply;
pub use shard::Shard;
