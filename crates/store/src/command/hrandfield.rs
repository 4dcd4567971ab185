use bytes::Bytes;

use super::Definition;
use super::coll::{bulk, double};
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Collection, Rng};
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// The most elements a random pick with repetition may return: Redis streams any count; kvs
/// builds its reply first, so it refuses counts that could not fit in memory.
pub const MAX_RANDOM_COUNT: u64 = 1 << 27;

/// `HRANDFIELD key [count [WITHVALUES]]`, `SRANDMEMBER key [count]` and
/// `ZRANDMEMBER key [count [WITHSCORES]]`: elements chosen at random. A positive count gives
/// distinct elements (all of them when it reaches the size), a negative one may repeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandField {
    pub key: Bytes,
    pub kind: Kind,
    pub count: Option<i64>,
    pub with_values: bool,
}

/// An element and what goes with it (a value, a score).
fn pick(c: &Collection, rng: &mut Rng) -> Option<(Reply, Reply)> {
    match c {
        Collection::Hash(h) => h.random(rng).map(|(f, v)| (bulk(f), bulk(v))),
        Collection::Set(s) => s.random(rng).map(|m| (bulk(m), Reply::Nil)),
        Collection::ZSet(z) => z.random(rng).map(|(m, s)| (bulk(m), double(s))),
        Collection::List(_) | Collection::Stream(_) => None,
    }
}

fn all(c: &Collection) -> Vec<(Reply, Reply)> {
    match c {
        Collection::Hash(h) => h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect(),
        Collection::Set(s) => s.iter().map(|m| (bulk(m), Reply::Nil)).collect(),
        Collection::ZSet(z) => z.iter().map(|(m, s)| (bulk(m), double(s))).collect(),
        Collection::List(_) | Collection::Stream(_) => Vec::new(),
    }
}

impl RandField {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let mut rng = Rng::new();
        ks.read(&self.key, |shard| {
            let entry = shard.live(&self.key, now);
            if entry.is_some_and(|e| e.kind != self.kind) {
                return CommandError::WrongType.into();
            }
            let c = entry.and_then(|e| e.collection());
            let Some(count) = self.count else {
                return c
                    .and_then(|c| pick(c, &mut rng))
                    .map_or(Reply::Nil, |(k, _)| k);
            };
            let Some(c) = c else {
                return Reply::Array(Vec::new());
            };
            let chosen: Vec<(Reply, Reply)> = if count < 0 {
                (0..count.unsigned_abs())
                    .filter_map(|_| pick(c, &mut rng))
                    .collect()
            } else if count as usize >= c.len() {
                all(c)
            } else if (count as usize) * 3 > c.len() {
                // Most of them: drop random ones from the whole.
                let mut items = all(c);
                while items.len() > count as usize {
                    let i = rng.below(items.len() as u64) as usize;
                    items.swap_remove(i);
                }
                items
            } else {
                let mut seen = std::collections::HashSet::new();
                let mut items = Vec::with_capacity(count as usize);
                while items.len() < count as usize {
                    let Some((k, v)) = pick(c, &mut rng) else { break };
                    let Reply::Bulk(b) = &k else { break };
                    if seen.insert(b.clone()) {
                        items.push((k, v));
                    }
                }
                items
            };
            if self.with_values {
                Reply::Pairs(chosen)
            } else {
                Reply::Array(chosen.into_iter().map(|(k, _)| k).collect())
            }
        })
    }
}

const R: &[Flag] = &[Flag::Readonly];

impl Definition for RandField {
    const SPECS: &'static [Spec] = &[
        Spec::data("hrandfield", -2, R, &[Category::Read, Category::Hash, Category::Slow], KeySpec::FIRST, Access::READ, "hash", "Get one or multiple random fields from a hash", "HRANDFIELD h 2 WITHVALUES"),
        Spec::data("srandmember", -2, R, &[Category::Read, Category::Set, Category::Slow], KeySpec::FIRST, Access::READ, "set", "Get one or multiple random members from a set", "SRANDMEMBER s 2"),
        Spec::data("zrandmember", -2, R, &[Category::Read, Category::SortedSet, Category::Slow], KeySpec::FIRST, Access::READ, "sorted-set", "Get one or multiple random elements from a sorted set", "ZRANDMEMBER z 2 WITHSCORES"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        let kind = match a.cmd {
            "hrandfield" => Kind::Hash,
            "srandmember" => Kind::Set,
            _ => Kind::ZSet,
        };
        let option = if kind == Kind::Hash { "withvalues" } else { "withscores" };
        let max = if kind == Kind::Set { 2 } else { 3 };
        if v.len() > max {
            return Err(CommandError::Syntax);
        }
        let count = v.get(1).map(|c| int(c)).transpose()?;
        let with_values = match v.get(2) {
            Some(o) if is(o, option) => true,
            Some(_) => return Err(CommandError::Syntax),
            None => false,
        };
        if let Some(n) = count
            && n < 0
            && (n.unsigned_abs() > MAX_RANDOM_COUNT
                || (with_values && n.unsigned_abs() > (i64::MAX / 2) as u64))
        {
            return Err(CommandError::Invalid("value is out of range"));
        }
        Ok(Self {
            key: v[0].clone(),
            kind,
            count,
            with_values,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
