use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{Entry, Millis};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `RENAME from to` / `RENAMENX from to`: move a value, with its content type and expiry, to a
/// new key in one step (both shards locked). The moved value gets a new version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    pub from: Bytes,
    pub to: Bytes,
    /// `RENAMENX`: only if `to` does not exist; answers 1 or 0 instead of OK.
    pub only_if_new: bool,
}

impl Rename {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(2)?;
        Ok(Self {
            from: v[0].clone(),
            to: v[1].clone(),
            only_if_new: a.cmd == "renamenx",
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write_keys(&[&self.from[..], &self.to[..]], |locked| {
            let Some(entry) = locked
                .shard(&self.from)
                .and_then(|s| s.live(&self.from, now))
                .map(|e| e.to_entry())
            else {
                return CommandError::NoSuchKey.into();
            };
            if self.only_if_new
                && locked
                    .shard(&self.to)
                    .and_then(|s| s.live(&self.to, now))
                    .is_some()
            {
                return Reply::Integer(0);
            }
            if self.from != self.to {
                let version = ks.next_version();
                if let Some(s) = locked.shard(&self.from) {
                    s.remove(&self.from);
                    s.event(Event::RenameFrom, &self.from);
                }
                if let Some(s) = locked.shard(&self.to) {
                    s.put(self.to.clone(), Entry { version, ..entry }, now);
                    s.event(Event::RenameTo, &self.to);
                }
            }
            if self.only_if_new {
                Reply::Integer(1)
            } else {
                Reply::Ok
            }
        })
    }
}

impl Definition for Rename {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "rename",
            arity: 3,
            flags: &[Flag::Write],
            categories: &[Category::Keyspace, Category::Write, Category::Slow],
            keys: KeySpec::Range {
                first: 1,
                last: 2,
                step: 1,
            },
            access: KeyAccess::FirstThenRest(Access::READ_WRITE, Access::WRITE),
            group: "generic",
            summary: "Rename a key",
            example: "RENAME a b",
            ..Spec::BLANK
        },
        Spec {
            name: "renamenx",
            arity: 3,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Keyspace, Category::Write, Category::Fast],
            keys: KeySpec::Range {
                first: 1,
                last: 2,
                step: 1,
            },
            access: KeyAccess::FirstThenRest(Access::READ_WRITE, Access::WRITE),
            group: "generic",
            summary: "Rename a key, only if the new key does not exist",
            example: "RENAMENX a b",
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
    fn moves_value_and_metadata() {
        let s = Store::new();
        Set::new("a", "1")
            .content_type("text/plain")
            .expires_at(100)
            .apply(&s, 0);
        Set::new("b", "2").apply(&s, 0);
        let r = |from: &'static str, to: &'static str, nx| {
            Rename {
                from: from.into(),
                to: to.into(),
                only_if_new: nx,
            }
            .apply(&s, 0)
        };
        assert_eq!(r("a", "b", true), Reply::Integer(0));
        assert_eq!(r("a", "c", false), Reply::Ok);
        assert_eq!(Get::new("a").apply(&s, 0), Reply::NotFound);
        let Reply::Value(e) = Get::new("c").apply(&s, 0) else {
            panic!("moved")
        };
        assert_eq!(
            (e.value, e.content_type, e.expires_at),
            (Bytes::from("1").into(), "text/plain".into(), Some(100))
        );
        assert_eq!(r("nope", "x", false), Reply::Error(CommandError::NoSuchKey));
        assert_eq!(r("c", "c", false), Reply::Ok);
        assert!(matches!(Get::new("c").apply(&s, 0), Reply::Value(_)));
        assert_eq!(
            s.sweep_expired(100, 10),
            1,
            "the expiry moved with the value"
        );
    }
}
