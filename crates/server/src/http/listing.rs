//! `GET /kvs?prefix=&limit=&cursor=[&delimiter=/]`: keys in byte order, one page at a time;
//! with a delimiter, the keys below it are rolled up into `prefixes` (folders).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kvs_store::{Access, Command, List, Reply};
use serde_json::{Map, Value};

use super::auth::Caller;
use super::conditions::rfc3339;
use super::error::ApiError;
use super::keys::unexpected;
use super::watch::{self, Scope, Watch};
use super::{AppState, query};

/// Keys per page when the client names no limit.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Most keys one page may hold.
pub(crate) const MAX_LIMIT: usize = 1000;

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let caller = request.extensions().get::<Caller>().cloned();
    let uri = request.uri();
    let prefix = Bytes::from(query::param(uri, "prefix").unwrap_or_default());
    if *request.method() == Method::GET && query::param(uri, "watch").is_some() {
        return Watch::read(uri, request.headers(), Scope::Prefix(prefix), caller)
            .and_then(|w| watch::start(&state.engine, w))
            .unwrap_or_else(IntoResponse::into_response);
    }
    match watch::blocking(uri) {
        Err(e) => return e.into_response(),
        Ok(Some((wait, index))) => {
            watch::wait_for_prefix(&state.engine, &prefix, wait, index).await
        }
        Ok(None) => {}
    }
    // Taken before the listing: every change it can show is at this position or before, so a
    // watch or a blocking read from here misses nothing.
    let position = state.engine.feed_position();
    let mut response = list(&state, uri, caller)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Some(position) = position {
        watch::index_header(&mut response, position);
    }
    response
}

/// A page of keys. Keys the caller may not read are left out of it (so a page can hold fewer
/// than `limit`), and the cursor still moves past them.
async fn list(
    state: &AppState,
    uri: &axum::http::Uri,
    caller: Option<Caller>,
) -> Result<Response, ApiError> {
    let prefix = query::param(uri, "prefix").unwrap_or_default();
    let limit = match query::text_param(uri, "limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let cursor = match query::param(uri, "cursor") {
        None => None,
        Some(c) if c.is_empty() => None,
        Some(c) => Some(Bytes::from(query::decode_cursor(&c).ok_or_else(|| {
            ApiError::bad_request("cursor must be a next_cursor value from an earlier page")
        })?)),
    };
    let delimiter = match query::param(uri, "delimiter") {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) if d.len() > 64 => {
            return Err(ApiError::bad_request("delimiter must be at most 64 bytes"));
        }
        Some(d) => Some(Bytes::from(d)),
    };
    let page = match state
        .engine
        .execute(Command::List(List {
            prefix: prefix.into(),
            cursor,
            limit,
            delimiter: delimiter.clone(),
        }))
        .await
    {
        Reply::Page(page) => page,
        other => return Err(unexpected(&other)),
    };
    let keys: Vec<Value> = page
        .keys
        .iter()
        .filter(|k| {
            caller
                .as_ref()
                .is_none_or(|c| c.0.check_key(&k.key, Access::READ).is_ok())
        })
        .map(|k| {
            let mut o = Map::new();
            query::key_fields(&k.key, &mut o);
            o.insert("type".into(), k.kind.name().into());
            o.insert("size".into(), k.size.into());
            o.insert(
                "content_type".into(),
                String::from_utf8_lossy(&k.content_type).into_owned().into(),
            );
            o.insert("version".into(), k.version.into());
            o.insert("modified_at".into(), rfc3339(k.modified_at).into());
            o.insert(
                "expires_at".into(),
                k.expires_at.map(rfc3339).map_or(Value::Null, Value::from),
            );
            Value::Object(o)
        })
        .collect();
    let next = page
        .next_cursor
        .map_or(Value::Null, |c| query::encode_cursor(&c).into());
    let mut body = serde_json::json!({ "keys": keys, "next_cursor": next });
    if delimiter.is_some() {
        // A folder shows only when the caller may read keys under it.
        let prefixes: Vec<Value> = page
            .prefixes
            .iter()
            .filter(|p| caller.as_ref().is_none_or(|c| c.0.may_read_under(p)))
            .map(|p| {
                let mut o = Map::new();
                query::key_fields(p, &mut o);
                o.remove("key").unwrap_or(Value::Null)
            })
            .collect();
        body["prefixes"] = Value::Array(prefixes);
    }
    Ok(axum::Json(body).into_response())
}
