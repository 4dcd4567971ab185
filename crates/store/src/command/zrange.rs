use bytes::Bytes;

use super::Definition;
use super::coll::{LexBound, ScoreBound, bulk, double, index_range, store_collection};
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Edit, Score, ZSet};
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// What selects a range of a sorted set.
#[derive(Clone, Debug, PartialEq)]
pub enum ZBounds {
    /// Ranks, inclusive, negative from the end.
    Rank(i64, i64),
    /// Scores from `min` to `max`.
    Score(ScoreBound, ScoreBound),
    /// Members from `min` to `max` (for elements of equal score).
    Lex(LexBound, LexBound),
}

/// A range request, with the order and the LIMIT.
#[derive(Clone, Debug, PartialEq)]
pub struct ZSpan {
    pub bounds: ZBounds,
    pub rev: bool,
    /// LIMIT offset count (a negative count: all the rest).
    pub limit: Option<(i64, i64)>,
}

impl ZSpan {
    /// The ascending ranks `[lo, hi)` the span selects, before LIMIT.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let len = z.len();
        match &self.bounds {
            ZBounds::Rank(start, stop) => match index_range(*start, *stop, len) {
                None => (0, 0),
                Some((s, n)) if self.rev => (len - s - n, len - s),
                Some((s, n)) => (s, s + n),
            },
            ZBounds::Score(min, max) => {
                let lo = z.count_while(|s, _| min.below_min(s));
                (lo, lo + z.iter_from(lo).take_while(|(_, s)| max.within_max(*s)).count())
            }
            ZBounds::Lex(min, max) => {
                // Like Redis: from the first member not below the minimum, onwards while not
                // above the maximum (what that selects is defined when all scores are equal).
                let lo = z.count_while(|_, m| min.below_min(m));
                (lo, lo + z.iter_from(lo).take_while(|(m, _)| max.within_max(m)).count())
            }
        }
    }

    /// The selected elements, in the requested order.
    pub fn select<'a>(&self, z: &'a ZSet) -> Vec<(&'a [u8], f64)> {
        let (lo, hi) = self.ranks(z);
        let (mut lo, mut hi) = (lo, hi);
        if let Some((offset, count)) = self.limit {
            if offset < 0 {
                return Vec::new();
            }
            let offset = offset as usize;
            let take = if count < 0 { usize::MAX } else { count as usize };
            if self.rev {
                hi = hi.saturating_sub(offset).max(lo);
                lo = lo.max(hi.saturating_sub(take));
            } else {
                lo = lo.saturating_add(offset).min(hi);
                hi = hi.min(lo.saturating_add(take));
            }
        }
        let mut out: Vec<(&[u8], f64)> = z.iter_from(lo).take(hi - lo).collect();
        if self.rev {
            out.reverse();
        }
        out
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`, the older
/// `ZREVRANGE`, `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`, `ZRANGEBYLEX`, `ZREVRANGEBYLEX`, and
/// `ZRANGESTORE destination source ...` (the result replaces the destination; its size).
#[derive(Clone, Debug, PartialEq)]
pub struct ZRange {
    pub key: Bytes,
    pub span: ZSpan,
    pub with_scores: bool,
    pub dest: Option<Bytes>,
}

impl ZRange {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let Some(dest) = &self.dest else {
            return ks.read(&self.key, |shard| {
                match shard.live(&self.key, now).map(|e| e.zset()).transpose() {
                    Err(e) => e.into(),
                    Ok(None) => Reply::Array(Vec::new()),
                    Ok(Some(z)) => {
                        let items = self.span.select(z);
                        if self.with_scores {
                            Reply::Pairs(items.into_iter().map(|(m, s)| (bulk(m), double(s))).collect())
                        } else {
                            Reply::Array(items.into_iter().map(|(m, _)| bulk(m)).collect())
                        }
                    }
                }
            });
        };
        ks.write_keys(&[&self.key[..], &dest[..]], |locked| {
            let items: Vec<(Score, Bytes)> = match locked
                .shard(&self.key)
                .and_then(|s| s.live(&self.key, now))
            {
                None => Vec::new(),
                Some(e) if e.kind != Kind::ZSet => return CommandError::WrongType.into(),
                Some(e) => match e.zset() {
                    Err(err) => return err.into(),
                    Ok(z) => self
                        .span
                        .select(z)
                        .into_iter()
                        .map(|(m, s)| (Score(s), Bytes::copy_from_slice(m)))
                        .collect(),
                },
            };
            let Some(w) = locked.shard(dest) else {
                return Reply::Integer(0);
            };
            Reply::Integer(store_collection(ks, w, dest, Edit::ZAdd(items), "zrangestore", now) as i64)
        })
    }

    /// Parses `start stop [options]` (ZRANGE's form) from `v`.
    fn parse_modern(key: Bytes, v: &[Bytes], store: bool) -> Result<Self, CommandError> {
        let mut by_score = false;
        let mut by_lex = false;
        let mut rev = false;
        let mut limit = None;
        let mut with_scores = false;
        let mut i = 2;
        while i < v.len() {
            let o = &v[i];
            if is(o, "byscore") {
                by_score = true;
            } else if is(o, "bylex") {
                by_lex = true;
            } else if is(o, "rev") && !rev {
                rev = true;
            } else if is(o, "withscores") && !store {
                with_scores = true;
            } else if is(o, "limit") && i + 2 < v.len() {
                limit = Some((int(&v[i + 1])?, int(&v[i + 2])?));
                i += 2;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        if by_score && by_lex {
            return Err(CommandError::Syntax);
        }
        if limit.is_some_and(|(_, count)| count != -1) && !by_score && !by_lex {
            return Err(CommandError::Invalid(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if with_scores && by_lex {
            return Err(CommandError::Invalid(
                "syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        // With REV, the first bound is the high end.
        let (lo, hi) = if rev && (by_score || by_lex) {
            (&v[1], &v[0])
        } else {
            (&v[0], &v[1])
        };
        let bounds = if by_score {
            ZBounds::Score(ScoreBound::parse(lo)?, ScoreBound::parse(hi)?)
        } else if by_lex {
            ZBounds::Lex(LexBound::parse(lo)?, LexBound::parse(hi)?)
        } else {
            ZBounds::Rank(int(&v[0])?, int(&v[1])?)
        };
        // By rank, Redis ignores a LIMIT whose count is -1 (any other was refused above).
        let limit = if by_score || by_lex { limit } else { None };
        Ok(Self {
            key,
            span: ZSpan { bounds, rev, limit },
            with_scores,
            dest: None,
        })
    }

    /// Parses the older commands' `a b [WITHSCORES] [LIMIT offset count]`.
    fn parse_legacy(cmd: &str, key: Bytes, v: &[Bytes]) -> Result<Self, CommandError> {
        let rev = cmd.starts_with("zrev");
        let mut with_scores = false;
        let mut limit = None;
        let mut i = 2;
        let ranked = cmd == "zrevrange";
        let lex = cmd.ends_with("bylex");
        while i < v.len() {
            if is(&v[i], "withscores") && !lex {
                with_scores = true;
            } else if is(&v[i], "withscores") && lex {
                return Err(CommandError::Invalid(
                    "syntax error, WITHSCORES not supported in combination with BYLEX",
                ));
            } else if is(&v[i], "limit") && i + 2 < v.len() {
                limit = Some((int(&v[i + 1])?, int(&v[i + 2])?));
                i += 2;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        if ranked && limit.is_some_and(|(_, count)| count != -1) {
            return Err(CommandError::Invalid(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        let limit = if ranked { None } else { limit };
        let (lo, hi) = if rev && !ranked {
            (&v[1], &v[0])
        } else {
            (&v[0], &v[1])
        };
        let bounds = if ranked {
            ZBounds::Rank(int(lo)?, int(hi)?)
        } else if lex {
            ZBounds::Lex(LexBound::parse(lo)?, LexBound::parse(hi)?)
        } else {
            ZBounds::Score(ScoreBound::parse(lo)?, ScoreBound::parse(hi)?)
        };
        Ok(Self {
            key,
            span: ZSpan { bounds, rev, limit },
            with_scores,
            dest: None,
        })
    }
}

pub(crate) const R: &[Flag] = &[Flag::Readonly];
pub(crate) const C: &[Category] = &[Category::Read, Category::SortedSet, Category::Slow];

impl Definition for ZRange {
    const SPECS: &'static [Spec] = &[
        Spec::data("zrange", -4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Return a range of members in a sorted set", "ZRANGE z 0 -1 WITHSCORES"),
        Spec::data("zrevrange", -4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Return a range of members in a sorted set, by index, with scores ordered from high to low", "ZREVRANGE z 0 -1"),
        Spec::data("zrangebyscore", -4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Return a range of members in a sorted set, by score", "ZRANGEBYSCORE z -inf (5 LIMIT 0 2"),
        Spec::data("zrevrangebyscore", -4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Return a range of members in a sorted set, by score, with scores ordered from high to low", "ZREVRANGEBYSCORE z +inf 0 WITHSCORES"),
        Spec::data("zrangebylex", -4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Return a range of members in a sorted set, by lexicographical range", "ZRANGEBYLEX z - [c"),
        Spec::data("zrevrangebylex", -4, R, C, KeySpec::FIRST, Access::READ, "sorted-set", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", "ZREVRANGEBYLEX z + (a"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        match a.cmd {
            "zrange" => Self::parse_modern(v[0].clone(), &v[1..], false),
            "zrangestore" => {
                let mut r = Self::parse_modern(v[1].clone(), &v[2..], true)?;
                r.dest = Some(v[0].clone());
                Ok(r)
            }
            cmd => Self::parse_legacy(cmd, v[0].clone(), &v[1..]),
        }
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        let mut keys: Vec<&[u8]> = self.dest.iter().map(|d| &d[..]).collect();
        keys.push(&self.key);
        Some(keys)
    }
}
