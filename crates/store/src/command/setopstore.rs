use super::Definition;
use super::parse::Args;
use super::spec::{Access, KeySpec, Spec};
use super::setop::*;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// The store forms of [`Setop`]: the same computation, its result
/// replacing the destination key. A command of its own because it writes.
#[derive(Clone, Debug, PartialEq)]
pub struct SetOpStore(pub SetOp);

impl SetOpStore {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        self.0.apply(ks, now)
    }
}

impl Definition for SetOpStore {
    const SPECS: &'static [Spec] = &[
        Spec { access: STORE, ..Spec::data("sinterstore", -3, W, CW, KeySpec::ALL_ARGS, Access::WRITE, "set", "Intersect multiple sets and store the resulting set in a key", "SINTERSTORE d a b") },
        Spec { access: STORE, ..Spec::data("sunionstore", -3, W, CW, KeySpec::ALL_ARGS, Access::WRITE, "set", "Add multiple sets and store the resulting set in a key", "SUNIONSTORE d a b") },
        Spec { access: STORE, ..Spec::data("sdiffstore", -3, W, CW, KeySpec::ALL_ARGS, Access::WRITE, "set", "Subtract multiple sets and store the resulting set in a key", "SDIFFSTORE d a b") },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        <SetOp as Definition>::from_args(a).map(Self)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        self.0.keys()
    }
}
