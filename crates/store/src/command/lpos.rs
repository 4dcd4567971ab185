use bytes::Bytes;

use super::Definition;
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `LPOS key element [RANK rank] [COUNT num] [MAXLEN len]`: the index of a matching item (or
/// nil), or with COUNT the indices of up to that many (0: all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LPos {
    pub key: Bytes,
    pub item: Bytes,
    pub rank: i64,
    pub count: Option<usize>,
    pub maxlen: usize,
}

impl LPos {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let list = match shard.live(&self.key, now).map(|e| e.list()).transpose() {
                Err(e) => return e.into(),
                Ok(l) => l,
            };
            let mut found = Vec::new();
            if let Some(l) = list {
                let len = l.len();
                let wanted = match self.count {
                    Some(0) => usize::MAX,
                    Some(n) => n,
                    None => 1,
                };
                let mut skip = self.rank.unsigned_abs() - 1;
                let limit = if self.maxlen == 0 { len } else { self.maxlen.min(len) };
                let mut visit = |i: usize, x: &[u8]| {
                    if x == &self.item[..] {
                        if skip > 0 {
                            skip -= 1;
                        } else {
                            found.push(Reply::Integer(i as i64));
                        }
                    }
                    found.len() < wanted
                };
                if self.rank > 0 {
                    for (i, x) in l.iter().enumerate().take(limit) {
                        if !visit(i, x) {
                            break;
                        }
                    }
                } else {
                    for (j, x) in l.iter().rev().enumerate().take(limit) {
                        if !visit(len - 1 - j, x) {
                            break;
                        }
                    }
                }
            }
            match self.count {
                Some(_) => Reply::Array(found),
                None => found.into_iter().next().unwrap_or(Reply::Nil),
            }
        })
    }
}

impl Definition for LPos {
    const SPECS: &'static [Spec] = &[Spec::data(
        "lpos",
        -3,
        &[Flag::Readonly],
        &[Category::Read, Category::List, Category::Slow],
        KeySpec::FIRST,
        Access::READ,
        "list",
        "Return the index of matching elements on a list",
        "LPOS l a RANK 1 COUNT 2 MAXLEN 10",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let mut pos = Self {
            key: v[0].clone(),
            item: v[1].clone(),
            rank: 1,
            count: None,
            maxlen: 0,
        };
        let mut rest = &v[2..];
        while let [opt, value, tail @ ..] = rest {
            if is(opt, "rank") {
                let r = int(value)?;
                if r == 0 {
                    return Err(CommandError::Invalid(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                    ));
                }
                if r == i64::MIN {
                    return Err(CommandError::Invalid("value is out of range"));
                }
                pos.rank = r;
            } else if is(opt, "count") {
                let c = int(value)?;
                pos.count =
                    Some(usize::try_from(c).map_err(|_| CommandError::Invalid("COUNT can't be negative"))?);
            } else if is(opt, "maxlen") {
                let m = int(value)?;
                pos.maxlen =
                    usize::try_from(m).map_err(|_| CommandError::Invalid("MAXLEN can't be negative"))?;
            } else {
                return Err(CommandError::Syntax);
            }
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(CommandError::Syntax);
        }
        Ok(pos)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
