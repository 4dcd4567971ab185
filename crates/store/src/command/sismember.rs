use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `SISMEMBER key member` (1 or 0) and `SMISMEMBER key member ...` (one each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SIsMember {
    pub key: Bytes,
    pub members: Vec<Bytes>,
    pub many: bool,
}

impl SIsMember {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let set = match shard.live(&self.key, now).map(|e| e.set()).transpose() {
                Ok(s) => s,
                Err(e) => return e.into(),
            };
            let has = |m: &Bytes| Reply::Integer(i64::from(set.is_some_and(|s| s.contains(m))));
            if self.many {
                Reply::Array(self.members.iter().map(has).collect())
            } else {
                has(&self.members[0])
            }
        })
    }
}

const R: &[Flag] = &[Flag::Readonly, Flag::Fast];
const C: &[Category] = &[Category::Read, Category::Set, Category::Fast];

impl Definition for SIsMember {
    const SPECS: &'static [Spec] = &[
        Spec::data("sismember", 3, R, C, KeySpec::FIRST, Access::NONE, "set", "Determine if a given value is a member of a set", "SISMEMBER s a"),
        Spec::data("smismember", -3, R, C, KeySpec::FIRST, Access::READ, "set", "Returns the membership associated with the given elements for a set", "SMISMEMBER s a b"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        Ok(Self {
            key: v[0].clone(),
            members: v[1..].to_vec(),
            many: a.cmd == "smismember",
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
