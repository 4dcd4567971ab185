//! The server group: COMMAND (the table itself, as clients read it), INFO, CONFIG, TIME, SAVE,
//! BGSAVE, LASTSAVE.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Category, Flag, KeySpec, Spec, glob_match};

use super::SessionCommand;
use crate::resp::session::Session;
use crate::resp::{admin, persistence};

const TABLE_FLAGS: &[Flag] = &[Flag::Loading, Flag::Stale];
const TABLE_CATEGORIES: &[Category] = &[Category::Slow, Category::Connection];
const CONFIG_FLAGS: &[Flag] = &[Flag::Admin, Flag::Noscript, Flag::Loading, Flag::Stale];
const CONFIG_CATEGORIES: &[Category] = &[Category::Admin, Category::Slow, Category::Dangerous];

/// A subcommand's spec with the flags and categories of its container's kind.
const fn sub(
    flags: &'static [Flag],
    categories: &'static [Category],
    name: &'static str,
    arity: i32,
    summary: &'static str,
    example: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        categories,
        group: "server",
        summary,
        example,
        ..Spec::BLANK
    }
}

/// A COMMAND subcommand's spec.
const fn table_sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    ex: &'static str,
) -> Spec {
    sub(TABLE_FLAGS, TABLE_CATEGORIES, name, arity, summary, ex)
}

/// A CONFIG subcommand's spec.
const fn config_sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    ex: &'static str,
) -> Spec {
    sub(CONFIG_FLAGS, CONFIG_CATEGORIES, name, arity, summary, ex)
}

pub(super) const COMMANDS: &[SessionCommand] = &[
    SessionCommand {
        spec: Spec {
            name: "command",
            arity: -1,
            flags: TABLE_FLAGS,
            categories: TABLE_CATEGORIES,
            group: "server",
            summary: "Get array of Redis command details",
            example: "COMMAND",
            subcommands: &[
                table_sub(
                    "command|count",
                    2,
                    "Get total number of Redis commands",
                    "COMMAND COUNT",
                ),
                table_sub(
                    "command|list",
                    -2,
                    "Get an array of Redis command names",
                    "COMMAND LIST",
                ),
                table_sub(
                    "command|info",
                    -2,
                    "Get array of specific Redis command details, or all when no argument is given.",
                    "COMMAND INFO get",
                ),
                table_sub(
                    "command|docs",
                    -2,
                    "Get array of specific Redis command documentation",
                    "COMMAND DOCS get",
                ),
                table_sub(
                    "command|getkeys",
                    -4,
                    "Extract keys given a full Redis command",
                    "COMMAND GETKEYS get k",
                ),
                table_sub(
                    "command|help",
                    2,
                    "Show helpful text about the different subcommands",
                    "COMMAND HELP",
                ),
            ],
            ..Spec::BLANK
        },
        run: command,
    },
    SessionCommand {
        spec: Spec {
            name: "info",
            arity: -1,
            flags: &[Flag::Loading, Flag::Stale],
            categories: &[Category::Slow, Category::Dangerous],
            group: "server",
            summary: "Get information and statistics about the server",
            example: "INFO keyspace",
            ..Spec::BLANK
        },
        run: |session, args| crate::resp::info::info(&session.shared, args),
    },
    SessionCommand {
        spec: Spec {
            name: "config",
            arity: -2,
            categories: &[Category::Slow],
            group: "server",
            summary: "A container for server configuration commands",
            example: "CONFIG GET maxmemory",
            subcommands: &[
                config_sub(
                    "config|get",
                    -3,
                    "Get the values of configuration parameters",
                    "CONFIG GET max*",
                ),
                config_sub(
                    "config|set",
                    -4,
                    "Set configuration parameters to the given values",
                    "CONFIG SET maxclients 10",
                ),
                config_sub(
                    "config|resetstat",
                    2,
                    "Reset the stats returned by INFO",
                    "CONFIG RESETSTAT",
                ),
                Spec {
                    flags: TABLE_FLAGS,
                    categories: &[Category::Slow],
                    ..config_sub(
                        "config|help",
                        2,
                        "Show helpful text about the different subcommands",
                        "CONFIG HELP",
                    )
                },
            ],
            ..Spec::BLANK
        },
        run: config,
    },
    SessionCommand {
        spec: Spec {
            name: "time",
            arity: 1,
            flags: &[Flag::Loading, Flag::Stale, Flag::Fast],
            categories: &[Category::Fast],
            group: "server",
            summary: "Return the current server time",
            example: "TIME",
            ..Spec::BLANK
        },
        run: time,
    },
    SessionCommand {
        spec: Spec {
            name: "shutdown",
            arity: -1,
            flags: &[
                Flag::Admin,
                Flag::Noscript,
                Flag::Loading,
                Flag::Stale,
                Flag::NoMulti,
                Flag::AllowBusy,
            ],
            categories: &[Category::Admin, Category::Slow, Category::Dangerous],
            group: "server",
            summary: "Synchronously save the dataset to disk and then shut down the server",
            example: "SHUTDOWN NOSAVE",
            ..Spec::BLANK
        },
        run: shutdown,
    },
    SessionCommand {
        spec: Spec {
            name: "save",
            arity: 1,
            flags: &[
                Flag::Admin,
                Flag::Noscript,
                Flag::NoAsyncLoading,
                Flag::NoMulti,
            ],
            categories: &[Category::Admin, Category::Slow, Category::Dangerous],
            group: "server",
            summary: "Synchronously save the dataset to disk",
            example: "SAVE",
            ..Spec::BLANK
        },
        run: save,
    },
    SessionCommand {
        spec: Spec {
            name: "bgsave",
            arity: -1,
            flags: &[Flag::Admin, Flag::Noscript, Flag::NoAsyncLoading],
            categories: &[Category::Admin, Category::Slow, Category::Dangerous],
            group: "server",
            summary: "Asynchronously save the dataset to disk",
            example: "BGSAVE",
            ..Spec::BLANK
        },
        run: |session, _| persistence::bgsave(&session.shared.engine),
    },
    SessionCommand {
        spec: Spec {
            name: "lastsave",
            arity: 1,
            flags: &[Flag::Loading, Flag::Stale, Flag::Fast],
            categories: &[Category::Admin, Category::Fast, Category::Dangerous],
            group: "server",
            summary: "Get the UNIX time stamp of the last successful save to disk",
            example: "LASTSAVE",
            ..Spec::BLANK
        },
        run: |session, _| persistence::lastsave(&session.shared.engine),
    },
];

/// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`: stops the server as SIGTERM does (no new
/// connections, requests in flight finished, the log closed), after a snapshot with SAVE. The
/// client gets no reply: its connection closes, as Redis's clients expect. While a script runs,
/// only SHUTDOWN NOSAVE is accepted, and it ends the process at once (the log closed first): the
/// way out of a script that has written and so cannot be killed.
fn shutdown(session: &mut Session, args: &[Bytes]) -> Frame {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for arg in args {
        match arg.to_ascii_lowercase().as_slice() {
            b"save" => save = true,
            b"nosave" => nosave = true,
            b"abort" => abort = true,
            b"now" | b"force" => {}
            _ => return Frame::err("syntax error"),
        }
    }
    if (save && nosave) || (abort && args.len() > 1) {
        return Frame::err("syntax error");
    }
    if abort {
        return Frame::err("No shutdown in progress.");
    }
    let engine = session.shared.engine.clone();
    if engine.script().holds_shards_for_long() {
        if !nosave {
            return Frame::Error(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
                    .into(),
            );
        }
        tracing::warn!("SHUTDOWN NOSAVE while a script runs: the process ends now");
        // The doors stop accepting first (as for any shutdown), so no client connects to a
        // server about to vanish; then the log is closed and the process ends.
        session.shared.shutdown.cancel();
        std::thread::sleep(std::time::Duration::from_millis(100));
        engine.close();
        std::process::exit(0);
    }
    if save {
        let Ok(awaited) = persistence::save(&engine) else {
            return Frame::err("Errors trying to SHUTDOWN. Check logs.");
        };
        let token = session.shared.shutdown.clone();
        tokio::spawn(async move {
            match awaited.await {
                Ok(Ok(_)) => token.cancel(),
                _ => tracing::warn!("SHUTDOWN SAVE: the snapshot failed; the server goes on"),
            }
        });
    } else {
        session.shared.shutdown.cancel();
    }
    session.closing = true;
    session.silent = true;
    Frame::Null
}

fn time(_: &mut Session, _: &[Bytes]) -> Frame {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Frame::Array(vec![
        Frame::bulk(now.as_secs().to_string()),
        Frame::bulk(now.subsec_micros().to_string()),
    ])
}

fn save(session: &mut Session, _: &[Bytes]) -> Frame {
    match persistence::save(&session.shared.engine) {
        Ok(awaited) => {
            session.awaited = Some(awaited);
            Frame::ok()
        }
        Err(frame) => frame,
    }
}

fn config(session: &mut Session, args: &[Bytes]) -> Frame {
    match args.first().map(|s| s.to_ascii_lowercase()) {
        Some(sub) if sub == b"help" => super::help(&COMMANDS[2].spec),
        _ => admin::config(&session.shared, args),
    }
}

/// One command's line of `COMMAND` / `COMMAND INFO`, in Redis 7's shape.
fn spec_frame(spec: &Spec) -> Frame {
    let (first, last, step) = spec.keys.shown();
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(i64::from(spec.arity)),
        Frame::Set(
            spec.flags
                .iter()
                .map(|f| Frame::Simple(f.name().to_owned()))
                // Keys found by a `numkeys` argument move with it, as Redis marks them.
                .chain(
                    matches!(spec.keys, KeySpec::Find { .. })
                        .then(|| Frame::Simple("movablekeys".to_owned())),
                )
                .collect(),
        ),
        Frame::Integer(first),
        Frame::Integer(last),
        Frame::Integer(step),
        Frame::Set(
            spec.categories
                .iter()
                .map(|c| Frame::Simple(format!("@{}", c.name())))
                .collect(),
        ),
        Frame::Set(vec![]),
        Frame::Array(vec![]),
        Frame::Array(spec.subcommands.iter().map(spec_frame).collect()),
    ])
}

/// One command's entry of `COMMAND DOCS`.
fn docs_frame(spec: &Spec) -> Frame {
    let mut fields = vec![
        (Frame::bulk("summary"), Frame::bulk(spec.summary)),
        (Frame::bulk("group"), Frame::bulk(spec.group)),
    ];
    if !spec.subcommands.is_empty() {
        fields.push((
            Frame::bulk("subcommands"),
            Frame::Map(
                spec.subcommands
                    .iter()
                    .map(|s| (Frame::bulk(s.name), docs_frame(s)))
                    .collect(),
            ),
        ));
    }
    Frame::Map(fields)
}

/// `COMMAND`, `COMMAND COUNT|LIST|INFO|DOCS|GETKEYS|HELP`, all read from the table.
fn command(_: &mut Session, args: &[Bytes]) -> Frame {
    let all = super::specs();
    let Some((sub, rest)) = args.split_first() else {
        return Frame::Array(all.iter().map(|s| spec_frame(s)).collect());
    };
    let name = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match sub.to_ascii_lowercase().as_slice() {
        b"count" => Frame::Integer(all.len() as i64),
        b"list" => list(&all, rest),
        b"info" if rest.is_empty() => Frame::Array(all.iter().map(|s| spec_frame(s)).collect()),
        b"info" => Frame::Array(
            rest.iter()
                .map(|n| super::spec(&name(n)).map_or(Frame::Null, spec_frame))
                .collect(),
        ),
        b"docs" if rest.is_empty() => Frame::Map(
            all.iter()
                .map(|s| (Frame::bulk(s.name), docs_frame(s)))
                .collect(),
        ),
        b"docs" => Frame::Map(
            rest.iter()
                .filter_map(|n| super::spec(&name(n)))
                .map(|s| (Frame::bulk(s.name), docs_frame(s)))
                .collect(),
        ),
        b"getkeys" => getkeys(rest),
        _ => super::help(&COMMANDS[0].spec),
    }
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`.
fn list(all: &[&'static Spec], filter: &[Bytes]) -> Frame {
    let keep: Box<dyn Fn(&Spec) -> bool> = match filter {
        [] => Box::new(|_| true),
        [by, kind, value] if by.eq_ignore_ascii_case(b"filterby") => {
            match kind.to_ascii_lowercase().as_slice() {
                b"module" => Box::new(|_| false),
                b"aclcat" => {
                    let want = String::from_utf8_lossy(value).to_ascii_lowercase();
                    Box::new(move |s| s.categories.iter().any(|c| c.name() == want))
                }
                b"pattern" => {
                    let pattern = value.clone();
                    Box::new(move |s| glob_match(&pattern, s.name.as_bytes(), true))
                }
                _ => return Frame::err("syntax error"),
            }
        }
        _ => return Frame::err("syntax error"),
    };
    // Subcommands are listed too (`client|list`), as Redis 7 lists them.
    Frame::Array(
        all.iter()
            .flat_map(|s| std::iter::once(*s).chain(s.subcommands.iter()))
            .filter(|s| keep(s))
            .map(|s| Frame::bulk(s.name))
            .collect(),
    )
}

/// `COMMAND GETKEYS command arg...`: the keys the table finds in a request, with Redis's errors.
fn getkeys(argv: &[Bytes]) -> Frame {
    let Some(spec) = argv
        .first()
        .and_then(|n| super::spec(&String::from_utf8_lossy(n)))
    else {
        return Frame::err("Invalid command specified");
    };
    let facts = spec.describing(argv);
    if matches!(facts.keys, KeySpec::None) {
        return Frame::err("The command has no key arguments");
    }
    if !facts.arity_allows(argv.len()) {
        return Frame::err("Invalid number of arguments specified for command");
    }
    Frame::Array(
        facts
            .keys
            .positions(argv)
            .into_iter()
            .map(|i| Frame::Bulk(argv[i].clone()))
            .collect(),
    )
}
