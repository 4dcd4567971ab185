//! Binding, running and stopping a kvs server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acl::{Acl, AclFileError};
use crate::config::{Config, ConfigError};
use crate::connection_threads::ConnectionThreads;
use crate::engine::Engine;
use crate::listener::Secure;
use crate::listener::{self, Connections};
use crate::persistence::PersistenceError;
use crate::tls::{Tls, TlsError};
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
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
    /// The operating system refused a thread for connections.
    #[error("cannot start the connection threads: {0}")]
    Threads(std::io::Error),
    #[error(transparent)]
    Acl(#[from] AclFileError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A door's TLS listener.
#[derive(Debug)]
struct TlsListener {
    listener: TcpListener,
    addr: SocketAddr,
}

/// A server whose listeners are bound but which does not yet accept connections.
#[derive(Debug)]
pub struct Server {
    config: Config,
    engine: Arc<Engine>,
    acl: Arc<Acl>,
    http: TcpListener,
    http_addr: SocketAddr,
    resp: TcpListener,
    resp_addr: SocketAddr,
    line: TcpListener,
    line_addr: SocketAddr,
    tls: Option<Tls>,
    tls_http: Option<TlsListener>,
    tls_resp: Option<TlsListener>,
    tls_line: Option<TlsListener>,
}

impl Server {
    /// Validates `config` and binds every listener, so a busy port fails here, before serving.
    pub async fn bind(config: Config) -> Result<Self, ServeError> {
        Self::bind_with(config, None).await
    }

    /// [`Server::bind`] serving `engine` instead of one opened as `config.persistence` says; the
    /// engine keeps its own settings (such as its feed's history limits).
    pub async fn bind_engine(config: Config, engine: Engine) -> Result<Self, ServeError> {
        Self::bind_with(config, Some(engine)).await
    }

    async fn bind_with(config: Config, engine: Option<Engine>) -> Result<Self, ServeError> {
        config.validate()?;
        let acl = Arc::new(Acl::open(
            config.security.aclfile.clone(),
            config.security.requirepass.as_deref(),
        )?);
        protected_mode(&config, &acl)?;
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
        let tls = Tls::open(&config.tls)?;
        let bind_tls = |addr: Option<SocketAddr>| async move {
            match addr {
                None => Ok(None),
                Some(addr) => {
                    let listener = TcpListener::bind(addr).await.map_err(bind_err(addr))?;
                    let addr = listener.local_addr().map_err(bind_err(addr))?;
                    Ok::<_, ServeError>(Some(TlsListener { listener, addr }))
                }
            }
        };
        let tls_http = bind_tls(config.tls.http).await?;
        let tls_resp = bind_tls(config.tls.resp).await?;
        let tls_line = bind_tls(config.tls.line).await?;
        // Recovery reads files and may take a while: off the async workers.
        let engine = match engine {
            Some(engine) => engine,
            None => {
                let persistence = config.persistence.clone();
                let engine = tokio::task::spawn_blocking(move || Engine::open(&persistence))
                    .await
                    .map_err(|e| ConfigError::Invalid(format!("recovery stopped: {e}")))??;
                engine.feed().set_limits(config.feed);
                engine
            }
        };
        engine.memory().configure(&config.memory, engine.store());
        let (flags, limit) = config.pubsub.resolve().map_err(ConfigError::Invalid)?;
        engine.pubsub().set_limit(limit);
        engine.set_notify_flags(flags);
        Ok(Self {
            config,
            engine: Arc::new(engine),
            acl,
            http,
            http_addr,
            resp,
            resp_addr,
            line,
            line_addr,
            tls,
            tls_http,
            tls_resp,
            tls_line,
        })
    }

    /// The TLS addresses the listeners bound, for HTTP, RESP and the line protocol.
    pub fn tls_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>, Option<SocketAddr>) {
        let addr = |l: &Option<TlsListener>| l.as_ref().map(|l| l.addr);
        (
            addr(&self.tls_http),
            addr(&self.tls_resp),
            addr(&self.tls_line),
        )
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

    /// The users and their permissions, shared by every door.
    pub fn acl(&self) -> Arc<Acl> {
        self.acl.clone()
    }

    /// The engine this server serves, shared with its connections.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// One line for the log that says where kvs listens, where it keeps its data, and which
    /// settings differ from the defaults (by section; values are left out, as some are secrets).
    fn startup_line(&self) -> String {
        let mut doors = vec![
            format!("HTTP listening on http://{}", self.http_addr),
            format!("RESP listening on redis://{}", self.resp_addr),
            format!("line protocol listening on {}", self.line_addr),
        ];
        let (tls_http, tls_resp, tls_line) = self.tls_addrs();
        for (name, addr) in [
            ("HTTPS listening on https://", tls_http),
            ("RESP over TLS listening on rediss://", tls_resp),
            ("line protocol over TLS listening on ", tls_line),
        ] {
            if let Some(addr) = addr {
                doors.push(format!("{name}{addr}"));
            }
        }
        if self.config.observability.ui {
            doors.push(format!("console http://{}/ui/", self.http_addr));
        }
        let data = match self.engine.durability() {
            Some(d) => format!("data in {} (fsync {})", d.dir().display(), d.log().policy()),
            None => "in memory (nothing kept on disk)".to_owned(),
        };
        let c = &self.config;
        let d = Config::default();
        let changed: Vec<&str> = [
            ("limits", c.limits != d.limits),
            ("persistence", c.persistence != d.persistence),
            ("feed", c.feed != d.feed),
            ("security", c.security != d.security),
            ("tls", c.tls != d.tls),
            ("memory", c.memory != d.memory),
            ("pubsub", c.pubsub != d.pubsub),
            ("observability", c.observability != d.observability),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        let changed = if changed.is_empty() {
            "every setting at its default".to_owned()
        } else {
            format!("settings changed: {}", changed.join(", "))
        };
        format!(
            "kvs {}: {}; {data}; {changed}",
            env!("CARGO_PKG_VERSION"),
            doors.join(", ")
        )
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (for up to 30 s) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        // As many connection threads as the runtime has workers (`kvs serve --threads`).
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        let threads = Arc::new(ConnectionThreads::start(workers).map_err(ServeError::Threads)?);
        tracing::info!("{}", self.startup_line());
        tasks.spawn(expiry::sweep(self.engine.clone(), stop.clone()));
        tasks.spawn(crate::memory::watch(self.engine.clone(), stop.clone()));
        tasks.spawn(crate::pubsub::notify(self.engine.clone(), stop.clone()));
        tasks.spawn(crate::stats::sampler::run(
            self.engine.clone(),
            stop.clone(),
        ));
        let slowlog = &self.engine.stats().slowlog;
        slowlog.set_slower_than(self.config.observability.slowlog_log_slower_than);
        slowlog.set_max_len(self.config.observability.slowlog_max_len);
        tasks.spawn(snapshots_when_the_log_grows(
            self.engine.clone(),
            stop.clone(),
        ));
        let connections = Connections {
            stop: stop.clone(),
            tasks: tasks.clone(),
            threads: threads.clone(),
            stats: self.engine.stats().clone(),
        };
        let max_connections = self.config.limits.max_connections;
        let secure = self.tls.clone().map(|tls| Secure {
            tls,
            handshake: self.config.limits.header_timeout,
        });
        if let Some(secure) = &secure {
            tasks.spawn(crate::tls::watch(secure.tls.clone(), stop.clone()));
        }
        let shared = resp::Shared::new(self.engine.clone(), self.config.clone(), self.acl.clone());
        // With two connection threads or more, one is always free to take SCRIPT KILL.
        shared.scripts.set_inline(workers >= 2);
        let requested = shared.shutdown.clone();
        let app = http::AppState::new(
            self.engine.clone(),
            self.config.limits.clone(),
            self.acl.clone(),
        )
        .with_server(
            shared.clone(),
            (self.http_addr, self.resp_addr, self.line_addr),
            self.config.observability.ui,
        );
        let line_door = || {
            line::LineDoor::new(
                self.engine.clone(),
                self.config.limits.clone(),
                self.acl.clone(),
            )
        };
        tasks.spawn(listener::serve(
            self.http,
            http::HttpDoor::new(app.clone()),
            max_connections,
            connections.clone(),
            None,
        ));
        tasks.spawn(listener::serve(
            self.resp,
            resp::RespDoor::new(shared.clone()),
            max_connections,
            connections.clone(),
            None,
        ));
        tasks.spawn(listener::serve(
            self.line,
            line_door(),
            max_connections,
            connections.clone(),
            None,
        ));
        if let (Some(l), Some(secure)) = (self.tls_http, &secure) {
            tasks.spawn(listener::serve(
                l.listener,
                http::HttpDoor::new(app),
                max_connections,
                connections.clone(),
                Some(secure.clone()),
            ));
        }
        if let (Some(l), Some(secure)) = (self.tls_resp, &secure) {
            tasks.spawn(listener::serve(
                l.listener,
                resp::RespDoor::new(shared),
                max_connections,
                connections.clone(),
                Some(secure.clone()),
            ));
        }
        if let (Some(l), Some(secure)) = (self.tls_line, &secure) {
            tasks.spawn(listener::serve(
                l.listener,
                line_door(),
                max_connections,
                connections.clone(),
                Some(secure.clone()),
            ));
        }
        tokio::select! {
            () = shutdown => {}
            () = requested.cancelled() => tracing::info!("SHUTDOWN asked by a client"),
        }
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        stop.cancel();
        self.engine.feed().stop_listeners();
        tasks.close();
        if tokio::time::timeout(DRAIN_DEADLINE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within {DRAIN_DEADLINE:?}");
        }
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || {
            drop(threads);
            engine.close()
        })
        .await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Protected mode: a door reachable beyond this machine with no password set is refused, so a
/// server is not opened to a network by accident.
fn protected_mode(config: &Config, acl: &Acl) -> Result<(), ConfigError> {
    if !config.security.protected_mode
        || config.security.aclfile.is_some()
        || !acl.default_user().needs_no_password()
    {
        return Ok(());
    }
    let open = [config.http, config.resp, config.line]
        .into_iter()
        .chain(
            [config.tls.http, config.tls.resp, config.tls.line]
                .into_iter()
                .flatten(),
        )
        .find(|a| !a.ip().is_loopback());
    match open {
        None => Ok(()),
        Some(addr) => Err(ConfigError::Invalid(format!(
            "protected mode: kvs would listen on {addr}, beyond the loopback interface, with no \
             password, so anyone who can reach it could read and change every key. Set a \
             password (KVS_REQUIREPASS, --requirepass or [security] requirepass), give users in \
             an ACL file (--aclfile), or, on a network you trust, pass --protected-mode no"
        ))),
    }
}

/// Starts a snapshot each time the log says it has grown past `snapshot_after` since the last.
async fn snapshots_when_the_log_grows(engine: Arc<Engine>, stop: CancellationToken) {
    let Some(mut grown) = engine.durability().and_then(|d| d.take_growth_signal()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            signal = grown.recv() => {
                if signal.is_none() {
                    return;
                }
                tracing::info!("the log has grown past its limit: taking a snapshot");
                if let Err(e) = engine.start_snapshot() {
                    tracing::info!("no new snapshot: {e}");
                }
            }
        }
    }
}

/// Binds and serves `config` until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    Server::bind(config).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_needs_a_password_beyond_loopback() {
        let mut config = Config {
            resp: "10.1.2.3:6379".parse().expect("addr"),
            ..Config::default()
        };
        let open = Acl::default();
        assert!(protected_mode(&config, &open).is_err(), "no password");
        let guarded = Acl::open(None, Some("pw")).expect("acl");
        assert!(protected_mode(&config, &guarded).is_ok(), "a password");
        config.security.protected_mode = false;
        assert!(protected_mode(&config, &open).is_ok(), "turned off");
        let local = Config::default();
        assert!(protected_mode(&local, &open).is_ok(), "loopback only");
    }
}
