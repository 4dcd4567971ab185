//! Starting a real kvs server on 127.0.0.1:0 for a test, and stopping it.
#![allow(dead_code)]

pub mod gated_disk;
pub mod redis_server;

use std::net::SocketAddr;

use std::sync::Arc;

use kvs_server::{Config, Engine, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; dropping it without [`TestServer::stop`] aborts it.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The Redis-protocol address.
    pub resp: SocketAddr,
    /// The line-protocol address.
    pub line: SocketAddr,
    /// The TLS addresses (HTTP, RESP, line), when the config asked for them.
    pub tls: (Option<SocketAddr>, Option<SocketAddr>, Option<SocketAddr>),
    /// The server's engine, to look behind the API (e.g. at memory held by expired keys).
    pub engine: Arc<Engine>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// A server with default limits on an ephemeral port.
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// A server whose default config `adjust` may change before it binds 127.0.0.1:0.
    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            resp: SocketAddr::from(([127, 0, 0, 1], 0)),
            line: SocketAddr::from(([127, 0, 0, 1], 0)),
            persistence: kvs_server::Persistence::in_memory(),
            ..Config::default()
        };
        adjust(&mut config);
        Self::serve(Server::bind(config).await.expect("server binds"))
    }

    /// A server on 127.0.0.1:0 serving `engine` (e.g. one whose disk a test controls).
    pub async fn with_engine(engine: Engine) -> Self {
        let config = Config {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            resp: SocketAddr::from(([127, 0, 0, 1], 0)),
            line: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        };
        Self::serve(
            Server::bind_engine(config, engine)
                .await
                .expect("server binds"),
        )
    }

    fn serve(server: Server) -> Self {
        let addr = server.http_addr();
        let engine = server.engine();
        let resp = server.resp_addr();
        let line = server.line_addr();
        let tls = server.tls_addrs();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            addr,
            resp,
            line,
            tls,
            engine,
            stop: Some(tx),
            task,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Asks the server to shut down gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.expect("server task ends cleanly");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends one line-protocol request on a connection of its own and returns the reply line, its
/// newline included (5 s at most).
pub async fn line_request(s: &TestServer, request: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(s.line)
        .await
        .expect("connect");
    let (r, mut w) = stream.into_split();
    w.write_all(format!("{request}\n").as_bytes())
        .await
        .expect("send");
    let mut reply = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        BufReader::new(r).read_line(&mut reply),
    )
    .await
    .expect("a reply in time")
    .expect("read");
    reply
}

/// A line-protocol connection kept open for many requests.
pub struct Line {
    pub reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    pub writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Line {
    pub async fn connect(s: &TestServer) -> Self {
        let (r, w) = tokio::net::TcpStream::connect(s.line)
            .await
            .expect("connect")
            .into_split();
        Self {
            reader: tokio::io::BufReader::new(r),
            writer: w,
        }
    }

    /// Sends one request and gives its reply line, without the newline.
    pub async fn send(&mut self, line: &str) -> String {
        use tokio::io::AsyncWriteExt;
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("send");
        self.read().await
    }

    /// The next reply line, without the newline (5 s at most).
    pub async fn read(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut reply = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.reader.read_line(&mut reply),
        )
        .await
        .expect("a reply within 5 s")
        .expect("read");
        reply.trim_end().to_owned()
    }
}

/// A client that neither follows redirects nor pools across tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// Runs `tests/python/<script>` against the server's RESP port and requires it to succeed and to
/// print `done` (so a script that stopped early cannot pass).
pub async fn run_python(s: &TestServer, script: &str, done: &str) {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new("python3")
        .args([path.as_str(), &s.resp.port().to_string()])
        .output()
        .await
        .expect("python3 runs (see .ci/run)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(done),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A multiplexed connection of the Rust redis client to `addr` (`host:port`).
pub async fn connect_redis(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

/// A small deterministic generator (xorshift), so a failing random test can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len() as u64) as usize]
    }
}
