use std::collections::HashMap;

use bytes::Bytes;

use super::Definition;
use super::coll::{bulk, card_limit, double, numkeys_positions, store_collection};
use super::parse::{Args, float, int, is};
use super::setop::SetOpKind;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Collection, Edit, Score, zset::order};
use crate::entry::{Entry, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// How scores of one member from several inputs combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

/// `ZUNION`, `ZINTER`, `ZDIFF numkeys key ... [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
/// [WITHSCORES]`, their `STORE` forms, and `ZINTERCARD numkeys key ... [LIMIT n]`. Plain sets
/// count as sorted sets whose scores are all 1.
#[derive(Clone, Debug, PartialEq)]
pub struct ZSetOp {
    pub op: SetOpKind,
    pub keys: Vec<Bytes>,
    pub weights: Vec<f64>,
    pub aggregate: Aggregate,
    pub with_scores: bool,
    pub dest: Option<Bytes>,
    pub card_limit: Option<usize>,
    /// An error in the options after the keys, which Redis reports only once the keys' types
    /// passed.
    pub options_error: Option<CommandError>,
}

/// The members and scores of an input, or WRONGTYPE.
type Scored<'a> = Vec<(&'a [u8], f64)>;

fn members(entry: Option<&Entry>) -> Result<Option<Scored<'_>>, CommandError> {
    let Some(e) = entry else { return Ok(None) };
    let view = e.view();
    match view.collection().map(|c| &**c) {
        Some(Collection::ZSet(z)) => Ok(Some(z.iter().collect())),
        Some(Collection::Set(s)) => Ok(Some(s.iter().map(|m| (m, 1.0)).collect())),
        _ => Err(CommandError::WrongType),
    }
}

fn combine(a: Aggregate, x: f64, y: f64) -> f64 {
    let v = match a {
        Aggregate::Sum => x + y,
        Aggregate::Min => x.min(y),
        Aggregate::Max => x.max(y),
    };
    if v.is_nan() { 0.0 } else { v }
}

impl ZSetOp {
    /// The result, in order.
    fn compute(&self, inputs: &[Option<Entry>]) -> Result<Vec<(Bytes, f64)>, CommandError> {
        let mut lists = Vec::with_capacity(inputs.len());
        for e in inputs {
            lists.push(members(e.as_ref())?);
        }
        let weight = |i: usize, s: f64| {
            let v = s * self.weights.get(i).copied().unwrap_or(1.0);
            if v.is_nan() { 0.0 } else { v }
        };
        let mut out: Vec<(Bytes, f64)> = match self.op {
            SetOpKind::Union => {
                let mut acc: HashMap<&[u8], f64> = HashMap::new();
                let mut order_seen = Vec::new();
                for (i, list) in lists.iter().enumerate() {
                    for &(m, s) in list.iter().flatten() {
                        let s = weight(i, s);
                        match acc.get_mut(m) {
                            Some(v) => *v = combine(self.aggregate, *v, s),
                            None => {
                                acc.insert(m, s);
                                order_seen.push(m);
                            }
                        }
                    }
                }
                order_seen.into_iter().map(|m| (Bytes::copy_from_slice(m), acc[m])).collect()
            }
            SetOpKind::Inter => {
                if lists.iter().any(Option::is_none) {
                    return Ok(Vec::new());
                }
                let maps: Vec<HashMap<&[u8], f64>> = lists
                    .iter()
                    .map(|l| l.iter().flatten().copied().collect())
                    .collect();
                let Some(first) = lists.first().and_then(Option::as_ref) else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for &(m, s) in first {
                    let mut score = weight(0, s);
                    let mut all = true;
                    for (i, map) in maps.iter().enumerate().skip(1) {
                        match map.get(m) {
                            Some(&t) => score = combine(self.aggregate, score, weight(i, t)),
                            None => {
                                all = false;
                                break;
                            }
                        }
                    }
                    if all {
                        out.push((Bytes::copy_from_slice(m), score));
                        if self.card_limit.is_some_and(|l| l > 0 && out.len() >= l) {
                            break;
                        }
                    }
                }
                out
            }
            SetOpKind::Diff => {
                let Some(Some(first)) = lists.first() else {
                    return Ok(Vec::new());
                };
                let rest: Vec<HashMap<&[u8], f64>> = lists[1..]
                    .iter()
                    .map(|l| l.iter().flatten().copied().collect())
                    .collect();
                first
                    .iter()
                    .filter(|(m, _)| !rest.iter().any(|r| r.contains_key(m)))
                    .map(|&(m, s)| (Bytes::copy_from_slice(m), s))
                    .collect()
            }
        };
        out.sort_by(|a, b| order((a.1, &a.0), (b.1, &b.0)));
        Ok(out)
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let mut keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        if let Some(d) = &self.dest {
            keys.push(d);
        }
        ks.write_keys(&keys, |locked| {
            let inputs: Vec<Option<Entry>> = self
                .keys
                .iter()
                .map(|k| locked.shard(k).and_then(|s| s.live(k, now)).map(|e| e.to_entry()))
                .collect();
            let result = match self.compute(&inputs) {
                Ok(_) if self.options_error.is_some() => {
                    return self.options_error.clone().map_or(Reply::Nil, Reply::Error);
                }
                Ok(r) => r,
                Err(e) => return e.into(),
            };
            drop(inputs);
            if self.card_limit.is_some() {
                return Reply::Integer(result.len() as i64);
            }
            let Some(dest) = &self.dest else {
                return if self.with_scores {
                    Reply::Pairs(result.into_iter().map(|(m, s)| (Reply::Bulk(m), double(s))).collect())
                } else {
                    Reply::Array(result.iter().map(|(m, _)| bulk(m)).collect())
                };
            };
            let Some(w) = locked.shard(dest) else {
                return Reply::Integer(0);
            };
            let event = match self.op {
                SetOpKind::Union => "zunionstore",
                SetOpKind::Inter => "zinterstore",
                SetOpKind::Diff => "zdiffstore",
            };
            let edit = Edit::ZAdd(result.into_iter().map(|(m, s)| (Score(s), m)).collect());
            Reply::Integer(store_collection(ks, w, dest, edit, event, now) as i64)
        })
    }
}

pub(crate) const R: &[Flag] = &[Flag::Readonly];
pub(crate) const W: &[Flag] = &[Flag::Write, Flag::Denyoom];
pub(crate) const CR: &[Category] = &[Category::Read, Category::SortedSet, Category::Slow];
pub(crate) const CW: &[Category] = &[Category::Write, Category::SortedSet, Category::Slow];
pub(crate) const AT1: KeySpec = KeySpec::Find {
    shown: (0, 0, 0),
    find: |argv| numkeys_positions(argv, 1),
};
pub(crate) const STORE_KEYS: KeySpec = KeySpec::Find {
    shown: (1, 1, 1),
    find: |argv| {
        let mut keys = vec![1];
        keys.extend(numkeys_positions(argv, 2));
        keys
    },
};
pub(crate) const STORE: KeyAccess = KeyAccess::FirstThenRest(Access::WRITE, Access::READ);

impl Definition for ZSetOp {
    const SPECS: &'static [Spec] = &[
        Spec::data("zunion", -3, R, CR, AT1, Access::READ, "sorted-set", "Add multiple sorted sets", "ZUNION 2 a b WEIGHTS 1 2 AGGREGATE MAX WITHSCORES"),
        Spec::data("zinter", -3, R, CR, AT1, Access::READ, "sorted-set", "Intersect multiple sorted sets", "ZINTER 2 a b"),
        Spec::data("zdiff", -3, R, CR, AT1, Access::READ, "sorted-set", "Subtract multiple sorted sets", "ZDIFF 2 a b WITHSCORES"),
        Spec::data("zintercard", -3, R, CR, AT1, Access::READ, "sorted-set", "Intersect multiple sorted sets and return the cardinality of the result", "ZINTERCARD 2 a b LIMIT 3"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        let op = match &a.cmd[..3.min(a.cmd.len())] {
            "zun" => SetOpKind::Union,
            "zdi" => SetOpKind::Diff,
            _ => SetOpKind::Inter,
        };
        let store = a.cmd.ends_with("store");
        let (dest, v) = if store { (Some(v[0].clone()), &v[1..]) } else { (None, v) };
        let n = int(v.first().ok_or(CommandError::Syntax)?)?;
        if n <= 0 {
            return Err(CommandError::Other(format!(
                "at least 1 input key is needed for '{}' command",
                a.cmd
            )));
        }
        if n as usize > v.len() - 1 {
            return Err(CommandError::Syntax);
        }
        let (keys, rest) = v[1..].split_at(n as usize);
        let mut out = Self {
            op,
            keys: keys.to_vec(),
            weights: Vec::new(),
            aggregate: Aggregate::Sum,
            with_scores: false,
            dest,
            card_limit: None,
            options_error: None,
        };
        if a.cmd == "zintercard" {
            out.card_limit = Some(card_limit(rest)?);
            return Ok(out);
        }
        if let Err(e) = out.options(rest, keys.len(), store) {
            out.options_error = Some(e);
        }
        Ok(out)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        let mut keys: Vec<&[u8]> = self.dest.iter().map(|d| &d[..]).collect();
        keys.extend(self.keys.iter().map(|k| &k[..]));
        Some(keys)
    }
}

impl ZSetOp {
    /// The options after the keys: WEIGHTS, AGGREGATE, WITHSCORES.
    fn options(&mut self, rest: &[Bytes], n: usize, store: bool) -> Result<(), CommandError> {
        let op = self.op;
        let out = self;
        let mut i = 0;
        while i < rest.len() {
            let o = &rest[i];
            if is(o, "weights") && op != SetOpKind::Diff && i + n < rest.len() {
                out.weights = rest[i + 1..=i + n]
                    .iter()
                    .map(|w| float(w).map_err(|_| CommandError::Invalid("weight value is not a float")))
                    .collect::<Result<_, _>>()?;
                i += n;
            } else if is(o, "aggregate") && op != SetOpKind::Diff && i + 1 < rest.len() {
                let w = &rest[i + 1];
                out.aggregate = if is(w, "sum") {
                    Aggregate::Sum
                } else if is(w, "min") {
                    Aggregate::Min
                } else if is(w, "max") {
                    Aggregate::Max
                } else {
                    return Err(CommandError::Syntax);
                };
                i += 1;
            } else if is(o, "withscores") && !store {
                out.with_scores = true;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        Ok(())
    }
}
