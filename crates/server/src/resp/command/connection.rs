//! The connection group: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET.

use bytes::Bytes;
use kvs_protocol::resp::{Frame, Version};
use kvs_store::{Category, CommandError, Flag, Spec};

use super::SessionCommand;
use crate::resp::admin;
use crate::resp::session::Session;

const QUICK: &[Flag] = &[
    Flag::Noscript,
    Flag::Loading,
    Flag::Stale,
    Flag::Fast,
    Flag::NoAuth,
    Flag::AllowBusy,
];
const FAST_CONNECTION: &[Category] = &[Category::Fast, Category::Connection];

pub(super) const COMMANDS: &[SessionCommand] = &[
    SessionCommand {
        spec: Spec {
            name: "ping",
            arity: -1,
            flags: &[Flag::Fast],
            categories: FAST_CONNECTION,
            group: "connection",
            summary: "Ping the server",
            example: "PING",
            ..Spec::BLANK
        },
        run: ping,
    },
    SessionCommand {
        spec: Spec {
            name: "echo",
            arity: 2,
            flags: &[Flag::Loading, Flag::Stale, Flag::Fast],
            categories: FAST_CONNECTION,
            group: "connection",
            summary: "Echo the given string",
            example: "ECHO hello",
            ..Spec::BLANK
        },
        run: echo,
    },
    SessionCommand {
        spec: Spec {
            name: "hello",
            arity: -1,
            flags: QUICK,
            categories: FAST_CONNECTION,
            group: "connection",
            summary: "Handshake with Redis",
            example: "HELLO 3 SETNAME app",
            ..Spec::BLANK
        },
        run: hello,
    },
    SessionCommand {
        spec: Spec {
            name: "auth",
            arity: -2,
            flags: QUICK,
            categories: FAST_CONNECTION,
            group: "connection",
            summary: "Authenticate to the server",
            example: "AUTH default secret",
            ..Spec::BLANK
        },
        run: auth,
    },
    SessionCommand {
        spec: Spec {
            name: "select",
            arity: 2,
            flags: &[Flag::Loading, Flag::Stale, Flag::Fast],
            categories: FAST_CONNECTION,
            group: "connection",
            summary: "Change the selected database for the current connection",
            example: "SELECT 0",
            ..Spec::BLANK
        },
        run: select,
    },
    SessionCommand {
        spec: Spec {
            name: "quit",
            arity: -1,
            flags: QUICK,
            categories: FAST_CONNECTION,
            group: "connection",
            summary: "Close the connection",
            example: "QUIT",
            ..Spec::BLANK
        },
        run: quit,
    },
    SessionCommand {
        spec: Spec {
            name: "reset",
            arity: 1,
            flags: QUICK,
            categories: FAST_CONNECTION,
            group: "connection",
            summary: "Reset the connection",
            example: "RESET",
            ..Spec::BLANK
        },
        run: reset,
    },
];

fn ping(session: &mut Session, args: &[Bytes]) -> Frame {
    // In RESP2's subscribed mode PING answers as a message would: ["pong", argument or ""].
    if session.subscribed_resp2() {
        return match args {
            [] => Frame::Array(vec![Frame::bulk("pong"), Frame::bulk("")]),
            [msg] => Frame::Array(vec![Frame::bulk("pong"), Frame::Bulk(msg.clone())]),
            _ => super::arity("ping"),
        };
    }
    match args {
        [] => Frame::Simple("PONG".into()),
        [msg] => Frame::Bulk(msg.clone()),
        _ => super::arity("ping"),
    }
}

fn echo(_: &mut Session, args: &[Bytes]) -> Frame {
    match args {
        [msg] => Frame::Bulk(msg.clone()),
        _ => super::arity("echo"),
    }
}

/// `AUTH [user] password`.
fn auth(session: &mut Session, args: &[Bytes]) -> Frame {
    let (user, password) = match args {
        [password] => {
            if session.shared.acl.default_user().nopass {
                return Frame::err(
                    "AUTH <password> called without any password configured for the default \
                     user. Are you sure your configuration is correct?",
                );
            }
            (&Bytes::from_static(b"default"), password)
        }
        [user, password] => (user, password),
        _ => return Frame::Error(CommandError::Syntax.to_string()),
    };
    match authenticate(session, user, password, "AUTH") {
        Ok(()) => Frame::ok(),
        Err(refusal) => refusal,
    }
}

/// Runs the session as `user` if `password` opens it; otherwise logs the failure (as `object`,
/// the command that tried) and gives the `WRONGPASS` refusal.
fn authenticate(
    session: &mut Session,
    user: &[u8],
    password: &[u8],
    object: &str,
) -> Result<(), Frame> {
    let name = String::from_utf8_lossy(user).into_owned();
    match session.shared.acl.authenticate(&name, password) {
        Some(user) => {
            session.become_user(user, true);
            Ok(())
        }
        None => {
            session.log_acl("auth", object.to_owned(), name);
            Err(Frame::Error(
                "WRONGPASS invalid username-password pair or user is disabled.".into(),
            ))
        }
    }
}

fn select(_: &mut Session, args: &[Bytes]) -> Frame {
    match args {
        [db] => match kvs_store::parse_integer(db) {
            Ok(0) => Frame::ok(),
            Ok(_) => Frame::err("DB index is out of range"),
            Err(e) => Frame::Error(e.to_string()),
        },
        _ => super::arity("select"),
    }
}

fn quit(session: &mut Session, _: &[Bytes]) -> Frame {
    session.closing = true;
    Frame::ok()
}

fn reset(session: &mut Session, _: &[Bytes]) -> Frame {
    session.version = Version::Resp2;
    session.name = None;
    session.multi = None;
    session.multi_failed = false;
    session.watched.clear();
    // Every subscription ends; messages already delivered go out first.
    session.subs = None;
    session.drain_before_reply = true;
    let id = session.id;
    session.shared.clients.update(id, |c| {
        c.name.clear();
        c.resp = 2;
    });
    // Back to the default user, authenticated only if it needs no password.
    let default = session.shared.acl.default_user();
    let authenticated = default.needs_no_password();
    session.become_user(default, authenticated);
    Frame::Simple("RESET".into())
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
fn hello(session: &mut Session, args: &[Bytes]) -> Frame {
    let mut version = session.version;
    let mut rest = args;
    if let Some((v, tail)) = args.split_first() {
        version = match kvs_store::parse_integer(v) {
            Ok(2) => Version::Resp2,
            Ok(3) => Version::Resp3,
            Ok(_) => return Frame::Error("NOPROTO unsupported protocol version".into()),
            Err(_) => {
                return Frame::Error(
                    "ERR Protocol version is not an integer or out of range".into(),
                );
            }
        };
        rest = tail;
    }
    let mut name = None;
    let mut credentials = None;
    while let Some((opt, tail)) = rest.split_first() {
        match (opt.to_ascii_lowercase().as_slice(), tail) {
            (b"auth", [user, pass, more @ ..]) => {
                credentials = Some((user.clone(), pass.clone()));
                rest = more;
            }
            (b"setname", [n, more @ ..]) => {
                if let Err(e) = check_name(n) {
                    return e;
                }
                name = Some(n.clone());
                rest = more;
            }
            _ => {
                return Frame::err(format!(
                    "Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(opt)
                ));
            }
        }
    }
    if let Some((user, pass)) = credentials
        && let Err(refusal) = authenticate(session, &user, &pass, "HELLO")
    {
        return refusal;
    }
    if !session.authenticated {
        return Frame::Error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time"
                .into(),
        );
    }
    session.version = version;
    if let Some(mailbox) = session.mailbox() {
        mailbox.set_version(version);
    }
    if let Some(n) = name {
        session.set_name(Some(n));
    }
    let proto = if version == Version::Resp3 { 3 } else { 2 };
    let id = session.id;
    session.shared.clients.update(id, |c| c.resp = proto);
    Frame::Map(vec![
        (Frame::bulk("server"), Frame::bulk("redis")),
        (Frame::bulk("version"), Frame::bulk(admin::REDIS_VERSION)),
        (Frame::bulk("proto"), Frame::Integer(i64::from(proto))),
        (Frame::bulk("id"), Frame::Integer(id as i64)),
        (Frame::bulk("mode"), Frame::bulk("standalone")),
        (Frame::bulk("role"), Frame::bulk("master")),
        (Frame::bulk("modules"), Frame::Array(vec![])),
    ])
}

/// Client names are printable ASCII without spaces, as Redis requires.
pub(super) fn check_name(name: &[u8]) -> Result<(), Frame> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(())
    } else {
        Err(Frame::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}
