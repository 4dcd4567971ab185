//! Binding, running and stopping a kvs server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError};
use crate::engine::Engine;
use crate::{expiry, http, line, resp};

/// How long in-flight requests may take to finish once shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is taken or not ours to bind; the text includes the operating system's reason.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A server whose listeners are bound but which does not yet accept connections.
#[derive(Debug)]
pub struct Server {
    config: Config,
    engine: Arc<Engine>,
    http: TcpListener,
    http_addr: SocketAddr,
    resp: TcpListener,
    resp_addr: SocketAddr,
    line: TcpListener,
    line_addr: SocketAddr,
}

impl Server {
    /// Validates `config` and binds every listener, so a busy port fails here, before serving.
    pub async fn bind(config: Config) -> Result<Self, ServeError> {
        config.validate()?;
        let bind_err = |addr| move |cause| ServeError::Bind { addr, cause };
        let http = TcpListener::bind(config.http)
            .await
            .map_err(bind_err(config.http))?;
        let http_addr = http.local_addr().map_err(bind_err(config.http))?;
        let resp = TcpListener::bind(config.resp)
            .await
            .map_err(bind_err(config.resp))?;
        let resp_addr = resp.local_addr().map_err(bind_err(config.resp))?;
        let line = TcpListener::bind(config.line)
            .await
            .map_err(bind_err(config.line))?;
        let line_addr = line.local_addr().map_err(bind_err(config.line))?;
        Ok(Self {
            config,
            engine: Arc::new(Engine::new()),
            http,
            http_addr,
            resp,
            resp_addr,
            line,
            line_addr,
        })
    }

    /// The address the HTTP listener actually bound (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address the Redis-protocol listener actually bound.
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp_addr
    }

    /// The address the line-protocol listener actually bound.
    pub fn line_addr(&self) -> SocketAddr {
        self.line_addr
    }

    /// The engine this server serves, shared with its connections.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (for up to 30 s) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        tracing::info!(addr = %self.http_addr, "HTTP listening on http://{}", self.http_addr);
        tracing::info!(addr = %self.resp_addr, "RESP listening on redis://{}", self.resp_addr);
        tracing::info!(addr = %self.line_addr, "line protocol listening on {}", self.line_addr);
        tasks.spawn(expiry::sweep(self.engine.clone(), stop.clone()));
        tasks.spawn(http::serve(
            self.http,
            http::AppState::new(self.engine.clone(), self.config.limits.clone()),
            stop.clone(),
            tasks.clone(),
        ));
        tasks.spawn(resp::serve(
            self.resp,
            resp::Shared::new(self.engine.clone(), self.config.clone()),
            stop.clone(),
            tasks.clone(),
        ));
        tasks.spawn(line::serve(
            self.line,
            self.engine.clone(),
            self.config.limits.clone(),
            stop.clone(),
            tasks.clone(),
        ));
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        stop.cancel();
        tasks.close();
        if tokio::time::timeout(DRAIN_DEADLINE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within {DRAIN_DEADLINE:?}");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds and serves `config` until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    Server::bind(config).await?.run(shutdown).await
}
