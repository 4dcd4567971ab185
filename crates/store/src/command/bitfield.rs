use bytes::{Bytes, BytesMut};

use super::parse::{Args, int, is};
use super::setbit::bit_offset;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::packed::EntryRef;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// What an integer that does not fit its field becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    /// The operation is not done and answers nil.
    Fail,
}

/// An integer field: signed or not, `bits` wide, starting at bit `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub signed: bool,
    pub bits: u32,
    pub offset: u64,
}

/// One BITFIELD operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOp {
    Get(Field),
    Set(Field, i64, Overflow),
    IncrBy(Field, i64, Overflow),
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...` and `BITFIELD_RO key [GET type offset] ...`: integers of any
/// width at any bit offset of a string, as Redis reads and writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitField {
    pub key: Bytes,
    pub ops: Vec<FieldOp>,
}

fn field(kind: &[u8], offset: &[u8]) -> Result<Field, CommandError> {
    let invalid = || {
        CommandError::Invalid(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let (signed, width) = match kind.split_first() {
        Some((b'i', w)) => (true, w),
        Some((b'u', w)) => (false, w),
        _ => return Err(invalid()),
    };
    let bits = std::str::from_utf8(width)
        .ok()
        .and_then(|w| w.parse::<u32>().ok())
        .filter(|&b| b >= 1 && (if signed { b <= 64 } else { b <= 63 }))
        .ok_or_else(invalid)?;
    let offset = match offset.strip_prefix(b"#") {
        Some(index) => {
            let index = std::str::from_utf8(index)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or(CommandError::BitOffset)?;
            let offset = index
                .checked_mul(u64::from(bits))
                .ok_or(CommandError::BitOffset)?;
            bit_offset(offset.to_string().as_bytes())?
        }
        None => bit_offset(offset)?,
    };
    Ok(Field {
        signed,
        bits,
        offset,
    })
}

impl Field {
    fn get(&self, bytes: &[u8]) -> i64 {
        let mut value: u64 = 0;
        for j in 0..u64::from(self.bits) {
            let bit = self.offset + j;
            let byte = bytes.get((bit >> 3) as usize).copied().unwrap_or(0);
            value = (value << 1) | u64::from(byte & (0x80 >> (bit & 7)) != 0);
        }
        if self.signed && self.bits < 64 && value & (1 << (self.bits - 1)) != 0 {
            value |= u64::MAX << self.bits;
        }
        value as i64
    }

    fn set(&self, bytes: &mut [u8], value: i64) {
        let value = value as u64;
        for j in 0..u64::from(self.bits) {
            let bit = self.offset + j;
            let mask = 0x80u8 >> (bit & 7);
            let byte = &mut bytes[(bit >> 3) as usize];
            if value & (1 << (u64::from(self.bits) - 1 - j)) != 0 {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }

    /// `value + incr` for this field under `overflow`, as Redis computes it; `None` when it
    /// overflows and `overflow` is FAIL.
    fn add(&self, value: i64, incr: i64, overflow: Overflow) -> Option<i64> {
        let bits = self.bits;
        let (min, max): (i128, i128) = if self.signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        // Unsigned fields see the stored value (and a negative SET value) as unsigned, as Redis
        // does.
        let value_wide: i128 = if self.signed {
            i128::from(value)
        } else {
            i128::from(value as u64)
        };
        let sum = value_wide + i128::from(incr);
        if (min..=max).contains(&sum) {
            return Some(sum as i64);
        }
        match overflow {
            Overflow::Fail => None,
            Overflow::Sat => Some(if sum > max { max as i64 } else { min as i64 }),
            Overflow::Wrap => {
                let raw = (value as u64).wrapping_add(incr as u64);
                let mask = if bits == 64 { 0 } else { u64::MAX << bits };
                let wrapped = if self.signed && raw & (1 << (bits - 1)) != 0 {
                    raw | mask
                } else {
                    raw & !mask
                };
                Some(wrapped as i64)
            }
        }
    }
}

impl BitField {
    /// Reads the operations; `read_only` (BITFIELD_RO) allows GET alone.
    pub(crate) fn parse(a: &Args<'_>, read_only: bool) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        let mut ops = Vec::new();
        let mut overflow = Overflow::Wrap;
        let mut i = 1;
        while i < v.len() {
            let word = &v[i];
            let needs = |n: usize| {
                if i + n < v.len() {
                    Ok(())
                } else {
                    Err(CommandError::Syntax)
                }
            };
            if is(word, "GET") {
                needs(2)?;
                ops.push(FieldOp::Get(field(&v[i + 1], &v[i + 2])?));
                i += 3;
            } else if is(word, "SET") || is(word, "INCRBY") {
                needs(3)?;
                let f = field(&v[i + 1], &v[i + 2])?;
                let n = int(&v[i + 3])?;
                ops.push(if is(word, "SET") {
                    FieldOp::Set(f, n, overflow)
                } else {
                    FieldOp::IncrBy(f, n, overflow)
                });
                i += 4;
            } else if is(word, "OVERFLOW") {
                needs(1)?;
                overflow = match &v[i + 1] {
                    o if is(o, "WRAP") => Overflow::Wrap,
                    o if is(o, "SAT") => Overflow::Sat,
                    o if is(o, "FAIL") => Overflow::Fail,
                    _ => {
                        return Err(CommandError::Invalid("Invalid OVERFLOW type specified"));
                    }
                };
                i += 2;
            } else {
                return Err(CommandError::Syntax);
            }
        }
        // Checked once everything parsed, so a malformed request gets its own error first.
        if read_only && ops.iter().any(|op| !matches!(op, FieldOp::Get(_))) {
            return Err(CommandError::Invalid(
                "BITFIELD_RO only supports the GET subcommand",
            ));
        }
        Ok(Self {
            key: v[0].clone(),
            ops,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        // The string grows to hold every field written, before any operation runs.
        let highest = self
            .ops
            .iter()
            .filter_map(|op| match op {
                FieldOp::Get(_) => None,
                FieldOp::Set(f, ..) | FieldOp::IncrBy(f, ..) => {
                    Some(f.offset + u64::from(f.bits) - 1)
                }
            })
            .max();
        let Some(highest) = highest else {
            return ks.read(&self.key, |shard| {
                let bytes = match shard.live(&self.key, now).map(|e| e.string()) {
                    None => &[][..],
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return e.into(),
                };
                self.run(&mut bytes.to_vec()).0
            });
        };
        ks.write(&self.key, |shard| {
            let mut reply = Reply::Nil;
            let mut changes = 0;
            let written = shard.update(&self.key, now, |current| {
                let old = current.map(|e| e.string()).transpose()?.unwrap_or_default();
                let len = old.len().max((highest >> 3) as usize + 1);
                let mut value = BytesMut::zeroed(len);
                value[..old.len()].copy_from_slice(old);
                let (r, n) = self.run(&mut value);
                reply = r;
                changes = n;
                Ok::<_, CommandError>(EntryRef::successor(
                    current,
                    value.freeze(),
                    ks.next_version(),
                    now,
                ))
            });
            match written {
                Ok(_) => {
                    if changes > 0 {
                        shard.event(Event::Setbit, &self.key);
                    }
                    reply
                }
                Err(e) => e.into(),
            }
        })
    }

    /// Runs the operations on `bytes`: their replies, and how many wrote.
    fn run(&self, bytes: &mut [u8]) -> (Reply, usize) {
        let mut changes = 0;
        let replies = self
            .ops
            .iter()
            .map(|op| match *op {
                FieldOp::Get(f) => Reply::Integer(f.get(bytes)),
                FieldOp::Set(f, value, overflow) => {
                    let old = f.get(bytes);
                    match f.add(value, 0, overflow) {
                        Some(new) => {
                            f.set(bytes, new);
                            changes += 1;
                            Reply::Integer(old)
                        }
                        None => Reply::Nil,
                    }
                }
                FieldOp::IncrBy(f, incr, overflow) => match f.add(f.get(bytes), incr, overflow) {
                    Some(new) => {
                        f.set(bytes, new);
                        changes += 1;
                        Reply::Integer(new)
                    }
                    None => Reply::Nil,
                },
            })
            .collect();
        (Reply::Array(replies), changes)
    }
}

impl Definition for BitField {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "bitfield",
            arity: -2,
            flags: &[Flag::Write, Flag::Denyoom],
            categories: &[Category::Write, Category::Bitmap, Category::Slow],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "bitmap",
            summary: "Perform arbitrary bitfield integer operations on strings",
            example: "BITFIELD k INCRBY u8 0 1",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a, false)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_follows_redis() {
        let u8f = Field {
            signed: false,
            bits: 8,
            offset: 0,
        };
        let i8f = Field {
            signed: true,
            bits: 8,
            offset: 0,
        };
        assert_eq!(u8f.add(-1, 0, Overflow::Wrap), Some(255));
        assert_eq!(u8f.add(-1, 0, Overflow::Sat), Some(255));
        assert_eq!(u8f.add(-1, 0, Overflow::Fail), None);
        assert_eq!(u8f.add(250, 10, Overflow::Wrap), Some(4));
        assert_eq!(i8f.add(120, 10, Overflow::Wrap), Some(-126));
        assert_eq!(i8f.add(-120, -10, Overflow::Sat), Some(-128));
        let mut bytes = [0u8; 2];
        i8f.set(&mut bytes, -2);
        assert_eq!(bytes, [0xfe, 0]);
        assert_eq!(i8f.get(&bytes), -2);
        assert_eq!(u8f.get(&bytes), 254);
    }
}
