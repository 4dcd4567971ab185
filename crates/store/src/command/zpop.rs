use bytes::Bytes;

use super::Definition;
use super::coll::{double, keys_then_timeout, mpop_args, numkeys_positions, positive};
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::{Keyspace, Writer};
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// Pops up to `count` members with the lowest (or highest) scores from the sorted set under
/// `key`: them, lowest (highest) first; none for a missing key.
fn pop_zset<K: Keyspace>(
    ks: &K,
    w: &mut Writer<'_>,
    key: &Bytes,
    max: bool,
    count: usize,
    now: Millis,
) -> Result<Vec<(Bytes, f64)>, CommandError> {
    let items: Vec<(Bytes, f64)> = match w.live(key, now).map(|e| e.zset()).transpose()? {
        None => return Ok(Vec::new()),
        Some(z) => {
            let n = count.min(z.len());
            let start = if max { z.len() - n } else { 0 };
            let mut items: Vec<(Bytes, f64)> = z
                .iter_from(start)
                .take(n)
                .map(|(m, s)| (Bytes::copy_from_slice(m), s))
                .collect();
            if max {
                items.reverse();
            }
            items
        }
    };
    if items.is_empty() {
        return Ok(items);
    }
    let version = ks.next_version();
    let edit = Edit::ZRemove(items.iter().map(|(m, _)| m.clone()).collect());
    let done = w.edit(key, now, version, edit)?;
    w.event(Event::Sorted(if max { "zpopmax" } else { "zpopmin" }), key);
    if done.removed {
        w.event(Event::Del, key);
    }
    Ok(items)
}

/// How the answer is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZPopForm {
    /// `ZPOPMIN`/`ZPOPMAX key [count]`.
    Plain { counted: bool },
    /// `BZPOPMIN`/`BZPOPMAX key ... timeout`: `[key, member, score]`.
    Blocking,
    /// `ZMPOP`/`BZMPOP`: `[key, [[member, score], ...]]`.
    Many,
}

/// ZPOPMIN, ZPOPMAX, BZPOPMIN, BZPOPMAX, ZMPOP and BZMPOP.
#[derive(Clone, Debug, PartialEq)]
pub struct ZPop {
    pub keys: Vec<Bytes>,
    pub max: bool,
    pub count: usize,
    pub form: ZPopForm,
    pub timeout: Option<f64>,
}

impl ZPop {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        ks.write_keys(&keys, |locked| {
            for key in &self.keys {
                let Some(w) = locked.shard(key) else { continue };
                match w.live(key, now) {
                    None => continue,
                    Some(e) if e.kind != Kind::ZSet => return CommandError::WrongType.into(),
                    Some(_) => {}
                }
                let items = match pop_zset(ks, w, key, self.max, self.count, now) {
                    Err(e) => return e.into(),
                    Ok(items) => items,
                };
                if items.is_empty() && self.form != (ZPopForm::Plain { counted: true }) {
                    continue;
                }
                return match self.form {
                    ZPopForm::Plain { counted: true } => Reply::Pairs(
                        items.into_iter().map(|(m, s)| (Reply::Bulk(m), double(s))).collect(),
                    ),
                    ZPopForm::Plain { counted: false } => Reply::Array(
                        items
                            .into_iter()
                            .flat_map(|(m, s)| [Reply::Bulk(m), double(s)])
                            .collect(),
                    ),
                    ZPopForm::Blocking => {
                        let mut out = vec![Reply::Bulk(key.clone())];
                        out.extend(items.into_iter().take(1).flat_map(|(m, s)| [Reply::Bulk(m), double(s)]));
                        Reply::Array(out)
                    }
                    ZPopForm::Many => Reply::Array(vec![
                        Reply::Bulk(key.clone()),
                        Reply::Array(
                            items
                                .into_iter()
                                .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), double(s)]))
                                .collect(),
                        ),
                    ]),
                };
            }
            match self.form {
                ZPopForm::Plain { .. } => Reply::Array(Vec::new()),
                _ => Reply::NilArray,
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write, Flag::Fast];
const B: &[Flag] = &[Flag::Write, Flag::Noscript, Flag::Fast, Flag::Blocking];
const C: &[Category] = &[Category::Write, Category::SortedSet, Category::Fast];
const CB: &[Category] = &[Category::Write, Category::SortedSet, Category::Fast, Category::Blocking];
const BPOP: KeySpec = KeySpec::Range {
    first: 1,
    last: -2,
    step: 1,
};

impl Definition for ZPop {
    const SPECS: &'static [Spec] = &[
        Spec::data("zpopmin", -2, W, C, KeySpec::FIRST, Access::READ_WRITE, "sorted-set", "Remove and return members with the lowest scores in a sorted set", "ZPOPMIN z 2"),
        Spec::data("zpopmax", -2, W, C, KeySpec::FIRST, Access::READ_WRITE, "sorted-set", "Remove and return members with the highest scores in a sorted set", "ZPOPMAX z"),
        Spec::data("bzpopmin", -3, B, CB, BPOP, Access::READ_WRITE, "sorted-set", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", "BZPOPMIN a b 0.5"),
        Spec::data("bzpopmax", -3, B, CB, BPOP, Access::READ_WRITE, "sorted-set", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", "BZPOPMAX a 0"),
        Spec::data("zmpop", -4, &[Flag::Write], &[Category::Write, Category::SortedSet, Category::Slow], KeySpec::Find { shown: (0, 0, 0), find: |argv| numkeys_positions(argv, 1) }, Access::READ_WRITE, "sorted-set", "Remove and return members with scores in a sorted set", "ZMPOP 2 a b MIN COUNT 2"),
        Spec::data("bzmpop", -5, &[Flag::Write, Flag::Blocking], &[Category::Write, Category::SortedSet, Category::Slow, Category::Blocking], KeySpec::Find { shown: (0, 0, 0), find: |argv| numkeys_positions(argv, 2) }, Access::READ_WRITE, "sorted-set", "Remove and return members with scores in a sorted set or block until one is available", "BZMPOP 1 1 a MAX"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        match a.cmd {
            "zpopmin" | "zpopmax" => {
                if v.len() > 2 {
                    return Err(CommandError::Syntax);
                }
                let count = v.get(1).map(|c| positive(c)).transpose()?;
                Ok(Self {
                    keys: vec![v[0].clone()],
                    max: a.cmd == "zpopmax",
                    count: count.unwrap_or(1),
                    form: ZPopForm::Plain {
                        counted: count.is_some(),
                    },
                    timeout: None,
                })
            }
            "bzpopmin" | "bzpopmax" => {
                let (keys, wait) = keys_then_timeout(v)?;
                Ok(Self {
                    keys,
                    max: a.cmd == "bzpopmax",
                    count: 1,
                    form: ZPopForm::Blocking,
                    timeout: Some(wait),
                })
            }
            cmd => {
                let (keys, min, count, timeout) = mpop_args(v, cmd == "bzmpop", "min", "max")?;
                Ok(Self {
                    keys,
                    max: !min,
                    count,
                    form: ZPopForm::Many,
                    timeout,
                })
            }
        }
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(self.keys.iter().map(|k| &k[..]).collect())
    }

    fn block_timeout(&self) -> Option<f64> {
        self.timeout
    }
}
