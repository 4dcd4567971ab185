use bytes::Bytes;

use super::parse::{Args, int, is};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// A `start end [BYTE|BIT]` range of BITCOUNT and BITPOS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitRange {
    pub start: i64,
    pub end: Option<i64>,
    /// The indexes count bits, not bytes.
    pub bits: bool,
}

impl BitRange {
    /// Reads `[start [end [BYTE|BIT]]]` from `args`.
    pub(crate) fn parse(args: &[Bytes]) -> Result<Option<BitRange>, CommandError> {
        let Some(start) = args.first() else {
            return Ok(None);
        };
        let start = int(start)?;
        let end = args.get(1).map(|e| int(e)).transpose()?;
        let bits = match args.get(2) {
            None => false,
            Some(u) if is(u, "BYTE") => false,
            Some(u) if is(u, "BIT") => true,
            Some(_) => return Err(CommandError::Syntax),
        };
        if args.len() > 3 {
            return Err(CommandError::Syntax);
        }
        Ok(Some(BitRange { start, end, bits }))
    }

    /// The first and last bit the range covers in a string of `len` bytes, as Redis clamps
    /// them; `None` when it covers none.
    pub(crate) fn bits_in(&self, len: usize) -> Option<(u64, u64)> {
        let total = if self.bits { len as i64 * 8 } else { len as i64 };
        let clamp = |i: i64| if i < 0 { (total + i).max(0) } else { i };
        let start = clamp(self.start);
        let end = clamp(self.end.unwrap_or(total - 1)).min(total - 1);
        if total == 0 || start > end {
            return None;
        }
        let (start, end) = (start as u64, end as u64);
        Some(if self.bits {
            (start, end)
        } else {
            (start * 8, end * 8 + 7)
        })
    }
}

/// The set bits of `bytes` from bit `first` to bit `last`, inclusive.
fn count_ones(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (a, b) = ((first / 8) as usize, (last / 8) as usize);
    let head = 0xffu8 >> (first % 8);
    let tail = 0xffu8 << (7 - last % 8);
    if a == b {
        return u64::from((bytes[a] & head & tail).count_ones());
    }
    let middle: u64 = bytes[a + 1..b]
        .iter()
        .map(|x| u64::from(x.count_ones()))
        .sum();
    u64::from((bytes[a] & head).count_ones()) + middle + u64::from((bytes[b] & tail).count_ones())
}

/// `BITCOUNT key [start end [BYTE|BIT]]`: how many bits are set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitCount {
    pub key: Bytes,
    pub range: Option<BitRange>,
}

impl BitCount {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let Some(entry) = shard.live(&self.key, now) else {
                return Reply::Integer(0);
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
            // Both counted from the end, the wrong way round: none, before any clamping (BITCOUNT
            // alone does this in Redis; BITPOS clamps first).
            if let Some(end) = range.end
                && range.start < 0
                && end < 0
                && range.start > end
            {
                return Reply::Integer(0);
            }
            match range.bits_in(bytes.len()) {
                Some((first, last)) => Reply::Integer(count_ones(bytes, first, last) as i64),
                None => Reply::Integer(0),
            }
        })
    }
}

impl Definition for BitCount {
    const SPECS: &'static [Spec] = &[Spec {
        name: "bitcount",
        arity: -2,
        flags: &[Flag::Readonly],
        categories: &[Category::Read, Category::Bitmap, Category::Slow],
        keys: KeySpec::FIRST,
        access: KeyAccess::Each(Access::READ),
        group: "bitmap",
        summary: "Count set bits in a string",
        example: "BITCOUNT k 0 -1",
        ..Spec::BLANK
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        // A start needs its end.
        if v.len() == 2 {
            return Err(CommandError::Syntax);
        }
        Ok(Self {
            key: v[0].clone(),
            range: BitRange::parse(&v[1..])?,
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
    fn counts_within_byte_and_bit_ranges() {
        let bytes = b"foobar";
        let all = BitRange {
            start: 0,
            end: None,
            bits: false,
        };
        let (f, l) = all.bits_in(6).expect("covers");
        assert_eq!(count_ones(bytes, f, l), 26);
        let second = BitRange {
            start: 1,
            end: Some(1),
            bits: false,
        };
        let (f, l) = second.bits_in(6).expect("covers");
        assert_eq!(count_ones(bytes, f, l), 6);
        let bits = BitRange {
            start: 5,
            end: Some(30),
            bits: true,
        };
        let (f, l) = bits.bits_in(6).expect("covers");
        assert_eq!(count_ones(bytes, f, l), 17);
        let empty = BitRange {
            start: 3,
            end: Some(1),
            bits: false,
        };
        assert_eq!(empty.bits_in(6), None);
    }
}
