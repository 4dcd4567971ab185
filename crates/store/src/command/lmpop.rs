use bytes::Bytes;

use super::Definition;
use super::coll::{keys_then_timeout, mpop_args, numkeys_positions};
use super::parse::Args;
use super::pop::pop_list;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// How the answer is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MPopForm {
    /// `LMPOP`/`BLMPOP`: `[key, [items]]`.
    Many,
    /// `BLPOP`/`BRPOP`: `[key, item]`.
    One,
}

/// `LMPOP numkeys key ... LEFT|RIGHT [COUNT n]`, `BLMPOP timeout numkeys ...`, `BLPOP key ...
/// timeout`, `BRPOP key ... timeout`: pops from the first non-empty list among the keys; nil
/// (no array) when all are empty (a blocking form then waits, see the server).
#[derive(Clone, Debug, PartialEq)]
pub struct MPop {
    pub keys: Vec<Bytes>,
    pub front: bool,
    pub count: usize,
    pub form: MPopForm,
    pub timeout: Option<f64>,
}

impl MPop {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        ks.write_keys(&keys, |locked| {
            for key in &self.keys {
                let Some(w) = locked.shard(key) else { continue };
                match w.live(key, now) {
                    None => continue,
                    Some(e) if e.kind != Kind::List => return CommandError::WrongType.into(),
                    Some(_) => {}
                }
                return match pop_list(ks, w, key, self.front, self.count, now) {
                    Err(e) => e.into(),
                    Ok(items) if items.is_empty() => continue,
                    Ok(items) => match self.form {
                        MPopForm::One => Reply::Array(vec![
                            Reply::Bulk(key.clone()),
                            items.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
                        ]),
                        MPopForm::Many => Reply::Array(vec![
                            Reply::Bulk(key.clone()),
                            Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
                        ]),
                    },
                };
            }
            Reply::NilArray
        })
    }
}

const W: &[Flag] = &[Flag::Write];
const B: &[Flag] = &[Flag::Write, Flag::Noscript, Flag::Blocking];
const C: &[Category] = &[Category::Write, Category::List, Category::Slow];
const CB: &[Category] = &[Category::Write, Category::List, Category::Slow, Category::Blocking];
const BPOP: KeySpec = KeySpec::Range {
    first: 1,
    last: -2,
    step: 1,
};
const LMPOP: KeySpec = KeySpec::Find {
    shown: (0, 0, 0),
    find: |argv| numkeys_positions(argv, 1),
};
const BLMPOP: KeySpec = KeySpec::Find {
    shown: (0, 0, 0),
    find: |argv| numkeys_positions(argv, 2),
};

impl Definition for MPop {
    const SPECS: &'static [Spec] = &[
        Spec::data("lmpop", -4, W, C, LMPOP, Access::READ_WRITE, "list", "Pop elements from a list", "LMPOP 2 a b LEFT COUNT 2"),
        Spec::data("blmpop", -5, &[Flag::Write, Flag::Blocking], CB, BLMPOP, Access::READ_WRITE, "list", "Pop elements from a list, or block until one is available", "BLMPOP 0.1 2 a b RIGHT"),
        Spec::data("blpop", -3, B, CB, BPOP, Access::READ_WRITE, "list", "Remove and get the first element in a list, or block until one is available", "BLPOP a b 1"),
        Spec::data("brpop", -3, B, CB, BPOP, Access::READ_WRITE, "list", "Remove and get the last element in a list, or block until one is available", "BRPOP a 0"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        match a.cmd {
            "blpop" | "brpop" => {
                let (keys, wait) = keys_then_timeout(v)?;
                Ok(Self {
                    keys,
                    front: a.cmd == "blpop",
                    count: 1,
                    form: MPopForm::One,
                    timeout: Some(wait),
                })
            }
            cmd => {
                let (keys, front, count, timeout) = mpop_args(v, cmd == "blmpop", "left", "right")?;
                Ok(Self {
                    keys,
                    front,
                    count,
                    form: MPopForm::Many,
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
