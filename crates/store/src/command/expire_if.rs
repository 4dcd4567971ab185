use bytes::Bytes;

use super::parse::{Args, int, is};
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{Entry, Millis};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// When a Redis expire command is allowed to act, judged against the key's current expiry
/// (a key without one counts as never expiring). Several flags must all hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireCondition {
    /// Only if the key has no expiry.
    pub nx: bool,
    /// Only if the key has an expiry.
    pub xx: bool,
    /// Only if the new expiry is later than the current one.
    pub gt: bool,
    /// Only if the new expiry is earlier than the current one.
    pub lt: bool,
}

impl ExpireCondition {
    fn holds(self, current: Option<Millis>, new: Millis) -> bool {
        (!self.nx || current.is_none())
            && (!self.xx || current.is_some())
            && (!self.gt || current.is_some_and(|old| new > old))
            && (!self.lt || current.is_none_or(|old| new < old))
    }
}

/// `EXPIRE`, `PEXPIRE` (relative), `EXPIREAT`, `PEXPIREAT` (absolute), with `NX|XX|GT|LT`.
/// `1` when the expiry was set, `0` when the key is missing or the condition failed. An instant
/// at or before now deletes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpireIf {
    pub key: Bytes,
    /// Milliseconds: from now when `relative`, else since the Unix epoch. May be negative.
    pub amount: i64,
    pub relative: bool,
    pub condition: ExpireCondition,
    /// The command's name, for its error message.
    pub command: &'static str,
}

impl ExpireIf {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let (unit, relative, command) = match a.cmd {
            "expire" => (1000, true, "expire"),
            "pexpire" => (1, true, "pexpire"),
            "expireat" => (1000, false, "expireat"),
            _ => (1, false, "pexpireat"),
        };
        let amount = int(&v[1])?
            .checked_mul(unit)
            .ok_or_else(|| CommandError::InvalidExpire(command.into()))?;
        let mut c = ExpireCondition::default();
        for opt in &v[2..] {
            if is(opt, "NX") {
                c.nx = true;
            } else if is(opt, "XX") {
                c.xx = true;
            } else if is(opt, "GT") {
                c.gt = true;
            } else if is(opt, "LT") {
                c.lt = true;
            } else {
                return Err(CommandError::UnsupportedOption(
                    String::from_utf8_lossy(opt).into_owned(),
                ));
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CommandError::NxWithOthers);
        }
        if c.gt && c.lt {
            return Err(CommandError::GtAndLt);
        }
        Ok(Self {
            key: v[0].clone(),
            amount,
            relative,
            condition: c,
            command,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let Some(current) = shard.live(&self.key, now) else {
                return Reply::Integer(0);
            };
            let at = if self.relative {
                i64::try_from(now)
                    .ok()
                    .and_then(|n| n.checked_add(self.amount))
            } else {
                Some(self.amount)
            };
            let Some(at) = at else {
                return CommandError::InvalidExpire(self.command.into()).into();
            };
            let new = at.max(0) as Millis;
            if !self.condition.holds(current.expires_at, new) {
                return Reply::Integer(0);
            }
            if new <= now {
                shard.remove(&self.key);
                shard.event(Event::Del, &self.key);
                return Reply::Integer(1);
            }
            let entry = Entry {
                version: ks.next_version(),
                expires_at: Some(new),
                ..current.to_entry()
            };
            shard.put(self.key.clone(), entry, now);
            shard.event(Event::Expire, &self.key);
            Reply::Integer(1)
        })
    }
}

impl Definition for ExpireIf {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "expire",
            arity: -3,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Keyspace, Category::Write, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "generic",
            summary: "Set a key's time to live in seconds",
            example: "EXPIRE k 10",
            ..Spec::BLANK
        },
        Spec {
            name: "pexpire",
            arity: -3,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Keyspace, Category::Write, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "generic",
            summary: "Set a key's time to live in milliseconds",
            example: "PEXPIRE k 10",
            ..Spec::BLANK
        },
        Spec {
            name: "expireat",
            arity: -3,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Keyspace, Category::Write, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "generic",
            summary: "Set the expiration for a key as a UNIX timestamp",
            example: "EXPIREAT k 10",
            ..Spec::BLANK
        },
        Spec {
            name: "pexpireat",
            arity: -3,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Keyspace, Category::Write, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::WRITE),
            group: "generic",
            summary: "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
            example: "PEXPIREAT k 10",
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

    fn expire(s: &Store, amount: i64, condition: ExpireCondition, now: Millis) -> Reply {
        ExpireIf {
            key: "k".into(),
            amount,
            relative: true,
            condition,
            command: "pexpire",
        }
        .apply(s, now)
    }

    const ALWAYS: ExpireCondition = ExpireCondition {
        nx: false,
        xx: false,
        gt: false,
        lt: false,
    };
    const NX: ExpireCondition = ExpireCondition { nx: true, ..ALWAYS };
    const XX: ExpireCondition = ExpireCondition { xx: true, ..ALWAYS };
    const GT: ExpireCondition = ExpireCondition { gt: true, ..ALWAYS };
    const LT: ExpireCondition = ExpireCondition { lt: true, ..ALWAYS };

    #[test]
    fn conditions() {
        let s = Store::new();
        assert_eq!(expire(&s, 100, ALWAYS, 0), Reply::Integer(0));
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(expire(&s, 100, XX, 0), Reply::Integer(0));
        assert_eq!(expire(&s, 100, GT, 0), Reply::Integer(0));
        assert_eq!(expire(&s, 100, NX, 0), Reply::Integer(1));
        assert_eq!(expire(&s, 100, NX, 0), Reply::Integer(0));
        assert_eq!(expire(&s, 50, GT, 0), Reply::Integer(0));
        assert_eq!(expire(&s, 200, GT, 0), Reply::Integer(1));
        assert_eq!(expire(&s, 300, LT, 0), Reply::Integer(0));
        assert_eq!(expire(&s, 150, LT, 0), Reply::Integer(1));
        assert!(matches!(Get::new("k").apply(&s, 0), Reply::Value(e) if e.expires_at == Some(150)));
        let xx_lt = ExpireCondition {
            xx: true,
            lt: true,
            ..ALWAYS
        };
        assert_eq!(expire(&s, 100, xx_lt, 0), Reply::Integer(1));
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(
            expire(&s, 100, xx_lt, 0),
            Reply::Integer(0),
            "XX: no expiry to lower"
        );
        assert_eq!(
            expire(&s, 100, LT, 0),
            Reply::Integer(1),
            "LT alone: none counts as infinite"
        );
    }

    /// Conflicting options answer redis-server 7's own texts (checked against redis-server 7.0.15).
    #[test]
    fn conflicting_options_answer_redis_texts() {
        let text = |line: &str| {
            let argv: Vec<Bytes> = line
                .split(' ')
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect();
            crate::Command::from_argv(&argv).map_err(|e| e.to_string())
        };
        let gt_lt = "ERR GT and LT options at the same time are not compatible";
        let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
        assert_eq!(text("EXPIRE k 10 GT LT"), Err(gt_lt.into()));
        assert_eq!(text("PEXPIREAT k 10 XX GT LT"), Err(gt_lt.into()));
        assert_eq!(text("EXPIRE k 10 NX XX"), Err(nx.into()));
        assert_eq!(text("EXPIRE k 10 NX GT LT"), Err(nx.into()));
        assert_eq!(text("EXPIREAT k 10 LT NX"), Err(nx.into()));
    }

    #[test]
    fn a_past_instant_deletes() {
        let s = Store::new();
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(expire(&s, -1, ALWAYS, 10), Reply::Integer(1));
        assert_eq!(Get::new("k").apply(&s, 10), Reply::NotFound);
        assert_eq!(s.held(), 0);
    }
}
