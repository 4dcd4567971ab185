use bytes::Bytes;

use super::parse::{Args, int, is};
use super::set::ExpiryUpdate;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{Entry, Millis};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`: the value, with its expiry changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetEx {
    pub key: Bytes,
    /// `Keep` when no option is given: then it is a plain read.
    pub expiry: ExpiryUpdate,
}

impl GetEx {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        let expiry = match &v[1..] {
            [] => ExpiryUpdate::Keep,
            [opt] if is(opt, "PERSIST") => ExpiryUpdate::Clear,
            [opt, n] => {
                let (unit, absolute) = if is(opt, "EX") {
                    (1000, false)
                } else if is(opt, "PX") {
                    (1, false)
                } else if is(opt, "EXAT") {
                    (1000, true)
                } else if is(opt, "PXAT") {
                    (1, true)
                } else {
                    return Err(CommandError::Syntax);
                };
                let ms = u64::try_from(int(n)?)
                    .ok()
                    .filter(|&n| n > 0)
                    .and_then(|n| n.checked_mul(unit))
                    .filter(|&ms| ms <= i64::MAX as u64)
                    .ok_or_else(|| CommandError::InvalidExpire("getex".into()))?;
                if absolute {
                    ExpiryUpdate::At(ms)
                } else {
                    ExpiryUpdate::After(ms)
                }
            }
            _ => return Err(CommandError::Syntax),
        };
        Ok(Self {
            key: v[0].clone(),
            expiry,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        if self.expiry == ExpiryUpdate::Keep {
            return ks.read(&self.key, |shard| match shard.live(&self.key, now) {
                Some(e) if e.string().is_err() => CommandError::WrongType.into(),
                e => e.map(|e| e.value_bytes()).into(),
            });
        }
        ks.write(&self.key, |shard| {
            if shard.live(&self.key, now).is_some_and(|e| e.string().is_err()) {
                return CommandError::WrongType.into();
            }
            let mut persisted = false;
            let written = shard.update(&self.key, now, |current| {
                let current = current.ok_or(())?;
                persisted = current.expires_at.is_some();
                Ok(Entry {
                    version: ks.next_version(),
                    expires_at: self.expiry.resolve(now, current.expires_at),
                    ..current.to_entry()
                })
            });
            match (written, self.expiry) {
                (Ok(previous), expiry) => {
                    match expiry {
                        ExpiryUpdate::At(_) | ExpiryUpdate::After(_) => {
                            shard.event(Event::Expire, &self.key)
                        }
                        ExpiryUpdate::Clear if persisted => shard.event(Event::Persist, &self.key),
                        ExpiryUpdate::Clear | ExpiryUpdate::Keep => {}
                    }
                    previous.map(|e| e.value_bytes()).into()
                }
                (Err(()), _) => Reply::Nil,
            }
        })
    }
}

impl Definition for GetEx {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "getex",
            arity: -2,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Get the value of a key and optionally set its expiration",
            example: "GETEX k PERSIST",
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
    use crate::{Get, Set};

    #[test]
    fn changes_the_expiry_and_returns_the_value() {
        let s = Store::new();
        Set::new("k", "v").apply(&s, 0);
        let ex = |e| {
            GetEx {
                key: "k".into(),
                expiry: e,
            }
            .apply(&s, 10)
        };
        assert_eq!(ex(ExpiryUpdate::After(100)), Reply::Bulk("v".into()));
        assert!(
            matches!(Get::new("k").apply(&s, 10), Reply::Value(e) if e.expires_at == Some(110))
        );
        assert_eq!(ex(ExpiryUpdate::Clear), Reply::Bulk("v".into()));
        assert!(matches!(Get::new("k").apply(&s, 10), Reply::Value(e) if e.expires_at.is_none()));
        assert_eq!(
            GetEx {
                key: "no".into(),
                expiry: ExpiryUpdate::Clear
            }
            .apply(&s, 0),
            Reply::Nil
        );
    }
}
