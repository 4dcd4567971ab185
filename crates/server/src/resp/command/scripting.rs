//! The scripting group: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT. The handlers check the
//! request and hand the script to the scripting thread (see [`crate::script`]); the connection
//! waits for its answer without holding its thread.

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Category, Flag, KeySpec, Spec};

use super::SessionCommand;
use crate::resp::session::Session;
use crate::script::{Request, Source};

/// EVAL's keys: `numkeys` at 2, then that many.
const EVAL_KEYS: KeySpec = KeySpec::Find {
    shown: (0, 0, 0),
    find: |argv| {
        let n = argv
            .get(2)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(0);
        (3..(3 + n).min(argv.len())).collect()
    },
};

const EVAL_FLAGS: &[Flag] = &[
    Flag::Noscript,
    Flag::SkipMonitor,
    Flag::NoMandatoryKeys,
    Flag::Stale,
];
const EVAL_RO_FLAGS: &[Flag] = &[
    Flag::Noscript,
    Flag::SkipMonitor,
    Flag::NoMandatoryKeys,
    Flag::Readonly,
    Flag::Stale,
];
const SLOW: &[Category] = &[Category::Slow, Category::Scripting];

const fn eval_spec(
    name: &'static str,
    flags: &'static [Flag],
    summary: &'static str,
    example: &'static str,
) -> Spec {
    Spec {
        name,
        arity: -3,
        flags,
        categories: SLOW,
        keys: EVAL_KEYS,
        group: "scripting",
        summary,
        example,
        ..Spec::BLANK
    }
}

const fn sub(name: &'static str, arity: i32, summary: &'static str, example: &'static str) -> Spec {
    Spec {
        name,
        arity,
        flags: &[Flag::Noscript],
        categories: SLOW,
        group: "scripting",
        summary,
        example,
        ..Spec::BLANK
    }
}

pub(super) const COMMANDS: &[SessionCommand] = &[
    SessionCommand {
        spec: eval_spec(
            "eval",
            EVAL_FLAGS,
            "Execute a Lua script server side",
            "EVAL \"return redis.call('get', KEYS[1])\" 1 k",
        ),
        run: |s, args| eval(s, args, false, false),
    },
    SessionCommand {
        spec: eval_spec(
            "evalsha",
            EVAL_FLAGS,
            "Execute a Lua script server side",
            "EVALSHA <sha1> 1 k",
        ),
        run: |s, args| eval(s, args, true, false),
    },
    SessionCommand {
        spec: eval_spec(
            "eval_ro",
            EVAL_RO_FLAGS,
            "Execute a read-only Lua script server side",
            "EVAL_RO \"return redis.call('get', KEYS[1])\" 1 k",
        ),
        run: |s, args| eval(s, args, false, true),
    },
    SessionCommand {
        spec: eval_spec(
            "evalsha_ro",
            EVAL_RO_FLAGS,
            "Execute a read-only Lua script server side",
            "EVALSHA_RO <sha1> 1 k",
        ),
        run: |s, args| eval(s, args, true, true),
    },
    SessionCommand {
        spec: Spec {
            name: "script",
            arity: -2,
            categories: &[Category::Slow],
            group: "scripting",
            summary: "A container for Lua scripts management commands",
            example: "SCRIPT FLUSH",
            subcommands: &[
                sub(
                    "script|debug",
                    3,
                    "Set the debug mode for executed scripts.",
                    "SCRIPT DEBUG NO",
                ),
                sub(
                    "script|exists",
                    -3,
                    "Check existence of scripts in the script cache.",
                    "SCRIPT EXISTS <sha1>",
                ),
                sub(
                    "script|flush",
                    -2,
                    "Remove all the scripts from the script cache.",
                    "SCRIPT FLUSH",
                ),
                Spec {
                    flags: &[Flag::Loading, Flag::Stale],
                    ..sub(
                        "script|help",
                        2,
                        "Show helpful text about the different subcommands",
                        "SCRIPT HELP",
                    )
                },
                Spec {
                    flags: &[Flag::Noscript, Flag::AllowBusy],
                    ..sub(
                        "script|kill",
                        2,
                        "Kill the script currently in execution.",
                        "SCRIPT KILL",
                    )
                },
                Spec {
                    flags: &[Flag::Noscript, Flag::Stale],
                    ..sub(
                        "script|load",
                        3,
                        "Load the specified Lua script into the script cache.",
                        "SCRIPT LOAD return",
                    )
                },
            ],
            ..Spec::BLANK
        },
        run: script,
    },
];

fn eval(session: &mut Session, args: &[Bytes], by_sha: bool, read_only: bool) -> Frame {
    let (source, numkeys, rest) = match args {
        [first, numkeys, rest @ ..] => (first, numkeys, rest),
        _ => return Frame::err("wrong number of arguments"),
    };
    if by_sha && source.len() != 40 {
        return Frame::Error("NOSCRIPT No matching script. Please use EVAL.".into());
    }
    let Some(n) = std::str::from_utf8(numkeys)
        .ok()
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return Frame::err("value is not an integer or out of range");
    };
    if n > rest.len() as i64 {
        return Frame::err("Number of keys can't be greater than number of args");
    }
    if n < 0 {
        return Frame::err("Number of keys can't be negative");
    }
    let n = n as usize;
    let source = if by_sha {
        Source::Sha(source.clone())
    } else {
        Source::Body(source.clone())
    };
    session.start_script(Request::Eval {
        source,
        keys: rest[..n].to_vec(),
        args: rest[n..].to_vec(),
        read_only,
    })
}

fn script(session: &mut Session, args: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    match sub.as_str() {
        "load" => session.start_script(Request::Load(args[1].clone())),
        "exists" => Frame::Array(
            args[1..]
                .iter()
                .map(|sha| Frame::Integer(i64::from(session.shared.scripts.exists(sha))))
                .collect(),
        ),
        "flush" => match args.get(1).map(|a| a.to_ascii_lowercase()) {
            _ if args.len() > 2 => Frame::err("SCRIPT FLUSH only support SYNC|ASYNC option"),
            None => session.start_script(Request::Flush),
            Some(mode) if mode == b"sync" || mode == b"async" => {
                session.start_script(Request::Flush)
            }
            Some(_) => Frame::err("SCRIPT FLUSH only support SYNC|ASYNC option"),
        },
        "kill" => session.shared.engine.script().kill(),
        "debug" => match args[1].to_ascii_lowercase().as_slice() {
            b"no" | b"yes" | b"sync" => Frame::ok(),
            _ => Frame::err("Use SCRIPT DEBUG YES/SYNC/NO"),
        },
        _ => COMMANDS
            .iter()
            .find(|c| c.spec.name == "script")
            .map_or(Frame::Null, |c| super::help(&c.spec)),
    }
}
