use bytes::Bytes;

use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::reply::Reply;
use super::spec::Spec;
use super::Definition;

/// Remove a key, optionally only when it has a given version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub key: Bytes,
    pub if_version: Option<u64>,
}

impl Delete {
    pub fn new(key: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            if_version: None,
        }
    }

    pub fn if_version(mut self, version: u64) -> Self {
        self.if_version = Some(version);
        self
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let Some(current) = shard.live(&self.key, now) else {
                return Reply::NotFound;
            };
            if self.if_version.is_some_and(|v| v != current.version) {
                return Reply::ConditionFailed {
                    current: Some(current.version),
                };
            }
            match shard.remove(&self.key) {
                Some(entry) => {
                    shard.event(Event::Del, &self.key);
                    Reply::Deleted(entry.to_entry())
                }
                None => Reply::NotFound,
            }
        })
    }
}

/// Built by the HTTP and line front doors only: no Redis name.
impl Definition for Delete {
    const SPECS: &'static [Spec] = &[];
    const WRITES: bool = true;

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::{Get, Set};

    #[test]
    fn deletes_an_existing_key_once() {
        let store = Store::new();
        Set::new("k", "v").apply(&store, 0);
        assert!(matches!(
            Delete::new("k").apply(&store, 0),
            Reply::Deleted(_)
        ));
        assert_eq!(Delete::new("k").apply(&store, 0), Reply::NotFound);
        assert_eq!(Get::new("k").apply(&store, 0), Reply::NotFound);
        assert_eq!(store.len(0), 0);
    }

    #[test]
    fn an_expired_key_is_not_found() {
        let store = Store::new();
        Set::new("k", "v").expires_at(5).apply(&store, 0);
        assert_eq!(Delete::new("k").apply(&store, 5), Reply::NotFound);
    }

    #[test]
    fn honours_the_version_condition() {
        let store = Store::new();
        Set::new("k", "v").apply(&store, 0);
        let r = Delete::new("k").if_version(99).apply(&store, 0);
        assert_eq!(r, Reply::ConditionFailed { current: Some(1) });
        assert!(matches!(
            Delete::new("k").if_version(1).apply(&store, 0),
            Reply::Deleted(_)
        ));
    }
}
