//! Commands are values: a front door builds one, the store applies it, a [`Reply`] comes back.
//! One command per file, each with its apply and its tests.

mod append;
mod copy;
mod count;
mod del;
mod delete;
mod execute;
mod exists;
mod expire;
mod expire_if;
mod flush;
mod get;
mod getdel;
mod getex;
mod getrange;
mod incr;
mod incrbyfloat;
mod keys;
mod list;
mod mget;
mod mset;
mod object;
mod parse;
mod persist;
mod randomkey;
mod rename;
mod scan;
mod set;
mod setrange;
mod strlen;
mod ttl;
mod type_of;

pub use append::{Append, MAX_VALUE_LEN};
pub use copy::Copy;
pub use count::Count;
pub use del::Del;
pub use delete::Delete;
pub use execute::{Applied, Watched};
pub use exists::Exists;
pub use expire::Expire;
pub use expire_if::{ExpireCondition, ExpireIf};
pub use flush::Flush;
pub use get::Get;
pub use getdel::GetDel;
pub use getex::GetEx;
pub use getrange::GetRange;
pub use incr::IncrBy;
pub use incrbyfloat::IncrByFloat;
pub use keys::Keys;
pub use list::List;
pub use mget::MGet;
pub use mset::MSet;
pub use object::{Object, ObjectQuery};
pub use parse::int as parse_integer;
pub use persist::Persist;
pub use randomkey::RandomKey;
pub use rename::Rename;
pub use scan::Scan;
pub use set::{ExpiryUpdate, Set, SetReply};
pub use setrange::SetRange;
pub use strlen::Strlen;
pub use ttl::{Ttl, TtlForm};
pub use type_of::TypeOf;

use crate::access::Keyspace;
use crate::entry::Millis;
use crate::packed::EntryRef;
use crate::reply::Reply;

/// Every operation the store understands.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Get(Get),
    Set(Set),
    Delete(Delete),
    Expire(Expire),
    List(List),
    Count(Count),
    GetDel(GetDel),
    GetEx(GetEx),
    Append(Append),
    Strlen(Strlen),
    GetRange(GetRange),
    SetRange(SetRange),
    IncrBy(IncrBy),
    IncrByFloat(IncrByFloat),
    MGet(MGet),
    MSet(MSet),
    Del(Del),
    Exists(Exists),
    ExpireIf(ExpireIf),
    Ttl(Ttl),
    Persist(Persist),
    TypeOf(TypeOf),
    Flush(Flush),
    Keys(Keys),
    Rename(Rename),
    Copy(Copy),
    RandomKey(RandomKey),
    Object(Object),
    Scan(Scan),
}

impl Command {
    /// Applies the command at time `now`, to the store or inside a transaction.
    pub fn apply<K: Keyspace>(self, ks: &K, now: Millis) -> Reply {
        match self {
            Command::Get(c) => c.apply(ks, now),
            Command::Set(c) => c.apply(ks, now),
            Command::Delete(c) => c.apply(ks, now),
            Command::Expire(c) => c.apply(ks, now),
            Command::List(c) => c.apply(ks, now),
            Command::Count(c) => c.apply(ks, now),
            Command::GetDel(c) => c.apply(ks, now),
            Command::GetEx(c) => c.apply(ks, now),
            Command::Append(c) => c.apply(ks, now),
            Command::Strlen(c) => c.apply(ks, now),
            Command::GetRange(c) => c.apply(ks, now),
            Command::SetRange(c) => c.apply(ks, now),
            Command::IncrBy(c) => c.apply(ks, now),
            Command::IncrByFloat(c) => c.apply(ks, now),
            Command::MGet(c) => c.apply(ks, now),
            Command::MSet(c) => c.apply(ks, now),
            Command::Del(c) => c.apply(ks, now),
            Command::Exists(c) => c.apply(ks, now),
            Command::ExpireIf(c) => c.apply(ks, now),
            Command::Ttl(c) => c.apply(ks, now),
            Command::Persist(c) => c.apply(ks, now),
            Command::TypeOf(c) => c.apply(ks, now),
            Command::Flush(c) => c.apply(ks, now),
            Command::Keys(c) => c.apply(ks, now),
            Command::Rename(c) => c.apply(ks, now),
            Command::Copy(c) => c.apply(ks, now),
            Command::RandomKey(c) => c.apply(ks, now),
            Command::Object(c) => c.apply(ks, now),
            Command::Scan(c) => c.apply(ks, now),
        }
    }
}

impl Command {
    /// Whether the command may change the keyspace. A server that cannot record changes
    /// refuses these and still serves the rest.
    pub fn writes(&self) -> bool {
        match self {
            Command::Get(_)
            | Command::List(_)
            | Command::Count(_)
            | Command::Strlen(_)
            | Command::GetRange(_)
            | Command::MGet(_)
            | Command::Exists(_)
            | Command::Ttl(_)
            | Command::TypeOf(_)
            | Command::Keys(_)
            | Command::RandomKey(_)
            | Command::Object(_)
            | Command::Scan(_) => false,
            Command::Set(_)
            | Command::Delete(_)
            | Command::Expire(_)
            | Command::GetDel(_)
            | Command::GetEx(_)
            | Command::Append(_)
            | Command::SetRange(_)
            | Command::IncrBy(_)
            | Command::IncrByFloat(_)
            | Command::MSet(_)
            | Command::Del(_)
            | Command::ExpireIf(_)
            | Command::Persist(_)
            | Command::Flush(_)
            | Command::Rename(_)
            | Command::Copy(_) => true,
        }
    }

    /// The keys this command touches, so a transaction can lock their shards up front; `None`
    /// when it touches the whole keyspace (listing, counting, KEYS, FLUSHALL, RANDOMKEY).
    pub fn keys(&self) -> Option<Vec<&[u8]>> {
        fn one(k: &bytes::Bytes) -> Option<Vec<&[u8]>> {
            Some(vec![&k[..]])
        }
        match self {
            Command::Get(c) => one(&c.key),
            Command::Set(c) => one(&c.key),
            Command::Delete(c) => one(&c.key),
            Command::Expire(c) => one(&c.key),
            Command::GetDel(c) => one(&c.key),
            Command::GetEx(c) => one(&c.key),
            Command::Append(c) => one(&c.key),
            Command::Strlen(c) => one(&c.key),
            Command::GetRange(c) => one(&c.key),
            Command::SetRange(c) => one(&c.key),
            Command::IncrBy(c) => one(&c.key),
            Command::IncrByFloat(c) => one(&c.key),
            Command::ExpireIf(c) => one(&c.key),
            Command::Ttl(c) => one(&c.key),
            Command::Persist(c) => one(&c.key),
            Command::TypeOf(c) => one(&c.key),
            Command::Object(c) => one(&c.key),
            Command::MGet(c) => Some(c.keys.iter().map(|k| &k[..]).collect()),
            Command::Del(c) => Some(c.keys.iter().map(|k| &k[..]).collect()),
            Command::Exists(c) => Some(c.keys.iter().map(|k| &k[..]).collect()),
            Command::MSet(c) => Some(c.pairs.iter().map(|(k, _)| &k[..]).collect()),
            Command::Rename(c) => Some(vec![&c.from[..], &c.to[..]]),
            Command::Copy(c) => Some(vec![&c.from[..], &c.to[..]]),
            Command::List(_)
            | Command::Count(_)
            | Command::Flush(_)
            | Command::Keys(_)
            | Command::RandomKey(_)
            | Command::Scan(_) => None,
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
    pub fn holds(self, current: Option<EntryRef<'_>>) -> bool {
        match self {
            Condition::Always => true,
            Condition::IfAbsent => current.is_none(),
            Condition::IfPresent => current.is_some(),
            Condition::IfVersion(v) => current.is_some_and(|e| e.version == v),
        }
    }
}
