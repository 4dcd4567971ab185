//! Watching keys over HTTP (Server-Sent Events) and blocking reads, against a real server with
//! writers on every door.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestServer;
use kvs_server::{FeedItem, Start};
use kvs_store::{Change, Removal};

/// One Server-Sent Event.
#[derive(Clone, Debug, Default, PartialEq)]
struct Event {
    id: Option<String>,
    event: Option<String>,
    data: Option<serde_json::Value>,
}

/// An open event stream, read event by event.
#[derive(Debug)]
struct Sse {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl Sse {
    async fn open(url: &str, last_id: Option<&str>) -> Result<Self, reqwest::Response> {
        let mut request = common::client().get(url);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("request");
        if response.status() != 200 {
            return Err(response);
        }
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an event stream"
        );
        Ok(Self {
            response,
            buf: Vec::new(),
        })
    }

    /// The next event (heartbeats and `retry:` skipped); `None` at the end of the stream or
    /// after `wait` with nothing.
    async fn next(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("UTF-8 events");
                let mut event = Event::default();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = Some(serde_json::from_str(v).expect("JSON data"));
                    }
                }
                if event.id.is_some() || event.event.is_some() {
                    return Some(event);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(Ok(None)) => return None,
                Ok(Err(e)) => panic!("the stream broke instead of ending: {e}"),
            }
        }
    }
}

/// The `(id, key, op, version)` a watch of `prefix` must report for `item`, by the documented
/// id rule: the position, with `.i` on all but the last of several changes.
fn expected(item: &FeedItem, prefix: &[u8]) -> Vec<(String, String, String, Option<u64>)> {
    let changes: Vec<&Change> = item
        .effects
        .changes
        .iter()
        .filter(|c| match c {
            Change::Flush => true,
            other => other.key().is_some_and(|k| k.starts_with(prefix)),
        })
        .collect();
    let n = changes.len();
    changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = if i + 1 == n {
                item.position.to_string()
            } else {
                format!("{}.{i}", item.position)
            };
            match c {
                Change::Put(k, e) => (
                    id,
                    String::from_utf8_lossy(k).into_owned(),
                    "put".into(),
                    Some(e.version),
                ),
                Change::Remove(k, why) => (
                    id,
                    String::from_utf8_lossy(k).into_owned(),
                    match why {
                        Removal::Deleted => "delete",
                        Removal::Expired => "expire",
                        Removal::Evicted => "evict",
                    }
                    .into(),
                    None,
                ),
                Change::Flush => (id, String::new(), "flush".into(), None),
                Change::Edit { key, version, .. } => (
                    id,
                    String::from_utf8_lossy(key).into_owned(),
                    "update".into(),
                    Some(*version),
                ),
                Change::Restamp { key, version, .. } => (
                    id,
                    String::from_utf8_lossy(key).into_owned(),
                    "touch".into(),
                    Some(*version),
                ),
                Change::Extend(key, _) => (
                    id,
                    String::from_utf8_lossy(key).into_owned(),
                    "update".into(),
                    None,
                ),
                Change::Meta(..) => (id, String::new(), "server_state".into(), None),
            }
        })
        .collect()
}

fn seen(event: &Event) -> (String, String, String, Option<u64>) {
    let data = event.data.as_ref().expect("data");
    (
        event.id.clone().expect("id"),
        data["key"].as_str().unwrap_or_default().to_owned(),
        data["op"].as_str().expect("op").to_owned(),
        data["version"].as_u64(),
    )
}

/// A small deterministic generator for cut points (no dependency for it).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_cut_at_random_points_sees_every_committed_change_once_in_order() {
    const CHANGES: usize = 100_000;
    let s = TestServer::with(|c| {
        c.feed.history_items = 1_000_000;
        c.feed.history_bytes = 1 << 30;
    })
    .await;
    // The reference: the feed itself, read in-process from the same point.
    let mut reference = s.engine.subscribe(Start::Next);
    let start = reference.position() - 1;
    let prefix = "w_";
    let per_writer = CHANGES / 8;
    let mut writers = Vec::new();
    for w in 0..3 {
        let url = s.url("");
        writers.push(tokio::spawn(async move {
            let http = common::client();
            for i in 0..per_writer {
                let key = format!("{}h{w}_{}", if i % 5 == 0 { "x_" } else { "w_" }, i % 40);
                let r = if i % 7 == 3 {
                    http.delete(format!("{url}/kvs/{key}")).send().await
                } else {
                    http.put(format!("{url}/kvs/{key}"))
                        .body(i.to_string())
                        .send()
                        .await
                };
                assert!(r.expect("http write").status().as_u16() < 500);
            }
        }));
    }
    for w in 0..3 {
        let addr = s.resp;
        writers.push(tokio::spawn(async move {
            let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let mut done = 0;
            let mut i = 0;
            while done < per_writer {
                i += 1;
                if i % 10 == 0 {
                    // A block of three changes, two of them watched: one item, several events.
                    let _: () = redis::pipe()
                        .atomic()
                        .set(format!("w_r{w}_{}", i % 30), i)
                        .incr(format!("x_r{w}"), 1)
                        .del(format!("w_r{w}_{}", (i + 7) % 30))
                        .query_async(&mut con)
                        .await
                        .expect("multi");
                    done += 3;
                } else {
                    let _: () = redis::cmd("SET")
                        .arg(format!("w_r{w}_{}", i % 30))
                        .arg(i)
                        .query_async(&mut con)
                        .await
                        .expect("set");
                    done += 1;
                }
            }
        }));
    }
    for w in 0..2 {
        let mut line = common::Line::connect(&s).await;
        writers.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let key = format!("w_l{w}_{}", i % 25);
                let reply = if i % 6 == 5 {
                    line.send(&format!("cmd=delete | key={key}")).await
                } else {
                    line.send(&format!("cmd=update | key={key} | body={i}"))
                        .await
                };
                assert!(!reply.is_empty());
            }
        }));
    }

    // The watcher: reconnects after a random number of events, or a random pause, from the last
    // id it fully received.
    let url = s.url(&format!("/kvs?prefix={prefix}&watch&since={start}"));
    let watcher = tokio::spawn(async move {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut got = Vec::new();
        let mut last: Option<String> = None;
        let mut reconnects = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
        'outer: loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the watcher timed out"
            );
            let Ok(mut sse) = Sse::open(&url, last.as_deref()).await else {
                panic!("a resume was refused");
            };
            reconnects += 1;
            let cut_after = 1 + rng.below(4000);
            for _ in 0..cut_after {
                match sse.next(Duration::from_secs(3)).await {
                    Some(event) => {
                        assert_eq!(event.event, None, "no overflow: {event:?}");
                        last = event.id.clone();
                        got.push(seen(&event));
                    }
                    // Quiet for 3 s: the writers are done.
                    None => break 'outer,
                }
            }
            // Dropping the stream mid-way cuts the connection.
        }
        (got, reconnects)
    });
    for w in writers {
        w.await.expect("writer");
    }
    let (got, reconnects) = watcher.await.expect("watcher");
    let mut want = Vec::new();
    while let Ok(Some(item)) = reference.try_next() {
        want.extend(expected(&item, prefix.as_bytes()));
    }
    assert!(want.len() > CHANGES / 2, "{} watched changes", want.len());
    assert!(reconnects > 10, "cut only {reconnects} times");
    if got != want {
        let at = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "the watcher's {} events differ from the {} committed, first at {at:?}: {:?} vs {:?}",
            got.len(),
            want.len(),
            at.and_then(|i| got.get(i)),
            at.and_then(|i| want.get(i)),
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resuming_from_before_the_history_kept_is_410_with_the_oldest_position() {
    let s = TestServer::with(|c| c.feed.history_items = 10).await;
    let first = Sse::open(&s.url("/kvs?prefix=&watch"), None).await;
    assert!(first.is_ok());
    let start = s.engine.feed_position().expect("open");
    let http = common::client();
    for i in 0..50 {
        http.put(s.url(&format!("/kvs/k{i}")))
            .body("v")
            .send()
            .await
            .expect("put");
    }
    let gone = Sse::open(&s.url(&format!("/kvs?prefix=&watch&since={start}")), None)
        .await
        .expect_err("refused");
    assert_eq!(gone.status(), 410);
    let body: serde_json::Value = gone.json().await.expect("JSON");
    assert_eq!(body["error"], "history_compacted");
    let oldest = body["oldest"].as_u64().expect("oldest");
    assert!(oldest > start + 1, "{oldest} vs {start}");
    // From the oldest kept on, it works; and an id this server never gave is refused too.
    let mut ok = Sse::open(
        &s.url(&format!("/kvs?prefix=&watch&since={}", oldest - 1)),
        None,
    )
    .await
    .expect("resumable");
    let event = ok.next(Duration::from_secs(5)).await.expect("an event");
    assert_eq!(event.id, Some(oldest.to_string()));
    let future = Sse::open(
        &s.url("/kvs?prefix=&watch"),
        Some(&(start + 1_000_000).to_string()),
    )
    .await
    .expect_err("refused");
    assert_eq!(future.status(), 410);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocking_read_is_woken_by_a_resp_write() {
    let s = TestServer::start().await;
    let http = common::client();
    let put = http
        .put(s.url("/kvs/cfg"))
        .body("one")
        .send()
        .await
        .expect("put");
    let version: u64 = put.headers()["etag"]
        .to_str()
        .expect("etag")
        .trim_matches('"')
        .parse()
        .expect("number");
    // Changed since the index: answered at once.
    let now = http
        .get(s.url(&format!("/kvs/cfg?wait=30s&index={}", version - 1)))
        .send()
        .await
        .expect("get");
    assert_eq!(now.headers()["x-kvs-index"], version.to_string().as_str());
    // Unchanged: answered at the timeout, with the value as it is.
    let started = std::time::Instant::now();
    let timed_out = http
        .get(s.url(&format!("/kvs/cfg?wait=300ms&index={version}")))
        .send()
        .await
        .expect("get");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(timed_out.text().await.expect("body"), "one");
    // Woken by a write through another door.
    let url = s.url(&format!("/kvs/cfg?wait=30s&index={version}"));
    let waiting = tokio::spawn(async move {
        let r = common::client().get(url).send().await.expect("get");
        let index = r.headers()["x-kvs-index"]
            .to_str()
            .expect("index")
            .to_owned();
        (
            index,
            r.text().await.expect("body"),
            std::time::Instant::now(),
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = std::time::Instant::now();
    let client = redis::Client::open(format!("redis://{}/", s.resp)).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("SET")
        .arg("cfg")
        .arg("two")
        .query_async(&mut con)
        .await
        .expect("set");
    let (index, body, answered) = waiting.await.expect("waiter");
    assert_eq!(body, "two");
    assert!(index.parse::<u64>().expect("index") > version);
    assert!(answered.duration_since(written) < Duration::from_secs(5));

    // The listing: its index is a position; a write under the prefix wakes it.
    let first = http
        .get(s.url("/kvs?prefix=cf&wait=1s"))
        .send()
        .await
        .expect("list");
    let index = first.headers()["x-kvs-index"]
        .to_str()
        .expect("index")
        .to_owned();
    let url = s.url(&format!("/kvs?prefix=cf&wait=30s&index={index}"));
    let waiting = tokio::spawn(async move {
        let r = common::client().get(url).send().await.expect("list");
        r.json::<serde_json::Value>().await.expect("JSON")
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _: () = redis::cmd("SET")
        .arg("other")
        .arg("x")
        .query_async(&mut con)
        .await
        .expect("set");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "a write elsewhere does not wake it");
    let _: () = redis::cmd("SET")
        .arg("cfg2")
        .arg("x")
        .query_async(&mut con)
        .await
        .expect("set");
    let listing = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken")
        .expect("lister");
    assert_eq!(listing["keys"].as_array().map(Vec::len), Some(2));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_watchers_on_one_prefix_all_see_every_change() {
    let s = TestServer::start().await;
    let http = common::client();
    let url = s.url("/kvs?prefix=m/&watch");
    let mut streams = Vec::new();
    for _ in 0..1000 {
        streams.push(Sse::open(&url, None).await.expect("watch"));
    }
    for i in 0..20 {
        http.put(s.url(&format!("/kvs/m/{i}")))
            .body(i.to_string())
            .send()
            .await
            .expect("put");
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut sse| {
            tokio::spawn(async move {
                let mut keys = Vec::new();
                while keys.len() < 20 {
                    let event = sse.next(Duration::from_secs(30)).await.expect("event");
                    keys.push(
                        event.data.expect("data")["key"]
                            .as_str()
                            .expect("key")
                            .to_owned(),
                    );
                }
                keys
            })
        })
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("m/{i}")).collect();
    for r in readers {
        assert_eq!(r.await.expect("reader"), want);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_stream_gets_heartbeats() {
    let s = TestServer::start().await;
    let mut response = common::client()
        .get(s.url("/kvs?prefix=quiet/&watch&heartbeat=200ms"))
        .send()
        .await
        .expect("watch");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while text.matches(": keep-alive\n\n").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("heartbeats within 5 s")
            .expect("read")
            .expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("retry: 1000\n\n"), "{text:?}");
    assert!(!text.contains("data:"), "no events: {text:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_streams_cleanly() {
    let s = TestServer::start().await;
    let mut sse = Sse::open(&s.url("/kvs/k?watch&heartbeat=100ms"), None)
        .await
        .expect("watch");
    let reading = tokio::spawn(async move {
        // Ends with the stream's end, not an error (`next` panics on a broken stream).
        while sse.next(Duration::from_secs(20)).await.is_some() {}
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    s.stop().await;
    reading.await.expect("the stream ended cleanly");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_resumes_across_a_restart_of_a_durable_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persistence =
        kvs_server::Persistence::in_dir(dir.path(), kvs_server::FsyncPolicy::EverySecond);
    let start = |p: kvs_server::Persistence| TestServer::with(move |c| c.persistence = p);
    let s = start(persistence.clone()).await;
    let mut sse = Sse::open(&s.url("/kvs?prefix=d/&watch"), None)
        .await
        .expect("watch");
    let http = common::client();
    for i in 0..10 {
        http.put(s.url(&format!("/kvs/d/{i}")))
            .body(i.to_string())
            .send()
            .await
            .expect("put");
    }
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(
            sse.next(Duration::from_secs(5))
                .await
                .expect("event")
                .id
                .expect("id"),
        );
    }
    drop(sse);
    s.stop().await;

    let s = start(persistence).await;
    let mut sse = Sse::open(&s.url("/kvs?prefix=d/&watch"), Some(&ids[2]))
        .await
        .expect("resumed from the log");
    let mut keys = HashMap::new();
    for (i, id) in ids.iter().enumerate().skip(3) {
        let event = sse.next(Duration::from_secs(5)).await.expect("event");
        assert_eq!(event.id.as_ref(), Some(id));
        keys.insert(i, event.data.expect("data")["key"].clone());
    }
    assert_eq!(keys[&9], "d/9");
    http.put(s.url("/kvs/d/new"))
        .body("x")
        .send()
        .await
        .expect("put");
    let live = sse.next(Duration::from_secs(5)).await.expect("live event");
    assert_eq!(live.data.expect("data")["key"], "d/new");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_that_stops_reading_gets_overflow_and_resumes_without_a_gap() {
    let s = TestServer::with(|c| c.feed.history_items = 20_000).await;
    let sse = Sse::open(&s.url("/kvs?prefix=s_&watch"), None)
        .await
        .expect("watch");
    let client = redis::Client::open(format!("redis://{}/", s.resp)).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let value = "v".repeat(1024);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut written = 0;
    while s.engine.feed().dropped_listeners() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never cut off");
        let mut pipe = redis::pipe();
        for _ in 0..100 {
            pipe.set(format!("s_{}", written % 500), &value).ignore();
            written += 1;
        }
        let _: () = pipe.query_async(&mut con).await.expect("pipeline");
    }
    // Everything it was sent, then the overflow.
    let mut sse = sse;
    let mut ids = Vec::new();
    let last = loop {
        let event = sse
            .next(Duration::from_secs(10))
            .await
            .expect("events, then the end");
        match event.event.as_deref() {
            None => ids.push(event.id.expect("id").parse::<u64>().expect("number")),
            Some("overflow") => break event,
            Some(other) => panic!("unexpected event {other}"),
        }
    };
    assert_eq!(last.data.expect("data")["error"], "slow_consumer");
    assert!(
        sse.next(Duration::from_secs(5)).await.is_none(),
        "then the end"
    );
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "no gaps before the overflow"
    );
    let resume_from = ids.last().expect("some events").to_string();
    let mut resumed = Sse::open(&s.url("/kvs?prefix=s_&watch"), Some(&resume_from))
        .await
        .expect("resumable after the overflow");
    let next = resumed.next(Duration::from_secs(5)).await.expect("event");
    assert_eq!(
        next.id.expect("id").parse::<u64>().expect("number"),
        ids.last().expect("some") + 1,
        "it goes on where it stopped"
    );
    s.stop().await;
}
