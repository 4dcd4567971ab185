//! A hash, list, set, sorted set or stream read over HTTP: JSON, one page at a time.
//!
//! - a hash is an object of fields and values;
//! - a list and a set are arrays of elements;
//! - a sorted set is an array of `[member, score]` pairs, in score order;
//! - a stream is an array of `[id, {field: value, ...}]` entries, oldest first.
//!
//! Elements that are not UTF-8 are shown with invalid bytes replaced. `?offset=` and `?limit=`
//! choose a page (at most [`MAX_LIMIT`] elements, [`DEFAULT_LIMIT`] unless asked); the
//! `X-Kvs-Total` header gives the collection's size and `X-Kvs-Next-Offset` where the next page
//! starts, when there is one. A hash's and a set's order is stable only while they are unchanged.

use axum::http::{HeaderMap, HeaderValue, Uri};
use kvs_store::Collection;
use serde_json::{Map, Value as Json};

use super::error::ApiError;
use super::query;

/// Elements a page holds unless `?limit=` says otherwise.
pub(crate) const DEFAULT_LIMIT: usize = 1000;
/// The most elements one page may hold.
pub(crate) const MAX_LIMIT: usize = 100_000;

fn text(b: &[u8]) -> Json {
    Json::String(String::from_utf8_lossy(b).into_owned())
}

fn number(uri: &Uri, name: &str, default: usize) -> Result<usize, ApiError> {
    match query::text_param(uri, name) {
        None => Ok(default),
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{name} must be a whole number"))),
    }
}

/// The page of `c` that `uri` asks for, as JSON, with its paging headers added to `headers`.
pub(crate) fn page(c: &Collection, uri: &Uri, headers: &mut HeaderMap) -> Result<Json, ApiError> {
    let offset = number(uri, "offset", 0)?;
    let limit = number(uri, "limit", DEFAULT_LIMIT)?;
    if limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be at most {MAX_LIMIT}"
        )));
    }
    let total = c.len();
    headers.insert("x-kvs-type", HeaderValue::from_static(c.kind().name()));
    headers.insert("x-kvs-total", HeaderValue::from(total));
    let end = offset.saturating_add(limit).min(total);
    if end < total {
        headers.insert("x-kvs-next-offset", HeaderValue::from(end));
    }
    let take = end.saturating_sub(offset);
    Ok(match c {
        Collection::Hash(h) => Json::Object(
            h.iter()
                .skip(offset)
                .take(take)
                .map(|(f, v)| (String::from_utf8_lossy(f).into_owned(), text(v)))
                .collect::<Map<_, _>>(),
        ),
        Collection::List(l) => Json::Array(l.range(offset, take).into_iter().map(text).collect()),
        Collection::Set(s) => Json::Array(s.iter().skip(offset).take(take).map(text).collect()),
        Collection::ZSet(z) => Json::Array(
            z.iter_from(offset)
                .take(take)
                .map(|(m, s)| {
                    let score = serde_json::Number::from_f64(s)
                        .map_or_else(|| Json::String(kvs_store::format_double(s)), Json::Number);
                    Json::Array(vec![text(m), score])
                })
                .collect(),
        ),
        Collection::Stream(s) => Json::Array(
            s.iter()
                .skip(offset)
                .take(take)
                .map(|(id, pairs)| {
                    let mut fields = Map::new();
                    let mut it = pairs.iter();
                    while let (Some(f), Some(v)) = (it.next(), it.next()) {
                        fields.insert(String::from_utf8_lossy(f).into_owned(), text(v));
                    }
                    Json::Array(vec![Json::String(id.to_string()), Json::Object(fields)])
                })
                .collect(),
        ),
    })
}
