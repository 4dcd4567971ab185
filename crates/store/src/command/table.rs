//! The index of the command table by name: built once from the specs every command file
//! declares, searched on every request.

use std::sync::OnceLock;

use super::spec::Spec;
use super::{Parser, TABLE};

/// One name the store answers to.
pub(crate) struct Entry {
    pub(crate) spec: &'static Spec,
    pub(crate) parse: Parser,
}

/// Every data command name, sorted, with its spec and parser.
fn index() -> &'static [Entry] {
    static INDEX: OnceLock<Vec<Entry>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut entries: Vec<Entry> = TABLE
            .iter()
            .flat_map(|(specs, parse)| {
                specs.iter().map(|spec| Entry {
                    spec,
                    parse: *parse,
                })
            })
            .collect();
        entries.sort_by_key(|e| e.spec.name);
        entries
    })
}

/// The entries by name: looked up on every request, so one hash and one comparison rather
/// than a binary search's eight (a profile of pipelined LPUSH showed the search at 13 %).
fn by_name() -> &'static hashbrown::HashMap<&'static [u8], usize> {
    static BY_NAME: OnceLock<hashbrown::HashMap<&'static [u8], usize>> = OnceLock::new();
    BY_NAME.get_or_init(|| {
        index()
            .iter()
            .enumerate()
            .map(|(i, e)| (e.spec.name.as_bytes(), i))
            .collect()
    })
}

/// The entry for `name`, given in lowercase.
pub(crate) fn find(name: &[u8]) -> Option<&'static Entry> {
    by_name().get(name).map(|&i| &index()[i])
}

/// The spec of the data command called `name` (any case).
pub fn data_spec(name: &str) -> Option<&'static Spec> {
    data_spec_lowercase(name.to_ascii_lowercase().as_bytes())
}

/// [`data_spec`] for a name already in lowercase: no allocation, for the request path.
pub fn data_spec_lowercase(name: &[u8]) -> Option<&'static Spec> {
    find(name).map(|e| e.spec)
}

/// Every data command's spec, by name.
pub fn data_specs() -> impl Iterator<Item = &'static Spec> {
    index().iter().map(|e| e.spec)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::command::Command;
    use crate::command::spec::Flag;
    use crate::error::CommandError;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// The table, the parser and what the table says of each command agree, for every name:
    /// its example parses, fits its arity, writes exactly when the spec has `write`, and touches
    /// exactly the keys the key spec finds (what `COMMAND GETKEYS` answers). Too few arguments
    /// are refused by the arity before any command's own parse.
    #[test]
    fn every_spec_agrees_with_the_parser() {
        let mut seen = 0;
        for spec in data_specs() {
            seen += 1;
            let example = argv(spec.example);
            assert_eq!(
                String::from_utf8_lossy(&example[0]).to_ascii_lowercase(),
                spec.name,
                "{}'s example names another command",
                spec.name
            );
            assert!(spec.arity_allows(example.len()), "{}", spec.example);
            let command = Command::from_argv(&example)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", spec.example));
            let facts = spec.describing(&example);
            assert_eq!(
                command.writes(),
                facts.has(Flag::Write),
                "{}: writes() against the write flag",
                spec.example
            );
            assert_ne!(
                facts.has(Flag::Write),
                facts.has(Flag::Readonly),
                "{}: a data command either writes or only reads",
                spec.example
            );
            let by_spec: Vec<&[u8]> = facts
                .keys
                .positions(&example)
                .into_iter()
                .map(|i| &example[i][..])
                .collect();
            match command.keys() {
                Some(keys) => assert_eq!(keys, by_spec, "{}: keys", spec.example),
                None => assert!(by_spec.is_empty(), "{}: keys", spec.example),
            }
            if spec.arity.abs() > 1 {
                assert_eq!(
                    Command::from_argv(&example[..1]),
                    Err(CommandError::WrongArity(spec.name.to_owned())),
                    "{}",
                    spec.name
                );
            }
            for sub in spec.subcommands {
                assert!(sub.name.starts_with(&format!("{}|", spec.name)));
                let example = argv(sub.example);
                assert!(sub.arity_allows(example.len()), "{}", sub.example);
                assert!(Command::from_argv(&example).is_ok(), "{}", sub.example);
            }
        }
        assert_eq!(seen, index().len());
        assert!(seen >= 45, "only {seen} names");
    }

    #[test]
    fn names_are_unique_lowercase_and_found_in_any_case() {
        let names: Vec<&str> = data_specs().map(|s| s.name).collect();
        for pair in names.windows(2) {
            assert!(pair[0] < pair[1], "{} twice or unsorted", pair[1]);
        }
        for name in names {
            assert_eq!(name, name.to_ascii_lowercase());
            assert!(data_spec(&name.to_ascii_uppercase()).is_some());
        }
        assert!(
            data_spec("ping").is_none(),
            "connection commands live in the server"
        );
    }
}
