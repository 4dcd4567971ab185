use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use super::xtrim::BAD_ID;
use crate::access::Keyspace;
use crate::collection::{Edit, StreamId};
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// `XDEL key id ...`: deletes those entries; how many there were. The IDs are read only once
/// the stream is found, as Redis reads them (a missing key answers 0 whatever they are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XDel {
    pub key: Bytes,
    pub ids: Vec<Bytes>,
}

impl XDel {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            match w.live(&self.key, now) {
                None => return Reply::Integer(0),
                Some(e) if e.kind != Kind::Stream => return CommandError::WrongType.into(),
                Some(_) => {}
            }
            let ids: Option<Vec<StreamId>> = self
                .ids
                .iter()
                .map(|arg| StreamId::parse(arg, 0, true))
                .collect();
            let Some(ids) = ids else {
                return BAD_ID.into();
            };
            match w.edit(&self.key, now, ks.next_version(), Edit::StreamDelete(ids)) {
                Ok(done) => {
                    if done.count > 0 {
                        w.event(Event::Streams("xdel"), &self.key);
                    }
                    Reply::Integer(done.count as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for XDel {
    const SPECS: &'static [Spec] = &[Spec::data(
        "xdel",
        -3,
        &[Flag::Write, Flag::Fast],
        &[Category::Write, Category::Stream, Category::Fast],
        KeySpec::FIRST,
        Access::WRITE,
        "stream",
        "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.",
        "XDEL s 1-1 2-1",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        Ok(Self {
            key: v[0].clone(),
            ids: v[1..].to_vec(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
