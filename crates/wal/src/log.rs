//! The log with group commit.
//!
//! Writers on any thread [`Log::append`] a record (a memory copy under a short mutex) and get its
//! LSN. A writer that must not answer before its record is safe awaits [`Log::wait`], the commit
//! wait. One *leader* at a time takes everything queued, writes it with one call and, under
//! [`FsyncPolicy::Always`], fsyncs it; then it publishes how far the log is acknowledged and wakes
//! only the waiters that batch covers (a list ordered by LSN: no broadcast). Waiters that arrive
//! while a batch is being written register their waker with their LSN and join the next batch.
//!
//! Who leads is [`LogOptions::leader`]:
//! - [`Leader::LogThread`] (the default): a waiter asks the `kvs-log` thread for a batch, which
//!   costs one wake-up only when that thread is idle, and sleeps. The thread leads batch after
//!   batch while waiters keep asking, so the callers' threads never block on the disk: a thread
//!   serving many connections goes on answering reads and queueing writes during an fsync.
//! - [`Leader::Caller`]: the first waiter to find no batch being written leads, inline in its
//!   `poll`, with no thread hand-off at all; its thread is blocked for the write and the fsync, as
//!   redis-server's single thread is for its appendfsync. When it is done, the first waiter left
//!   uncovered is woken to lead the next batch. Measured slower for the server, whose connection
//!   threads each serve many clients (docs/benchmarks.md).
//!
//! The `kvs-log` thread also covers what no waiter asks for: records appended that nobody
//! waits for reach the file at most [`FLUSH_BOUND`] (10 ms) after they were queued, and under
//! [`FsyncPolicy::EverySecond`] it fsyncs at least once a second while anything written is not
//! synced. With nothing to do it sleeps without a deadline, so an idle log costs no CPU.
//!
//! Only one batch is written at a time (the leader role, apart from the append mutex, so appends
//! never wait for an fsync), and each takes the queue's whole prefix: records reach the file in
//! LSN order, which is the order of `append` calls. Whoever writes a batch also starts new
//! segments, when the current one is full or a snapshot asked for one. The first write or fsync
//! error fails the log: every waiter not yet covered gets [`LogFailed`], and so does every later
//! append. [`Log::close`] writes and syncs what is queued and seals the segment, so that recovery
//! knows the log ended cleanly (see `docs/wal-format.md`).

mod background;
mod commit;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::frame::{self, MARK_LEN};
use crate::header::{self, Kind};
use crate::storage::Storage;

pub use commit::Commit;
use commit::{Commits, Leading};
use writer::{Duty, Segment, Writer};

/// The longest a record appended with nobody waiting for it stays in memory before the
/// background thread writes it.
pub const FLUSH_BOUND: Duration = Duration::from_millis(10);

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
    /// Who writes and fsyncs a batch for the writers waiting on it.
    pub leader: Leader,
    /// A new segment starts once the current one holds this many bytes.
    pub segment_bytes: u64,
    /// The `on_grown` callback fires once the log has grown this much since the last snapshot.
    pub snapshot_after: u64,
}

/// Who writes and fsyncs a batch that commit waiters need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Leader {
    /// The `kvs-log` thread: a waiter asks it for a batch (one wake-up, only when it is idle)
    /// and sleeps until a batch covers its record. The callers' threads never block on the
    /// disk, so a thread that serves many connections goes on answering reads and queueing
    /// writes while an fsync runs. The default: measured faster in the server (see
    /// docs/benchmarks.md).
    #[default]
    LogThread,
    /// The first waiter, inline in its `poll`: no thread hand-off at all, but its thread is
    /// blocked for the write and the fsync.
    Caller,
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

/// How the background thread sleeps, so that whoever gives it earlier work knows to wake it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sleep {
    Awake,
    Until(Instant),
    Idle,
}

/// Records appended and not yet taken by a batch. Guarded by the append mutex.
struct Queue {
    /// [`MARK_LEN`] bytes kept free for a synced marker, then the framed records.
    buf: Vec<u8>,
    /// LSN of the first record in `buf`.
    first_lsn: u64,
    next_lsn: u64,
    /// Offsets in `buf` where a new segment must start, with its first LSN.
    rotations: Vec<(usize, u64)>,
    /// When the oldest record or rotation in the queue was queued.
    since: Option<Instant>,
    /// Under `everysec`: when written bytes that are not synced yet must be synced.
    sync_due: Option<Instant>,
    sleep: Sleep,
    /// A commit waiter asked the `kvs-log` thread for a batch ([`Leader::LogThread`]).
    wanted: bool,
    /// Why appends are refused: the log failed or is closing.
    refused: Option<LogFailed>,
}

impl Queue {
    /// Asks the `kvs-log` thread for a batch now; whether it must be woken for it.
    fn want(&mut self) -> bool {
        if self.wanted {
            return false;
        }
        self.wanted = true;
        self.due_at(Instant::now())
    }

    /// Notes that work is due at `due`; whether the background thread must be woken for it.
    fn due_at(&mut self, due: Instant) -> bool {
        let wake = match self.sleep {
            Sleep::Awake => false,
            Sleep::Until(at) => at > due,
            Sleep::Idle => true,
        };
        if wake {
            self.sleep = Sleep::Awake;
        }
        wake
    }

    /// Marks the queue as holding work since now, if it held none.
    fn queued(&mut self) -> bool {
        if self.since.is_some() {
            return false;
        }
        let now = Instant::now();
        self.since = Some(now);
        self.due_at(now + FLUSH_BOUND)
    }
}

/// A fresh queue buffer: room for a synced marker, then nothing.
fn empty_buffer(mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    buf.resize(MARK_LEN, 0);
    buf
}

type Hook = Box<dyn Fn() + Send + Sync>;
type AckHook = Box<dyn Fn(u64) + Send + Sync>;

struct Shared {
    storage: Arc<dyn Storage>,
    options: LogOptions,
    /// The append mutex, held for a memory copy.
    queue: Mutex<Queue>,
    /// Wakes the background thread (paired with `queue`).
    background: Condvar,
    /// The leader role and the waiters (see [`commit`]).
    commits: Mutex<Commits>,
    /// Wakes threads blocked until the leader role is free (paired with `commits`).
    released: Condvar,
    /// The open segment; locked only by the holder of the leader role, so never contended.
    writer: Mutex<Writer>,
    /// The LSN after the last record appended, readable without the append mutex.
    appended: AtomicU64,
    acknowledged: AtomicU64,
    synced: AtomicU64,
    failed: AtomicBool,
    since_snapshot: AtomicU64,
    grown_signalled: AtomicBool,
    on_grown: Hook,
    /// Told each new acknowledged LSN (see [`Log::on_acknowledged`]).
    on_acknowledged: OnceLock<AckHook>,
    /// The LSN the log was opened at, to count the records appended since.
    opened_lsn: u64,
    /// Record bytes written to segments, and fsyncs that made batches durable.
    written_bytes: AtomicU64,
    fsyncs: AtomicU64,
    /// Told how long each of those fsyncs took (see [`Log::on_fsync`]).
    on_fsync: OnceLock<FsyncHook>,
}

type FsyncHook = Box<dyn Fn(Duration) + Send + Sync>;

/// What the log has done since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records appended.
    pub records: u64,
    /// Bytes of records written to segments (framing included).
    pub bytes: u64,
    /// fsyncs that made a batch of records durable.
    pub fsyncs: u64,
}

/// The write-ahead log. Share it behind an `Arc`; dropping it closes it.
pub struct Log {
    shared: Arc<Shared>,
    background: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("options", &self.shared.options)
            .field("progress", &self.progress())
            .finish()
    }
}

impl Log {
    /// Opens the log for appending at `next_lsn` (from recovery), in a new segment. `log_bytes`
    /// is how much log the last snapshot does not cover yet; `on_grown` is called when that
    /// passes `options.snapshot_after`, from whichever thread wrote the batch (a commit waiter's
    /// or the background thread), so it must not block.
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
                buf: empty_buffer(Vec::new()),
                first_lsn: next_lsn,
                next_lsn,
                rotations: Vec::new(),
                since: None,
                sync_due: None,
                sleep: Sleep::Awake,
                wanted: false,
                refused: None,
            }),
            background: Condvar::new(),
            commits: Mutex::new(Commits::default()),
            released: Condvar::new(),
            writer: Mutex::new(Writer::new(segment, next_lsn)),
            appended: AtomicU64::new(next_lsn),
            acknowledged: AtomicU64::new(next_lsn),
            synced: AtomicU64::new(next_lsn),
            failed: AtomicBool::new(false),
            since_snapshot: AtomicU64::new(log_bytes),
            grown_signalled: AtomicBool::new(false),
            on_grown: Box::new(on_grown),
            on_acknowledged: OnceLock::new(),
            opened_lsn: next_lsn,
            written_bytes: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            on_fsync: OnceLock::new(),
        });
        let background = std::thread::Builder::new().name("kvs-log".into()).spawn({
            let shared = shared.clone();
            move || background::run(&shared)
        })?;
        Ok(Self {
            shared,
            background: Mutex::new(Some(background)),
        })
    }

    /// Queues `payload` as the next record and returns its LSN. Fails once the log has failed
    /// or is closing; the caller must then refuse the write it was recording.
    pub fn append(&self, payload: &[u8]) -> Result<u64, LogFailed> {
        self.append_with(payload, |_| {})
    }

    /// [`Log::append`], calling `sequenced` with the record's LSN while the append mutex is still
    /// held: calls made this way happen in LSN order, which lets a caller keep something in the
    /// log's own order (the change feed does). `sequenced` must be quick and must not touch the
    /// log. It is not called when the append fails.
    pub fn append_with(
        &self,
        payload: &[u8],
        sequenced: impl FnOnce(u64),
    ) -> Result<u64, LogFailed> {
        let mut queue = self.shared.queue.lock();
        if let Some(refused) = &queue.refused {
            return Err(refused.clone());
        }
        frame::encode(&mut queue.buf, payload);
        let lsn = queue.next_lsn;
        queue.next_lsn += 1;
        self.shared
            .appended
            .store(queue.next_lsn, Ordering::Release);
        sequenced(lsn);
        let wake = queue.queued();
        drop(queue);
        if wake {
            self.shared.background.notify_one();
        }
        Ok(lsn)
    }

    /// Runs `f` with the LSN the next record will get, holding the append mutex so that no
    /// record is appended meanwhile: everything `f` does comes between two records.
    pub fn sequenced<R>(&self, f: impl FnOnce(u64) -> R) -> R {
        let queue = self.shared.queue.lock();
        f(queue.next_lsn)
    }

    /// Calls `hook` with the new acknowledged LSN (every record below it is acknowledged) each
    /// time a batch advances it, from the thread that wrote the batch, before its waiters are
    /// woken. Calls from two batches may arrive out of order; keep the greatest. Set once;
    /// `false` if a hook was already set.
    pub fn on_acknowledged(&self, hook: impl Fn(u64) + Send + Sync + 'static) -> bool {
        self.shared.on_acknowledged.set(Box::new(hook)).is_ok()
    }

    /// Calls `hook` with the duration of each fsync that makes a batch durable, from the thread
    /// that ran it (so it must be quick). Set once; `false` if a hook was already set.
    pub fn on_fsync(&self, hook: impl Fn(Duration) + Send + Sync + 'static) -> bool {
        self.shared.on_fsync.set(Box::new(hook)).is_ok()
    }

    /// Records, bytes and fsyncs since the log was opened.
    pub fn counters(&self) -> Counters {
        let shared = &self.shared;
        Counters {
            records: shared
                .appended
                .load(Ordering::Acquire)
                .saturating_sub(shared.opened_lsn),
            bytes: shared.written_bytes.load(Ordering::Relaxed),
            fsyncs: shared.fsyncs.load(Ordering::Relaxed),
        }
    }

    /// The commit wait: resolves once record `lsn` is acknowledged under the fsync policy, or
    /// the log failed or closed before making it so. The caller may become the leader and write
    /// a batch on its own thread while polling it (see the module docs). Dropping it unresolved
    /// is safe: it leaves the waiters, and hands leadership on if it had been chosen to lead.
    pub fn wait(&self, lsn: u64) -> Commit<'_> {
        Commit::new(self, lsn)
    }

    /// How far the log has come.
    pub fn progress(&self) -> Progress {
        let shared = &self.shared;
        let failed = if shared.failed.load(Ordering::Acquire) {
            shared.commits.lock().failed.clone()
        } else {
            None
        };
        Progress {
            acknowledged: shared.acknowledged.load(Ordering::Acquire),
            synced: shared.synced.load(Ordering::Acquire),
            failed,
        }
    }

    /// The LSN the next record will get.
    pub fn next_lsn(&self) -> u64 {
        self.shared.appended.load(Ordering::Acquire)
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
        let wake = queue.queued();
        drop(queue);
        if wake {
            self.shared.background.notify_one();
        }
        lsn
    }

    /// Removes the segments whose records all come before `lsn`, the LSN a durable snapshot
    /// returned by [`Log::begin_snapshot`] resumes at. Every segment that starts before it holds
    /// only earlier records, because records from `lsn` on always go to the segment that starts
    /// at `lsn`, even if no batch has created it yet.
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

    /// Writes and syncs everything queued, seals the segment, and stops the background thread.
    /// Later appends fail; waits for records it wrote succeed. Blocks until done.
    pub fn close(&self) {
        {
            let mut queue = self.shared.queue.lock();
            if queue.refused.is_none() {
                queue.refused = Some(LogFailed("kvs is shutting down".into()));
            }
        }
        self.shared.background.notify_all();
        if let Some(background) = self.background.lock().take() {
            let _ = background.join();
        }
        let leading = Leading::acquire(&self.shared);
        let outcome = writer::lead(&self.shared, Duty::Close);
        leading.finish(outcome, true);
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}
