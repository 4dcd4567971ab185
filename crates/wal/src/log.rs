//! The log with group commit. Writers on any thread [`Log::append`] a record (a memory copy under
//! a short mutex) and get its LSN; one flusher thread takes everything queued, writes it with one
//! call, fsyncs it according to the [`FsyncPolicy`], and publishes how far the log is
//! acknowledged. A writer that must not answer before its record is safe awaits
//! [`Log::wait`]. fsync only ever runs on the flusher thread, never on an async worker.
//!
//! Records reach the file in LSN order, which is the order of `append` calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::frame;
use crate::header::{self, Kind};
use crate::storage::{LogFile, Storage};

/// When the log makes written records durable, and so when a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync every batch; acknowledge a record once the fsync covering it returned.
    Always,
    /// Acknowledge once written to the operating system; fsync at least once a second.
    EverySecond,
    /// Acknowledge once written to the operating system; the OS decides when to flush.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "everysec" => Ok(Self::EverySecond),
            "no" => Ok(Self::Never),
            other => Err(format!(
                "unknown fsync policy {other:?}: use always, everysec or no"
            )),
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Always => "always",
            Self::EverySecond => "everysec",
            Self::Never => "no",
        })
    }
}

/// How the log behaves.
#[derive(Clone, Debug)]
pub struct LogOptions {
    pub fsync: FsyncPolicy,
    /// A new segment starts once the current one holds this many bytes.
    pub segment_bytes: u64,
    /// The `on_grown` callback fires once the log has grown this much since the last snapshot.
    pub snapshot_after: u64,
}

/// The log can no longer be written: every later append fails with this, and so does every wait
/// for a record it did not make durable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogFailed(pub Arc<str>);

/// How far the log has come.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every record with a smaller LSN is acknowledged under the fsync policy.
    pub acknowledged: u64,
    /// Every record with a smaller LSN is durable (fsynced).
    pub synced: u64,
    pub failed: Option<LogFailed>,
}

struct Queue {
    buf: Vec<u8>,
    /// LSN of the first record in `buf`.
    first_lsn: u64,
    next_lsn: u64,
    /// Offsets in `buf` where a new segment must start, with its first LSN.
    rotations: Vec<(usize, u64)>,
    closing: bool,
    failed: Option<LogFailed>,
}

type Hook = Box<dyn Fn() + Send + Sync>;

struct Shared {
    storage: Arc<dyn Storage>,
    options: LogOptions,
    queue: Mutex<Queue>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
    since_snapshot: AtomicU64,
    grown_signalled: AtomicBool,
    on_grown: Hook,
}

/// The write-ahead log. Share it behind an `Arc`; dropping it flushes and stops the flusher.
pub struct Log {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("options", &self.shared.options)
            .field("progress", &*self.shared.progress.borrow())
            .finish()
    }
}

/// The segment being appended to.
struct Segment {
    file: Box<dyn LogFile>,
    bytes: u64,
}

impl Segment {
    /// Creates the segment starting at `lsn` and makes its header and its name durable.
    fn create(storage: &dyn Storage, lsn: u64) -> std::io::Result<Self> {
        let mut file = storage.create(&header::segment_name(lsn))?;
        let head = header::encode(Kind::Segment, lsn);
        file.append(&head)?;
        file.sync()?;
        storage.sync_dir()?;
        Ok(Self {
            file,
            bytes: head.len() as u64,
        })
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if !bytes.is_empty() {
            self.file.append(bytes)?;
            self.bytes += bytes.len() as u64;
        }
        Ok(())
    }
}

impl Log {
    /// Opens the log for appending at `next_lsn` (from recovery), in a new segment. `log_bytes`
    /// is how much log the last snapshot does not cover yet; `on_grown` is called (from the
    /// flusher thread, so it must not block) when that passes `options.snapshot_after`.
    pub fn open(
        storage: Arc<dyn Storage>,
        next_lsn: u64,
        log_bytes: u64,
        options: LogOptions,
        on_grown: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let segment = Segment::create(&*storage, next_lsn)?;
        let shared = Arc::new(Shared {
            storage,
            options,
            queue: Mutex::new(Queue {
                buf: Vec::new(),
                first_lsn: next_lsn,
                next_lsn,
                rotations: Vec::new(),
                closing: false,
                failed: None,
            }),
            wake: Condvar::new(),
            progress: watch::Sender::new(Progress {
                acknowledged: next_lsn,
                synced: next_lsn,
                failed: None,
            }),
            since_snapshot: AtomicU64::new(log_bytes),
            grown_signalled: AtomicBool::new(false),
            on_grown: Box::new(on_grown),
        });
        let flusher = std::thread::Builder::new().name("kvs-log".into()).spawn({
            let shared = shared.clone();
            move || flush_loop(&shared, segment)
        })?;
        Ok(Self {
            shared,
            flusher: Mutex::new(Some(flusher)),
        })
    }

    /// Queues `payload` as the next record and returns its LSN. Fails once the log has failed
    /// or is closing; the caller must then refuse the write it was recording.
    pub fn append(&self, payload: &[u8]) -> Result<u64, LogFailed> {
        let mut queue = self.shared.queue.lock();
        if let Some(failed) = &queue.failed {
            return Err(failed.clone());
        }
        let was_empty = queue.buf.is_empty();
        frame::encode(&mut queue.buf, payload);
        let lsn = queue.next_lsn;
        queue.next_lsn += 1;
        drop(queue);
        if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(lsn)
    }

    /// Resolves once record `lsn` is acknowledged under the fsync policy, or the log failed
    /// before making it so.
    pub async fn wait(&self, lsn: u64) -> Result<(), LogFailed> {
        let mut progress = self.shared.progress.subscribe();
        let result = progress
            .wait_for(|p| p.acknowledged > lsn || p.failed.is_some())
            .await;
        match result {
            Ok(p) if p.acknowledged > lsn => Ok(()),
            Ok(p) => Err(p
                .failed
                .clone()
                .unwrap_or_else(|| LogFailed("log stopped".into()))),
            Err(_) => Err(LogFailed("log stopped".into())),
        }
    }

    /// How far the log has come.
    pub fn progress(&self) -> Progress {
        self.shared.progress.borrow().clone()
    }

    /// The LSN the next record will get.
    pub fn next_lsn(&self) -> u64 {
        self.shared.queue.lock().next_lsn
    }

    /// Bytes written to the log since the last snapshot began.
    pub fn bytes_since_snapshot(&self) -> u64 {
        self.shared.since_snapshot.load(Ordering::Relaxed)
    }

    /// The fsync policy in force.
    pub fn policy(&self) -> FsyncPolicy {
        self.shared.options.fsync
    }

    /// The storage the log lives in, for snapshots.
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.shared.storage.clone()
    }

    /// Marks the start of a snapshot: returns the LSN from which replay must resume after it and
    /// starts a new segment at that LSN, so the segments before it can be removed once the
    /// snapshot is durable. Everything applied before this call must be in the snapshot.
    pub fn begin_snapshot(&self) -> u64 {
        let mut queue = self.shared.queue.lock();
        let lsn = queue.next_lsn;
        let offset = queue.buf.len();
        queue.rotations.push((offset, lsn));
        self.shared.since_snapshot.store(0, Ordering::Relaxed);
        self.shared.grown_signalled.store(false, Ordering::Relaxed);
        drop(queue);
        self.shared.wake.notify_one();
        lsn
    }

    /// Removes the segments whose records all come before `lsn`, the LSN a durable snapshot
    /// returned by [`Log::begin_snapshot`] resumes at. Every segment that starts before it holds
    /// only earlier records, because records from `lsn` on always go to the segment that starts
    /// at `lsn`, even if the flusher has not created it yet.
    pub fn remove_covered(&self, lsn: u64) -> std::io::Result<()> {
        let storage = &self.shared.storage;
        let mut removed = false;
        for name in storage.list()? {
            if let Some((Kind::Segment, first)) = header::parse_name(&name)
                && first < lsn
            {
                storage.remove(&name)?;
                removed = true;
            }
        }
        if removed {
            storage.sync_dir()?;
        }
        Ok(())
    }

    /// Writes and syncs everything queued, then stops the flusher. Later appends fail.
    pub fn close(&self) {
        self.shared.queue.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(flusher) = self.flusher.lock().take() {
            let _ = flusher.join();
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}

/// One batch taken from the queue.
struct Batch {
    bytes: Vec<u8>,
    first_lsn: u64,
    end_lsn: u64,
    rotations: Vec<(usize, u64)>,
    closing: bool,
}

fn flush_loop(shared: &Shared, mut segment: Segment) {
    let policy = shared.options.fsync;
    let mut spare = Vec::new();
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    loop {
        let batch = {
            let mut queue = shared.queue.lock();
            loop {
                if !queue.buf.is_empty() || !queue.rotations.is_empty() || queue.closing {
                    break;
                }
                if unsynced && policy == FsyncPolicy::EverySecond {
                    let due = last_sync + Duration::from_secs(1);
                    if Instant::now() >= due {
                        break;
                    }
                    shared.wake.wait_until(&mut queue, due);
                } else {
                    shared.wake.wait(&mut queue);
                }
            }
            let bytes = std::mem::replace(&mut queue.buf, std::mem::take(&mut spare));
            let batch = Batch {
                bytes,
                first_lsn: queue.first_lsn,
                end_lsn: queue.next_lsn,
                rotations: std::mem::take(&mut queue.rotations),
                closing: queue.closing,
            };
            queue.first_lsn = queue.next_lsn;
            if queue.closing {
                queue.failed = Some(LogFailed("kvs is shutting down".into()));
            }
            batch
        };
        let result = write_batch(shared, &mut segment, &batch);
        let sync_now = batch.closing
            || match policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::EverySecond => last_sync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::Never => false,
            };
        let result = result.and_then(|()| {
            if sync_now && (unsynced || !batch.bytes.is_empty()) {
                segment.file.sync()?;
            }
            Ok(())
        });
        if let Err(e) = result {
            let failed = LogFailed(format!("writing the log failed: {e}").into());
            tracing::error!("{failed}; kvs refuses writes from now on and keeps serving reads");
            shared.queue.lock().failed = Some(failed.clone());
            shared.progress.send_modify(|p| p.failed = Some(failed));
            return;
        }
        if sync_now {
            last_sync = Instant::now();
            unsynced = false;
        } else if !batch.bytes.is_empty() {
            unsynced = true;
        }
        shared.progress.send_modify(|p| {
            p.acknowledged = batch.end_lsn;
            if sync_now {
                p.synced = batch.end_lsn;
            }
        });
        let grown = shared
            .since_snapshot
            .fetch_add(batch.bytes.len() as u64, Ordering::Relaxed)
            + batch.bytes.len() as u64;
        if grown >= shared.options.snapshot_after
            && !shared.grown_signalled.swap(true, Ordering::Relaxed)
        {
            (shared.on_grown)();
        }
        if batch.closing {
            return;
        }
        spare = batch.bytes;
        spare.clear();
        if spare.capacity() > 16 << 20 {
            spare = Vec::new();
        }
    }
}

fn write_batch(shared: &Shared, segment: &mut Segment, batch: &Batch) -> std::io::Result<()> {
    let storage = &*shared.storage;
    let mut from = 0;
    for &(offset, lsn) in &batch.rotations {
        segment.append(&batch.bytes[from..offset])?;
        from = offset;
        segment.file.sync()?;
        *segment = Segment::create(storage, lsn)?;
    }
    if from == 0
        && batch.rotations.is_empty()
        && !batch.bytes.is_empty()
        && segment.bytes >= shared.options.segment_bytes
    {
        segment.file.sync()?;
        *segment = Segment::create(storage, batch.first_lsn)?;
    }
    segment.append(&batch.bytes[from..])
}
