//! Reading a request body within the value-size limit and the body timeout.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use super::error::ApiError;
use crate::config::Limits;

/// Collects the body. A declared `Content-Length` over the limit is refused before any byte is
/// read; an undeclared (chunked) body is refused as soon as it passes the limit, so no more than
/// the limit is ever buffered.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Body,
    limits: &Limits,
) -> Result<Bytes, ApiError> {
    let max = limits.max_value_size;
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::bad_request("invalid Content-Length"))?;
        if len > max as u64 {
            return Err(ApiError::payload_too_large(max));
        }
    }
    let collect = Limited::new(body, max).collect();
    match tokio::time::timeout(limits.body_timeout, collect).await {
        Err(_) => Err(ApiError::request_timeout()),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::payload_too_large(max))
        }
        Ok(Err(_)) => Err(ApiError::bad_request("the request body could not be read")),
    }
}
