//! The one listener behind every front door: it accepts connections, holds each door to
//! `limits.max_connections` (refusing past it in the door's own words), places each connection on
//! the thread it will live on, and on shutdown stops accepting while open connections finish.
//!
//! A door declares only what differs between protocols ([`Door`]): its name, its refusal, where
//! its connections run, and how it serves one connection over any [`ByteStream`]. No door sees a
//! `TcpStream`, so the socket can be wrapped (TLS) here, once, for every door: in [`open`] for an
//! admitted connection and in [`refuse`] for a refused one. [`open`] runs on the connection's own
//! thread, after the move between runtimes (which needs the raw socket), so the wrapped stream
//! never has to move.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection_threads::ConnectionThreads;
use crate::tls::Tls;

/// How long the accept loop waits after a failed accept (typically out of file descriptors),
/// instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long a refused client has to take its refusal before the socket is closed anyway.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// The bytes a door's connection handler speaks over: a TCP socket today, the same socket behind
/// TLS later, or an in-memory pipe in tests.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T> ByteStream for T where T: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

/// The two ends of a connection, as the operating system saw them when it was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Addresses {
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The server's address the client reached.
    pub(crate) local: SocketAddr,
    /// The socket's file descriptor (`CLIENT LIST`'s `fd`); -1 where there is none.
    pub(crate) fd: i64,
}

/// The file descriptor of `tcp`, for `CLIENT LIST`.
fn fd_of(tcp: &TcpStream) -> i64 {
    #[cfg(unix)]
    {
        i64::from(std::os::fd::AsRawFd::as_raw_fd(tcp))
    }
    #[cfg(not(unix))]
    {
        let _ = tcp;
        -1
    }
}

/// Where a door's connections run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// As tasks on the shared multi-threaded runtime.
    Workers,
    /// Each on one of the [`ConnectionThreads`], for its whole life (see that module for why).
    ConnectionThreads,
}

/// A front door: what the listener needs to know about one protocol.
pub(crate) trait Door: Send + Sync + 'static {
    /// The door's name in logs.
    const NAME: &'static str;
    /// Written to a connection refused at the connection limit, which is then closed.
    const REFUSAL: &'static [u8];
    /// Where the door's connections run.
    const PLACEMENT: Placement;
    /// The door its connections are counted under.
    const COUNTED_AS: crate::stats::Door;

    /// Serves one admitted connection until it ends. On `stop`, stops taking new requests and
    /// returns once the requests already taken are answered.
    fn serve<S: ByteStream>(
        &self,
        stream: S,
        addresses: Addresses,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send;
}

/// How the server runs connections, shared by every door: the shutdown signal, the tracker
/// shutdown waits on, and the connection threads.
#[derive(Clone, Debug)]
pub(crate) struct Connections {
    pub(crate) stop: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) threads: Arc<ConnectionThreads>,
    /// Where connections are counted.
    pub(crate) stats: Arc<crate::stats::Stats>,
}

/// Counts a connection as open until it is dropped.
struct Open(Arc<crate::stats::Stats>, crate::stats::Door);

impl Open {
    fn new(stats: &Arc<crate::stats::Stats>, door: crate::stats::Door) -> Self {
        let counts = &stats.connections[door as usize];
        counts
            .accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        counts
            .open
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Open(stats.clone(), door)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections[self.1 as usize]
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Accepts connections for `door` until `connections.stop` is cancelled, then returns (closing
/// the listening socket) while the connections already accepted finish as tasks on
/// `connections.tasks`. At most `max_connections` are served at once; each holds a slot from
/// its acceptance until its handler returns.
pub(crate) async fn serve<D: Door>(
    listener: TcpListener,
    door: D,
    max_connections: usize,
    connections: Connections,
    tls: Option<Secure>,
) {
    let door = Arc::new(door);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut refusals = Throttle::default();
    loop {
        let accepted = tokio::select! {
            _ = connections.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(door = D::NAME, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            connections.stats.connections[D::COUNTED_AS as usize]
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // One line per interval however many are refused, so a flood cannot flood the log.
            if let Some(refused) = refusals.note(Instant::now()) {
                tracing::warn!(
                    door = D::NAME,
                    limit = max_connections,
                    refused,
                    "connections refused at the connection limit (count since the last warning)"
                );
            }
            match &tls {
                None => connections.tasks.spawn(refuse(tcp, D::REFUSAL)),
                Some(secure) => {
                    connections
                        .tasks
                        .spawn(refuse_secure(tcp, secure.clone(), D::REFUSAL))
                }
            };
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let counted = Open::new(&connections.stats, D::COUNTED_AS);
        let door = door.clone();
        let stop = connections.stop.clone();
        let tls = tls.clone();
        let connection = move |tcp: TcpStream| async move {
            match tls {
                None => open(&*door, tcp, peer, stop).await,
                Some(secure) => {
                    let addresses = Addresses {
                        peer,
                        local: tcp.local_addr().unwrap_or(peer),
                        fd: fd_of(&tcp),
                    };
                    // A client that sends no valid handshake in time (plain text on a TLS port,
                    // a stalled handshake) is dropped; it never held anyone else up.
                    match tokio::time::timeout(secure.handshake, secure.tls.acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(stream)) => door.serve(stream, addresses, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(door = D::NAME, %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(door = D::NAME, %peer, "TLS handshake took too long");
                        }
                    }
                }
            }
            drop(slot);
            drop(counted);
        };
        match D::PLACEMENT {
            Placement::Workers => {
                connections.tasks.spawn(connection(tcp));
            }
            Placement::ConnectionThreads => {
                connections
                    .threads
                    .adopt(&connections.tasks, tcp, connection)
            }
        }
    }
}

/// At most one warning per [`Throttle::INTERVAL`]: counts what happens in between and gives the
/// count with the next warning it lets through.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    pending: u64,
}

impl Throttle {
    const INTERVAL: Duration = Duration::from_secs(10);

    /// Notes one event at `now`; `Some(count)` (this one included) when a warning is due.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Self::INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// Hands an admitted socket to its door, on the thread the connection lives on. TLS will wrap
/// `tcp` here, before the door sees it. (Not an `async fn` while it has nothing to wait for: each
/// layer of future is one more step on every poll of every connection.)
fn open<D: Door>(
    door: &D,
    tcp: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) -> impl Future<Output = ()> + Send + '_ {
    let addresses = Addresses {
        peer,
        local: tcp.local_addr().unwrap_or(peer),
        fd: fd_of(&tcp),
    };
    door.serve(tcp, addresses, stop)
}

/// TLS on a listener: the server's TLS and how long a client has to complete its handshake.
#[derive(Clone, Debug)]
pub(crate) struct Secure {
    pub(crate) tls: Tls,
    pub(crate) handshake: Duration,
}

/// [`refuse`] over TLS: the handshake first, so a client that speaks only TLS can read why.
async fn refuse_secure(tcp: TcpStream, secure: Secure, refusal: &'static [u8]) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        if let Ok(mut stream) = secure.tls.acceptor.accept(tcp).await {
            let _ = stream.write_all(refusal).await;
            let _ = stream.shutdown().await;
        }
    })
    .await;
}

/// Writes a door's refusal to a connection past the limit and closes it, giving up after
/// [`REFUSAL_TIMEOUT`] on a client that does not read. TLS will wrap `tcp` here too, so the
/// refusal is readable by a client that speaks only TLS.
async fn refuse(mut tcp: TcpStream, refusal: &'static [u8]) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let _ = tcp.write_all(refusal).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::{Config, Limits};
    use crate::engine::Engine;
    use crate::http::{AppState, HttpDoor};
    use crate::line::LineDoor;
    use crate::resp::{RespDoor, Shared};

    /// Writes `request` to `door`'s handler over an in-memory pipe (no socket anywhere) and
    /// returns everything it answers until it closes the connection.
    async fn converse<D: Door>(door: &D, request: &[u8]) -> String {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let addresses = Addresses {
            peer: "192.0.2.7:4242".parse().expect("address"),
            local: "192.0.2.1:6379".parse().expect("address"),
            fd: 8,
        };
        let talk = async {
            client.write_all(request).await.expect("write");
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.expect("read");
            answer
        };
        let ((), answer) = tokio::join!(
            door.serve(server, addresses, CancellationToken::new()),
            talk
        );
        String::from_utf8(answer).expect("text")
    }

    #[tokio::test]
    async fn every_door_serves_a_stream_that_is_not_a_socket() {
        let engine = Arc::new(Engine::new());
        let resp = RespDoor::new(Shared::new(
            engine.clone(),
            Config::default(),
            Arc::new(crate::acl::Acl::default()),
        ));
        let answer = converse(&resp, b"SET k v\r\nGET k\r\nCLIENT LIST\r\nQUIT\r\n").await;
        assert!(answer.starts_with("+OK\r\n$1\r\nv\r\n"), "{answer}");
        assert!(
            answer.contains(" addr=192.0.2.7:4242 laddr=192.0.2.1:6379 "),
            "CLIENT LIST shows the addresses the listener passed: {answer}"
        );
        assert!(answer.ends_with("+OK\r\n"), "{answer}");

        let line = LineDoor::new(
            engine.clone(),
            Limits::default(),
            Arc::new(crate::acl::Acl::default()),
        );
        let answer = converse(&line, b"cmd=get|key=k\ncmd=create|key=l|body=w\ncmd=stop\n").await;
        assert_eq!(
            answer,
            "v\nw\n{\"error\":\"stop: closing the connection\",\"errorcode\":14,\"errors\":{}}\n"
        );

        let http = HttpDoor::new(AppState::new(
            engine,
            Limits::default(),
            Arc::new(crate::acl::Acl::default()),
        ));
        let answer = converse(
            &http,
            b"GET /kvs/l HTTP/1.1\r\nhost: kvs\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nw"), "{answer}");
    }

    /// A door that counts the connections it serves, greets each, echoes what it reads, and says
    /// goodbye when the server stops.
    struct Counting {
        served: Arc<AtomicUsize>,
    }

    impl Door for Counting {
        const NAME: &'static str = "counting";
        const REFUSAL: &'static [u8] = b"busy\n";
        const PLACEMENT: Placement = Placement::ConnectionThreads;
        const COUNTED_AS: crate::stats::Door = crate::stats::Door::Resp;

        async fn serve<S: ByteStream>(&self, mut stream: S, _: Addresses, stop: CancellationToken) {
            self.served.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(b"hello\n").await;
            let mut buf = [0u8; 64];
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let _ = stream.write_all(&buf[..n]).await;
                        }
                    },
                    _ = stop.cancelled() => {
                        let _ = stream.write_all(b"bye\n").await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                }
            }
        }
    }

    /// A listener on 127.0.0.1:0 for a [`Counting`] door with room for `max` connections.
    struct Running {
        addr: SocketAddr,
        served: Arc<AtomicUsize>,
        connections: Connections,
        accepting: tokio::task::JoinHandle<()>,
    }

    async fn start(max: usize) -> Running {
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("address");
        let served = Arc::new(AtomicUsize::new(0));
        let connections = Connections {
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            threads: Arc::new(ConnectionThreads::start(1).expect("threads")),
            stats: Arc::default(),
        };
        let door = Counting {
            served: served.clone(),
        };
        let accepting = tokio::spawn(serve(socket, door, max, connections.clone(), None));
        Running {
            addr,
            served,
            connections,
            accepting,
        }
    }

    /// Reads until the peer closes (or 5 s pass).
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn read_exactly(stream: &mut TcpStream, n: usize) -> String {
        let mut out = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut out))
            .await
            .expect("in time")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_flood_of_refusals_makes_one_warning_per_interval() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.note(start), Some(1), "the first is told at once");
        let warnings = (1..=1000)
            .filter_map(|i| throttle.note(start + Duration::from_millis(i)))
            .count();
        assert_eq!(warnings, 0, "the next thousand wait for the interval");
        assert_eq!(
            throttle.note(start + Throttle::INTERVAL),
            Some(1001),
            "then one warning counts them all"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn past_the_limit_the_refusal_is_sent_and_the_handler_never_runs() {
        let l = start(1).await;
        let mut first = TcpStream::connect(l.addr).await.expect("connect");
        assert_eq!(read_exactly(&mut first, 6).await, "hello\n");

        for _ in 0..3 {
            let mut refused = TcpStream::connect(l.addr).await.expect("connect");
            let _ = refused.write_all(b"anyone?\n").await;
            assert_eq!(read_to_close(&mut refused).await, "busy\n");
        }
        assert_eq!(
            l.served.load(Ordering::SeqCst),
            1,
            "a refused one was served"
        );

        // The first connection is unaffected, and once it closes its slot is free again.
        first.write_all(b"ping\n").await.expect("write");
        assert_eq!(read_exactly(&mut first, 5).await, "ping\n");
        drop(first);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut next = TcpStream::connect(l.addr).await.expect("connect");
            let mut greeting = [0u8; 5];
            if next.read_exact(&mut greeting).await.is_ok() && &greeting == b"hello" {
                break;
            }
            assert!(Instant::now() < deadline, "the freed slot never came back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(l.served.load(Ordering::SeqCst), 2);
        l.connections.stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn stop_closes_the_door_and_lets_open_connections_finish() {
        let l = start(10).await;
        let mut open = TcpStream::connect(l.addr).await.expect("connect");
        assert_eq!(read_exactly(&mut open, 6).await, "hello\n");

        l.connections.stop.cancel();
        l.connections.tasks.close();
        tokio::time::timeout(Duration::from_secs(5), l.accepting)
            .await
            .expect("the accept loop ends")
            .expect("accept task");
        assert!(
            TcpStream::connect(l.addr).await.is_err(),
            "still accepting after stop"
        );
        assert_eq!(read_to_close(&mut open).await, "bye\n");
        tokio::time::timeout(Duration::from_secs(5), l.connections.tasks.wait())
            .await
            .expect("every connection finished");
    }
}
