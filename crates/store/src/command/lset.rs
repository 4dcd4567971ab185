use bytes::Bytes;

use super::Definition;
use super::lindex::list_index;
use super::parse::{Args, int};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `LSET key index element`: replaces an item. A missing key or index is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LSet {
    pub key: Bytes,
    pub index: i64,
    pub item: Bytes,
}

impl LSet {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let index = match w.live(&self.key, now).map(|e| e.list()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => return CommandError::NoSuchKey.into(),
                Ok(Some(l)) => match list_index(self.index, l.len()) {
                    Some(i) => i,
                    None => return CommandError::Invalid("index out of range").into(),
                },
            };
            let version = ks.next_version();
            let edit = Edit::ListSet {
                index: index as u64,
                item: self.item.clone(),
            };
            match w.edit(&self.key, now, version, edit) {
                Ok(_) => {
                    w.event(Event::Lists("lset"), &self.key);
                    Reply::Ok
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for LSet {
    const SPECS: &'static [Spec] = &[Spec::data(
        "lset",
        4,
        &[Flag::Write, Flag::Denyoom],
        &[Category::Write, Category::List, Category::Slow],
        KeySpec::FIRST,
        Access::WRITE,
        "list",
        "Set the value of an element in a list by its index",
        "LSET l 0 x",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        Ok(Self {
            key: v[0].clone(),
            index: int(&v[1])?,
            item: v[2].clone(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
