//! The last ten minutes, one sample a second, for the console's charts and `INFO`'s
//! `instantaneous_ops_per_sec`: requests per door, latency percentiles, memory, connections,
//! keys, hits and misses, and the log's fsync latency in that second.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use serde::Serialize;

use super::{Class, Counts, Door, Stats};

/// Samples kept: ten minutes.
pub(crate) const KEPT: usize = 600;

/// Per door, in the order of [`Door::ALL`].
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub(crate) struct PerDoor {
    pub(crate) http: u64,
    pub(crate) resp: u64,
    pub(crate) line: u64,
}

impl PerDoor {
    fn from_fn(f: impl Fn(Door) -> u64) -> Self {
        PerDoor {
            http: f(Door::Http),
            resp: f(Door::Resp),
            line: f(Door::Line),
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.http + self.resp + self.line
    }
}

/// One second.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Sample {
    /// Unix seconds at its end.
    pub(crate) t: u64,
    /// Requests answered in it.
    pub(crate) ops: PerDoor,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) used_memory: u64,
    pub(crate) maxmemory: u64,
    /// Open at its end.
    pub(crate) connections: PerDoor,
    pub(crate) keys: u64,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) fsync_p99_us: Option<f64>,
}

/// What the server reports that the counters do not hold.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gauges {
    pub(crate) now_unix: u64,
    pub(crate) used_memory: u64,
    pub(crate) maxmemory: u64,
    pub(crate) keys: u64,
}

/// The totals at the last sample, to subtract.
#[derive(Debug, Default)]
struct Last {
    ops: PerDoor,
    latency: Counts,
    fsync: Counts,
    hits: u64,
    misses: u64,
}

#[derive(Debug, Default)]
pub(crate) struct History {
    samples: Mutex<(VecDeque<Sample>, Last)>,
}

impl History {
    /// Takes a sample: what happened since the last one.
    pub(crate) fn sample(&self, stats: &Stats, gauges: Gauges) {
        let ops = PerDoor::from_fn(|d| stats.door_requests(d));
        let mut latency = Counts::default();
        for door in Door::ALL {
            for class in Class::ALL {
                let c = stats.requests(door, class);
                for (t, n) in latency.buckets.iter_mut().zip(&c.buckets) {
                    *t += n;
                }
                latency.sum_ns += c.sum_ns;
            }
        }
        let mut fsync = Counts::default();
        stats.fsync.add_to(&mut fsync);
        let (hits, misses) = (stats.hits(), stats.misses());
        let mut guard = self.samples.lock();
        let (samples, last) = &mut *guard;
        let second = latency.since(&last.latency);
        let fsyncs = fsync.since(&last.fsync);
        let us = |c: &Counts, p: f64| c.percentile(p).map(|ns| (ns / 100.0).round() / 10.0);
        samples.push_back(Sample {
            t: gauges.now_unix,
            ops: PerDoor {
                http: ops.http.saturating_sub(last.ops.http),
                resp: ops.resp.saturating_sub(last.ops.resp),
                line: ops.line.saturating_sub(last.ops.line),
            },
            p50_us: us(&second, 50.0),
            p99_us: us(&second, 99.0),
            used_memory: gauges.used_memory,
            maxmemory: gauges.maxmemory,
            connections: PerDoor::from_fn(|d| {
                stats.connections[d as usize].open.load(Ordering::Relaxed)
            }),
            keys: gauges.keys,
            hits: hits.saturating_sub(last.hits),
            misses: misses.saturating_sub(last.misses),
            fsync_p99_us: us(&fsyncs, 99.0),
        });
        while samples.len() > KEPT {
            samples.pop_front();
        }
        *last = Last {
            ops,
            latency,
            fsync,
            hits,
            misses,
        };
    }

    /// The newest `n` samples, oldest first.
    pub(crate) fn newest(&self, n: usize) -> Vec<Sample> {
        let guard = self.samples.lock();
        let samples = &guard.0;
        samples
            .iter()
            .skip(samples.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Requests in the last full second, every door.
    pub(crate) fn ops_per_sec(&self) -> u64 {
        self.samples.lock().0.back().map_or(0, |s| s.ops.total())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_sample_holds_what_happened_since_the_last() {
        let stats = Stats::new();
        let history = History::default();
        let gauges = Gauges {
            now_unix: 100,
            used_memory: 1,
            maxmemory: 0,
            keys: 0,
        };
        stats.request(Door::Resp, Class::Read, Duration::from_micros(100));
        history.sample(&stats, gauges);
        for _ in 0..3 {
            stats.request(Door::Http, Class::Write, Duration::from_micros(10));
        }
        stats.lookups(2, 1);
        history.sample(
            &stats,
            Gauges {
                now_unix: 101,
                ..gauges
            },
        );
        history.sample(
            &stats,
            Gauges {
                now_unix: 102,
                ..gauges
            },
        );
        let s = history.newest(10);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0].ops,
            PerDoor {
                http: 0,
                resp: 1,
                line: 0
            }
        );
        assert_eq!(
            s[1].ops,
            PerDoor {
                http: 3,
                resp: 0,
                line: 0
            }
        );
        assert_eq!((s[1].hits, s[1].misses), (2, 1));
        let p50 = s[1].p50_us.expect("present");
        assert!((9.0..=11.5).contains(&p50), "{p50}");
        assert_eq!(s[2].ops.total(), 0);
        assert_eq!(s[2].p99_us, None);
        assert_eq!(history.newest(1)[0].t, 102);
        assert_eq!(history.ops_per_sec(), 0);
    }
}
