use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use super::xtrim::{BAD_ID, Trim, options, trim_stream};
use crate::access::Keyspace;
use crate::collection::{Edit, Stream, StreamId};
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// The ID XADD is asked to give the new entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewId {
    /// `*`: from the clock.
    Auto,
    /// `ms-*`: these milliseconds, the next sequence number within them.
    Ms(u64),
    /// Exactly this ID.
    Exact(StreamId),
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...`:
/// appends an entry and answers its ID (nil with NOMKSTREAM on a missing key), then trims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XAdd {
    pub key: Bytes,
    pub id: NewId,
    /// Field, value, field, value, ...
    pub pairs: Vec<Bytes>,
    pub nomkstream: bool,
    pub trim: Option<Trim>,
}

impl XAdd {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let last = match w.live(&self.key, now) {
                Some(e) if e.kind != Kind::Stream => return CommandError::WrongType.into(),
                Some(e) => match e.stream() {
                    Ok(s) => Some((s.last_id(), s.next_auto_id(now))),
                    Err(e) => return e.into(),
                },
                None if self.nomkstream => return Reply::Nil,
                None => None,
            };
            let (last_id, auto) =
                last.unwrap_or_else(|| (StreamId::MIN, Stream::default().next_auto_id(now)));
            if last_id == StreamId::MAX {
                return CommandError::Invalid(
                    "The stream has exhausted the last possible ID, unable to add more items",
                )
                .into();
            }
            let id = match self.id {
                NewId::Auto => auto,
                // The next sequence number within those milliseconds, never the next ones'.
                NewId::Ms(ms) if ms == last_id.ms => last_id
                    .seq
                    .checked_add(1)
                    .map(|seq| StreamId { ms, seq }),
                NewId::Ms(ms) => Some(StreamId { ms, seq: 0 }),
                NewId::Exact(id) => Some(id),
            };
            let Some(id) = id.filter(|id| *id > last_id) else {
                return CommandError::Invalid(
                    "The ID specified in XADD is equal or smaller than the target stream top item",
                )
                .into();
            };
            let edit = Edit::StreamAdd(vec![(id, self.pairs.clone())]);
            if let Err(e) = w.edit(&self.key, now, ks.next_version(), edit) {
                return e.into();
            }
            w.event(Event::Streams("xadd"), &self.key);
            if let Some(trim) = self.trim
                && let Err(e) = trim_stream(ks, w, &self.key, trim, now)
            {
                return e.into();
            }
            Reply::Bulk(id.to_bytes())
        })
    }
}

impl Definition for XAdd {
    const SPECS: &'static [Spec] = &[Spec::data(
        "xadd",
        -5,
        &[Flag::Write, Flag::Denyoom, Flag::Fast],
        &[Category::Write, Category::Stream, Category::Fast],
        KeySpec::FIRST,
        Access::WRITE,
        "stream",
        "Appends a new entry to a stream",
        "XADD s * f v",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(4)?;
        let o = options(v, true)?;
        let fields = v.len().saturating_sub(o.id_at + 1);
        if fields < 2 || fields % 2 == 1 {
            return Err(a.arity());
        }
        let arg = &v[o.id_at][..];
        let id = if arg == b"*" {
            NewId::Auto
        } else if let Some(ms) = arg.strip_suffix(b"-*") {
            let id = StreamId::parse(ms, 0, true).filter(|_| !ms.contains(&b'-'));
            NewId::Ms(id.ok_or(BAD_ID)?.ms)
        } else {
            let id = StreamId::parse(arg, 0, true).ok_or(BAD_ID)?;
            if id == StreamId::MIN {
                return Err(CommandError::Invalid(
                    "The ID specified in XADD must be greater than 0-0",
                ));
            }
            NewId::Exact(id)
        };
        Ok(Self {
            key: v[0].clone(),
            id,
            pairs: v[o.id_at + 1..].to_vec(),
            nomkstream: o.nomkstream,
            trim: o.trim,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;

    fn add(store: &Store, id: NewId, now: Millis) -> Reply {
        XAdd {
            key: "s".into(),
            id,
            pairs: vec!["f".into(), "v".into()],
            nomkstream: false,
            trim: None,
        }
        .apply(store, now)
    }

    /// `*` never gives 0-0, even with a clock at the epoch; `ms-*` never spills into the next
    /// millisecond.
    #[test]
    fn new_ids_stay_above_zero_and_within_their_millisecond() {
        let store = Store::new();
        assert_eq!(add(&store, NewId::Auto, 0), Reply::Bulk("0-1".into()));
        assert_eq!(add(&store, NewId::Auto, 0), Reply::Bulk("0-2".into()));
        let top = StreamId {
            ms: 5,
            seq: u64::MAX,
        };
        assert_eq!(
            add(&store, NewId::Exact(top), 0),
            Reply::Bulk(top.to_bytes())
        );
        assert!(matches!(add(&store, NewId::Ms(5), 0), Reply::Error(_)));
        assert_eq!(add(&store, NewId::Ms(6), 0), Reply::Bulk("6-0".into()));
    }
}
