use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::pattern::glob_match;
use crate::reply::Reply;
use super::spec::{Category, Flag, KeySpec, Spec};
use super::Definition;

/// `KEYS pattern`: every live key matching the glob, in byte order, from one consistent view.
/// Like Redis's, it visits every key; SCAN is the way to walk a large keyspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub pattern: Bytes,
}

/// The bytes every match must start with: the pattern up to its first special character.
pub(crate) fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

impl Keys {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            pattern: a.exactly(1)?[0].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let prefix = literal_prefix(&self.pattern);
        let mut keys: Vec<Bytes> = ks.read_every(|shards| {
            shards
                .iter()
                .flat_map(|g| g.entries())
                .filter(|(k, e)| {
                    k.starts_with(prefix) && e.is_live(now) && glob_match(&self.pattern, k, false)
                })
                .map(|(k, _)| Bytes::copy_from_slice(k))
                .collect()
        });
        keys.sort_unstable();
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect())
    }
}

impl Definition for Keys {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "keys",
            arity: 2,
            flags: &[Flag::Readonly],
            categories: &[Category::Keyspace, Category::Read, Category::Slow, Category::Dangerous],
            keys: KeySpec::None,
            group: "generic",
            summary: "Find all keys matching the given pattern",
            example: "KEYS *",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    #[test]
    fn matches_in_order() {
        let s = Store::new();
        for k in ["user:2", "user:1", "user:10", "admin", "user:x"] {
            Set::new(k, "v").apply(&s, 0);
        }
        Set::new("user:3", "v").expires_at(5).apply(&s, 0);
        let keys = |p: &'static str| Keys { pattern: p.into() }.apply(&s, 5);
        let bulk = |v: &[&'static str]| {
            Reply::Array(v.iter().map(|k| Reply::Bulk(Bytes::from(*k))).collect())
        };
        assert_eq!(keys("user:?"), bulk(&["user:1", "user:2", "user:x"]));
        assert_eq!(keys("*1*"), bulk(&["user:1", "user:10"]));
        assert_eq!(
            keys("*"),
            bulk(&["admin", "user:1", "user:10", "user:2", "user:x"])
        );
        assert_eq!(keys("nothing*"), bulk(&[]));
        assert_eq!(literal_prefix(b"ab*c"), b"ab");
        assert_eq!(literal_prefix(b"a\\*"), b"a");
    }
}
