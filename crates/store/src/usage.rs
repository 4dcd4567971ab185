//! What the store knows about how each key is used, for choosing what to evict when memory runs
//! short: the eviction policies by Redis's names, the per-entry usage word that reads update, and
//! the memory each entry takes.
//!
//! Every stored entry carries one 64-bit usage word (see [`crate::packed`]), updated with relaxed
//! atomic stores under the shard's *read* lock, so tracking costs a read no lock and no wait:
//!
//! ```text
//! bits  0..32  last access, in hundredths of a second since the Unix epoch (wraps every 497 days)
//! bits 32..40  access frequency: Redis's logarithmic LFU counter (new keys start at 5)
//! bits 40..64  allkeys-s3fifo's state: bit 40 the queue (0 small, 1 main), bits 41-42 the
//!              frequency (0 to 3), bits 43-63 a ticket naming the key's place in its queue
//! ```
//!
//! The LFU counter follows Redis exactly (`lfu-log-factor`, `lfu-decay-time`), so `OBJECT FREQ`
//! answers what a Redis user expects. Updates racing on one word may lose an increment, as in
//! Redis; both are approximations by design.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, Ordering};

use crate::entry::Millis;

/// A new key's LFU counter (Redis's `LFU_INIT_VAL`): new keys get a chance to be hit before an
/// LFU policy evicts them.
pub const LFU_INIT_VAL: u8 = 5;

const TIME_MASK: u64 = 0xffff_ffff;
const COUNTER_SHIFT: u32 = 32;

/// How the store chooses keys to evict when over its memory limit: Redis's `maxmemory-policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Evict nothing: writes that need memory are refused.
    #[default]
    NoEviction,
    /// The least recently used keys, among all keys.
    AllKeysLru,
    /// The least frequently used keys, among all keys.
    AllKeysLfu,
    /// Random keys.
    AllKeysRandom,
    /// The least recently used keys among those with an expiry.
    VolatileLru,
    /// The least frequently used keys among those with an expiry.
    VolatileLfu,
    /// Random keys with an expiry.
    VolatileRandom,
    /// The keys with an expiry that expire soonest.
    VolatileTtl,
    /// S3-FIFO (SOSP 2023) among all keys: new keys pass through a small FIFO queue and only
    /// those read again while in it reach the main queue, so one pass over many cold keys cannot
    /// flush the keys in use (kvs's own; see `bench/cachesim`).
    AllKeysS3Fifo,
}

impl Policy {
    /// Every policy, in the order the documentation lists them.
    pub const ALL: &'static [Policy] = &[
        Policy::NoEviction,
        Policy::AllKeysLru,
        Policy::AllKeysLfu,
        Policy::AllKeysRandom,
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllKeysS3Fifo,
    ];

    /// The policy's name, as `CONFIG GET maxmemory-policy` answers it.
    pub fn name(self) -> &'static str {
        match self {
            Policy::NoEviction => "noeviction",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::AllKeysS3Fifo => "allkeys-s3fifo",
        }
    }

    /// Whether the policy counts access frequency (and `OBJECT FREQ` answers).
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// Whether the policy evicts only keys that have an expiry.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn tag(self) -> u8 {
        Policy::ALL.iter().position(|p| *p == self).unwrap_or(0) as u8
    }

    fn from_tag(tag: u8) -> Policy {
        Policy::ALL
            .get(usize::from(tag))
            .copied()
            .unwrap_or_default()
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;

    /// Parses a policy name, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Policy::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown maxmemory policy {s:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What every shard of one store shares: the eviction policy and its parameters, read on each
/// access, and the running total of the memory entries take. Cheap to read: relaxed atomics.
#[derive(Debug)]
pub struct Tracking {
    policy: AtomicU8,
    lfu: AtomicBool,
    log_factor: AtomicU32,
    decay_minutes: AtomicU32,
    /// Bytes all entries take, as far as shards have reported (each holds back a little, see
    /// [`crate::Shard`]).
    footprint: AtomicI64,
    /// Shards report every change at once (memory is near its limit and every byte counts).
    precise: AtomicBool,
    /// When collections leave their compact encodings: read on every collection write, so kept
    /// in atomics rather than behind a lock every writer would take.
    limits: [AtomicI64; 8],
}

/// The thresholds as the words [`Tracking`] keeps them in.
fn limits_words(l: crate::collection::Limits) -> [i64; 8] {
    let w = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    [
        w(l.hash_entries),
        w(l.hash_value),
        w(l.set_intset_entries),
        w(l.zset_entries),
        w(l.zset_value),
        l.list_size,
        w(l.stream_node_entries),
        w(l.stream_node_bytes),
    ]
}

impl Default for Tracking {
    fn default() -> Self {
        Self {
            policy: AtomicU8::new(Policy::NoEviction.tag()),
            lfu: AtomicBool::new(false),
            log_factor: AtomicU32::new(10),
            decay_minutes: AtomicU32::new(1),
            footprint: AtomicI64::new(0),
            precise: AtomicBool::new(false),
            limits: limits_words(crate::collection::Limits::default()).map(AtomicI64::new),
        }
    }
}

impl Tracking {
    /// When collections leave their compact encodings.
    pub fn limits(&self) -> crate::collection::Limits {
        let w = |i: usize| self.limits[i].load(Ordering::Relaxed);
        let n = |i: usize| usize::try_from(w(i)).unwrap_or(0);
        crate::collection::Limits {
            hash_entries: n(0),
            hash_value: n(1),
            set_intset_entries: n(2),
            zset_entries: n(3),
            zset_value: n(4),
            list_size: w(5),
            stream_node_entries: n(6),
            stream_node_bytes: n(7),
        }
    }

    /// Changes when collections leave their compact encodings (for later writes).
    pub fn set_limits(&self, limits: crate::collection::Limits) {
        for (slot, value) in self.limits.iter().zip(limits_words(limits)) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    /// The eviction policy in force.
    pub fn policy(&self) -> Policy {
        Policy::from_tag(self.policy.load(Ordering::Relaxed))
    }

    /// Changes the eviction policy. Switching between LRU and LFU takes a while to show in the
    /// keys' words, as in Redis: counters start counting from now.
    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(policy.tag(), Ordering::Relaxed);
        self.lfu.store(policy.is_lfu(), Ordering::Relaxed);
    }

    /// Whether reads count frequency (an LFU policy is in force).
    pub fn counts_frequency(&self) -> bool {
        self.lfu.load(Ordering::Relaxed)
    }

    /// Redis's `lfu-log-factor`: how many hits it takes to raise the counter (default 10).
    pub fn log_factor(&self) -> u32 {
        self.log_factor.load(Ordering::Relaxed)
    }

    /// Redis's `lfu-decay-time` in minutes: the counter drops by one per this many idle minutes
    /// (default 1; 0 never decays).
    pub fn decay_minutes(&self) -> u32 {
        self.decay_minutes.load(Ordering::Relaxed)
    }

    /// Sets `lfu-log-factor`.
    pub fn set_log_factor(&self, factor: u32) {
        self.log_factor.store(factor, Ordering::Relaxed);
    }

    /// Sets `lfu-decay-time`.
    pub fn set_decay_minutes(&self, minutes: u32) {
        self.decay_minutes.store(minutes, Ordering::Relaxed);
    }

    /// Bytes the entries take, give or take what shards have not reported yet.
    pub fn footprint(&self) -> u64 {
        self.footprint.load(Ordering::Relaxed).max(0) as u64
    }

    pub(crate) fn report(&self, delta: i64) {
        self.footprint.fetch_add(delta, Ordering::Relaxed);
    }

    /// Whether shards report every change to the footprint at once.
    pub fn precise(&self) -> bool {
        self.precise.load(Ordering::Relaxed)
    }

    /// Makes shards report every change at once (`true`: memory is near its limit) or in steps
    /// of a few kilobytes (`false`: cheaper, and the total may lag a little).
    pub fn set_precise(&self, precise: bool) {
        if self.precise.load(Ordering::Relaxed) != precise {
            self.precise.store(precise, Ordering::Relaxed);
        }
    }

    /// The word `word` becomes when its key is accessed at `now`.
    pub(crate) fn touched(&self, word: u64, now: Millis) -> u64 {
        let mut counter = counter(word);
        if self.counts_frequency() {
            counter = decayed(word, now, self.decay_minutes());
            counter = log_incr(counter, self.log_factor(), random_unit());
        }
        let mut kept = word & S3_MASK;
        if self.policy() == Policy::AllKeysS3Fifo {
            kept = s3_with_freq(kept, (s3_freq(kept) + 1).min(3));
        }
        with_counter(stamp(now), counter) | kept
    }
}

const S3_MAIN: u64 = 1 << 40;
const S3_FREQ_SHIFT: u32 = 41;
const S3_TICKET_SHIFT: u32 = 43;
/// The bits of a word that belong to allkeys-s3fifo.
const S3_MASK: u64 = !((1 << 40) - 1);
/// Tickets are 21 bits: they tell apart the keys of one shard that share a hash-table probe
/// group, a handful at most, and wrap after two million inserts into that shard.
pub(crate) const S3_TICKET_MASK: u32 = (1 << 21) - 1;

/// Whether the key is in allkeys-s3fifo's main queue (else its small one).
pub(crate) fn s3_in_main(word: u64) -> bool {
    word & S3_MAIN != 0
}

/// allkeys-s3fifo's frequency: reads since the key entered its queue, up to 3.
pub(crate) fn s3_freq(word: u64) -> u8 {
    ((word >> S3_FREQ_SHIFT) & 3) as u8
}

/// The ticket naming the key's place in its allkeys-s3fifo queue.
pub(crate) fn s3_ticket(word: u64) -> u32 {
    (word >> S3_TICKET_SHIFT) as u32 & S3_TICKET_MASK
}

fn s3_with_freq(word: u64, freq: u8) -> u64 {
    (word & !(3 << S3_FREQ_SHIFT)) | (u64::from(freq.min(3)) << S3_FREQ_SHIFT)
}

/// A new word for a key whose old entry had `old`: it keeps its place in allkeys-s3fifo's
/// queue (with no reads counted yet) and nothing else.
pub(crate) fn s3_carried(fresh: u64, old: u64) -> u64 {
    s3_with_freq((fresh & !S3_MASK) | (old & S3_MASK), 0)
}

/// `word` with its allkeys-s3fifo state set.
pub(crate) fn s3_with(word: u64, main: bool, freq: u8, ticket: u32) -> u64 {
    let base = word & !S3_MASK;
    let queue = if main { S3_MAIN } else { 0 };
    s3_with_freq(base | queue, freq) | (u64::from(ticket & S3_TICKET_MASK) << S3_TICKET_SHIFT)
}

/// The time part of a word for `now`.
fn stamp(now: Millis) -> u64 {
    (now / 10) & TIME_MASK
}

/// A new entry's word, last accessed at `now`.
pub(crate) fn fresh(now: Millis) -> u64 {
    with_counter(stamp(now), LFU_INIT_VAL)
}

fn with_counter(word: u64, counter: u8) -> u64 {
    (word & !(0xff << COUNTER_SHIFT)) | (u64::from(counter) << COUNTER_SHIFT)
}

/// The LFU counter as stored (before decay).
pub(crate) fn counter(word: u64) -> u8 {
    (word >> COUNTER_SHIFT) as u8
}

/// Milliseconds since the key was last accessed (to 10 ms; wraps after 497 days).
pub fn idle_millis(word: u64, now: Millis) -> u64 {
    (stamp(now).wrapping_sub(word & TIME_MASK) & TIME_MASK) * 10
}

/// The LFU counter after decay for the time the key has been idle (Redis's `LFUDecrAndReturn`).
pub fn decayed(word: u64, now: Millis, decay_minutes: u32) -> u8 {
    let counter = counter(word);
    if decay_minutes == 0 {
        return counter;
    }
    let periods = idle_millis(word, now) / 60_000 / u64::from(decay_minutes);
    counter.saturating_sub(periods.min(255) as u8)
}

/// Redis's `LFULogIncr`: the counter grows with probability `1 / ((counter - 5) * factor + 1)`,
/// so it takes about a million hits to saturate at the default factor. `unit` is uniform in
/// `[0, 1)`.
pub fn log_incr(counter: u8, factor: u32, unit: f64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(factor) + 1.0);
    if unit < p { counter + 1 } else { counter }
}

thread_local! {
    static RANDOM: Cell<u64> = Cell::new(seed());
}

/// A distinct starting state per thread, without a clock or the operating system.
fn seed() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) | 1
}

/// A fast, thread-local pseudo-random number (xorshift64*): for sampling and probabilistic
/// counters, never for anything secret.
pub(crate) fn random() -> u64 {
    RANDOM.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A pseudo-random number uniform in `[0, 1)`.
fn random_unit() -> f64 {
    (random() >> 11) as f64 / (1u64 << 53) as f64
}

/// What an allocation of `size` bytes really takes from the allocator: the size rounded up to its
/// size class (jemalloc's classes: 8, 16 and steps of 16 to 128, then four classes per doubling).
pub fn size_class(size: usize) -> usize {
    match size {
        0 => 0,
        1..=8 => 8,
        9..=128 => size.next_multiple_of(16),
        _ => {
            // Four classes between each power of two and the next.
            let pow = usize::BITS - 1 - (size - 1).leading_zeros();
            let step = 1usize << (pow - 2);
            size.next_multiple_of(step)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_their_names() {
        for p in Policy::ALL {
            assert_eq!(p.name().parse::<Policy>(), Ok(*p));
            assert_eq!(p.name().to_uppercase().parse::<Policy>(), Ok(*p));
            assert_eq!(Policy::from_tag(p.tag()), *p);
        }
        let err = "allkeys-mru".parse::<Policy>().expect_err("unknown");
        assert!(err.contains("volatile-ttl"), "{err}");
        assert!(Policy::VolatileTtl.volatile_only() && !Policy::AllKeysLfu.volatile_only());
        assert!(Policy::VolatileLfu.is_lfu() && !Policy::AllKeysLru.is_lfu());
    }

    #[test]
    fn idle_time_counts_from_the_last_access_across_the_wrap() {
        let t = 1_790_000_000_000;
        assert_eq!(idle_millis(fresh(t), t + 12_345), 12_340);
        assert_eq!(idle_millis(fresh(t), t), 0);
        // The time part wraps every 2^32 hundredths of a second; idle time does not notice.
        let wrap = (TIME_MASK + 1) * 10;
        let before = wrap * 3 - 1_000;
        assert_eq!(idle_millis(fresh(before), before + 5_000), 5_000);
    }

    #[test]
    fn the_lfu_counter_grows_logarithmically_and_decays_with_idle_minutes() {
        assert_eq!(log_incr(LFU_INIT_VAL, 10, 0.99), LFU_INIT_VAL + 1, "p = 1");
        assert_eq!(log_incr(6, 10, 0.5), 6, "p = 1/11");
        assert_eq!(log_incr(6, 10, 0.05), 7);
        assert_eq!(log_incr(255, 10, 0.0), 255);
        // A million hits at factor 10 take the counter near Redis's documented figure (255 at
        // about 1M hits, 2 minutes of them here), and far fewer leave it far lower.
        let tracking = Tracking::default();
        tracking.set_policy(Policy::AllKeysLfu);
        let now = 1_790_000_000_000;
        let mut word = fresh(now);
        for i in 0..100u64 {
            word = tracking.touched(word, now + i);
        }
        let after_100 = counter(word);
        assert!((9..=14).contains(&after_100), "100 hits: {after_100}");
        for i in 0..1_000_000u64 {
            word = tracking.touched(word, now + i / 10_000);
        }
        assert!(counter(word) >= 200, "a million hits: {}", counter(word));
        let c = counter(word);
        assert_eq!(
            decayed(word, now + 100 + 59_000, 1),
            c,
            "under a minute idle"
        );
        assert_eq!(decayed(word, now + 100 + 5 * 60_000 + 10, 1), c - 5);
        assert_eq!(
            decayed(word, now + 100 + 5 * 60_000 + 10, 0),
            c,
            "0: no decay"
        );
        // Without an LFU policy, reads only move the access time.
        tracking.set_policy(Policy::AllKeysLru);
        let moved = tracking.touched(fresh(now), now + 70);
        assert_eq!(counter(moved), LFU_INIT_VAL);
        assert_eq!(idle_millis(moved, now + 70), 0);
    }

    #[test]
    fn size_classes_match_jemalloc() {
        let cases = [
            (1, 8),
            (8, 8),
            (9, 16),
            (100, 112),
            (128, 128),
            (129, 160),
            (200, 224),
            (257, 320),
            (1000, 1024),
            (1025, 1280),
            (5000, 5120),
        ];
        for (size, class) in cases {
            assert_eq!(size_class(size), class, "{size}");
        }
    }
}
