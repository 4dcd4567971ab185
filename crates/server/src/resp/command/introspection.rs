//! The introspection group: SLOWLOG (GET, LEN, RESET, HELP), LATENCY (HISTOGRAM, HELP) and
//! MONITOR, as Redis 7 answers them.

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Category, CommandError, Flag, Spec};

use super::SessionCommand;
use crate::resp::session::Session;
use crate::stats::slowlog::Entry;

const ADMIN: &[Flag] = &[Flag::Admin, Flag::Loading, Flag::Stale];
const ADMIN_NOSCRIPT: &[Flag] = &[Flag::Admin, Flag::Noscript, Flag::Loading, Flag::Stale];
const ADMIN_CATEGORIES: &[Category] = &[Category::Admin, Category::Slow, Category::Dangerous];
const HELP_FLAGS: &[Flag] = &[Flag::Loading, Flag::Stale];
const HELP_CATEGORIES: &[Category] = &[Category::Slow];

const fn sub(
    name: &'static str,
    arity: i32,
    admin: &'static [Flag],
    summary: &'static str,
    example: &'static str,
) -> Spec {
    let help = admin.is_empty();
    Spec {
        name,
        arity,
        flags: if help { HELP_FLAGS } else { admin },
        categories: if help {
            HELP_CATEGORIES
        } else {
            ADMIN_CATEGORIES
        },
        group: "server",
        summary,
        example,
        ..Spec::BLANK
    }
}

pub(super) const COMMANDS: &[SessionCommand] = &[
    SessionCommand {
        spec: Spec {
            name: "slowlog",
            arity: -2,
            categories: &[Category::Slow],
            group: "server",
            summary: "A container for slow log commands",
            example: "SLOWLOG LEN",
            subcommands: &[
                sub(
                    "slowlog|get",
                    -2,
                    ADMIN,
                    "Get the slow log's entries",
                    "SLOWLOG GET 10",
                ),
                sub(
                    "slowlog|len",
                    2,
                    ADMIN,
                    "Get the slow log's length",
                    "SLOWLOG LEN",
                ),
                sub(
                    "slowlog|reset",
                    2,
                    ADMIN,
                    "Clear all entries from the slow log",
                    "SLOWLOG RESET",
                ),
                sub(
                    "slowlog|help",
                    2,
                    &[],
                    "Show helpful text about the different subcommands",
                    "SLOWLOG HELP",
                ),
            ],
            ..Spec::BLANK
        },
        run: slowlog,
    },
    SessionCommand {
        spec: Spec {
            name: "latency",
            arity: -2,
            categories: &[Category::Slow],
            group: "server",
            summary: "A container for latency diagnostics commands",
            example: "LATENCY HISTOGRAM",
            subcommands: &[
                sub(
                    "latency|histogram",
                    -2,
                    ADMIN_NOSCRIPT,
                    "Return the cumulative distribution of latencies of a subset of commands or all.",
                    "LATENCY HISTOGRAM GET SET",
                ),
                sub(
                    "latency|help",
                    2,
                    &[],
                    "Show helpful text about the different subcommands.",
                    "LATENCY HELP",
                ),
            ],
            ..Spec::BLANK
        },
        run: latency,
    },
    SessionCommand {
        spec: Spec {
            name: "monitor",
            arity: 1,
            flags: ADMIN_NOSCRIPT,
            categories: ADMIN_CATEGORIES,
            group: "server",
            summary: "Listen for all requests received by the server in real time",
            example: "MONITOR",
            ..Spec::BLANK
        },
        run: monitor,
    },
];

/// From now on the connection is sent every request from every door (see
/// [`crate::stats::monitor`]), until it closes or RESET.
fn monitor(session: &mut Session, _: &[Bytes]) -> Frame {
    let mailbox = session.subscriptions().mailbox.clone();
    session.shared.engine.stats().monitors.add(&mailbox);
    session
        .activity
        .monitor
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Frame::ok()
}

/// Runs after the table checked the subcommand and its arity.
fn slowlog(session: &mut Session, args: &[Bytes]) -> Frame {
    let log = &session.shared.engine.stats().slowlog;
    let Some((sub, rest)) = args.split_first() else {
        return super::arity("slowlog");
    };
    match (sub.to_ascii_lowercase().as_slice(), rest) {
        (b"get", []) => entries(log.newest(Some(10))),
        (b"get", [count]) => match std::str::from_utf8(count)
            .ok()
            .and_then(|c| c.parse::<i64>().ok())
        {
            None => Frame::Error(CommandError::NotInteger.to_string()),
            Some(n) if n < -1 => Frame::err("count should be greater than or equal to -1"),
            Some(-1) => entries(log.newest(None)),
            Some(n) => entries(log.newest(Some(usize::try_from(n).unwrap_or(usize::MAX)))),
        },
        (b"get", _) => Frame::Error(CommandError::Syntax.to_string()),
        (b"len", _) => Frame::Integer(log.len() as i64),
        (b"reset", _) => {
            log.reset();
            Frame::ok()
        }
        _ => super::help(&COMMANDS[0].spec),
    }
}

/// Each entry as Redis gives it: id, unix time, microseconds, arguments, client address, client
/// name.
fn entries(entries: Vec<Entry>) -> Frame {
    Frame::Array(
        entries
            .into_iter()
            .map(|e| {
                Frame::Array(vec![
                    Frame::Integer(e.id as i64),
                    Frame::Integer(e.time as i64),
                    Frame::Integer(i64::try_from(e.micros).unwrap_or(i64::MAX)),
                    Frame::Array(e.args.into_iter().map(Frame::Bulk).collect()),
                    Frame::bulk(e.addr),
                    Frame::bulk(e.name),
                ])
            })
            .collect(),
    )
}

fn latency(session: &mut Session, args: &[Bytes]) -> Frame {
    let Some((sub, names)) = args.split_first() else {
        return super::arity("latency");
    };
    if !sub.eq_ignore_ascii_case(b"histogram") {
        return super::help(&COMMANDS[1].spec);
    }
    let totals = session.shared.engine.stats().commands();
    let wanted = |name: &str| {
        names.is_empty()
            || names.iter().any(|n| {
                let n = String::from_utf8_lossy(n).to_ascii_lowercase();
                // A container names its subcommands too, as in Redis.
                name == n || name.split_once('|').is_some_and(|(c, _)| c == n)
            })
    };
    Frame::Map(
        totals
            .iter()
            .filter(|t| t.calls > 0 && wanted(t.name))
            .map(|t| {
                let buckets = t
                    .latency
                    .redis_buckets()
                    .into_iter()
                    .map(|(us, n)| (Frame::Integer(us as i64), Frame::Integer(n as i64)))
                    .collect();
                (
                    Frame::bulk(t.name),
                    Frame::Map(vec![
                        (Frame::bulk("calls"), Frame::Integer(t.calls as i64)),
                        (Frame::bulk("histogram_usec"), Frame::Map(buckets)),
                    ]),
                )
            })
            .collect(),
    )
}
