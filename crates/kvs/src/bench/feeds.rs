//! `kvs bench --pubsub` and `kvs bench --watch`: deliveries per second and publish-to-receive
//! latency, for pub/sub over RESP (against kvs or any Redis) and for HTTP watches.
//!
//! Every message carries the time it was sent (microseconds since the Unix epoch, as 16 ASCII
//! digits at its start), so a receiver measures its latency on the one clock of this machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use kvs_protocol::resp::{Frame, read_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What `--pubsub` runs.
pub struct PubSubPlan {
    pub authority: String,
    pub publishers: usize,
    pub subscribers: usize,
    pub channels: usize,
    pub size: usize,
    pub pipeline: usize,
    pub duration: Duration,
}

/// What `--watch` runs.
pub struct WatchPlan {
    pub resp: String,
    pub http: String,
    pub watchers: usize,
    pub writers: usize,
    pub size: usize,
    pub pipeline: usize,
    pub duration: Duration,
}

/// Latencies and deliveries gathered from every receiver.
struct Shared {
    latency: std::sync::Mutex<Histogram<u64>>,
    delivered: AtomicU64,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            latency: std::sync::Mutex::new(histogram()),
            delivered: AtomicU64::new(0),
        })
    }

    /// Adds what one receiver counted.
    fn add(&self, count: u64, latency: &Histogram<u64>) {
        self.delivered.fetch_add(count, Ordering::Relaxed);
        if let Ok(mut h) = self.latency.lock() {
            let _ = h.add(latency);
        }
    }
}

/// A connection with Nagle off.
async fn connect(addr: &str) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A message of `size` bytes (at least 16) stamped with the time now.
fn stamped(size: usize) -> Vec<u8> {
    let mut m = format!("{:016}", now_micros()).into_bytes();
    m.resize(size.max(16), b'x');
    m
}

/// The latency of a stamped message received now, in microseconds.
fn latency_of(message: &[u8]) -> Option<u64> {
    let stamp: u64 = std::str::from_utf8(message.get(..16)?).ok()?.parse().ok()?;
    Some(now_micros().saturating_sub(stamp))
}

fn command(argv: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads frames from `stream` into `buf` until `f` has seen `n` of them.
async fn read_frames(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    mut n: usize,
    mut f: impl FnMut(Frame),
) -> Result<(), String> {
    while n > 0 {
        while n > 0 {
            match read_frame(buf).map_err(|e| e.to_string())? {
                Some((frame, used)) => {
                    let _ = buf.split_to(used);
                    f(frame);
                    n -= 1;
                }
                None => break,
            }
        }
        if n > 0 && stream.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("the server closed the connection".into());
        }
    }
    Ok(())
}

/// Sends `pipeline` commands that `one` writes, back to back, then reads their replies, until
/// `duration` after `started`; counts the commands answered in `sent`.
async fn closed_loop(
    mut stream: TcpStream,
    started: Instant,
    (duration, pipeline): (Duration, usize),
    sent: Arc<AtomicU64>,
    mut one: impl FnMut(&mut Vec<u8>) + Send + 'static,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = Vec::new();
    while started.elapsed() < duration {
        out.clear();
        for _ in 0..pipeline {
            one(&mut out);
        }
        if stream.write_all(&out).await.is_err()
            || read_frames(&mut stream, &mut buf, pipeline, |_| {})
                .await
                .is_err()
        {
            break;
        }
        sent.fetch_add(pipeline as u64, Ordering::Relaxed);
    }
}

/// The summary of a run, as JSON.
fn summary(
    kind: &str,
    elapsed: Duration,
    sent: u64,
    delivered: u64,
    latency: &Histogram<u64>,
    settings: serde_json::Value,
) -> serde_json::Value {
    let secs = elapsed.as_secs_f64();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    serde_json::json!({
        "mode": kind,
        "settings": settings,
        "seconds": secs,
        "sent": sent,
        "delivered": delivered,
        "sent_per_sec": sent as f64 / secs,
        "deliveries_per_sec": delivered as f64 / secs,
        "latency_ms": { "p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999), "max": latency.max() as f64 / 1000.0 },
    })
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Publishers and subscribers over RESP: every subscriber subscribes to one channel (in turn),
/// every publisher publishes to one channel (in turn) with `pipeline` PUBLISHes in flight.
pub async fn pubsub(plan: PubSubPlan) -> Result<serde_json::Value, String> {
    let shared = Shared::new();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let channel = |i: usize| format!("bench:channel:{}", i % plan.channels.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..plan.subscribers {
        let mut stream = connect(&plan.authority).await?;
        let mut out = Vec::new();
        command(&[b"SUBSCRIBE", channel(s).as_bytes()], &mut out);
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        read_frames(&mut stream, &mut buf, 1, |_| {}).await?;
        let (shared, stop) = (shared.clone(), stop.clone());
        tasks.spawn(async move {
            let mut local = histogram();
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let read =
                    tokio::time::timeout(Duration::from_millis(200), stream.read_buf(&mut buf));
                match read.await {
                    Err(_) => continue,
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {}
                }
                while let Ok(Some((frame, used))) = read_frame(&buf) {
                    let _ = buf.split_to(used);
                    if let Frame::Array(items) | Frame::Push(items) = frame
                        && let Some(Frame::Bulk(message)) = items.last()
                        && let Some(us) = latency_of(message)
                    {
                        let _ = local.record(us.max(1));
                        count += 1;
                    }
                }
            }
            shared.add(count, &local);
        });
    }
    let started = Instant::now();
    let mut publishers = tokio::task::JoinSet::new();
    for p in 0..plan.publishers {
        let stream = connect(&plan.authority).await?;
        let size = plan.size;
        let channel = channel(p);
        publishers.spawn(closed_loop(
            stream,
            started,
            (plan.duration, plan.pipeline),
            sent.clone(),
            move |out| command(&[b"PUBLISH", channel.as_bytes(), &stamped(size)], out),
        ));
    }
    while publishers.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let latency = shared.latency.lock().map_err(|e| e.to_string())?.clone();
    Ok(summary(
        "pubsub",
        elapsed,
        sent.load(Ordering::Relaxed),
        shared.delivered.load(Ordering::Relaxed),
        &latency,
        serde_json::json!({
            "publishers": plan.publishers,
            "subscribers": plan.subscribers,
            "channels": plan.channels,
            "message_bytes": plan.size,
            "pipeline": plan.pipeline,
        }),
    ))
}

/// HTTP watchers of one prefix, and RESP writers that SET stamped values under it.
pub async fn watch(plan: WatchPlan) -> Result<serde_json::Value, String> {
    let shared = Shared::new();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    let url = format!(
        "http://{}/kvs?prefix=bench:watch:&watch&values=text",
        plan.http
    );
    for _ in 0..plan.watchers {
        let mut response = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("cannot watch {url}: {e}"))?;
        if response.status() != 200 {
            return Err(format!("watching {url} answered {}", response.status()));
        }
        let (shared, stop) = (shared.clone(), stop.clone());
        tasks.spawn(async move {
            let mut local = histogram();
            let mut count = 0u64;
            let mut pending = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let chunk = tokio::time::timeout(Duration::from_millis(200), response.chunk());
                let chunk = match chunk.await {
                    Err(_) => continue,
                    Ok(Ok(Some(c))) => c,
                    Ok(_) => break,
                };
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = pending.drain(..end + 2).collect();
                    // `"value":"<16 digits>...` carries the stamp.
                    if let Some(at) = find(&block, b"\"value\":\"")
                        && let Some(us) = latency_of(&block[at + 9..])
                    {
                        let _ = local.record(us.max(1));
                        count += 1;
                    }
                }
            }
            shared.add(count, &local);
        });
    }
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..plan.writers {
        let stream = connect(&plan.resp).await?;
        let size = plan.size;
        let mut i = 0u64;
        writers.spawn(closed_loop(
            stream,
            started,
            (plan.duration, plan.pipeline),
            sent.clone(),
            move |out| {
                let key = format!("bench:watch:{w}:{}", i % 1000);
                i += 1;
                command(&[b"SET", key.as_bytes(), &stamped(size)], out);
            },
        ));
    }
    while writers.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let latency = shared.latency.lock().map_err(|e| e.to_string())?.clone();
    Ok(summary(
        "watch",
        elapsed,
        sent.load(Ordering::Relaxed),
        shared.delivered.load(Ordering::Relaxed),
        &latency,
        serde_json::json!({
            "watchers": plan.watchers,
            "writers": plan.writers,
            "value_bytes": plan.size,
            "pipeline": plan.pipeline,
        }),
    ))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
