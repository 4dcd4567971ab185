use bytes::{Bytes, BytesMut};

use super::append::MAX_VALUE_LEN;
use super::parse::{Args, int};
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::packed::EntryRef;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `SETRANGE key offset value`: overwrite from `offset`, padding with zero bytes; the new length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetRange {
    pub key: Bytes,
    pub offset: usize,
    pub value: Bytes,
}

impl SetRange {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        let offset = usize::try_from(int(&v[1])?).map_err(|_| CommandError::OffsetOutOfRange)?;
        Ok(Self {
            key: v[0].clone(),
            offset,
            value: v[2].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let current_len = shard.live(&self.key, now).map(|e| e.value.len());
            if self.value.is_empty() {
                // Nothing to write: the length as it is, and a missing key stays missing.
                return Reply::Integer(current_len.unwrap_or(0) as i64);
            }
            let Some(end) = self
                .offset
                .checked_add(self.value.len())
                .filter(|&e| e <= MAX_VALUE_LEN)
            else {
                return CommandError::StringTooLong.into();
            };
            let mut len = 0;
            let written = shard.update(&self.key, now, |current| {
                let old = current.map(|e| e.string()).transpose()?.unwrap_or_default();
                len = old.len().max(end);
                let mut value = BytesMut::zeroed(len);
                value[..old.len()].copy_from_slice(old);
                value[self.offset..end].copy_from_slice(&self.value);
                Ok::<_, CommandError>(EntryRef::successor(
                    current,
                    value.freeze(),
                    ks.next_version(),
                    now,
                ))
            });
            match written {
                Ok(_) => {
                    shard.event(Event::Setrange, &self.key);
                    Reply::Integer(len as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for SetRange {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "setrange",
            arity: 4,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Write, Category::String, Category::Slow],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "string",
            summary: "Overwrite part of a string at key starting at the specified offset",
            example: "SETRANGE k 1 v",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::{Get, Set};

    #[test]
    fn overwrites_and_pads() {
        let s = Store::new();
        Set::new("k", "Hello World").apply(&s, 0);
        let r = SetRange {
            key: "k".into(),
            offset: 6,
            value: "Redis".into(),
        }
        .apply(&s, 0);
        assert_eq!(r, Reply::Integer(11));
        let r = SetRange {
            key: "p".into(),
            offset: 3,
            value: "x".into(),
        }
        .apply(&s, 0);
        assert_eq!(r, Reply::Integer(4));
        let Reply::Value(e) = Get::new("p").apply(&s, 0) else {
            panic!("missing")
        };
        assert_eq!(e.value, &b"\0\0\0x"[..]);
        let r = SetRange {
            key: "q".into(),
            offset: 3,
            value: "".into(),
        }
        .apply(&s, 0);
        assert_eq!(r, Reply::Integer(0));
        assert_eq!(Get::new("q").apply(&s, 0), Reply::NotFound);
        let r = SetRange {
            key: "k".into(),
            offset: MAX_VALUE_LEN,
            value: "x".into(),
        }
        .apply(&s, 0);
        assert_eq!(r, Reply::Error(CommandError::StringTooLong));
    }
}
