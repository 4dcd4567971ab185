//! The memory limit (Redis's `maxmemory`): how much memory kvs uses, and what happens when a
//! write would take it over the limit — evict keys by the policy, or refuse the write with
//! Redis's `OOM` error.
//!
//! **What is counted.** The allocator's own figure: bytes jemalloc has handed out and not had
//! back (`stats.allocated`), the same thing Redis's `used_memory` counts. Reading it means asking
//! jemalloc to refresh its statistics, which takes about 20 µs, so it is read at most every
//! [`REFRESH_EVERY_MS`] ([`REFRESH_NEAR_LIMIT_MS`] near the limit), and whenever the keyspace
//! has grown or shrunk by [`REFRESH_AFTER`] since;
//! in between, the store's own running total of what its entries take (see
//! `kvs_store::Store::footprint`) carries the figure forward, so a burst of writes or evictions
//! shows at once. Like Redis, kvs leaves out what it holds for listeners (the change feed's
//! history, bounded by its own limit), just as Redis leaves out replica and AOF buffers.
//!
//! **When it is checked.** Before every command that may need memory (the `denyoom` flag of the
//! command table), on every door. Over the limit, that command first evicts up to
//! [`KEYS_PER_WRITE`] keys, so the work a write does is bounded; if the policy has nothing left to
//! evict (or is `noeviction`) the command is refused. A background task keeps evicting in small
//! batches whenever memory is over, so writes never queue behind one long sweep, and a lowered
//! limit takes effect without waiting for a write.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use kvs_store::Policy;
use kvs_store::{CommandError, Millis, Store};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, now_millis};

/// The allocator's figures are refreshed at least this often while a limit is set...
pub const REFRESH_EVERY_MS: u64 = 100;
/// ...and this often while memory is within [`NEAR_LIMIT`] of it. A refresh costs about 20 µs.
pub const REFRESH_NEAR_LIMIT_MS: u64 = 10;
/// ...and whenever the keyspace's own total moved by this much since the last refresh.
pub const REFRESH_AFTER: u64 = 4 << 20;
/// Within this much of the limit, the keyspace reports its footprint write by write.
const NEAR_LIMIT: u64 = 1 << 20;
/// Most keys one command evicts before it runs.
pub const KEYS_PER_WRITE: u64 = 64;
/// Most keys the background task evicts before it yields to requests.
const KEYS_PER_BATCH: u64 = 256;

/// `[memory]` in the configuration file, and the flags of the same names.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySettings {
    /// The memory limit in bytes; 0 (the default) means none. In the file, a number of bytes or
    /// text with Redis's units: `100mb`, `2gb`, `64m` (see [`parse_memory`]).
    #[serde(deserialize_with = "memory_amount")]
    pub maxmemory: u64,
    /// What to do at the limit: `noeviction` (the default: refuse writes that need memory) or
    /// an eviction policy, Redis's or `allkeys-s3fifo` (README, "kvs as a cache").
    #[serde(deserialize_with = "policy")]
    pub maxmemory_policy: Policy,
    /// Keys looked at per eviction step (Redis's `maxmemory-samples`, default 5).
    pub maxmemory_samples: usize,
    /// Hits it takes to raise a key's LFU counter (Redis's `lfu-log-factor`, default 10).
    pub lfu_log_factor: u32,
    /// Idle minutes per step of LFU counter decay (Redis's `lfu-decay-time`, default 1).
    pub lfu_decay_time: u32,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            maxmemory: 0,
            maxmemory_policy: Policy::NoEviction,
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

impl MemorySettings {
    /// Rejects values Redis would reject.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=i32::MAX as usize).contains(&self.maxmemory_samples) {
            return Err("maxmemory_samples must be from 1 to 2147483647".into());
        }
        if self.lfu_log_factor > i32::MAX as u32 || self.lfu_decay_time > i32::MAX as u32 {
            return Err("lfu_log_factor and lfu_decay_time must be at most 2147483647".into());
        }
        Ok(())
    }
}

fn memory_amount<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(b) => Ok(b),
        Raw::Text(t) => parse_memory(&t).map_err(serde::de::Error::custom),
    }
}

fn policy<'de, D: Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
    Policy::from_str(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// Reads an amount of memory as Redis does: a number of bytes, optionally followed by a unit,
/// in any case — `k`, `m`, `g` are powers of 1000, `kb`, `mb`, `gb` powers of 1024.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid amount of memory {text:?}: use e.g. 100mb or 2gb"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("invalid amount of memory {text:?}: use e.g. 100mb or 2gb"))
}

/// The allocator's figures at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes handed out to kvs and not yet given back. Blocks a thread keeps cached for its
    /// next allocations are not counted: jemalloc counts them as allocated, but they come and go
    /// with the threads' traffic, not with what kvs holds.
    pub allocated: u64,
    /// Bytes in pages the allocator keeps active (allocated plus fragmentation within them).
    pub active: u64,
    /// Bytes of physical memory the allocator's pages take.
    pub resident: u64,
}

/// jemalloc's statistics, refreshed. `None` if the allocator does not answer (it always does in
/// a kvs built as shipped, since kvs-server installs jemalloc).
pub fn allocator_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{Access, AsName, Mib, epoch, epoch_mib, stats};
    struct Mibs {
        epoch: epoch_mib,
        allocated: stats::allocated_mib,
        active: stats::active_mib,
        resident: stats::resident_mib,
        /// Bytes in every thread's cache, summed over all arenas (jemalloc's
        /// `MALLCTL_ARENAS_ALL` is 4096).
        cached: Mib<[usize; 4]>,
    }
    static MIBS: OnceLock<Option<Mibs>> = OnceLock::new();
    let mibs = MIBS
        .get_or_init(|| {
            Some(Mibs {
                epoch: epoch::mib().ok()?,
                allocated: stats::allocated::mib().ok()?,
                active: stats::active::mib().ok()?,
                resident: stats::resident::mib().ok()?,
                cached: b"stats.arenas.4096.tcache_bytes\0".name().mib().ok()?,
            })
        })
        .as_ref()?;
    mibs.epoch.advance().ok()?;
    let cached: usize = mibs.cached.read().ok()?;
    Some(AllocatorStats {
        allocated: (mibs.allocated.read().ok()?).saturating_sub(cached) as u64,
        active: mibs.active.read().ok()? as u64,
        resident: mibs.resident.read().ok()? as u64,
    })
}

/// Resident memory of the whole process in bytes (Linux), what `used_memory_rss` reports.
pub fn process_resident() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// The limit, the policy's parameters, and the running memory figure. One per engine.
#[derive(Debug)]
pub struct Memory {
    limit: AtomicU64,
    samples: AtomicUsize,
    /// What the allocator said at the last refresh, less what is not counted.
    counted_at_refresh: AtomicU64,
    /// The store's own total at the last refresh.
    footprint_at_refresh: AtomicU64,
    /// When the last refresh happened (Unix milliseconds).
    refreshed_at: AtomicU64,
    last: Mutex<AllocatorStats>,
    peak: AtomicU64,
    /// Commands refused for memory.
    rejected: AtomicU64,
    refreshing: Mutex<()>,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            limit: AtomicU64::new(0),
            samples: AtomicUsize::new(5),
            counted_at_refresh: AtomicU64::new(0),
            footprint_at_refresh: AtomicU64::new(0),
            refreshed_at: AtomicU64::new(0),
            last: Mutex::new(AllocatorStats::default()),
            peak: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            refreshing: Mutex::new(()),
        }
    }
}

impl Memory {
    /// Applies `settings` to this limit and to `store`'s policy.
    pub fn configure(&self, settings: &MemorySettings, store: &Store) {
        self.set_limit(settings.maxmemory);
        self.set_samples(settings.maxmemory_samples);
        store.tracking().set_policy(settings.maxmemory_policy);
        store.tracking().set_log_factor(settings.lfu_log_factor);
        store.tracking().set_decay_minutes(settings.lfu_decay_time);
    }

    /// The limit in bytes (0: none).
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the limit in bytes (0: none). Takes effect with the next write (and the background
    /// task within milliseconds).
    pub fn set_limit(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::Relaxed);
        // The next check refreshes: the figure may have been left alone while there was no limit.
        self.refreshed_at.store(0, Ordering::Relaxed);
    }

    /// Keys looked at per eviction step.
    pub fn samples(&self) -> usize {
        self.samples.load(Ordering::Relaxed)
    }

    /// Sets `maxmemory-samples`.
    pub fn set_samples(&self, samples: usize) {
        self.samples.store(samples.max(1), Ordering::Relaxed);
    }

    /// Commands refused because memory was over the limit.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The highest `used_memory` seen.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// The allocator's figures as of the last refresh.
    pub fn last(&self) -> AllocatorStats {
        *self.last.lock()
    }

    /// Asks the allocator for fresh figures now.
    pub fn refresh(&self, engine: &Engine) {
        let _only_one = self.refreshing.lock();
        self.refresh_locked(engine);
    }

    fn refresh_locked(&self, engine: &Engine) {
        let footprint = engine.store().footprint();
        let stats = allocator_stats().unwrap_or_else(|| AllocatorStats {
            // No allocator figures: the keyspace's own total is the best there is.
            allocated: footprint,
            active: footprint,
            resident: process_resident(),
        });
        let not_counted = engine.feed().history_bytes() as u64;
        self.counted_at_refresh.store(
            stats.allocated.saturating_sub(not_counted),
            Ordering::Relaxed,
        );
        self.footprint_at_refresh
            .store(footprint, Ordering::Relaxed);
        self.refreshed_at.store(now_millis(), Ordering::Relaxed);
        self.peak.fetch_max(stats.allocated, Ordering::Relaxed);
        *self.last.lock() = stats;
    }

    /// Refreshes if the figures are old or the keyspace moved a lot since; a caller that finds
    /// another refreshing goes on with the figures as they are.
    fn refresh_if_due(&self, engine: &Engine, now: Millis) {
        let moved = engine
            .store()
            .footprint()
            .abs_diff(self.footprint_at_refresh.load(Ordering::Relaxed));
        let age = now.saturating_sub(self.refreshed_at.load(Ordering::Relaxed));
        let every = if engine.store().tracking().precise() {
            REFRESH_NEAR_LIMIT_MS
        } else {
            REFRESH_EVERY_MS
        };
        if (age >= every || moved >= REFRESH_AFTER)
            && let Some(_only_one) = self.refreshing.try_lock()
        {
            self.refresh_locked(engine);
        }
    }

    /// The memory counted against the limit: the allocator's figure at the last refresh, carried
    /// forward by what the keyspace gained or lost since.
    pub fn used(&self, store: &Store) -> u64 {
        let base = self.counted_at_refresh.load(Ordering::Relaxed);
        let then = self.footprint_at_refresh.load(Ordering::Relaxed);
        let now = store.footprint();
        (base + now).saturating_sub(then)
    }

    /// Makes room for a command that may need memory: does nothing under the limit; over it,
    /// evicts a bounded number of keys by the policy. Refuses (Redis's OOM error) when the
    /// policy is `noeviction` or has nothing left to evict.
    pub fn admit(&self, engine: &Engine, now: Millis) -> Result<(), CommandError> {
        let limit = self.limit();
        if limit == 0 {
            return Ok(());
        }
        self.refresh_if_due(engine, now);
        let store = engine.store();
        let used = self.used(store);
        // Near the limit, the keyspace's total follows every write, not steps of a few KiB.
        store
            .tracking()
            .set_precise(used.saturating_add(NEAR_LIMIT) > limit);
        if used <= limit {
            return Ok(());
        }
        let done = store.evict(used - limit, KEYS_PER_WRITE, self.samples(), now);
        if done.exhausted && used.saturating_sub(done.bytes) > limit {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(CommandError::OutOfMemory);
        }
        Ok(())
    }

    /// Evicts in the background while memory is over the limit; returns whether it should be
    /// called again soon (it stopped at its batch bound, not because memory is under).
    fn evict_batch(&self, engine: &Engine) -> bool {
        let limit = self.limit();
        if limit == 0 {
            return false;
        }
        let store = engine.store();
        let used = self.used(store);
        if used <= limit {
            return false;
        }
        let done = store.evict(used - limit, KEYS_PER_BATCH, self.samples(), now_millis());
        !done.exhausted && done.keys == KEYS_PER_BATCH
    }
}

/// Every memory figure kvs reports, taken at one moment: `INFO memory`, `MEMORY STATS` and
/// `GET /admin/memory` all show this.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    /// Bytes the allocator has handed out (Redis's `used_memory`).
    pub used_memory: u64,
    /// The highest `used_memory` seen.
    pub used_memory_peak: u64,
    /// Resident memory of the whole process.
    pub used_memory_rss: u64,
    /// What counts against the limit: `used_memory` less what is not counted.
    pub used_memory_counted: u64,
    /// Not counted against the limit: the change feed's history.
    pub mem_not_counted_for_evict: u64,
    /// Bytes the keys and their entries take, by the store's own count.
    pub used_memory_dataset: u64,
    /// Bytes in the buffers of Redis-protocol clients, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_clients_normal: Option<u64>,
    /// The limit in bytes (0: none).
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    pub maxmemory_samples: usize,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    pub allocator_allocated: u64,
    pub allocator_active: u64,
    pub allocator_resident: u64,
    /// `used_memory_rss / used_memory`.
    pub mem_fragmentation_ratio: f64,
    /// Live keys.
    pub keys: u64,
    /// Keys evicted since the server started.
    pub evicted_keys: u64,
    /// Commands refused for memory since the server started.
    pub rejected_commands: u64,
}

impl Report {
    /// The figures of `engine` now (the allocator is asked afresh); `clients` is what the
    /// Redis-protocol clients' buffers hold, where the caller knows it.
    pub fn now(engine: &Engine, clients: Option<u64>) -> Report {
        let memory = engine.memory();
        memory.refresh(engine);
        let store = engine.store();
        let stats = memory.last();
        let rss = process_resident();
        let counted = memory.used(store);
        let tracking = store.tracking();
        Report {
            used_memory: stats.allocated,
            used_memory_peak: memory.peak().max(stats.allocated),
            used_memory_rss: rss,
            used_memory_counted: counted,
            mem_not_counted_for_evict: stats.allocated.saturating_sub(counted),
            used_memory_dataset: store.footprint_exact(),
            mem_clients_normal: clients,
            maxmemory: memory.limit(),
            maxmemory_policy: tracking.policy().name().to_owned(),
            maxmemory_samples: memory.samples(),
            lfu_log_factor: tracking.log_factor(),
            lfu_decay_time: tracking.decay_minutes(),
            allocator_allocated: stats.allocated,
            allocator_active: stats.active,
            allocator_resident: stats.resident,
            mem_fragmentation_ratio: if stats.allocated == 0 {
                0.0
            } else {
                rss as f64 / stats.allocated as f64
            },
            keys: store.len(now_millis()),
            evicted_keys: store.evicted_keys(),
            rejected_commands: memory.rejected(),
        }
    }
}

/// Keeps the figures fresh and memory under the limit, until `stop` is cancelled.
pub(crate) async fn watch(engine: Arc<Engine>, stop: CancellationToken) {
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let memory = engine.memory();
        let pause = if memory.limit() > 0 {
            Duration::from_millis(10)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(pause) => {}
        }
        if memory.limit() == 0 {
            engine.store().tracking().set_precise(false);
            memory.refresh(&engine);
            continue;
        }
        memory.refresh_if_due(&engine, now_millis());
        while memory.evict_batch(&engine) {
            if stop.is_cancelled() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// `used_memory_human` and its kin: Redis's short form with two decimals (`1.50M`).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    let units = [
        (1u64 << 50, 'P'),
        (1 << 40, 'T'),
        (1 << 30, 'G'),
        (1 << 20, 'M'),
        (1 << 10, 'K'),
    ];
    for (size, unit) in units {
        if bytes >= size {
            return format!("{:.2}{unit}", b / size as f64);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_of_memory_read_as_redis_reads_them() {
        assert_eq!(parse_memory("0"), Ok(0));
        assert_eq!(parse_memory("12345"), Ok(12345));
        assert_eq!(parse_memory("100mb"), Ok(100 << 20));
        assert_eq!(parse_memory("2GB"), Ok(2 << 30));
        assert_eq!(parse_memory("64m"), Ok(64_000_000));
        assert_eq!(parse_memory("1k"), Ok(1_000));
        assert_eq!(parse_memory("1kb"), Ok(1_024));
        assert!(parse_memory("ten").is_err());
        assert!(parse_memory("10tb").is_err());
        assert!(parse_memory("-1").is_err());
        assert!(parse_memory("99999999999999999999gb").is_err());
    }

    #[test]
    fn human_figures_match_redis() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1536), "1.50K");
        assert_eq!(human(64 << 20), "64.00M");
        assert_eq!(human(3 << 30), "3.00G");
    }

    #[test]
    fn the_allocator_answers() {
        let before = allocator_stats().expect("jemalloc statistics");
        let held: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 1 << 20]).collect();
        let after = allocator_stats().expect("jemalloc statistics");
        assert!(
            after.allocated >= before.allocated + (60 << 20),
            "64 MiB more allocated: {before:?} -> {after:?}"
        );
        assert!(after.resident >= after.allocated / 2);
        drop(held);
    }

    #[test]
    fn settings_come_from_the_file_with_units_and_policy_names() {
        let s: MemorySettings = toml::from_str(
            "maxmemory = \"64mb\"\nmaxmemory_policy = \"allkeys-lfu\"\nmaxmemory_samples = 10\n",
        )
        .expect("valid");
        assert_eq!(s.maxmemory, 64 << 20);
        assert_eq!(s.maxmemory_policy, Policy::AllKeysLfu);
        assert_eq!(s.maxmemory_samples, 10);
        let bytes: MemorySettings = toml::from_str("maxmemory = 1000").expect("valid");
        assert_eq!(bytes.maxmemory, 1000);
        let err = toml::from_str::<MemorySettings>("maxmemory_policy = \"lru\"")
            .expect_err("unknown policy");
        assert!(err.to_string().contains("allkeys-lru"), "{err}");
        assert!(toml::from_str::<MemorySettings>("maxmemory = \"lots\"").is_err());
    }
}
