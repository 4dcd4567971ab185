use crate::access::Keyspace;
use crate::entry::Millis;
use crate::reply::Reply;
use super::spec::{Category, Flag, KeySpec, Spec};
use super::Definition;
use super::parse::Args;
use crate::error::CommandError;

/// The number of live keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count;

impl Count {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        Reply::Count(ks.read_every(|shards| crate::keyspace::live_count(shards, now)))
    }
}

impl Definition for Count {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "dbsize",
            arity: 1,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Keyspace, Category::Read, Category::Fast],
            keys: KeySpec::None,
            group: "server",
            summary: "Return the number of keys in the selected database",
            example: "DBSIZE",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        a.exactly(0)?;
        Ok(Count)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::{Delete, Set};

    #[test]
    fn counts_live_keys_only() {
        let store = Store::new();
        assert_eq!(Count.apply(&store, 0), Reply::Count(0));
        Set::new("a", "v").apply(&store, 0);
        Set::new("b", "v").expires_at(10).apply(&store, 0);
        Set::new("c", "v").apply(&store, 0);
        assert_eq!(Count.apply(&store, 9), Reply::Count(3));
        assert_eq!(Count.apply(&store, 10), Reply::Count(2));
        Delete::new("a").apply(&store, 10);
        assert_eq!(Count.apply(&store, 10), Reply::Count(1));
        assert_eq!(store.sweep_expired(10, 10), 1);
        assert_eq!(Count.apply(&store, 10), Reply::Count(1));
    }
}
