//! `GET /metrics`: everything counted, in the Prometheus text format (version 0.0.4), built at
//! each scrape from the counters and written by the `prometheus` crate's encoder.

use std::sync::atomic::Ordering;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram as ProtoHistogram, LabelPair, Metric, MetricFamily,
    MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::{Class, Counts, Door, Stats};
use crate::engine::Engine;
use crate::memory::Report;
use crate::pubsub::Kind;

/// The media type of the answer.
pub(crate) const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Histogram bucket bounds: every power of two from 2^12 ns (4 µs) to 2^33 ns (8.6 s). They are
/// boundaries of the counters' own buckets, so the counts are exact.
const BUCKET_BITS: std::ops::RangeInclusive<u32> = 12..=33;

/// The families of one scrape, in the order they are added.
#[derive(Default)]
struct Families(Vec<MetricFamily>);

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut l = LabelPair::default();
            l.set_name((*name).to_owned());
            l.set_value((*value).to_owned());
            l
        })
        .collect()
}

impl Families {
    fn add(&mut self, name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) {
        if metrics.is_empty() {
            return;
        }
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        family.set_metric(metrics);
        self.0.push(family);
    }

    /// Families of plain values: `kind` is COUNTER or GAUGE.
    fn values<'a>(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        values: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        let metrics = values
            .into_iter()
            .map(|(pairs, v)| {
                let mut m = Metric::from_label(labels(&pairs));
                if kind == MetricType::COUNTER {
                    let mut c = Counter::default();
                    c.set_value(v);
                    m.set_counter(c);
                } else {
                    let mut g = Gauge::default();
                    g.set_value(v);
                    m.set_gauge(g);
                }
                m
            })
            .collect();
        self.add(name, help, kind, metrics);
    }

    fn counters<'a>(
        &mut self,
        name: &str,
        help: &str,
        values: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        self.values(name, help, MetricType::COUNTER, values);
    }

    fn counter(&mut self, name: &str, help: &str, v: f64) {
        self.counters(name, help, [(Vec::new(), v)]);
    }

    fn gauges<'a>(
        &mut self,
        name: &str,
        help: &str,
        values: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        self.values(name, help, MetricType::GAUGE, values);
    }

    fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.gauges(name, help, [(Vec::new(), v)]);
    }

    /// Latency histograms in seconds.
    fn histograms<'a>(
        &mut self,
        name: &str,
        help: &str,
        values: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, Counts)>,
    ) {
        let metrics = values
            .into_iter()
            .map(|(pairs, counts)| {
                let mut h = ProtoHistogram::default();
                h.set_sample_count(counts.count());
                h.set_sample_sum(counts.sum_ns as f64 / 1e9);
                h.set_bucket(
                    BUCKET_BITS
                        .map(|bit| {
                            let mut b = Bucket::default();
                            b.set_upper_bound((1u64 << bit) as f64 / 1e9);
                            b.set_cumulative_count(counts.below(1 << bit));
                            b
                        })
                        .collect(),
                );
                let mut m = Metric::from_label(labels(&pairs));
                m.set_histogram(h);
                m
            })
            .collect();
        self.add(name, help, MetricType::HISTOGRAM, metrics);
    }
}

/// The whole scrape.
pub(crate) fn render(engine: &Engine, acl: &crate::acl::Acl) -> Vec<u8> {
    let stats = engine.stats();
    let mut f = Families::default();
    process(&mut f, engine, stats);
    commands(&mut f, stats, acl);
    doors(&mut f, stats);
    keyspace(&mut f, engine, stats);
    log(&mut f, engine, stats);
    changes(&mut f, engine);
    let mut out = Vec::new();
    // Every family has a name and at least one metric, which is all the encoder checks.
    if let Err(e) = TextEncoder::new().encode(&f.0, &mut out) {
        tracing::warn!("encoding /metrics failed: {e}");
    }
    out
}

fn process(f: &mut Families, engine: &Engine, stats: &Stats) {
    f.gauges(
        "kvs_build_info",
        "The kvs version and the Redis version whose commands it follows (always 1).",
        [(
            vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("redis_version", crate::resp::REDIS_VERSION),
            ],
            1.0,
        )],
    );
    f.gauge(
        "kvs_uptime_seconds",
        "Seconds since the server started.",
        engine.uptime().as_secs_f64(),
    );
    f.gauge(
        "process_start_time_seconds",
        "When the server started, in unix seconds.",
        engine.started_unix() as f64,
    );
    let cpu = stats.cpu.now();
    f.counter(
        "process_cpu_seconds_total",
        "CPU time the server used, user and system.",
        cpu.user + cpu.sys,
    );
}

fn commands(f: &mut Families, stats: &Stats, acl: &crate::acl::Acl) {
    let totals = stats.commands();
    let by = |pick: fn(&super::commands::Totals) -> f64| {
        totals
            .iter()
            .map(move |t| (vec![("command", t.name)], pick(t)))
            .collect::<Vec<_>>()
    };
    f.counters(
        "kvs_commands_total",
        "Redis-protocol commands run, by command (as INFO commandstats names them).",
        by(|t| t.calls as f64),
    );
    f.counters(
        "kvs_command_failures_total",
        "Commands that ran and answered an error.",
        by(|t| t.failed as f64),
    );
    f.counters(
        "kvs_command_rejections_total",
        "Commands refused before running: arity, permissions, memory, the log.",
        by(|t| t.rejected as f64),
    );
    f.counters(
        "kvs_command_duration_seconds_total",
        "Time spent running each command.",
        by(|t| t.nanos as f64 / 1e9),
    );
    let codes = stats.error_codes();
    f.counters(
        "kvs_errors_total",
        "Error replies by their code (ERR, WRONGTYPE, NOPERM, ...).",
        codes
            .iter()
            .map(|(code, n)| (vec![("code", code.as_str())], *n as f64)),
    );
    let log = acl.log.lock();
    f.counter(
        "kvs_auth_failures_total",
        "Failed authentications, over every door.",
        log.denied("auth") as f64,
    );
    f.counters(
        "kvs_acl_denied_total",
        "Requests refused by permissions, by what was refused (command, key, channel).",
        ["command", "key", "channel"].map(|r| (vec![("reason", r)], log.denied(r) as f64)),
    );
    drop(log);
}

fn doors(f: &mut Families, stats: &Stats) {
    let mut latency = Vec::new();
    for door in Door::ALL {
        for class in Class::ALL {
            latency.push((
                vec![("door", door.name()), ("class", class.name())],
                stats.requests(door, class),
            ));
        }
    }
    f.histograms(
        "kvs_request_duration_seconds",
        "Requests by door and class (read, write, other), from arrival to answer.",
        latency,
    );
    let per_door = |pick: fn(&super::Connections) -> u64| {
        Door::ALL.map(|d| {
            (
                vec![("door", d.name())],
                pick(&stats.connections[d as usize]) as f64,
            )
        })
    };
    f.gauges(
        "kvs_connections",
        "Open connections, by door.",
        per_door(|c| c.open.load(Ordering::Relaxed)),
    );
    f.counters(
        "kvs_connections_accepted_total",
        "Connections accepted, by door.",
        per_door(|c| c.accepted.load(Ordering::Relaxed)),
    );
    f.counters(
        "kvs_connections_refused_total",
        "Connections refused at the connection limit, by door.",
        per_door(|c| c.refused.load(Ordering::Relaxed)),
    );
}

fn keyspace(f: &mut Families, engine: &Engine, stats: &Stats) {
    let store = engine.store();
    let m = Report::now(engine, None);
    f.gauge("kvs_keys", "Live keys.", m.keys as f64);
    f.gauge(
        "kvs_keys_with_expiry",
        "Keys with a time to live.",
        store.expiring() as f64,
    );
    f.counter(
        "kvs_expired_keys_total",
        "Keys removed because their time to live ran out.",
        store.expired_keys() as f64,
    );
    f.counter(
        "kvs_evicted_keys_total",
        "Keys evicted to stay under maxmemory.",
        m.evicted_keys as f64,
    );
    f.counter(
        "kvs_keyspace_hits_total",
        "Reads that found their key.",
        stats.hits() as f64,
    );
    f.counter(
        "kvs_keyspace_misses_total",
        "Reads that did not find their key.",
        stats.misses() as f64,
    );
    f.gauge(
        "kvs_memory_used_bytes",
        "Bytes allocated (INFO's used_memory).",
        m.used_memory as f64,
    );
    f.gauge(
        "process_resident_memory_bytes",
        "Resident memory of the process.",
        m.used_memory_rss as f64,
    );
    f.gauge(
        "kvs_memory_max_bytes",
        "The memory limit (maxmemory; 0: none).",
        m.maxmemory as f64,
    );
}

fn log(f: &mut Families, engine: &Engine, stats: &Stats) {
    let durable = engine.durability();
    f.gauge(
        "kvs_log_enabled",
        "1 when writes go to the write-ahead log, 0 in memory.",
        f64::from(u8::from(durable.is_some())),
    );
    let Some(d) = durable else {
        return;
    };
    let counters = d.log().counters();
    let status = d.status();
    f.counter(
        "kvs_log_records_total",
        "Records appended to the log since the server started.",
        counters.records as f64,
    );
    f.counter(
        "kvs_log_bytes_total",
        "Bytes written to the log since the server started.",
        counters.bytes as f64,
    );
    f.counter(
        "kvs_log_fsyncs_total",
        "fsyncs that made a batch of log records durable.",
        counters.fsyncs as f64,
    );
    let mut fsync = Counts::default();
    stats.fsync.add_to(&mut fsync);
    f.histograms(
        "kvs_log_fsync_duration_seconds",
        "How long those fsyncs took.",
        [(Vec::new(), fsync)],
    );
    f.gauge(
        "kvs_log_failed",
        "1 once the log failed (writes are refused, reads still served).",
        f64::from(u8::from(d.progress().failed.is_some())),
    );
    f.gauge(
        "kvs_snapshot_last_time_seconds",
        "When the last snapshot was written, in unix seconds.",
        status.last_save as f64,
    );
    f.gauge(
        "kvs_snapshot_last_duration_seconds",
        "How long the last snapshot took to write.",
        status.last_millis as f64 / 1000.0,
    );
    f.gauge(
        "kvs_snapshot_in_progress",
        "1 while a snapshot is being written.",
        f64::from(u8::from(status.in_progress)),
    );
}

fn changes(f: &mut Families, engine: &Engine) {
    let pubsub = engine.pubsub();
    f.gauge(
        "kvs_pubsub_subscribers",
        "Connections subscribed to at least one channel or pattern.",
        pubsub.subscribers() as f64,
    );
    f.gauges(
        "kvs_pubsub_channels",
        "Channels, patterns and shard channels with at least one subscriber.",
        [
            (
                vec![("kind", "channel")],
                pubsub.distinct(Kind::Channel) as f64,
            ),
            (
                vec![("kind", "pattern")],
                pubsub.distinct(Kind::Pattern) as f64,
            ),
            (vec![("kind", "shard")], pubsub.distinct(Kind::Shard) as f64),
        ],
    );
    f.counter(
        "kvs_pubsub_messages_published_total",
        "Messages published.",
        pubsub.published() as f64,
    );
    f.counter(
        "kvs_pubsub_slow_disconnects_total",
        "Subscribers disconnected for falling behind (client-output-buffer-limit pubsub).",
        pubsub.disconnected() as f64,
    );
    f.gauge(
        "kvs_watchers",
        "Open HTTP watches and other readers of the change feed.",
        engine.feed().listeners() as f64,
    );
    f.counter(
        "kvs_watchers_dropped_total",
        "Watchers cut off for falling behind.",
        engine.feed().dropped_listeners() as f64,
    );
    f.gauge(
        "kvs_revision",
        "The store's revision: the last version any write assigned.",
        engine.store().revision() as f64,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fresh_server_exposes_every_family_once() {
        let engine = crate::engine::Engine::new();
        engine.stats().request(
            super::Door::Resp,
            super::Class::Read,
            std::time::Duration::from_micros(5),
        );
        let acl = crate::acl::Acl::default();
        let text = String::from_utf8(super::render(&engine, &acl)).expect("present");
        for family in [
            "kvs_build_info",
            "kvs_request_duration_seconds",
            "kvs_connections",
            "kvs_keys",
            "kvs_log_enabled",
            "kvs_pubsub_subscribers",
        ] {
            let typed = format!("# TYPE {family} ");
            assert_eq!(text.matches(&typed).count(), 1, "{family} in:\n{text}");
        }
        assert!(
            text.contains("kvs_request_duration_seconds_count{door=\"resp\",class=\"read\"} 1"),
            "{text}"
        );
    }
}
