use bytes::Bytes;

use crate::access::Keyspace;
use crate::entry::Millis;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;
use super::parse::Args;
use crate::error::CommandError;

/// Read the live entry under a key, of any type (the Redis door answers WRONGTYPE for a
/// collection; the HTTP door shows it as JSON). Takes only the shard's read lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Get {
    pub key: Bytes,
}

impl Get {
    pub fn new(key: impl Into<Bytes>) -> Self {
        Self { key: key.into() }
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| match shard.live(&self.key, now) {
            Some(entry) => Reply::Value(entry.to_entry()),
            None => Reply::NotFound,
        })
    }
}

impl Definition for Get {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "get",
            arity: 2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Read, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "string",
            summary: "Get the value of a key",
            example: "GET k",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Get::new(a.exactly(1)?[0].clone()))
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::{Command, Set};

    #[test]
    fn missing_key_is_not_found() {
        let store = Store::new();
        assert_eq!(Get::new("nope").apply(&store, 0), Reply::NotFound);
    }

    #[test]
    fn returns_what_was_set_with_its_metadata() {
        let store = Store::new();
        store.execute(
            Command::Set(Set::new("k", "v").content_type("text/plain")),
            7,
        );
        let Reply::Value(e) = Get::new("k").apply(&store, 8) else {
            panic!("expected a value");
        };
        assert_eq!(e.value, Bytes::from("v"));
        assert_eq!(e.content_type, Bytes::from("text/plain"));
        assert_eq!(e.version, 1);
        assert_eq!(e.modified_at, 7);
        assert_eq!(e.expires_at, None);
    }

    #[test]
    fn expired_key_is_invisible_at_its_expiry_instant() {
        let store = Store::new();
        store.execute(Command::Set(Set::new("k", "v").expires_at(100)), 0);
        assert!(matches!(Get::new("k").apply(&store, 99), Reply::Value(_)));
        assert_eq!(Get::new("k").apply(&store, 100), Reply::NotFound);
    }
}
