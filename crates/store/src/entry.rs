//! What the store keeps for each key.

use bytes::Bytes;

/// Milliseconds since the Unix epoch. The store never reads a clock; callers pass `now` in.
pub type Millis = u64;

/// The content type a value gets when its writer names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A stored value and its metadata. Cloning is cheap: the bytes are shared, not copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value exactly as written.
    pub value: Bytes,
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
    pub size: u64,
    pub content_type: Bytes,
    pub version: u64,
    pub modified_at: Millis,
    pub expires_at: Option<Millis>,
}
