use bytes::Bytes;

use super::parse::Args;
use super::setbit::bit_offset;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `GETBIT key offset`: the bit at `offset` (0 past the end, or for a missing key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetBit {
    pub key: Bytes,
    pub offset: u64,
}

impl GetBit {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let Some(entry) = shard.live(&self.key, now) else {
                return Reply::Integer(0);
            };
            match entry.string() {
                Ok(bytes) => {
                    let byte = bytes.get((self.offset >> 3) as usize).copied().unwrap_or(0);
                    Reply::Integer(i64::from(byte & (0x80 >> (self.offset & 7)) != 0))
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for GetBit {
    const SPECS: &'static [Spec] = &[Spec {
        name: "getbit",
        arity: 3,
        flags: &[Flag::Readonly, Flag::Fast],
        categories: &[Category::Read, Category::Bitmap, Category::Fast],
        keys: KeySpec::FIRST,
        access: KeyAccess::Each(Access::READ),
        group: "bitmap",
        summary: "Returns the bit value at offset in the string value stored at key",
        example: "GETBIT k 7",
        ..Spec::BLANK
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(2)?;
        Ok(Self {
            key: v[0].clone(),
            offset: bit_offset(&v[1])?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
