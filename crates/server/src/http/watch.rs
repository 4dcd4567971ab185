//! Watching keys over HTTP, from the change feed (see [`crate::feed`]):
//!
//! - `GET /kvs/{key}?watch` and `GET /kvs?prefix=P&watch` stream changes as Server-Sent Events.
//!   Each change is one event whose `id:` is its position in the commit order; a client that
//!   reconnects with `Last-Event-ID` (or `?since=`) gets every change after it, then the live
//!   stream: none missed, none repeated. When the history kept in memory no longer reaches back
//!   that far, a durable server reads the changes back from its log; past that, the answer is
//!   `410 history_compacted` with the oldest position kept, and the client lists again.
//! - `GET /kvs/{key}?wait=30s&index=V` and `GET /kvs?prefix=P&wait=30s&index=R` are Consul-style
//!   blocking reads: answered at once if something changed since the index, otherwise on the
//!   next change, or at the timeout.
//!
//! A watch's events are produced by a task of its own that reads the feed as fast as it can and
//! hands them to the response body through a small bounded queue. A watcher that stops reading
//! fills the queue; if it falls so far behind that the feed is about to drop the changes it has
//! yet to see, it is sent `event: overflow` and disconnected while it can still resume from its
//! last id.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use kvs_store::{Access, Change, DEFAULT_CONTENT_TYPE, Entry, Removal, Value};
use parking_lot::Mutex;
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::auth::Caller;
use super::conditions::rfc3339;
use super::error::ApiError;
use super::query;
use crate::engine::Engine;
use crate::feed::{FeedError, FeedItem, Start, Subscription};

/// Time between heartbeats on an idle stream, unless `?heartbeat=` says otherwise.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Longest blocking read (`?wait=`), as Consul caps it.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Events handed to the body in one piece, at most about this many bytes.
const BATCH: usize = 64 * 1024;
/// Pieces queued for the body before the producer waits for the watcher to read.
const QUEUED: usize = 16;
/// Changes read back from the log at a time when resuming from before the history in memory.
const LOG_READ: usize = 1 << 20;

/// What a watch or blocking read follows.
#[derive(Clone, Debug)]
pub(crate) enum Scope {
    Key(Bytes),
    Prefix(Bytes),
}

impl Scope {
    fn covers(&self, key: &[u8]) -> bool {
        match self {
            Scope::Key(k) => k[..] == *key,
            Scope::Prefix(p) => key.starts_with(p),
        }
    }

    /// Whether `change` is one this scope reports (a flush removes every key).
    fn sees(&self, change: &Change) -> bool {
        match change {
            Change::Flush => true,
            other => other.key().is_some_and(|k| self.covers(k)),
        }
    }
}

/// Which values events carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Values {
    /// Text values, as text (the default).
    Text,
    /// Every value, base64-encoded (and as text too when it is text).
    All,
    None,
}

/// Where a resumed watch starts: the first position to deliver, and how many of the changes the
/// watch reports at that position were already delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Resume {
    position: u64,
    skip: usize,
}

/// Reads an event id: `P` (everything up to position `P` was seen) or `P.i` (at position `P`,
/// the changes up to the `i`th were seen).
fn parse_resume(text: &str) -> Option<Resume> {
    let text = text.trim();
    match text.split_once('.') {
        None => {
            let position: u64 = text.parse().ok()?;
            Some(Resume {
                position: position.checked_add(1)?,
                skip: 0,
            })
        }
        Some((position, index)) => Some(Resume {
            position: position.parse().ok()?,
            skip: index.parse::<usize>().ok()?.checked_add(1)?,
        }),
    }
}

/// A watch request, read from its URL and headers.
pub(crate) struct Watch {
    scope: Scope,
    values: Values,
    heartbeat: Duration,
    resume: Option<Resume>,
    caller: Option<Caller>,
}

impl Watch {
    /// Reads `values`, `heartbeat` and where to resume (`Last-Event-ID` wins over `since`, as
    /// a browser reconnecting sends the URL it first used).
    pub(crate) fn read(
        uri: &Uri,
        headers: &HeaderMap,
        scope: Scope,
        caller: Option<Caller>,
    ) -> Result<Self, ApiError> {
        let values = match query::text_param(uri, "values").as_deref() {
            None | Some("text") => Values::Text,
            Some("all") => Values::All,
            Some("none") => Values::None,
            Some(_) => return Err(ApiError::bad_request("values must be text, all or none")),
        };
        let heartbeat = match query::text_param(uri, "heartbeat") {
            None => HEARTBEAT,
            Some(text) => crate::config::parse_duration(&text)
                .ok()
                .filter(|d| (Duration::from_millis(100)..=Duration::from_secs(300)).contains(d))
                .ok_or_else(|| {
                    ApiError::bad_request("heartbeat must be a duration from 100ms to 300s")
                })?,
        };
        let last_event = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned);
        let resume = match last_event.or_else(|| query::text_param(uri, "since")) {
            None => None,
            Some(text) => Some(parse_resume(&text).ok_or_else(|| {
                ApiError::bad_request(
                    "since and Last-Event-ID take an event id: a position (123) or a position and an index (123.0)",
                )
            })?),
        };
        Ok(Self {
            scope,
            values,
            heartbeat,
            resume,
            caller,
        })
    }
}

/// The feed as a watch reads it: changes read back from the log first when it resumes from
/// before what the feed keeps in memory, then the feed itself.
struct Source {
    engine: Arc<Engine>,
    subscription: Subscription,
    backlog: VecDeque<Arc<FeedItem>>,
}

impl Source {
    /// The next change committed, if there is one now.
    fn try_next(&mut self) -> Result<Option<Arc<FeedItem>>, FeedError> {
        if let Some(item) = self.backlog.pop_front() {
            return Ok(Some(item));
        }
        match self.subscription.try_next() {
            Err(FeedError::Compacted { wanted, oldest }) => {
                let items = self.engine.log_items(wanted, oldest, LOG_READ)?;
                let Some(last) = items.last().map(|i| i.position) else {
                    // Not yet acknowledged by the log; asked again shortly.
                    return Ok(None);
                };
                self.subscription.seek(last + 1);
                self.backlog.extend(items.into_iter().map(Arc::new));
                Ok(self.backlog.pop_front())
            }
            other => other,
        }
    }

    /// Whether the next position to read is older than the feed keeps in memory.
    fn behind_memory(&self) -> bool {
        self.backlog.is_empty() && self.subscription.position() < self.engine.feed().span().0
    }

    /// The next change committed, waiting for it.
    async fn next(&mut self) -> Result<Arc<FeedItem>, FeedError> {
        loop {
            if let Some(item) = self.try_next()? {
                return Ok(item);
            }
            if self.behind_memory() {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            match self.subscription.next().await {
                Ok(item) => return Ok(item),
                Err(FeedError::Compacted { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the feed is about to drop changes this source has yet to read: it is in the
    /// oldest quarter of what the feed holds.
    fn in_danger(&self) -> bool {
        let (oldest, held) = self.engine.feed().span();
        self.backlog.is_empty() && self.subscription.position() < oldest + (held / 4) as u64
    }
}

/// Starts a watch: `410` if it resumes from before everything kept, the event stream otherwise.
pub(crate) fn start(engine: &Arc<Engine>, watch: Watch) -> Result<Response, ApiError> {
    let start = watch.resume.map_or(Start::Next, |r| Start::At(r.position));
    let subscription = engine.subscribe(start);
    let next = engine.feed_position().map_or(0, |p| p + 1);
    if let Some(resume) = watch.resume
        && resume.position > next
    {
        // An id this server never gave: its history was lost (a server kept in memory was
        // restarted, or its data directory replaced).
        return Err(ApiError::history_compacted(
            resume.position.saturating_sub(1),
            engine.feed().span().0,
        ));
    }
    let mut source = Source {
        engine: engine.clone(),
        subscription,
        backlog: VecDeque::new(),
    };
    // Any refusal must come before the stream's first byte.
    match source.try_next() {
        Ok(Some(first)) => source.backlog.push_front(first),
        Ok(None) => {}
        Err(FeedError::Compacted { wanted, oldest }) => {
            return Err(ApiError::history_compacted(
                wanted.saturating_sub(1),
                oldest,
            ));
        }
        Err(FeedError::Closed) => return Err(ApiError::shutting_down()),
    }
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED);
    let tail = Arc::new(Mutex::new(None));
    tokio::spawn(produce(source, watch, tx, tail.clone()));
    let body = futures_util::stream::unfold((rx, tail, false), |(mut rx, tail, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Some(bytes) => Some((Ok::<_, Infallible>(bytes), (rx, tail, false))),
            None => {
                let last = tail.lock().take();
                last.map(|bytes| (Ok(bytes), (rx, tail, true)))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx buffer responses unless told not to.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Reads the feed and hands encoded events to the body until the watcher leaves, the server
/// shuts down, or the watcher falls too far behind; `tail` is the last event, if any.
async fn produce(
    mut source: Source,
    watch: Watch,
    tx: mpsc::Sender<Bytes>,
    tail: Arc<Mutex<Option<Bytes>>>,
) {
    let engine = source.engine.clone();
    let feed = engine.feed();
    let mut skip = watch.resume.filter(|r| r.skip > 0);
    let mut batch = BytesMut::from(&b"retry: 1000\n\n"[..]);
    let mut beat_at = Instant::now() + watch.heartbeat;
    let overflow =
        |tail: &Mutex<Option<Bytes>>, error: &str, message: &str, oldest: Option<u64>| {
            let mut data = serde_json::json!({ "error": error, "message": message });
            if let Some(oldest) = oldest {
                data["oldest"] = oldest.into();
            }
            *tail.lock() = Some(Bytes::from(format!("event: overflow\ndata: {data}\n\n")));
            feed.count_dropped();
        };
    loop {
        if batch.is_empty() {
            let item = tokio::select! {
                biased;
                () = feed.stopping() => return,
                () = tx.closed() => return,
                item = source.next() => Some(item),
                () = tokio::time::sleep_until(beat_at) => None,
            };
            match item {
                None => batch.extend_from_slice(b": keep-alive\n\n"),
                Some(Ok(item)) => encode(&item, &watch, &mut skip, &mut batch),
                Some(Err(FeedError::Compacted { oldest, .. })) => {
                    overflow(
                        &tail,
                        "history_compacted",
                        "the watch fell behind the history kept; list the keys again",
                        Some(oldest),
                    );
                    return;
                }
                Some(Err(FeedError::Closed)) => return,
            }
        }
        // Whatever else is ready goes in the same piece.
        while batch.len() < BATCH {
            match source.try_next() {
                Ok(Some(item)) => encode(&item, &watch, &mut skip, &mut batch),
                Ok(None) => break,
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let piece = batch.split().freeze();
        let mut piece = Some(piece);
        while let Some(bytes) = piece.take() {
            tokio::select! {
                biased;
                () = feed.stopping() => return,
                permit = tx.reserve() => match permit {
                    Ok(permit) => permit.send(bytes),
                    Err(_) => return,
                },
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if source.in_danger() {
                        overflow(
                            &tail,
                            "slow_consumer",
                            "the watcher did not keep up; reconnect with Last-Event-ID to resume",
                            None,
                        );
                        return;
                    }
                    piece = Some(bytes);
                }
            }
        }
        beat_at = Instant::now() + watch.heartbeat;
    }
}

/// Appends the events of `item` that `watch` reports: one per change, its id the item's
/// position (with `.i` for all but the last of several).
fn encode(item: &FeedItem, watch: &Watch, skip: &mut Option<Resume>, out: &mut BytesMut) {
    let seen = match skip.take() {
        Some(r) if r.position == item.position => r.skip,
        _ => 0,
    };
    let changes: Vec<&Change> = item
        .effects
        .changes
        .iter()
        .filter(|c| watch.scope.sees(c))
        .filter(|c| match (&watch.caller, c) {
            (Some(caller), change) if change.key().is_some() => change
                .key()
                .is_some_and(|key| caller.0.check_key(key, Access::READ).is_ok()),
            _ => true,
        })
        .collect();
    let count = changes.len();
    for (i, change) in changes.into_iter().enumerate().skip(seen) {
        let id = if i + 1 == count {
            item.position.to_string()
        } else {
            format!("{}.{i}", item.position)
        };
        let data = event(change, watch.values);
        out.extend_from_slice(format!("id: {id}\ndata: {data}\n\n").as_bytes());
    }
}

/// The JSON of one change.
fn event(change: &Change, values: Values) -> Json {
    let mut o = Map::new();
    match change {
        Change::Put(key, entry) => {
            query::key_fields(key, &mut o);
            o.insert("op".into(), "put".into());
            put_fields(entry, values, &mut o);
        }
        Change::Remove(key, why) => {
            query::key_fields(key, &mut o);
            let op = match why {
                Removal::Deleted => "delete",
                Removal::Expired => "expire",
                Removal::Evicted => "evict",
            };
            o.insert("op".into(), op.into());
        }
        Change::Flush => {
            o.insert("op".into(), "flush".into());
        }
        Change::Edit {
            key,
            version,
            modified_at,
            edit,
        } => {
            query::key_fields(key, &mut o);
            o.insert("op".into(), "update".into());
            o.insert("type".into(), edit.kind().name().into());
            o.insert("version".into(), (*version).into());
            o.insert("modified_at".into(), rfc3339(*modified_at).into());
        }
        Change::Restamp {
            key,
            version,
            modified_at,
            expires_at,
        } => {
            query::key_fields(key, &mut o);
            o.insert("op".into(), "touch".into());
            o.insert("version".into(), (*version).into());
            o.insert("modified_at".into(), rfc3339(*modified_at).into());
            o.insert(
                "expires_at".into(),
                expires_at.map(rfc3339).map_or(Json::Null, Json::from),
            );
        }
        Change::Extend(key, edit) => {
            query::key_fields(key, &mut o);
            o.insert("op".into(), "update".into());
            o.insert("type".into(), edit.kind().name().into());
        }
        // Not a key: no scope sees it, so no event shows it.
        Change::Meta(..) => {
            o.insert("op".into(), "server_state".into());
        }
    }
    Json::Object(o)
}

fn put_fields(entry: &Entry, values: Values, o: &mut Map<String, Json>) {
    let content_type = String::from_utf8_lossy(&entry.content_type);
    if entry.value.kind() != kvs_store::Kind::String {
        o.insert("type".into(), entry.value.kind().name().into());
    }
    o.insert("version".into(), entry.version.into());
    o.insert("content_type".into(), content_type.as_ref().into());
    o.insert("size".into(), entry.value.len().into());
    o.insert("modified_at".into(), rfc3339(entry.modified_at).into());
    o.insert(
        "expires_at".into(),
        entry.expires_at.map(rfc3339).map_or(Json::Null, Json::from),
    );
    if values == Values::None {
        return;
    }
    let Value::String(bytes) = &entry.value else {
        return;
    };
    if let Some(text) = as_text(&content_type, bytes) {
        o.insert("value".into(), text.into());
    }
    if values == Values::All {
        o.insert(
            "value_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        );
    }
}

/// The value as text, when it is text: UTF-8 under a textual content type, or under none named
/// (what RESP and line-protocol writes store).
fn as_text<'a>(content_type: &str, bytes: &'a [u8]) -> Option<&'a str> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let textual = essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/yaml"
                | "application/toml"
        )
        || essence == DEFAULT_CONTENT_TYPE;
    textual.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

/// A blocking read's `wait` and `index`, if `wait` is given.
pub(crate) fn blocking(uri: &Uri) -> Result<Option<(Duration, Option<u64>)>, ApiError> {
    let Some(wait) = query::text_param(uri, "wait") else {
        return Ok(None);
    };
    let wait = crate::config::parse_duration(&wait)
        .map_err(|_| ApiError::bad_request("wait must be a duration such as 30s or 5m"))?
        .min(MAX_WAIT);
    let index = match query::text_param(uri, "index") {
        None => None,
        Some(text) => Some(
            text.trim()
                .trim_matches('"')
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request("index must be a whole number"))?,
        ),
    };
    Ok(Some((wait, index)))
}

/// Waits, up to `wait`, until the version of `key` differs from `index` (0: the key is absent).
/// Returns at once when it already does, or when `index` is not given.
pub(crate) async fn wait_for_key(engine: &Engine, key: &Bytes, wait: Duration, index: Option<u64>) {
    let Some(index) = index else {
        return;
    };
    let deadline = Instant::now() + wait;
    let scope = Scope::Key(key.clone());
    let mut subscription = engine.subscribe(Start::Next);
    // Looked at after subscribing, so a change in between is not missed.
    if engine.version_of(key).unwrap_or(0) != index {
        return;
    }
    wait_for_change(engine, &mut subscription, &scope, deadline).await;
}

/// Waits, up to `wait`, for a change under `prefix` after position `index`. Returns at once
/// when there already was one, or when that cannot be known (no `index`, or one from before the
/// history kept).
pub(crate) async fn wait_for_prefix(
    engine: &Engine,
    prefix: &Bytes,
    wait: Duration,
    index: Option<u64>,
) {
    let deadline = Instant::now() + wait;
    let was_open = engine.feed().is_open();
    let mut subscription = engine.subscribe(match index {
        Some(index) => Start::At(index.saturating_add(1)),
        None => Start::Next,
    });
    let next = engine.feed_position().map_or(0, |p| p + 1);
    match index {
        Some(index) if was_open && index < next => {}
        _ => return,
    }
    wait_for_change(
        engine,
        &mut subscription,
        &Scope::Prefix(prefix.clone()),
        deadline,
    )
    .await;
}

/// Waits for a change `scope` sees, until `deadline` or shutdown. A gap in the history ends the
/// wait too: the client reads again and learns what changed.
async fn wait_for_change(
    engine: &Engine,
    subscription: &mut Subscription,
    scope: &Scope,
    deadline: Instant,
) {
    let feed = engine.feed();
    loop {
        let item = tokio::select! {
            biased;
            () = feed.stopping() => return,
            () = tokio::time::sleep_until(deadline) => return,
            item = subscription.next() => item,
        };
        match item {
            Ok(item) if item.effects.changes.iter().any(|c| scope.sees(c)) => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// The `X-Kvs-Index` header: what a blocking read's next `index` should be.
pub(crate) fn index_header(response: &mut Response, index: u64) {
    response
        .headers_mut()
        .insert("x-kvs-index", HeaderValue::from(index));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_read_back_as_resume_points() {
        assert_eq!(
            parse_resume("41"),
            Some(Resume {
                position: 42,
                skip: 0
            })
        );
        assert_eq!(
            parse_resume("41.0"),
            Some(Resume {
                position: 41,
                skip: 1
            })
        );
        assert_eq!(parse_resume("x"), None);
        assert_eq!(parse_resume("1.x"), None);
        assert_eq!(parse_resume(&u64::MAX.to_string()), None);
    }

    #[test]
    fn values_are_text_when_they_read_as_text() {
        assert_eq!(as_text("text/plain; charset=utf-8", b"hi"), Some("hi"));
        assert_eq!(as_text(DEFAULT_CONTENT_TYPE, b"hi"), Some("hi"));
        assert_eq!(as_text("application/vnd.api+json", b"{}"), Some("{}"));
        assert_eq!(as_text("image/png", b"hi"), None);
        assert_eq!(as_text("text/plain", &[0xff, 0xfe]), None);
    }

    #[test]
    fn a_multi_change_item_gives_sub_ids_and_resumes_inside_it() {
        let put = |k: &'static str| {
            Change::Put(
                Bytes::from_static(k.as_bytes()),
                Entry {
                    value: Value::String(Bytes::from_static(b"v")),
                    content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
                    version: 1,
                    modified_at: 0,
                    expires_at: None,
                },
            )
        };
        let item = FeedItem {
            position: 7,
            effects: kvs_store::Effects {
                revision: 1,
                changes: vec![put("a/1"), put("b/1"), put("a/2"), put("a/3")],
                events: Vec::new(),
            },
        };
        let watch = Watch {
            scope: Scope::Prefix(Bytes::from_static(b"a/")),
            values: Values::Text,
            heartbeat: HEARTBEAT,
            resume: None,
            caller: None,
        };
        let mut out = BytesMut::new();
        encode(&item, &watch, &mut None, &mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let ids: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .collect();
        assert_eq!(ids, ["7.0", "7.1", "7"]);
        let mut resumed = BytesMut::new();
        let mut skip = parse_resume("7.0");
        encode(&item, &watch, &mut skip, &mut resumed);
        let text = String::from_utf8_lossy(&resumed).into_owned();
        let ids: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .collect();
        assert_eq!(ids, ["7.1", "7"], "the change already seen is not repeated");
        assert!(text.contains(r#""key":"a/3""#));
        assert!(!text.contains(r#""key":"b/1""#));
    }
}
