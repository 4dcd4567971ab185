//! The HTTP door: each connection is hyper's HTTP/1.1 with the header timeout and the head-size
//! limit, serving the router; on shutdown, an idle keep-alive connection closes at once and a
//! busy one after its current response. Accepting, the connection limit and its 503 are the
//! listener's (`crate::listener`).

use std::pin::pin;
use std::sync::Arc;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;

use super::error::BUSY_RESPONSE;
use super::{AppState, router};
use crate::config::Limits;
use crate::listener::{Addresses, ByteStream, Door, Placement};

/// The HTTP front door.
#[derive(Debug)]
pub(crate) struct HttpDoor {
    app: Router,
    limits: Arc<Limits>,
}

impl HttpDoor {
    pub(crate) fn new(state: AppState) -> Self {
        Self {
            limits: state.limits.clone(),
            app: router(state),
        }
    }
}

impl Door for HttpDoor {
    const NAME: &'static str = "HTTP";
    const REFUSAL: &'static [u8] = BUSY_RESPONSE;
    /// On the shared runtime, as before connection threads existed: their gain was measured for
    /// RESP's unpipelined requests (`crate::connection_threads`), not for HTTP.
    const PLACEMENT: Placement = Placement::Workers;

    async fn serve<S: ByteStream>(&self, stream: S, _: Addresses, stop: CancellationToken) {
        let service = TowerToHyperService::new(self.app.clone());
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
