use bytes::Bytes;

use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{Entry, Millis};
use crate::reply::Reply;
use super::spec::Spec;
use super::Definition;

/// Set (`Some`) or clear (`None`) the expiry of an existing key. Changing the expiry is a write:
/// the key gets a new version, so conditional writers see it. The value, of any type, is kept
/// as it is; a collection's change is logged without its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expire {
    pub key: Bytes,
    pub at: Option<Millis>,
    /// Only if the key is at this version (HTTP `If-Match`).
    pub if_version: Option<u64>,
}

impl Expire {
    pub fn new(key: impl Into<Bytes>, at: Option<Millis>) -> Self {
        Self {
            key: key.into(),
            at,
            if_version: None,
        }
    }

    pub fn if_version(mut self, version: u64) -> Self {
        self.if_version = Some(version);
        self
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let mut version = 0;
            let mut held = None;
            let written = shard.update(&self.key, now, |current| {
                let current = current.ok_or(())?;
                if self.if_version.is_some_and(|v| v != current.version) {
                    held = Some(current.version);
                    return Err(());
                }
                version = ks.next_version();
                Ok(Entry {
                    version,
                    expires_at: self.at,
                    ..current.to_entry()
                })
            });
            match written {
                Ok(_) => {
                    let event = if self.at.is_some() {
                        Event::Expire
                    } else {
                        Event::Persist
                    };
                    shard.event(event, &self.key);
                    Reply::ExpirySet { version }
                }
                Err(()) => match held {
                    Some(current) => Reply::ConditionFailed {
                        current: Some(current),
                    },
                    None => Reply::NotFound,
                },
            }
        })
    }
}

/// Built by the HTTP and line front doors only: no Redis name.
impl Definition for Expire {
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
    fn sets_and_clears_an_expiry() {
        let store = Store::new();
        Set::new("k", "v").apply(&store, 0);
        assert_eq!(
            Expire::new("k", Some(50)).apply(&store, 0),
            Reply::ExpirySet { version: 2 }
        );
        assert_eq!(Get::new("k").apply(&store, 50), Reply::NotFound);
        // Still held until swept; clearing the expiry before then is too late: it is gone at 50.
        assert_eq!(Expire::new("k", None).apply(&store, 50), Reply::NotFound);
        assert_eq!(store.sweep_expired(50, 10), 1);
    }

    #[test]
    fn clearing_keeps_the_value_alive() {
        let store = Store::new();
        Set::new("k", "v").expires_at(50).apply(&store, 0);
        assert_eq!(
            Expire::new("k", None).apply(&store, 10),
            Reply::ExpirySet { version: 2 }
        );
        let Reply::Value(e) = Get::new("k").apply(&store, 1_000) else {
            panic!("key should have survived");
        };
        assert_eq!(e.value, Bytes::from("v"));
        assert_eq!(e.modified_at, 0);
        assert_eq!(store.sweep_expired(1_000, 10), 0);
    }

    #[test]
    fn a_version_condition_is_checked() {
        let store = Store::new();
        Set::new("k", "v").apply(&store, 0);
        assert_eq!(
            Expire::new("k", Some(50)).if_version(7).apply(&store, 0),
            Reply::ConditionFailed { current: Some(1) }
        );
        assert_eq!(
            Expire::new("k", Some(50)).if_version(1).apply(&store, 0),
            Reply::ExpirySet { version: 2 }
        );
        assert_eq!(
            Expire::new("missing", None).if_version(1).apply(&store, 0),
            Reply::NotFound
        );
    }

    #[test]
    fn missing_key_is_not_found() {
        assert_eq!(
            Expire::new("k", Some(1)).apply(&Store::new(), 0),
            Reply::NotFound
        );
    }
}
