//! A latency histogram that threads record into without a lock: one atomic counter per bucket,
//! buckets a power of two wide split into eight, so any value lands within 12.5% of its bucket's
//! lower bound. Durations are recorded in nanoseconds, from 1 ns to about 18 minutes (longer ones
//! count in the last bucket).
//!
//! Every power of two is a bucket boundary, which gives Redis's `LATENCY HISTOGRAM` (power-of-two
//! buckets from 1024 ns) and the Prometheus buckets exactly, and `latencystats`' percentiles to
//! within a bucket.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two (as a shift).
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// The largest power of two with buckets of its own: 2^40 ns is about 18 minutes.
const TOP_BIT: u32 = 40;
/// How many buckets a histogram has.
pub(crate) const BUCKETS: usize = (TOP_BIT as usize - SUB_BITS as usize + 2) * SUB;

/// The bucket `ns` counts in.
fn index(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let top = 63 - ns.leading_zeros();
    if top > TOP_BIT {
        return BUCKETS - 1;
    }
    let sub = (ns >> (top - SUB_BITS)) as usize & (SUB - 1);
    (top - SUB_BITS + 1) as usize * SUB + sub
}

/// The smallest value bucket `i` counts.
pub(crate) fn lower_bound(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let top = (i / SUB) as u32 + SUB_BITS - 1;
    ((SUB + i % SUB) as u64) << (top - SUB_BITS)
}

/// Counts of durations by bucket, and their sum.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub(crate) fn record(&self, ns: u64) {
        self.buckets[index(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Adds this histogram's counts into `into`.
    pub(crate) fn add_to(&self, into: &mut Counts) {
        for (total, bucket) in into.buckets.iter_mut().zip(self.buckets.iter()) {
            *total += bucket.load(Ordering::Relaxed);
        }
        into.sum_ns += self.sum_ns.load(Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        for bucket in self.buckets.iter() {
            bucket.store(0, Ordering::Relaxed);
        }
        self.sum_ns.store(0, Ordering::Relaxed);
    }
}

/// A histogram's counts read at one moment (summed over threads, or the difference of two
/// readings), to compute from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) buckets: Vec<u64>,
    pub(crate) sum_ns: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            sum_ns: 0,
        }
    }
}

impl Counts {
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What happened between `earlier` and this reading.
    pub(crate) fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
        }
    }

    /// The value below which `percentile` percent of the recorded values lie, in nanoseconds,
    /// interpolated within its bucket; `None` when nothing was recorded.
    pub(crate) fn percentile(&self, percentile: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (percentile / 100.0 * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if seen + n >= rank {
                let low = lower_bound(i) as f64;
                let high = if i + 1 < BUCKETS {
                    lower_bound(i + 1) as f64
                } else {
                    low
                };
                let within = (rank - seen) as f64 / n as f64;
                return Some(low + (high - low) * within);
            }
            seen += n;
        }
        None
    }

    /// How many values were below `bound` ns, which must be a power of two (a bucket boundary).
    pub(crate) fn below(&self, bound: u64) -> u64 {
        let end = index(bound);
        self.buckets[..end].iter().sum()
    }

    /// Redis's `LATENCY HISTOGRAM` buckets: for each power of two from 1024 ns that holds a value,
    /// its upper bound in microseconds (truncated, as Redis prints it) and how many values were at
    /// or below it.
    pub(crate) fn redis_buckets(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let total = self.count();
        let mut bound: u64 = 1024;
        let mut last = 0;
        loop {
            let upto = if bound >= 1 << TOP_BIT {
                total
            } else {
                self.below(bound)
            };
            if upto > last {
                out.push((bound / 1000, upto));
                last = upto;
            }
            if last >= total || bound >= 1 << TOP_BIT {
                break;
            }
            bound *= 2;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_the_bucket_that_holds_it() {
        for ns in (0..5000).chain([1 << 20, (1 << 20) + 1, 123_456_789, 1 << 40]) {
            let i = index(ns);
            assert!(lower_bound(i) <= ns, "{ns} in {i}");
            if i + 1 < BUCKETS {
                assert!(ns < lower_bound(i + 1), "{ns} in {i}");
            }
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        for i in 1..BUCKETS {
            assert!(lower_bound(i) > lower_bound(i - 1));
            assert_eq!(index(lower_bound(i)), i);
        }
    }

    #[test]
    fn percentiles_fall_within_an_eighth_of_the_truth() {
        let h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let mut c = Counts::default();
        h.add_to(&mut c);
        assert_eq!(c.count(), 1000);
        for (p, truth) in [(50.0, 500_000.0), (99.0, 990_000.0), (99.9, 999_000.0)] {
            let got = c.percentile(p).expect("present");
            assert!(
                (got - truth).abs() / truth < 0.125,
                "p{p}: {got} vs {truth}"
            );
        }
        assert_eq!(Counts::default().percentile(50.0), None);
    }

    #[test]
    fn redis_buckets_are_cumulative_powers_of_two() {
        let h = Histogram::default();
        h.record(500); // under 1024 ns: the first bucket, "1"
        h.record(1500); // under 2048 ns: "2"
        h.record(1_000_000); // under 2^20 = 1048576 ns: "1048"
        let mut c = Counts::default();
        h.add_to(&mut c);
        assert_eq!(c.redis_buckets(), vec![(1, 1), (2, 2), (1048, 3)]);
        assert_eq!(Counts::default().redis_buckets(), vec![]);
    }
}
