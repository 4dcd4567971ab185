use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::zrange::ZRange;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `ZRANGESTORE destination source ...`: [`ZRange`]'s selection, replacing the destination key.
/// A command of its own because it writes.
#[derive(Clone, Debug, PartialEq)]
pub struct ZRangeStore(pub ZRange);

impl ZRangeStore {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        self.0.apply(ks, now)
    }
}

impl Definition for ZRangeStore {
    const SPECS: &'static [Spec] = &[
        Spec {
            access: KeyAccess::FirstThenRest(Access::WRITE, Access::READ),
            ..Spec::data("zrangestore", -5, &[Flag::Write, Flag::Denyoom], &[Category::Write, Category::SortedSet, Category::Slow], KeySpec::Range { first: 1, last: 2, step: 1 }, Access::WRITE, "sorted-set", "Store a range of members from sorted set into another key", "ZRANGESTORE d z 0 -1")
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        <ZRange as Definition>::from_args(a).map(Self)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        self.0.keys()
    }
}
