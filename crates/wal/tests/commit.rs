//! Leader-based group commit: who writes a batch, who is woken, and what a failure, a dropped
//! waiter or a record nobody waits for does. A gated disk holds fsyncs so a test can keep a batch
//! in flight while it registers waiters.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::{Frame, Op, block_on, frames, open, open_with, options, rebuild, segments};
use kvs_wal::{
    FsyncPolicy, Leader, Log, LogFile, LogOptions, RecoveryOptions, SimulatedDisk, Storage,
};

/// Holds every fsync while closed, letting through one per permit.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    permits: usize,
    /// fsyncs held at the gate right now.
    held: usize,
}

impl Gate {
    fn pass(&self) {
        let mut state = self.state.lock().expect("gate");
        if !state.closed {
            return;
        }
        state.held += 1;
        self.changed.notify_all();
        while state.closed && state.permits == 0 {
            state = self.changed.wait(state).expect("gate");
        }
        if state.closed {
            state.permits -= 1;
        }
        state.held -= 1;
    }

    fn close(&self) {
        self.state.lock().expect("gate").closed = true;
    }

    fn open(&self) {
        self.state.lock().expect("gate").closed = false;
        self.changed.notify_all();
    }

    fn allow(&self, permits: usize) {
        self.state.lock().expect("gate").permits += permits;
        self.changed.notify_all();
    }

    /// Blocks until an fsync is held at the gate.
    fn until_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut state = self.state.lock().expect("gate");
        while state.held == 0 {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("an fsync reaches the gate");
            state = self.changed.wait_timeout(state, left).expect("gate").0;
        }
    }
}

#[derive(Clone, Debug)]
struct GatedDisk {
    disk: SimulatedDisk,
    gate: Arc<Gate>,
}

struct GatedFile {
    file: Box<dyn LogFile>,
    gate: Arc<Gate>,
}

impl LogFile for GatedFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.append(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.gate.pass();
        self.file.sync()
    }
}

impl Storage for GatedDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        self.disk.list()
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let file = self.disk.create(name)?;
        Ok(Box::new(GatedFile {
            file,
            gate: self.gate.clone(),
        }))
    }
    fn open(&self, name: &str) -> io::Result<(Box<dyn io::Read + Send>, u64)> {
        self.disk.open(name)
    }
    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.disk.truncate(name, len)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.disk.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.disk.remove(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.disk.sync_dir()
    }
    fn describe(&self, name: &str) -> String {
        self.disk.describe(name)
    }
}

/// A waker that counts its wakes and notes how far the log was acknowledged at each.
struct Probe {
    log: Arc<Log>,
    wakes: AtomicUsize,
    acknowledged_at_wake: Mutex<Vec<u64>>,
}

impl Probe {
    fn new(log: &Arc<Log>) -> Arc<Self> {
        Arc::new(Self {
            log: log.clone(),
            wakes: AtomicUsize::new(0),
            acknowledged_at_wake: Mutex::new(Vec::new()),
        })
    }

    fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<u64> {
        self.acknowledged_at_wake.lock().expect("probe").clone()
    }

    /// Blocks until woken at least `n` times.
    fn until_woken(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.wakes() < n {
            assert!(Instant::now() < deadline, "never woken");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let acknowledged = self.log.progress().acknowledged;
        self.acknowledged_at_wake
            .lock()
            .expect("probe")
            .push(acknowledged);
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F, probe: &Arc<Probe>) -> Poll<F::Output> {
    let waker = Waker::from(probe.clone());
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

fn put(i: u32) -> Vec<u8> {
    Op::Put((i % 6) as u8, i).encode()
}

/// A log on a gated disk with record 0 appended, and a thread whose wait for it is stuck in the
/// fsync of the batch holding it, whoever leads that batch.
fn batch_in_flight() -> (
    Arc<Log>,
    SimulatedDisk,
    Arc<Gate>,
    std::thread::JoinHandle<()>,
) {
    batch_in_flight_with(Leader::Caller)
}

/// [`batch_in_flight`] with the given leader: with the log thread, the fsync held at the gate is
/// the log thread's, and the waiting thread only sleeps.
fn batch_in_flight_with(
    leader: Leader,
) -> (
    Arc<Log>,
    SimulatedDisk,
    Arc<Gate>,
    std::thread::JoinHandle<()>,
) {
    let disk = SimulatedDisk::new();
    let gate = Arc::new(Gate::default());
    let storage = GatedDisk {
        disk: disk.clone(),
        gate: gate.clone(),
    };
    let log = Arc::new(open_with(Arc::new(storage), 0, FsyncPolicy::Always, leader));
    assert_eq!(log.append(&put(0)), Ok(0));
    gate.close();
    let first = std::thread::spawn({
        let log = log.clone();
        move || {
            let _ = block_on(log.wait(0));
        }
    });
    gate.until_held();
    (log, disk, gate, first)
}

#[test]
fn many_concurrent_waiters_all_complete() {
    for leader in [Leader::Caller, Leader::LogThread] {
        many_concurrent_waiters_all_complete_with(leader);
    }
}

fn many_concurrent_waiters_all_complete_with(leader: Leader) {
    let disk = SimulatedDisk::new();
    let log = Arc::new(open_with(
        Arc::new(disk.clone()),
        0,
        FsyncPolicy::Always,
        leader,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("runtime");
    let (tasks, writes) = (64u32, 50u32);
    runtime.block_on(async {
        let mut handles = Vec::new();
        for task in 0..tasks {
            let log = log.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..writes {
                    let lsn = log.append(&put(task * writes + i)).expect("append");
                    log.wait(lsn).await.expect("committed");
                    let progress = log.progress();
                    assert!(progress.acknowledged > lsn, "{progress:?} for {lsn}");
                    assert!(progress.synced > lsn, "{progress:?} for {lsn}");
                }
            }));
        }
        for handle in handles {
            handle.await.expect("task");
        }
    });
    let total = u64::from(tasks * writes);
    assert_eq!(log.progress().acknowledged, total);
    let disk = disk.crash(9);
    drop(log);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(recovered.next_lsn, total);
    assert_eq!(rebuilt.lsns, (0..total).collect::<Vec<_>>());
}

#[test]
fn only_covered_waiters_are_woken_and_the_first_uncovered_leads_next() {
    let (log, _disk, gate, first) = batch_in_flight();
    assert_eq!(log.append(&put(1)), Ok(1));
    assert_eq!(log.append(&put(2)), Ok(2));
    let probes = [Probe::new(&log), Probe::new(&log), Probe::new(&log)];
    let mut waits = [log.wait(0), log.wait(1), log.wait(2)];
    for (wait, probe) in waits.iter_mut().zip(&probes) {
        assert!(poll_once(wait, probe).is_pending(), "a batch is in flight");
    }
    gate.allow(1);
    first.join().expect("first waiter");
    probes[0].until_woken(1);
    probes[1].until_woken(1);
    // Record 0's batch covered the first waiter; the second is woken to lead the next batch;
    // the third is left asleep until a batch covers it.
    assert!(
        probes[0].seen().iter().all(|&a| a > 0),
        "{:?}",
        probes[0].seen()
    );
    assert_eq!(probes[1].wakes(), 1);
    assert_eq!(probes[2].wakes(), 0);
    gate.open();
    let [zero, one, two] = waits;
    assert_eq!(block_on(zero), Ok(()));
    assert_eq!(block_on(one), Ok(()));
    assert_eq!(block_on(two), Ok(()));
    assert!(
        probes[2].seen().iter().all(|&a| a > 2),
        "{:?}",
        probes[2].seen()
    );
}

#[test]
fn a_dropped_leader_elect_does_not_strand_the_others() {
    let (log, _disk, gate, first) = batch_in_flight();
    let probes = [Probe::new(&log), Probe::new(&log), Probe::new(&log)];
    let mut waits = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let lsn = log.append(&put(i as u32 + 1)).expect("append");
        let mut wait = Box::pin(log.wait(lsn));
        assert!(poll_once(&mut wait, probe).is_pending());
        waits.push(wait);
    }
    gate.allow(1);
    first.join().expect("first waiter");
    probes[0].until_woken(1);
    assert_eq!((probes[1].wakes(), probes[2].wakes()), (0, 0));
    // The elect goes away without ever polling again: leadership passes to the next waiter.
    drop(waits.remove(0));
    probes[1].until_woken(1);
    assert_eq!(probes[2].wakes(), 0);
    gate.open();
    for wait in waits {
        assert_eq!(block_on(wait), Ok(()));
    }
    assert_eq!(log.progress().acknowledged, 4);
}

#[test]
fn a_failing_disk_fails_every_uncovered_waiter() {
    for leader in [Leader::Caller, Leader::LogThread] {
        a_failing_disk_fails_every_uncovered_waiter_with(leader);
    }
}

fn a_failing_disk_fails_every_uncovered_waiter_with(leader: Leader) {
    let (log, disk, gate, first) = batch_in_flight_with(leader);
    let probes = [Probe::new(&log), Probe::new(&log)];
    let mut waits = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let lsn = log.append(&put(i as u32 + 1)).expect("append");
        let mut wait = Box::pin(log.wait(lsn));
        assert!(poll_once(&mut wait, probe).is_pending());
        waits.push(wait);
    }
    let mut zero = Box::pin(log.wait(0));
    let zero_probe = Probe::new(&log);
    assert!(poll_once(&mut zero, &zero_probe).is_pending());
    disk.fail_writes(Some("No space left on device"));
    gate.open();
    first.join().expect("first waiter");
    for wait in waits.into_iter().chain([zero]) {
        let failed = block_on(wait).expect_err("not durable");
        assert!(failed.0.contains("No space left"), "{failed}");
    }
    let progress = log.progress();
    assert_eq!(progress.acknowledged, 0);
    assert!(progress.failed.is_some(), "{progress:?}");
    assert!(log.append(&put(9)).is_err(), "later appends fail");
}

/// With the log thread leading, a waiter's poll never blocks on the disk, however long an fsync
/// takes; each batch wakes only the waiters it covers, and nobody is woken to lead.
#[test]
fn with_the_log_thread_waiters_never_block_and_only_covered_ones_wake() {
    let (log, _disk, gate, first) = batch_in_flight_with(Leader::LogThread);
    assert_eq!(log.append(&put(1)), Ok(1));
    assert_eq!(log.append(&put(2)), Ok(2));
    let probes = [Probe::new(&log), Probe::new(&log), Probe::new(&log)];
    let mut waits = [log.wait(0), log.wait(1), log.wait(2)];
    let started = Instant::now();
    for (wait, probe) in waits.iter_mut().zip(&probes) {
        assert!(poll_once(wait, probe).is_pending(), "the fsync is held");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a poll waited for the held fsync"
    );
    // Record 0's batch ends: it covered waiter 0 only. The log thread takes 1 and 2 at once and
    // is held again; waiters 1 and 2 stay asleep meanwhile.
    gate.allow(1);
    first.join().expect("first waiter");
    probes[0].until_woken(1);
    gate.until_held();
    assert_eq!((probes[1].wakes(), probes[2].wakes()), (0, 0));
    gate.open();
    let [zero, one, two] = waits;
    assert_eq!(block_on(zero), Ok(()));
    assert_eq!(block_on(one), Ok(()));
    assert_eq!(block_on(two), Ok(()));
    // Each was woken at most once, by the batch that covered it (the final polls here use
    // another waker, so a probe may also not be woken at all).
    assert!(probes[1].wakes() <= 1 && probes[2].wakes() <= 1);
    assert_eq!(log.progress().acknowledged, 3);
}

#[test]
fn records_nobody_waits_for_reach_the_file() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::Never] {
        let disk = SimulatedDisk::new();
        let log = open(Arc::new(disk.clone()), 0, policy);
        for i in 0..5 {
            log.append(&put(i)).expect("append");
        }
        let started = Instant::now();
        while log.progress().acknowledged < 5 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{policy}: never written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let name = segments(&disk).pop().expect("a segment");
        let written = frames(&disk.contents(&name).expect("segment"));
        let records = written
            .iter()
            .filter(|f| matches!(f, Frame::Record { .. }))
            .count();
        assert_eq!(records, 5, "{policy}: {written:?}");
        if policy == FsyncPolicy::Always {
            assert_eq!(log.progress().synced, 5);
        }
        eprintln!("{policy}: written after {:?}", started.elapsed());
    }
}

#[test]
fn everysec_syncs_what_was_acknowledged_within_about_a_second() {
    let disk = SimulatedDisk::new();
    let log = open(Arc::new(disk.clone()), 0, FsyncPolicy::EverySecond);
    let lsn = log.append(&put(1)).expect("append");
    block_on(log.wait(lsn)).expect("written");
    let started = Instant::now();
    while log.progress().synced <= lsn {
        assert!(started.elapsed() < Duration::from_secs(10), "never synced");
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("synced after {:?}", started.elapsed());
    let disk = disk.crash(3);
    drop(log);
    let (_, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(recovered.next_lsn, 1);
}

#[test]
fn close_writes_what_is_queued_and_seals_the_segment() {
    let disk = SimulatedDisk::new();
    let log = open(Arc::new(disk.clone()), 0, FsyncPolicy::Never);
    for i in 0..3 {
        log.append(&put(i)).expect("append");
    }
    log.close();
    assert!(log.append(&put(3)).is_err(), "appends after close fail");
    assert_eq!(block_on(log.wait(2)), Ok(()));
    assert!(block_on(log.wait(3)).is_err(), "a record never appended");
    let name = segments(&disk).pop().expect("a segment");
    let written = frames(&disk.contents(&name).expect("segment"));
    assert!(
        matches!(written.last(), Some(Frame::Seal { end: 3, .. })),
        "{written:?}"
    );
    // A power cut after close loses nothing: close synced everything, seal included.
    let disk = disk.crash(4);
    drop(log);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!((recovered.next_lsn, rebuilt.lsns), (3, vec![0, 1, 2]));
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
}

#[test]
fn a_snapshot_rotation_with_no_writer_happens_anyway() {
    let disk = SimulatedDisk::new();
    let log = Log::open(
        Arc::new(disk.clone()),
        0,
        0,
        LogOptions {
            snapshot_after: 1,
            ..options(FsyncPolicy::Always)
        },
        || {},
    )
    .expect("log opens");
    log.append(&put(0)).expect("append");
    let lsn = log.begin_snapshot();
    let started = Instant::now();
    while segments(&disk).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "never rotated");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(segments(&disk).pop(), Some(kvs_wal::segment_name(lsn)));
}

/// `append_with` runs its closure in LSN order even with appenders on many threads, and the
/// acknowledged hook hears every advance, up to the last record, never past what was appended.
#[test]
fn sequenced_calls_come_in_lsn_order_and_the_hook_hears_each_advance() {
    let disk = SimulatedDisk::new();
    let log = Arc::new(open_with(
        Arc::new(disk),
        5,
        FsyncPolicy::Always,
        Leader::LogThread,
    ));
    let heard = Arc::new(Mutex::new(Vec::new()));
    assert!(log.on_acknowledged({
        let heard = heard.clone();
        move |acknowledged| heard.lock().expect("heard").push(acknowledged)
    }));
    assert!(!log.on_acknowledged(|_| {}), "set once");
    assert_eq!(log.sequenced(|next| next), 5);
    let order = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let (log, order) = (log.clone(), order.clone());
            std::thread::spawn(move || {
                for i in 0..100 {
                    let lsn = log
                        .append_with(&put(t * 100 + i), |lsn| {
                            order.lock().expect("order").push(lsn)
                        })
                        .expect("append");
                    if i % 10 == 9 {
                        block_on(log.wait(lsn)).expect("committed");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("appender");
    }
    let last = log.next_lsn() - 1;
    block_on(log.wait(last)).expect("committed");
    assert_eq!(
        *order.lock().expect("order"),
        (5..=last).collect::<Vec<_>>()
    );
    // A wait that starts after its batch finished returns at once, possibly just before that
    // batch's thread calls the hook: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while heard.lock().expect("heard").iter().max() != Some(&(last + 1)) {
        assert!(
            Instant::now() < deadline,
            "the last advance was never heard"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let heard = heard.lock().expect("heard").clone();
    assert!(heard.iter().all(|&a| a > 5 && a <= last + 1), "{heard:?}");
}
