//! Writing one batch: whoever holds the leader role takes the whole queue, writes it to the open
//! segment with one call (starting new segments where needed), syncs it as its duty says, and
//! reports what is now acknowledged and synced.
//!
//! A batch written after an fsync completed in its segment begins with a synced marker naming the
//! offset that fsync reached, so recovery knows that damage before it cannot be a torn write. The
//! queue keeps [`MARK_LEN`] bytes free at the front of its buffer for that marker, so it costs no
//! copy and no extra write call. A clean close ends the segment with a seal.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{FsyncPolicy, LogFailed, Shared, empty_buffer};
use crate::frame::{self, MARK_LEN, SEAL_MARK, SYNCED_MARK};
use crate::header::{self, Kind};
use crate::storage::{LogFile, Storage};

/// Under `everysec`, the longest written bytes stay unsynced.
const EVERY_SECOND: Duration = Duration::from_secs(1);

/// The segment being appended to.
pub(super) struct Segment {
    file: Box<dyn LogFile>,
    /// Bytes in the file.
    bytes: u64,
    /// Bytes the last completed fsync made durable.
    synced: u64,
    /// The offset named by the last synced marker written.
    marked: u64,
}

impl Segment {
    /// Creates the segment starting at `lsn` and makes its header and its name durable.
    pub(super) fn create(storage: &dyn Storage, lsn: u64) -> io::Result<Self> {
        let mut file = storage.create(&header::segment_name(lsn))?;
        let head = header::encode(Kind::Segment, lsn);
        file.append(&head)?;
        file.sync()?;
        storage.sync_dir()?;
        let bytes = head.len() as u64;
        Ok(Self {
            file,
            bytes,
            synced: bytes,
            marked: bytes,
        })
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !bytes.is_empty() {
            self.file.append(bytes)?;
            self.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_timed().map(|_| ())
    }

    /// Syncs what is not synced yet; how long the fsync took, if there was one.
    fn sync_timed(&mut self) -> io::Result<Option<Duration>> {
        if self.synced >= self.bytes {
            return Ok(None);
        }
        let start = Instant::now();
        self.file.sync()?;
        self.synced = self.bytes;
        Ok(Some(start.elapsed()))
    }
}

/// What only the holder of the leader role touches.
pub(super) struct Writer {
    /// `None` once the log is closed or failed.
    segment: Option<Segment>,
    /// The buffer the next queue swap hands to appenders.
    spare: Vec<u8>,
    /// The LSN after the last record written to the file.
    written: u64,
    last_sync: Instant,
    /// Under `everysec`: the background thread has been given a deadline to sync by.
    sync_requested: bool,
}

impl Writer {
    pub(super) fn new(segment: Segment, next_lsn: u64) -> Self {
        Self {
            segment: Some(segment),
            spare: Vec::new(),
            written: next_lsn,
            last_sync: Instant::now(),
            sync_requested: false,
        }
    }
}

/// Why a batch is written, which decides whether it is synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Duty {
    /// A commit waiter leads: sync under `always` only.
    Commit,
    /// The background thread: records waited long enough, or (`sync`) an `everysec` fsync is due.
    Background { sync: bool },
    /// The last batch: sync, seal, sync.
    Close,
}

/// How far a batch brought the log.
#[derive(Clone, Copy, Debug)]
pub(super) struct Published {
    pub(super) acknowledged: u64,
    /// Set when every record written is durable.
    pub(super) synced: Option<u64>,
}

struct Batch {
    /// The marker slot, then the records.
    bytes: Vec<u8>,
    first_lsn: u64,
    end_lsn: u64,
    rotations: Vec<(usize, u64)>,
}

/// Takes everything queued, writes it and syncs it as `duty` says. The caller holds the leader
/// role. `Ok(None)` when there is no segment to write to any more (closed or failed).
pub(super) fn lead(shared: &Shared, duty: Duty) -> Result<Option<Published>, LogFailed> {
    if shared.failed.load(Ordering::Acquire) {
        return Ok(None);
    }
    let mut writer = shared.writer.lock();
    let writer = &mut *writer;
    let Some(segment) = writer.segment.as_mut() else {
        return Ok(None);
    };
    let mut batch = take(shared, &mut writer.spare);
    let policy = shared.options.fsync;
    let sync = match duty {
        Duty::Commit => policy == FsyncPolicy::Always,
        Duty::Background { sync } => sync || policy == FsyncPolicy::Always,
        Duty::Close => true,
    };
    let written = write_batch(shared, segment, &mut batch).and_then(|()| {
        if sync && let Some(took) = segment.sync_timed()? {
            shared.fsyncs.fetch_add(1, Ordering::Relaxed);
            if let Some(hook) = shared.on_fsync.get() {
                hook(took);
            }
        }
        Ok(())
    });
    if let Err(e) = written {
        writer.segment = None;
        let failed = LogFailed(format!("writing the log failed: {e}").into());
        tracing::error!("{failed}; kvs refuses writes from now on and keeps serving reads");
        return Err(failed);
    }
    writer.written = batch.end_lsn;
    if sync {
        writer.last_sync = Instant::now();
    }
    let all_synced = segment.synced == segment.bytes;
    if policy == FsyncPolicy::EverySecond && all_synced == writer.sync_requested {
        // Unsynced bytes appeared (give the background thread a deadline) or were synced.
        writer.sync_requested = !all_synced;
        let mut queue = shared.queue.lock();
        let wake = if all_synced {
            queue.sync_due = None;
            false
        } else {
            let due = writer.last_sync + EVERY_SECOND;
            queue.sync_due = Some(due);
            queue.due_at(due)
        };
        drop(queue);
        if wake {
            shared.background.notify_one();
        }
    }
    if duty == Duty::Close {
        if let Err(e) = seal(segment, batch.end_lsn) {
            tracing::error!("sealing the log at shutdown failed: {e}; it is synced but unsealed");
        }
        writer.segment = None;
    }
    let bytes = (batch.bytes.len() - MARK_LEN) as u64;
    shared.written_bytes.fetch_add(bytes, Ordering::Relaxed);
    grown(shared, bytes);
    writer.spare = batch.bytes;
    if writer.spare.capacity() > 16 << 20 {
        writer.spare = Vec::new();
    }
    Ok(Some(Published {
        acknowledged: batch.end_lsn,
        synced: all_synced.then_some(batch.end_lsn),
    }))
}

/// Ends a synced segment with its seal, after its last record, and syncs that.
fn seal(segment: &mut Segment, end_lsn: u64) -> io::Result<()> {
    segment.append(&frame::mark(SEAL_MARK, end_lsn))?;
    segment.sync()
}

/// Swaps the queue's buffer for an empty one.
fn take(shared: &Shared, spare: &mut Vec<u8>) -> Batch {
    let fresh = empty_buffer(std::mem::take(spare));
    let mut queue = shared.queue.lock();
    let bytes = std::mem::replace(&mut queue.buf, fresh);
    let batch = Batch {
        bytes,
        first_lsn: queue.first_lsn,
        end_lsn: queue.next_lsn,
        rotations: std::mem::take(&mut queue.rotations),
    };
    queue.first_lsn = queue.next_lsn;
    queue.since = None;
    // This batch answers every request made so far; a waiter that comes later asks again.
    queue.wanted = false;
    batch
}

fn write_batch(shared: &Shared, segment: &mut Segment, batch: &mut Batch) -> io::Result<()> {
    let storage = &*shared.storage;
    let mut from = MARK_LEN;
    let mut part_lsn = batch.first_lsn;
    let ends = batch.rotations.iter().map(|&(at, lsn)| (at, Some(lsn)));
    for (to, next) in ends.chain(std::iter::once((batch.bytes.len(), None))) {
        if to > from {
            if segment.bytes >= shared.options.segment_bytes {
                segment.sync()?;
                *segment = Segment::create(storage, part_lsn)?;
            }
            if from == MARK_LEN && segment.synced > segment.marked {
                // The marker slot lies just before this part: one write for both.
                let synced = segment.synced;
                batch.bytes[..MARK_LEN].copy_from_slice(&frame::mark(SYNCED_MARK, synced));
                segment.append(&batch.bytes[..to])?;
                segment.marked = synced;
            } else {
                segment.append(&batch.bytes[from..to])?;
            }
        }
        if let Some(lsn) = next {
            segment.sync()?;
            *segment = Segment::create(storage, lsn)?;
            part_lsn = lsn;
        }
        from = to;
    }
    Ok(())
}

/// Counts `bytes` more log since the last snapshot, and says so once it is enough for one.
fn grown(shared: &Shared, bytes: u64) {
    if bytes == 0 {
        return;
    }
    let grown = shared.since_snapshot.fetch_add(bytes, Ordering::Relaxed) + bytes;
    if grown >= shared.options.snapshot_after
        && !shared.grown_signalled.swap(true, Ordering::Relaxed)
    {
        (shared.on_grown)();
    }
}
