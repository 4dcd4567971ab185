use super::Definition;
use super::parse::Args;
use super::spec::{Access, Spec};
use super::zsetop::*;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// The store forms of [`ZSetOp`]: the same computation, its result replacing the destination
/// key. A command of its own because it writes.
#[derive(Clone, Debug, PartialEq)]
pub struct ZSetOpStore(pub ZSetOp);

impl ZSetOpStore {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        self.0.apply(ks, now)
    }
}

impl Definition for ZSetOpStore {
    const SPECS: &'static [Spec] = &[
        Spec { access: STORE, ..Spec::data("zunionstore", -4, W, CW, STORE_KEYS, Access::WRITE, "sorted-set", "Add multiple sorted sets and store the resulting sorted set in a new key", "ZUNIONSTORE d 2 a b") },
        Spec { access: STORE, ..Spec::data("zinterstore", -4, W, CW, STORE_KEYS, Access::WRITE, "sorted-set", "Intersect multiple sorted sets and store the resulting sorted set in a new key", "ZINTERSTORE d 2 a b AGGREGATE MIN") },
        Spec { access: STORE, ..Spec::data("zdiffstore", -4, W, CW, STORE_KEYS, Access::WRITE, "sorted-set", "Subtract multiple sorted sets and store the resulting sorted set in a new key", "ZDIFFSTORE d 2 a b") },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        <ZSetOp as Definition>::from_args(a).map(Self)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        self.0.keys()
    }
}
