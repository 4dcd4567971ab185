use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Category, Flag, KeySpec, Spec};
use super::Definition;

/// `RANDOMKEY`: some live key, or nil when there is none. A random shard and a random bucket of
/// its hash table are picked and the first live key from there on is taken: every key can come
/// back, nearly equally often (a key after a run of empty buckets a little more often).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomKey;

impl RandomKey {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        a.exactly(0)?;
        Ok(RandomKey)
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        // A fresh random state per call: std seeds each one from the OS's randomness.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        ks.read_every(|shards| {
            let n = shards.len();
            (0..n)
                .find_map(|i| {
                    let shard = shards[(seed as usize).wrapping_add(i) % n];
                    let pick = (seed >> 8) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    shard.key_near(pick, now).map(Bytes::copy_from_slice)
                })
                .map_or(Reply::Nil, Reply::Bulk)
        })
    }
}

impl Definition for RandomKey {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "randomkey",
            arity: 1,
            flags: &[Flag::Readonly],
            categories: &[Category::Keyspace, Category::Read, Category::Slow],
            keys: KeySpec::None,
            group: "generic",
            summary: "Return a random key from the keyspace",
            example: "RANDOMKEY",
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
    fn some_live_key_or_nil() {
        let s = Store::new();
        assert_eq!(RandomKey.apply(&s, 0), Reply::Nil);
        Set::new("gone", "v").expires_at(5).apply(&s, 0);
        assert_eq!(RandomKey.apply(&s, 5), Reply::Nil);
        for i in 0..50 {
            Set::new(format!("k{i}"), "v").apply(&s, 0);
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let Reply::Bulk(k) = RandomKey.apply(&s, 5) else {
                panic!("a key")
            };
            assert!(k.starts_with(b"k"));
            seen.insert(k);
        }
        assert!(seen.len() > 10, "only {} distinct keys", seen.len());
    }
}
