//! The HTTP front door: the REST API on `/kvs/{key}`, listings, the person API, health and the
//! OpenAPI document. Handlers translate requests into store `Command`s and replies into responses.

mod admin;
mod auth;
mod body;
mod collections;
mod conditions;
mod connection;
mod console;
mod error;
mod keys;
mod listing;
mod openapi;
mod person;
mod query;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;

use crate::acl::Acl;
use crate::config::Limits;
use crate::engine::Engine;

pub(crate) use connection::HttpDoor;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) acl: Arc<Acl>,
    /// The Redis-protocol door's clients, for `/admin/clients`.
    pub(crate) resp: Option<Arc<crate::resp::Shared>>,
    /// The addresses of the HTTP, RESP and line doors, for the console.
    pub(crate) doors: Option<(SocketAddr, SocketAddr, SocketAddr)>,
    /// Whether `/ui/` serves the console.
    pub(crate) console: bool,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, limits: Limits, acl: Arc<Acl>) -> Self {
        Self {
            engine,
            limits: Arc::new(limits),
            acl,
            resp: None,
            doors: None,
            console: true,
        }
    }

    /// The same, knowing the rest of the server: the RESP door's clients, every door's
    /// address, and whether the console is on.
    pub(crate) fn with_server(
        mut self,
        resp: Arc<crate::resp::Shared>,
        doors: (SocketAddr, SocketAddr, SocketAddr),
        console: bool,
    ) -> Self {
        self.resp = Some(resp);
        self.doors = Some(doors);
        self.console = console;
        self
    }
}

/// The HTTP API behind its authentication and permission checks (see [`auth`]).
pub fn router(state: AppState) -> Router {
    routes()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
}

/// The HTTP API with no checks: for requests that carry no credentials while the default user
/// needs no password and may do everything (the connection chooses per request).
pub(crate) fn open_router(state: AppState) -> Router {
    routes().with_state(state)
}

/// Each route takes any method and answers the ones it does not serve with 405 and `Allow`, so
/// the error body is JSON like every other error.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/kvs", any(listing::handle))
        .route("/kvs/", any(listing::handle))
        .route("/kvs/{*key}", any(keys::handle))
        .route("/person/update", any(person::update))
        .route("/person/get", any(person::get))
        .route("/healthz", any(admin::health))
        .route("/admin/snapshot", any(admin::snapshot))
        .route("/admin/persistence", any(admin::persistence))
        .route("/admin/memory", any(admin::memory))
        .route("/admin/stats", any(console::stats))
        .route("/admin/slowlog", any(console::slowlog))
        .route("/admin/clients", any(console::clients))
        .route("/admin/clients/{id}", any(console::kill_client))
        .route("/metrics", any(console::metrics))
        .route("/ui", any(console::ui_root))
        .route("/ui/", any(console::ui_file))
        .route("/ui/{*file}", any(console::ui_file))
        .route("/openapi.json", any(openapi::handle))
        .fallback(|| async { error::ApiError::not_found("no such route") })
}
