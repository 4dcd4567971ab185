//! What `kvs bench` prints: the live progress line, and the final summary as a table or as one
//! JSON object. Latencies are kept in nanoseconds and shown in milliseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::connection::{Tally, histogram};

/// The settings of a run, echoed in the summary.
#[derive(Debug)]
pub struct Settings {
    pub protocol: &'static str,
    pub address: String,
    pub connections: u64,
    pub pipeline: u64,
    pub value_size: usize,
    pub keyspace: u64,
    pub read_ratio: f64,
    /// How long writing every key took, if `--preload` was given.
    pub preload: Option<Duration>,
}

/// The merged result of every connection.
#[derive(Debug)]
pub struct Summary {
    pub elapsed: Duration,
    reads: Histogram<u64>,
    writes: Histogram<u64>,
    hits: u64,
    misses: u64,
    errors: BTreeMap<String, u64>,
    /// Lost connections by reason.
    lost: BTreeMap<String, u64>,
}

/// The percentiles shown, with their JSON names.
const PERCENTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99_9", 0.999),
];

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

impl Summary {
    pub fn new(elapsed: Duration, tallies: Vec<Tally>) -> Self {
        let mut summary = Summary {
            elapsed,
            reads: histogram(),
            writes: histogram(),
            hits: 0,
            misses: 0,
            errors: BTreeMap::new(),
            lost: BTreeMap::new(),
        };
        for tally in tallies {
            // Both sides are auto-resizing histograms of the same precision: adding cannot fail.
            let _ = summary.reads.add(&tally.reads);
            let _ = summary.writes.add(&tally.writes);
            summary.hits += tally.hits;
            summary.misses += tally.misses;
            for (kind, n) in tally.errors {
                *summary.errors.entry(kind).or_default() += n;
            }
            if let Some(why) = tally.lost {
                *summary.lost.entry(why).or_default() += 1;
            }
        }
        summary
    }

    pub fn ops(&self) -> u64 {
        self.reads.len() + self.writes.len()
    }

    pub fn lost_connections(&self) -> u64 {
        self.lost.values().sum()
    }

    fn errors(&self) -> u64 {
        self.errors.values().sum()
    }

    fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops() as f64 / secs
        } else {
            0.0
        }
    }

    fn all(&self) -> Histogram<u64> {
        let mut all = self.reads.clone();
        let _ = all.add(&self.writes);
        all
    }

    pub fn json(&self, settings: &Settings) -> Value {
        let latency = |h: &Histogram<u64>| {
            if h.is_empty() {
                return Value::Null;
            }
            let mut row = serde_json::Map::new();
            for (name, q) in PERCENTILES {
                row.insert(name.into(), ms(h.value_at_quantile(q)).into());
            }
            row.insert("max".into(), ms(h.max()).into());
            Value::Object(row)
        };
        json!({
            "protocol": settings.protocol,
            "address": settings.address,
            "connections": settings.connections,
            "pipeline": settings.pipeline,
            "value_size": settings.value_size,
            "keyspace": settings.keyspace,
            "read_ratio": settings.read_ratio,
            "preload_s": settings.preload.map(|d| d.as_secs_f64()),
            "duration_s": self.elapsed.as_secs_f64(),
            "ops": self.ops(),
            "ops_per_sec": self.ops_per_sec(),
            "reads": self.reads.len(),
            "writes": self.writes.len(),
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors(),
            "errors_by_kind": self.errors,
            "lost_connections": self.lost_connections(),
            "lost_by_reason": self.lost,
            "latency_ms": {
                "all": latency(&self.all()),
                "reads": latency(&self.reads),
                "writes": latency(&self.writes),
            },
        })
    }

    pub fn table(&self, settings: &Settings) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kvs bench: {} at {}, {} connections, pipeline {}, {}-byte values, {} keys, {}% reads",
            settings.protocol,
            settings.address,
            settings.connections,
            settings.pipeline,
            grouped(settings.value_size as u64),
            grouped(settings.keyspace),
            percent(settings.read_ratio),
        );
        if let Some(took) = settings.preload {
            let _ = writeln!(
                out,
                "  preload   {} keys written in {:.2} s",
                grouped(settings.keyspace),
                took.as_secs_f64()
            );
        }
        let _ = writeln!(out, "  time      {:.2} s", self.elapsed.as_secs_f64());
        let _ = writeln!(
            out,
            "  ops       {:<12} {} ops/s",
            grouped(self.ops()),
            grouped(self.ops_per_sec().round() as u64)
        );
        let _ = writeln!(
            out,
            "  reads     {:<12} {} hits, {} misses",
            grouped(self.reads.len()),
            grouped(self.hits),
            grouped(self.misses)
        );
        let _ = writeln!(out, "  writes    {}", grouped(self.writes.len()));
        if self.errors.is_empty() {
            let _ = writeln!(out, "  errors    0");
        } else {
            let _ = writeln!(
                out,
                "  errors    {:<12} {}",
                grouped(self.errors()),
                by_kind(&self.errors)
            );
        }
        if !self.lost.is_empty() {
            let n = self.lost_connections();
            let _ = writeln!(
                out,
                "  lost      {} connection{} ({})",
                grouped(n),
                if n == 1 { "" } else { "s" },
                by_kind(&self.lost)
            );
        }
        let _ = writeln!(
            out,
            "\n  latency ms       p50       p90       p99     p99.9       max"
        );
        for (name, h) in [
            ("all", &self.all()),
            ("reads", &self.reads),
            ("writes", &self.writes),
        ] {
            let _ = write!(out, "  {name:<12}");
            if h.is_empty() {
                let _ = writeln!(out, "{:>10}", "-");
                continue;
            }
            for (_, q) in PERCENTILES {
                let _ = write!(out, "{:>10.3}", ms(h.value_at_quantile(q)));
            }
            let _ = writeln!(out, "{:>10.3}", ms(h.max()));
        }
        out
    }
}

/// `ERR: 3, HTTP 503: 2`, or nothing.
fn by_kind(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}: {}", grouped(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `0.5` as `50`, `0.125` as `12.5`.
fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The live line, redrawn in place: `  12.3 s  ops 1,234,567  ops/s 123,456  p99 0.45 ms`.
pub fn progress_line(elapsed: Duration, ops: u64, ops_per_sec: f64, p99: Option<u64>) -> String {
    let p99 = p99.map_or_else(|| "-".to_owned(), |n| format!("{:.2}", ms(n)));
    format!(
        "\r  {:.1} s  ops {}  ops/s {}  p99 {p99} ms\x1b[K",
        elapsed.as_secs_f64(),
        grouped(ops),
        grouped(ops_per_sec.round() as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn the_progress_line_redraws_in_place() {
        let line = progress_line(
            Duration::from_millis(12_340),
            1_234_567,
            123_456.4,
            Some(450_000),
        );
        assert_eq!(
            line,
            "\r  12.3 s  ops 1,234,567  ops/s 123,456  p99 0.45 ms\x1b[K"
        );
    }
}
