//! What the server counts about itself, for `INFO`, `SLOWLOG`, `LATENCY`, `/metrics` and the
//! console: per command (calls, time, failures, refusals, a latency histogram), per front door
//! (requests by class with their latency, connections), errors by code, cache hits and misses.
//!
//! Requests are counted without locks: each thread counts into a shard of its own (atomics no
//! other thread writes, in the common case), and readers add the shards up. Only what is rare
//! takes a lock: a new error code, a slow request, a snapshot for the console.

mod commands;
mod cpu;
mod histogram;
pub(crate) mod history;
pub(crate) mod monitor;
pub(crate) mod prometheus;
pub(crate) mod sampler;
pub(crate) mod slowlog;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use kvs_store::{Flag, Spec};
use parking_lot::Mutex;

pub(crate) use commands::{CommandCounts, Outcome};
pub(crate) use cpu::Cpu;
pub(crate) use histogram::{Counts, Histogram};

use commands::CommandIndex;
use slowlog::SlowLog;

/// The `[observability]` table of the configuration file (README, "Observing kvs").
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilitySettings {
    /// Serve the web console at `/ui/` on the HTTP door. Default true; `--no-ui`.
    pub ui: bool,
    /// Requests slower than this many microseconds go to the slow log (negative: none, 0:
    /// all). Default 10000, as Redis's `slowlog-log-slower-than`.
    pub slowlog_log_slower_than: i64,
    /// Entries the slow log keeps. Default 128, as Redis's `slowlog-max-len`.
    pub slowlog_max_len: usize,
}

impl Default for ObservabilitySettings {
    fn default() -> Self {
        Self {
            ui: true,
            slowlog_log_slower_than: slowlog::DEFAULT_SLOWER_THAN_US,
            slowlog_max_len: slowlog::DEFAULT_MAX_LEN,
        }
    }
}

/// A front door, as requests and connections are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Door {
    Http = 0,
    Resp = 1,
    Line = 2,
}

impl Door {
    pub(crate) const ALL: [Door; 3] = [Door::Http, Door::Resp, Door::Line];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Door::Http => "http",
            Door::Resp => "resp",
            Door::Line => "line",
        }
    }
}

/// What a request does, for latency by class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Read = 0,
    Write = 1,
    /// Connection, server and pub/sub commands: they touch no key.
    Other = 2,
}

impl Class {
    pub(crate) const ALL: [Class; 3] = [Class::Read, Class::Write, Class::Other];

    pub(crate) fn of(spec: &Spec) -> Class {
        if spec.has(Flag::Write) {
            Class::Write
        } else if spec.has(Flag::Readonly) {
            Class::Read
        } else {
            Class::Other
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Other => "other",
        }
    }
}

/// Connections of one door: counted at accept and close, never per request.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    pub(crate) open: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
}

/// Redis stops tracking new error codes past this many, so a client cannot grow the table.
const MAX_ERROR_CODES: usize = 128;

/// The counters one thread writes.
#[derive(Debug)]
struct Shard {
    commands: Box<[CommandCounts]>,
    /// Request latency by door and class.
    requests: [[Histogram; 3]; 3],
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

/// Everything counted, shared by every door.
#[derive(Debug)]
pub struct Stats {
    index: CommandIndex,
    shards: Box<[Shard]>,
    /// Error replies by their code (the first word: `ERR`, `WRONGTYPE`, ...).
    error_codes: Mutex<BTreeMap<String, u64>>,
    pub(crate) connections: [Connections; 3],
    pub(crate) slowlog: SlowLog,
    /// The log's fsync latency (recorded by the log's writer thread).
    pub(crate) fsync: Histogram,
    pub(crate) cpu: Cpu,
    /// One sample a second, for the console.
    pub(crate) history: history::History,
    /// A random id for this run of the server (INFO's `run_id`).
    pub(crate) run_id: String,
    /// Redis's `latency-tracking`: per-command latency histograms are kept.
    pub(crate) latency_tracking: std::sync::atomic::AtomicBool,
    /// Redis's `latency-tracking-info-percentiles`: what `latencystats` shows.
    pub(crate) percentiles: parking_lot::RwLock<Vec<f64>>,
    /// Connections running `MONITOR`.
    pub(crate) monitors: monitor::Monitors,
    /// Where [`Stats::clock_ms`] counts from.
    epoch: std::time::Instant,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

/// Which shard the calling thread counts into, chosen once per thread in turn. (A thread-local
/// only picks a slot; no data travels through it.)
fn shard_of_thread(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|mine| {
        let mut i = mine.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed);
            mine.set(i);
        }
        i % shards
    })
}

impl Stats {
    pub fn new() -> Self {
        let index = CommandIndex::new();
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (threads * 2).clamp(4, 64);
        Self {
            shards: (0..shards)
                .map(|_| Shard {
                    commands: (0..index.len()).map(|_| CommandCounts::default()).collect(),
                    requests: Default::default(),
                    hits: AtomicU64::new(0),
                    misses: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                })
                .collect(),
            index,
            error_codes: Mutex::new(BTreeMap::new()),
            connections: Default::default(),
            slowlog: SlowLog::default(),
            fsync: Histogram::default(),
            cpu: Cpu,
            history: history::History::default(),
            run_id: random_hex(),
            latency_tracking: std::sync::atomic::AtomicBool::new(true),
            percentiles: parking_lot::RwLock::new(vec![50.0, 99.0, 99.9]),
            monitors: monitor::Monitors::default(),
            epoch: std::time::Instant::now(),
        }
    }

    /// Milliseconds since the statistics began: a cheap, monotonic clock for idle times.
    pub(crate) fn clock_ms(&self) -> u64 {
        self.ms_at(std::time::Instant::now())
    }

    /// The same clock at `at` (an instant already taken, so no clock is read).
    pub(crate) fn ms_at(&self, at: std::time::Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The slot of the command `spec` describes, for [`Stats::command_name`]; `None` if unknown.
    pub(crate) fn slot(&self, spec: &Spec) -> Option<usize> {
        self.index.of(spec)
    }

    /// The name (`get`, `client|list`) of a slot.
    pub(crate) fn command_name(&self, slot: usize) -> Option<&'static str> {
        self.index.name(slot)
    }

    fn shard(&self) -> &Shard {
        &self.shards[shard_of_thread(self.shards.len())]
    }

    /// One run of the command in `slot` (see [`Stats::slot`]: a subcommand has its own), which
    /// took `took` when it ran.
    pub(crate) fn command_at(&self, slot: usize, took: Duration, outcome: Outcome) {
        if let Some(counts) = self.shard().commands.get(slot) {
            counts.record(took, outcome, self.latency_tracking.load(Ordering::Relaxed));
        }
    }

    /// One request through `door`, from its arrival to its answer being ready.
    pub(crate) fn request(&self, door: Door, class: Class, took: Duration) {
        self.shard().requests[door as usize][class as usize].record(nanos(took));
    }

    /// An error reply, counted by its code.
    pub(crate) fn error(&self, text: &str) {
        self.shard().errors.fetch_add(1, Ordering::Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR");
        let mut codes = self.error_codes.lock();
        if let Some(n) = codes.get_mut(code) {
            *n += 1;
        } else if codes.len() < MAX_ERROR_CODES {
            codes.insert(code.to_owned(), 1);
        }
    }

    /// Reads that found their key (`hit`) or did not.
    pub(crate) fn lookups(&self, hits: u64, misses: u64) {
        let shard = self.shard();
        if hits > 0 {
            shard.hits.fetch_add(hits, Ordering::Relaxed);
        }
        if misses > 0 {
            shard.misses.fetch_add(misses, Ordering::Relaxed);
        }
    }

    fn sum(&self, f: impl Fn(&Shard) -> u64) -> u64 {
        self.shards.iter().map(f).sum()
    }

    pub(crate) fn hits(&self) -> u64 {
        self.sum(|s| s.hits.load(Ordering::Relaxed))
    }

    pub(crate) fn misses(&self) -> u64 {
        self.sum(|s| s.misses.load(Ordering::Relaxed))
    }

    /// Error replies of every code.
    pub(crate) fn errors(&self) -> u64 {
        self.sum(|s| s.errors.load(Ordering::Relaxed))
    }

    pub(crate) fn error_codes(&self) -> BTreeMap<String, u64> {
        self.error_codes.lock().clone()
    }

    /// Every command that ran or was refused since the last reset, with its totals and latency.
    pub(crate) fn commands(&self) -> Vec<commands::Totals> {
        self.index
            .totals(self.shards.iter().map(|s| &s.commands[..]))
    }

    /// Requests through `door` of `class`: their latency, summed over threads.
    pub(crate) fn requests(&self, door: Door, class: Class) -> Counts {
        let mut counts = Counts::default();
        for shard in self.shards.iter() {
            shard.requests[door as usize][class as usize].add_to(&mut counts);
        }
        counts
    }

    /// Requests through `door`, every class.
    pub(crate) fn door_requests(&self, door: Door) -> u64 {
        Class::ALL
            .iter()
            .map(|c| self.requests(door, *c).count())
            .sum()
    }

    /// `CONFIG RESETSTAT`: counters back to zero (connections open stay as they are).
    pub(crate) fn reset(&self) {
        for shard in self.shards.iter() {
            for c in shard.commands.iter() {
                c.reset();
            }
            for h in shard.requests.iter().flatten() {
                h.reset();
            }
            shard.hits.store(0, Ordering::Relaxed);
            shard.misses.store(0, Ordering::Relaxed);
            shard.errors.store(0, Ordering::Relaxed);
        }
        self.error_codes.lock().clear();
        for door in &self.connections {
            door.accepted.store(0, Ordering::Relaxed);
            door.refused.store(0, Ordering::Relaxed);
        }
    }
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// 40 random hex digits, as Redis's run ids are.
fn random_hex() -> String {
    let mut bytes = [0u8; 20];
    if getrandom::fill(&mut bytes).is_err() {
        // Without the system's randomness, the clock still tells runs apart.
        bytes[..16].copy_from_slice(
            &std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
                .to_le_bytes(),
        );
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
