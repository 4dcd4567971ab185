use bytes::Bytes;

use super::Definition;
use super::coll::{bulk, index_range};
use super::parse::{Args, int};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `LRANGE key start stop`: the items in that inclusive range (negative from the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LRange {
    pub key: Bytes,
    pub start: i64,
    pub stop: i64,
}

impl LRange {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            match shard.live(&self.key, now).map(|e| e.list()).transpose() {
                Err(e) => e.into(),
                Ok(None) => Reply::Array(Vec::new()),
                Ok(Some(list)) => match index_range(self.start, self.stop, list.len()) {
                    None => Reply::Array(Vec::new()),
                    Some((start, n)) => {
                        Reply::Array(list.range(start, n).into_iter().map(bulk).collect())
                    }
                },
            }
        })
    }
}

impl Definition for LRange {
    const SPECS: &'static [Spec] = &[Spec::data(
        "lrange",
        4,
        &[Flag::Readonly],
        &[Category::Read, Category::List, Category::Slow],
        KeySpec::FIRST,
        Access::READ,
        "list",
        "Get a range of elements from a list",
        "LRANGE l 0 -1",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        Ok(Self {
            key: v[0].clone(),
            start: int(&v[1])?,
            stop: int(&v[2])?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
