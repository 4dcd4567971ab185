//! The Redis-protocol front door: RESP2 and RESP3 (switched per connection with `HELLO`),
//! pipelining, and the connection-level commands (PING, HELLO, CLIENT, INFO, ...). Data commands
//! are parsed into store commands and executed by the same engine as every other front door.

mod admin;
pub(crate) mod client_list;
mod clients;
pub(crate) mod command;
mod connection;
mod info;
mod persistence;
mod session;

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub(crate) use admin::REDIS_VERSION;
pub use clients::Clients;
pub(crate) use session::log_acl;

use crate::acl::Acl;
use crate::config::Config;
use crate::engine::Engine;
use crate::listener::{Addresses, ByteStream, Door, Placement};

/// What every RESP connection shares.
#[derive(Debug)]
pub struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: Config,
    pub(crate) clients: Clients,
    pub(crate) acl: Arc<Acl>,
    /// `CLIENT PAUSE`.
    pub(crate) pause: client_list::Pause,
    /// Lua scripts (EVAL and SCRIPT).
    pub(crate) scripts: crate::script::Scripts,
    /// Cancelled by SHUTDOWN: the server stops as on SIGTERM.
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    pub fn new(engine: Arc<Engine>, config: Config, acl: Arc<Acl>) -> Arc<Self> {
        let scripts = crate::script::Scripts::default();
        // Function libraries the data directory holds are loaded before the first request.
        if engine
            .store()
            .meta(crate::script::functions::META_NAME)
            .is_some()
        {
            scripts.load_stored(engine.clone(), acl.default_user());
        }
        Arc::new(Self {
            engine,
            config,
            clients: Clients::default(),
            acl,
            pause: client_list::Pause::default(),
            scripts,
            shutdown: CancellationToken::new(),
        })
    }
}

/// The Redis-protocol front door.
#[derive(Debug)]
pub(crate) struct RespDoor {
    shared: Arc<Shared>,
}

impl RespDoor {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Door for RespDoor {
    const NAME: &'static str = "RESP";
    const COUNTED_AS: crate::stats::Door = crate::stats::Door::Resp;
    /// redis-server's words at `maxclients`.
    const REFUSAL: &'static [u8] = b"-ERR max number of clients reached\r\n";
    const PLACEMENT: Placement = Placement::ConnectionThreads;

    fn serve<S: ByteStream>(
        &self,
        stream: S,
        at: Addresses,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send {
        connection::run(stream, at, self.shared.clone(), stop)
    }
}
