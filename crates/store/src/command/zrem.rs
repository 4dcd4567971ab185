use bytes::Bytes;

use super::Definition;
use super::coll::{LexBound, ScoreBound};
use super::parse::{Args, int};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use super::zrange::{ZBounds, ZSpan};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// Which members go.
#[derive(Clone, Debug, PartialEq)]
pub enum ZRemWhich {
    /// `ZREM key member ...`.
    Members(Vec<Bytes>),
    /// `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE`, `ZREMRANGEBYLEX key a b`.
    Range(ZBounds),
}

/// ZREM and the ZREMRANGEBY* commands: how many members were removed (a sorted set left empty
/// is removed). The log records the members removed.
#[derive(Clone, Debug, PartialEq)]
pub struct ZRem {
    pub key: Bytes,
    pub which: ZRemWhich,
}

impl ZRem {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let gone: Vec<Bytes> = match w.live(&self.key, now).map(|e| e.zset()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => return Reply::Integer(0),
                Ok(Some(z)) => match &self.which {
                    ZRemWhich::Members(ms) => {
                        ms.iter().filter(|m| z.score(m).is_some()).cloned().collect()
                    }
                    ZRemWhich::Range(bounds) => ZSpan {
                        bounds: bounds.clone(),
                        rev: false,
                        limit: None,
                    }
                    .select(z)
                    .into_iter()
                    .map(|(m, _)| Bytes::copy_from_slice(m))
                    .collect(),
                },
            };
            if gone.is_empty() {
                return Reply::Integer(0);
            }
            let version = ks.next_version();
            match w.edit(&self.key, now, version, Edit::ZRemove(gone)) {
                Ok(done) => {
                    let event = match &self.which {
                        ZRemWhich::Members(_) => "zrem",
                        ZRemWhich::Range(ZBounds::Rank(..)) => "zremrangebyrank",
                        ZRemWhich::Range(ZBounds::Score(..)) => "zremrangebyscore",
                        ZRemWhich::Range(ZBounds::Lex(..)) => "zremrangebylex",
                    };
                    w.event(Event::Sorted(event), &self.key);
                    if done.removed {
                        w.event(Event::Del, &self.key);
                    }
                    Reply::Integer(done.count as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write];
const C: &[Category] = &[Category::Write, Category::SortedSet, Category::Slow];

impl Definition for ZRem {
    const SPECS: &'static [Spec] = &[
        Spec::data("zrem", -3, &[Flag::Write, Flag::Fast], &[Category::Write, Category::SortedSet, Category::Fast], KeySpec::FIRST, Access::WRITE, "sorted-set", "Remove one or more members from a sorted set", "ZREM z a b"),
        Spec::data("zremrangebyrank", 4, W, C, KeySpec::FIRST, Access::WRITE, "sorted-set", "Remove all members in a sorted set within the given indexes", "ZREMRANGEBYRANK z 0 1"),
        Spec::data("zremrangebyscore", 4, W, C, KeySpec::FIRST, Access::WRITE, "sorted-set", "Remove all members in a sorted set within the given scores", "ZREMRANGEBYSCORE z -inf (2"),
        Spec::data("zremrangebylex", 4, W, C, KeySpec::FIRST, Access::WRITE, "sorted-set", "Remove all members in a sorted set between the given lexicographical range", "ZREMRANGEBYLEX z [a (c"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        let which = match a.cmd {
            "zremrangebyrank" => ZRemWhich::Range(ZBounds::Rank(int(&v[1])?, int(&v[2])?)),
            "zremrangebyscore" => ZRemWhich::Range(ZBounds::Score(
                ScoreBound::parse(&v[1])?,
                ScoreBound::parse(&v[2])?,
            )),
            "zremrangebylex" => ZRemWhich::Range(ZBounds::Lex(
                LexBound::parse(&v[1])?,
                LexBound::parse(&v[2])?,
            )),
            _ => ZRemWhich::Members(v[1..].to_vec()),
        };
        Ok(Self {
            key: v[0].clone(),
            which,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
