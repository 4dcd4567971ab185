//! What the store keeps for each key.

use std::sync::Arc;

use bytes::Bytes;

use crate::collection::Collection;

/// Milliseconds since the Unix epoch. The store never reads a clock; callers pass `now` in.
pub type Millis = u64;

/// The content type a value gets when its writer names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The type of what a key holds, as `TYPE` names it and as the packed layout and the log tag it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    String,
    Hash,
    List,
    Set,
    ZSet,
    Stream,
}

impl Kind {
    /// The name `TYPE` answers.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }

    /// The kind `TYPE` calls `name`, ignoring case.
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        [
            Kind::String,
            Kind::Hash,
            Kind::List,
            Kind::Set,
            Kind::ZSet,
            Kind::Stream,
        ]
        .into_iter()
        .find(|k| k.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The tag the packed layout and the log record carry (three bits).
    pub(crate) fn tag(self) -> u8 {
        match self {
            Kind::String => 0,
            Kind::Hash => 1,
            Kind::List => 2,
            Kind::Set => 3,
            Kind::ZSet => 4,
            Kind::Stream => 5,
        }
    }

    /// The kind a tag names; `None` for a tag this kvs does not know.
    pub(crate) fn from_tag(tag: u8) -> Option<Kind> {
        match tag {
            0 => Some(Kind::String),
            1 => Some(Kind::Hash),
            2 => Some(Kind::List),
            3 => Some(Kind::Set),
            4 => Some(Kind::ZSet),
            5 => Some(Kind::Stream),
            _ => None,
        }
    }
}

/// What a key holds: a typed value. Cloning is cheap: bytes are shared, not copied, and a
/// collection is shared until one of its holders changes it.
#[derive(Clone, Debug)]
pub enum Value {
    /// Bytes exactly as written, with no meaning kvs imposes.
    String(Bytes),
    /// A hash, list, set or sorted set.
    Collection(Arc<Collection>),
}

/// Two values are equal when they hold the same type and the same contents (in order for lists
/// and sorted sets; hashes and sets have none).
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Collection(a), Value::Collection(b)) => Arc::ptr_eq(a, b) || a.same(b),
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Value {
    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::String(_) => Kind::String,
            Value::Collection(c) => c.kind(),
        }
    }

    /// The value's size: a string's length in bytes, a collection's number of elements.
    pub fn len(&self) -> usize {
        match self {
            Value::String(b) => b.len(),
            Value::Collection(c) => c.len(),
        }
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The string's bytes, or `None` for another type.
    pub fn as_string(&self) -> Option<&Bytes> {
        match self {
            Value::String(b) => Some(b),
            Value::Collection(_) => None,
        }
    }
}

/// A value equals bytes when it is a string holding exactly them.
impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_string().is_some_and(|b| b[..] == *other)
    }
}

impl PartialEq<Bytes> for Value {
    fn eq(&self, other: &Bytes) -> bool {
        *self == other[..]
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        *self == *other.as_bytes()
    }
}

impl PartialEq<&[u8]> for Value {
    fn eq(&self, other: &&[u8]) -> bool {
        *self == **other
    }
}

impl From<Bytes> for Value {
    fn from(bytes: Bytes) -> Self {
        Value::String(bytes)
    }
}

/// A stored value and its metadata. Cloning is cheap: the bytes are shared, not copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value exactly as written, with its type.
    pub value: Value,
    /// The content type given at write time, as raw header bytes.
    pub content_type: Bytes,
    /// The store-wide revision assigned by the write that produced this entry.
    pub version: u64,
    /// When that write happened.
    pub modified_at: Millis,
    /// When the key stops existing, if ever.
    pub expires_at: Option<Millis>,
}

impl Entry {
    /// Whether the entry is still visible at `now`. An entry is gone from the instant it expires.
    pub fn is_live(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// The listing view of this entry under `key`.
    pub fn info(&self, key: Bytes) -> KeyInfo {
        KeyInfo {
            key,
            kind: self.value.kind(),
            size: self.value.len() as u64,
            content_type: self.content_type.clone(),
            version: self.version,
            modified_at: self.modified_at,
            expires_at: self.expires_at,
        }
    }
}

/// A key and its metadata without the value: one row of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key: Bytes,
    /// What the key holds.
    pub kind: Kind,
    /// A string's length in bytes, a collection's number of elements.
    pub size: u64,
    pub content_type: Bytes,
    pub version: u64,
    pub modified_at: Millis,
    pub expires_at: Option<Millis>,
}
