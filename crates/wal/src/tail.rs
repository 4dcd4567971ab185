//! Reading records back from a live log: for a reader that resumes from an LSN older than what
//! it keeps in memory (a watcher reconnecting after a restart). The log is being appended to
//! meanwhile, so the reader only asks for records that are already written, and stops quietly
//! at the end of what it finds.

use crate::frame::{FrameReader, Item};
use crate::header::{self, HEADER_LEN, Kind};
use crate::recovery::read_header;
use crate::storage::Storage;

/// Why records could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TailError {
    /// The segment holding `wanted` was removed (a snapshot covered it) or never existed.
    #[error("the log no longer holds record {wanted}; the oldest it holds is {oldest}")]
    Removed { wanted: u64, oldest: u64 },
    #[error("cannot read the log: {0}")]
    Io(String),
}

/// Reads the records with LSNs from `from` up to (not including) `until`, in order, giving at
/// most `max_bytes` of payload (and always at least one record, if there is one). Records below
/// `until` must already be written (acknowledged); a damaged or missing tail ends the reading.
pub fn read_records(
    storage: &dyn Storage,
    from: u64,
    until: u64,
    max_bytes: usize,
) -> Result<Vec<(u64, Vec<u8>)>, TailError> {
    let io = |e: std::io::Error| TailError::Io(e.to_string());
    let mut segments: Vec<(u64, String)> = storage
        .list()
        .map_err(io)?
        .into_iter()
        .filter_map(|name| match header::parse_name(&name) {
            Some((Kind::Segment, lsn)) => Some((lsn, name)),
            _ => None,
        })
        .collect();
    segments.sort();
    let oldest = segments.first().map_or(until, |(lsn, _)| *lsn);
    if from < oldest {
        return Err(TailError::Removed {
            wanted: from,
            oldest,
        });
    }
    let mut out = Vec::new();
    let mut bytes = 0;
    // The segment that holds `from` is the last one starting at or before it.
    let first = segments.partition_point(|(lsn, _)| *lsn <= from).max(1) - 1;
    for (start, name) in &segments[first..] {
        if *start >= until {
            break;
        }
        let (mut reader, len) = match storage.open(name) {
            Ok(file) => file,
            // Removed since it was listed: a snapshot covered it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && out.is_empty() => {
                return Err(TailError::Removed {
                    wanted: from,
                    oldest: *start + 1,
                });
            }
            Err(e) => return Err(io(e)),
        };
        let version = match read_header(&mut reader, len, Kind::Segment, name) {
            Ok(Some((lsn, version))) if lsn == *start => version,
            _ => break,
        };
        let mut frames = FrameReader::for_version(reader, HEADER_LEN as u64, len, version);
        let mut lsn = *start;
        loop {
            match frames.next_item().map_err(io)? {
                Some(Item::Record(payload)) => {
                    if lsn >= until {
                        return Ok(out);
                    }
                    if lsn >= from {
                        if bytes >= max_bytes && !out.is_empty() {
                            return Ok(out);
                        }
                        bytes += payload.len();
                        out.push((lsn, payload.to_vec()));
                    }
                    lsn += 1;
                }
                Some(Item::Synced(_)) => {}
                // The end of the segment, a clean seal, or a tail still being written.
                _ => break,
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{FsyncPolicy, Log, LogOptions, SimulatedDisk};

    #[test]
    fn records_are_read_back_from_a_live_log_across_segments() {
        let disk = Arc::new(SimulatedDisk::new());
        let options = LogOptions {
            fsync: FsyncPolicy::Always,
            leader: crate::Leader::LogThread,
            segment_bytes: 200,
            snapshot_after: u64::MAX,
        };
        let log = Log::open(disk.clone(), 0, 0, options, || {}).expect("log opens");
        for i in 0..50u32 {
            let lsn = log
                .append(format!("record {i}").as_bytes())
                .expect("append");
            block_on(log.wait(lsn)).expect("acknowledged");
            if i % 10 == 9 {
                // Segments begin where a snapshot would start.
                log.begin_snapshot();
            }
        }
        let all = read_records(&*disk, 0, 50, usize::MAX).expect("read");
        assert_eq!(all.len(), 50);
        for (i, (lsn, payload)) in all.iter().enumerate() {
            assert_eq!(*lsn, i as u64);
            assert_eq!(payload, format!("record {i}").as_bytes());
        }
        let some = read_records(&*disk, 17, 30, usize::MAX).expect("read");
        assert_eq!(some.first().map(|r| r.0), Some(17));
        assert_eq!(some.last().map(|r| r.0), Some(29));
        let bounded = read_records(&*disk, 10, 50, 20).expect("read");
        assert!(
            (1..=3).contains(&bounded.len()),
            "{} records",
            bounded.len()
        );
        log.remove_covered(40).expect("remove");
        assert!(matches!(
            read_records(&*disk, 5, 50, usize::MAX),
            Err(TailError::Removed { wanted: 5, .. })
        ));
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }
}
