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

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use kvs_protocol::line::{self, LineError, LineRequest};
use kvs_store::{Command, Delete, Get, Reply, Set, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::config::Limits;
use crate::engine::Engine;
use crate::listener::{Addresses, ByteStream, Door, Placement};

const NOT_FOUND: u32 = 10;
/// The seed's "Error unknown": what deleting a missing key answers.
const UNKNOWN: u32 = 2;
const ARGUMENT: u32 = 8;
const STOP: u32 = 14;
/// kvs's own code: the server cannot write its log and refuses writes (reads still work).
const UNAVAILABLE: u32 = 20;

/// The error line for a refused write.
fn unavailable(error: &kvs_store::CommandError) -> Vec<u8> {
    line::error_line(&error.to_string(), UNAVAILABLE)
}

/// The line-protocol front door.
#[derive(Debug)]
pub(crate) struct LineDoor {
    engine: Arc<Engine>,
    limits: Limits,
}

impl LineDoor {
    pub(crate) fn new(engine: Arc<Engine>, limits: Limits) -> Self {
        Self { engine, limits }
    }
}

impl Door for LineDoor {
    const NAME: &'static str = "line protocol";
    /// The seed's argument-exception code with kvs's words: `error_line("too many connections",
    /// ARGUMENT)`, spelled out so it can be a constant (a unit test keeps the two equal).
    const REFUSAL: &'static [u8] =
        b"{\"error\":\"too many connections\",\"errorcode\":8,\"errors\":{}}\n";
    const PLACEMENT: Placement = Placement::ConnectionThreads;

    fn serve<S: ByteStream>(
        &self,
        stream: S,
        _: Addresses,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send {
        connection(stream, &self.engine, &self.limits, stop)
    }
}

async fn connection<S: ByteStream>(
    mut stream: S,
    engine: &Engine,
    limits: &Limits,
    stop: CancellationToken,
) {
    // A line holds a value (escaped, so up to twice its size) plus the other fields.
    let max_line = limits
        .max_value_size
        .saturating_mul(2)
        .saturating_add(limits.max_key_len + 1024);
    let mut input = BytesMut::with_capacity(4096);
    let mut output = Vec::new();
    let mut eof = false;
    // Made once: see the RESP connection loop.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let mut closing = false;
        loop {
            match line::decode(&mut input, max_line, eof) {
                Ok(Some(request)) => {
                    let (reply, stop_now) = answer(engine, limits, &request).await;
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
        input.reserve(4096);
        let read = tokio::select! {
            r = stream.read_buf(&mut input) => r,
            _ = &mut stopped => return,
        };
        match read {
            Ok(0) => eof = true,
            Ok(_) => {}
            Err(_) => return,
        }
    }
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
    let reply = match cmd.as_str() {
        "get" => match engine.execute(Command::Get(Get::new(key.clone()))).await {
            Reply::Value(entry) => match &entry.value {
                Value::String(bytes) => line::value_line(bytes),
            },
            _ => not_found(),
        },
        "delete" => match engine
            .execute(Command::Delete(Delete::new(key.clone())))
            .await
        {
            Reply::Deleted(entry) => match &entry.value {
                Value::String(bytes) => line::value_line(bytes),
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
