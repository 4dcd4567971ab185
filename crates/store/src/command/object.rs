use bytes::Bytes;

use super::parse::{Args, int};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use crate::usage::{decayed, idle_millis};
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// What `OBJECT HELP` answers.
const HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    The internal representation Redis would use for the value at <key>.",
    "FREQ <key>",
    "    The logarithmic access frequency counter of <key> (needs an LFU maxmemory policy).",
    "IDLETIME <key>",
    "    Seconds since <key> was last accessed (not with an LFU maxmemory policy).",
    "REFCOUNT <key>",
    "    The number of references to the value at <key> (always 1 in kvs).",
    "HELP",
    "    Print this help.",
];

/// What `OBJECT` is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectQuery {
    Encoding,
    Freq,
    IdleTime,
    RefCount,
    /// `OBJECT HELP`: the subcommands, one line each.
    Help,
}

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, answered as Redis would for a string: the
/// encoding Redis would choose (`int`, `embstr`, `raw`); FREQ, the key's LFU counter after decay,
/// only under an LFU policy; IDLETIME, seconds since the last access, under any other. Neither
/// counts as an access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub query: ObjectQuery,
    pub key: Bytes,
}

impl Object {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        let sub = String::from_utf8_lossy(&v[0]).to_ascii_lowercase();
        if sub == "help" && v.len() == 1 {
            return Ok(Self {
                query: ObjectQuery::Help,
                key: Bytes::new(),
            });
        }
        let query = match sub.as_str() {
            "encoding" => ObjectQuery::Encoding,
            "freq" => ObjectQuery::Freq,
            "idletime" => ObjectQuery::IdleTime,
            "refcount" => ObjectQuery::RefCount,
            _ => {
                return Err(CommandError::UnknownSubcommand {
                    sub,
                    command: "OBJECT".into(),
                });
            }
        };
        if v.len() != 2 {
            return Err(CommandError::UnknownSubcommand {
                sub,
                command: "OBJECT".into(),
            });
        }
        Ok(Self {
            query,
            key: v[1].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        if self.query == ObjectQuery::Help {
            return Reply::Array(
                HELP.iter()
                    .map(|line| Reply::Status(line))
                    .collect(),
            );
        }
        ks.read(&self.key, |shard| {
            let Some((entry, usage)) = shard.peek_usage(&self.key, now) else {
                return Reply::Nil;
            };
            let tracking = shard.tracking();
            match self.query {
                ObjectQuery::Encoding if entry.collection().is_some() => Reply::Bulk(
                    Bytes::from_static(entry.collection().map_or("", |c| c.encoding()).as_bytes()),
                ),
                ObjectQuery::Encoding => {
                    let v = &entry.value;
                    Reply::Bulk(Bytes::from_static(if v.len() <= 20 && int(v).is_ok() {
                        b"int"
                    } else if v.len() <= 44 {
                        b"embstr"
                    } else {
                        b"raw"
                    }))
                }
                ObjectQuery::Freq if tracking.counts_frequency() => {
                    Reply::Integer(i64::from(decayed(usage, now, tracking.decay_minutes())))
                }
                ObjectQuery::Freq => CommandError::NoLfuPolicy.into(),
                ObjectQuery::IdleTime if tracking.counts_frequency() => {
                    CommandError::NoLruPolicy.into()
                }
                ObjectQuery::IdleTime => Reply::Integer((idle_millis(usage, now) / 1000) as i64),
                ObjectQuery::RefCount => Reply::Integer(1),
                ObjectQuery::Help => Reply::Nil,
            }
        })
    }
}

impl Definition for Object {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "object",
            arity: -2,
            flags: &[],
            categories: &[Category::Slow],
            keys: KeySpec::None,
            access: KeyAccess::Each(Access::NONE),
            group: "generic",
            summary: "A container for object introspection commands",
            example: "OBJECT ENCODING k",
            subcommands: &[
            Spec {
                name: "object|encoding",
                arity: 3,
                flags: &[Flag::Readonly],
                categories: &[Category::Keyspace, Category::Read, Category::Slow],
                keys: KeySpec::Range {
                    first: 2,
                    last: 2,
                    step: 1,
                },
                access: KeyAccess::Each(Access::NONE),
                group: "generic",
                summary: "Inspect the internal encoding of a Redis object",
                example: "OBJECT ENCODING k",
                ..Spec::BLANK
            },
            Spec {
                name: "object|idletime",
                arity: 3,
                flags: &[Flag::Readonly],
                categories: &[Category::Keyspace, Category::Read, Category::Slow],
                keys: KeySpec::Range {
                    first: 2,
                    last: 2,
                    step: 1,
                },
                access: KeyAccess::Each(Access::NONE),
                group: "generic",
                summary: "Get the time since a Redis object was last accessed",
                example: "OBJECT IDLETIME k",
                ..Spec::BLANK
            },
            Spec {
                name: "object|freq",
                arity: 3,
                flags: &[Flag::Readonly],
                categories: &[Category::Keyspace, Category::Read, Category::Slow],
                keys: KeySpec::Range {
                    first: 2,
                    last: 2,
                    step: 1,
                },
                access: KeyAccess::Each(Access::NONE),
                group: "generic",
                summary: "Get the logarithmic access frequency counter of a Redis object",
                example: "OBJECT FREQ k",
                ..Spec::BLANK
            },
            Spec {
                name: "object|help",
                arity: 2,
                flags: &[Flag::Loading, Flag::Stale],
                categories: &[Category::Keyspace, Category::Slow],
                keys: KeySpec::None,
                access: KeyAccess::Each(Access::NONE),
                group: "generic",
                summary: "Show helpful text about the different subcommands",
                example: "OBJECT HELP",
                ..Spec::BLANK
            },
            Spec {
                name: "object|refcount",
                arity: 3,
                flags: &[Flag::Readonly],
                categories: &[Category::Keyspace, Category::Read, Category::Slow],
                keys: KeySpec::Range {
                    first: 2,
                    last: 2,
                    step: 1,
                },
                access: KeyAccess::Each(Access::NONE),
                group: "generic",
                summary: "Get the number of references to the value of the key",
                example: "OBJECT REFCOUNT k",
                ..Spec::BLANK
            },
        ],
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        if self.query == ObjectQuery::Help {
            return Some(Vec::new());
        }
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    #[test]
    fn encodings() {
        let s = Store::new();
        let enc = |k: &'static str| {
            Object {
                query: ObjectQuery::Encoding,
                key: k.into(),
            }
            .apply(&s, 0)
        };
        Set::new("i", "12345").apply(&s, 0);
        Set::new("e", "hello").apply(&s, 0);
        Set::new("r", "x".repeat(45)).apply(&s, 0);
        assert_eq!(enc("i"), Reply::Bulk("int".into()));
        assert_eq!(enc("e"), Reply::Bulk("embstr".into()));
        assert_eq!(enc("r"), Reply::Bulk("raw".into()));
        assert_eq!(enc("missing"), Reply::Nil);
    }
}
