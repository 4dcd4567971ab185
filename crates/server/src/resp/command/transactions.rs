//! The transactions group: MULTI, EXEC, DISCARD, WATCH, UNWATCH. These handlers answer outside
//! a transaction; inside one, the session itself handles EXEC, DISCARD, MULTI and WATCH (see
//! `Session::queue`).

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Category, Flag, KeySpec, Spec};

use super::SessionCommand;
use crate::resp::session::Session;

const FLAGS: &[Flag] = &[
    Flag::Noscript,
    Flag::Loading,
    Flag::Stale,
    Flag::Fast,
    Flag::AllowBusy,
];
const FAST: &[Category] = &[Category::Fast, Category::Transaction];

pub(super) const COMMANDS: &[SessionCommand] = &[
    SessionCommand {
        spec: Spec {
            name: "multi",
            arity: 1,
            flags: FLAGS,
            categories: FAST,
            group: "transactions",
            summary: "Mark the start of a transaction block",
            example: "MULTI",
            ..Spec::BLANK
        },
        run: |session, _| {
            session.multi = Some(Vec::new());
            session.multi_failed = false;
            Frame::ok()
        },
    },
    SessionCommand {
        spec: Spec {
            name: "exec",
            arity: 1,
            flags: &[
                Flag::Noscript,
                Flag::Loading,
                Flag::Stale,
                Flag::SkipSlowlog,
            ],
            categories: &[Category::Slow, Category::Transaction],
            group: "transactions",
            summary: "Execute all commands issued after MULTI",
            example: "EXEC",
            ..Spec::BLANK
        },
        run: |_, _| Frame::err("EXEC without MULTI"),
    },
    SessionCommand {
        spec: Spec {
            name: "discard",
            arity: 1,
            flags: FLAGS,
            categories: FAST,
            group: "transactions",
            summary: "Discard all commands issued after MULTI",
            example: "DISCARD",
            ..Spec::BLANK
        },
        run: |_, _| Frame::err("DISCARD without MULTI"),
    },
    SessionCommand {
        spec: Spec {
            name: "watch",
            arity: -2,
            flags: FLAGS,
            categories: FAST,
            keys: KeySpec::ALL_ARGS,
            group: "transactions",
            summary: "Watch the given keys to determine execution of the MULTI/EXEC block",
            example: "WATCH a b",
            ..Spec::BLANK
        },
        run: watch,
    },
    SessionCommand {
        spec: Spec {
            name: "unwatch",
            arity: 1,
            flags: FLAGS,
            categories: FAST,
            group: "transactions",
            summary: "Forget about all watched keys",
            example: "UNWATCH",
            ..Spec::BLANK
        },
        run: |session, _| {
            session.watched.clear();
            Frame::ok()
        },
    },
];

fn watch(session: &mut Session, keys: &[Bytes]) -> Frame {
    for key in keys {
        let version = session.shared.engine.version_of(key);
        session.watched.push((key.clone(), version));
    }
    Frame::ok()
}
