//! The connection commands' half of the command table, and the table as a whole.
//!
//! Data commands declare their specs in the store (`kvs_store::data_specs`); the commands a
//! RESP session answers itself (PING, HELLO, CLIENT, MULTI, INFO, ...) declare theirs here, one
//! group per file, each spec beside its handler. Dispatch, `COMMAND` and its subcommands, what
//! MULTI may queue and the arity and subcommand errors all read this one table. Adding a
//! connection command is its handler and spec in a group file (plus the group's line below, for
//! a new group).

mod acl;
mod client;
mod connection;
mod introspection;
mod memory;
mod pubsub;
mod scripting;
mod server;
mod transactions;

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{CommandError, Spec, data_spec_lowercase, data_specs};

use super::session::Session;

/// A connection command: its spec and its handler, which gets the arguments after the name
/// (already checked against the arity, and for a container against its subcommand's arity).
#[derive(Debug)]
pub(crate) struct SessionCommand {
    pub(crate) spec: Spec,
    pub(crate) run: fn(&mut Session, &[Bytes]) -> Frame,
}

/// Every group of connection commands: one line per file.
const GROUPS: &[&[SessionCommand]] = &[
    connection::COMMANDS,
    client::COMMANDS,
    server::COMMANDS,
    transactions::COMMANDS,
    acl::COMMANDS,
    memory::COMMANDS,
    pubsub::COMMANDS,
    introspection::COMMANDS,
    scripting::COMMANDS,
];

/// What a name is, by the table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Found {
    /// A data command, parsed and applied by the store.
    Data(&'static Spec),
    /// A connection command, answered by the session.
    Session(&'static SessionCommand),
}

impl Found {
    pub(crate) fn spec(self) -> &'static Spec {
        match self {
            Found::Data(spec) => spec,
            Found::Session(c) => &c.spec,
        }
    }
}

/// The command called `name` (lowercase). Data commands are looked up first: they are most of
/// the traffic, and the two halves never share a name (a test checks).
pub(crate) fn find(name: &str) -> Option<Found> {
    if let Some(spec) = data_spec_lowercase(name.as_bytes()) {
        return Some(Found::Data(spec));
    }
    GROUPS
        .iter()
        .flat_map(|g| g.iter())
        .find(|c| c.spec.name == name)
        .map(Found::Session)
}

/// Every command's spec, sorted by name: what `COMMAND` lists.
pub(crate) fn specs() -> Vec<&'static Spec> {
    let mut all: Vec<&'static Spec> = GROUPS
        .iter()
        .flat_map(|g| g.iter().map(|c| &c.spec))
        .chain(data_specs())
        .collect();
    all.sort_by_key(|s| s.name);
    all
}

/// The spec of a command or subcommand (`client|list`) called `name`, in any case.
pub(crate) fn spec(name: &str) -> Option<&'static Spec> {
    let name = name.to_ascii_lowercase();
    match name.split_once('|') {
        None => find(&name).map(Found::spec),
        Some((container, _)) => find(container)?
            .spec()
            .subcommands
            .iter()
            .find(|s| s.name == name),
    }
}

/// Checks `argv` against `spec`'s arity and, for a container (CLIENT, CONFIG, COMMAND), that it
/// names a known subcommand with the right number of arguments; the error Redis gives if not.
pub(crate) fn check(spec: &Spec, argv: &[Bytes]) -> Result<(), Frame> {
    if !spec.arity_allows(argv.len()) {
        return Err(arity(spec.name));
    }
    if spec.subcommands.is_empty() {
        return Ok(());
    }
    // A container its arity lets go bare (COMMAND) answers without a subcommand.
    let Some(sub) = argv.get(1) else {
        return Ok(());
    };
    match spec.subcommand(argv) {
        Some(s) if s.arity_allows(argv.len()) => Ok(()),
        Some(s) => Err(arity(s.name)),
        None => Err(Frame::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            String::from_utf8_lossy(sub)
                .chars()
                .take(128)
                .collect::<String>(),
            spec.name.to_ascii_uppercase()
        ))),
    }
}

/// Redis's wrong-arity error for `name`.
pub(crate) fn arity(name: &str) -> Frame {
    Frame::Error(CommandError::WrongArity(name.to_owned()).to_string())
}

/// The lines of a container's `HELP`: its subcommands and their summaries.
pub(crate) fn help(spec: &Spec) -> Frame {
    let mut lines = vec![Frame::Simple(format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        spec.name.to_ascii_uppercase()
    ))];
    for sub in spec.subcommands {
        let name = sub.name.split_once('|').map_or(sub.name, |(_, s)| s);
        lines.push(Frame::Simple(name.to_ascii_uppercase()));
        lines.push(Frame::Simple(format!("    {}", sub.summary)));
    }
    Frame::Array(lines)
}

#[cfg(test)]
mod tests {
    use kvs_store::data_spec;

    use super::*;

    /// Connection commands and data commands never share a name, and every connection command's
    /// example fits its own arity and subcommand rules.
    #[test]
    fn the_two_halves_of_the_table_agree() {
        for group in GROUPS {
            for c in *group {
                assert!(data_spec(c.spec.name).is_none(), "{} twice", c.spec.name);
                assert_eq!(c.spec.name, c.spec.name.to_ascii_lowercase());
                let argv: Vec<Bytes> = c
                    .spec
                    .example
                    .split(' ')
                    .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                    .collect();
                assert!(check(&c.spec, &argv).is_ok(), "{}", c.spec.example);
                for sub in c.spec.subcommands {
                    let argv: Vec<Bytes> = sub
                        .example
                        .split(' ')
                        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                        .collect();
                    assert!(check(&c.spec, &argv).is_ok(), "{}", sub.example);
                }
            }
        }
        let names: Vec<&str> = specs().iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.dedup();
        assert_eq!(names.len(), sorted.len());
    }
}
