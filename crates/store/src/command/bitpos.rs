use bytes::Bytes;

use super::bitcount::BitRange;
use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// The first bit equal to `on` from bit `first` to bit `last` of `bytes`, skipping whole bytes
/// that cannot hold it.
fn first_bit(bytes: &[u8], on: bool, first: u64, last: u64) -> Option<u64> {
    let skip = if on { 0x00 } else { 0xff };
    let mut bit = first;
    while bit <= last {
        let byte = bytes[(bit / 8) as usize];
        if bit.is_multiple_of(8) && bit + 7 <= last && byte == skip {
            bit += 8;
            continue;
        }
        if (byte & (0x80 >> (bit % 8)) != 0) == on {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`: the position of the first bit set to `bit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitPos {
    pub key: Bytes,
    pub on: bool,
    pub range: Option<BitRange>,
}

impl BitPos {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let Some(entry) = shard.live(&self.key, now) else {
                // A missing key is an endless run of zeros.
                return Reply::Integer(if self.on { -1 } else { 0 });
            };
            let bytes = match entry.string() {
                Ok(b) => b,
                Err(e) => return e.into(),
            };
            let range = self.range.unwrap_or(BitRange {
                start: 0,
                end: None,
                bits: false,
            });
            let Some((first, last)) = range.bits_in(bytes.len()) else {
                return Reply::Integer(-1);
            };
            match first_bit(bytes, self.on, first, last) {
                Some(bit) => Reply::Integer(bit as i64),
                // Looking for a clear bit with no end named: the string goes on with zeros.
                None if !self.on && range.end.is_none() => Reply::Integer(last as i64 + 1),
                None => Reply::Integer(-1),
            }
        })
    }
}

impl Definition for BitPos {
    const SPECS: &'static [Spec] = &[Spec {
        name: "bitpos",
        arity: -3,
        flags: &[Flag::Readonly],
        categories: &[Category::Read, Category::Bitmap, Category::Slow],
        keys: KeySpec::FIRST,
        access: KeyAccess::Each(Access::READ),
        group: "bitmap",
        summary: "Find first bit set or clear in a string",
        example: "BITPOS k 1 0 -1",
        ..Spec::BLANK
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let on = match &v[1][..] {
            b"0" => false,
            b"1" => true,
            _ => return Err(CommandError::BitArgument),
        };
        Ok(Self {
            key: v[0].clone(),
            on,
            range: BitRange::parse(&v[2..])?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_set_and_clear_bits_skipping_whole_bytes() {
        let bytes = b"\xff\xf0\x00";
        assert_eq!(first_bit(bytes, false, 0, 23), Some(12));
        assert_eq!(first_bit(bytes, true, 13, 23), None);
        assert_eq!(first_bit(b"\x00\x00\x01", true, 0, 23), Some(23));
        assert_eq!(first_bit(b"\xff\xff", false, 0, 15), None);
    }
}
