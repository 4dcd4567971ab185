//! Recovery at startup: the newest snapshot, then every log record from the LSN it resumes at.
//!
//! Damage is cut off as a torn write only where a crash can leave one: at the end of the newest
//! segment, after the last offset a synced marker says was synced, in a segment not sealed by a
//! clean close, and only when the bad frame is cut short or followed by nothing but zeros. The
//! warning says what is known: under `--fsync always` such records were never acknowledged.
//! Damage anywhere else means the disk or someone changed bytes that had been durable, and
//! recovery stops with the file and offset, unless the operator asked to truncate the log at the
//! first bad record. Version-1 segments have no markers or seals and keep version 1's rule: a bad
//! frame at the end of the newest segment, cut short or followed by zeros, is cut off.

mod segment;

use std::time::{Duration, Instant};

use crate::frame::{FrameReader, Item};
use crate::header::{self, BadHeader, HEADER_LEN, Kind, TEMP_SUFFIX};
use crate::storage::Storage;
use segment::{Verdict, replay_segment};

/// What recovery does with the records it reads.
pub trait Replay {
    /// One record of the snapshot, in the order they were written.
    fn snapshot_record(&mut self, payload: &[u8]) -> Result<(), String>;
    /// One log record with its LSN, in log order.
    fn log_record(&mut self, lsn: u64, payload: &[u8]) -> Result<(), String>;
}

/// Choices the operator makes about damaged data.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecoveryOptions {
    /// Cut the log at the first damaged record instead of refusing to start. Everything after
    /// that record is lost.
    pub truncate_corrupt: bool,
}

/// What recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The snapshot it started from: name and record count.
    pub snapshot: Option<(String, u64)>,
    /// Log records replayed after the snapshot.
    pub log_records: u64,
    /// Bytes of log those records came from.
    pub log_bytes: u64,
    /// The LSN the next record gets.
    pub next_lsn: u64,
    /// What was cut off, if anything, for the operator's log.
    pub warnings: Vec<String>,
}

/// Why recovery refused to go on. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{file} is damaged at byte {offset}: {what}")]
    Corrupt {
        file: String,
        offset: u64,
        what: String,
        /// Whether cutting the log at this point ([`RecoveryOptions::truncate_corrupt`]) would
        /// let recovery go on.
        truncatable: bool,
    },
    #[error(
        "{file} is in format version {found}, written by a newer kvs; this kvs reads versions \
         {} to {}",
        header::OLDEST_FORMAT_VERSION,
        header::FORMAT_VERSION
    )]
    Version { file: String, found: u32 },
    #[error(
        "log records from {from} are missing: the next file is {file}, which starts at {found}"
    )]
    Gap { file: String, from: u64, found: u64 },
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

pub(crate) struct Progress {
    started: Instant,
    last: Instant,
    records: u64,
}

impl Progress {
    pub(crate) fn tick(&mut self, file: &str) {
        self.records += 1;
        if self.records.is_multiple_of(4096) && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            tracing::info!(
                "recovering: {} records read so far ({file}, {:.1} s)",
                self.records,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Reads the newest snapshot and the log after it into `sink`. Leftover temporary snapshots and
/// segments the snapshot covers are removed; a torn tail is cut off the last segment.
pub fn recover(
    storage: &dyn Storage,
    options: RecoveryOptions,
    sink: &mut dyn Replay,
) -> Result<Recovered, RecoveryError> {
    let io = |file: &str| {
        let file = storage.describe(file);
        move |source| RecoveryError::Io { file, source }
    };
    let mut segments = Vec::new();
    let mut snapshots = Vec::new();
    let mut out = Recovered::default();
    for name in storage.list().map_err(io(""))? {
        if name.ends_with(TEMP_SUFFIX) && name.starts_with("snapshot-") {
            out.warnings.push(format!(
                "removed {name}, a snapshot that was never finished"
            ));
            storage.remove(&name).map_err(io(&name))?;
            continue;
        }
        match header::parse_name(&name) {
            Some((Kind::Segment, lsn)) => segments.push((lsn, name)),
            Some((Kind::Snapshot, lsn)) => snapshots.push((lsn, name)),
            None => {}
        }
    }
    segments.sort();
    snapshots.sort();
    let now = Instant::now();
    let mut progress = Progress {
        started: now,
        last: now,
        records: 0,
    };

    let start = match snapshots.last() {
        Some((lsn, name)) => {
            let records = read_snapshot(storage, name, *lsn, sink, &mut progress)?;
            out.snapshot = Some((name.clone(), records));
            *lsn
        }
        None => 0,
    };
    // Segments wholly before the snapshot: a crash came between the snapshot and their removal.
    while segments.len() >= 2 && segments[1].0 <= start {
        let (_, name) = segments.remove(0);
        storage.remove(&name).map_err(io(&name))?;
    }
    let mut expected = segments.first().map_or(start, |(lsn, _)| *lsn);
    if expected > start {
        let file = storage.describe(&segments[0].1);
        return Err(RecoveryError::Gap {
            file,
            from: start,
            found: expected,
        });
    }
    let count = segments.len();
    for (i, (lsn, name)) in segments.iter().enumerate() {
        if *lsn != expected {
            let file = storage.describe(name);
            return Err(RecoveryError::Gap {
                file,
                from: expected,
                found: *lsn,
            });
        }
        let last = i + 1 == count;
        let outcome = replay_segment(storage, name, expected, start, last, sink, &mut progress)?;
        out.log_bytes += outcome.bytes;
        out.log_records += outcome.replayed;
        expected = outcome.next_lsn;
        if let Some(damaged) = outcome.damage {
            let file = storage.describe(name);
            let offset = damaged.offset;
            match damaged.verdict {
                Verdict::Torn { synced } => {
                    out.warnings.push(segment::torn_warning(
                        &file,
                        outcome.bytes,
                        offset,
                        &damaged.reason,
                        synced,
                    ));
                }
                Verdict::Corrupt if options.truncate_corrupt => {
                    out.warnings.push(format!(
                        "{file} is damaged at byte {offset} ({}); the log was cut there as \
                         asked and every later record is dropped",
                        damaged.reason
                    ));
                    for (_, later) in &segments[i + 1..] {
                        storage.remove(later).map_err(io(later))?;
                    }
                }
                Verdict::Corrupt => {
                    return Err(RecoveryError::Corrupt {
                        file,
                        offset,
                        what: damaged.reason,
                        truncatable: true,
                    });
                }
            }
            if offset == 0 {
                storage.remove(name).map_err(io(name))?;
            } else {
                storage.truncate(name, offset).map_err(io(name))?;
            }
            storage.sync_dir().map_err(io(name))?;
            break;
        }
    }
    out.next_lsn = expected.max(start);
    Ok(out)
}

fn read_snapshot(
    storage: &dyn Storage,
    name: &str,
    lsn: u64,
    sink: &mut dyn Replay,
    progress: &mut Progress,
) -> Result<u64, RecoveryError> {
    let file = storage.describe(name);
    let corrupt = |offset, what: &str| RecoveryError::Corrupt {
        file: file.clone(),
        offset,
        what: what.to_owned(),
        truncatable: false,
    };
    let (mut reader, len) = storage.open(name).map_err(|source| RecoveryError::Io {
        file: file.clone(),
        source,
    })?;
    let version = match read_header(&mut reader, len, Kind::Snapshot, &file)? {
        Some((found, version)) if found == lsn => version,
        _ => return Err(corrupt(0, "the header does not match the file name")),
    };
    let mut frames = FrameReader::for_version(reader, HEADER_LEN as u64, len, version);
    let mut records = 0;
    loop {
        let offset = frames.offset();
        let item = frames.next_item().map_err(|source| RecoveryError::Io {
            file: file.clone(),
            source,
        })?;
        match item {
            Some(Item::Record(payload)) => {
                sink.snapshot_record(payload).map_err(|why| {
                    corrupt(offset, &format!("a record cannot be applied: {why}"))
                })?;
                records += 1;
                progress.tick(name);
            }
            Some(Item::Trailer(count))
                if count == records && offset + crate::frame::TRAILER_LEN as u64 == len =>
            {
                return Ok(records);
            }
            Some(Item::Trailer(_)) => return Err(corrupt(offset, "the trailer does not match")),
            Some(Item::Seal(_) | Item::Synced(_)) => {
                return Err(corrupt(offset, "a log segment's marker is in the snapshot"));
            }
            Some(Item::Damaged(damage)) => return Err(corrupt(offset, &damage.to_string())),
            None => return Err(corrupt(offset, "the snapshot has no trailer")),
        }
    }
}

/// Reads a header: the LSN and the format version; `None` when the file is too short to hold
/// one.
pub(crate) fn read_header(
    reader: &mut dyn std::io::Read,
    len: u64,
    kind: Kind,
    file: &str,
) -> Result<Option<(u64, u32)>, RecoveryError> {
    if len < HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut bytes = [0u8; HEADER_LEN];
    reader
        .read_exact(&mut bytes)
        .map_err(|source| RecoveryError::Io {
            file: file.to_owned(),
            source,
        })?;
    match header::decode(kind, &bytes) {
        Ok(found) => Ok(Some(found)),
        Err(BadHeader::Version(found)) => Err(RecoveryError::Version {
            file: file.to_owned(),
            found,
        }),
        Err(BadHeader::Damaged) => Err(RecoveryError::Corrupt {
            file: file.to_owned(),
            offset: 0,
            what: "the file header is damaged".to_owned(),
            truncatable: false,
        }),
    }
}
