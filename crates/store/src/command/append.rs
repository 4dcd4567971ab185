use bytes::{Bytes, BytesMut};

use super::parse::Args;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::packed::EntryRef;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// Longest value a command may build by growing one (Redis's `proto-max-bulk-len`).
pub const MAX_VALUE_LEN: usize = 512 * 1024 * 1024;

/// `APPEND key value`: the new length. A missing key starts empty; the expiry is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append {
    pub key: Bytes,
    pub value: Bytes,
}

impl Append {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(2)?;
        Ok(Self {
            key: v[0].clone(),
            value: v[1].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let mut len = 0;
            let written = shard.update(&self.key, now, |current| {
                let old = current.map(|e| e.string()).transpose()?.unwrap_or_default();
                len = old.len() + self.value.len();
                if len > MAX_VALUE_LEN {
                    return Err(CommandError::StringTooLong);
                }
                let mut value = BytesMut::with_capacity(len);
                value.extend_from_slice(old);
                value.extend_from_slice(&self.value);
                Ok(EntryRef::successor(
                    current,
                    value.freeze(),
                    ks.next_version(),
                    now,
                ))
            });
            match written {
                Ok(_) => {
                    shard.event(Event::Append, &self.key);
                    Reply::Integer(len as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for Append {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "append",
            arity: 3,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "string",
            summary: "Append a value to a key",
            example: "APPEND k v",
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
    fn appends_and_keeps_metadata() {
        let s = Store::new();
        let a = |v: &'static str| {
            Append {
                key: "k".into(),
                value: v.into(),
            }
            .apply(&s, 0)
        };
        assert_eq!(a("ab"), Reply::Integer(2));
        Set::new("k", "x")
            .content_type("text/plain")
            .expires_at(99)
            .apply(&s, 0);
        assert_eq!(a("yz"), Reply::Integer(3));
        let Reply::Value(e) = Get::new("k").apply(&s, 0) else {
            panic!("missing")
        };
        assert_eq!(e.value, Bytes::from("xyz"));
        assert_eq!(e.content_type, Bytes::from("text/plain"));
        assert_eq!(e.expires_at, Some(99));
    }
}
