use bytes::Bytes;

use super::parse::{Args, int};
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::packed::EntryRef;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `INCR`, `DECR`, `INCRBY`, `DECRBY`: add to the integer held as a decimal string; a missing key
/// counts as 0. The expiry and content type are kept. The read and the write are one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrBy {
    pub key: Bytes,
    pub by: i64,
}

impl IncrBy {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let (key, by) = match a.cmd {
            "incr" => (a.exactly(1)?[0].clone(), 1),
            "decr" => (a.exactly(1)?[0].clone(), -1),
            "incrby" => {
                let v = a.exactly(2)?;
                (v[0].clone(), int(&v[1])?)
            }
            _ => {
                let v = a.exactly(2)?;
                let by = int(&v[1])?.checked_neg().ok_or(CommandError::Overflow)?;
                (v[0].clone(), by)
            }
        };
        Ok(Self { key, by })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let mut result = 0;
            let written = shard.update(&self.key, now, |current| {
                let old = match current {
                    Some(e) => int(e.string()?)?,
                    None => 0,
                };
                result = old.checked_add(self.by).ok_or(CommandError::Overflow)?;
                Ok::<_, CommandError>(EntryRef::successor(
                    current,
                    Bytes::copy_from_slice(itoa::Buffer::new().format(result).as_bytes()),
                    ks.next_version(),
                    now,
                ))
            });
            match written {
                Ok(_) => {
                    shard.event(Event::Incrby, &self.key);
                    Reply::Integer(result)
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for IncrBy {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "incr",
            arity: 2,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Increment the integer value of a key by one",
            example: "INCR k",
            ..Spec::BLANK
        },
        Spec {
            name: "decr",
            arity: 2,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Decrement the integer value of a key by one",
            example: "DECR k",
            ..Spec::BLANK
        },
        Spec {
            name: "incrby",
            arity: 3,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Increment the integer value of a key by the given amount",
            example: "INCRBY k 5",
            ..Spec::BLANK
        },
        Spec {
            name: "decrby",
            arity: 3,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Decrement the integer value of a key by the given number",
            example: "DECRBY k 5",
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
    fn counts_and_refuses_non_integers_and_overflow() {
        let s = Store::new();
        let incr = |by| {
            IncrBy {
                key: "n".into(),
                by,
            }
            .apply(&s, 0)
        };
        assert_eq!(incr(1), Reply::Integer(1));
        assert_eq!(incr(-11), Reply::Integer(-10));
        Set::new("n", i64::MAX.to_string())
            .expires_at(50)
            .apply(&s, 0);
        assert_eq!(incr(1), Reply::Error(CommandError::Overflow));
        assert_eq!(incr(-1), Reply::Integer(i64::MAX - 1));
        assert!(matches!(Get::new("n").apply(&s, 0), Reply::Value(e) if e.expires_at == Some(50)));
        Set::new("n", "1.5").apply(&s, 0);
        assert_eq!(incr(1), Reply::Error(CommandError::NotInteger));
        Set::new("n", " 1").apply(&s, 0);
        assert_eq!(incr(1), Reply::Error(CommandError::NotInteger));
    }
}
