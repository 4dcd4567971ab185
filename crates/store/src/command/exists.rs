use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Category, Flag, KeySpec, Spec};
use super::Definition;

/// `EXISTS key [key ...]`: how many of the keys exist, counting a key named twice twice.
/// `TOUCH` answers the same and counts an access to each key that exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exists {
    pub keys: Vec<Bytes>,
    /// TOUCH: each existing key's last access moves to now (EXISTS leaves it).
    pub touch: bool,
}

impl Exists {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            keys: a.at_least(1)?.to_vec(),
            touch: a.cmd.eq_ignore_ascii_case("touch"),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        ks.read_keys(&keys, |locked| {
            let n = self
                .keys
                .iter()
                .filter(|k| {
                    locked.shard(k).is_some_and(|s| {
                        if self.touch {
                            s.live(k, now).is_some()
                        } else {
                            s.peek(k, now).is_some()
                        }
                    })
                })
                .count();
            Reply::Integer(n as i64)
        })
    }
}

impl Definition for Exists {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "exists",
            arity: -2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::ALL_ARGS,
            group: "generic",
            summary: "Determine if a key exists",
            example: "EXISTS a b",
            ..Spec::BLANK
        },
        Spec {
            name: "touch",
            arity: -2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::ALL_ARGS,
            group: "generic",
            summary: "Alters the last access time of a key(s). Returns the number of existing keys specified.",
            example: "TOUCH a b",
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
    fn counts_repeats() {
        let s = Store::new();
        Set::new("a", "1").apply(&s, 0);
        let r = Exists {
            keys: vec!["a".into(), "a".into(), "b".into()],
            touch: false,
        }
        .apply(&s, 0);
        assert_eq!(r, Reply::Integer(2));
    }
}
