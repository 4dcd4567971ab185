//! The layout of a journal record and how a store applies one: the codec of durability.
//!
//! ```text
//! record := revision:u64 change*
//! change := 0x01 flags:u8 key entry            a key now holds this entry
//!         | 0x03 key                           a key was deleted
//!         | 0x05 key                           a key expired and was reclaimed
//!         | 0x06 key                           a key was evicted
//!         | 0x04                               every key was removed
//!         | 0x07 key version:u64 modified_at:u64 edit
//!                                              the collection under key changed
//!         | 0x08 flags:u8 key version:u64 modified_at:u64 [expires_at:u64]
//!                                              the collection under key got new metadata
//!                                              (flags 0x01: has an expiry)
//!         | 0x09 key edit                      a snapshot's further elements of a collection
//!         | 0x0a name:key value:key            server state kept beside the keyspace (the
//!                                              function libraries) now holds value
//! key    := len:u32 bytes
//! entry  := [content_type_len:u32 bytes]       present when flags has 0x02
//!           version:u64 modified_at:u64 value_len:u64 bytes
//!           [expires_at:u64]                   present when flags has 0x01
//! flags  := 0x01 has an expiry | 0x02 names a content type (otherwise the default,
//!           application/octet-stream) | kind << 4, the value's type in bits 4-6
//!           (0 string, 1 hash, 2 list, 3 set, 4 sorted set, 5 stream); a string's bytes are the
//!           value, a collection's value is edit* that build it from empty
//! edit   := 0x01 n:u32 (field value)*            hash fields set        (items are key's layout)
//!         | 0x02 n:u32 field*                    hash fields removed
//!         | 0x03 front:u8 n:u32 item*            list items pushed one by one
//!         | 0x04 front:u8 count:u64              list items popped
//!         | 0x05 index:u64 item                  list item replaced
//!         | 0x06 index:u64 item                  list item inserted at index
//!         | 0x07 count:i64 item                  LREM of item
//!         | 0x08 start:u64 len:u64               list trimmed to len items from start
//!         | 0x09 n:u32 member*                   set members added
//!         | 0x0a n:u32 member*                   set members removed
//!         | 0x0b n:u32 (score:f64 member)*       sorted set members given scores
//!         | 0x0c n:u32 member*                   sorted set members removed
//!         | 0x0d n:u32 (id n:u32 item*)*         stream entries added (id := ms:u64 seq:u64)
//!         | 0x0e n:u32 id*                       stream entries deleted
//!         | 0x0f id                              stream entries at or below id trimmed
//!         | 0x10 last:id max_deleted:id added:u64  a stream's counters set
//! ```
//!
//! A collection's change is logged as its edit, not as the whole collection, so HSET on a
//! million-field hash writes one field. An edit carries the version it gave the key, and replay
//! skips an edit whose version the key already has (a fuzzy snapshot may hold it already).
//!
//! Integers are little-endian; times are milliseconds since the Unix epoch. `revision` is the
//! store's revision when the record was made, so versions continue after a restart even when the
//! newest versions belonged to keys since removed. Snapshots use the same records, holding only
//! puts.

use bytes::Bytes;

use std::sync::Arc;

use crate::collection::{Collection, Edit, Limits, Score, StreamId};
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
const EDIT: u8 = 7;
const RESTAMP: u8 = 8;
const EXTEND: u8 = 9;
const META: u8 = 10;
/// Elements per edit when a whole collection is written.
const BODY_CHUNK: usize = 1024;

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
    match entry.collection() {
        Some(c) => encode_body(buf, c.chunks(BODY_CHUNK)),
        None => {
            buf.extend_from_slice(&(entry.value.len() as u64).to_le_bytes());
            buf.extend_from_slice(entry.value);
        }
    }
    if let Some(at) = entry.expires_at {
        buf.extend_from_slice(&at.to_le_bytes());
    }
}

/// A collection's value: its length, then the edits that build it.
fn encode_body(buf: &mut Vec<u8>, edits: impl Iterator<Item = Edit>) {
    let at = buf.len();
    buf.extend_from_slice(&0u64.to_le_bytes());
    for edit in edits {
        encode_edit(buf, &edit);
    }
    let len = (buf.len() - at - 8) as u64;
    buf[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

/// The put of `key` holding an empty collection of `kind` with this metadata, for a snapshot
/// that sends the elements after it in [`encode_extend`] records.
pub(crate) fn encode_put_head(
    buf: &mut Vec<u8>,
    key: &[u8],
    entry: EntryRef<'_>,
    first: Option<&Edit>,
) {
    let mut flags = entry.kind.tag() << KIND_SHIFT;
    if entry.expires_at.is_some() {
        flags |= HAS_EXPIRY;
    }
    buf.extend_from_slice(&[PUT, flags]);
    encode_key(buf, key);
    buf.extend_from_slice(&entry.version.to_le_bytes());
    buf.extend_from_slice(&entry.modified_at.to_le_bytes());
    encode_body(buf, first.cloned().into_iter());
    if let Some(at) = entry.expires_at {
        buf.extend_from_slice(&at.to_le_bytes());
    }
}

pub(crate) fn encode_extend(buf: &mut Vec<u8>, key: &[u8], edit: &Edit) {
    buf.push(EXTEND);
    encode_key(buf, key);
    encode_edit(buf, edit);
}

fn encode_items(buf: &mut Vec<u8>, items: &[Bytes]) {
    buf.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        encode_key(buf, item);
    }
}

fn encode_edit(buf: &mut Vec<u8>, edit: &Edit) {
    match edit {
        Edit::HashSet(pairs) => {
            buf.push(1);
            buf.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
            for (f, v) in pairs {
                encode_key(buf, f);
                encode_key(buf, v);
            }
        }
        Edit::HashRemove(fields) => {
            buf.push(2);
            encode_items(buf, fields);
        }
        Edit::ListPush { front, items } => {
            buf.extend_from_slice(&[3, u8::from(*front)]);
            encode_items(buf, items);
        }
        Edit::ListPop { front, count } => {
            buf.extend_from_slice(&[4, u8::from(*front)]);
            buf.extend_from_slice(&count.to_le_bytes());
        }
        Edit::ListSet { index, item } => {
            buf.push(5);
            buf.extend_from_slice(&index.to_le_bytes());
            encode_key(buf, item);
        }
        Edit::ListInsert { index, item } => {
            buf.push(6);
            buf.extend_from_slice(&index.to_le_bytes());
            encode_key(buf, item);
        }
        Edit::ListRemove { count, item } => {
            buf.push(7);
            buf.extend_from_slice(&count.to_le_bytes());
            encode_key(buf, item);
        }
        Edit::ListTrim { start, len } => {
            buf.push(8);
            buf.extend_from_slice(&start.to_le_bytes());
            buf.extend_from_slice(&len.to_le_bytes());
        }
        Edit::SetAdd(members) => {
            buf.push(9);
            encode_items(buf, members);
        }
        Edit::SetRemove(members) => {
            buf.push(10);
            encode_items(buf, members);
        }
        Edit::ZAdd(pairs) => {
            buf.push(11);
            buf.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
            for (score, member) in pairs {
                buf.extend_from_slice(&score.0.to_le_bytes());
                encode_key(buf, member);
            }
        }
        Edit::ZRemove(members) => {
            buf.push(12);
            encode_items(buf, members);
        }
        Edit::StreamAdd(entries) => {
            buf.push(13);
            buf.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (id, pairs) in entries {
                encode_id(buf, *id);
                encode_items(buf, pairs);
            }
        }
        Edit::StreamDelete(ids) => {
            buf.push(14);
            buf.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for id in ids {
                encode_id(buf, *id);
            }
        }
        Edit::StreamTrim { through } => {
            buf.push(15);
            encode_id(buf, *through);
        }
        Edit::StreamMeta {
            last_id,
            max_deleted,
            entries_added,
        } => {
            buf.push(16);
            encode_id(buf, *last_id);
            encode_id(buf, *max_deleted);
            buf.extend_from_slice(&entries_added.to_le_bytes());
        }
    }
}

fn encode_id(buf: &mut Vec<u8>, id: StreamId) {
    buf.extend_from_slice(&id.ms.to_le_bytes());
    buf.extend_from_slice(&id.seq.to_le_bytes());
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
            Change::Edit {
                key,
                version,
                modified_at,
                edit,
            } => {
                buf.push(EDIT);
                encode_key(buf, key);
                buf.extend_from_slice(&version.to_le_bytes());
                buf.extend_from_slice(&modified_at.to_le_bytes());
                encode_edit(buf, edit);
            }
            Change::Restamp {
                key,
                version,
                modified_at,
                expires_at,
            } => {
                buf.extend_from_slice(&[RESTAMP, u8::from(expires_at.is_some())]);
                encode_key(buf, key);
                buf.extend_from_slice(&version.to_le_bytes());
                buf.extend_from_slice(&modified_at.to_le_bytes());
                if let Some(at) = expires_at {
                    buf.extend_from_slice(&at.to_le_bytes());
                }
            }
            Change::Extend(key, edit) => encode_extend(buf, key, edit),
            Change::Meta(name, value) => encode_meta(buf, name, value),
        }
    }
}

/// Appends the change that sets the server state `name` to `value`.
pub(crate) fn encode_meta(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.push(META);
    encode_key(buf, name);
    encode_key(buf, value);
}

/// Bytes the record of `effects` takes, give or take a content type: for sizing a buffer.
pub fn encoded_len(effects: &Effects) -> usize {
    8 + effects
        .changes
        .iter()
        .map(|c| match c {
            Change::Put(key, entry) => match &entry.value {
                Value::String(v) => 48 + key.len() + v.len(),
                Value::Collection(c) => 48 + key.len() + c.len() * 16,
            },
            Change::Remove(key, _) => 5 + key.len(),
            Change::Flush => 1,
            Change::Edit { key, edit, .. } | Change::Extend(key, edit) => {
                32 + key.len() + edit.weight()
            }
            Change::Restamp { key, .. } => 40 + key.len(),
            Change::Meta(name, value) => 9 + name.len() + value.len(),
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

    fn u8(&mut self) -> Result<u8, BadRecord> {
        Ok(self.take(1)?[0])
    }

    /// A count of elements of at least `min` bytes each, no more than the record can hold.
    fn count(&mut self, min: usize) -> Result<usize, BadRecord> {
        let n = self.u32()? as usize;
        if n > self.0.len() / min {
            return Err(BadRecord("a count runs past the end"));
        }
        Ok(n)
    }

    fn items(&mut self) -> Result<Vec<Bytes>, BadRecord> {
        let n = self.count(4)?;
        (0..n).map(|_| self.bytes32()).collect()
    }

    fn id(&mut self) -> Result<StreamId, BadRecord> {
        Ok(StreamId {
            ms: self.u64()?,
            seq: self.u64()?,
        })
    }

    fn edit(&mut self) -> Result<Edit, BadRecord> {
        Ok(match self.u8()? {
            1 => {
                let n = self.count(8)?;
                Edit::HashSet(
                    (0..n)
                        .map(|_| Ok((self.bytes32()?, self.bytes32()?)))
                        .collect::<Result<_, BadRecord>>()?,
                )
            }
            2 => Edit::HashRemove(self.items()?),
            3 => {
                let front = self.u8()? != 0;
                Edit::ListPush {
                    front,
                    items: self.items()?,
                }
            }
            4 => {
                let front = self.u8()? != 0;
                Edit::ListPop {
                    front,
                    count: self.u64()?,
                }
            }
            5 => Edit::ListSet {
                index: self.u64()?,
                item: self.bytes32()?,
            },
            6 => Edit::ListInsert {
                index: self.u64()?,
                item: self.bytes32()?,
            },
            7 => Edit::ListRemove {
                count: self.u64()? as i64,
                item: self.bytes32()?,
            },
            8 => Edit::ListTrim {
                start: self.u64()?,
                len: self.u64()?,
            },
            9 => Edit::SetAdd(self.items()?),
            10 => Edit::SetRemove(self.items()?),
            11 => {
                let n = self.count(12)?;
                Edit::ZAdd(
                    (0..n)
                        .map(|_| {
                            let score = f64::from_bits(self.u64()?);
                            if score.is_nan() {
                                return Err(BadRecord("a score that is not a number"));
                            }
                            Ok((Score(score), self.bytes32()?))
                        })
                        .collect::<Result<_, BadRecord>>()?,
                )
            }
            12 => Edit::ZRemove(self.items()?),
            13 => {
                let n = self.count(20)?;
                Edit::StreamAdd(
                    (0..n)
                        .map(|_| Ok((self.id()?, self.items()?)))
                        .collect::<Result<_, BadRecord>>()?,
                )
            }
            14 => {
                let n = self.count(16)?;
                Edit::StreamDelete((0..n).map(|_| self.id()).collect::<Result<_, _>>()?)
            }
            15 => Edit::StreamTrim {
                through: self.id()?,
            },
            16 => Edit::StreamMeta {
                last_id: self.id()?,
                max_deleted: self.id()?,
                entries_added: self.u64()?,
            },
            _ => return Err(BadRecord("unknown edit kind")),
        })
    }
}

/// A collection of `kind` built from the edits in `body`.
fn collection(kind: Kind, body: &[u8], limits: &Limits) -> Result<Collection, BadRecord> {
    let mut cur = Cursor(body);
    let mut c = Collection::empty(kind);
    while !cur.0.is_empty() {
        let edit = cur.edit()?;
        if edit.kind() != kind {
            return Err(BadRecord("a collection's element of another type"));
        }
        c.apply(&edit, limits);
    }
    Ok(c)
}

/// Decodes `record` into its revision and changes.
pub fn decode(record: &[u8]) -> Result<Effects, BadRecord> {
    decode_with(record, &Limits::default())
}

/// [`decode`], building collections under `limits`.
pub fn decode_with(record: &[u8], limits: &Limits) -> Result<Effects, BadRecord> {
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
                let Some(kind) = Kind::from_tag((flags & KIND_MASK) >> KIND_SHIFT) else {
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
                let raw = cur.take(len)?;
                let value = match kind {
                    Kind::String => Value::String(Bytes::copy_from_slice(raw)),
                    _ => Value::Collection(Arc::new(collection(kind, raw, limits)?)),
                };
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
            EDIT => Change::Edit {
                key: cur.bytes32()?,
                version: cur.u64()?,
                modified_at: cur.u64()?,
                edit: cur.edit()?,
            },
            RESTAMP => {
                let flags = cur.u8()?;
                if flags & !1 != 0 {
                    return Err(BadRecord("unknown restamp flags"));
                }
                Change::Restamp {
                    key: cur.bytes32()?,
                    version: cur.u64()?,
                    modified_at: cur.u64()?,
                    expires_at: if flags & 1 != 0 {
                        Some(cur.u64()?)
                    } else {
                        None
                    },
                }
            }
            EXTEND => Change::Extend(cur.bytes32()?, cur.edit()?),
            META => Change::Meta(cur.bytes32()?, cur.bytes32()?),
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

    /// Streams' edits, and a whole stream with its counters (even one with no entries left),
    /// come back from their records as they went in.
    #[test]
    fn streams_round_trip() {
        let id = |ms, seq| StreamId { ms, seq };
        let limits = Limits::default();
        let edits = [
            Edit::StreamAdd(vec![
                (id(1, 0), vec!["f".into(), "v".into()]),
                (id(1, 1), vec!["g".into(), Bytes::new()]),
            ]),
            Edit::StreamDelete(vec![id(1, 0), id(9, 9)]),
            Edit::StreamTrim { through: id(1, 0) },
            Edit::StreamMeta {
                last_id: id(u64::MAX, 3),
                max_deleted: id(1, 0),
                entries_added: 17,
            },
        ];
        let mut whole = Collection::empty(Kind::Stream);
        for edit in &edits {
            let mut buf = 1u64.to_le_bytes().to_vec();
            encode_extend(&mut buf, b"s", edit);
            let changes = decode(&buf).expect("decodes").changes;
            assert_eq!(
                changes,
                [Change::Extend(Bytes::from_static(b"s"), edit.clone())]
            );
            whole.apply(edit, &limits);
        }
        assert!(!whole.is_empty(), "an emptied stream keeps its key");
        for stream in [Collection::empty(Kind::Stream), whole] {
            let entry = Entry {
                value: Value::Collection(Arc::new(stream.clone())),
                content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
                version: 3,
                modified_at: 5,
                expires_at: None,
            };
            let mut buf = 1u64.to_le_bytes().to_vec();
            encode_put(&mut buf, b"s", entry.view());
            let Change::Put(_, back) = &decode(&buf).expect("decodes").changes[0] else {
                panic!("a put")
            };
            let Value::Collection(back) = &back.value else {
                panic!("a collection")
            };
            assert!(back.same(&stream), "{back:?} / {stream:?}");
        }
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
