//! The compact form in which a shard holds a key and its entry: one heap allocation reached
//! through one thin pointer, so a hash table slot costs 8 bytes and a key with a small value costs
//! a single allocation of little more than its bytes.
//!
//! ```text
//! usage:u64 flags:u8 key_len:varint [value_len:varint] [ct_len:varint]
//! version:u48|u64 modified_at:u48|u64 [expires_at:u64] [content_type] key value
//! ```
//!
//! The usage word (see [`crate::usage`]) comes first and is the one part that changes after
//! construction: reads update it with relaxed atomic stores under the shard's read lock, so it is
//! only ever touched as an `AtomicU64` and no byte slice ever covers it. Fields in brackets are
//! present according to `flags`. A value of up to [`INLINE_MAX`] bytes is
//! copied in after the key; a larger one stays a shared [`Bytes`] handle, stored 8-aligned after
//! the key, so reading it never copies it. Versions and times below 2^48 take 6 bytes (a
//! millisecond clock reaches that in the year 10889). Integers are little-endian.
//!
//! This is the one place in the store that uses `unsafe`: a thin pointer to a variable-length
//! allocation has no safe spelling in stable Rust, and it is what brings a key with a 64-byte value
//! from about 500 to about 115 bytes of resident memory (see docs/benchmarks.md). Every raw read
//! goes through [`Packed::shape`], which decodes the layout this module itself wrote.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::fmt;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;

use crate::collection::Collection;
use crate::entry::{DEFAULT_CONTENT_TYPE, Entry, KeyInfo, Kind, Millis, Value};
use crate::error::CommandError;
use crate::usage::{fresh, size_class};

/// Values up to this many bytes are copied into the entry; longer ones are shared, not copied.
pub const INLINE_MAX: usize = 512;
/// A shared value up to this many bytes gets a buffer of its own when it is stored. A value
/// that arrived in a request is usually a slice of the connection's read buffer, and keeping the
/// slice would keep the whole buffer alive (with every other request it held) for as long as the
/// key lives: memory the key's own footprint does not show, that evicting it would not free.
/// Copying a value this small costs less than receiving it did.
pub const COPY_SHARED_MAX: usize = 64 << 10;

const EXPIRY: u8 = 1;
const CONTENT_TYPE: u8 = 2;
const SHARED: u8 = 4;
const WIDE_VERSION: u8 = 8;
const WIDE_MODIFIED: u8 = 16;
/// The value's type tag ([`Kind::tag`]) sits in the top three bits of the flags. Any type but a
/// string is held as a collection handle (an `Arc<Collection>`) where a string's bytes would be.
const KIND_SHIFT: u8 = 5;
/// Integers below this take 6 bytes.
const NARROW_LIMIT: u64 = 1 << 48;
const ALIGN: usize = align_of::<Bytes>();
/// Bytes before the header: the usage word.
const USAGE: usize = size_of::<AtomicU64>();
const _: () = assert!(ALIGN >= std::mem::align_of::<AtomicU64>() && USAGE.is_multiple_of(ALIGN));

/// A key and its entry in one allocation. Immutable once built: a write builds a new one.
pub struct Packed(NonNull<u8>);

// SAFETY: a `Packed` owns its allocation exclusively and never changes it after construction; the
// only interior state it may hold is a `Bytes` handle, which is itself `Send + Sync`.
unsafe impl Send for Packed {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for Packed {}

/// Where each part of a packed entry lies, decoded from its header. Offsets count from the start
/// of the allocation; the header starts at [`USAGE`].
#[derive(Clone, Copy, Debug)]
struct Shape {
    flags: u8,
    /// Offset of the version.
    fixed: usize,
    content_type: (usize, usize),
    key: (usize, usize),
    /// Inline: (offset, len). Shared: (offset of the `Bytes` handle, 0). A collection: (offset of
    /// its handle, 0).
    value: (usize, usize),
    total: usize,
}

impl Shape {
    fn int_width(flags: u8, wide: u8) -> usize {
        if flags & wide != 0 { 8 } else { 6 }
    }

    /// The shape of an entry with this header; `header` holds at least the varints.
    fn compute(flags: u8, key_len: usize, value_len: usize, ct_len: usize, fixed: usize) -> Shape {
        let mut at = fixed
            + Self::int_width(flags, WIDE_VERSION)
            + Self::int_width(flags, WIDE_MODIFIED)
            + if flags & EXPIRY != 0 { 8 } else { 0 };
        let content_type = (at, ct_len);
        at += ct_len;
        let key = (at, key_len);
        at += key_len;
        let (value, total) = if flags >> KIND_SHIFT != 0 {
            let start = at.next_multiple_of(ALIGN);
            ((start, 0), start + size_of::<Arc<Collection>>())
        } else if flags & SHARED != 0 {
            let start = at.next_multiple_of(ALIGN);
            ((start, 0), start + size_of::<Bytes>())
        } else {
            ((at, value_len), at + value_len)
        };
        Shape {
            flags,
            fixed,
            content_type,
            key,
            value,
            total,
        }
    }
}

fn put_varint(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn put_int(buf: &mut Vec<u8>, n: u64, wide: bool) {
    let bytes = n.to_le_bytes();
    buf.extend_from_slice(if wide { &bytes[..] } else { &bytes[..6] });
}

fn read_int(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

impl Packed {
    /// Packs `key` and `entry`. A small value is copied in; a large one is shared.
    pub fn new(key: &[u8], entry: &Entry) -> Packed {
        let named = entry.content_type != DEFAULT_CONTENT_TYPE.as_bytes();
        let (value, collection) = match &entry.value {
            Value::String(value) => (value, None),
            Value::Collection(c) => (&Bytes::new(), Some(c)),
        };
        let shared = value.len() > INLINE_MAX;
        let mut flags = entry.value.kind().tag() << KIND_SHIFT;
        flags |= if entry.expires_at.is_some() {
            EXPIRY
        } else {
            0
        };
        flags |= if named { CONTENT_TYPE } else { 0 };
        flags |= if shared { SHARED } else { 0 };
        flags |= if entry.version >= NARROW_LIMIT {
            WIDE_VERSION
        } else {
            0
        };
        flags |= if entry.modified_at >= NARROW_LIMIT {
            WIDE_MODIFIED
        } else {
            0
        };
        let ct: &[u8] = if named { &entry.content_type } else { &[] };
        let value_len = if shared { 0 } else { value.len() };
        let handle = shared || collection.is_some();

        // Everything up to the value (or up to the handle's alignment padding) is built in a small
        // buffer first, then copied into the allocation in one go.
        let mut head = Vec::with_capacity(32 + key.len() + ct.len());
        head.push(flags);
        put_varint(&mut head, key.len());
        if !handle {
            put_varint(&mut head, value_len);
        }
        if named {
            put_varint(&mut head, ct.len());
        }
        let shape = Shape::compute(flags, key.len(), value_len, ct.len(), USAGE + head.len());
        put_int(&mut head, entry.version, flags & WIDE_VERSION != 0);
        put_int(&mut head, entry.modified_at, flags & WIDE_MODIFIED != 0);
        if let Some(at) = entry.expires_at {
            head.extend_from_slice(&at.to_le_bytes());
        }
        head.extend_from_slice(ct);
        head.extend_from_slice(key);
        debug_assert_eq!(USAGE + head.len(), shape.key.0 + shape.key.1);

        let layout = Self::layout(shape.total);
        // SAFETY: `layout` has a non-zero size (the usage word alone makes it at least 8).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: the allocation is `shape.total` bytes long and the usage word, `head` and the
        // value (or the padding and the handle) fill exactly that many, as `Shape::compute` laid
        // them out. The word and the handle sit at multiples of their alignment in an allocation
        // aligned to it. Nothing else can see the allocation yet.
        unsafe {
            std::ptr::write(raw.cast::<u64>(), fresh(entry.modified_at));
            std::ptr::copy_nonoverlapping(head.as_ptr(), raw.add(USAGE), head.len());
            let at = USAGE + head.len();
            if let Some(c) = collection {
                std::ptr::write_bytes(raw.add(at), 0, shape.value.0 - at);
                std::ptr::write(raw.add(shape.value.0).cast::<Arc<Collection>>(), c.clone());
            } else if shared {
                std::ptr::write_bytes(raw.add(at), 0, shape.value.0 - at);
                let own = if value.len() <= COPY_SHARED_MAX {
                    Bytes::copy_from_slice(value)
                } else {
                    value.clone()
                };
                std::ptr::write(raw.add(shape.value.0).cast::<Bytes>(), own);
            } else {
                std::ptr::copy_nonoverlapping(value.as_ptr(), raw.add(at), value_len);
            }
        }
        Packed(ptr)
    }

    fn layout(total: usize) -> Layout {
        match Layout::from_size_align(total, ALIGN) {
            Ok(layout) => layout,
            // Only a length near usize::MAX fails here, and no value that long can exist.
            Err(_) => panic!("an entry of {total} bytes cannot be laid out"),
        }
    }

    fn shape(&self) -> Shape {
        let p = self.0.as_ptr();
        // SAFETY: every byte read here lies in the header that `new` wrote after the usage word:
        // the flags byte and up to three complete varints, each ending in a byte below 0x80, all
        // within the allocation's first `shape.fixed` bytes. None of them is the usage word.
        unsafe {
            let flags = *p.add(USAGE);
            let mut at = USAGE + 1;
            let mut varint = || {
                let mut n = 0usize;
                let mut shift = 0;
                loop {
                    let byte = *p.add(at);
                    at += 1;
                    n |= usize::from(byte & 0x7f) << shift;
                    if byte < 0x80 {
                        return n;
                    }
                    shift += 7;
                }
            };
            let key_len = varint();
            let handle = flags & SHARED != 0 || flags >> KIND_SHIFT != 0;
            let value_len = if handle { 0 } else { varint() };
            let ct_len = if flags & CONTENT_TYPE != 0 {
                varint()
            } else {
                0
            };
            Shape::compute(flags, key_len, value_len, ct_len, at)
        }
    }

    /// The bytes after the usage word up to the end of the key (all initialised plain bytes);
    /// index it with an offset from the start of the allocation minus [`USAGE`].
    fn head(&self, shape: &Shape) -> &[u8] {
        // SAFETY: `new` initialised every byte before the end of the key, and the allocation
        // lives as long as `self`; nothing writes to these bytes after construction (only the
        // usage word before them changes, and it is not part of the slice).
        unsafe {
            std::slice::from_raw_parts(
                self.0.as_ptr().add(USAGE),
                shape.key.0 + shape.key.1 - USAGE,
            )
        }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        let shape = self.shape();
        &self.head(&shape)[shape.key.0 - USAGE..]
    }

    /// The usage word (see [`crate::usage`]).
    pub(crate) fn usage(&self) -> &AtomicU64 {
        // SAFETY: `new` wrote a `u64` at the start of the allocation, which is aligned for an
        // `AtomicU64` (same size and alignment as `u64`); after construction it is only ever
        // accessed through this reference, atomically, and it lives as long as `self`.
        unsafe { &*self.0.as_ptr().cast::<AtomicU64>() }
    }

    /// Bytes of memory the entry takes from the allocator: its allocation rounded up to the size
    /// class, and a shared value's own allocation.
    pub fn footprint(&self) -> usize {
        let shape = self.shape();
        let mut bytes = size_class(shape.total);
        let view = self.view();
        if let Some(shared) = view.shared {
            // The value's buffer and the handle's shared record.
            bytes += size_class(shared.len()) + 32;
        }
        if let Some(c) = view.collection {
            // The collection and its reference counts.
            bytes += c.footprint() + 16;
        }
        bytes
    }

    /// Gives the entry a new version and modification time in place, when they fit the widths
    /// its header was built with (a collection's write keeps its handle and everything else);
    /// `false` when they do not, and the entry must be built again.
    pub(crate) fn restamp(&mut self, version: u64, modified_at: Millis) -> bool {
        let shape = self.shape();
        let vw = Shape::int_width(shape.flags, WIDE_VERSION);
        let mw = Shape::int_width(shape.flags, WIDE_MODIFIED);
        if (vw == 6 && version >= NARROW_LIMIT) || (mw == 6 && modified_at >= NARROW_LIMIT) {
            return false;
        }
        // SAFETY: `new` wrote the version (`vw` bytes) and then the modification time (`mw`
        // bytes) at offset `shape.fixed`, inside the allocation and after the usage word; `&mut
        // self` means no reader holds a view of them while they change.
        unsafe {
            let p = self.0.as_ptr().add(shape.fixed);
            std::ptr::copy_nonoverlapping(version.to_le_bytes().as_ptr(), p, vw);
            std::ptr::copy_nonoverlapping(modified_at.to_le_bytes().as_ptr(), p.add(vw), mw);
        }
        true
    }

    /// The collection, for changing it in place: only a holder of the shard's write lock has the
    /// `&mut` that reaches it. `None` for a string.
    pub(crate) fn collection_mut(&mut self) -> Option<&mut Arc<Collection>> {
        let shape = self.shape();
        if shape.flags >> KIND_SHIFT == 0 {
            return None;
        }
        // SAFETY: `new` wrote an `Arc<Collection>` at this offset, aligned for it, for every
        // entry whose kind is not a string; `&mut self` makes this the only reference to it.
        Some(unsafe { &mut *self.0.as_ptr().add(shape.value.0).cast::<Arc<Collection>>() })
    }

    /// The entry, borrowed.
    pub fn view(&self) -> EntryRef<'_> {
        let shape = self.shape();
        let head = self.head(&shape);
        let flags = shape.flags;
        let mut at = shape.fixed;
        let mut int = |width: usize| {
            let n = read_int(&head[at - USAGE..at - USAGE + width]);
            at += width;
            n
        };
        let version = int(Shape::int_width(flags, WIDE_VERSION));
        let modified_at = int(Shape::int_width(flags, WIDE_MODIFIED));
        let expires_at = (flags & EXPIRY != 0).then(|| int(8));
        let (ct_at, ct_len) = shape.content_type;
        let mut collection = None;
        let (value, shared) = if flags >> KIND_SHIFT != 0 {
            // SAFETY: `new` wrote an `Arc<Collection>` at this offset for a non-string kind, and
            // only `drop` and `collection_mut` (through `&mut self`) reach it otherwise.
            let handle = unsafe { &*self.0.as_ptr().add(shape.value.0).cast::<Arc<Collection>>() };
            collection = Some(handle);
            (&[][..], None)
        } else if flags & SHARED != 0 {
            // SAFETY: `new` wrote a `Bytes` at this offset, aligned for it, and only `drop`
            // takes it out; sharing a reference to it is what `Bytes` is for.
            let handle = unsafe { &*self.0.as_ptr().add(shape.value.0).cast::<Bytes>() };
            (&handle[..], Some(handle))
        } else {
            // SAFETY: `new` copied exactly `shape.value.1` bytes of value to this offset.
            let value = unsafe {
                std::slice::from_raw_parts(self.0.as_ptr().add(shape.value.0), shape.value.1)
            };
            (value, None)
        };
        EntryRef {
            // Only `new` writes the tag, from a `Kind`, so every tag here is known.
            kind: Kind::from_tag(flags >> KIND_SHIFT).unwrap_or(Kind::String),
            value,
            shared,
            collection,
            content_type: if flags & CONTENT_TYPE != 0 {
                &head[ct_at - USAGE..ct_at - USAGE + ct_len]
            } else {
                DEFAULT_CONTENT_TYPE.as_bytes()
            },
            version,
            modified_at,
            expires_at,
        }
    }

    /// Whether the entry is still visible at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.view().is_live(now)
    }

    /// The value as owned bytes (see [`EntryRef::value_bytes`]).
    pub fn value_bytes(&self) -> Bytes {
        self.view().value_bytes()
    }

    /// An owned copy of the entry.
    pub fn to_entry(&self) -> Entry {
        self.view().to_entry()
    }

    /// Bytes the allocation asks for (before the allocator rounds it up).
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.shape().total
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        let shape = self.shape();
        // SAFETY: the handle, when present, was written by `new` and is dropped only here; the
        // allocation was made by `new` with this same layout and is freed exactly once.
        unsafe {
            if shape.flags >> KIND_SHIFT != 0 {
                std::ptr::drop_in_place(
                    self.0.as_ptr().add(shape.value.0).cast::<Arc<Collection>>(),
                );
            } else if shape.flags & SHARED != 0 {
                std::ptr::drop_in_place(self.0.as_ptr().add(shape.value.0).cast::<Bytes>());
            }
            alloc::dealloc(self.0.as_ptr(), Self::layout(shape.total));
        }
    }
}

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("key", &self.key())
            .field("entry", &self.view())
            .finish()
    }
}

impl Entry {
    /// This entry seen as if it were stored.
    pub fn view(&self) -> EntryRef<'_> {
        let (value, shared, collection) = match &self.value {
            Value::String(bytes) => (&bytes[..], Some(bytes), None),
            Value::Collection(c) => (&[][..], None, Some(c)),
        };
        EntryRef {
            kind: self.value.kind(),
            value,
            shared,
            collection,
            content_type: &self.content_type,
            version: self.version,
            modified_at: self.modified_at,
            expires_at: self.expires_at,
        }
    }
}

/// A stored entry, borrowed from its shard: read it under the shard's lock, or copy what you need
/// out with [`EntryRef::to_entry`] or [`EntryRef::value_bytes`].
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    /// What the key holds.
    pub kind: Kind,
    /// A string's bytes. Commands read them through [`EntryRef::string`], the one place that
    /// checks the type.
    pub value: &'a [u8],
    /// The value's shared handle when it is stored out of line.
    shared: Option<&'a Bytes>,
    /// The collection, for any type but a string.
    collection: Option<&'a Arc<Collection>>,
    pub content_type: &'a [u8],
    pub version: u64,
    pub modified_at: Millis,
    pub expires_at: Option<Millis>,
}

impl<'a> EntryRef<'a> {
    /// The string's bytes, or Redis's WRONGTYPE error when the key holds another type: the one
    /// place string commands learn that a key holds something else.
    pub fn string(self) -> Result<&'a [u8], CommandError> {
        match self.kind {
            Kind::String => Ok(self.value),
            _ => Err(CommandError::WrongType),
        }
    }

    /// The collection, for any type but a string.
    pub fn collection(self) -> Option<&'a Arc<Collection>> {
        self.collection
    }

    /// The hash, or WRONGTYPE.
    pub fn hash(self) -> Result<&'a crate::collection::Hash, CommandError> {
        match self.collection.map(|c| &**c) {
            Some(Collection::Hash(h)) => Ok(h),
            _ => Err(CommandError::WrongType),
        }
    }

    /// The list, or WRONGTYPE.
    pub fn list(self) -> Result<&'a crate::collection::List, CommandError> {
        match self.collection.map(|c| &**c) {
            Some(Collection::List(l)) => Ok(l),
            _ => Err(CommandError::WrongType),
        }
    }

    /// The set, or WRONGTYPE.
    pub fn set(self) -> Result<&'a crate::collection::Set, CommandError> {
        match self.collection.map(|c| &**c) {
            Some(Collection::Set(s)) => Ok(s),
            _ => Err(CommandError::WrongType),
        }
    }

    /// The sorted set, or WRONGTYPE.
    pub fn zset(self) -> Result<&'a crate::collection::ZSet, CommandError> {
        match self.collection.map(|c| &**c) {
            Some(Collection::ZSet(z)) => Ok(z),
            _ => Err(CommandError::WrongType),
        }
    }

    /// The stream, or WRONGTYPE.
    pub fn stream(self) -> Result<&'a crate::collection::Stream, CommandError> {
        match self.collection.map(|c| &**c) {
            Some(Collection::Stream(s)) => Ok(s),
            _ => Err(CommandError::WrongType),
        }
    }
}

impl EntryRef<'_> {
    /// Whether the entry is still visible at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// The value as owned bytes: shared when stored out of line, copied when small.
    pub fn value_bytes(&self) -> Bytes {
        match self.shared {
            Some(handle) => handle.clone(),
            None => Bytes::copy_from_slice(self.value),
        }
    }

    /// The content type as owned bytes (the default one is never copied).
    pub fn content_type_bytes(&self) -> Bytes {
        if self.content_type == DEFAULT_CONTENT_TYPE.as_bytes() {
            Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes())
        } else {
            Bytes::copy_from_slice(self.content_type)
        }
    }

    /// An owned copy of the entry.
    pub fn to_entry(&self) -> Entry {
        Entry {
            value: match self.collection {
                Some(c) => Value::Collection(c.clone()),
                None => Value::String(self.value_bytes()),
            },
            content_type: self.content_type_bytes(),
            version: self.version,
            modified_at: self.modified_at,
            expires_at: self.expires_at,
        }
    }

    /// The listing view of this entry under `key`.
    pub fn info(&self, key: Bytes) -> KeyInfo {
        KeyInfo {
            key,
            kind: self.kind,
            size: self.collection.map_or(self.value.len(), |c| c.len()) as u64,
            content_type: self.content_type_bytes(),
            version: self.version,
            modified_at: self.modified_at,
            expires_at: self.expires_at,
        }
    }
}

impl EntryRef<'_> {
    /// The entry a read-modify-write command (APPEND, INCR, SETRANGE, ...) leaves behind: the new
    /// `value`, keeping the content type and expiry of the live entry it replaces (a missing key
    /// gets the default content type and no expiry).
    pub(crate) fn successor(
        current: Option<EntryRef<'_>>,
        value: Bytes,
        version: u64,
        now: Millis,
    ) -> Entry {
        Entry {
            value: Value::String(value),
            content_type: current.map_or_else(
                || Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
                |e| e.content_type_bytes(),
            ),
            version,
            modified_at: now,
            expires_at: current.and_then(|e| e.expires_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: Bytes, ct: &str, version: u64, modified_at: u64, exp: Option<u64>) -> Entry {
        Entry {
            value: Value::String(value),
            content_type: Bytes::copy_from_slice(ct.as_bytes()),
            version,
            modified_at,
            expires_at: exp,
        }
    }

    fn round_trip(key: &[u8], e: &Entry) {
        let p = Packed::new(key, e);
        assert_eq!(p.key(), key);
        assert_eq!(&p.view().to_entry(), e);
        assert!(p.allocated() >= key.len());
        assert!(p.footprint() >= p.allocated());
        // The usage word changes without disturbing the rest of the entry.
        p.usage()
            .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(p.key(), key);
        assert_eq!(&p.view().to_entry(), e);
        assert_eq!(
            p.usage().load(std::sync::atomic::Ordering::Relaxed),
            u64::MAX
        );
    }

    #[test]
    fn every_combination_of_fields_reads_back_as_written() {
        let big = Bytes::from(vec![7u8; INLINE_MAX + 1]);
        let values = [
            Bytes::new(),
            Bytes::from_static(b"v"),
            Bytes::from(vec![1u8; 200]),
            Bytes::from(vec![2u8; INLINE_MAX]),
            big,
        ];
        let keys: [&[u8]; 4] = [b"", b"k", &[0xff; 130], &[b'x'; 20_000]];
        for key in keys {
            for value in &values {
                for ct in [DEFAULT_CONTENT_TYPE, "text/plain", ""] {
                    for version in [0, 1, NARROW_LIMIT - 1, NARROW_LIMIT, u64::MAX] {
                        for modified in [0, 1_700_000_000_000, u64::MAX] {
                            for exp in [None, Some(0), Some(u64::MAX)] {
                                round_trip(key, &entry(value.clone(), ct, version, modified, exp));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_small_entry_is_one_small_allocation() {
        let e = entry(
            Bytes::from(vec![b'v'; 64]),
            DEFAULT_CONTENT_TYPE,
            123_456,
            1_790_000_000_000,
            None,
        );
        let p = Packed::new(b"key:000000123456", &e);
        // The usage word, flags, two one-byte lengths, two 6-byte integers, the key and the value.
        assert_eq!(p.allocated(), 8 + 1 + 2 + 12 + 16 + 64);
        assert_eq!(p.footprint(), 112, "jemalloc's size class");
    }

    #[test]
    fn a_value_from_a_larger_buffer_gets_its_own() {
        let buffer = Bytes::from(vec![3u8; 100_000]);
        let value = buffer.slice(10..4_010);
        let p = Packed::new(b"k", &entry(value.clone(), "", 1, 1, None));
        let stored = p.view().value_bytes();
        assert_eq!(stored, value);
        assert_ne!(stored.as_ptr(), value.as_ptr(), "copied out of the buffer");
    }

    #[test]
    fn a_large_value_is_shared_not_copied() {
        let value = Bytes::from(vec![9u8; COPY_SHARED_MAX + 1]);
        let p = Packed::new(b"k", &entry(value.clone(), "a/b", 1, 1, None));
        let view = p.view();
        assert_eq!(view.value_bytes().as_ptr(), value.as_ptr());
        drop(p);
        // The caller's handle outlives the entry's.
        assert_eq!(value.len(), COPY_SHARED_MAX + 1);
    }

    #[test]
    fn a_restamp_rewrites_version_and_time_in_place_when_they_fit() {
        let c = Arc::new(Collection::empty(Kind::List));
        let e = Entry {
            value: Value::Collection(c.clone()),
            content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
            version: 5,
            modified_at: 100,
            expires_at: Some(9_000),
        };
        let mut p = Packed::new(b"list", &e);
        assert!(p.restamp(6, 200));
        let got = p.to_entry();
        assert_eq!(
            (got.version, got.modified_at, got.expires_at),
            (6, 200, Some(9_000))
        );
        assert!(matches!(&got.value, Value::Collection(h) if Arc::ptr_eq(h, &c)));
        assert_eq!(p.key(), b"list");
        // Past the narrow width the entry must be built again.
        assert!(!p.restamp(NARROW_LIMIT, 200));
        assert!(!p.restamp(7, NARROW_LIMIT));
        assert_eq!(p.to_entry().version, 6);
        let wide = Packed::new(
            b"w",
            &Entry {
                version: NARROW_LIMIT + 1,
                ..e
            },
        );
        let mut wide = wide;
        assert!(wide.restamp(u64::MAX, 1));
        assert_eq!(wide.to_entry().version, u64::MAX);
    }

    #[test]
    fn entries_move_between_threads() {
        let p = Packed::new(
            b"k",
            &entry(Bytes::from(vec![1u8; 4096]), "", 1, 2, Some(3)),
        );
        let handle = std::thread::spawn(move || p.view().value.len());
        assert_eq!(handle.join().expect("thread"), 4096);
    }
}
