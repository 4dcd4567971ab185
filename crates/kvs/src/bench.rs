//! `kvs bench`: a load generator for a running kvs, to learn how fast a deployment is. It opens
//! `-c` connections over one protocol (RESP, HTTP or the line protocol), sends GETs and writes of
//! random keys with `-P` requests in flight per connection, and reports throughput, errors and
//! HDR latency percentiles. Exit status: 0 the run finished; 2 bad usage; 3 the server could not
//! be reached, refused the preload, or every connection was lost.

mod cache;
mod codec;
mod connection;
mod feeds;
mod http;
mod line;
mod report;
mod resp;
mod workload;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use codec::{Codec, Protocol};
use connection::{Connection, Plan, Shared, Tally};
use report::{Settings, Summary};
use workload::Keys;

/// Runs without `--requests` or `--duration` last this long.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Bytes of requests per batch while preloading, unless `--pipeline` asks for more.
const PRELOAD_BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, Args)]
#[command(
    after_help = "Example: kvs bench --protocol resp -c 50 -P 16 -d 256 --preload --duration 30s\n\
    Exit status: 0 the run finished (errors are reported, not fatal); 2 bad usage; 3 the server \
    could not be reached, refused the preload, or every connection was lost."
)]
pub struct BenchArgs {
    /// The protocol to measure.
    #[arg(long, value_enum, default_value_t = Protocol::Resp)]
    protocol: Protocol,

    /// The server's host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// The server's port [default: 6379 for resp, 9000 for http, 9001 for line].
    #[arg(long)]
    port: Option<u16>,

    /// Connections, opened before measuring and each run by a task of its own.
    #[arg(short = 'c', long, default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    connections: u64,

    /// Requests written back to back on a connection before its replies are read (for http,
    /// HTTP/1.1 pipelining on a keep-alive connection; for line, lines back to back).
    #[arg(short = 'P', long, default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pipeline: u64,

    /// Size of each written value in bytes (the values are made of a-z and 0-9).
    #[arg(short = 'd', long, value_name = "BYTES", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    value_size: u64,

    /// Distinct keys; each request picks one uniformly at random.
    #[arg(short = 'r', long, value_name = "KEYS", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    keyspace: u64,

    /// Fraction of requests that are reads (GET), from 0 to 1; the rest are writes (SET over RESP,
    /// PUT over HTTP, create over the line protocol).
    #[arg(long, value_name = "RATIO", default_value_t = 0.5, value_parser = parse_ratio)]
    read_ratio: f64,

    /// How long to measure, e.g. 30s, 2m, 500ms [default: 10s, unless --requests is given].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Requests to send over all connections; the run ends when they are answered (or when
    /// --duration, if given too, is up).
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,

    /// Keys are this prefix followed by a zero-padded index, e.g. bench:000000012345.
    #[arg(long, value_name = "PREFIX", default_value = "bench:")]
    key_prefix: String,

    /// Before measuring, write every key once (pipelined), so that reads find their keys.
    #[arg(long)]
    preload: bool,

    /// Print the summary as one JSON object on standard output instead of a table.
    #[arg(long)]
    json: bool,

    /// Give up on a connection that makes no progress for this long (connecting, writing or
    /// waiting for a reply).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,

    /// Instead of random GETs and SETs, run a read-through cache trace over RESP: GET each key
    /// of the trace and SET it (100 to 1000 bytes) on a miss, then print the hit ratio,
    /// throughput and latency as JSON. a: Zipf 0.99; b: Zipf 0.7; c: Zipf 0.99 interrupted by a
    /// scan of cold keys (bench/eviction.sh; the traces are bench/cachesim's).
    #[arg(long, value_enum, value_name = "TRACE")]
    trace: Option<cache::TraceName>,

    /// Instead of GETs and SETs, measure pub/sub over RESP: --publishers connections PUBLISH
    /// (-P in flight each) to --channels channels, --subscribers connections SUBSCRIBE to them;
    /// prints deliveries per second and publish-to-receive latency as JSON (bench/pubsub.sh).
    #[arg(long, conflicts_with = "trace")]
    pubsub: bool,

    /// Instead of GETs and SETs, measure HTTP watches: this many watchers of one prefix (on
    /// --http-port) while -c RESP connections SET keys under it (-P in flight each); prints
    /// events delivered per second and write-to-event latency as JSON.
    #[arg(long, value_name = "WATCHERS", conflicts_with_all = ["trace", "pubsub"])]
    watch: Option<usize>,

    /// The HTTP port for --watch.
    #[arg(long, default_value_t = 9000)]
    http_port: u16,

    /// Publishing connections for --pubsub.
    #[arg(long, default_value_t = 1)]
    publishers: usize,

    /// Subscribing connections for --pubsub.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,

    /// Channels for --pubsub: publisher and subscriber i use channel i mod this.
    #[arg(long, default_value_t = 1)]
    channels: usize,

    /// Zipf draws in the --trace (trace c adds its scan).
    #[arg(long, value_name = "N", default_value_t = 5_000_000,
          value_parser = clap::value_parser!(u64).range(2..=100_000_000))]
    trace_length: u64,
}

/// A duration such as `10s`, `1m30s` or `500ms`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(text.trim()).map_err(|e| e.to_string()),
    }
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
}

/// A failure, with the exit status it maps to.
struct Failure(u8, String);

/// `kvs bench`: measures, prints the summary, and maps failures to exit statuses.
pub fn run(args: BenchArgs) -> ExitCode {
    match bench(&args) {
        Ok(code) => code,
        Err(Failure(code, message)) => {
            eprintln!("kvs: {message}");
            ExitCode::from(code)
        }
    }
}

fn bench(args: &BenchArgs) -> Result<ExitCode, Failure> {
    if args.protocol == Protocol::Line && !line::usable_key_prefix(&args.key_prefix) {
        return Err(Failure(
            2,
            format!(
                "--key-prefix {:?} cannot be sent over the line protocol \
                 (no '|', '\\', line breaks or leading spaces)",
                args.key_prefix
            ),
        ));
    }
    let port = args.port.unwrap_or_else(|| args.protocol.default_port());
    let authority = if args.host.contains(':') {
        format!("[{}]:{port}", args.host)
    } else {
        format!("{}:{port}", args.host)
    };
    if let Some(trace) = args.trace {
        if args.protocol != Protocol::Resp {
            return Err(Failure(2, "--trace runs over --protocol resp only".into()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure(3, format!("cannot start: {e}")))?;
        let connections = usize::try_from(args.connections).unwrap_or(usize::MAX);
        let summary = runtime
            .block_on(cache::run(
                &authority,
                trace,
                args.trace_length,
                connections,
            ))
            .map_err(|e| Failure(3, e))?;
        println!("{summary}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.pubsub || args.watch.is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure(3, format!("cannot start: {e}")))?;
        let duration = args.duration.unwrap_or(DEFAULT_DURATION);
        let size = usize::try_from(args.value_size).unwrap_or(usize::MAX);
        let pipeline = usize::try_from(args.pipeline).unwrap_or(1);
        let summary = match args.watch {
            Some(watchers) => runtime.block_on(feeds::watch(feeds::WatchPlan {
                resp: authority.clone(),
                http: format!("{}:{}", args.host, args.http_port),
                watchers,
                writers: usize::try_from(args.connections).unwrap_or(1),
                size,
                pipeline,
                duration,
            })),
            None => runtime.block_on(feeds::pubsub(feeds::PubSubPlan {
                authority: authority.clone(),
                publishers: args.publishers,
                subscribers: args.subscribers,
                channels: args.channels,
                size,
                pipeline,
                duration,
            })),
        }
        .map_err(|e| Failure(3, e))?;
        println!("{summary}");
        return Ok(ExitCode::SUCCESS);
    }
    let codec = Codec::new(args.protocol, &authority);
    let keys = Keys::new(&codec.key_prefix(&args.key_prefix), args.keyspace);
    let value_size = usize::try_from(args.value_size)
        .map_err(|_| Failure(2, format!("--value-size {} is too large", args.value_size)))?;
    let plan = Arc::new(Plan {
        codec,
        keys,
        keyspace: args.keyspace,
        read_ratio: args.read_ratio,
        pipeline: args.pipeline,
        value_size,
        timeout: args.timeout,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(3, format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let mut connections = connect(args, port, &authority).await?;
        let preload = if args.preload {
            let started = Instant::now();
            connections = preload(connections, &plan)
                .await
                .map_err(|e| Failure(3, format!("preloading {authority} failed: {e}")))?;
            Some(started.elapsed())
        } else {
            None
        };
        let (elapsed, tallies) = measure(connections, args, &plan).await?;
        let summary = Summary::new(elapsed, tallies);
        let settings = Settings {
            protocol: args.protocol.name(),
            address: authority.clone(),
            connections: args.connections,
            pipeline: args.pipeline,
            value_size,
            keyspace: args.keyspace,
            read_ratio: args.read_ratio,
            preload,
        };
        if args.json {
            println!("{}", summary.json(&settings));
        } else {
            print!("{}", summary.table(&settings));
        }
        if summary.lost_connections() == args.connections {
            return Err(Failure(
                3,
                format!("every connection to {authority} was lost"),
            ));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Opens every connection, concurrently; the first failure ends the run.
async fn connect(args: &BenchArgs, port: u16, authority: &str) -> Result<Vec<Connection>, Failure> {
    let base_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64);
    let mut opening = JoinSet::new();
    for i in 0..args.connections {
        let host = args.host.clone();
        let (timeout, size) = (args.timeout, args.value_size as usize);
        let seed = base_seed ^ i.wrapping_mul(0xA076_1D64_78BD_642F);
        opening.spawn(async move { Connection::open(&host, port, timeout, seed, size).await });
    }
    let mut connections = Vec::new();
    while let Some(opened) = opening.join_next().await {
        match opened {
            Ok(Ok(connection)) => connections.push(connection),
            Ok(Err(e)) => return Err(Failure(3, format!("cannot connect to {authority}: {e}"))),
            Err(e) => return Err(Failure(3, format!("cannot connect to {authority}: {e}"))),
        }
    }
    Ok(connections)
}

/// Writes every key once, the keyspace split evenly over the connections.
async fn preload(
    connections: Vec<Connection>,
    plan: &Arc<Plan>,
) -> Result<Vec<Connection>, String> {
    let per_batch = (PRELOAD_BATCH_BYTES / (plan.value_size + 64)).clamp(1, 256) as u64;
    let depth = per_batch.max(plan.pipeline);
    let count = connections.len() as u128;
    let share = |i: u128| (u128::from(plan.keyspace) * i / count) as u64;
    let mut writing = JoinSet::new();
    for (i, mut connection) in connections.into_iter().enumerate() {
        let keys = share(i as u128)..share(i as u128 + 1);
        let plan = plan.clone();
        writing.spawn(async move {
            let result = connection.preload(&plan, keys, depth).await;
            result.map(|()| connection)
        });
    }
    let mut connections = Vec::new();
    while let Some(done) = writing.join_next().await {
        connections.push(done.map_err(|e| e.to_string())??);
    }
    Ok(connections)
}

/// Runs every connection until the budget or the time is used up, or Ctrl-C; returns how long
/// it took and what each connection measured.
async fn measure(
    connections: Vec<Connection>,
    args: &BenchArgs,
    plan: &Arc<Plan>,
) -> Result<(Duration, Vec<Tally>), Failure> {
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_DURATION),
    };
    let started = Instant::now();
    let shared = Arc::new(Shared::new(args.requests, duration.map(|d| started + d)));
    let (progress, latencies) = if std::io::stderr().is_terminal() {
        let (tx, rx) = mpsc::unbounded_channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let mut running = JoinSet::new();
    for connection in connections {
        running.spawn(connection.measure(plan.clone(), shared.clone(), progress.clone()));
    }
    drop(progress);
    let mut helpers = JoinSet::new();
    if let Some(latencies) = latencies {
        helpers.spawn(show_progress(shared.clone(), latencies, started));
    }
    let on_interrupt = shared.clone();
    helpers.spawn(async move {
        // The first Ctrl-C ends the run with a summary; a second one ends the process.
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.stop.store(true, Ordering::Relaxed);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let mut tallies = Vec::new();
    while let Some(done) = running.join_next().await {
        tallies.push(done.map_err(|e| Failure(3, format!("a connection task failed: {e}")))?);
    }
    let elapsed = started.elapsed();
    helpers.shutdown().await;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
    Ok((elapsed, tallies))
}

/// Redraws the progress line on standard error once a second.
async fn show_progress(
    shared: Arc<Shared>,
    mut latencies: mpsc::UnboundedReceiver<Histogram<u64>>,
    started: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_ops, mut last) = (0, started);
    loop {
        tick.tick().await;
        let mut window = connection::histogram();
        while let Ok(recent) = latencies.try_recv() {
            let _ = window.add(&recent);
        }
        let now = Instant::now();
        let ops = shared.done.load(Ordering::Relaxed);
        let rate = (ops - last_ops) as f64 / now.duration_since(last).as_secs_f64().max(1e-9);
        let p99 = (!window.is_empty()).then(|| window.value_at_quantile(0.99));
        eprint!(
            "{}",
            report::progress_line(now.duration_since(started), ops, rate, p99)
        );
        (last_ops, last) = (ops, now);
    }
}
