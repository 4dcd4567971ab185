//! Per-command counters: Redis's `commandstats` (calls, time, refusals, failures) and the
//! latency histogram behind `latencystats` and `LATENCY HISTOGRAM`, one slot per command and
//! subcommand of the command table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kvs_store::Spec;

use super::histogram::{Counts, Histogram};
use super::nanos;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It ran and answered.
    Ok,
    /// It ran and answered an error.
    Failed,
    /// It was refused before running (arity, permissions, memory, the log): Redis's
    /// `rejected_calls`, which count neither as calls nor in the time.
    Rejected,
}

/// One command's counters in one shard. A cache line of its own, so threads counting different
/// commands never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CommandCounts {
    calls: AtomicU64,
    nanos: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    /// Made at the first call: most commands are never called.
    latency: OnceLock<Histogram>,
}

impl CommandCounts {
    /// Counts one run; its latency goes to the histogram when `track` (Redis's
    /// `latency-tracking`).
    pub(crate) fn record(&self, took: Duration, outcome: Outcome, track: bool) {
        if outcome == Outcome::Rejected {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let ns = nanos(took);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(ns, Ordering::Relaxed);
        if outcome == Outcome::Failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if track {
            self.latency.get_or_init(Histogram::default).record(ns);
        }
    }

    pub(crate) fn reset(&self) {
        for n in [&self.calls, &self.nanos, &self.failed, &self.rejected] {
            n.store(0, Ordering::Relaxed);
        }
        if let Some(h) = self.latency.get() {
            h.reset();
        }
    }
}

/// One command's counters summed over the shards.
#[derive(Clone, Debug)]
pub(crate) struct Totals {
    /// As Redis names it in `commandstats`: `get`, `client|list`.
    pub(crate) name: &'static str,
    pub(crate) calls: u64,
    pub(crate) nanos: u64,
    pub(crate) failed: u64,
    pub(crate) rejected: u64,
    pub(crate) latency: Counts,
}

impl Totals {
    pub(crate) fn usec(&self) -> u64 {
        self.nanos / 1000
    }

    /// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`.
    pub(crate) fn commandstats_line(&self) -> (String, String) {
        let per_call = if self.calls == 0 {
            0.0
        } else {
            self.nanos as f64 / 1000.0 / self.calls as f64
        };
        (
            format!("cmdstat_{}", self.name),
            format!(
                "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                self.calls,
                self.usec(),
                self.rejected,
                self.failed
            ),
        )
    }

    /// `latency_percentiles_usec_<name>:p50=..,p99=..,p99.9=..` for the `percentiles` asked
    /// for, or `None` if no latency was recorded.
    pub(crate) fn latencystats_line(&self, percentiles: &[f64]) -> Option<(String, String)> {
        let values: Option<Vec<String>> = percentiles
            .iter()
            .map(|p| {
                let us = self.latency.percentile(*p)? / 1000.0;
                Some(format!("p{p}={us:.3}"))
            })
            .collect();
        Some((
            format!("latency_percentiles_usec_{}", self.name),
            values?.join(","),
        ))
    }
}

/// Hashes a spec's address: one multiplication.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Every command and subcommand of the table, numbered.
#[derive(Debug)]
pub(crate) struct CommandIndex {
    specs: Vec<&'static Spec>,
    by_address: HashMap<usize, usize, BuildHasherDefault<AddressHasher>>,
    by_name: HashMap<&'static str, usize>,
}

impl CommandIndex {
    pub(crate) fn new() -> Self {
        let mut specs = Vec::new();
        for spec in crate::resp::command::specs() {
            specs.push(spec);
            specs.extend(spec.subcommands.iter());
        }
        let by_address = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (std::ptr::from_ref::<Spec>(s) as usize, i))
            .collect();
        let by_name = specs.iter().enumerate().map(|(i, s)| (s.name, i)).collect();
        Self {
            specs,
            by_address,
            by_name,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.specs.len()
    }

    pub(crate) fn name(&self, slot: usize) -> Option<&'static str> {
        self.specs.get(slot).map(|s| s.name)
    }

    /// The slot of `spec`: found by its address (one multiplication), or by its name if the
    /// compiler placed a copy of the table elsewhere.
    pub(crate) fn of(&self, spec: &Spec) -> Option<usize> {
        self.by_address
            .get(&(std::ptr::from_ref::<Spec>(spec) as usize))
            .or_else(|| self.by_name.get(spec.name))
            .copied()
    }

    /// The totals of every command that ran or was refused, in name order.
    pub(crate) fn totals<'a>(
        &self,
        shards: impl Iterator<Item = &'a [CommandCounts]> + Clone,
    ) -> Vec<Totals> {
        let mut out = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let mut t = Totals {
                name: spec.name,
                calls: 0,
                nanos: 0,
                failed: 0,
                rejected: 0,
                latency: Counts::default(),
            };
            let mut ran = false;
            for shard in shards.clone() {
                let c = &shard[i];
                t.calls += c.calls.load(Ordering::Relaxed);
                t.nanos += c.nanos.load(Ordering::Relaxed);
                t.failed += c.failed.load(Ordering::Relaxed);
                t.rejected += c.rejected.load(Ordering::Relaxed);
                if let Some(h) = c.latency.get() {
                    h.add_to(&mut t.latency);
                    ran = true;
                }
            }
            if t.calls + t.rejected > 0 || (ran && t.latency.count() > 0) {
                out.push(t);
            }
        }
        out.sort_by_key(|t| t.name);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_subcommand_has_a_slot() {
        let index = CommandIndex::new();
        let get = crate::resp::command::spec("get").expect("present");
        let list = crate::resp::command::spec("client|list").expect("present");
        assert!(index.of(get).is_some());
        assert!(index.of(list).is_some());
        assert_ne!(index.of(get), index.of(list));
        // A copy of a spec is found by its name.
        let copy = Spec { ..*get };
        assert_eq!(index.of(&copy), index.of(get));
    }

    #[test]
    fn commandstats_and_latencystats_lines_use_redis_words() {
        let index = CommandIndex::new();
        let get = index
            .of(crate::resp::command::spec("get").expect("present"))
            .expect("present");
        let shard: Vec<CommandCounts> =
            (0..index.len()).map(|_| CommandCounts::default()).collect();
        shard[get].record(Duration::from_micros(10), Outcome::Ok, true);
        shard[get].record(Duration::from_micros(30), Outcome::Failed, true);
        shard[get].record(Duration::from_micros(99), Outcome::Rejected, true);
        let totals = index.totals(std::iter::once(&shard[..]));
        assert_eq!(totals.len(), 1);
        assert_eq!(
            totals[0].commandstats_line(),
            (
                "cmdstat_get".to_owned(),
                "calls=2,usec=40,usec_per_call=20.00,rejected_calls=1,failed_calls=1".to_owned()
            )
        );
        let (name, value) = totals[0]
            .latencystats_line(&[50.0, 99.0, 99.9])
            .expect("present");
        assert_eq!(name, "latency_percentiles_usec_get");
        assert!(
            value.starts_with("p50=") && value.contains(",p99.9="),
            "{value}"
        );
        let (_, ends) = totals[0].latencystats_line(&[0.0, 100.0]).expect("present");
        assert!(ends.starts_with("p0=") && ends.contains(",p100="), "{ends}");
    }
}
