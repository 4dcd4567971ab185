use bytes::Bytes;

use super::Definition;
use super::coll::bulk;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `SMEMBERS key`: every member (a set in RESP3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SMembers {
    pub key: Bytes,
}

impl SMembers {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            match shard.live(&self.key, now).map(|e| e.set()).transpose() {
                Err(e) => e.into(),
                Ok(set) => Reply::Set(set.into_iter().flat_map(|s| s.iter()).map(bulk).collect()),
            }
        })
    }
}

impl Definition for SMembers {
    const SPECS: &'static [Spec] = &[Spec::data(
        "smembers",
        2,
        &[Flag::Readonly],
        &[Category::Read, Category::Set, Category::Slow],
        KeySpec::FIRST,
        Access::READ,
        "set",
        "Get all the members in a set",
        "SMEMBERS s",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
