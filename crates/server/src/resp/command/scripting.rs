//! The scripting group: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO and
//! FUNCTION. The handlers check the request and hand what runs Lua to the scripting thread (see
//! [`crate::script`]); the connection waits for its answer without holding its thread. What
//! needs no Lua (FUNCTION LIST, DUMP, STATS, KILL) is answered here, even while a script runs.

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Category, Flag, KeySpec, Spec};

use super::SessionCommand;
use crate::resp::session::Session;
use crate::script::functions;
use crate::script::{FunctionChange, Request, RestorePolicy, Source};

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
const SLOW_WRITE: &[Category] = &[Category::Write, Category::Slow, Category::Scripting];

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

const fn function_sub(
    name: &'static str,
    arity: i32,
    flags: &'static [Flag],
    summary: &'static str,
    example: &'static str,
) -> Spec {
    let writes = matches!(flags.first(), Some(Flag::Write));
    Spec {
        name,
        arity,
        flags,
        categories: if writes { SLOW_WRITE } else { SLOW },
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
    SessionCommand {
        spec: eval_spec("fcall", EVAL_FLAGS, "Invoke a function", "FCALL myfunc 1 k"),
        run: |s, args| fcall(s, args, false),
    },
    SessionCommand {
        spec: eval_spec(
            "fcall_ro",
            EVAL_RO_FLAGS,
            "Invoke a read-only function",
            "FCALL_RO myfunc 1 k",
        ),
        run: |s, args| fcall(s, args, true),
    },
    SessionCommand {
        spec: Spec {
            name: "function",
            arity: -2,
            categories: &[Category::Slow],
            group: "scripting",
            summary: "A container for function commands",
            example: "FUNCTION LIST",
            subcommands: &[
                function_sub(
                    "function|delete",
                    3,
                    &[Flag::Write, Flag::Noscript],
                    "Delete a library and all its functions.",
                    "FUNCTION DELETE mylib",
                ),
                function_sub(
                    "function|dump",
                    2,
                    &[Flag::Noscript],
                    "Dump all functions into a serialized binary payload",
                    "FUNCTION DUMP",
                ),
                function_sub(
                    "function|flush",
                    -2,
                    &[Flag::Write, Flag::Noscript],
                    "Deleting all functions",
                    "FUNCTION FLUSH",
                ),
                function_sub(
                    "function|help",
                    2,
                    &[Flag::Loading, Flag::Stale],
                    "Show helpful text about the different subcommands",
                    "FUNCTION HELP",
                ),
                function_sub(
                    "function|kill",
                    2,
                    &[Flag::Noscript, Flag::AllowBusy],
                    "Kill the function currently in execution.",
                    "FUNCTION KILL",
                ),
                function_sub(
                    "function|list",
                    -2,
                    &[Flag::Noscript],
                    "List information about all the functions",
                    "FUNCTION LIST",
                ),
                function_sub(
                    "function|load",
                    -3,
                    &[Flag::Write, Flag::Denyoom, Flag::Noscript],
                    "Create a function with the given arguments (name, code, description)",
                    "FUNCTION LOAD code",
                ),
                function_sub(
                    "function|restore",
                    -3,
                    &[Flag::Write, Flag::Denyoom, Flag::Noscript],
                    "Restore all the functions on the given payload",
                    "FUNCTION RESTORE payload",
                ),
                function_sub(
                    "function|stats",
                    2,
                    &[Flag::Noscript, Flag::AllowBusy],
                    "Return information about the function currently running (name, description, duration)",
                    "FUNCTION STATS",
                ),
            ],
            ..Spec::BLANK
        },
        run: function,
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
    let n = match self::numkeys(
        numkeys,
        rest.len(),
        "value is not an integer or out of range",
    ) {
        Ok(n) => n,
        Err(e) => return e,
    };
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
        "kill" => session.shared.engine.script().kill(true),
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

/// The key count of EVAL and FCALL: `n`, or Redis's error for it.
fn numkeys(numkeys: &[u8], rest: usize, bad: &str) -> Result<usize, Frame> {
    let Some(n) = std::str::from_utf8(numkeys)
        .ok()
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return Err(Frame::err(bad));
    };
    if n > rest as i64 {
        return Err(Frame::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    usize::try_from(n).map_err(|_| Frame::err("Number of keys can't be negative"))
}

fn fcall(session: &mut Session, args: &[Bytes], read_only: bool) -> Frame {
    let (name, count, rest) = match args {
        [name, count, rest @ ..] => (name, count, rest),
        _ => return Frame::err("wrong number of arguments"),
    };
    // An unknown function is named before a bad key count, as Redis does.
    let known = session
        .shared
        .scripts
        .libraries()
        .iter()
        .flat_map(|l| &l.functions)
        .any(|f| f.name.as_bytes().eq_ignore_ascii_case(name));
    // In a MULTI block that loads it first, the function is known only when the block runs:
    // the engine looks for it then.
    if !known && !session.gathering() {
        return Frame::err("Function not found");
    }
    let n = match numkeys(count, rest.len(), "Bad number of keys provided") {
        Ok(n) => n,
        Err(_) if !known => return Frame::err("Function not found"),
        Err(e) => return e,
    };
    let command: &[u8] = if read_only { b"fcall_ro" } else { b"fcall" };
    let argv = std::iter::once(Bytes::from_static(command))
        .chain(args.iter().cloned())
        .collect();
    session.start_script(Request::Fcall {
        name: name.clone(),
        keys: rest[..n].to_vec(),
        args: rest[n..].to_vec(),
        read_only,
        argv,
    })
}

fn function(session: &mut Session, args: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let wrong = || {
        Frame::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
        ))
    };
    let change = |session: &mut Session, change| session.start_script(Request::Function(change));
    match sub.as_str() {
        "load" => {
            let mut replace = false;
            let mut i = 1;
            while i < args.len() - 1 {
                if !args[i].eq_ignore_ascii_case(b"replace") {
                    return Frame::err(format!(
                        "Unknown option given: {}",
                        String::from_utf8_lossy(&args[i])
                    ));
                }
                replace = true;
                i += 1;
            }
            let Some(code) = args.get(i) else {
                return Frame::err("Function code is missing");
            };
            change(
                session,
                FunctionChange::Load {
                    code: code.clone(),
                    replace,
                },
            )
        }
        "delete" => change(session, FunctionChange::Delete(args[1].clone())),
        "flush" => match args.get(1).map(|a| a.to_ascii_lowercase()) {
            _ if args.len() > 2 => wrong(),
            Some(mode) if mode != b"sync" && mode != b"async" => {
                Frame::err("FUNCTION FLUSH only supports SYNC|ASYNC option")
            }
            _ => change(session, FunctionChange::Flush),
        },
        "restore" => {
            if args.len() > 3 {
                return wrong();
            }
            let policy = match args.get(2).map(|a| a.to_ascii_lowercase()).as_deref() {
                None | Some(b"append") => RestorePolicy::Append,
                Some(b"replace") => RestorePolicy::Replace,
                Some(b"flush") => RestorePolicy::Flush,
                Some(_) => {
                    return Frame::err(
                        "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                    );
                }
            };
            change(
                session,
                FunctionChange::Restore {
                    payload: args[1].clone(),
                    policy,
                },
            )
        }
        "dump" => {
            let libraries = session.shared.scripts.libraries();
            Frame::Bulk(functions::dump(libraries.iter().map(|l| &l.code[..])))
        }
        "list" => list(session, &args[1..]),
        "stats" => stats(session),
        "kill" => session.shared.engine.script().kill(false),
        _ => COMMANDS
            .iter()
            .find(|c| c.spec.name == "function")
            .map_or(Frame::Null, |c| super::help(&c.spec)),
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
fn list(session: &Session, args: &[Bytes]) -> Frame {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if !with_code && arg.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && arg.eq_ignore_ascii_case(b"libraryname") {
            i += 1;
            let Some(p) = args.get(i) else {
                return Frame::err("library name argument was not given");
            };
            pattern = Some(p);
        } else {
            return Frame::err(format!("Unknown argument {}", String::from_utf8_lossy(arg)));
        }
        i += 1;
    }
    let text = |s: &str| Frame::bulk(s.to_owned());
    let libraries = session.shared.scripts.libraries();
    Frame::Array(
        libraries
            .iter()
            .filter(|l| pattern.is_none_or(|p| kvs_store::glob_match(p, l.name.as_bytes(), true)))
            .map(|l| {
                let mut fields = vec![
                    (text("library_name"), text(&l.name)),
                    (text("engine"), text(functions::ENGINE)),
                    (
                        text("functions"),
                        Frame::Array(
                            l.functions
                                .iter()
                                .map(|f| {
                                    Frame::Map(vec![
                                        (text("name"), text(&f.name)),
                                        (
                                            text("description"),
                                            f.description.clone().map_or(Frame::Null, Frame::Bulk),
                                        ),
                                        (
                                            text("flags"),
                                            Frame::Set(
                                                f.flags
                                                    .names()
                                                    .map(|n| Frame::Simple(n.into()))
                                                    .collect(),
                                            ),
                                        ),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                ];
                if with_code {
                    fields.push((text("library_code"), Frame::Bulk(l.code.clone())));
                }
                Frame::Map(fields)
            })
            .collect(),
    )
}

/// FUNCTION STATS: the function running now, and what each engine holds.
fn stats(session: &Session) -> Frame {
    let running = session.shared.engine.script();
    if running.running_eval() {
        return Frame::Error(
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
                .into(),
        );
    }
    let text = |s: &str| Frame::bulk(s.to_owned());
    let script = match running.running_function() {
        None => Frame::Null,
        Some((name, argv, elapsed)) => Frame::Map(vec![
            (text("name"), text(&name)),
            (
                text("command"),
                Frame::Array(argv.into_iter().map(Frame::Bulk).collect()),
            ),
            (
                text("duration_ms"),
                Frame::Integer(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)),
            ),
        ]),
    };
    let libraries = session.shared.scripts.libraries();
    let count: usize = libraries.iter().map(|l| l.functions.len()).sum();
    Frame::Map(vec![
        (text("running_script"), script),
        (
            text("engines"),
            Frame::Map(vec![(
                text(functions::ENGINE),
                Frame::Map(vec![
                    (
                        text("libraries_count"),
                        Frame::Integer(libraries.len() as i64),
                    ),
                    (text("functions_count"), Frame::Integer(count as i64)),
                ]),
            )]),
        ),
    ])
}
