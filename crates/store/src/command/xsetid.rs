use bytes::Bytes;

use super::Definition;
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use super::xtrim::BAD_ID;
use crate::access::Keyspace;
use crate::collection::{Edit, StreamId};
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// `XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]`: sets a stream's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XSetId {
    pub key: Bytes,
    pub last_id: StreamId,
    pub entries_added: Option<u64>,
    pub max_deleted: Option<StreamId>,
}

impl XSetId {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let stream = match w.live(&self.key, now) {
                None => return CommandError::NoSuchKey.into(),
                Some(e) if e.kind != Kind::Stream => return CommandError::WrongType.into(),
                Some(e) => match e.stream() {
                    Ok(s) => s,
                    Err(e) => return e.into(),
                },
            };
            if let Some((top, _)) = stream.last() {
                if self.last_id < top {
                    return CommandError::Invalid(
                        "The ID specified in XSETID is smaller than the target stream top item",
                    )
                    .into();
                }
                if self.entries_added.is_some_and(|n| n < stream.len() as u64) {
                    return CommandError::Invalid(
                        "The entries_added specified in XSETID is smaller than the target stream length",
                    )
                    .into();
                }
            }
            let edit = Edit::StreamMeta {
                last_id: self.last_id,
                max_deleted: self
                    .max_deleted
                    .filter(|id| *id != StreamId::MIN)
                    .unwrap_or(stream.max_deleted()),
                entries_added: self.entries_added.unwrap_or(stream.entries_added()),
            };
            match w.edit(&self.key, now, ks.next_version(), edit) {
                Ok(_) => {
                    w.event(Event::Streams("xsetid"), &self.key);
                    Reply::Ok
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for XSetId {
    const SPECS: &'static [Spec] = &[Spec::data(
        "xsetid",
        -3,
        &[Flag::Write, Flag::Denyoom, Flag::Fast],
        &[Category::Write, Category::Stream, Category::Fast],
        KeySpec::FIRST,
        Access::WRITE,
        "stream",
        "An internal command for replicating stream values",
        "XSETID s 5-0",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let last_id = StreamId::parse(&v[1], 0, true).ok_or(BAD_ID)?;
        let mut entries_added = None;
        let mut max_deleted = None;
        let mut rest = v[2..].iter();
        while let Some(opt) = rest.next() {
            match rest.next() {
                Some(n) if is(opt, "entriesadded") => {
                    let n = u64::try_from(int(n)?)
                        .map_err(|_| CommandError::Invalid("entries_added must be positive"))?;
                    entries_added = Some(n);
                }
                Some(id) if is(opt, "maxdeletedid") => {
                    let id = StreamId::parse(id, 0, true).ok_or(BAD_ID)?;
                    if last_id < id {
                        return Err(CommandError::Invalid(
                            "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                        ));
                    }
                    max_deleted = Some(id);
                }
                _ => return Err(CommandError::Syntax),
            }
        }
        Ok(Self {
            key: v[0].clone(),
            last_id,
            entries_added,
            max_deleted,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
