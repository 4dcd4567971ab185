use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// Which form of the remaining life a TTL command answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlForm {
    /// `TTL`: seconds left, rounded.
    Seconds,
    /// `PTTL`: milliseconds left.
    Millis,
    /// `EXPIRETIME`: the Unix time in seconds.
    At,
    /// `PEXPIRETIME`: the Unix time in milliseconds.
    AtMillis,
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`: -2 for a missing key, -1 for a key without expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ttl {
    pub key: Bytes,
    pub form: TtlForm,
}

impl Ttl {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let form = match a.cmd {
            "ttl" => TtlForm::Seconds,
            "pttl" => TtlForm::Millis,
            "expiretime" => TtlForm::At,
            _ => TtlForm::AtMillis,
        };
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
            form,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let Some(entry) = shard.peek(&self.key, now) else {
                return Reply::Integer(-2);
            };
            let Some(at) = entry.expires_at else {
                return Reply::Integer(-1);
            };
            let left = at - now;
            let n = match self.form {
                TtlForm::Seconds => (left + 500) / 1000,
                TtlForm::Millis => left,
                TtlForm::At => at / 1000,
                TtlForm::AtMillis => at,
            };
            Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
        })
    }
}

impl Definition for Ttl {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "ttl",
            arity: 2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "generic",
            summary: "Get the time to live for a key in seconds",
            example: "TTL k",
            ..Spec::BLANK
        },
        Spec {
            name: "pttl",
            arity: 2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "generic",
            summary: "Get the time to live for a key in milliseconds",
            example: "PTTL k",
            ..Spec::BLANK
        },
        Spec {
            name: "expiretime",
            arity: 2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "generic",
            summary: "Get the expiration Unix timestamp for a key",
            example: "EXPIRETIME k",
            ..Spec::BLANK
        },
        Spec {
            name: "pexpiretime",
            arity: 2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "generic",
            summary: "Get the expiration Unix timestamp for a key in milliseconds",
            example: "PEXPIRETIME k",
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
    fn forms() {
        let s = Store::new();
        let t = |form| {
            Ttl {
                key: "k".into(),
                form,
            }
            .apply(&s, 10_000)
        };
        assert_eq!(t(TtlForm::Seconds), Reply::Integer(-2));
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(t(TtlForm::Millis), Reply::Integer(-1));
        Set::new("k", "v").expires_at(12_600).apply(&s, 0);
        assert_eq!(t(TtlForm::Seconds), Reply::Integer(3));
        assert_eq!(t(TtlForm::Millis), Reply::Integer(2_600));
        assert_eq!(t(TtlForm::At), Reply::Integer(12));
        assert_eq!(t(TtlForm::AtMillis), Reply::Integer(12_600));
    }
}
