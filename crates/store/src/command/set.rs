use bytes::Bytes;

use super::Condition;
use super::parse::{Args, int, is};
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{DEFAULT_CONTENT_TYPE, Entry, Millis, Value};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

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
    /// Expire this many milliseconds after the write is applied (Redis `EX`/`PX`).
    After(Millis),
}

impl ExpiryUpdate {
    /// The absolute expiry this update gives a key whose live entry expires at `current`.
    pub fn resolve(self, now: Millis, current: Option<Millis>) -> Option<Millis> {
        match self {
            ExpiryUpdate::Clear => None,
            ExpiryUpdate::Keep => current,
            ExpiryUpdate::At(at) => Some(at),
            ExpiryUpdate::After(ms) => Some(now.saturating_add(ms)),
        }
    }
}

/// How a write answers (the meaning is the same; the shape follows the command that asked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetReply {
    /// `Stored`, or `ConditionFailed` (HTTP; Redis `SET`: `+OK` or nil).
    #[default]
    Stored,
    /// The value the key held before, whether or not the write happened (Redis `SET ... GET`,
    /// `GETSET`).
    Previous,
    /// `1` when written, `0` when the condition failed (Redis `SETNX`).
    Flag,
}

/// Store a value under a key, optionally only under a [`Condition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub key: Bytes,
    pub value: Bytes,
    pub content_type: Bytes,
    pub condition: Condition,
    pub expiry: ExpiryUpdate,
    pub reply: SetReply,
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
            reply: SetReply::Stored,
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

    /// Parses `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`, and `SETNX`,
    /// `SETEX`, `PSETEX`, `GETSET`, which are spellings of it.
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let expire =
            |text: &Bytes, unit: Millis, absolute: bool| -> Result<ExpiryUpdate, CommandError> {
                let n = int(text)?;
                let ms = u64::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .and_then(|n| n.checked_mul(unit))
                    .filter(|&ms| ms <= i64::MAX as u64)
                    .ok_or_else(|| CommandError::InvalidExpire(a.cmd.to_owned()))?;
                Ok(if absolute {
                    ExpiryUpdate::At(ms)
                } else {
                    ExpiryUpdate::After(ms)
                })
            };
        match a.cmd {
            "setnx" => {
                let v = a.exactly(2)?;
                return Ok(Set::new(v[0].clone(), v[1].clone())
                    .condition(Condition::IfAbsent)
                    .reply(SetReply::Flag));
            }
            "getset" => {
                let v = a.exactly(2)?;
                return Ok(Set::new(v[0].clone(), v[1].clone()).reply(SetReply::Previous));
            }
            "setex" | "psetex" => {
                let v = a.exactly(3)?;
                let unit = if a.cmd == "setex" { 1000 } else { 1 };
                return Ok(Set::new(v[0].clone(), v[2].clone()).expiry(expire(&v[1], unit, false)?));
            }
            _ => {}
        }
        let v = a.at_least(2)?;
        let mut set = Set::new(v[0].clone(), v[1].clone());
        let mut expiry_given = false;
        let mut i = 2;
        while i < v.len() {
            let opt = &v[i];
            let value = v.get(i + 1);
            if is(opt, "NX") && set.condition == Condition::Always {
                set.condition = Condition::IfAbsent;
            } else if is(opt, "XX") && set.condition == Condition::Always {
                set.condition = Condition::IfPresent;
            } else if is(opt, "GET") {
                set.reply = SetReply::Previous;
            } else if is(opt, "KEEPTTL") && !expiry_given {
                set.expiry = ExpiryUpdate::Keep;
                expiry_given = true;
            } else if let (Some(value), false) = (value, expiry_given) {
                set.expiry = if is(opt, "EX") {
                    expire(value, 1000, false)?
                } else if is(opt, "PX") {
                    expire(value, 1, false)?
                } else if is(opt, "EXAT") {
                    expire(value, 1000, true)?
                } else if is(opt, "PXAT") {
                    expire(value, 1, true)?
                } else {
                    return Err(CommandError::Syntax);
                };
                expiry_given = true;
                i += 1;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        Ok(set)
    }

    pub fn reply(mut self, reply: SetReply) -> Self {
        self.reply = reply;
        self
    }

    /// Checks the condition and writes, all under the key's shard write lock.
    pub fn apply<K: Keyspace>(self, ks: &K, now: Millis) -> Reply {
        let Set {
            key,
            value,
            content_type,
            condition,
            expiry,
            reply,
        } = self;
        ks.write(&key.clone(), |shard| {
            if reply == SetReply::Previous
                && shard.live(&key, now).is_some_and(|e| e.string().is_err())
            {
                return CommandError::WrongType.into();
            }
            let mut version = 0;
            let written = shard.update(&key, now, |current| {
                if !condition.holds(current) {
                    return Err(current.map(|e| e.to_entry()));
                }
                version = ks.next_version();
                Ok(Entry {
                    value: Value::String(value),
                    content_type,
                    version,
                    modified_at: now,
                    expires_at: expiry.resolve(now, current.and_then(|e| e.expires_at)),
                })
            });
            if written.is_ok() {
                shard.event(Event::Set, &key);
                if matches!(expiry, ExpiryUpdate::At(_) | ExpiryUpdate::After(_)) {
                    shard.event(Event::Expire, &key);
                }
            }
            match (reply, written) {
                (SetReply::Stored, Ok(previous)) => Reply::Stored {
                    version,
                    created: previous.is_none(),
                    previous: previous.map(|p| p.to_entry()),
                },
                (SetReply::Stored, Err(current)) => Reply::ConditionFailed {
                    current: current.map(|e| e.version),
                },
                (SetReply::Previous, Ok(entry)) => entry.map(|e| e.value_bytes()).into(),
                (SetReply::Previous, Err(entry)) => entry.and_then(|e| e.value.as_string().cloned()).into(),
                (SetReply::Flag, Ok(_)) => Reply::Integer(1),
                (SetReply::Flag, Err(_)) => Reply::Integer(0),
            }
        })
    }
}

/// SET writes its key, and with the GET option also reads the value it replaces.
fn set_access(argv: &[Bytes]) -> Access {
    if argv
        .iter()
        .skip(3)
        .any(|a| a.eq_ignore_ascii_case(b"get"))
    {
        Access::READ_WRITE
    } else {
        Access::WRITE
    }
}

impl Definition for Set {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "set",
            arity: -3,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Write, Category::String, Category::Slow],
            keys: KeySpec::FIRST,
            access: KeyAccess::Decide(set_access),
            group: "string",
            summary: "Set the string value of a key",
            example: "SET k v",
            ..Spec::BLANK
        },
        Spec {
            name: "setnx",
            arity: 3,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "string",
            summary: "Set the value of a key, only if the key does not exist",
            example: "SETNX k v",
            ..Spec::BLANK
        },
        Spec {
            name: "setex",
            arity: 4,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Write, Category::String, Category::Slow],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "string",
            summary: "Set the value and expiration of a key",
            example: "SETEX k 10 v",
            ..Spec::BLANK
        },
        Spec {
            name: "psetex",
            arity: 4,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Write, Category::String, Category::Slow],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "string",
            summary: "Set the value and expiration in milliseconds of a key",
            example: "PSETEX k 10 v",
            ..Spec::BLANK
        },
        Spec {
            name: "getset",
            arity: 3,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Set the string value of a key and return its old value",
            example: "GETSET k v",
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
    use crate::keyspace::Store;
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

#[cfg(test)]
mod redis_tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::{Command, Get};

    fn run(store: &Store, words: &[&str], now: Millis) -> Reply {
        let argv: Vec<Bytes> = words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        match Command::from_argv(&argv) {
            Ok(c) => store.execute(c, now),
            Err(e) => Reply::Error(e),
        }
    }

    fn expiry(store: &Store, now: Millis) -> Option<Millis> {
        match Get::new("k").apply(store, now) {
            Reply::Value(e) => e.expires_at,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_options() {
        let s = Store::new();
        assert!(matches!(
            run(&s, &["SET", "k", "v", "EX", "10"], 1_000),
            Reply::Stored { .. }
        ));
        assert_eq!(expiry(&s, 1_000), Some(11_000));
        run(&s, &["set", "k", "v2", "keepttl"], 2_000);
        assert_eq!(expiry(&s, 2_000), Some(11_000));
        run(&s, &["SET", "k", "v3", "PXAT", "50000"], 2_000);
        assert_eq!(expiry(&s, 2_000), Some(50_000));
        run(&s, &["SET", "k", "v4"], 2_000);
        assert_eq!(expiry(&s, 2_000), None);
        assert_eq!(
            run(&s, &["SET", "k", "x", "NX"], 0),
            Reply::ConditionFailed { current: Some(4) }
        );
        assert_eq!(
            run(&s, &["SET", "k", "x", "NX", "GET"], 0),
            Reply::Bulk(Bytes::from("v4"))
        );
        assert_eq!(
            run(&s, &["SET", "k", "v5", "XX", "GET"], 0),
            Reply::Bulk(Bytes::from("v4"))
        );
        assert_eq!(run(&s, &["SET", "new", "x", "GET"], 0), Reply::Nil);
    }

    #[test]
    fn set_errors() {
        let s = Store::new();
        let err = |w: &[&str]| match run(&s, w, 0) {
            Reply::Error(e) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(err(&["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
        assert_eq!(
            err(&["SET", "k", "v", "EX", "1", "PX", "1"]),
            "ERR syntax error"
        );
        assert_eq!(err(&["SET", "k", "v", "EX"]), "ERR syntax error");
        assert_eq!(
            err(&["SET", "k", "v", "EX", "0"]),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            err(&["SET", "k", "v", "EX", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            err(&["SET", "k", "v", "EX", "9223372036854775807"]),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            err(&["SETEX", "k", "-1", "v"]),
            "ERR invalid expire time in 'setex' command"
        );
        assert_eq!(
            err(&["SET", "k"]),
            "ERR wrong number of arguments for 'set' command"
        );
        assert_eq!(s.len(0), 0, "no refused command wrote anything");
    }

    #[test]
    fn setnx_getset_setex() {
        let s = Store::new();
        assert_eq!(run(&s, &["SETNX", "k", "1"], 0), Reply::Integer(1));
        assert_eq!(run(&s, &["SETNX", "k", "2"], 0), Reply::Integer(0));
        assert_eq!(
            run(&s, &["GETSET", "k", "3"], 0),
            Reply::Bulk(Bytes::from("1"))
        );
        run(&s, &["PSETEX", "k", "1500", "4"], 100);
        assert_eq!(expiry(&s, 100), Some(1_600));
    }
}
