use super::parse::{Args, is};
use crate::access::Keyspace;
use crate::access::Writer;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Category, Flag, KeySpec, Spec};
use super::Definition;

/// `FLUSHDB` / `FLUSHALL [ASYNC|SYNC]`: remove every key (there is one database).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flush;

impl Flush {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        match a.args {
            [] => Ok(Flush),
            [mode] if is(mode, "ASYNC") || is(mode, "SYNC") => Ok(Flush),
            _ => Err(CommandError::Syntax),
        }
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, _now: Millis) -> Reply {
        ks.write_every(|shards| Writer::clear_all(ks.store(), shards));
        Reply::Ok
    }
}

impl Definition for Flush {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "flushdb",
            arity: -1,
            flags: &[Flag::Write],
            categories: &[Category::Keyspace, Category::Write, Category::Slow, Category::Dangerous],
            keys: KeySpec::None,
            group: "server",
            summary: "Remove all keys from the current database",
            example: "FLUSHDB",
            ..Spec::BLANK
        },
        Spec {
            name: "flushall",
            arity: -1,
            flags: &[Flag::Write],
            categories: &[Category::Keyspace, Category::Write, Category::Slow, Category::Dangerous],
            keys: KeySpec::None,
            group: "server",
            summary: "Remove all keys from all databases",
            example: "FLUSHALL ASYNC",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    #[test]
    fn empties_the_store() {
        let s = Store::new();
        Set::new("a", "1").apply(&s, 0);
        assert_eq!(Flush.apply(&s, 0), Reply::Ok);
        assert_eq!(s.held(), 0);
    }
}
