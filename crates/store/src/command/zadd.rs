use bytes::Bytes;

use super::Definition;
use super::coll::double;
use super::parse::{Args, float, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Edit, Score};
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member ...` and `ZINCRBY key increment member`.
/// The log records each member's resulting score, so an increment replays exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct ZAdd {
    pub key: Bytes,
    pub pairs: Vec<(f64, Bytes)>,
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
    /// ZINCRBY (always incr, answers the score).
    pub zincrby: bool,
}

impl ZAdd {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let mut scores: Vec<(Score, Bytes)> = Vec::with_capacity(self.pairs.len());
            let mut added = 0;
            let mut changed = 0;
            let mut result = None;
            {
                let zset = match w.live(&self.key, now) {
                    Some(e) if e.kind != Kind::ZSet => return CommandError::WrongType.into(),
                    Some(e) => e.zset().ok(),
                    None => None,
                };
                for (score, member) in &self.pairs {
                    // A member named twice: its later pair sees the earlier one's result.
                    let earlier = scores.iter().rev().find(|(_, m)| m == member).map(|(s, _)| s.0);
                    let current = earlier.or_else(|| zset.and_then(|z| z.score(member)));
                    if (self.nx && current.is_some()) || (self.xx && current.is_none()) {
                        continue;
                    }
                    let new = if self.incr {
                        let sum = current.unwrap_or(0.0) + score;
                        if sum.is_nan() {
                            return CommandError::Invalid("resulting score is not a number (NaN)").into();
                        }
                        sum
                    } else {
                        *score
                    };
                    if let Some(old) = current {
                        if (self.gt && new <= old) || (self.lt && new >= old) {
                            continue;
                        }
                        if new != old {
                            changed += 1;
                        }
                    } else {
                        added += 1;
                    }
                    result = Some(new);
                    scores.push((Score(new), member.clone()));
                }
            }
            if !scores.is_empty() {
                let version = ks.next_version();
                if let Err(e) = w.edit(&self.key, now, version, Edit::ZAdd(scores)) {
                    return e.into();
                }
                w.event(Event::Sorted(if self.incr { "zincr" } else { "zadd" }), &self.key);
            }
            if self.incr {
                result.map_or(Reply::Nil, double)
            } else if self.ch {
                Reply::Integer(added + changed)
            } else {
                Reply::Integer(added)
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write, Flag::Denyoom, Flag::Fast];
const C: &[Category] = &[Category::Write, Category::SortedSet, Category::Fast];

impl Definition for ZAdd {
    const SPECS: &'static [Spec] = &[
        Spec::data("zadd", -4, W, C, KeySpec::FIRST, Access::WRITE, "sorted-set", "Add one or more members to a sorted set, or update its score if it already exists", "ZADD z NX CH 1 a 2 b"),
        Spec::data("zincrby", 4, W, C, KeySpec::FIRST, Access::READ_WRITE, "sorted-set", "Increment the score of a member in a sorted set", "ZINCRBY z 1.5 a"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        let mut z = Self {
            key: v[0].clone(),
            pairs: Vec::new(),
            nx: false,
            xx: false,
            gt: false,
            lt: false,
            ch: false,
            incr: false,
            zincrby: a.cmd == "zincrby",
        };
        if z.zincrby {
            z.incr = true;
            z.pairs.push((float(&v[1])?, v[2].clone()));
            return Ok(z);
        }
        let mut i = 1;
        while i < v.len() {
            let o = &v[i];
            if is(o, "nx") {
                z.nx = true;
            } else if is(o, "xx") {
                z.xx = true;
            } else if is(o, "gt") {
                z.gt = true;
            } else if is(o, "lt") {
                z.lt = true;
            } else if is(o, "ch") {
                z.ch = true;
            } else if is(o, "incr") {
                z.incr = true;
            } else {
                break;
            }
            i += 1;
        }
        let rest = &v[i..];
        if rest.is_empty() || !rest.len().is_multiple_of(2) {
            return Err(CommandError::Syntax);
        }
        if z.nx && z.xx {
            return Err(CommandError::Invalid(
                "XX and NX options at the same time are not compatible",
            ));
        }
        if (z.gt && z.lt) || (z.nx && (z.gt || z.lt)) {
            return Err(CommandError::Invalid(
                "GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if z.incr && rest.len() > 2 {
            return Err(CommandError::Invalid(
                "INCR option supports a single increment-element pair",
            ));
        }
        for pair in rest.chunks(2) {
            z.pairs.push((float(&pair[0])?, pair[1].clone()));
        }
        Ok(z)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
