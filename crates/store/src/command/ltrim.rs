use bytes::Bytes;

use super::Definition;
use super::coll::index_range;
use super::parse::{Args, int};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `LTRIM key start stop`: keeps only that inclusive range; an empty range removes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LTrim {
    pub key: Bytes,
    pub start: i64,
    pub stop: i64,
}

impl LTrim {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let (start, len, total) = match w.live(&self.key, now).map(|e| e.list()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => return Reply::Ok,
                Ok(Some(l)) => {
                    let (s, n) = index_range(self.start, self.stop, l.len()).unwrap_or((0, 0));
                    (s, n, l.len())
                }
            };
            if start == 0 && len == total {
                return Reply::Ok;
            }
            let version = ks.next_version();
            let edit = Edit::ListTrim {
                start: start as u64,
                len: len as u64,
            };
            match w.edit(&self.key, now, version, edit) {
                Ok(done) => {
                    w.event(Event::Lists("ltrim"), &self.key);
                    if done.removed {
                        w.event(Event::Del, &self.key);
                    }
                    Reply::Ok
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for LTrim {
    const SPECS: &'static [Spec] = &[Spec::data(
        "ltrim",
        4,
        &[Flag::Write],
        &[Category::Write, Category::List, Category::Slow],
        KeySpec::FIRST,
        Access::WRITE,
        "list",
        "Trim a list to the specified range",
        "LTRIM l 0 9",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        Ok(Self {
            key: v[0].clone(),
            start: int(&v[1])?,
            stop: int(&v[2])?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
