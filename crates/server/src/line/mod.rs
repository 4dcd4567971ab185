//! The line protocol front door (default 127.0.0.1:9001): `cmd=get|create|update|delete|stop`
//! with `key=` and `body=` fields, one reply line per request, for `nc`, `telnet` and scripts.
//! The codec is `kvs_protocol::line`; this module serves connections the listener accepted
//! (`crate::listener`) and maps requests to store commands.
//!
//! Replies, as the seed's own server gave them (scripts written for it rely on these): `get`
//! answers the value; `create` and `update` both upsert and answer the stored body; `delete`
//! answers the deleted value. Values are escaped so they stay on one line. Errors are one JSON
//! line with the seed's codes: 10 `get` of a missing key, 2 `delete` of a missing key ("Error
//! unknown"), 8 anything malformed (an unknown command, a missing field, a part without `=`, an
//! empty line), 14 stop (sent before the server closes the connection). Every line sent gets
//! exactly one reply line, and the connection stays open after every error but `stop`. A
//! connection past the connection limit gets code 8 "too many connections" and is closed.
//!
//! Users and permissions (kvs's own codes, README "Securing kvs"): `cmd=auth | key=<user> |
//! body=<password>` (or `cmd=auth | body=<password>` for the default user) answers `OK`, or code
//! 21 when the pair opens no user. While a password is required and the connection has not
//! authenticated, every other command gets code 21 and lines are limited to 16 KiB. A command the
//! user may not run on that key gets code 22: `get` is checked as Redis's `GET`, `create` and
//! `update` as `SET`, `delete` as `DEL`.
//!
//! Over the memory limit with nothing to evict (README "kvs as a cache"), `create` and `update`
//! get code 23 with Redis's OOM text; `get` and `delete` still work.

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use kvs_protocol::line::{self, LineError, LineRequest};
use kvs_store::{Command, Delete, Get, Reply, Set, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::acl::{Acl, User};
use crate::config::Limits;
use crate::engine::Engine;
use crate::listener::{Addresses, ByteStream, Door, Placement};
use crate::stats::{Class, Door as StatsDoor};

const NOT_FOUND: u32 = 10;
/// The seed's "Error unknown": what deleting a missing key answers.
const UNKNOWN: u32 = 2;
const ARGUMENT: u32 = 8;
const STOP: u32 = 14;
/// kvs's own code: the server cannot write its log and refuses writes (reads still work).
const UNAVAILABLE: u32 = 20;
/// kvs's own code: authentication is required, or the credentials open no user.
const NOAUTH: u32 = 21;
/// kvs's own code: the user may not run this command on this key.
const NO_PERMISSION: u32 = 22;
/// kvs's own code: memory is over its limit (maxmemory) and nothing may be evicted, so writes
/// are refused with Redis's OOM text; reads and deletes still work.
const OUT_OF_MEMORY: u32 = 23;
/// kvs's own code: the key holds a hash, list, set or sorted set, which the line protocol does
/// not show (use the Redis or HTTP door).
const WRONG_TYPE: u32 = 24;
/// Longest line a connection that has not authenticated may send.
const UNAUTHENTICATED_MAX_LINE: usize = 16 * 1024;

/// The error line for a refused write.
fn unavailable(error: &kvs_store::CommandError) -> Vec<u8> {
    let code = match error {
        kvs_store::CommandError::OutOfMemory => OUT_OF_MEMORY,
        _ => UNAVAILABLE,
    };
    line::error_line(&error.to_string(), code)
}

/// The line-protocol front door.
#[derive(Debug)]
pub(crate) struct LineDoor {
    engine: Arc<Engine>,
    limits: Limits,
    acl: Arc<Acl>,
}

impl LineDoor {
    pub(crate) fn new(engine: Arc<Engine>, limits: Limits, acl: Arc<Acl>) -> Self {
        Self {
            engine,
            limits,
            acl,
        }
    }
}

/// Who a connection runs as.
struct Caller {
    /// How `ACL LOG` describes the connection.
    client_info: String,
    user: Arc<User>,
    generation: u64,
    loads: u64,
    authenticated: bool,
}

impl Caller {
    fn new(acl: &Acl, peer: std::net::SocketAddr) -> Self {
        let generation = acl.generation();
        let loads = acl.loads();
        let user = acl.default_user();
        Self {
            client_info: format!("door=line addr={peer}"),
            authenticated: user.needs_no_password(),
            user,
            generation,
            loads,
        }
    }

    /// Takes the user's current permissions if the ACL changed; `false` if the connection may no
    /// longer run as its user (deleted, or made anew by `ACL LOAD`).
    fn refresh(&mut self, acl: &Acl) -> bool {
        let generation = acl.generation();
        if generation != self.generation {
            self.generation = generation;
            match acl.still_valid(&self.user, self.loads) {
                Some(user) => self.user = user,
                None => return false,
            }
        }
        true
    }
}

impl Door for LineDoor {
    const NAME: &'static str = "line protocol";
    const COUNTED_AS: crate::stats::Door = crate::stats::Door::Line;
    /// The seed's argument-exception code with kvs's words: `error_line("too many connections",
    /// ARGUMENT)`, spelled out so it can be a constant (a unit test keeps the two equal).
    const REFUSAL: &'static [u8] =
        b"{\"error\":\"too many connections\",\"errorcode\":8,\"errors\":{}}\n";
    const PLACEMENT: Placement = Placement::ConnectionThreads;

    fn serve<S: ByteStream>(
        &self,
        stream: S,
        addresses: Addresses,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send {
        connection(
            stream,
            &self.engine,
            &self.limits,
            &self.acl,
            addresses.peer,
            stop,
        )
    }
}

async fn connection<S: ByteStream>(
    mut stream: S,
    engine: &Engine,
    limits: &Limits,
    acl: &Acl,
    peer: std::net::SocketAddr,
    stop: CancellationToken,
) {
    let mut caller = Caller::new(acl, peer);
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut progressed = false;
    // A line holds a value (escaped, so up to twice its size) plus the other fields.
    let max_line = limits
        .max_value_size
        .saturating_mul(2)
        .saturating_add(limits.max_key_len + 1024);
    let mut input = BytesMut::with_capacity(4096);
    let mut output = Vec::new();
    let mut eof = false;
    // Made once: see the RESP connection loop.
    // A token of this connection's own, cancelled with the server's: waiting on the shared one
    // would make every connection take the same locks on every poll.
    let stop = stop.child_token();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let mut closing = false;
        loop {
            let max_line = if caller.authenticated {
                max_line
            } else {
                UNAUTHENTICATED_MAX_LINE
            };
            match line::decode(&mut input, max_line, eof) {
                Ok(Some(request)) => {
                    progressed = true;
                    if !caller.refresh(acl) {
                        // The user was deleted: its connections close, as over RESP.
                        closing = true;
                        break;
                    }
                    let started = std::time::Instant::now();
                    let (reply, stop_now) = match gate(acl, &mut caller, &request) {
                        Some(refusal) => refusal,
                        None => answer(engine, limits, &request).await,
                    };
                    count(engine, &request, started, peer);
                    output.extend_from_slice(&reply);
                    if stop_now {
                        closing = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(LineError::NotAField(field)) => output.extend_from_slice(&line::error_line(
                    &format!(
                        "argument exception: {:?} is not name=value",
                        field.chars().take(64).collect::<String>()
                    ),
                    ARGUMENT,
                )),
                Err(LineError::Empty) => output.extend_from_slice(&line::error_line(
                    "argument exception: the line is empty",
                    ARGUMENT,
                )),
                Err(e @ LineError::TooLong(_)) => {
                    output.extend_from_slice(&line::error_line(&e.to_string(), ARGUMENT));
                    closing = true;
                    break;
                }
            }
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        if closing || eof {
            let _ = stream.shutdown().await;
            return;
        }
        // A line that has begun must be complete within the body timeout, so a client sending a
        // byte now and then cannot hold a connection forever.
        // The clock starts again with each request taken, so a steady pipeline never times out.
        if input.is_empty() {
            partial_since = None;
        } else if progressed || partial_since.is_none() {
            partial_since = Some(tokio::time::Instant::now());
        }
        progressed = false;
        let deadline = partial_since.map(|since| since + limits.body_timeout);
        input.reserve(4096);
        let read = tokio::select! {
            r = stream.read_buf(&mut input) => r,
            _ = &mut stopped => return,
            () = sleep_until_some(deadline) => {
                let _ = stream
                    .write_all(&line::error_line(
                        &format!(
                            "request timeout: the line did not end within {} s",
                            limits.body_timeout.as_secs_f64()
                        ),
                        ARGUMENT,
                    ))
                    .await;
                let _ = stream.shutdown().await;
                return;
            }
        };
        match read {
            Ok(0) => eof = true,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Counts a request: its class and latency, and the slow log (with the request's fields,
/// `body` left out when it is a password).
fn count(
    engine: &Engine,
    request: &LineRequest,
    started: std::time::Instant,
    peer: std::net::SocketAddr,
) {
    let took = started.elapsed();
    let cmd = request.get("cmd").map(|c| c.to_ascii_lowercase());
    let class = match cmd.as_deref() {
        Some(b"get") => Class::Read,
        Some(b"create" | b"update" | b"delete") => Class::Write,
        _ => Class::Other,
    };
    // The request's fields as `name=value`, a password left out.
    let secret = cmd.as_deref() == Some(b"auth");
    let args = || -> Vec<bytes::Bytes> {
        request
            .fields
            .iter()
            .map(|(name, value)| {
                if secret && name == "body" {
                    field(name, b"(redacted)")
                } else {
                    field(name, value)
                }
            })
            .collect()
    };
    let stats = engine.stats();
    stats.request(StatsDoor::Line, class, took);
    if stats.monitors.active() {
        let limit = engine.pubsub().limit();
        stats
            .monitors
            .feed(StatsDoor::Line, &peer.to_string(), &args(), limit);
    }
    stats.slowlog.note(took, StatsDoor::Line, args, || {
        (peer.to_string(), String::new())
    });
}

/// One field of a line request as `name=value`, for the slow log and monitors.
fn field(name: &str, value: &[u8]) -> bytes::Bytes {
    let mut field = Vec::with_capacity(name.len() + 1 + value.len());
    field.extend_from_slice(name.as_bytes());
    field.push(b'=');
    field.extend_from_slice(value);
    bytes::Bytes::from(field)
}

/// Authentication and permissions: the answer to `cmd=auth`, or a refusal; `None` when the
/// request may go on to [`answer`].
fn gate(acl: &Acl, caller: &mut Caller, request: &LineRequest) -> Option<(Vec<u8>, bool)> {
    let cmd = request.get("cmd")?;
    if cmd.eq_ignore_ascii_case(b"auth") {
        let name = request.get("key").map_or_else(
            || "default".to_owned(),
            |k| String::from_utf8_lossy(k).into_owned(),
        );
        let password = request.get("body").map(|b| b.as_ref()).unwrap_or_default();
        return Some(match acl.authenticate(&name, password) {
            Some(user) => {
                caller.user = user;
                caller.loads = acl.loads();
                caller.authenticated = true;
                (line::value_line(b"OK"), false)
            }
            None => {
                acl.record("auth", "auth".into(), name, caller.client_info.clone());
                (
                    line::error_line("invalid username-password pair or user is disabled", NOAUTH),
                    false,
                )
            }
        });
    }
    if cmd.eq_ignore_ascii_case(b"stop") {
        return None;
    }
    if !caller.authenticated {
        return Some((line::error_line("authentication required", NOAUTH), false));
    }
    if caller.user.unrestricted() {
        return None;
    }
    let key = request.get("key")?;
    let words: Vec<&[u8]> = match cmd.to_ascii_lowercase().as_slice() {
        b"get" => vec![b"get", key],
        b"create" | b"update" => vec![b"set", key, b""],
        b"delete" => vec![b"del", key],
        _ => return None,
    };
    let denied = caller.user.check_words(&words).err()?;
    let (reason, object) = denied.reason_and_object();
    acl.record(
        reason,
        object,
        caller.user.name().to_owned(),
        caller.client_info.clone(),
    );
    Some((line::error_line(&denied.message(), NO_PERMISSION), false))
}

/// The reply line for one request, and whether the connection closes after it.
async fn answer(engine: &Engine, limits: &Limits, request: &LineRequest) -> (Vec<u8>, bool) {
    let Some(cmd) = request.get("cmd") else {
        return (
            line::error_line("argument exception: cmd is required", ARGUMENT),
            false,
        );
    };
    let cmd = String::from_utf8_lossy(cmd).to_ascii_lowercase();
    if cmd == "stop" {
        return (line::error_line("stop: closing the connection", STOP), true);
    }
    if !matches!(cmd.as_str(), "get" | "create" | "update" | "delete") {
        return (
            line::error_line(
                &format!(
                    "unknown command {:?}",
                    cmd.chars().take(64).collect::<String>()
                ),
                ARGUMENT,
            ),
            false,
        );
    }
    let Some(key) = request.get("key").filter(|k| !k.is_empty()).cloned() else {
        return (
            line::error_line("argument exception: key is required", ARGUMENT),
            false,
        );
    };
    if key.len() > limits.max_key_len {
        return (
            line::error_line(
                &format!(
                    "argument exception: key longer than {} bytes",
                    limits.max_key_len
                ),
                ARGUMENT,
            ),
            false,
        );
    }
    let not_found = || {
        line::error_line(
            &format!("key {:?} not found", String::from_utf8_lossy(&key)),
            NOT_FOUND,
        )
    };
    let wrong_type = |kind: &str| {
        line::error_line(
            &format!(
                "wrong type: key {:?} holds a {kind}, which only the Redis and HTTP doors show",
                String::from_utf8_lossy(&key)
            ),
            WRONG_TYPE,
        )
    };
    let reply = match cmd.as_str() {
        "get" => match engine.execute(Command::Get(Get::new(key.clone()))).await {
            Reply::Value(entry) => match &entry.value {
                Value::String(bytes) => line::value_line(bytes),
                Value::Collection(c) => wrong_type(c.kind().name()),
            },
            _ => not_found(),
        },
        "delete" => match engine
            .execute(Command::Delete(Delete::new(key.clone())))
            .await
        {
            Reply::Deleted(entry) => match &entry.value {
                Value::String(bytes) => line::value_line(bytes),
                Value::Collection(c) => line::value_line(c.kind().name().as_bytes()),
            },
            Reply::Error(e) => unavailable(&e),
            _ => line::error_line("Error unknown", UNKNOWN),
        },
        _ => {
            let Some(body) = request.get("body").cloned() else {
                return (
                    line::error_line("argument exception: body is required", ARGUMENT),
                    false,
                );
            };
            if body.len() > limits.max_value_size {
                return (
                    line::error_line(
                        &format!(
                            "argument exception: body longer than {} bytes",
                            limits.max_value_size
                        ),
                        ARGUMENT,
                    ),
                    false,
                );
            }
            match engine
                .execute(Command::Set(Set::new(key.clone(), body.clone())))
                .await
            {
                Reply::Stored { .. } => line::value_line(&body),
                Reply::Error(e) => unavailable(&e),
                _ => not_found(),
            }
        }
    };
    (reply, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_the_codec_s_error_line() {
        assert_eq!(
            LineDoor::REFUSAL,
            line::error_line("too many connections", ARGUMENT).as_slice()
        );
    }
}
