use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{DEFAULT_CONTENT_TYPE, Entry, Millis, Value};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `MSET k v [k v ...]` and `MSETNX`: all pairs written at one instant (every shard involved is
/// locked first); `MSETNX` writes none of them if any key exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MSet {
    pub pairs: Vec<(Bytes, Bytes)>,
    pub only_if_none_exist: bool,
}

impl MSet {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        if !v.len().is_multiple_of(2) {
            return Err(a.arity());
        }
        Ok(Self {
            pairs: v
                .chunks_exact(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
            only_if_none_exist: a.cmd == "msetnx",
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys: Vec<&[u8]> = self.pairs.iter().map(|(k, _)| &k[..]).collect();
        ks.write_keys(&keys, |locked| {
            if self.only_if_none_exist
                && self
                    .pairs
                    .iter()
                    .any(|(k, _)| locked.shard(k).and_then(|s| s.live(k, now)).is_some())
            {
                return Reply::Integer(0);
            }
            for (key, value) in &self.pairs {
                let version = ks.next_version();
                let Some(shard) = locked.shard(key) else {
                    continue;
                };
                shard.put(
                    key.clone(),
                    Entry {
                        value: Value::String(value.clone()),
                        content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
                        version,
                        modified_at: now,
                        expires_at: None,
                    },
                    now,
                );
                shard.event(Event::Set, key);
            }
            if self.only_if_none_exist {
                Reply::Integer(1)
            } else {
                Reply::Ok
            }
        })
    }
}

impl Definition for MSet {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "mset",
            arity: -3,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Write, Category::String, Category::Slow],
            keys: KeySpec::Range {
                first: 1,
                last: -1,
                step: 2,
            },
            access: KeyAccess::Each(Access::WRITE),
            group: "string",
            summary: "Set multiple keys to multiple values",
            example: "MSET a 1 b 2",
            ..Spec::BLANK
        },
        Spec {
            name: "msetnx",
            arity: -3,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Write, Category::String, Category::Slow],
            keys: KeySpec::Range {
                first: 1,
                last: -1,
                step: 2,
            },
            access: KeyAccess::Each(Access::WRITE),
            group: "string",
            summary: "Set multiple keys to multiple values, only if none of the keys exist",
            example: "MSETNX a 1 b 2",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(self.pairs.iter().map(|(k, _)| &k[..]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::{Get, Set};

    fn pairs(p: &[(&'static str, &'static str)]) -> Vec<(Bytes, Bytes)> {
        p.iter()
            .map(|(k, v)| (Bytes::from(*k), Bytes::from(*v)))
            .collect()
    }

    #[test]
    fn sets_all_or_with_nx_none() {
        let s = Store::new();
        let r = MSet {
            pairs: pairs(&[("a", "1"), ("b", "2"), ("a", "3")]),
            only_if_none_exist: false,
        }
        .apply(&s, 0);
        assert_eq!(r, Reply::Ok);
        assert!(matches!(Get::new("a").apply(&s, 0), Reply::Value(e) if e.value == "3"));
        Set::new("x", "old").expires_at(100).apply(&s, 0);
        let r = MSet {
            pairs: pairs(&[("y", "1"), ("x", "2")]),
            only_if_none_exist: true,
        }
        .apply(&s, 0);
        assert_eq!(r, Reply::Integer(0));
        assert_eq!(Get::new("y").apply(&s, 0), Reply::NotFound);
        // Once x has expired it no longer blocks MSETNX.
        let r = MSet {
            pairs: pairs(&[("y", "1"), ("x", "2")]),
            only_if_none_exist: true,
        }
        .apply(&s, 100);
        assert_eq!(r, Reply::Integer(1));
        assert!(
            matches!(Get::new("x").apply(&s, 200), Reply::Value(e) if e.value == "2" && e.expires_at.is_none())
        );
    }
}
