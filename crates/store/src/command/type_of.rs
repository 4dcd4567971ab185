use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Category, Flag, KeySpec, Spec};
use super::Definition;

/// `TYPE key`: `string` for every stored value (the only type so far), `none` when missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeOf {
    pub key: Bytes,
}

impl TypeOf {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| match shard.peek(&self.key, now) {
            Some(entry) => Reply::Status(entry.kind.name()),
            None => Reply::Status("none"),
        })
    }
}

impl Definition for TypeOf {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "type",
            arity: 2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::FIRST,
            group: "generic",
            summary: "Determine the type stored at key",
            example: "TYPE k",
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
    fn string_or_none() {
        let s = Store::new();
        assert_eq!(
            TypeOf { key: "k".into() }.apply(&s, 0),
            Reply::Status("none")
        );
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(
            TypeOf { key: "k".into() }.apply(&s, 0),
            Reply::Status("string")
        );
    }
}
