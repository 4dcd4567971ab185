//! The HTTP front door: the REST API on `/kvs/{key}`, listings, the person API, health and the
//! OpenAPI document. Handlers translate requests into store `Command`s and replies into responses.

mod admin;
mod auth;
mod body;
mod conditions;
mod connection;
mod error;
mod keys;
mod listing;
mod openapi;
mod person;
mod query;
mod watch;

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
}

impl AppState {
    pub fn new(engine: Arc<Engine>, limits: Limits, acl: Arc<Acl>) -> Self {
        Self {
            engine,
            limits: Arc::new(limits),
            acl,
        }
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
        .route("/openapi.json", any(openapi::handle))
        .fallback(|| async { error::ApiError::not_found("no such route") })
}
