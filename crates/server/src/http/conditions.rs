//! Conditional-request and expiry headers: `If-Match`, `If-None-Match`, `?ttl=`, `Expires`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use kvs_store::{Condition, Millis};

use super::error::ApiError;
use crate::engine::now_millis;

/// The `ETag` of a version: `"<version>"`.
pub(crate) fn etag(version: u64) -> HeaderValue {
    let mut s = String::with_capacity(22);
    s.push('"');
    s.push_str(&version.to_string());
    s.push('"');
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// One parsed entity-tag list.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tags {
    Any,
    /// Versions named by the tags; tags that are not kvs versions are dropped (they match nothing).
    Versions(Vec<u64>),
}

impl Tags {
    pub(crate) fn matches(&self, version: u64) -> bool {
        match self {
            Tags::Any => true,
            Tags::Versions(v) => v.contains(&version),
        }
    }
}

/// How entity tags compare (RFC 9110 §8.8.3.2): `If-Match` uses strong comparison, in which a
/// weak tag (`W/"3"`) matches nothing; `If-None-Match` uses weak comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    Strong,
    Weak,
}

/// Parses `*` or a comma-separated list of (possibly weak) entity tags.
pub(crate) fn parse_tags(value: &HeaderValue, comparison: Comparison) -> Result<Tags, ApiError> {
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid entity tag"))?
        .trim();
    if text == "*" {
        return Ok(Tags::Any);
    }
    let mut versions = Vec::new();
    for tag in text.split(',') {
        let tag = tag.trim();
        let (weak, tag) = match tag.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let inner = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| ApiError::bad_request("an entity tag must be quoted, like \"42\""))?;
        if let (Ok(v), false) = (inner.parse(), weak && comparison == Comparison::Strong) {
            versions.push(v);
        }
    }
    Ok(Tags::Versions(versions))
}

/// The write condition a request's `If-Match` / `If-None-Match` headers ask for. An `If-Match`
/// naming no kvs version can never hold and is answered 412 without touching the store.
pub(crate) fn write_condition(headers: &HeaderMap) -> Result<Condition, ApiError> {
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|v| parse_tags(v, Comparison::Strong))
        .transpose()?;
    let if_none = headers
        .get(header::IF_NONE_MATCH)
        .map(|v| parse_tags(v, Comparison::Weak))
        .transpose()?;
    match (if_match, if_none) {
        (None, None) => Ok(Condition::Always),
        (Some(Tags::Any), None) => Ok(Condition::IfPresent),
        (Some(Tags::Versions(v)), None) => match v.as_slice() {
            [one] => Ok(Condition::IfVersion(*one)),
            [] => Err(ApiError::precondition_failed(None)),
            _ => Err(ApiError::bad_request(
                "If-Match on a write takes one entity tag",
            )),
        },
        (None, Some(Tags::Any)) => Ok(Condition::IfAbsent),
        (None, Some(Tags::Versions(_))) => Err(ApiError::bad_request(
            "If-None-Match on a write takes only *",
        )),
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "send either If-Match or If-None-Match, not both",
        )),
    }
}

/// Reads a TTL: a bare number of seconds, or a duration such as `500ms`, `10m`, `1h30m`.
pub(crate) fn parse_ttl(text: &str) -> Result<Duration, ApiError> {
    let ttl = crate::config::parse_duration(text).map_err(|_| {
        ApiError::bad_request("ttl must be seconds or a duration such as 500ms or 10m")
    })?;
    if ttl.is_zero() {
        return Err(ApiError::bad_request("ttl must be longer than zero"));
    }
    Ok(ttl)
}

/// The absolute expiry a write asks for through `?ttl=` or the `Expires` header, if any.
pub(crate) fn write_expiry(
    ttl: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<Millis>, ApiError> {
    let expires = headers.get(header::EXPIRES);
    match (ttl, expires) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "send either ?ttl= or Expires, not both",
        )),
        (Some(ttl), None) => {
            let ms = u64::try_from(parse_ttl(ttl)?.as_millis()).unwrap_or(u64::MAX);
            Ok(Some(now_millis().saturating_add(ms)))
        }
        (None, Some(value)) => {
            let at = value
                .to_str()
                .ok()
                .and_then(|s| httpdate::parse_http_date(s).ok())
                .ok_or_else(|| ApiError::bad_request("Expires must be an HTTP date"))?;
            let at = millis_of(at);
            if at <= now_millis() {
                return Err(ApiError::bad_request("Expires is in the past"));
            }
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}

pub(crate) fn millis_of(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

pub(crate) fn system_time(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// An HTTP date header value for `ms`.
pub(crate) fn http_date(ms: Millis) -> HeaderValue {
    // HTTP dates have whole seconds, and the entries a busy server reads were mostly written in a
    // few of them: each thread keeps its last formatted second instead of formatting every time.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(Millis, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    let second = ms / 1000;
    LAST.with_borrow_mut(|last| match last {
        Some((s, value)) if *s == second => value.clone(),
        _ => {
            let value = HeaderValue::from_str(&httpdate::fmt_http_date(system_time(ms)))
                .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
            *last = Some((second, value.clone()));
            value
        }
    })
}

/// An RFC 3339 timestamp with milliseconds, for JSON bodies.
pub(crate) fn rfc3339(ms: Millis) -> String {
    humantime::format_rfc3339_millis(system_time(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_right_whether_or_not_the_second_was_formatted_before() {
        for (ms, want) in [
            (1_000, "Thu, 01 Jan 1970 00:00:01 GMT"),
            (1_999, "Thu, 01 Jan 1970 00:00:01 GMT"),
            (2_000, "Thu, 01 Jan 1970 00:00:02 GMT"),
            (1_784_000_000_123, "Tue, 14 Jul 2026 03:33:20 GMT"),
            (1_000, "Thu, 01 Jan 1970 00:00:01 GMT"),
        ] {
            assert_eq!(http_date(ms), want, "{ms}");
        }
    }

    fn tags(s: &str) -> Result<Tags, ApiError> {
        parse_tags(&HeaderValue::from_str(s).expect("header"), Comparison::Weak)
    }

    #[test]
    fn parses_tag_lists() {
        assert_eq!(tags("*").ok(), Some(Tags::Any));
        assert_eq!(tags("\"3\"").ok(), Some(Tags::Versions(vec![3])));
        assert_eq!(
            tags("W/\"3\", \"7\"").ok(),
            Some(Tags::Versions(vec![3, 7]))
        );
        assert_eq!(tags("\"abc\"").ok(), Some(Tags::Versions(vec![])));
        assert!(tags("3").is_err());
        let strong = parse_tags(
            &HeaderValue::from_static("W/\"3\", \"7\""),
            Comparison::Strong,
        );
        assert_eq!(strong.ok(), Some(Tags::Versions(vec![7])));
    }

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("30").ok(), Some(Duration::from_secs(30)));
        assert_eq!(parse_ttl("500ms").ok(), Some(Duration::from_millis(500)));
        assert_eq!(parse_ttl("10m").ok(), Some(Duration::from_secs(600)));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("-1").is_err());
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn write_conditions() {
        let mut h = HeaderMap::new();
        assert_eq!(write_condition(&h).ok(), Some(Condition::Always));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"5\""));
        assert_eq!(write_condition(&h).ok(), Some(Condition::IfVersion(5)));
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(write_condition(&h).ok(), Some(Condition::IfPresent));
        h.remove(header::IF_MATCH);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert_eq!(write_condition(&h).ok(), Some(Condition::IfAbsent));
    }
}
