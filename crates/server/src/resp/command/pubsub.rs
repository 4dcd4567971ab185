//! The pub/sub group: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH, SPUBLISH and
//! PUBSUB, as Redis 7 answers them (see [`crate::pubsub`] for delivery).

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Access, Category, Flag, KeyAccess, KeySpec, Spec};

use super::SessionCommand;
use crate::pubsub::Kind;
use crate::resp::session::Session;

const SUBSCRIBING: &[Flag] = &[Flag::Pubsub, Flag::Noscript, Flag::Loading, Flag::Stale];
const PUBLISHING: &[Flag] = &[Flag::Pubsub, Flag::Loading, Flag::Stale, Flag::Fast];
const SLOW: &[Category] = &[Category::Pubsub, Category::Slow];
const FAST: &[Category] = &[Category::Pubsub, Category::Fast];

const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [Flag],
    categories: &'static [Category],
    summary: &'static str,
    example: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        categories,
        group: "pubsub",
        summary,
        example,
        ..Spec::BLANK
    }
}

/// A shard channel's spec: its channels sit where keys do (so a cluster could route them by
/// slot, and COMMAND INFO shows them as Redis does), but they are channels, not keys: ACL checks
/// them as channels.
const fn shard(spec: Spec, last: i64) -> Spec {
    Spec {
        keys: KeySpec::Range {
            first: 1,
            last,
            step: 1,
        },
        access: KeyAccess::Each(Access::NONE),
        ..spec
    }
}

const INTROSPECTION: &[Flag] = &[Flag::Pubsub, Flag::Loading, Flag::Stale];

pub(super) const COMMANDS: &[SessionCommand] = &[
    SessionCommand {
        spec: spec(
            "subscribe",
            -2,
            SUBSCRIBING,
            SLOW,
            "Listen for messages published to the given channels",
            "SUBSCRIBE news",
        ),
        run: |s, args| subscribe(s, Kind::Channel, args),
    },
    SessionCommand {
        spec: spec(
            "unsubscribe",
            -1,
            SUBSCRIBING,
            SLOW,
            "Stop listening for messages posted to the given channels",
            "UNSUBSCRIBE news",
        ),
        run: |s, args| unsubscribe(s, Kind::Channel, args),
    },
    SessionCommand {
        spec: spec(
            "psubscribe",
            -2,
            SUBSCRIBING,
            SLOW,
            "Listen for messages published to channels matching the given patterns",
            "PSUBSCRIBE news.*",
        ),
        run: |s, args| subscribe(s, Kind::Pattern, args),
    },
    SessionCommand {
        spec: spec(
            "punsubscribe",
            -1,
            SUBSCRIBING,
            SLOW,
            "Stop listening for messages posted to channels matching the given patterns",
            "PUNSUBSCRIBE news.*",
        ),
        run: |s, args| unsubscribe(s, Kind::Pattern, args),
    },
    SessionCommand {
        spec: shard(
            spec(
                "ssubscribe",
                -2,
                SUBSCRIBING,
                SLOW,
                "Listen for messages published to the given shard channels",
                "SSUBSCRIBE orders",
            ),
            -1,
        ),
        run: |s, args| subscribe(s, Kind::Shard, args),
    },
    SessionCommand {
        spec: shard(
            spec(
                "sunsubscribe",
                -1,
                SUBSCRIBING,
                SLOW,
                "Stop listening for messages posted to the given shard channels",
                "SUNSUBSCRIBE orders",
            ),
            -1,
        ),
        run: |s, args| unsubscribe(s, Kind::Shard, args),
    },
    SessionCommand {
        spec: spec(
            "publish",
            3,
            PUBLISHING,
            FAST,
            "Post a message to a channel",
            "PUBLISH news hello",
        ),
        run: publish,
    },
    SessionCommand {
        spec: shard(
            spec(
                "spublish",
                3,
                PUBLISHING,
                FAST,
                "Post a message to a shard channel",
                "SPUBLISH orders hello",
            ),
            1,
        ),
        run: spublish,
    },
    SessionCommand {
        spec: Spec {
            subcommands: &[
                spec(
                    "pubsub|channels",
                    -2,
                    INTROSPECTION,
                    SLOW,
                    "List active channels",
                    "PUBSUB CHANNELS news.*",
                ),
                spec(
                    "pubsub|help",
                    2,
                    &[Flag::Loading, Flag::Stale],
                    &[Category::Slow],
                    "Show helpful text about the different subcommands",
                    "PUBSUB HELP",
                ),
                spec(
                    "pubsub|numpat",
                    2,
                    INTROSPECTION,
                    SLOW,
                    "Get the count of unique patterns pattern subscriptions",
                    "PUBSUB NUMPAT",
                ),
                spec(
                    "pubsub|numsub",
                    -2,
                    INTROSPECTION,
                    SLOW,
                    "Get the count of subscribers for channels",
                    "PUBSUB NUMSUB news",
                ),
                spec(
                    "pubsub|shardchannels",
                    -2,
                    INTROSPECTION,
                    SLOW,
                    "List active shard channels",
                    "PUBSUB SHARDCHANNELS",
                ),
                spec(
                    "pubsub|shardnumsub",
                    -2,
                    INTROSPECTION,
                    SLOW,
                    "Get the count of subscribers for shard channels",
                    "PUBSUB SHARDNUMSUB orders",
                ),
            ],
            ..spec(
                "pubsub",
                -2,
                &[],
                &[Category::Slow],
                "A container for Pub/Sub commands",
                "PUBSUB CHANNELS",
            )
        },
        run: pubsub,
    },
];

/// One confirmation: `[word, name, count]`, a push frame in RESP3.
fn confirmation(word: &str, name: Option<Bytes>, count: usize) -> Frame {
    Frame::Push(vec![
        Frame::bulk(word.to_owned()),
        name.map_or(Frame::Null, Frame::Bulk),
        Frame::Integer(count as i64),
    ])
}

fn subscribe(session: &mut Session, kind: Kind, names: &[Bytes]) -> Frame {
    let subs = session.subscriptions();
    let (word, _) = kind.words();
    Frame::Many(
        names
            .iter()
            .map(|name| {
                subs.add(kind, name);
                confirmation(word, Some(name.clone()), subs.count(kind))
            })
            .collect(),
    )
}

fn unsubscribe(session: &mut Session, kind: Kind, names: &[Bytes]) -> Frame {
    let (_, word) = kind.words();
    // Messages delivered before the subscriptions end go out before the confirmations.
    session.drain_before_reply = true;
    let Some(subs) = session.subs.as_mut() else {
        return Frame::Many(if names.is_empty() {
            vec![confirmation(word, None, 0)]
        } else {
            names
                .iter()
                .map(|n| confirmation(word, Some(n.clone()), 0))
                .collect()
        });
    };
    let names = if names.is_empty() {
        subs.names(kind)
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        return confirmation(word, None, subs.count(kind));
    }
    Frame::Many(
        names
            .into_iter()
            .map(|name| {
                subs.remove(kind, &name);
                let count = subs.count(kind);
                confirmation(word, Some(name), count)
            })
            .collect(),
    )
}

fn publish(session: &mut Session, args: &[Bytes]) -> Frame {
    let [channel, message] = args else {
        return super::arity("publish");
    };
    let pubsub = session.shared.engine.pubsub().clone();
    Frame::Integer(pubsub.publish(channel, message, &mut session.wakes) as i64)
}

fn spublish(session: &mut Session, args: &[Bytes]) -> Frame {
    let [channel, message] = args else {
        return super::arity("spublish");
    };
    let pubsub = session.shared.engine.pubsub().clone();
    Frame::Integer(pubsub.publish_shard(channel, message, &mut session.wakes) as i64)
}

fn pubsub(session: &mut Session, args: &[Bytes]) -> Frame {
    let Some((sub, rest)) = args.split_first() else {
        return super::arity("pubsub");
    };
    let pubsub = session.shared.engine.pubsub();
    let names = |kind: Kind| match rest {
        [] => Frame::Array(
            pubsub
                .active(kind, None)
                .into_iter()
                .map(Frame::Bulk)
                .collect(),
        ),
        [pattern] => Frame::Array(
            pubsub
                .active(kind, Some(pattern))
                .into_iter()
                .map(Frame::Bulk)
                .collect(),
        ),
        _ => subcommand_error(sub),
    };
    let counts = |kind: Kind| {
        Frame::Array(
            rest.iter()
                .flat_map(|name| {
                    [
                        Frame::Bulk(name.clone()),
                        Frame::Integer(pubsub.count(kind, name) as i64),
                    ]
                })
                .collect(),
        )
    };
    match sub.to_ascii_lowercase().as_slice() {
        b"channels" => names(Kind::Channel),
        b"shardchannels" => names(Kind::Shard),
        b"numsub" => counts(Kind::Channel),
        b"shardnumsub" => counts(Kind::Shard),
        b"numpat" if rest.is_empty() => Frame::Integer(pubsub.distinct(Kind::Pattern) as i64),
        b"help" if rest.is_empty() => help(),
        _ => subcommand_error(sub),
    }
}

/// Redis's answer to a PUBSUB subcommand it does not know, or with the wrong arguments.
fn subcommand_error(sub: &[u8]) -> Frame {
    Frame::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        String::from_utf8_lossy(sub)
    ))
}

fn help() -> Frame {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Print this help.",
    ];
    Frame::Array(lines.iter().map(|l| Frame::Simple((*l).into())).collect())
}
