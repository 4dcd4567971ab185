//! JSON error responses: `{"error":"<code>","message":"<text for a person>"}` with the status
//! that fits. The set of codes is closed; messages never echo request payloads.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    allow: Option<&'static str>,
    /// `"oldest"` in the body: the first change a watch can still resume from.
    oldest: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
            oldest: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this resource allows {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    pub(crate) fn precondition_failed(current: Option<u64>) -> Self {
        let message = match current {
            Some(v) => format!("the condition did not hold; the current version is {v}"),
            None => "the condition did not hold; the key does not exist".to_owned(),
        };
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            message,
        )
    }

    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds the limit of {limit} bytes"),
        )
    }

    pub(crate) fn key_too_long(limit: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "key_too_long",
            format!("the key exceeds the limit of {limit} bytes"),
        )
    }

    /// The log cannot be written, so writes are refused; reads still work.
    pub(crate) fn read_only(why: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "read_only",
            format!(
                "kvs cannot write its log, so it refuses writes until restarted; reads still work ({why})"
            ),
        )
    }

    /// Memory is over the limit and nothing may be evicted, so writes that need memory are
    /// refused (Redis's OOM); reads and deletes still work.
    pub(crate) fn out_of_memory() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "out_of_memory",
            "used memory is over the limit (maxmemory) and nothing may be evicted; reads and deletes still work",
        )
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// The data directory could not be written.
    pub(crate) fn storage(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", message)
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request",
        )
    }

    /// A watch asked to resume from before the history kept (etcd's compaction): the client
    /// must list again, then watch from the listing's position.
    pub(crate) fn history_compacted(wanted: u64, oldest: u64) -> Self {
        let mut e = Self::new(
            StatusCode::GONE,
            "history_compacted",
            format!(
                "the changes after {wanted} are no longer all kept; list the keys again and watch from the position the listing gives (the oldest change kept is {oldest})"
            ),
        );
        e.oldest = Some(oldest);
        e
    }

    /// The server is shutting down and takes no new watches.
    pub(crate) fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "kvs is shutting down; try again once it is back",
        )
    }

    pub(crate) fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.code, "message": self.message });
        if let Some(oldest) = self.oldest {
            body["oldest"] = oldest.into();
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A complete HTTP/1.1 503 response for a connection refused because the server is at its
/// connection limit; written straight to the socket before closing it.
pub(crate) const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
connection: close\r\n\
retry-after: 1\r\n\
content-length: 82\r\n\r\n\
{\"error\":\"too_many_connections\",\"message\":\"the server is at its connection limit\"}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_response_declares_its_exact_body_length() {
        let text = std::str::from_utf8(BUSY_RESPONSE).expect("ascii");
        let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
        let parsed: serde_json::Value = serde_json::from_str(body).expect("json body");
        assert_eq!(parsed["error"], "too_many_connections");
    }
}
