//! The Redis-protocol front door: RESP2 and RESP3 (switched per connection with `HELLO`),
//! pipelining, and the connection-level commands (PING, HELLO, CLIENT, INFO, ...). Data commands
//! are parsed into store commands and executed by the same engine as every other front door.

mod admin;
mod clients;
mod command;
mod connection;
mod persistence;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use clients::Clients;

use crate::config::Config;
use crate::connection_threads::ConnectionThreads;
use crate::engine::Engine;

/// What every RESP connection shares.
#[derive(Debug)]
pub struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: Config,
    pub(crate) clients: Clients,
}

impl Shared {
    pub fn new(engine: Arc<Engine>, config: Config) -> Arc<Self> {
        Arc::new(Self {
            engine,
            config,
            clients: Clients::default(),
        })
    }
}

/// Accepts connections until `stop` is cancelled; each runs as a task on `tasks`.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: TaskTracker,
    threads: Arc<ConnectionThreads>,
) {
    let max = shared.config.limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = max,
                "RESP connection refused: at the connection limit"
            );
            tasks.spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        threads.adopt(&tasks, stream, move |stream| async move {
            connection::run(stream, peer, shared, stop).await;
            drop(slot);
        });
    }
}

async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        let _ = stream.shutdown().await;
    })
    .await;
}
