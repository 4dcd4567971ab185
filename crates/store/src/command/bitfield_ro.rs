use super::Definition;
use super::bitfield::BitField;
use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};

/// `BITFIELD_RO key [GET type offset] ...`: BITFIELD's reads alone, so it may run where writes
/// may not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitFieldRo(pub BitField);

impl BitFieldRo {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        self.0.apply(ks, now)
    }
}

impl Definition for BitFieldRo {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "bitfield_ro",
            arity: -2,
            flags: &[Flag::Readonly, Flag::Fast],
            categories: &[Category::Read, Category::Bitmap, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "bitmap",
            summary: "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
            example: "BITFIELD_RO k GET u8 0",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        BitField::parse(a, true).map(BitFieldRo)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.0.key[..]])
    }
}

