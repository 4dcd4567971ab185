use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `DEL key [key ...]` and `UNLINK`: remove the keys at one instant; how many existed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Del {
    pub keys: Vec<Bytes>,
}

impl Del {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            keys: a.at_least(1)?.to_vec(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        ks.write_keys(&keys, |locked| {
            let mut removed = 0;
            for key in &self.keys {
                let Some(shard) = locked.shard(key) else {
                    continue;
                };
                if let Some(entry) = shard.remove(key)
                    && entry.is_live(now)
                {
                    removed += 1;
                    shard.event(Event::Del, key);
                }
            }
            Reply::Integer(removed)
        })
    }
}

impl Definition for Del {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "del",
            arity: -2,
            flags: &[Flag::Write],
            categories: &[Category::Keyspace, Category::Write, Category::Slow],
            keys: KeySpec::ALL_ARGS,
            access: KeyAccess::Each(Access::WRITE),
            group: "generic",
            summary: "Delete a key",
            example: "DEL a b",
            ..Spec::BLANK
        },
        Spec {
            name: "unlink",
            arity: -2,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Keyspace, Category::Write, Category::Fast],
            keys: KeySpec::ALL_ARGS,
            access: KeyAccess::Each(Access::WRITE),
            group: "generic",
            summary: "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
            example: "UNLINK a b",
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
    fn counts_live_keys_once() {
        let s = Store::new();
        Set::new("a", "1").apply(&s, 0);
        Set::new("b", "1").apply(&s, 0);
        Set::new("gone", "1").expires_at(5).apply(&s, 0);
        let r = Del {
            keys: vec![
                "a".into(),
                "a".into(),
                "b".into(),
                "c".into(),
                "gone".into(),
            ],
        }
        .apply(&s, 5);
        assert_eq!(r, Reply::Integer(2));
        assert_eq!(s.held(), 0);
    }
}
