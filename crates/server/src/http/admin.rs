//! Operator routes: `/healthz`, `POST /admin/snapshot`, `GET /admin/persistence` and
//! `GET /admin/memory`.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{AppState, query};
use crate::engine::SnapshotRefused;

/// 200 while kvs serves reads and writes; 503 with the reason once its log failed and it only
/// serves reads, so a load balancer can route writes elsewhere.
pub(crate) async fn health(State(state): State<AppState>, method: Method) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    match state.engine.write_refusal() {
        None => axum::Json(json!({"status": "ok"})).into_response(),
        Some(refusal) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "read_only", "message": refusal.to_string()})),
        )
            .into_response(),
    }
}

/// `POST /admin/snapshot`: starts a snapshot (202); with `?wait=true` answers when it is
/// written (200, with its size and duration).
pub(crate) async fn snapshot(State(state): State<AppState>, request: Request) -> Response {
    if request.method() != Method::POST {
        return ApiError::method_not_allowed("POST").into_response();
    }
    let wait = query::text_param(request.uri(), "wait").is_some_and(|w| w == "true" || w == "1");
    let done = match state.engine.start_snapshot() {
        Ok(done) => done,
        Err(SnapshotRefused::InProgress) => {
            return ApiError::conflict(
                "snapshot_in_progress",
                "a snapshot is already being written",
            )
            .into_response();
        }
        Err(e @ SnapshotRefused::InMemory) => {
            return ApiError::conflict("in_memory", e.to_string()).into_response();
        }
    };
    if !wait {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({"status": "started"})),
        )
            .into_response();
    }
    match done.await {
        Ok(Ok(done)) => axum::Json(json!({
            "status": "written",
            "keys": done.keys,
            "bytes": done.bytes,
            "millis": done.millis,
        }))
        .into_response(),
        Ok(Err(why)) => ApiError::storage(why).into_response(),
        Err(_) => ApiError::storage("the snapshot stopped before it finished").into_response(),
    }
}

/// `GET /admin/persistence`: the log's and the snapshots' state.
pub(crate) async fn persistence(State(state): State<AppState>, method: Method) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let Some(d) = state.engine.durability() else {
        return axum::Json(json!({"mode": "in-memory"})).into_response();
    };
    let status = d.status();
    let progress = d.progress();
    axum::Json(json!({
        "mode": "durable",
        "data_dir": d.dir().display().to_string(),
        "fsync": d.log().policy().to_string(),
        "log": {
            "next_lsn": d.log().next_lsn(),
            "acknowledged_lsn": progress.acknowledged,
            "synced_lsn": progress.synced,
            "bytes_since_snapshot": d.log().bytes_since_snapshot(),
            "error": progress.failed.map(|f| f.0.to_string()),
        },
        "snapshot": {
            "in_progress": status.in_progress,
            "last_save": status.last_save,
            "last_ok": status.last_ok,
            "last_error": status.last_error,
            "last_millis": status.last_millis,
            "last_bytes": status.last_bytes,
            "last_keys": status.last_keys,
        },
    }))
    .into_response()
}

/// `GET /admin/memory`: the memory figures of `INFO memory`, as JSON.
pub(crate) async fn memory(State(state): State<AppState>, method: Method) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let engine = state.engine.clone();
    // Asking the allocator and counting keys take a moment: off the async workers.
    match tokio::task::spawn_blocking(move || crate::memory::Report::now(&engine, None)).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(_) => ApiError::internal().into_response(),
    }
}
