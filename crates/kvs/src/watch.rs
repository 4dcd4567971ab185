//! `kvs watch [PREFIX]`: prints changes to keys as they are committed, from the server's event
//! stream (`GET /kvs?prefix=P&watch`). A dropped connection or a restarted server is no reason
//! to stop: it reconnects by itself and resumes from the last event it printed, so nothing is
//! missed or printed twice. It stops only when the server no longer has the changes to resume
//! from (exit 4: list the keys again, then watch with `--since` the listing's position).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::client::{Failure, Server};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only keys starting with this (all keys without it).
    #[arg(default_value = "")]
    prefix: String,
    /// Start after this event id (a position from an earlier watch, or the `X-Kvs-Index` of a
    /// listing); without it, from the next change.
    #[arg(long)]
    since: Option<String>,
    /// One JSON object per line: the event's fields and its `id`.
    #[arg(long)]
    json: bool,
    /// Which values events carry: text (text values), all (base64 as well) or none.
    #[arg(long, default_value = "text")]
    values: String,
    #[command(flatten)]
    server: Server,
}

/// Exit status when the changes to resume from are gone.
const COMPACTED: u8 = 4;

pub fn run(args: WatchArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(3, format!("cannot start: {e}")))
        .and_then(|rt| rt.block_on(watch(&args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("kvs: {message}");
            ExitCode::from(code)
        }
    }
}

/// One event of the stream.
#[derive(Default)]
struct Event {
    id: Option<String>,
    kind: Option<String>,
    data: Option<String>,
}

async fn watch(args: &WatchArgs) -> Result<(), Failure> {
    let client = reqwest::Client::new();
    let url = format!(
        "{}/kvs?prefix={}&watch&values={}",
        args.server.addr().trim_end_matches('/'),
        utf8_percent_encode(&args.prefix, NON_ALPHANUMERIC),
        utf8_percent_encode(&args.values, NON_ALPHANUMERIC),
    );
    let mut last = args.since.clone();
    let mut backoff = Duration::from_millis(100);
    let mut out = std::io::stdout().lock();
    loop {
        let mut request = args.server.authorize(client.get(&url))?;
        if let Some(id) = &last {
            request = request.header("last-event-id", id);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("kvs: cannot reach {} ({e}); retrying", args.server.addr());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        match response.status().as_u16() {
            200 => {}
            410 => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                return Err(Failure(
                    COMPACTED,
                    format!(
                        "the server no longer has the changes after {}: list the keys again (kvs ls) and watch from there; the oldest change kept is {}",
                        last.as_deref().unwrap_or("?"),
                        body["oldest"]
                    ),
                ));
            }
            // Starting or shutting down: try again.
            503 => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            _ => return Err(crate::client::refusal(response).await),
        }
        backoff = Duration::from_millis(100);
        let mut response = response;
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                // The stream ended or broke: reconnect from the last event printed.
                Ok(None) | Err(_) => break,
            };
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = buf.drain(..end + 2).collect();
                let event = parse(&String::from_utf8_lossy(&block));
                if let Some(kind) = &event.kind {
                    if kind == "overflow" {
                        let data = event.data.unwrap_or_default();
                        if data.contains("history_compacted") {
                            return Err(Failure(
                                COMPACTED,
                                "the watch fell too far behind and the changes to resume from are gone: list the keys again".into(),
                            ));
                        }
                        // Too slow for a moment: resume from the last event printed.
                        break;
                    }
                    continue;
                }
                let (Some(id), Some(data)) = (event.id, event.data) else {
                    continue;
                };
                print(&mut out, &id, &data, args.json)
                    .map_err(|e| Failure(3, format!("cannot write: {e}")))?;
                last = Some(id);
            }
        }
        eprintln!("kvs: the event stream ended; resuming");
        tokio::time::sleep(backoff).await;
    }
}

fn parse(block: &str) -> Event {
    let mut event = Event::default();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            event.id = Some(v.trim_start().to_owned());
        } else if let Some(v) = line.strip_prefix("event:") {
            event.kind = Some(v.trim_start().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            event.data = Some(v.trim_start().to_owned());
        }
    }
    event
}

/// One line per event: JSON with its id, or `id op key [version] [value]`.
fn print(out: &mut impl Write, id: &str, data: &str, json: bool) -> std::io::Result<()> {
    let mut value: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    if json {
        value["id"] = id.into();
        writeln!(out, "{value}")?;
    } else {
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        let mut line = format!("{id} {} {}", field("op"), field("key"));
        if let Some(v) = value["version"].as_u64() {
            line.push_str(&format!(" v{v}"));
        }
        if let Some(text) = value["value"].as_str() {
            line.push(' ');
            line.push_str(&serde_json::Value::from(text).to_string());
        }
        writeln!(out, "{line}")?;
    }
    out.flush()
}
