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
//! never a valid frame. A `len` of `u64::MAX` marks a snapshot's trailer instead of a record:
//! it is followed by the record count (u64) and a CRC32C of the 16 bytes before it.

use std::io::{self, Read};

/// Bytes before a frame's payload.
pub const FRAME_HEADER: usize = 12;
/// The `len` value that marks a snapshot trailer.
pub(crate) const TRAILER_MARK: u64 = u64::MAX;
/// Bytes of a snapshot trailer.
pub(crate) const TRAILER_LEN: usize = 20;

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

/// Appends a snapshot trailer for `count` records to `out`.
pub(crate) fn encode_trailer(out: &mut Vec<u8>, count: u64) {
    let start = out.len();
    out.extend_from_slice(&TRAILER_MARK.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
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
pub enum Item<'a> {
    Record(&'a [u8]),
    /// A snapshot trailer with its record count.
    Trailer(u64),
    /// A bad frame at this item's offset.
    Damaged(Damage),
}

/// Reads frames one by one from a file of known length. Never allocates more than the bytes the
/// file still holds, whatever a damaged length field claims.
pub struct FrameReader<R> {
    reader: io::BufReader<R>,
    offset: u64,
    len: u64,
    buf: Vec<u8>,
}

impl<R> std::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl<R: Read> FrameReader<R> {
    /// A reader positioned at `offset` of a file `len` bytes long.
    pub fn new(reader: R, offset: u64, len: u64) -> Self {
        Self {
            reader: io::BufReader::with_capacity(1 << 20, reader),
            offset,
            len,
            buf: Vec::new(),
        }
    }

    /// Where the next frame starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next item, or `None` at the end of the file. After `Damaged` the reader stays at the
    /// damaged frame's offset.
    pub fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        let remaining = self.len - self.offset;
        if remaining == 0 {
            return Ok(None);
        }
        if remaining < FRAME_HEADER as u64 {
            return Ok(Some(Item::Damaged(Damage::Incomplete)));
        }
        let mut header = [0u8; FRAME_HEADER];
        self.reader.read_exact(&mut header)?;
        let mut len = [0u8; 8];
        len.copy_from_slice(&header[..8]);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&header[8..]);
        let payload_len = u64::from_le_bytes(len);
        if payload_len == TRAILER_MARK {
            if remaining < TRAILER_LEN as u64 {
                return Ok(Some(Item::Damaged(Damage::Incomplete)));
            }
            let mut rest = [0u8; TRAILER_LEN - FRAME_HEADER];
            self.reader.read_exact(&mut rest)?;
            let mut whole = [0u8; TRAILER_LEN];
            whole[..FRAME_HEADER].copy_from_slice(&header);
            whole[FRAME_HEADER..].copy_from_slice(&rest);
            let mut count = [0u8; 8];
            count.copy_from_slice(&whole[8..16]);
            let mut stored = [0u8; 4];
            stored.copy_from_slice(&whole[16..]);
            if crc32c::crc32c(&whole[..16]) != u32::from_le_bytes(stored) {
                return Ok(Some(Item::Damaged(Damage::Checksum)));
            }
            self.offset += TRAILER_LEN as u64;
            return Ok(Some(Item::Trailer(u64::from_le_bytes(count))));
        }
        if payload_len > remaining - FRAME_HEADER as u64 {
            return Ok(Some(Item::Damaged(Damage::Incomplete)));
        }
        // Bounded by the bytes the file holds, checked just above.
        self.buf.resize(payload_len as usize, 0);
        self.reader.read_exact(&mut self.buf)?;
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
    fn zeros_are_not_a_frame_and_a_huge_length_allocates_nothing() {
        assert_eq!(items(&[0u8; 64]), ["Damaged(Checksum)"]);
        let mut huge = (u64::MAX - 1).to_le_bytes().to_vec();
        huge.extend_from_slice(&[0u8; 12]);
        assert_eq!(items(&huge), ["Damaged(Incomplete)"]);
    }
}
