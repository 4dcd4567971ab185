//! The header at the start of every log segment and snapshot file, and the files' names.
//!
//! ```text
//!  offset 0            8             12          16              24          28
//!         +------------+-------------+-----------+---------------+-----------+
//!         | magic      | version u32 | flags u32 | first LSN u64 | crc32c    |
//!         +------------+-------------+-----------+---------------+-----------+
//! ```
//!
//! Little-endian. `magic` is `KVS-LOG\0` for a log segment and `KVS-SNAP` for a snapshot. kvs
//! writes [`FORMAT_VERSION`] and reads every version from [`OLDEST_FORMAT_VERSION`] on; a file
//! with a higher one was written by a newer kvs and is refused rather than misread. Version 2
//! added seals and synced markers to segments; its snapshots are laid out as in version 1. `flags` is zero. For a segment, `first LSN` is the log sequence
//! number of its first record (each following record's is one more); for a snapshot it is the
//! first LSN the snapshot does *not* contain, where replay of the log resumes. The CRC32C covers
//! the 24 bytes before it.

/// The format version this kvs writes.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this kvs still reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Bytes of a file header.
pub const HEADER_LEN: usize = 28;

pub(crate) const LOG_MAGIC: &[u8; 8] = b"KVS-LOG\0";
pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"KVS-SNAP";

/// Which kind of file a header starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Segment,
    Snapshot,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::Segment => LOG_MAGIC,
            Kind::Snapshot => SNAPSHOT_MAGIC,
        }
    }
}

/// A header's bytes.
pub(crate) fn encode(kind: Kind, lsn: u64) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(kind.magic());
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&lsn.to_le_bytes());
    let crc = crc32c::crc32c(&out[..24]);
    out[24..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Why a header was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BadHeader {
    /// Not a kvs file of this kind, or damaged.
    Damaged,
    /// A kvs file of a format this kvs does not know.
    Version(u32),
}

/// The LSN and the format version in a header of `kind`.
pub(crate) fn decode(kind: Kind, bytes: &[u8; HEADER_LEN]) -> Result<(u64, u32), BadHeader> {
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if &bytes[..8] != kind.magic() || crc32c::crc32c(&bytes[..24]) != word(24) {
        return Err(BadHeader::Damaged);
    }
    let version = word(8);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(BadHeader::Version(version));
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&bytes[16..24]);
    Ok((u64::from_le_bytes(lsn), version))
}

/// The name of the log segment whose first record has `lsn`.
pub fn segment_name(lsn: u64) -> String {
    format!("log-{lsn:020}.wal")
}

/// The name of the snapshot that log replay resumes after at `lsn`.
pub fn snapshot_name(lsn: u64) -> String {
    format!("snapshot-{lsn:020}.kvs")
}

/// The suffix of a snapshot still being written.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The LSN in a file name made by [`segment_name`] or [`snapshot_name`], with its kind.
pub(crate) fn parse_name(name: &str) -> Option<(Kind, u64)> {
    let (kind, digits) = if let Some(rest) = name.strip_prefix("log-") {
        (Kind::Segment, rest.strip_suffix(".wal")?)
    } else {
        let rest = name.strip_prefix("snapshot-")?;
        (Kind::Snapshot, rest.strip_suffix(".kvs")?)
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(|lsn| (kind, lsn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_header() {
        let bytes = encode(Kind::Segment, 5);
        assert_eq!(
            &bytes[..24],
            b"KVS-LOG\0\x02\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0"
        );
        assert_eq!(decode(Kind::Segment, &bytes), Ok((5, 2)));
        assert_eq!(decode(Kind::Snapshot, &bytes), Err(BadHeader::Damaged));
    }

    #[test]
    fn a_newer_version_is_named_not_misread() {
        let mut bytes = encode(Kind::Snapshot, 9);
        let mut with_version = |version: u8| {
            bytes[8] = version;
            let crc = crc32c::crc32c(&bytes[..24]);
            bytes[24..].copy_from_slice(&crc.to_le_bytes());
            bytes
        };
        assert_eq!(decode(Kind::Snapshot, &with_version(1)), Ok((9, 1)));
        assert_eq!(
            decode(Kind::Snapshot, &with_version(0)),
            Err(BadHeader::Version(0))
        );
        let mut bytes = with_version(3);
        assert_eq!(decode(Kind::Snapshot, &bytes), Err(BadHeader::Version(3)));
        bytes[16] ^= 1;
        assert_eq!(decode(Kind::Snapshot, &bytes), Err(BadHeader::Damaged));
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(42), "log-00000000000000000042.wal");
        assert_eq!(parse_name(&segment_name(42)), Some((Kind::Segment, 42)));
        assert_eq!(
            parse_name(&snapshot_name(u64::MAX)),
            Some((Kind::Snapshot, u64::MAX))
        );
        assert_eq!(parse_name("snapshot-1.kvs"), None);
        assert_eq!(parse_name("log-00000000000000000042.wal.tmp"), None);
        assert_eq!(parse_name("LOCK"), None);
    }
}
