//! What the console and operators read over HTTP: `GET /metrics` (Prometheus), `GET /admin/stats`
//! (the last minutes, one sample a second), `GET`/`DELETE /admin/slowlog`, `GET /admin/clients`
//! and `DELETE /admin/clients/{id}`; and the console's own files under `/ui/`.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::query;
use crate::stats::history::KEPT;

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>, method: Method) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let (engine, acl) = (state.engine.clone(), state.acl.clone());
    // Asking the allocator and reading /proc take a moment: off the async workers.
    match tokio::task::spawn_blocking(move || crate::stats::prometheus::render(&engine, &acl)).await
    {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::stats::prometheus::CONTENT_TYPE),
            )],
            body,
        )
            .into_response(),
        Err(_) => ApiError::internal().into_response(),
    }
}

/// `GET /admin/stats?seconds=N`: the server and its newest N one-second samples.
pub(crate) async fn stats(State(state): State<AppState>, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let seconds = match query::text_param(request.uri(), "seconds") {
        None => 300,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=KEPT).contains(&n) => n,
            _ => {
                return ApiError::bad_request(format!(
                    "seconds must be a whole number from 1 to {KEPT}"
                ))
                .into_response();
            }
        },
    };
    let engine = &state.engine;
    let persistence = match engine.durability() {
        None => "in memory".to_owned(),
        Some(d) => format!(
            "log and snapshots in {}, fsync {}",
            d.dir().display(),
            d.log().policy()
        ),
    };
    let doors = state.doors.as_ref().map_or(
        Value::Null,
        |d| json!({"http": d.0.to_string(), "resp": d.1.to_string(), "line": d.2.to_string()}),
    );
    axum::Json(json!({
        "server": {
            "version": env!("CARGO_PKG_VERSION"),
            "redis_version": crate::resp::REDIS_VERSION,
            "uptime_seconds": engine.uptime().as_secs(),
            "process_id": std::process::id(),
            "run_id": engine.stats().run_id,
            "doors": doors,
            "persistence": persistence,
            "maxmemory": engine.memory().limit(),
        },
        "series": engine.stats().history.newest(seconds),
    }))
    .into_response()
}

/// `GET /admin/slowlog` (every entry, newest first) and `DELETE /admin/slowlog`.
pub(crate) async fn slowlog(State(state): State<AppState>, method: Method) -> Response {
    let log = &state.engine.stats().slowlog;
    match method {
        Method::GET | Method::HEAD => {
            let entries: Vec<Value> = log
                .newest(None)
                .into_iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "time": e.time,
                        "duration_us": e.micros,
                        "door": e.door.name(),
                        "client": e.addr,
                        "name": e.name,
                        "command": e.args.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            axum::Json(json!({
                "slower_than_us": log.slower_than(),
                "max_len": log.max_len(),
                "entries": entries,
            }))
            .into_response()
        }
        Method::DELETE => {
            log.reset();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => ApiError::method_not_allowed("GET, HEAD, DELETE").into_response(),
    }
}

/// `GET /admin/clients`: the Redis-protocol connections.
pub(crate) async fn clients(State(state): State<AppState>, method: Method) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let clients: Vec<Value> = state.resp.as_ref().map_or_else(Vec::new, |shared| {
        shared
            .clients
            .snapshot()
            .into_iter()
            .map(|(id, c)| c.to_json(id))
            .collect()
    });
    axum::Json(json!({ "clients": clients })).into_response()
}

/// `DELETE /admin/clients/{id}`: closes that connection, as `CLIENT KILL ID id`.
pub(crate) async fn kill_client(
    State(state): State<AppState>,
    method: Method,
    Path(id): Path<String>,
) -> Response {
    if method != Method::DELETE {
        return ApiError::method_not_allowed("DELETE").into_response();
    }
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::bad_request("a client id is a whole number").into_response();
    };
    let killed = state
        .resp
        .as_ref()
        .map_or(0, |shared| shared.clients.kill(|cid, _| cid == id));
    if killed == 0 {
        return ApiError::not_found("no such client").into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The console's files, built into the binary.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
    ("app.js", JS, include_str!("ui/app.js")),
    ("api.js", JS, include_str!("ui/api.js")),
    ("charts.js", JS, include_str!("ui/charts.js")),
    ("dashboard.js", JS, include_str!("ui/dashboard.js")),
    ("dom.js", JS, include_str!("ui/dom.js")),
    ("editor.js", JS, include_str!("ui/editor.js")),
    ("format.js", JS, include_str!("ui/format.js")),
    ("keys.js", JS, include_str!("ui/keys.js")),
    ("ops.js", JS, include_str!("ui/ops.js")),
    ("render.js", JS, include_str!("ui/render.js")),
    ("value.js", JS, include_str!("ui/value.js")),
];
const JS: &str = "text/javascript; charset=utf-8";

/// Nothing is loaded from elsewhere, nothing runs inline, and the console cannot be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /ui` (a redirect to `/ui/`, where the files' relative paths resolve).
pub(crate) async fn ui_root(method: Method) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    Redirect::permanent("/ui/").into_response()
}

/// `GET /ui/` and `GET /ui/{file}`.
pub(crate) async fn ui_file(State(state): State<AppState>, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    if !state.console {
        return ApiError::not_found("the console is turned off (--no-ui)").into_response();
    }
    let name = request
        .uri()
        .path()
        .strip_prefix("/ui/")
        .filter(|n| !n.is_empty())
        .unwrap_or("index.html");
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::not_found("no such file in the console").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response()
}
