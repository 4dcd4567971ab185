use bytes::{Bytes, BytesMut};

use super::append::MAX_VALUE_LEN;
use super::parse::Args;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::packed::EntryRef;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// A bit offset as SETBIT, GETBIT and BITFIELD take it: a whole number below 2^32 whose byte
/// fits the value size limit.
pub(crate) fn bit_offset(arg: &[u8]) -> Result<u64, CommandError> {
    let offset = std::str::from_utf8(arg)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or(CommandError::BitOffset)?;
    if offset >= 1 << 32 || (offset >> 3) as usize >= MAX_VALUE_LEN {
        return Err(CommandError::BitOffset);
    }
    Ok(offset)
}

/// `SETBIT key offset 0|1`: sets one bit (bit 0 is the most significant bit of the first byte),
/// growing the string with zero bytes; answers the bit's old value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetBit {
    pub key: Bytes,
    pub offset: u64,
    pub on: bool,
}

impl SetBit {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        let offset = bit_offset(&v[1])?;
        let on = match &v[2][..] {
            b"0" => false,
            b"1" => true,
            _ => return Err(CommandError::BitValue),
        };
        Ok(Self {
            key: v[0].clone(),
            offset,
            on,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let byte = (self.offset >> 3) as usize;
        let mask = 0x80u8 >> (self.offset & 7);
        ks.write(&self.key, |shard| {
            let mut old = false;
            let written = shard.update(&self.key, now, |current| {
                let bytes = current.map(|e| e.string()).transpose()?.unwrap_or_default();
                let mut value = BytesMut::zeroed(bytes.len().max(byte + 1));
                value[..bytes.len()].copy_from_slice(bytes);
                old = value[byte] & mask != 0;
                if self.on {
                    value[byte] |= mask;
                } else {
                    value[byte] &= !mask;
                }
                Ok::<_, CommandError>(EntryRef::successor(
                    current,
                    value.freeze(),
                    ks.next_version(),
                    now,
                ))
            });
            match written {
                Ok(_) => {
                    shard.event(Event::Setbit, &self.key);
                    Reply::Integer(i64::from(old))
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for SetBit {
    const SPECS: &'static [Spec] = &[Spec {
        name: "setbit",
        arity: 4,
        flags: &[Flag::Write, Flag::Denyoom],
        categories: &[Category::Write, Category::Bitmap, Category::Slow],
        keys: KeySpec::FIRST,
        access: KeyAccess::Each(Access::READ_WRITE),
        group: "bitmap",
        summary: "Sets or clears the bit at offset in the string value stored at key",
        example: "SETBIT k 7 1",
        ..Spec::BLANK
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Store;
    use crate::Get;

    #[test]
    fn sets_and_clears_bits_growing_the_string() {
        let s = Store::new();
        let set = |offset, on| SetBit {
            key: "k".into(),
            offset,
            on,
        };
        assert_eq!(set(7, true).apply(&s, 0), Reply::Integer(0));
        assert_eq!(set(7, true).apply(&s, 0), Reply::Integer(1));
        assert_eq!(set(17, true).apply(&s, 0), Reply::Integer(0));
        let Reply::Value(e) = Get::new("k").apply(&s, 0) else {
            panic!("the key exists");
        };
        assert_eq!(e.value, &b"\x01\x00\x40"[..]);
        assert_eq!(set(7, false).apply(&s, 0), Reply::Integer(1));
        assert!(bit_offset(b"4294967296").is_err() && bit_offset(b"-1").is_err());
        assert_eq!(bit_offset(b"4294967295"), Ok(4_294_967_295));
    }
}
