//! Who is asking, over HTTP, and whether they may: the same users and permissions as the Redis
//! protocol (see [`crate::acl`]).
//!
//! - `Authorization: Basic base64(user:password)` authenticates as an ACL user;
//!   `Authorization: Bearer <password>` as the `default` user. Without either, a request is the
//!   `default` user's if it needs no password, and `401` otherwise, with
//!   `WWW-Authenticate: Basic realm="kvs"`.
//! - Each route is checked as the Redis command it performs: `GET`/`HEAD /kvs/{key}` as `GET key`
//!   (read permission on the key), `PUT`/`POST` as `SET key`, `PATCH` (the expiry) as
//!   `PEXPIRE key` and `DELETE` as `DEL key` (write permission), a listing as `SCAN` (and shows only keys the user may read), the person API as
//!   `GET`/`SET` of `person/<id>`, the admin routes as `BGSAVE`, `LASTSAVE`, `MEMORY STATS`,
//!   `INFO` (`/admin/stats`, `/metrics`), `SLOWLOG GET`/`RESET` and `CLIENT LIST`/`KILL`. A
//!   refusal is `403 no_permission` and an `ACL LOG` entry.
//! - `/healthz`, `/openapi.json` and the console's files (`/ui/`) are open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use percent_encoding::percent_decode;

use super::AppState;
use crate::acl::{Acl, Denied, User};

/// The user a request runs as, for handlers that check more than the route (the listing, the
/// person API).
#[derive(Clone, Debug)]
pub(crate) struct Caller(pub(crate) Arc<User>);

impl Caller {
    /// The `403` answer if the caller may not run `words` (a Redis command and its arguments),
    /// logged; `None` if it may.
    pub(crate) fn refusal(&self, acl: &Acl, words: &[&[u8]]) -> Option<Response> {
        let denied = self.0.check_words(words).err()?;
        Some(forbidden(acl, &self.0, &denied))
    }
}

/// The middleware: authenticates, checks the route, and hands the user to the handler.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    // The console's files hold no data: the page asks for a user and password itself.
    if path == "/healthz" || path == "/openapi.json" || path == "/ui" || path.starts_with("/ui/") {
        return next.run(request).await;
    }
    let acl = &state.acl;
    let user = match credentials(request.headers()) {
        Err(why) => return unauthorized(why),
        Ok(None) => {
            let default = acl.default_user();
            if !default.needs_no_password() {
                return unauthorized("authentication is required");
            }
            default
        }
        Ok(Some((name, password))) => match acl.authenticate(&name, &password) {
            Some(user) => user,
            None => {
                log(acl, "auth", "AUTH".into(), name);
                return unauthorized("invalid username-password pair or user is disabled");
            }
        },
    };
    // A user who may do everything needs no check and nothing handed to the handler (which
    // treats a request without a caller as unrestricted): the common case costs no allocation.
    if user.unrestricted() {
        return next.run(request).await;
    }
    if let Some(words) = route_command(request.method(), path)
        && let Err(denied) = user.check_words(&words.iter().map(Vec::as_slice).collect::<Vec<_>>())
    {
        return forbidden(acl, &user, &denied);
    }
    request.extensions_mut().insert(Caller(user));
    next.run(request).await
}

/// The user and password the request carries; `None` without an `Authorization` header.
fn credentials(headers: &HeaderMap) -> Result<Option<(String, Vec<u8>)>, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], value[i + 1..].trim_ascii()),
        None => return Err("the Authorization header must be Basic or Bearer"),
    };
    if scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(Some(("default".into(), rest.to_vec())));
    }
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err("the Authorization header must be Basic or Bearer");
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .map_err(|_| "the Basic credentials are not valid base64")?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or("the Basic credentials must be user:password")?;
    let user = String::from_utf8(decoded[..colon].to_vec())
        .map_err(|_| "the user name is not valid UTF-8")?;
    Ok(Some((user, decoded[colon + 1..].to_vec())))
}

/// The Redis command a route performs, for its permission check; `None` for a request the route
/// refuses anyway (an unknown method or path, answered by the route itself).
fn route_command(method: &Method, path: &str) -> Option<Vec<Vec<u8>>> {
    let words = |w: &[&[u8]]| Some(w.iter().map(|s| s.to_vec()).collect());
    match path {
        "/kvs" | "/kvs/" => words(&[b"scan", b"0"]),
        "/admin/snapshot" => words(&[b"bgsave"]),
        "/admin/persistence" => words(&[b"lastsave"]),
        "/admin/memory" => words(&[b"memory", b"stats"]),
        "/admin/stats" | "/metrics" => words(&[b"info"]),
        "/admin/slowlog" if *method == Method::DELETE => words(&[b"slowlog", b"reset"]),
        "/admin/slowlog" => words(&[b"slowlog", b"get"]),
        "/admin/clients" => words(&[b"client", b"list"]),
        // The person API's keys come with the request body: its handler checks them.
        "/person/update" => words(&[b"set"]),
        "/person/get" => words(&[b"get"]),
        _ if path.starts_with("/admin/clients/") => {
            let id = path.strip_prefix("/admin/clients/")?.as_bytes();
            words(&[b"client", b"kill", b"id", id])
        }
        _ => {
            let raw = path.strip_prefix("/kvs/")?;
            let key: Vec<u8> = percent_decode(raw.as_bytes()).collect();
            if key.is_empty() {
                return None;
            }
            match *method {
                Method::GET | Method::HEAD => words(&[b"get", &key]),
                Method::PUT | Method::POST => words(&[b"set", &key, b""]),
                Method::DELETE => words(&[b"del", &key]),
                Method::PATCH => words(&[b"pexpire", &key, b"0"]),
                _ => None,
            }
        }
    }
}

fn unauthorized(why: &str) -> Response {
    let body = serde_json::json!({ "error": "unauthorized", "message": why });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"kvs\""),
    );
    response
}

fn forbidden(acl: &Acl, user: &User, denied: &Denied) -> Response {
    let (reason, object) = denied.reason_and_object();
    log(acl, reason, object, user.name().to_owned());
    let body = serde_json::json!({ "error": "no_permission", "message": denied.message() });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

fn log(acl: &Acl, reason: &'static str, object: String, username: String) {
    acl.record(reason, object, username, "door=http".into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_from_basic_and_bearer() {
        let mut headers = HeaderMap::new();
        assert_eq!(credentials(&headers), Ok(None));
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}")).expect("header"),
        );
        assert_eq!(
            credentials(&headers),
            Ok(Some(("alice".into(), b"pa:ss".to_vec())))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert_eq!(
            credentials(&headers),
            Ok(Some(("default".into(), b"s3cret".to_vec())))
        );
        for bad in ["Basic !!!", "Digest x", "Basic", "Basic YWxpY2U="] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(credentials(&headers).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_are_checked_as_the_commands_they_perform() {
        let words = |m: Method, p: &str| {
            route_command(&m, p).map(|w| {
                w.iter()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        };
        assert_eq!(words(Method::GET, "/kvs/a%2Fb").as_deref(), Some("get a/b"));
        assert_eq!(words(Method::PUT, "/kvs/k").as_deref(), Some("set k "));
        assert_eq!(words(Method::DELETE, "/kvs/k").as_deref(), Some("del k"));
        assert_eq!(words(Method::GET, "/kvs").as_deref(), Some("scan 0"));
        assert_eq!(
            words(Method::POST, "/admin/snapshot").as_deref(),
            Some("bgsave")
        );
        assert_eq!(
            words(Method::PATCH, "/kvs/k").as_deref(),
            Some("pexpire k 0")
        );
        assert_eq!(words(Method::OPTIONS, "/kvs/k"), None);
    }
}
