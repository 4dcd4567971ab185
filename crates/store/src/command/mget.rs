use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `MGET key [key ...]`: every value (nil for missing keys), read at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MGet {
    pub keys: Vec<Bytes>,
}

impl MGet {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            keys: a.at_least(1)?.to_vec(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        ks.read_keys(&keys, |locked| {
            Reply::Array(
                self.keys
                    .iter()
                    .map(|k| {
                        locked
                            .shard(k)
                            .and_then(|s| s.live(k, now))
                            // A key of another type reads as nil, as in Redis.
                            .filter(|e| e.string().is_ok())
                            .map(|e| e.value_bytes())
                            .into()
                    })
                    .collect(),
            )
        })
    }
}

impl Definition for MGet {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "mget",
            arity: -2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Read, Category::String, Category::Fast],
            keys: KeySpec::ALL_ARGS,
            access: KeyAccess::Each(Access::READ),
            group: "string",
            summary: "Get the values of all the given keys",
            example: "MGET a b",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(self.keys.iter().map(|k| &k[..]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    #[test]
    fn values_in_order_with_nils() {
        let s = Store::new();
        Set::new("a", "1").apply(&s, 0);
        Set::new("c", "3").apply(&s, 0);
        let r = MGet {
            keys: vec!["a".into(), "b".into(), "c".into(), "a".into()],
        }
        .apply(&s, 0);
        assert_eq!(
            r,
            Reply::Array(vec![
                Reply::Bulk("1".into()),
                Reply::Nil,
                Reply::Bulk("3".into()),
                Reply::Bulk("1".into())
            ])
        );
    }
}
