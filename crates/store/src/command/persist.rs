use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{Entry, Millis};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `PERSIST key`: remove the expiry; `1` if there was one, else `0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist {
    pub key: Bytes,
}

impl Persist {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let written = shard.update(&self.key, now, |current| match current {
                Some(e) if e.expires_at.is_some() => Ok(Entry {
                    version: ks.next_version(),
                    expires_at: None,
                    ..e.to_entry()
                }),
                _ => Err(()),
            });
            if written.is_ok() {
                shard.event(Event::Persist, &self.key);
            }
            Reply::Integer(i64::from(written.is_ok()))
        })
    }
}

impl Definition for Persist {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "persist",
            arity: 2,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Keyspace, Category::Write, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "generic",
            summary: "Remove the expiration from a key",
            example: "PERSIST k",
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
    fn only_keys_with_an_expiry() {
        let s = Store::new();
        let p = || Persist { key: "k".into() }.apply(&s, 0);
        assert_eq!(p(), Reply::Integer(0));
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(p(), Reply::Integer(0));
        Set::new("k", "v").expires_at(10).apply(&s, 0);
        assert_eq!(p(), Reply::Integer(1));
        assert_eq!(s.sweep_expired(100, 10), 0);
    }
}
