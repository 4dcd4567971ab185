//! Commands are values: a front door builds one, the store applies it, a [`Reply`] comes back.
//! One command per file, each with its apply and its tests.

mod count;
mod delete;
mod expire;
mod get;
mod list;
mod set;

pub use count::Count;
pub use delete::Delete;
pub use expire::Expire;
pub use get::Get;
pub use list::List;
pub use set::{ExpiryUpdate, Set};

use crate::entry::{Entry, Millis};
use crate::keyspace::Store;
use crate::reply::Reply;

/// Every operation the store understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Get(Get),
    Set(Set),
    Delete(Delete),
    Expire(Expire),
    List(List),
    Count(Count),
}

impl Command {
    /// Applies the command to `store` at time `now`.
    pub fn apply(self, store: &Store, now: Millis) -> Reply {
        match self {
            Command::Get(c) => c.apply(store, now),
            Command::Set(c) => c.apply(store, now),
            Command::Delete(c) => c.apply(store, now),
            Command::Expire(c) => c.apply(store, now),
            Command::List(c) => c.apply(store, now),
            Command::Count(c) => c.apply(store, now),
        }
    }
}

/// When a write may take effect, judged against the key's live entry under its shard lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Condition {
    /// Always.
    #[default]
    Always,
    /// Only when the key does not exist (HTTP `If-None-Match: *`, Redis `NX`).
    IfAbsent,
    /// Only when the key exists (Redis `XX`).
    IfPresent,
    /// Only when the key exists with exactly this version (HTTP `If-Match`).
    IfVersion(u64),
}

impl Condition {
    /// Whether the condition holds for the key's current live entry.
    pub fn holds(self, current: Option<&Entry>) -> bool {
        match self {
            Condition::Always => true,
            Condition::IfAbsent => current.is_none(),
            Condition::IfPresent => current.is_some(),
            Condition::IfVersion(v) => current.is_some_and(|e| e.version == v),
        }
    }
}
