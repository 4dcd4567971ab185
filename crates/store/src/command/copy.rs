use bytes::Bytes;

use super::parse::{Args, int, is};
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{Entry, Millis};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `COPY from to [DB 0] [REPLACE]`: copy a value with its content type and expiry; 1 if copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub from: Bytes,
    pub to: Bytes,
    pub replace: bool,
}

impl Copy {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let mut replace = false;
        let mut i = 2;
        while i < v.len() {
            if is(&v[i], "REPLACE") {
                replace = true;
            } else if is(&v[i], "DB") && i + 1 < v.len() {
                if int(&v[i + 1])? != 0 {
                    return Err(CommandError::DbIndexOutOfRange);
                }
                i += 1;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        Ok(Self {
            from: v[0].clone(),
            to: v[1].clone(),
            replace,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        if self.from == self.to {
            return CommandError::SameObject.into();
        }
        ks.write_keys(&[&self.from[..], &self.to[..]], |locked| {
            let Some(entry) = locked
                .shard(&self.from)
                .and_then(|s| s.live(&self.from, now))
                .map(|e| e.to_entry())
            else {
                return Reply::Integer(0);
            };
            let version = ks.next_version();
            let Some(dest) = locked.shard(&self.to) else {
                return Reply::Integer(0);
            };
            if !self.replace && dest.live(&self.to, now).is_some() {
                return Reply::Integer(0);
            }
            dest.put(
                self.to.clone(),
                Entry {
                    version,
                    modified_at: now,
                    ..entry
                },
                now,
            );
            dest.event(Event::CopyTo, &self.to);
            Reply::Integer(1)
        })
    }
}

impl Definition for Copy {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "copy",
            arity: -3,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Keyspace, Category::Write, Category::Slow],
            keys: KeySpec::Range {
                first: 1,
                last: 2,
                step: 1,
            },
            access: KeyAccess::FirstThenRest(Access::READ, Access::WRITE),
            group: "generic",
            summary: "Copy a key",
            example: "COPY a b",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.from[..], &self.to[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::{Get, Set};

    #[test]
    fn copies_unless_present() {
        let s = Store::new();
        Set::new("a", "1").expires_at(50).apply(&s, 0);
        Set::new("b", "2").apply(&s, 0);
        let c = |to: &'static str, replace| {
            Copy {
                from: "a".into(),
                to: to.into(),
                replace,
            }
            .apply(&s, 0)
        };
        assert_eq!(c("b", false), Reply::Integer(0));
        assert_eq!(c("b", true), Reply::Integer(1));
        assert!(
            matches!(Get::new("b").apply(&s, 0), Reply::Value(e) if e.value == "1" && e.expires_at == Some(50))
        );
        assert!(matches!(Get::new("a").apply(&s, 0), Reply::Value(_)));
        assert_eq!(c("a", true), Reply::Error(CommandError::SameObject));
    }
}
