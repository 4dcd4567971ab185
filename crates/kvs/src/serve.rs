//! `kvs serve`: configuration from defaults, an optional TOML file and flags; logs; signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use kvs_server::config::parse_duration;
use kvs_server::{Config, FsyncPolicy};

/// Flags override the config file, which overrides the embedded defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags win over it). Keys: http, resp, line; under
    /// [limits]: max_key_len, max_value_size, max_connections, max_header_size, max_headers,
    /// client_query_buffer_limit, maxmemory_clients, header_timeout,
    /// body_timeout; under [persistence]: in_memory, data_dir, fsync, snapshot_after,
    /// segment_size, truncate_corrupt_log; under [security]: requirepass, aclfile, protected_mode;
    /// under [tls]: cert_file, key_file, ca_cert_file, http, resp, line, auth_clients; under
    /// [feed]: history_items, history_bytes; under [memory]: maxmemory, maxmemory_policy,
    /// maxmemory_samples, lfu_log_factor, lfu_decay_time; under [pubsub]:
    /// notify_keyspace_events, client_output_buffer_limit.
    #[arg(long, short, value_name = "FILE", env = "KVS_CONFIG")]
    config: Option<PathBuf>,

    /// Address of the HTTP API [default: 127.0.0.1:9000]. Use port 0 for any free port.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,

    /// Address of the Redis protocol (RESP2/RESP3) [default: 127.0.0.1:6379]. Port 0: any free.
    #[arg(long, value_name = "ADDR")]
    resp: Option<SocketAddr>,

    /// Address of the line protocol, `cmd=get | key=1` [default: 127.0.0.1:9001]. Port 0: any free.
    #[arg(long, value_name = "ADDR")]
    line: Option<SocketAddr>,

    /// Longest key in bytes; longer keys are refused (HTTP 414) [default: 4096].
    #[arg(long, value_name = "BYTES")]
    max_key_len: Option<usize>,

    /// Largest value in bytes on every protocol; larger ones are refused (HTTP 413, RESP protocol
    /// error) before they are read [default: 67108864 = 64 MiB].
    #[arg(long, value_name = "BYTES")]
    max_value_size: Option<usize>,

    /// Most simultaneous client connections per listener; more are refused (HTTP 503, RESP
    /// "max number of clients reached") and closed [default: 10000].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,

    /// Largest request head (request line plus headers) in bytes; larger get 431
    /// [default: 16384, at least 8192].
    #[arg(long, value_name = "BYTES")]
    max_header_size: Option<usize>,

    /// Most headers in one HTTP request; more get 431 [default: 100].
    #[arg(long, value_name = "N")]
    max_headers: Option<usize>,

    /// Most memory one RESP request may hold while it arrives, its arguments' records counted
    /// (Redis's client-query-buffer-limit) [default: 1073741824 = 1 GiB].
    #[arg(long, value_name = "BYTES")]
    client_query_buffer_limit: Option<usize>,

    /// Most memory all RESP clients' buffers may hold together; past it the largest are
    /// disconnected (Redis's maxmemory-clients; 0: no limit) [default: 2147483648 = 2 GiB].
    #[arg(long, value_name = "BYTES")]
    maxmemory_clients: Option<usize>,

    /// Time a client has to send a complete request head, e.g. 10s or 500ms; slower clients are
    /// disconnected [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    header_timeout: Option<Duration>,

    /// Time a client has to send a complete request body; slower bodies get 408 [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    body_timeout: Option<Duration>,

    /// Directory for the write-ahead log and snapshots, locked while the server runs
    /// [default: kvs-data, in the directory the server starts in].
    #[arg(long, value_name = "DIR", env = "KVS_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// When writes are made durable: `always` (a write is acknowledged after the fsync that
    /// covers it; survives power loss), `everysec` (acknowledged once written to the OS, fsynced
    /// every second; survives a process crash) or `no` (fsync left to the OS) [default: everysec].
    #[arg(long, value_name = "POLICY")]
    fsync: Option<FsyncPolicy>,

    /// Threads that serve requests [default: one per CPU core]. On a machine shared with the
    /// clients (a benchmark on one box), 1 can do more work per CPU-second than the default,
    /// since no request then moves between threads; docs/benchmarks.md shows both.
    #[arg(long, value_name = "N", env = "KVS_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,

    /// Keep nothing on disk: all data is lost when the server stops.
    #[arg(long, conflicts_with_all = ["data_dir", "fsync"])]
    in_memory: bool,

    /// Take a snapshot once this many bytes of log were written since the last one
    /// [default: 67108864 = 64 MiB].
    #[arg(long, value_name = "BYTES")]
    snapshot_after: Option<u64>,

    /// If the log is damaged somewhere other than its very end, cut it at the first bad record
    /// and start, losing every later record, instead of refusing to start.
    #[arg(long)]
    truncate_corrupt_log: bool,

    /// The password of the `default` user, as Redis's requirepass. Prefer the environment
    /// variable or the config file: a flag shows in `ps`.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "KVS_REQUIREPASS",
        hide_env_values = true
    )]
    requirepass: Option<String>,

    /// Users and permissions in Redis's users.acl format; ACL SAVE writes it, ACL LOAD reads it.
    #[arg(long, value_name = "FILE", conflicts_with = "requirepass")]
    aclfile: Option<PathBuf>,

    /// Serve HTTPS at this address too (needs --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDR")]
    tls_http: Option<SocketAddr>,

    /// Serve the Redis protocol over TLS at this address too (Redis's tls-port).
    #[arg(long, value_name = "ADDR")]
    tls_resp: Option<SocketAddr>,

    /// Serve the line protocol over TLS at this address too.
    #[arg(long, value_name = "ADDR")]
    tls_line: Option<SocketAddr>,

    /// The TLS certificate chain (PEM). Replaced on disk, it is picked up without a restart.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// The TLS private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// CA certificates (PEM) client certificates must chain to.
    #[arg(long, value_name = "FILE")]
    tls_ca_cert: Option<PathBuf>,

    /// Client certificates: no, optional or yes (required) [default: no].
    #[arg(long, value_name = "no|optional|yes")]
    tls_auth_clients: Option<kvs_server::tls::ClientAuth>,

    /// `no` lets kvs listen beyond the loopback interface with no password [default: yes].
    #[arg(long, value_name = "yes|no", value_parser = parse_yes_no)]
    protected_mode: Option<bool>,

    /// Memory limit, e.g. 100mb or 2gb (Redis's units: k/m/g are powers of 1000, kb/mb/gb of
    /// 1024; 0 = no limit). Past it, keys are evicted by --maxmemory-policy, or writes refused
    /// [default: 0].
    #[arg(long, value_name = "BYTES", value_parser = kvs_server::memory::parse_memory)]
    maxmemory: Option<u64>,

    /// What to do at the memory limit: noeviction (refuse writes that need memory),
    /// allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random,
    /// volatile-ttl, or allkeys-s3fifo (kvs's own, scan-resistant; README "kvs as a cache")
    /// [default: noeviction].
    #[arg(long, value_name = "POLICY")]
    maxmemory_policy: Option<kvs_server::memory::Policy>,

    /// Keys looked at per eviction step; more is closer to exact LRU/LFU and costs more
    /// [default: 5].
    #[arg(long, value_name = "N")]
    maxmemory_samples: Option<usize>,

    /// How much recent change history watchers can resume from: a number of changes
    /// (`100000`, the default count) or a size (`64mb`, the default size). Older positions
    /// answer 410 unless the log still has them.
    #[arg(long, value_name = "CHANGES|SIZE", value_parser = parse_history)]
    watch_history: Option<History>,

    /// Keyspace events published on pub/sub channels, in Redis's letters (`KEA`: every event
    /// on both kinds of channel) [default: none].
    #[arg(long, value_name = "FLAGS")]
    notify_keyspace_events: Option<String>,

    /// Do not serve the web console at /ui/ on the HTTP door.
    #[arg(long)]
    no_ui: bool,

    /// Requests slower than this many microseconds go to the slow log (negative: none; 0:
    /// every request) [default: 10000].
    #[arg(long, value_name = "MICROSECONDS", allow_hyphen_values = true)]
    slowlog_log_slower_than: Option<i64>,

    /// Entries the slow log keeps [default: 128].
    #[arg(long, value_name = "N")]
    slowlog_max_len: Option<usize>,

    /// How log lines are written: `text` for people, `json` (one object per line) for log
    /// collectors. The level comes from --log-level, or RUST_LOG when that is unset.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    /// The least important log lines written: error, warn, info, debug or trace (or any
    /// RUST_LOG directive) [default: RUST_LOG, else info].
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

/// `--watch-history`: a count of changes, or a size with a unit.
#[derive(Clone, Copy, Debug)]
enum History {
    Items(usize),
    Bytes(usize),
}

fn parse_history(text: &str) -> Result<History, String> {
    if let Ok(n) = text.trim().parse::<usize>() {
        return Ok(History::Items(n));
    }
    kvs_server::memory::parse_memory(text)
        .map(|b| History::Bytes(b as usize))
        .map_err(|_| format!("expected a number of changes or a size such as 64mb, not {text:?}"))
}

fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, not {text:?}")),
    }
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let l = &mut config.limits;
        if let Some(v) = self.http {
            config.http = v;
        }
        if let Some(v) = self.resp {
            config.resp = v;
        }
        if let Some(v) = self.line {
            config.line = v;
        }
        if let Some(v) = self.max_key_len {
            l.max_key_len = v;
        }
        if let Some(v) = self.max_value_size {
            l.max_value_size = v;
        }
        if let Some(v) = self.max_connections {
            l.max_connections = v;
        }
        if let Some(v) = self.max_header_size {
            l.max_header_size = v;
        }
        if let Some(v) = self.max_headers {
            l.max_headers = v;
        }
        if let Some(v) = self.client_query_buffer_limit {
            l.client_query_buffer_limit = v;
        }
        if let Some(v) = self.maxmemory_clients {
            l.maxmemory_clients = v;
        }
        if let Some(v) = self.header_timeout {
            l.header_timeout = v;
        }
        if let Some(v) = self.body_timeout {
            l.body_timeout = v;
        }
        let p = &mut config.persistence;
        if let Some(v) = &self.data_dir {
            p.data_dir = v.clone();
        }
        if let Some(v) = self.fsync {
            p.fsync = v;
        }
        if let Some(v) = self.snapshot_after {
            p.snapshot_after = v;
        }
        p.in_memory |= self.in_memory;
        p.truncate_corrupt_log |= self.truncate_corrupt_log;
        if let Some(v) = &self.requirepass {
            config.security.requirepass = Some(v.clone());
        }
        if let Some(v) = &self.aclfile {
            config.security.aclfile = Some(v.clone());
        }
        if let Some(v) = self.protected_mode {
            config.security.protected_mode = v;
        }
        let t = &mut config.tls;
        for (flag, setting) in [
            (self.tls_http, &mut t.http),
            (self.tls_resp, &mut t.resp),
            (self.tls_line, &mut t.line),
        ] {
            if flag.is_some() {
                *setting = flag;
            }
        }
        for (flag, setting) in [
            (&self.tls_cert, &mut t.cert_file),
            (&self.tls_key, &mut t.key_file),
            (&self.tls_ca_cert, &mut t.ca_cert_file),
        ] {
            if flag.is_some() {
                setting.clone_from(flag);
            }
        }
        if let Some(v) = self.tls_auth_clients {
            t.auth_clients = v;
        }
        let m = &mut config.memory;
        if let Some(v) = self.maxmemory {
            m.maxmemory = v;
        }
        if let Some(v) = self.maxmemory_policy {
            m.maxmemory_policy = v;
        }
        if let Some(v) = self.maxmemory_samples {
            m.maxmemory_samples = v;
        }
        match self.watch_history {
            Some(History::Items(n)) => config.feed.history_items = n,
            Some(History::Bytes(n)) => config.feed.history_bytes = n,
            None => {}
        }
        if let Some(v) = &self.notify_keyspace_events {
            config.pubsub.notify_keyspace_events = v.clone();
        }
        let o = &mut config.observability;
        if self.no_ui {
            o.ui = false;
        }
        if let Some(v) = self.slowlog_log_slower_than {
            o.slowlog_log_slower_than = v;
        }
        if let Some(v) = self.slowlog_max_len {
            o.slowlog_max_len = v;
        }
        config.validate()?;
        Ok(config)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let filter = match &args.log_level {
        Some(level) => tracing_subscriber::EnvFilter::try_new(level).with_context(|| {
            format!("--log-level {level:?} is not a level or a RUST_LOG directive")
        })?,
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        runtime.worker_threads(usize::from(n));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Handlers are installed before the listener binds, so a signal sent as soon as the
        // server says it is listening is never lost to the default action.
        let shutdown = shutdown_signal()?;
        let server = kvs_server::Server::bind(config).await?;
        server.run(shutdown).await?;
        anyhow::Ok(())
    })
}

/// A future that completes on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are
/// registered when this is called, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    })
}

/// A future that completes on the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("received Ctrl-C");
        }
    })
}
