//! `kvs bench --trace a|b|c`: a read-through cache in front of a Redis-protocol server. Each
//! request GETs a key drawn from a fixed trace and, on a miss, SETs it with its value, as an
//! application caching a slower store would. The hit ratio is what an eviction policy is judged
//! by; `bench/eviction.sh` runs the same traces against kvs and redis-server at the same
//! `maxmemory`.
//!
//! The traces are defined exactly as `bench/cachesim/cachesim.py` defines them, so the
//! simulator's hit ratios and a real server's can be compared draw for draw:
//!
//! - 1,000,000 keys `key:{i}`; key i's value is `100 + splitmix64(i) % 901` bytes.
//! - Zipf popularity by inverse-CDF sampling over the summed weights `k^-alpha`, with draw n
//!   taken from output n of a SplitMix64 stream; rank r is key `(r - 1) * 2654435761 mod 10^6`.
//! - (a) alpha 0.99, seed 1; (b) alpha 0.7, seed 2; (c) alpha 0.99, seed 3, whose first half is
//!   followed by one scan over the least popular keys, five times the cache's key capacity (a
//!   tenth of the working set), then the second half.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::codec::Outcome;
use super::resp;
use super::workload::Op;

const N_KEYS: u64 = 1_000_000;
const PERM_MUL: u64 = 2_654_435_761;
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const PER_KEY_OVERHEAD: u64 = 64;
const CAPACITY_FRACTION: u64 = 10;
const SCAN_FACTOR: u64 = 5;

/// A named trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceName {
    /// Zipf, alpha 0.99.
    A,
    /// Zipf, alpha 0.7.
    B,
    /// Zipf 0.99, interrupted by one scan of cold keys.
    C,
}

impl TraceName {
    fn params(self) -> (f64, u64, bool) {
        match self {
            TraceName::A => (0.99, 1, false),
            TraceName::B => (0.7, 2, false),
            TraceName::C => (0.99, 3, true),
        }
    }

    fn name(self) -> &'static str {
        match self {
            TraceName::A => "a",
            TraceName::B => "b",
            TraceName::C => "c",
        }
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn splitmix64(x: u64) -> u64 {
    mix64(x.wrapping_add(GAMMA))
}

/// Bytes of key `i`'s value.
pub fn value_size(i: u64) -> usize {
    100 + (splitmix64(i) % 901) as usize
}

fn key_name(i: u64) -> String {
    format!("key:{i}")
}

fn rank_to_id(rank: u64) -> u64 {
    ((rank - 1) * PERM_MUL) % N_KEYS
}

/// Keys a scan of trace (c) covers: five times the cache's key capacity.
fn scan_len() -> u64 {
    let total: u64 = (0..N_KEYS)
        .map(|i| value_size(i) as u64 + key_name(i).len() as u64 + PER_KEY_OVERHEAD)
        .sum();
    let capacity = total / CAPACITY_FRACTION;
    SCAN_FACTOR * capacity * N_KEYS / total
}

/// `count` draws of the Zipf stream with this `seed`, from draw `first` on, as key ids.
fn zipf_ids(cdf: &[f64], seed: u64, first: u64, count: u64, out: &mut Vec<u32>) {
    let total = cdf[cdf.len() - 1];
    let mut state = seed.wrapping_add(first.wrapping_mul(GAMMA));
    for _ in 0..count {
        state = state.wrapping_add(GAMMA);
        let u = (mix64(state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let rank = cdf.partition_point(|&c| c < u * total) as u64 + 1;
        out.push(rank_to_id(rank.min(N_KEYS)) as u32);
    }
}

/// A trace: key ids in request order, and where the scan (if any) begins and ends.
#[derive(Debug)]
pub struct Trace {
    pub ids: Vec<u32>,
    pub scan: Option<(usize, usize)>,
}

/// Builds trace `name` with `length` Zipf draws (plus the scan, for (c)).
pub fn build(name: TraceName, length: u64) -> Trace {
    let (alpha, seed, has_scan) = name.params();
    let mut cdf = Vec::with_capacity(N_KEYS as usize);
    let mut acc = 0.0f64;
    for k in 1..=N_KEYS {
        acc += (k as f64).powf(-alpha);
        cdf.push(acc);
    }
    let mut ids = Vec::with_capacity(length as usize);
    if !has_scan {
        zipf_ids(&cdf, seed, 0, length, &mut ids);
        return Trace { ids, scan: None };
    }
    let half = length / 2;
    zipf_ids(&cdf, seed, 0, half, &mut ids);
    let start = ids.len();
    let scan = scan_len();
    ids.extend((0..scan).map(|j| rank_to_id(N_KEYS - j) as u32));
    let end = ids.len();
    zipf_ids(&cdf, seed, half, length - half, &mut ids);
    Trace {
        ids,
        scan: Some((start, end)),
    }
}

/// FNV-1a over the ids, as the simulator prints it, to check both build the same trace.
pub fn checksum(ids: &[u32]) -> u64 {
    ids.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &k| {
        (h ^ u64::from(k)).wrapping_mul(0x100_0000_01B3)
    })
}

/// What the run measured.
#[derive(Debug, Default)]
struct Counts {
    gets: AtomicU64,
    hits: AtomicU64,
    sets: AtomicU64,
    errors: AtomicU64,
    post_gets: AtomicU64,
    post_hits: AtomicU64,
}

/// Sends one request and waits for its reply.
async fn call(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut BytesMut,
    op: Op,
) -> Result<Outcome, String> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    loop {
        match resp::decode(buf, op).map_err(|e| e.0)? {
            Some((outcome, used)) => {
                let _ = buf.split_to(used);
                return Ok(outcome);
            }
            None => {
                if stream.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
                    return Err("the server closed the connection".into());
                }
            }
        }
    }
}

/// One connection's share of the trace: requests `me`, `me + connections`, ...
async fn client(
    addr: String,
    trace: Arc<Trace>,
    me: usize,
    connections: usize,
    counts: Arc<Counts>,
) -> Result<Histogram<u64>, String> {
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut latency = super::connection::histogram();
    let mut buf = BytesMut::with_capacity(4096);
    let mut request = BytesMut::with_capacity(2048);
    let value = vec![b'v'; 1000];
    let post = trace.scan.map_or(usize::MAX, |(_, end)| end);
    let mut i = me;
    while i < trace.ids.len() {
        let id = u64::from(trace.ids[i]);
        let key = key_name(id);
        request.clear();
        resp::encode_get(key.as_bytes(), &mut request);
        let started = Instant::now();
        let got = call(&mut stream, &request, &mut buf, Op::Get).await?;
        let _ = latency.record(started.elapsed().as_micros() as u64);
        counts.gets.fetch_add(1, Ordering::Relaxed);
        if i >= post {
            counts.post_gets.fetch_add(1, Ordering::Relaxed);
        }
        match got {
            Outcome::Hit => {
                counts.hits.fetch_add(1, Ordering::Relaxed);
                if i >= post {
                    counts.post_hits.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outcome::Miss => {
                request.clear();
                resp::encode_set(key.as_bytes(), &value[..value_size(id)], &mut request);
                let started = Instant::now();
                let stored = call(&mut stream, &request, &mut buf, Op::Set).await?;
                let _ = latency.record(started.elapsed().as_micros() as u64);
                counts.sets.fetch_add(1, Ordering::Relaxed);
                if !matches!(stored, Outcome::Stored) {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        i += connections;
    }
    Ok(latency)
}

/// Runs trace `name` of `length` draws against the Redis-protocol server at `addr` over
/// `connections` connections, and returns the summary as one JSON object.
pub async fn run(
    addr: &str,
    name: TraceName,
    length: u64,
    connections: usize,
) -> Result<String, String> {
    let built = Instant::now();
    let trace = Arc::new(build(name, length));
    let build_time = built.elapsed();
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for me in 0..connections {
        tasks.spawn(client(
            addr.to_owned(),
            trace.clone(),
            me,
            connections,
            counts.clone(),
        ));
    }
    let mut latency = super::connection::histogram();
    while let Some(done) = tasks.join_next().await {
        let histogram = done.map_err(|e| e.to_string())??;
        let _ = latency.add(&histogram);
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (gets, hits, sets) = (load(&counts.gets), load(&counts.hits), load(&counts.sets));
    let ratio = |h: u64, g: u64| if g == 0 { 0.0 } else { h as f64 / g as f64 };
    let summary = serde_json::json!({
        "trace": name.name(),
        "zipf_requests": length,
        "requests": trace.ids.len(),
        "checksum": format!("{:#018x}", checksum(&trace.ids)),
        "connections": connections,
        "gets": gets,
        "hits": hits,
        "sets": sets,
        "errors": load(&counts.errors),
        "hit_ratio": ratio(hits, gets),
        "hit_ratio_after_scan": trace.scan.map(|_| ratio(load(&counts.post_hits), load(&counts.post_gets))),
        "elapsed_s": elapsed.as_secs_f64(),
        "ops_per_s": (gets + sets) as f64 / elapsed.as_secs_f64(),
        "p50_us": latency.value_at_quantile(0.50),
        "p99_us": latency.value_at_quantile(0.99),
        "trace_build_s": build_time.as_secs_f64(),
    });
    Ok(summary.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator prints these for its first 1,000 draws of (a) and (b), and the value sizes
    /// of keys 0 to 4 (`python3 bench/cachesim/cachesim.py`, see its README).
    #[test]
    fn traces_match_the_simulator_draw_for_draw() {
        let a = build(TraceName::A, 1_000);
        assert_eq!(
            a.ids[..8],
            [
                631_632, 435_917, 244_444, 120_274, 684_513, 911_789, 29_418, 277_350
            ]
        );
        assert_eq!(checksum(&a.ids), 0x11d1_ee8a_a3ca_9116);
        let b = build(TraceName::B, 1_000);
        assert_eq!(
            b.ids[..8],
            [
                150_272, 180_871, 85_414, 300_643, 997_292, 719_033, 960_464, 368_247
            ]
        );
        assert_eq!(checksum(&b.ids), 0xd556_bb02_b0cb_c45e);
        assert_eq!(
            (0..5).map(value_size).collect::<Vec<_>>(),
            [112, 705, 473, 699, 790]
        );
        assert_eq!(scan_len(), 499_999);
        let c = build(TraceName::C, 1_000);
        assert_eq!(c.scan, Some((500, 500 + 499_999)));
        assert_eq!(c.ids[500], rank_to_id(N_KEYS) as u32);
    }
}
