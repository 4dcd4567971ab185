//! The HTTP door: each connection is hyper's HTTP/1.1 with the header timeout and the head-size
//! limit, serving the router; on shutdown, an idle keep-alive connection closes at once and a
//! busy one after its current response. Accepting, the connection limit and its 503 are the
//! listener's (`crate::listener`).

use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::error::BUSY_RESPONSE;
use super::{AppState, open_router, router};
use crate::acl::Acl;
use crate::config::Limits;
use crate::listener::{Addresses, ByteStream, Door, Placement};
use crate::stats::{Class, Door as StatsDoor, Stats};

/// What an HTTP request does, for latency by class: reads and writes of keys (and the person
/// API), and everything else.
fn class_of(method: &axum::http::Method, path: &str) -> Class {
    use axum::http::Method;
    let data = path.starts_with("/kvs") || path.starts_with("/person/");
    match *method {
        Method::GET | Method::HEAD if data => Class::Read,
        Method::PUT | Method::POST | Method::DELETE if data => Class::Write,
        _ => Class::Other,
    }
}

/// The HTTP front door.
#[derive(Debug)]
pub(crate) struct HttpDoor {
    /// The API behind authentication and permission checks.
    guarded: Router,
    /// The API with none, for requests without credentials while the default user is open.
    open: Router,
    acl: Arc<Acl>,
    limits: Arc<Limits>,
    stats: Arc<Stats>,
    /// Whose output limit bounds monitors.
    pubsub: Arc<crate::pubsub::PubSub>,
}

impl HttpDoor {
    pub(crate) fn new(state: AppState) -> Self {
        Self {
            limits: state.limits.clone(),
            acl: state.acl.clone(),
            stats: state.engine.stats().clone(),
            pubsub: state.engine.pubsub().clone(),
            open: open_router(state.clone()),
            guarded: router(state),
        }
    }
}

impl Door for HttpDoor {
    const NAME: &'static str = "HTTP";
    const COUNTED_AS: crate::stats::Door = crate::stats::Door::Http;
    const REFUSAL: &'static [u8] = BUSY_RESPONSE;
    /// On the shared runtime, as before connection threads existed: their gain was measured for
    /// RESP's unpipelined requests (`crate::connection_threads`), not for HTTP.
    const PLACEMENT: Placement = Placement::Workers;

    async fn serve<S: ByteStream>(&self, stream: S, addresses: Addresses, stop: CancellationToken) {
        // Which router serves a request is decided per request: checks cost nothing when the
        // default user needs no password and the request brings no credentials.
        let (guarded, open, acl) = (self.guarded.clone(), self.open.clone(), self.acl.clone());
        let stats = self.stats.clone();
        let pubsub = self.pubsub.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let unchecked =
                acl.default_is_open() && !request.headers().contains_key(header::AUTHORIZATION);
            let router = if unchecked {
                open.clone()
            } else {
                guarded.clone()
            };
            let started = Instant::now();
            let class = class_of(request.method(), request.uri().path());
            let (method, uri) = (request.method().clone(), request.uri().clone());
            let answer = router.oneshot(request.map(Body::new));
            let stats = stats.clone();
            let pubsub = pubsub.clone();
            async move {
                let response = answer.await;
                let took = started.elapsed();
                stats.request(StatsDoor::Http, class, took);
                if stats.monitors.active() {
                    let args = [
                        Bytes::from(method.as_str().to_owned()),
                        Bytes::from(uri.to_string()),
                    ];
                    let limit = pubsub.limit();
                    stats
                        .monitors
                        .feed(StatsDoor::Http, &addresses.peer.to_string(), &args, limit);
                }
                stats.slowlog.note(
                    took,
                    StatsDoor::Http,
                    || {
                        vec![
                            Bytes::from(method.as_str().to_owned()),
                            Bytes::from(uri.to_string()),
                        ]
                    },
                    || (addresses.peer.to_string(), String::new()),
                );
                response
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(self.limits.max_header_size)
            .max_headers(self.limits.max_headers);
        let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}
