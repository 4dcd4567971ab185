use bytes::Bytes;

use super::Definition;
use super::coll::{LexBound, ScoreBound, double};
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// What is asked of a sorted set without changing it.
#[derive(Clone, Debug, PartialEq)]
pub enum ZQuery {
    /// `ZSCORE key member`.
    Score(Bytes),
    /// `ZMSCORE key member ...`.
    Scores(Vec<Bytes>),
    /// `ZRANK` / `ZREVRANK key member`.
    Rank(Bytes, bool),
    /// `ZCOUNT key min max`.
    Count(ScoreBound, ScoreBound),
    /// `ZLEXCOUNT key min max`.
    LexCount(LexBound, LexBound),
}

/// ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT and ZLEXCOUNT.
#[derive(Clone, Debug, PartialEq)]
pub struct ZLookup {
    pub key: Bytes,
    pub query: ZQuery,
}

impl ZLookup {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let z = match shard.live(&self.key, now).map(|e| e.zset()).transpose() {
                Ok(z) => z,
                Err(e) => return e.into(),
            };
            match &self.query {
                ZQuery::Score(m) => z.and_then(|z| z.score(m)).map_or(Reply::Nil, double),
                ZQuery::Scores(ms) => Reply::Array(
                    ms.iter()
                        .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, double))
                        .collect(),
                ),
                ZQuery::Rank(m, rev) => match z.and_then(|z| Some((z.rank(m)?, z.len()))) {
                    None => Reply::Nil,
                    Some((r, len)) => Reply::Integer(if *rev { len - 1 - r } else { r } as i64),
                },
                ZQuery::Count(min, max) => Reply::Integer(z.map_or(0, |z| {
                    let lo = z.count_while(|s, _| min.below_min(s));
                    z.iter_from(lo).take_while(|(_, s)| max.within_max(*s)).count()
                }) as i64),
                ZQuery::LexCount(min, max) => Reply::Integer(z.map_or(0, |z| {
                    let lo = z.count_while(|_, m| min.below_min(m));
                    z.iter_from(lo).take_while(|(m, _)| max.within_max(m)).count()
                }) as i64),
            }
        })
    }
}

const R: &[Flag] = &[Flag::Readonly, Flag::Fast];
const C: &[Category] = &[Category::Read, Category::SortedSet, Category::Fast];

impl Definition for ZLookup {
    const SPECS: &'static [Spec] = &[
        Spec::data("zscore", 3, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Get the score associated with the given member in a sorted set", "ZSCORE z a"),
        Spec::data("zmscore", -3, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Get the score associated with the given members in a sorted set", "ZMSCORE z a b"),
        Spec::data("zrank", 3, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Determine the index of a member in a sorted set", "ZRANK z a"),
        Spec::data("zrevrank", 3, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Determine the index of a member in a sorted set, with scores ordered from high to low", "ZREVRANK z a"),
        Spec::data("zcount", 4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Count the members in a sorted set with scores within the given values", "ZCOUNT z -inf (3"),
        Spec::data("zlexcount", 4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Count the number of members in a sorted set between a given lexicographical range", "ZLEXCOUNT z - +"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        let query = match a.cmd {
            "zscore" => ZQuery::Score(v[1].clone()),
            "zmscore" => ZQuery::Scores(v[1..].to_vec()),
            "zrank" => ZQuery::Rank(v[1].clone(), false),
            "zrevrank" => ZQuery::Rank(v[1].clone(), true),
            "zcount" => ZQuery::Count(ScoreBound::parse(&v[1])?, ScoreBound::parse(&v[2])?),
            _ => ZQuery::LexCount(LexBound::parse(&v[1])?, LexBound::parse(&v[2])?),
        };
        Ok(Self {
            key: v[0].clone(),
            query,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
