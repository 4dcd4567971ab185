//! What follows a damaged frame. Frame boundaries are lost at the damage, so recovery reads the
//! rest of the file as bytes: whether they are all zeros (a file extended but never written),
//! the file's last bytes (where a seal would be), and any synced marker they hold.

use std::io::{self, Read};

use super::{FrameReader, MARK_LEN, SYNCED_MARK, decode_mark};

/// What follows a damaged frame, for deciding whether it can be a torn write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AfterDamage {
    /// Every byte after the damaged frame (as far as its length field reached) is zero.
    pub(crate) zero: bool,
    /// The file's last [`MARK_LEN`] bytes, when they all lie at or after the damaged frame.
    pub(crate) last: Option<[u8; MARK_LEN]>,
    /// The highest offset named by a synced marker found at or after the damaged frame. Frame
    /// boundaries are lost at the damage, so every position is tried; a record's payload that
    /// happens to hold a valid marker naming an offset no later than its own place can only make
    /// recovery stricter, never accept damage.
    pub(crate) synced: Option<u64>,
}

impl<R: Read> FrameReader<R> {
    /// Reads the rest of the file after [`super::Item::Damaged`]: whether it is all zeros, the file's
    /// last bytes (where a seal would be), and the synced markers it holds.
    pub(crate) fn after_damage(&mut self) -> io::Result<AfterDamage> {
        let mut scan = Scan {
            window: Vec::new(),
            at: self.offset,
            synced: None,
        };
        scan.push(&self.head[..self.head_len]);
        if self.payload_read {
            scan.push(&self.buf);
        }
        let mut zero = true;
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.reader.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            zero &= chunk[..n].iter().all(|&b| b == 0);
            scan.push(&chunk[..n]);
        }
        let last = scan.window.as_slice();
        Ok(AfterDamage {
            zero,
            last: last[last.len().saturating_sub(MARK_LEN)..].try_into().ok(),
            synced: scan.synced,
        })
    }
}

/// Looks for synced markers at every position of a stream pushed in pieces.
struct Scan {
    /// The stream's last bytes ([`MARK_LEN`] at most between pushes).
    window: Vec<u8>,
    /// The file offset of `window[0]`.
    at: u64,
    synced: Option<u64>,
}

impl Scan {
    fn push(&mut self, more: &[u8]) {
        self.window.extend_from_slice(more);
        let mark = SYNCED_MARK.to_le_bytes();
        let starts = self.window.len().saturating_sub(MARK_LEN - 1);
        for start in 0..starts {
            let bytes = &self.window[start..start + MARK_LEN];
            if bytes[..8] != mark {
                continue;
            }
            let mut whole = [0u8; MARK_LEN];
            whole.copy_from_slice(bytes);
            let place = self.at + start as u64;
            if let Some((SYNCED_MARK, offset)) = decode_mark(&whole)
                && offset <= place
            {
                self.synced = self.synced.max(Some(offset));
            }
        }
        // Keep the last bytes: the end of the file, if no more come. Trying a kept start again
        // after the next push finds the same marker, which changes nothing.
        let done = self.window.len().saturating_sub(MARK_LEN);
        self.window.drain(..done);
        self.at += done as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Damage, Item, SEAL_MARK, encode, mark};

    #[test]
    fn after_damage_sees_zeros_and_the_last_bytes() {
        let mut out = Vec::new();
        encode(&mut out, b"first");
        let damaged = out.len();
        encode(&mut out, b"second");
        out[damaged + 13] ^= 1;
        let seal = mark(SEAL_MARK, 2);
        out.extend_from_slice(&seal);
        let mut reader = FrameReader::new(&out[..], 0, out.len() as u64);
        assert!(matches!(reader.next_item(), Ok(Some(Item::Record(_)))));
        assert_eq!(
            reader.next_item().expect("read"),
            Some(Item::Damaged(Damage::Checksum))
        );
        let after = reader.after_damage().expect("read");
        assert_eq!(
            after,
            AfterDamage {
                zero: false,
                last: Some(seal),
                synced: None,
            }
        );

        // A length damaged so that the frame runs past the end: the seal is still found.
        let mut longer = out.clone();
        longer[damaged + 7] = 0x40;
        let mut reader = FrameReader::new(&longer[damaged..], damaged as u64, longer.len() as u64);
        assert_eq!(
            reader.next_item().expect("read"),
            Some(Item::Damaged(Damage::Incomplete))
        );
        assert_eq!(reader.after_damage().expect("read").last, Some(seal));

        // A short tail of zeros: no room for a seal after the damage.
        let mut torn = out[..damaged].to_vec();
        torn.extend_from_slice(&[0u8; 15]);
        let mut reader = FrameReader::new(&torn[damaged..], damaged as u64, torn.len() as u64);
        assert_eq!(
            reader.next_item().expect("read"),
            Some(Item::Damaged(Damage::Checksum))
        );
        assert_eq!(
            reader.after_damage().expect("read"),
            AfterDamage {
                zero: true,
                last: None,
                synced: None,
            }
        );
    }

    #[test]
    fn after_damage_finds_synced_markers_wherever_they_lie() {
        for payload in 8150..8210 {
            let mut out = Vec::new();
            encode(&mut out, &vec![7u8; payload]);
            let marker_at = out.len() as u64;
            out.extend_from_slice(&mark(SYNCED_MARK, marker_at));
            // A marker naming a place after its own cannot be true.
            let bogus_at = out.len() as u64;
            out.extend_from_slice(&mark(SYNCED_MARK, bogus_at + 1));
            out[7] = 0x10;
            let mut reader = FrameReader::new(&out[..], 0, out.len() as u64);
            assert_eq!(
                reader.next_item().expect("read"),
                Some(Item::Damaged(Damage::Incomplete))
            );
            let after = reader.after_damage().expect("read");
            assert_eq!(after.synced, Some(marker_at), "payload {payload}");
        }
    }
}
