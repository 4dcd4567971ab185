//! `/kvs/{key}`: read, write and delete one key. The key is the rest of the path, percent-decoded
//! to bytes, so `/` may appear inside it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kvs_store::{
    Command, DEFAULT_CONTENT_TYPE, Delete, Entry, Expire, ExpiryUpdate, Get, Reply, Set, SetReply,
    Value,
};
use percent_encoding::percent_decode;

use super::auth::Caller;
use super::conditions::{
    Comparison, Tags, etag, http_date, parse_tags, write_condition, write_expiry,
};
use super::error::ApiError;
use super::watch::{self, Scope, Watch};
use super::{AppState, body, query};

const ALLOW: &str = "GET, HEAD, PUT, POST, PATCH, DELETE";

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let allowed = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::PUT | Method::POST | Method::PATCH | Method::DELETE
    );
    let result = match key_of(&parts, state.limits.max_key_len) {
        _ if !allowed => Err(ApiError::method_not_allowed(ALLOW)),
        Err(e) => Err(e),
        Ok(key) if parts.method == Method::GET && query::param(&parts.uri, "watch").is_some() => {
            let caller = parts.extensions.get::<Caller>().cloned();
            Watch::read(&parts.uri, &parts.headers, Scope::Key(key), caller)
                .and_then(|w| watch::start(&state.engine, w))
        }
        Ok(key) if parts.method == Method::GET || parts.method == Method::HEAD => {
            match watch::blocking(&parts.uri) {
                Err(e) => Err(e),
                Ok(None) => {
                    get(
                        &state,
                        key,
                        &parts.uri,
                        &parts.headers,
                        parts.method == Method::GET,
                    )
                    .await
                }
                Ok(Some((wait, index))) => {
                    watch::wait_for_key(&state.engine, &key, wait, index).await;
                    let version = state.engine.version_of(&key).unwrap_or(0);
                    let with_body = parts.method == Method::GET;
                    let mut response = get(&state, key, &parts.uri, &parts.headers, with_body)
                        .await
                        .unwrap_or_else(IntoResponse::into_response);
                    watch::index_header(&mut response, version);
                    Ok(response)
                }
            }
        }
        Ok(key) => match parts.method {
            Method::HEAD => get(&state, key, &parts.uri, &parts.headers, false).await,
            Method::DELETE => delete(&state, key, &parts.headers).await,
            Method::PATCH => expire(&state, key, &parts, body).await,
            _ => put(&state, key, &parts, body).await,
        },
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn key_of(parts: &Parts, max_len: usize) -> Result<Bytes, ApiError> {
    let raw = parts.uri.path().strip_prefix("/kvs/").unwrap_or_default();
    let key: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    if key.is_empty() {
        return Err(ApiError::bad_request("the key is empty"));
    }
    if key.len() > max_len {
        return Err(ApiError::key_too_long(max_len));
    }
    Ok(Bytes::from(key))
}

/// The headers that describe a stored entry: `ETag`, `Last-Modified` and, with a TTL, `Expires`.
/// `Cache-Control: no-cache` keeps caches from serving a value past a later overwrite: they must
/// revalidate with the ETag, which costs a 304 when nothing changed.
fn entry_headers(headers: &mut HeaderMap, entry: &Entry) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ETAG, etag(entry.version));
    headers.insert(header::LAST_MODIFIED, http_date(entry.modified_at));
    if let Some(at) = entry.expires_at {
        headers.insert(header::EXPIRES, http_date(at));
    }
}

async fn get(
    state: &AppState,
    key: Bytes,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    with_body: bool,
) -> Result<Response, ApiError> {
    let entry = match state.engine.execute(Command::Get(Get { key })).await {
        Reply::Value(entry) => entry,
        _ => return Err(ApiError::not_found("no such key")),
    };
    let mut response = match headers.get(header::IF_NONE_MATCH) {
        Some(tags) if parse_tags(tags, Comparison::Weak)?.matches(entry.version) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        _ if matches!(entry.value, Value::Collection(_)) => {
            let Value::Collection(c) = &entry.value else {
                return Err(ApiError::not_found("no such key"));
            };
            let mut r = Response::new(Body::empty());
            let json = super::collections::page(c, uri, r.headers_mut())?;
            let text = json.to_string();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
            if with_body {
                *r.body_mut() = Body::from(text);
            }
            r
        }
        _ => {
            let content_type = HeaderValue::from_maybe_shared(entry.content_type.clone())
                .unwrap_or_else(|_| HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
            let length = HeaderValue::from(entry.value.len());
            let body = if with_body {
                Body::from(match &entry.value {
                    Value::String(bytes) => bytes.clone(),
                    Value::Collection(_) => Bytes::new(),
                })
            } else {
                Body::empty()
            };
            let mut r = Response::new(body);
            r.headers_mut().insert(header::CONTENT_TYPE, content_type);
            r.headers_mut().insert(header::CONTENT_LENGTH, length);
            r
        }
    };
    entry_headers(response.headers_mut(), &entry);
    Ok(response)
}

async fn put(
    state: &AppState,
    key: Bytes,
    parts: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let condition = write_condition(&parts.headers)?;
    let ttl = query::text_param(&parts.uri, "ttl");
    let expiry = match write_expiry(ttl.as_deref(), &parts.headers)? {
        Some(at) => ExpiryUpdate::At(at),
        None => ExpiryUpdate::Clear,
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(|v| Bytes::copy_from_slice(v.as_bytes()))
        .unwrap_or_else(|| Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()));
    let value = body::read(&parts.headers, body, &state.limits).await?;
    let command = Set {
        key: key.clone(),
        value,
        content_type,
        condition,
        expiry,
        reply: SetReply::Stored,
    };
    match state.engine.execute(Command::Set(command)).await {
        Reply::Stored {
            version, created, ..
        } => {
            let mut json = serde_json::Map::new();
            query::key_fields(&key, &mut json);
            json.insert("version".into(), version.into());
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = (status, axum::Json(json)).into_response();
            let h = response.headers_mut();
            h.insert(header::ETAG, etag(version));
            if let (true, Ok(location)) = (created, HeaderValue::from_str(&query::key_path(&key))) {
                h.insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Reply::ConditionFailed { current } => Err(ApiError::precondition_failed(current)),
        other => Err(unexpected(&other)),
    }
}

/// `PATCH /kvs/{key}?ttl=` (or `Expires`) sets the expiry of a key of any type, keeping its value;
/// `?persist` removes it. The body must be empty: values are written with PUT.
async fn expire(
    state: &AppState,
    key: Bytes,
    parts: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let (tags, if_version) = single_if_match(&parts.headers, "a PATCH")?;
    let persist = query::param(&parts.uri, "persist").is_some();
    let ttl = query::text_param(&parts.uri, "ttl");
    let at = match (persist, write_expiry(ttl.as_deref(), &parts.headers)?) {
        (true, Some(_)) => {
            return Err(ApiError::bad_request(
                "send either ?persist or an expiry, not both",
            ));
        }
        (true, None) => None,
        (false, Some(at)) => Some(at),
        (false, None) => {
            return Err(ApiError::bad_request(
                "PATCH changes a key's expiry: send ?ttl=, an Expires header or ?persist",
            ));
        }
    };
    // A declared body is refused unread; one sent without a length is read under the value limit.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0");
    if declared
        || !body::read(&parts.headers, body, &state.limits)
            .await?
            .is_empty()
    {
        return Err(ApiError::bad_request(
            "PATCH takes no body: it changes only the expiry (write values with PUT)",
        ));
    }
    let command = Expire {
        key: key.clone(),
        at,
        if_version,
    };
    match state.engine.execute(Command::Expire(command)).await {
        Reply::ExpirySet { version } => {
            let mut json = serde_json::Map::new();
            query::key_fields(&key, &mut json);
            json.insert("version".into(), version.into());
            json.insert(
                "expires_at".into(),
                at.map(super::conditions::rfc3339)
                    .map_or(serde_json::Value::Null, serde_json::Value::from),
            );
            let mut response = axum::Json(json).into_response();
            let h = response.headers_mut();
            h.insert(header::ETAG, etag(version));
            if let Some(at) = at {
                h.insert(header::EXPIRES, http_date(at));
            }
            Ok(response)
        }
        Reply::NotFound if tags.is_some() => Err(ApiError::precondition_failed(None)),
        Reply::NotFound => Err(ApiError::not_found("no such key")),
        Reply::ConditionFailed { current } => Err(ApiError::precondition_failed(current)),
        other => Err(unexpected(&other)),
    }
}

/// `If-Match` for a write that names one version: the tags given, and the version if one.
fn single_if_match(
    headers: &HeaderMap,
    what: &str,
) -> Result<(Option<Tags>, Option<u64>), ApiError> {
    let tags = headers
        .get(header::IF_MATCH)
        .map(|v| parse_tags(v, Comparison::Strong))
        .transpose()?;
    let if_version = match &tags {
        None | Some(Tags::Any) => None,
        Some(Tags::Versions(v)) => match v.as_slice() {
            [one] => Some(*one),
            [] => return Err(ApiError::precondition_failed(None)),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "If-Match on {what} takes one entity tag"
                )));
            }
        },
    };
    Ok((tags, if_version))
}

async fn delete(state: &AppState, key: Bytes, headers: &HeaderMap) -> Result<Response, ApiError> {
    let (tags, if_version) = single_if_match(headers, "a delete")?;
    match state
        .engine
        .execute(Command::Delete(Delete { key, if_version }))
        .await
    {
        Reply::Deleted(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        // A conditional delete of a missing key fails its condition (RFC 9110 §13.1.1).
        Reply::NotFound if tags.is_some() => Err(ApiError::precondition_failed(None)),
        Reply::NotFound => Err(ApiError::not_found("no such key")),
        Reply::ConditionFailed { current } => Err(ApiError::precondition_failed(current)),
        other => Err(unexpected(&other)),
    }
}

/// A reply the command cannot produce; logged, and answered as a server error.
pub(crate) fn unexpected(reply: &Reply) -> ApiError {
    if let Reply::Error(kvs_store::CommandError::LogUnavailable(why)) = reply {
        return ApiError::read_only(why);
    }
    if let Reply::Error(kvs_store::CommandError::OutOfMemory) = reply {
        return ApiError::out_of_memory();
    }
    // Only the variant: replies can hold user data, which never goes to the log.
    let variant = format!("{reply:?}");
    let variant = variant.split(['(', ' ', '{']).next().unwrap_or_default();
    tracing::error!(reply = variant, "unexpected reply from the store");
    ApiError::internal()
}
