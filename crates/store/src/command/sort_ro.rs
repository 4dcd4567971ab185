use super::Definition;
use super::parse::Args;
use super::sort::{Sort, parse};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `SORT_RO`: [`Sort`] without STORE, a command of its own because it never writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortRo(pub Sort);

impl SortRo {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        self.0.apply(ks, now)
    }
}

impl Definition for SortRo {
    const SPECS: &'static [Spec] = &[Spec::data(
        "sort_ro",
        -2,
        &[Flag::Readonly],
        &[
            Category::Read,
            Category::Set,
            Category::SortedSet,
            Category::List,
            Category::Slow,
            Category::Dangerous,
        ],
        // Redis marks it movablekeys: its BY and GET patterns reach keys of their own.
        KeySpec::Find {
            shown: (1, 1, 1),
            find: |_| vec![1],
        },
        Access::READ,
        "generic",
        "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
        "SORT_RO k LIMIT 0 5 ALPHA",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        parse(a, true).map(Self)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        self.0.keys()
    }
}
