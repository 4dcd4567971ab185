use std::collections::HashSet;

use bytes::Bytes;

use super::Definition;
use super::coll::{card_limit, numkeys, numkeys_positions, store_collection};
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Edit, Set};
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::packed::EntryRef;
use crate::reply::Reply;

/// Which set operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOpKind {
    Inter,
    Union,
    Diff,
}

/// `SINTER`, `SUNION`, `SDIFF key ...` (the members), their `STORE` forms `destination key ...`
/// (the result replaces the destination; its size), and `SINTERCARD numkeys key ... [LIMIT n]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOp {
    pub op: SetOpKind,
    pub keys: Vec<Bytes>,
    pub dest: Option<Bytes>,
    /// SINTERCARD: count only, stopping at this many (0: no limit).
    pub card_limit: Option<usize>,
}

/// The members `op` gives over `sets` (a missing key is an empty set), stopping at `limit`.
pub(crate) fn combine(op: SetOpKind, sets: &[Option<&Set>], limit: usize) -> Vec<Bytes> {
    let b = Bytes::copy_from_slice;
    match op {
        SetOpKind::Inter => {
            if sets.iter().any(Option::is_none) {
                return Vec::new();
            }
            let mut sets: Vec<&Set> = sets.iter().flatten().copied().collect();
            sets.sort_by_key(|s| s.len());
            let Some((first, rest)) = sets.split_first() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for m in first.iter() {
                if rest.iter().all(|s| s.contains(m)) {
                    out.push(b(m));
                    if limit > 0 && out.len() >= limit {
                        break;
                    }
                }
            }
            out
        }
        SetOpKind::Union => {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for m in sets.iter().flatten().flat_map(|s| s.iter()) {
                if seen.insert(m) {
                    out.push(b(m));
                }
            }
            out
        }
        SetOpKind::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Vec::new();
            };
            first
                .iter()
                .filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m)))
                .map(b)
                .collect()
        }
    }
}

/// The set under each key (`None` when missing), or WRONGTYPE.
fn sets<'a>(entries: impl Iterator<Item = Option<EntryRef<'a>>>) -> Result<Vec<Option<&'a Set>>, CommandError> {
    entries
        .map(|e| match e {
            None => Ok(None),
            Some(e) if e.kind != Kind::Set => Err(CommandError::WrongType),
            Some(e) => e.set().map(Some),
        })
        .collect()
}

impl SetOp {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let limit = self.card_limit.unwrap_or(0);
        let Some(dest) = &self.dest else {
            let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
            return ks.read_keys(&keys, |locked| {
                let found = sets(self.keys.iter().map(|k| locked.shard(k).and_then(|s| s.live(k, now))));
                match found {
                    Err(e) => e.into(),
                    Ok(found) => {
                        let members = combine(self.op, &found, limit);
                        if self.card_limit.is_some() {
                            Reply::Integer(members.len() as i64)
                        } else {
                            Reply::Set(members.into_iter().map(Reply::Bulk).collect())
                        }
                    }
                }
            });
        };
        let mut keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        keys.push(dest);
        ks.write_keys(&keys, |locked| {
            let members = {
                let mut entries = Vec::new();
                for k in &self.keys {
                    entries.push(locked.shard(k).and_then(|s| s.live(k, now)).map(|e| e.to_entry()));
                }
                let views: Vec<_> = entries.iter().map(|e| e.as_ref().map(|e| e.view())).collect();
                match sets(views.into_iter()) {
                    Err(e) => return e.into(),
                    Ok(found) => combine(self.op, &found, 0),
                }
            };
            let Some(w) = locked.shard(dest) else {
                return Reply::Integer(0);
            };
            let event = match self.op {
                SetOpKind::Inter => "sinterstore",
                SetOpKind::Union => "sunionstore",
                SetOpKind::Diff => "sdiffstore",
            };
            let n = store_collection(ks, w, dest, Edit::SetAdd(members), event, now);
            Reply::Integer(n as i64)
        })
    }
}

pub(crate) const R: &[Flag] = &[Flag::Readonly];
pub(crate) const W: &[Flag] = &[Flag::Write, Flag::Denyoom];
pub(crate) const CR: &[Category] = &[Category::Read, Category::Set, Category::Slow];
pub(crate) const CW: &[Category] = &[Category::Write, Category::Set, Category::Slow];
pub(crate) const STORE: KeyAccess = KeyAccess::FirstThenRest(Access::WRITE, Access::READ);

impl Definition for SetOp {
    const SPECS: &'static [Spec] = &[
        Spec::data("sinter", -2, R, CR, KeySpec::ALL_ARGS, Access::READ, "set", "Intersect multiple sets", "SINTER a b"),
        Spec::data("sunion", -2, R, CR, KeySpec::ALL_ARGS, Access::READ, "set", "Add multiple sets", "SUNION a b"),
        Spec::data("sdiff", -2, R, CR, KeySpec::ALL_ARGS, Access::READ, "set", "Subtract multiple sets", "SDIFF a b"),
        Spec::data("sintercard", -3, R, CR, KeySpec::Find { shown: (0, 0, 0), find: |argv| numkeys_positions(argv, 1) }, Access::READ, "set", "Intersect multiple sets and return the cardinality of the result", "SINTERCARD 2 a b LIMIT 5"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        let op = match &a.cmd[..5.min(a.cmd.len())] {
            "sunio" => SetOpKind::Union,
            "sdiff" => SetOpKind::Diff,
            _ => SetOpKind::Inter,
        };
        if a.cmd == "sintercard" {
            let (keys, rest) = numkeys(v, "numkeys should be greater than 0")?;
            let limit = card_limit(rest)?;
            return Ok(Self {
                op,
                keys: keys.to_vec(),
                dest: None,
                card_limit: Some(limit),
            });
        }
        let (dest, keys) = if a.cmd.ends_with("store") {
            (Some(v[0].clone()), v[1..].to_vec())
        } else {
            (None, v.to_vec())
        };
        Ok(Self {
            op,
            keys,
            dest,
            card_limit: None,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        let mut keys: Vec<&[u8]> = self.dest.iter().map(|d| &d[..]).collect();
        keys.extend(self.keys.iter().map(|k| &k[..]));
        Some(keys)
    }
}
