//! One benchmark connection: it writes a batch of requests (the pipeline depth) in one write,
//! reads their replies in order, and records each reply's latency from the batch write to the
//! moment the reply was complete. Each connection keeps its own histograms and counters; the only
//! shared state is a few atomics touched once per batch.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;

use super::codec::{BadReply, Codec, Outcome};
use super::workload::{self, Keys, Op, Rng};

/// Bytes asked of the socket per read; the buffer grows only by what actually arrives.
const READ_CHUNK: usize = 16 * 1024;
/// How often a connection hands its recent latencies to the progress line.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// The error kind counted for requests whose connection was lost before they were answered.
pub const LOST: &str = "connection lost";

/// A latency histogram in nanoseconds, 3 significant digits, growing with the largest value.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits are supported")
}

/// Records one latency. The histograms resize to fit any value, so recording does not fail
/// (`saturating_record` would clamp to the current size instead of growing).
fn record(latencies: &mut Histogram<u64>, nanos: u64) {
    if latencies.record(nanos).is_err() {
        latencies.saturating_record(nanos);
    }
}

/// What every connection of a run does.
#[derive(Debug)]
pub struct Plan {
    pub codec: Codec,
    pub keys: Keys,
    pub keyspace: u64,
    pub read_ratio: f64,
    pub pipeline: u64,
    pub value_size: usize,
    pub timeout: Duration,
}

impl Plan {
    /// The largest reply a connection waits for: any value the server accepts by default
    /// (64 MiB), or two of the benchmark's own. Claimed lengths are never allocated up front.
    fn reply_limit(&self) -> usize {
        (64 << 20) + 2 * self.value_size
    }
}

/// State shared by the connections of a run and its progress line.
#[derive(Debug)]
pub struct Shared {
    /// `--requests`: requests handed out over all connections, at most.
    budget: Option<u64>,
    issued: AtomicU64,
    /// Replies received so far, for the progress line.
    pub done: AtomicU64,
    /// Set on Ctrl-C: connections finish their batch and stop.
    pub stop: AtomicBool,
    deadline: Option<Instant>,
}

impl Shared {
    pub fn new(budget: Option<u64>, deadline: Option<Instant>) -> Self {
        Shared {
            budget,
            issued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            deadline,
        }
    }

    /// How many of `want` requests a connection may send now: 0 once the run is over.
    fn claim(&self, want: u64) -> u64 {
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        match self.budget {
            None => want,
            Some(total) => {
                let before = self.issued.fetch_add(want, Ordering::Relaxed);
                want.min(total.saturating_sub(before))
            }
        }
    }
}

/// Why a connection stopped before the run ended.
#[derive(Debug)]
enum Lost {
    Closed,
    Timeout(Duration),
    Io(std::io::Error),
    Bad(BadReply),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Closed => write!(f, "closed by the server"),
            Lost::Timeout(t) => write!(f, "no progress for {}", humantime::format_duration(*t)),
            Lost::Io(e) => write!(f, "{e}"),
            Lost::Bad(BadReply(what)) => write!(f, "unexpected reply: {what}"),
        }
    }
}

/// What one connection measured.
#[derive(Debug)]
pub struct Tally {
    pub reads: Histogram<u64>,
    pub writes: Histogram<u64>,
    pub hits: u64,
    pub misses: u64,
    /// Error replies and unanswered requests, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Why the connection was lost, if it was.
    pub lost: Option<String>,
    recent: Option<Recent>,
}

/// Latencies since the last hand-over to the progress line.
#[derive(Debug)]
struct Recent {
    latencies: Histogram<u64>,
    next: Instant,
    to: UnboundedSender<Histogram<u64>>,
}

impl Tally {
    fn new(progress: Option<UnboundedSender<Histogram<u64>>>) -> Self {
        Tally {
            reads: histogram(),
            writes: histogram(),
            hits: 0,
            misses: 0,
            errors: BTreeMap::new(),
            lost: None,
            recent: progress.map(|to| Recent {
                latencies: histogram(),
                next: Instant::now() + PUBLISH_EVERY,
                to,
            }),
        }
    }

    /// Replies received.
    pub fn ops(&self) -> u64 {
        self.reads.len() + self.writes.len()
    }

    fn record(&mut self, op: Op, outcome: Outcome, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        match op {
            Op::Get => record(&mut self.reads, nanos),
            Op::Set => record(&mut self.writes, nanos),
        }
        if let Some(recent) = &mut self.recent {
            record(&mut recent.latencies, nanos);
        }
        match outcome {
            Outcome::Hit => self.hits += 1,
            Outcome::Miss => self.misses += 1,
            Outcome::Stored => {}
            Outcome::Failed(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    fn lose(&mut self, why: &Lost, unanswered: u64) {
        if unanswered > 0 {
            *self.errors.entry(LOST.to_owned()).or_default() += unanswered;
        }
        self.lost = Some(why.to_string());
    }

    /// Hands recent latencies to the progress line, at most once a second.
    fn publish(&mut self, now: Instant) {
        if let Some(recent) = &mut self.recent
            && now >= recent.next
        {
            recent.next = now + PUBLISH_EVERY;
            let latencies = std::mem::replace(&mut recent.latencies, histogram());
            let _ = recent.to.send(latencies);
        }
    }
}

/// An open connection with its buffers, its random generator and its value.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    input: BytesMut,
    output: BytesMut,
    /// The requests of the batch in flight, in order.
    ops: Vec<Op>,
    key: Vec<u8>,
    value: Vec<u8>,
    rng: Rng,
}

impl Connection {
    pub async fn open(
        host: &str,
        port: u16,
        timeout: Duration,
        seed: u64,
        value_size: usize,
    ) -> std::io::Result<Connection> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {}", humantime::format_duration(timeout)),
                )
            })??;
        stream.set_nodelay(true)?;
        let mut rng = Rng::new(seed);
        let value = workload::value(&mut rng, value_size);
        Ok(Connection {
            stream,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: BytesMut::new(),
            ops: Vec::new(),
            key: Vec::new(),
            value,
            rng,
        })
    }

    /// Writes every key in `keys` once, `depth` requests per batch. Any refusal or loss fails.
    pub async fn preload(
        &mut self,
        plan: &Plan,
        keys: Range<u64>,
        depth: u64,
    ) -> Result<(), String> {
        let mut tally = Tally::new(None);
        let mut next = keys.start;
        while next < keys.end {
            let end = keys.end.min(next.saturating_add(depth));
            self.output.clear();
            self.ops.clear();
            for index in next..end {
                self.push(plan, Op::Set, index);
            }
            self.exchange(plan, &mut tally)
                .await
                .map_err(|lost| lost.to_string())?;
            if let Some(kind) = tally.errors.keys().next() {
                return Err(format!("the server refused a write ({kind})"));
            }
            next = end;
        }
        Ok(())
    }

    /// Sends random requests until the run is over or the connection is lost.
    pub async fn measure(
        mut self,
        plan: Arc<Plan>,
        shared: Arc<Shared>,
        progress: Option<UnboundedSender<Histogram<u64>>>,
    ) -> Tally {
        let mut tally = Tally::new(progress);
        loop {
            let batch = shared.claim(plan.pipeline);
            if batch == 0 {
                break;
            }
            self.output.clear();
            self.ops.clear();
            for _ in 0..batch {
                let op = self.rng.op(plan.read_ratio);
                let index = self.rng.below(plan.keyspace);
                self.push(&plan, op, index);
            }
            let before = tally.ops();
            let result = self.exchange(&plan, &mut tally).await;
            let answered = tally.ops() - before;
            shared.done.fetch_add(answered, Ordering::Relaxed);
            if let Err(lost) = result {
                tally.lose(&lost, batch - answered);
                break;
            }
            tally.publish(Instant::now());
        }
        tally
    }

    /// Adds a request for key `index` to the batch.
    fn push(&mut self, plan: &Plan, op: Op, index: u64) {
        plan.keys.write(index, &mut self.key);
        plan.codec
            .encode(op, &self.key, &self.value, &mut self.output);
        self.ops.push(op);
    }

    /// Writes the batch and reads its replies, concurrently (so a batch larger than the socket
    /// buffers cannot deadlock), recording each reply in `tally`.
    async fn exchange(&mut self, plan: &Plan, tally: &mut Tally) -> Result<(), Lost> {
        let Connection {
            stream,
            input,
            output,
            ops,
            ..
        } = self;
        let (mut reader, mut writer) = stream.split();
        let (timeout, limit) = (plan.timeout, plan.reply_limit());
        let start = Instant::now();
        let write = async {
            match tokio::time::timeout(timeout, writer.write_all(output)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Lost::Io(e)),
                Err(_) => Err(Lost::Timeout(timeout)),
            }
        };
        let read = async {
            let mut now = start;
            for &op in ops.iter() {
                loop {
                    match plan.codec.decode(input, op) {
                        Ok(Some((outcome, used))) => {
                            input.advance(used);
                            tally.record(op, outcome, now.saturating_duration_since(start));
                            break;
                        }
                        Ok(None) if input.len() > limit => {
                            let what = format!("a reply over {limit} bytes");
                            return Err(Lost::Bad(BadReply(what)));
                        }
                        Ok(None) => {}
                        Err(bad) => return Err(Lost::Bad(bad)),
                    }
                    input.reserve(READ_CHUNK);
                    match tokio::time::timeout(timeout, reader.read_buf(input)).await {
                        Ok(Ok(0)) => return Err(Lost::Closed),
                        Ok(Ok(_)) => now = Instant::now(),
                        Ok(Err(e)) => return Err(Lost::Io(e)),
                        Err(_) => return Err(Lost::Timeout(timeout)),
                    }
                }
            }
            Ok(())
        };
        tokio::try_join!(write, read).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_budget_is_never_exceeded() {
        let shared = Shared::new(Some(10), None);
        assert_eq!(
            [
                shared.claim(4),
                shared.claim(4),
                shared.claim(4),
                shared.claim(4)
            ],
            [4, 4, 2, 0]
        );
        let unbounded = Shared::new(None, None);
        assert_eq!(unbounded.claim(7), 7);
        unbounded.stop.store(true, Ordering::Relaxed);
        assert_eq!(unbounded.claim(7), 0);
        let past = Shared::new(None, Some(Instant::now()));
        assert_eq!(past.claim(1), 0);
    }

    #[test]
    fn outcomes_are_counted_by_kind() {
        let mut tally = Tally::new(None);
        tally.record(Op::Get, Outcome::Hit, Duration::from_micros(50));
        tally.record(Op::Get, Outcome::Miss, Duration::ZERO);
        tally.record(
            Op::Set,
            Outcome::Failed("ERR".into()),
            Duration::from_millis(1),
        );
        tally.lose(&Lost::Closed, 3);
        assert_eq!((tally.ops(), tally.hits, tally.misses), (3, 1, 1));
        assert_eq!(tally.reads.min(), 1, "a zero latency is recorded as 1 ns");
        assert!(tally.reads.max() >= 50_000, "the histogram grows to fit");
        assert_eq!(tally.errors.get("ERR"), Some(&1));
        assert_eq!(tally.errors.get(LOST), Some(&3));
        assert_eq!(tally.lost.as_deref(), Some("closed by the server"));
    }
}
