//! How one record is framed inside a log segment or a snapshot file, and how frames are read back.
//!
//! ```text
//!  offset 0          8          12                 12 + len
//!         +----------+----------+------------------+
//!         | len: u64 | crc: u32 | payload          |
//!         +----------+----------+------------------+
//! ```
//!
//! All integers are little-endian. `len` is the payload length in bytes. `crc` is the CRC32C
//! (Castagnoli) of the 8 `len` bytes followed by the payload, so a damaged length is caught as
//! surely as a damaged payload, and a run of zero bytes (a file extended but never written) is
//! never a valid frame.
//!
//! Three `len` values mark a 20-byte frame that is not a record: `len`, a u64 value, and the
//! CRC32C of those 16 bytes.
//!
//! | `len`          | value                 | where                                           |
//! | -------------- | --------------------- | ----------------------------------------------- |
//! | `u64::MAX`     | record count          | a snapshot's trailer                            |
//! | `u64::MAX - 1` | the segment's end LSN | a segment's seal, written by a clean close      |
//! | `u64::MAX - 2` | a byte offset         | a synced marker: every byte before it is synced |
//!
//! Seals and synced markers exist from format version 2 on; in a version-1 file those `len`
//! values read as lengths no file can hold.

use std::io::{self, Read};

mod damage;

pub(crate) use damage::AfterDamage;

/// Bytes before a frame's payload.
pub const FRAME_HEADER: usize = 12;
/// The `len` value that marks a snapshot trailer.
pub(crate) const TRAILER_MARK: u64 = u64::MAX;
/// The `len` value that marks a segment's seal.
pub(crate) const SEAL_MARK: u64 = u64::MAX - 1;
/// The `len` value that marks a synced marker.
pub(crate) const SYNCED_MARK: u64 = u64::MAX - 2;
/// Bytes of a trailer, a seal or a synced marker.
pub const MARK_LEN: usize = 20;
/// Bytes of a snapshot trailer.
pub(crate) const TRAILER_LEN: usize = MARK_LEN;

/// The checksum of a frame with payload `payload`.
fn checksum(len: [u8; 8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len), payload)
}

/// Appends `payload` framed to `out`.
pub fn encode(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The bytes of a 20-byte frame marked `mark` carrying `value`.
pub(crate) fn mark(mark: u64, value: u64) -> [u8; MARK_LEN] {
    let mut out = [0u8; MARK_LEN];
    out[..8].copy_from_slice(&mark.to_le_bytes());
    out[8..16].copy_from_slice(&value.to_le_bytes());
    let crc = crc32c::crc32c(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The mark and value of a 20-byte frame, if its checksum matches.
pub(crate) fn decode_mark(bytes: &[u8; MARK_LEN]) -> Option<(u64, u64)> {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&bytes[16..]);
    (crc32c::crc32c(&bytes[..16]) == u32::from_le_bytes(stored)).then(|| (word(0), word(8)))
}

/// Appends a snapshot trailer for `count` records to `out`.
pub(crate) fn encode_trailer(out: &mut Vec<u8>, count: u64) {
    out.extend_from_slice(&mark(TRAILER_MARK, count));
}

/// What went wrong with the frame at some offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside the frame: what a crash in the middle of a write leaves.
    Incomplete,
    /// The frame is whole but its checksum does not match.
    Checksum,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Damage::Incomplete => "the file ends inside a record",
            Damage::Checksum => "a record's checksum does not match",
        })
    }
}

/// One item read from a file of frames.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item<'a> {
    Record(&'a [u8]),
    /// A snapshot trailer with its record count.
    Trailer(u64),
    /// A segment's seal with the segment's end LSN (the first LSN it does not hold).
    Seal(u64),
    /// A synced marker: every byte of the segment before this offset was synced.
    Synced(u64),
    /// A bad frame at this item's offset.
    Damaged(Damage),
}

/// Reads frames one by one from a file of known length. Never allocates more than the bytes the
/// file still holds, whatever a damaged length field claims.
pub struct FrameReader<R> {
    reader: io::BufReader<R>,
    offset: u64,
    len: u64,
    /// The format version of the file: seals and synced markers exist from version 2 on.
    version: u32,
    buf: Vec<u8>,
    /// The bytes read of the last frame before its payload (its header, or a whole mark).
    head: [u8; MARK_LEN],
    head_len: usize,
    /// Whether `buf` holds the last frame's payload.
    payload_read: bool,
}

impl<R> std::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("version", &self.version)
            .finish()
    }
}

impl<R: Read> FrameReader<R> {
    /// A reader positioned at `offset` of a file `len` bytes long, in the current format.
    pub fn new(reader: R, offset: u64, len: u64) -> Self {
        Self::for_version(reader, offset, len, crate::header::FORMAT_VERSION)
    }

    /// A reader positioned at `offset` of a file `len` bytes long whose header says `version`.
    pub fn for_version(reader: R, offset: u64, len: u64, version: u32) -> Self {
        Self {
            reader: io::BufReader::with_capacity(1 << 20, reader),
            offset,
            len,
            version,
            buf: Vec::new(),
            head: [0u8; MARK_LEN],
            head_len: 0,
            payload_read: false,
        }
    }

    /// Where the next frame starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether `len` marks a 20-byte frame in this file's format.
    fn is_mark(&self, len: u64) -> bool {
        len == TRAILER_MARK || (self.version >= 2 && (len == SEAL_MARK || len == SYNCED_MARK))
    }

    /// The next item, or `None` at the end of the file. After `Damaged` the reader stays at the
    /// damaged frame's offset.
    pub fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        self.head_len = 0;
        self.payload_read = false;
        let remaining = self.len - self.offset;
        if remaining == 0 {
            return Ok(None);
        }
        if remaining < FRAME_HEADER as u64 {
            return Ok(Some(Item::Damaged(Damage::Incomplete)));
        }
        self.reader.read_exact(&mut self.head[..FRAME_HEADER])?;
        self.head_len = FRAME_HEADER;
        let mut len = [0u8; 8];
        len.copy_from_slice(&self.head[..8]);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&self.head[8..FRAME_HEADER]);
        let payload_len = u64::from_le_bytes(len);
        if self.is_mark(payload_len) {
            if remaining < MARK_LEN as u64 {
                return Ok(Some(Item::Damaged(Damage::Incomplete)));
            }
            self.reader.read_exact(&mut self.head[FRAME_HEADER..])?;
            self.head_len = MARK_LEN;
            let Some((mark, value)) = decode_mark(&self.head) else {
                return Ok(Some(Item::Damaged(Damage::Checksum)));
            };
            self.offset += MARK_LEN as u64;
            return Ok(Some(match mark {
                SEAL_MARK => Item::Seal(value),
                SYNCED_MARK => Item::Synced(value),
                _ => Item::Trailer(value),
            }));
        }
        if payload_len > remaining - FRAME_HEADER as u64 {
            return Ok(Some(Item::Damaged(Damage::Incomplete)));
        }
        // Bounded by the bytes the file holds, checked just above.
        self.buf.resize(payload_len as usize, 0);
        self.reader.read_exact(&mut self.buf)?;
        self.payload_read = true;
        if checksum(len, &self.buf) != u32::from_le_bytes(crc) {
            return Ok(Some(Item::Damaged(Damage::Checksum)));
        }
        self.offset += FRAME_HEADER as u64 + payload_len;
        Ok(Some(Item::Record(&self.buf)))
    }

    /// Whether every byte from the current read position to the end of the file is zero.
    pub fn rest_is_zero(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.reader.read(&mut chunk)?;
            if n == 0 {
                return Ok(true);
            }
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(bytes: &[u8]) -> Vec<String> {
        let mut reader = FrameReader::new(bytes, 0, bytes.len() as u64);
        let mut out = Vec::new();
        while let Some(item) = reader.next_item().expect("in-memory read") {
            let damaged = matches!(item, Item::Damaged(_));
            out.push(format!("{item:?}"));
            if damaged {
                break;
            }
        }
        out
    }

    /// The record format, byte for byte: a change here breaks every existing data directory.
    /// The checksums were computed independently with a bitwise CRC32C (polynomial 0x82F63B78).
    #[test]
    fn golden_bytes() {
        let mut out = Vec::new();
        encode(&mut out, b"kvs");
        assert_eq!(
            out,
            [
                3, 0, 0, 0, 0, 0, 0, 0, // len
                0x7d, 0x7f, 0xaf, 0x56, // crc32c(len ++ payload)
                b'k', b'v', b's',
            ]
        );
        let mut empty = Vec::new();
        encode(&mut empty, b"");
        assert_eq!(empty, [0, 0, 0, 0, 0, 0, 0, 0, 0x8a, 0xb2, 0x28, 0x8c]);
        let mut trailer = Vec::new();
        encode_trailer(&mut trailer, 2);
        assert_eq!(trailer.len(), TRAILER_LEN);
        assert_eq!(
            &trailer[..16],
            &[
                255, 255, 255, 255, 255, 255, 255, 255, 2, 0, 0, 0, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn reads_back_what_was_framed() {
        let mut out = Vec::new();
        encode(&mut out, b"one");
        encode(&mut out, b"");
        encode(&mut out, &[7u8; 70_000]);
        encode_trailer(&mut out, 3);
        let got = items(&out);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], format!("{:?}", Item::Record(b"one")));
        assert_eq!(got[1], format!("{:?}", Item::Record(b"")));
        assert_eq!(got[3], "Trailer(3)");
    }

    #[test]
    fn every_cut_of_the_last_frame_is_incomplete() {
        let mut out = Vec::new();
        encode(&mut out, b"first");
        let whole = out.len();
        encode(&mut out, b"second record");
        for cut in whole + 1..out.len() {
            let got = items(&out[..cut]);
            assert_eq!(
                got.last().map(String::as_str),
                Some("Damaged(Incomplete)"),
                "cut {cut}"
            );
            assert_eq!(got.len(), 2);
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_caught() {
        let mut out = Vec::new();
        encode(&mut out, b"payload");
        for byte in 0..out.len() {
            let mut bad = out.clone();
            bad[byte] ^= 0x10;
            let got = items(&bad);
            assert!(got[0].starts_with("Damaged"), "byte {byte}: {got:?}");
        }
    }

    #[test]
    fn seals_and_synced_markers_exist_from_version_2() {
        let mut out = Vec::new();
        encode(&mut out, b"one");
        out.extend_from_slice(&mark(SYNCED_MARK, 15));
        out.extend_from_slice(&mark(SEAL_MARK, 1));
        assert_eq!(
            items(&out),
            ["Record([111, 110, 101])", "Synced(15)", "Seal(1)"]
        );
        assert_eq!(
            &mark(SEAL_MARK, 7)[..16],
            &[
                254, 255, 255, 255, 255, 255, 255, 255, 7, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        // In a version-1 file those lengths are lengths no file can hold.
        let mut reader = FrameReader::for_version(&out[..], 0, out.len() as u64, 1);
        assert!(matches!(reader.next_item(), Ok(Some(Item::Record(_)))));
        assert_eq!(
            reader.next_item().expect("read"),
            Some(Item::Damaged(Damage::Incomplete))
        );
    }

    #[test]
    fn zeros_are_not_a_frame_and_a_huge_length_allocates_nothing() {
        assert_eq!(items(&[0u8; 64]), ["Damaged(Checksum)"]);
        let mut huge = (u64::MAX - 3).to_le_bytes().to_vec();
        huge.extend_from_slice(&[0u8; 12]);
        assert_eq!(items(&huge), ["Damaged(Incomplete)"]);
        // A seal's mark with a bad checksum is a damaged frame, not a length.
        let mut seal = (u64::MAX - 1).to_le_bytes().to_vec();
        seal.extend_from_slice(&[0u8; 12]);
        assert_eq!(items(&seal), ["Damaged(Checksum)"]);
    }
}
