use bytes::Bytes;

use super::Condition;
use crate::entry::{DEFAULT_CONTENT_TYPE, Entry, Millis};
use crate::keyspace::Store;
use crate::reply::Reply;

/// What a write does to the key's expiry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiryUpdate {
    /// The key lives until deleted (a plain write drops any earlier expiry, as Redis `SET` does).
    #[default]
    Clear,
    /// Keep whatever expiry the live entry had (Redis `KEEPTTL`).
    Keep,
    /// Expire at this instant.
    At(Millis),
}

/// Store a value under a key, optionally only under a [`Condition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub key: Bytes,
    pub value: Bytes,
    pub content_type: Bytes,
    pub condition: Condition,
    pub expiry: ExpiryUpdate,
}

impl Set {
    /// An unconditional write of `value` with the default content type and no expiry.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
            condition: Condition::Always,
            expiry: ExpiryUpdate::Clear,
        }
    }

    pub fn content_type(mut self, content_type: impl Into<Bytes>) -> Self {
        self.content_type = content_type.into();
        self
    }

    pub fn condition(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }

    pub fn expiry(mut self, expiry: ExpiryUpdate) -> Self {
        self.expiry = expiry;
        self
    }

    pub fn expires_at(self, at: Millis) -> Self {
        self.expiry(ExpiryUpdate::At(at))
    }

    /// Checks the condition and writes, all under the key's shard write lock.
    pub fn apply(self, store: &Store, now: Millis) -> Reply {
        let mut shard = store.write(&self.key);
        let Set {
            key,
            value,
            content_type,
            condition,
            expiry,
        } = self;
        let mut version = 0;
        let written = shard.update(&key, now, |current| {
            if !condition.holds(current) {
                return Err(current.map(|e| e.version));
            }
            version = store.next_version();
            Ok(Entry {
                value,
                content_type,
                version,
                modified_at: now,
                expires_at: match expiry {
                    ExpiryUpdate::Clear => None,
                    ExpiryUpdate::Keep => current.and_then(|e| e.expires_at),
                    ExpiryUpdate::At(at) => Some(at),
                },
            })
        });
        match written {
            Ok(previous) => Reply::Stored {
                version,
                created: previous.is_none(),
                previous,
            },
            Err(current) => Reply::ConditionFailed { current },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, Get};

    fn stored_version(reply: &Reply) -> u64 {
        match reply {
            Reply::Stored { version, .. } => *version,
            other => panic!("expected Stored, got {other:?}"),
        }
    }

    #[test]
    fn first_write_creates_and_second_replaces() {
        let store = Store::new();
        let a = Set::new("k", "1").apply(&store, 0);
        assert!(matches!(
            a,
            Reply::Stored {
                created: true,
                previous: None,
                ..
            }
        ));
        let b = Set::new("k", "2").apply(&store, 0);
        let Reply::Stored {
            created: false,
            previous: Some(prev),
            ..
        } = &b
        else {
            panic!("expected a replacement, got {b:?}");
        };
        assert_eq!(prev.value, Bytes::from("1"));
        assert!(stored_version(&b) > stored_version(&a));
    }

    #[test]
    fn versions_increase_across_keys() {
        let store = Store::new();
        let v: Vec<u64> = (0..10)
            .map(|i| stored_version(&Set::new(format!("k{i}"), "x").apply(&store, 0)))
            .collect();
        assert!(v.windows(2).all(|w| w[1] > w[0]), "{v:?}");
        assert_eq!(store.revision(), *v.last().unwrap_or(&0));
    }

    #[test]
    fn if_absent_refuses_an_existing_key_but_not_an_expired_one() {
        let store = Store::new();
        Set::new("k", "1").expires_at(10).apply(&store, 0);
        let r = Set::new("k", "2")
            .condition(Condition::IfAbsent)
            .apply(&store, 5);
        assert_eq!(r, Reply::ConditionFailed { current: Some(1) });
        let r = Set::new("k", "3")
            .condition(Condition::IfAbsent)
            .apply(&store, 10);
        assert!(matches!(r, Reply::Stored { created: true, .. }));
    }

    #[test]
    fn if_present_refuses_a_missing_key() {
        let store = Store::new();
        let r = Set::new("k", "1")
            .condition(Condition::IfPresent)
            .apply(&store, 0);
        assert_eq!(r, Reply::ConditionFailed { current: None });
        assert_eq!(Get::new("k").apply(&store, 0), Reply::NotFound);
    }

    #[test]
    fn if_version_succeeds_only_on_the_current_version() {
        let store = Store::new();
        let v1 = stored_version(&Set::new("k", "1").apply(&store, 0));
        let v2 = stored_version(
            &Set::new("k", "2")
                .condition(Condition::IfVersion(v1))
                .apply(&store, 0),
        );
        let stale = Set::new("k", "3")
            .condition(Condition::IfVersion(v1))
            .apply(&store, 0);
        assert_eq!(stale, Reply::ConditionFailed { current: Some(v2) });
        let Reply::Value(e) = store.execute(Command::Get(Get::new("k")), 0) else {
            panic!("value missing");
        };
        assert_eq!(e.value, Bytes::from("2"));
    }

    #[test]
    fn expiry_is_cleared_kept_or_replaced() {
        let store = Store::new();
        Set::new("k", "1").expires_at(100).apply(&store, 0);
        Set::new("k", "2")
            .expiry(ExpiryUpdate::Keep)
            .apply(&store, 0);
        let get = |s: &Store| match Get::new("k").apply(s, 0) {
            Reply::Value(e) => e.expires_at,
            other => panic!("{other:?}"),
        };
        assert_eq!(get(&store), Some(100));
        Set::new("k", "3").expires_at(200).apply(&store, 0);
        assert_eq!(get(&store), Some(200));
        Set::new("k", "4").apply(&store, 0);
        assert_eq!(get(&store), None);
        // The replaced expiry no longer reclaims the key.
        assert_eq!(store.sweep_expired(1_000, 100), 0);
        assert!(matches!(
            Get::new("k").apply(&store, 1_000),
            Reply::Value(_)
        ));
    }
}
