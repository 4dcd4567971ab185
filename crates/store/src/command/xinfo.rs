use bytes::Bytes;

use super::Definition;
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::xrange::entry_reply;
use crate::access::Keyspace;
use crate::collection::Stream;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

const HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Print this help.",
];

/// What XINFO is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XInfoQuery {
    /// `STREAM key`, or with `FULL` its first `count` entries (0: all) instead of the edges.
    Stream { full: Option<usize> },
    Groups,
    Consumers { group: Bytes },
    Help,
}

/// `XINFO STREAM|GROUPS|CONSUMERS|HELP`. kvs's streams have no consumer groups, so a stream's
/// group list is empty and any group named is missing, with Redis's answers for both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XInfo {
    pub query: XInfoQuery,
    pub key: Bytes,
}

fn text(s: &'static str) -> Reply {
    Reply::Bulk(Bytes::from_static(s.as_bytes()))
}

fn id_reply(id: crate::collection::StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

/// The summary XINFO STREAM starts with: the node counts are those of Redis's layout of the
/// same entries.
fn summary(s: &Stream) -> Vec<(Reply, Reply)> {
    let nodes = s.nodes() as i64;
    vec![
        (text("length"), Reply::Integer(s.len() as i64)),
        (text("radix-tree-keys"), Reply::Integer(nodes)),
        (text("radix-tree-nodes"), Reply::Integer(s.index_nodes() as i64)),
        (text("last-generated-id"), id_reply(s.last_id())),
        (text("max-deleted-entry-id"), id_reply(s.max_deleted())),
        (
            text("entries-added"),
            Reply::Integer(i64::try_from(s.entries_added()).unwrap_or(i64::MAX)),
        ),
        (
            text("recorded-first-entry-id"),
            id_reply(s.first().map_or(crate::collection::StreamId::MIN, |e| e.0)),
        ),
    ]
}

impl XInfo {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        if self.query == XInfoQuery::Help {
            return Reply::Array(HELP.iter().map(|line| Reply::Status(line)).collect());
        }
        ks.read(&self.key, |shard| {
            let stream = match shard.live(&self.key, now) {
                None => return CommandError::NoSuchKey.into(),
                Some(e) if e.kind != Kind::Stream => return CommandError::WrongType.into(),
                Some(e) => match e.stream() {
                    Ok(s) => s,
                    Err(e) => return e.into(),
                },
            };
            match &self.query {
                XInfoQuery::Stream { full: None } => {
                    let mut map = summary(stream);
                    map.push((text("groups"), Reply::Integer(0)));
                    let edge = |e: Option<(_, _)>| e.map_or(Reply::Nil, |(id, p)| entry_reply(id, p));
                    map.push((text("first-entry"), edge(stream.first())));
                    map.push((text("last-entry"), edge(stream.last())));
                    Reply::Map(map)
                }
                XInfoQuery::Stream { full: Some(count) } => {
                    let mut map = summary(stream);
                    let take = if *count == 0 { usize::MAX } else { *count };
                    let entries = stream.iter().take(take).map(|(id, p)| entry_reply(id, p));
                    map.push((text("entries"), Reply::Array(entries.collect())));
                    map.push((text("groups"), Reply::Array(Vec::new())));
                    Reply::Map(map)
                }
                XInfoQuery::Groups => Reply::Array(Vec::new()),
                XInfoQuery::Consumers { group } => Reply::Error(CommandError::Coded(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(group),
                    String::from_utf8_lossy(&self.key)
                ))),
                XInfoQuery::Help => Reply::Nil,
            }
        })
    }
}

const KEY2: KeySpec = KeySpec::Range {
    first: 2,
    last: 2,
    step: 1,
};

impl Definition for XInfo {
    const SPECS: &'static [Spec] = &[Spec {
        name: "xinfo",
        arity: -2,
        categories: &[Category::Slow],
        group: "stream",
        summary: "A container for stream introspection commands",
        example: "XINFO STREAM s",
        subcommands: &[
            Spec {
                name: "xinfo|consumers",
                arity: 4,
                flags: &[Flag::Readonly],
                categories: &[Category::Read, Category::Stream, Category::Slow],
                keys: KEY2,
                access: KeyAccess::Each(Access::READ),
                group: "stream",
                summary: "List the consumers in a consumer group",
                example: "XINFO CONSUMERS s g",
                ..Spec::BLANK
            },
            Spec {
                name: "xinfo|groups",
                arity: 3,
                flags: &[Flag::Readonly],
                categories: &[Category::Read, Category::Stream, Category::Slow],
                keys: KEY2,
                access: KeyAccess::Each(Access::READ),
                group: "stream",
                summary: "List the consumer groups of a stream",
                example: "XINFO GROUPS s",
                ..Spec::BLANK
            },
            Spec {
                name: "xinfo|help",
                arity: 2,
                flags: &[Flag::Loading, Flag::Stale],
                categories: &[Category::Stream, Category::Slow],
                group: "stream",
                summary: "Show helpful text about the different subcommands",
                example: "XINFO HELP",
                ..Spec::BLANK
            },
            Spec {
                name: "xinfo|stream",
                arity: -3,
                flags: &[Flag::Readonly],
                categories: &[Category::Read, Category::Stream, Category::Slow],
                keys: KEY2,
                access: KeyAccess::Each(Access::READ),
                group: "stream",
                summary: "Get information about a stream",
                example: "XINFO STREAM s FULL COUNT 5",
                ..Spec::BLANK
            },
        ],
        ..Spec::BLANK
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        let sub = String::from_utf8_lossy(&v[0]).to_ascii_lowercase();
        let unknown = || CommandError::UnknownSubcommand {
            sub: sub.clone(),
            command: "XINFO".into(),
        };
        let query = match (sub.as_str(), v.len()) {
            ("help", 1) => {
                return Ok(Self {
                    query: XInfoQuery::Help,
                    key: Bytes::new(),
                });
            }
            ("groups", 2) => XInfoQuery::Groups,
            ("consumers", 3) => XInfoQuery::Consumers {
                group: v[2].clone(),
            },
            ("stream", 2) => XInfoQuery::Stream { full: None },
            ("stream", n) if n >= 3 => {
                if !is(&v[2], "full") {
                    return Err(CommandError::Syntax);
                }
                let count = match &v[3..] {
                    [] => 10,
                    [opt, n] if is(opt, "count") => {
                        usize::try_from(int(n)?.max(0)).unwrap_or(usize::MAX)
                    }
                    _ => return Err(CommandError::Syntax),
                };
                XInfoQuery::Stream { full: Some(count) }
            }
            _ => return Err(unknown()),
        };
        Ok(Self {
            query,
            key: v[1].clone(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        if self.query == XInfoQuery::Help {
            return Some(Vec::new());
        }
        Some(vec![&self.key[..]])
    }
}
