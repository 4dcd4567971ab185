//! The layout of a journal record and how a store applies one: the codec of durability.
//!
//! ```text
//! record := revision:u64 change*
//! change := 0x01 flags:u8 key entry            a key now holds this entry
//!         | 0x03 key                           a key was deleted
//!         | 0x05 key                           a key expired and was reclaimed
//!         | 0x06 key                           a key was evicted
//!         | 0x04                               every key was removed
//! key    := len:u32 bytes
//! entry  := [content_type_len:u32 bytes]       present when flags has 0x02
//!           version:u64 modified_at:u64 value_len:u64 bytes
//!           [expires_at:u64]                   present when flags has 0x01
//! flags  := 0x01 has an expiry | 0x02 names a content type (otherwise the default,
//!           application/octet-stream) | kind << 4, the value's type in bits 4-6
//!           (0 string; a string's bytes are the value)
//! ```
//!
//! Integers are little-endian; times are milliseconds since the Unix epoch. `revision` is the
//! store's revision when the record was made, so versions continue after a restart even when the
//! newest versions belonged to keys since removed. Snapshots use the same records, holding only
//! puts.

use bytes::Bytes;

use crate::effects::{Change, Effects, Removal};
use crate::entry::{DEFAULT_CONTENT_TYPE, Entry, Kind, Millis, Value};
use crate::packed::EntryRef;

const PUT: u8 = 1;
const REMOVE: u8 = 3;
const EXPIRED: u8 = 5;
const EVICTED: u8 = 6;
/// Flags of a put.
const HAS_EXPIRY: u8 = 1;
const HAS_CONTENT_TYPE: u8 = 2;
/// The value's type tag ([`Kind::tag`]) sits in bits 4-6 of a put's flags.
const KIND_SHIFT: u8 = 4;
const KIND_MASK: u8 = 0b0111_0000;
const CLEAR: u8 = 4;

/// Why a record could not be applied. Records are checksummed before they get here, so this
/// means a record written by a different kvs, or a bug.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed change record: {0}")]
pub struct BadRecord(&'static str);

fn encode_key(buf: &mut Vec<u8>, key: &[u8]) {
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key);
}

pub(crate) fn encode_put(buf: &mut Vec<u8>, key: &[u8], entry: EntryRef<'_>) {
    let named = entry.content_type != DEFAULT_CONTENT_TYPE.as_bytes();
    let mut flags = entry.kind.tag() << KIND_SHIFT;
    if entry.expires_at.is_some() {
        flags |= HAS_EXPIRY;
    }
    if named {
        flags |= HAS_CONTENT_TYPE;
    }
    buf.extend_from_slice(&[PUT, flags]);
    encode_key(buf, key);
    if named {
        buf.extend_from_slice(&(entry.content_type.len() as u32).to_le_bytes());
        buf.extend_from_slice(entry.content_type);
    }
    buf.extend_from_slice(&entry.version.to_le_bytes());
    buf.extend_from_slice(&entry.modified_at.to_le_bytes());
    buf.extend_from_slice(&(entry.value.len() as u64).to_le_bytes());
    buf.extend_from_slice(entry.value);
    if let Some(at) = entry.expires_at {
        buf.extend_from_slice(&at.to_le_bytes());
    }
}

pub(crate) fn encode_remove(buf: &mut Vec<u8>, key: &[u8], why: Removal) {
    buf.push(match why {
        Removal::Deleted => REMOVE,
        Removal::Expired => EXPIRED,
        Removal::Evicted => EVICTED,
    });
    encode_key(buf, key);
}

pub(crate) fn encode_clear(buf: &mut Vec<u8>) {
    buf.push(CLEAR);
}

/// Appends the record of `effects` to `buf`.
pub fn encode(effects: &Effects, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&effects.revision.to_le_bytes());
    for change in &effects.changes {
        match change {
            Change::Put(key, entry) => encode_put(buf, key, entry.view()),
            Change::Remove(key, why) => encode_remove(buf, key, *why),
            Change::Flush => encode_clear(buf),
        }
    }
}

/// Bytes the record of `effects` takes, give or take a content type: for sizing a buffer.
pub fn encoded_len(effects: &Effects) -> usize {
    8 + effects
        .changes
        .iter()
        .map(|c| match c {
            Change::Put(key, entry) => 48 + key.len() + entry.value.len(),
            Change::Remove(key, _) => 5 + key.len(),
            Change::Flush => 1,
        })
        .sum::<usize>()
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], BadRecord> {
        let n = usize::try_from(n).map_err(|_| BadRecord("length out of range"))?;
        if n > self.0.len() {
            return Err(BadRecord("a length runs past the end"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, BadRecord> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }

    fn u32(&mut self) -> Result<u32, BadRecord> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(word))
    }

    /// A content type; the default one is shared rather than copied for every key.
    fn content_type(&mut self) -> Result<Bytes, BadRecord> {
        let len = self.u32()?;
        let raw = self.take(u64::from(len))?;
        Ok(if raw == DEFAULT_CONTENT_TYPE.as_bytes() {
            Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes())
        } else {
            Bytes::copy_from_slice(raw)
        })
    }

    fn bytes32(&mut self) -> Result<Bytes, BadRecord> {
        let len = self.u32()?;
        Ok(Bytes::copy_from_slice(self.take(u64::from(len))?))
    }
}

/// Decodes `record` into its revision and changes.
pub fn decode(record: &[u8]) -> Result<Effects, BadRecord> {
    let mut cur = Cursor(record);
    let revision = cur.u64()?;
    let mut changes = Vec::new();
    while let Some((&tag, rest)) = cur.0.split_first() {
        cur.0 = rest;
        changes.push(match tag {
            PUT => {
                let flags = cur.take(1)?[0];
                if flags & !(HAS_EXPIRY | HAS_CONTENT_TYPE | KIND_MASK) != 0 {
                    return Err(BadRecord("unknown put flags"));
                }
                let Some(Kind::String) = Kind::from_tag((flags & KIND_MASK) >> KIND_SHIFT) else {
                    return Err(BadRecord("a value type this kvs does not know"));
                };
                let key = cur.bytes32()?;
                let content_type = if flags & HAS_CONTENT_TYPE != 0 {
                    cur.content_type()?
                } else {
                    Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes())
                };
                let version = cur.u64()?;
                let modified_at: Millis = cur.u64()?;
                let len = cur.u64()?;
                let value = Value::String(Bytes::copy_from_slice(cur.take(len)?));
                let expires_at = if flags & HAS_EXPIRY != 0 {
                    Some(cur.u64()?)
                } else {
                    None
                };
                let entry = Entry {
                    value,
                    content_type,
                    version,
                    modified_at,
                    expires_at,
                };
                Change::Put(key, entry)
            }
            REMOVE => Change::Remove(cur.bytes32()?, Removal::Deleted),
            EXPIRED => Change::Remove(cur.bytes32()?, Removal::Expired),
            EVICTED => Change::Remove(cur.bytes32()?, Removal::Evicted),
            CLEAR => Change::Flush,
            _ => return Err(BadRecord("unknown change kind")),
        });
    }
    Ok(Effects {
        revision,
        changes,
        events: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &'static [u8], expires_at: Option<Millis>) -> Entry {
        Entry {
            value: Value::String(Bytes::from_static(value)),
            content_type: Bytes::from_static(b"text/plain"),
            version: 7,
            modified_at: 1_000,
            expires_at,
        }
    }

    #[test]
    fn golden_bytes() {
        let mut buf = 9u64.to_le_bytes().to_vec();
        encode_put(&mut buf, b"k", entry(b"v", None).view());
        encode_remove(&mut buf, b"gone", Removal::Deleted);
        encode_remove(&mut buf, b"old", Removal::Expired);
        encode_clear(&mut buf);
        let want: Vec<u8> = [
            &9u64.to_le_bytes()[..],
            &[1, 2, 1, 0, 0, 0, b'k', 10, 0, 0, 0],
            b"text/plain",
            &7u64.to_le_bytes(),
            &1000u64.to_le_bytes(),
            &1u64.to_le_bytes(),
            b"v",
            &[3, 4, 0, 0, 0],
            b"gone",
            &[5, 3, 0, 0, 0],
            b"old",
            &[4],
        ]
        .concat();
        assert_eq!(buf, want);
    }

    #[test]
    fn round_trip() {
        let mut buf = 3u64.to_le_bytes().to_vec();
        encode_put(&mut buf, b"a", entry(b"1", Some(5_000)).view());
        encode_put(&mut buf, b"", entry(b"", None).view());
        let plain = Entry {
            content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
            ..entry(b"p", Some(9))
        };
        encode_put(&mut buf, b"p", plain.view());
        encode_remove(&mut buf, b"b", Removal::Deleted);
        encode_remove(&mut buf, b"e", Removal::Expired);
        encode_remove(&mut buf, b"v", Removal::Evicted);
        encode_clear(&mut buf);
        let effects = decode(&buf).expect("decodes");
        assert_eq!(effects.revision, 3);
        assert_eq!(
            effects.changes,
            [
                Change::Put(Bytes::from_static(b"a"), entry(b"1", Some(5_000))),
                Change::Put(Bytes::new(), entry(b"", None)),
                Change::Put(Bytes::from_static(b"p"), plain),
                Change::Remove(Bytes::from_static(b"b"), Removal::Deleted),
                Change::Remove(Bytes::from_static(b"e"), Removal::Expired),
                Change::Remove(Bytes::from_static(b"v"), Removal::Evicted),
                Change::Flush,
            ]
        );
        let mut again = Vec::new();
        encode(&effects, &mut again);
        assert_eq!(
            again, buf,
            "encoding the decoded effects gives the same bytes"
        );
    }

    /// A put names its value's type in bits 4-6 of its flags: 0 (string) is what every record
    /// written before the tag existed holds, and a type this kvs does not know is refused, not
    /// misread.
    #[test]
    fn the_type_tag_is_read_and_an_unknown_one_refused() {
        let mut buf = 1u64.to_le_bytes().to_vec();
        encode_put(&mut buf, b"k", entry(b"v", None).view());
        assert_eq!(buf[9] & KIND_MASK, 0, "a string's tag is 0");
        let Change::Put(_, e) = &decode(&buf).expect("decodes").changes[0] else {
            panic!("a put")
        };
        assert_eq!(e.value.kind(), Kind::String);
        buf[9] |= 7 << KIND_SHIFT;
        assert_eq!(
            decode(&buf),
            Err(BadRecord("a value type this kvs does not know"))
        );
    }

    #[test]
    fn every_truncation_is_refused_without_panicking() {
        let mut buf = 3u64.to_le_bytes().to_vec();
        encode_put(&mut buf, b"key", entry(b"value", Some(1)).view());
        for cut in 0..buf.len() {
            if cut == 8 {
                continue; // a record with no changes is valid
            }
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = 0u64.to_le_bytes().to_vec();
        huge.push(REMOVE);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }
}
