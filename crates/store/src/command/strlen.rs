use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `STRLEN key`: the value's length in bytes, 0 for a missing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strlen {
    pub key: Bytes,
}

impl Strlen {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| match shard.live(&self.key, now).map(|e| e.string()) {
            None => Reply::Integer(0),
            Some(Ok(v)) => Reply::Integer(v.len() as i64),
            Some(Err(e)) => e.into(),
        })
    }
}

impl Definition for Strlen {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "strlen",
            arity: 2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Read, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::NONE),
            group: "string",
            summary: "Get the length of the value stored in a key",
            example: "STRLEN k",
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
    use crate::Set;
    use crate::keyspace::Store;

    #[test]
    fn counts_bytes() {
        let s = Store::new();
        assert_eq!(Strlen { key: "k".into() }.apply(&s, 0), Reply::Integer(0));
        Set::new("k", "héllo").apply(&s, 0);
        assert_eq!(Strlen { key: "k".into() }.apply(&s, 0), Reply::Integer(6));
    }
}
