use bytes::Bytes;

use super::Definition;
use super::coll::bulk;
use super::parse::{Args, int};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// Item `index` (negative from the end) of a list of `len`, if there is one.
pub(crate) fn list_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { index + len as i64 } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// `LINDEX key index`: the item, or nil.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LIndex {
    pub key: Bytes,
    pub index: i64,
}

impl LIndex {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            match shard.live(&self.key, now).map(|e| e.list()).transpose() {
                Err(e) => e.into(),
                Ok(list) => list
                    .and_then(|l| l.get(list_index(self.index, l.len())?))
                    .map_or(Reply::Nil, bulk),
            }
        })
    }
}

impl Definition for LIndex {
    const SPECS: &'static [Spec] = &[Spec::data(
        "lindex",
        3,
        &[Flag::Readonly],
        &[Category::Read, Category::List, Category::Slow],
        KeySpec::FIRST,
        Access::READ,
        "list",
        "Get an element from a list by its index",
        "LINDEX l 0",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(2)?;
        Ok(Self {
            key: v[0].clone(),
            index: int(&v[1])?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
