//! `GET /openapi.json`: the OpenAPI 3 description of this API, kept in `docs/openapi.json` and
//! checked against the running server by the test suite.

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The document, embedded at build time.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

pub(crate) async fn handle(method: Method) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let mut r = DOCUMENT.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
