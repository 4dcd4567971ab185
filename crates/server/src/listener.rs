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
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection_threads::ConnectionThreads;

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
) {
    let door = Arc::new(door);
    let slots = Arc::new(Semaphore::new(max_connections));
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
            tracing::warn!(
                door = D::NAME,
                limit = max_connections,
                "connection refused: at the connection limit"
            );
            connections.tasks.spawn(refuse(tcp, D::REFUSAL));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let door = door.clone();
        let stop = connections.stop.clone();
        let connection = move |tcp: TcpStream| async move {
            open(&*door, tcp, peer, stop).await;
            drop(slot);
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

/// Hands an admitted socket to its door, on the thread the connection lives on. TLS will wrap
/// `tcp` here, before the door sees it.
async fn open<D: Door>(door: &D, tcp: TcpStream, peer: SocketAddr, stop: CancellationToken) {
    let addresses = Addresses {
        peer,
        local: tcp.local_addr().unwrap_or(peer),
    };
    door.serve(tcp, addresses, stop).await;
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
