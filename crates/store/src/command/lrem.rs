use bytes::Bytes;

use super::Definition;
use super::parse::{Args, int};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `LREM key count element`: removes up to |count| items equal to element, from the head
/// (count > 0), the tail (< 0) or everywhere (0); how many went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LRem {
    pub key: Bytes,
    pub count: i64,
    pub item: Bytes,
}

impl LRem {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            match w.live(&self.key, now).map(|e| e.list()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => return Reply::Integer(0),
                Ok(Some(l)) if !l.iter().any(|x| x == &self.item[..]) => return Reply::Integer(0),
                Ok(Some(_)) => {}
            }
            let version = ks.next_version();
            let edit = Edit::ListRemove {
                count: self.count,
                item: self.item.clone(),
            };
            match w.edit(&self.key, now, version, edit) {
                Ok(done) => {
                    w.event(Event::Lists("lrem"), &self.key);
                    if done.removed {
                        w.event(Event::Del, &self.key);
                    }
                    Reply::Integer(done.count as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for LRem {
    const SPECS: &'static [Spec] = &[Spec::data(
        "lrem",
        4,
        &[Flag::Write],
        &[Category::Write, Category::List, Category::Slow],
        KeySpec::FIRST,
        Access::WRITE,
        "list",
        "Remove elements from a list",
        "LREM l 0 a",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        Ok(Self {
            key: v[0].clone(),
            count: int(&v[1])?,
            item: v[2].clone(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
