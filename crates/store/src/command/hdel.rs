use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `HDEL key field ...`: how many of the fields were removed. A hash left empty is removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HDel {
    pub key: Bytes,
    pub fields: Vec<Bytes>,
}

impl HDel {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let present: Vec<Bytes> = match w.live(&self.key, now).map(|e| e.hash()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => return Reply::Integer(0),
                Ok(Some(h)) => self.fields.iter().filter(|f| h.get(f).is_some()).cloned().collect(),
            };
            if present.is_empty() {
                return Reply::Integer(0);
            }
            let version = ks.next_version();
            match w.edit(&self.key, now, version, Edit::HashRemove(present)) {
                Ok(done) => {
                    w.event(Event::Hashes("hdel"), &self.key);
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

impl Definition for HDel {
    const SPECS: &'static [Spec] = &[Spec::data(
        "hdel",
        -3,
        &[Flag::Write, Flag::Fast],
        &[Category::Write, Category::Hash, Category::Fast],
        KeySpec::FIRST,
        Access::WRITE,
        "hash",
        "Delete one or more hash fields",
        "HDEL h f",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        Ok(Self {
            key: v[0].clone(),
            fields: v[1..].to_vec(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
