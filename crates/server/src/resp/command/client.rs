//! `CLIENT` and its subcommands: ID, SETNAME, GETNAME, SETINFO, INFO, LIST, KILL, PAUSE,
//! UNPAUSE, REPLY, NO-EVICT, NO-TOUCH, HELP.

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Category, CommandError, Flag, Spec};

use super::SessionCommand;
use super::connection::check_name;
use crate::resp::client_list;
use crate::resp::session::Session;

const SESSION: &[Flag] = &[Flag::Noscript, Flag::Loading, Flag::Stale];
const ADMIN: &[Flag] = &[Flag::Admin, Flag::Noscript, Flag::Loading, Flag::Stale];
const SLOW_CONNECTION: &[Category] = &[Category::Slow, Category::Connection];
const ADMIN_CONNECTION: &[Category] = &[
    Category::Admin,
    Category::Slow,
    Category::Dangerous,
    Category::Connection,
];

/// A CLIENT subcommand's spec.
const fn sub(
    name: &'static str,
    arity: i32,
    admin: bool,
    summary: &'static str,
    example: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags: if admin { ADMIN } else { SESSION },
        categories: if admin {
            ADMIN_CONNECTION
        } else {
            SLOW_CONNECTION
        },
        group: "connection",
        summary,
        example,
        ..Spec::BLANK
    }
}

pub(super) const COMMANDS: &[SessionCommand] = &[SessionCommand {
    spec: Spec {
        name: "client",
        arity: -2,
        categories: &[Category::Slow],
        group: "connection",
        summary: "A container for client connection commands",
        example: "CLIENT ID",
        subcommands: &[
            sub(
                "client|id",
                2,
                false,
                "Returns the client ID for the current connection",
                "CLIENT ID",
            ),
            sub(
                "client|setname",
                3,
                false,
                "Set the current connection name",
                "CLIENT SETNAME app",
            ),
            sub(
                "client|getname",
                2,
                false,
                "Get the current connection name",
                "CLIENT GETNAME",
            ),
            sub(
                "client|setinfo",
                4,
                false,
                "Set client or connection specific info",
                "CLIENT SETINFO LIB-NAME redis-py",
            ),
            sub(
                "client|info",
                2,
                false,
                "Returns information about the current client connection.",
                "CLIENT INFO",
            ),
            sub(
                "client|list",
                -2,
                true,
                "Get the list of client connections",
                "CLIENT LIST",
            ),
            sub(
                "client|kill",
                -3,
                true,
                "Kill the connection of a client",
                "CLIENT KILL ID 1",
            ),
            sub(
                "client|pause",
                -3,
                true,
                "Stop processing commands from clients for some time",
                "CLIENT PAUSE 100 WRITE",
            ),
            sub(
                "client|unpause",
                2,
                true,
                "Resume processing of clients that were paused",
                "CLIENT UNPAUSE",
            ),
            sub(
                "client|no-evict",
                3,
                true,
                "Set client eviction mode for the current connection",
                "CLIENT NO-EVICT on",
            ),
            sub(
                "client|reply",
                3,
                false,
                "Instruct the server whether to reply to commands",
                "CLIENT REPLY OFF",
            ),
            sub(
                "client|unblock",
                -3,
                true,
                "Unblock a client blocked in a blocking command from a different connection",
                "CLIENT UNBLOCK 7 ERROR",
            ),
            sub(
                "client|no-touch",
                3,
                false,
                "Controls whether commands sent by the client will alter the LRU/LFU of the keys they access.",
                "CLIENT NO-TOUCH on",
            ),
            Spec {
                flags: &[Flag::Loading, Flag::Stale],
                ..sub(
                    "client|help",
                    2,
                    false,
                    "Show helpful text about the different subcommands",
                    "CLIENT HELP",
                )
            },
        ],
        ..Spec::BLANK
    },
    run: client,
}];

/// Runs after the table checked the subcommand and its arity.
fn client(session: &mut Session, args: &[Bytes]) -> Frame {
    let Some((sub, rest)) = args.split_first() else {
        return super::arity("client");
    };
    let id = session.id;
    match (sub.to_ascii_lowercase().as_slice(), rest) {
        (b"id", _) => Frame::Integer(id as i64),
        (b"setname", [name]) => match check_name(name) {
            Ok(()) => {
                session.set_name(Some(name.clone()));
                Frame::ok()
            }
            Err(e) => e,
        },
        (b"getname", _) => session.name.clone().map_or(Frame::Null, Frame::Bulk),
        (b"setinfo", _) => Frame::ok(),
        (b"reply", [mode]) => match mode.to_ascii_lowercase().as_slice() {
            b"on" => {
                session.replies_off = false;
                session.force_reply = true;
                Frame::ok()
            }
            b"off" => {
                session.replies_off = true;
                session.silent = true;
                Frame::ok()
            }
            b"skip" => {
                // Redis ignores SKIP while replies are off.
                session.skip_next = !session.replies_off;
                session.silent = true;
                Frame::ok()
            }
            _ => Frame::Error(CommandError::Syntax.to_string()),
        },
        (b"no-evict", [mode]) if is_on_off(mode) => {
            session.activity.no_evict.store(
                mode.eq_ignore_ascii_case(b"on"),
                std::sync::atomic::Ordering::Relaxed,
            );
            Frame::ok()
        }
        (b"no-touch", [mode]) if is_on_off(mode) => Frame::ok(),
        (b"no-evict" | b"no-touch", _) => Frame::Error(CommandError::Syntax.to_string()),
        (b"info", _) => match session.shared.clients.get(id) {
            Some(c) => Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from(client_list::client_line(&session.shared, id, &c)),
            },
            None => Frame::Null,
        },
        (b"list", filters) => client_list::list(&session.shared, filters),
        (b"pause", [timeout, mode @ ..]) => pause(session, timeout, mode),
        (b"unpause", _) => {
            session.shared.pause.unpause();
            Frame::ok()
        }
        (b"kill", filters) => client_list::kill(&session.shared, id, filters),
        (b"unblock", [target, mode @ ..]) => unblock(session, target, mode),
        _ => super::help(&COMMANDS[0].spec),
    }
}

/// `CLIENT UNBLOCK client-id [TIMEOUT|ERROR]`: 1 if that client was blocked (it now answers as
/// if it timed out, or with the UNBLOCKED error), 0 if not.
fn unblock(session: &Session, target: &Bytes, mode: &[Bytes]) -> Frame {
    let Some(id) = std::str::from_utf8(target)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return Frame::Error(CommandError::NotInteger.to_string());
    };
    let error = match mode {
        [] => false,
        [m] if m.eq_ignore_ascii_case(b"timeout") => false,
        [m] if m.eq_ignore_ascii_case(b"error") => true,
        _ => return Frame::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Some(client) = session.shared.clients.get(id) else {
        return Frame::Integer(0);
    };
    let a = &client.activity;
    if !a.blocked.load(std::sync::atomic::Ordering::Acquire) {
        return Frame::Integer(0);
    }
    a.unblock_error
        .store(error, std::sync::atomic::Ordering::Release);
    a.unblocks.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    a.unblock.notify_one();
    Frame::Integer(1)
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`.
fn pause(session: &Session, timeout: &Bytes, mode: &[Bytes]) -> Frame {
    let millis = match std::str::from_utf8(timeout)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
    {
        None => return Frame::err("timeout is not an integer or out of range"),
        Some(n) if n < 0 => return Frame::err("timeout is negative"),
        Some(n) => n as u64,
    };
    let writes_only = match mode {
        [] => false,
        [m] if m.eq_ignore_ascii_case(b"all") => false,
        [m] if m.eq_ignore_ascii_case(b"write") => true,
        [_] => return Frame::err("CLIENT PAUSE mode must be WRITE or ALL"),
        _ => return Frame::Error(CommandError::Syntax.to_string()),
    };
    let now = session.shared.engine.stats().clock_ms();
    session.shared.pause.pause(now, millis, writes_only);
    Frame::ok()
}

fn is_on_off(v: &[u8]) -> bool {
    v.eq_ignore_ascii_case(b"on") || v.eq_ignore_ascii_case(b"off")
}
