use bytes::Bytes;

use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{Entry, Millis};
use crate::reply::Reply;
use super::spec::Spec;
use super::Definition;

/// Set (`Some`) or clear (`None`) the expiry of an existing key. Changing the expiry is a write:
/// the key gets a new version, so conditional writers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expire {
    pub key: Bytes,
    pub at: Option<Millis>,
}

impl Expire {
    pub fn new(key: impl Into<Bytes>, at: Option<Millis>) -> Self {
        Self {
            key: key.into(),
            at,
        }
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let mut version = 0;
            let written = shard.update(&self.key, now, |current| {
                let current = current.ok_or(())?;
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
                Err(()) => Reply::NotFound,
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
    fn missing_key_is_not_found() {
        assert_eq!(
            Expire::new("k", Some(1)).apply(&Store::new(), 0),
            Reply::NotFound
        );
    }
}
