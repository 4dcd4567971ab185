use bytes::Bytes;

use super::Definition;
use super::coll::{bulk, positive};
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::{Keyspace, Writer};
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// Pops up to `count` items from the head or tail of the list under `key`, on a shard held for
/// writing: the items (none for a missing key), or WRONGTYPE.
pub(crate) fn pop_list<K: Keyspace>(
    ks: &K,
    w: &mut Writer<'_>,
    key: &Bytes,
    front: bool,
    count: usize,
    now: Millis,
) -> Result<Vec<Bytes>, CommandError> {
    let items: Vec<Bytes> = match w.live(key, now).map(|e| e.list()).transpose()? {
        None => return Ok(Vec::new()),
        Some(list) => {
            let n = count.min(list.len());
            let start = if front { 0 } else { list.len() - n };
            let mut items: Vec<Bytes> = list
                .range(start, n)
                .into_iter()
                .map(Bytes::copy_from_slice)
                .collect();
            if !front {
                items.reverse();
            }
            items
        }
    };
    if items.is_empty() {
        return Ok(items);
    }
    let version = ks.next_version();
    let edit = Edit::ListPop {
        front,
        count: items.len() as u64,
    };
    let done = w.edit(key, now, version, edit)?;
    w.event(Event::Lists(if front { "lpop" } else { "rpop" }), key);
    if done.removed {
        w.event(Event::Del, key);
    }
    Ok(items)
}

/// `LPOP`, `RPOP key [count]`: one item (or nil), or with a count up to that many (nil for a
/// missing key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pop {
    pub key: Bytes,
    pub front: bool,
    pub count: Option<usize>,
}

impl Pop {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let exists = w.live(&self.key, now).is_some();
            match pop_list(ks, w, &self.key, self.front, self.count.unwrap_or(1), now) {
                Err(e) => e.into(),
                Ok(items) => match self.count {
                    None => items.first().map_or(Reply::Nil, |b| bulk(b)),
                    Some(_) if !exists => Reply::NilArray,
                    Some(_) => Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
                },
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write, Flag::Fast];
const C: &[Category] = &[Category::Write, Category::List, Category::Fast];

impl Definition for Pop {
    const SPECS: &'static [Spec] = &[
        Spec::data("lpop", -2, W, C, KeySpec::FIRST, Access::READ_WRITE, "list", "Remove and get the first elements in a list", "LPOP l 2"),
        Spec::data("rpop", -2, W, C, KeySpec::FIRST, Access::READ_WRITE, "list", "Remove and get the last elements in a list", "RPOP l"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        if v.len() > 2 {
            return Err(a.arity());
        }
        Ok(Self {
            key: v[0].clone(),
            front: a.cmd == "lpop",
            count: v.get(1).map(|c| positive(c)).transpose()?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
