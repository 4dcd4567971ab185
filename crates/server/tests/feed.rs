//! The change feed, watched while real clients write over the Redis protocol: every committed
//! change arrives once, in one order, only once it is durable; replaying the feed rebuilds the
//! keyspace; a listener that falls too far behind is told so instead of missing changes.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestServer;
use common::gated_disk::gated_engine;
use kvs_server::{
    Engine, FeedError, FeedItem, FeedLimits, FsyncPolicy, Persistence, Start, Subscription,
};
use kvs_store::{Change, Removal};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(s: &TestServer) -> MultiplexedConnection {
    redis::Client::open(format!("redis://{}/", s.resp).as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// The next item, failing the test if none comes within a few seconds.
async fn next(sub: &mut Subscription) -> std::sync::Arc<FeedItem> {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an item within 10 s")
        .expect("the feed goes on")
}

/// Whether `item` puts `key`.
fn puts(item: &FeedItem, key: &[u8]) -> bool {
    item.effects
        .changes
        .iter()
        .any(|c| matches!(c, Change::Put(k, _) if k.as_ref() == key))
}

/// Four clients write concurrently (plain writes, counters, deletes, MULTI blocks, a FLUSHALL,
/// keys that expire); the feed, replayed over what was there before it was opened, must give
/// exactly the keyspace the server ends with.
async fn replaying_the_feed_rebuilds_the_keyspace(s: TestServer) {
    let mut con = connect(&s).await;
    let mut model: BTreeMap<Bytes, Bytes> = BTreeMap::new();
    for i in 0..10 {
        let (k, v) = (format!("before:{i}"), format!("old{i}"));
        let _: () = con.set(&k, &v).await.expect("set");
        model.insert(Bytes::from(k), Bytes::from(v));
    }
    let mut sub = s.engine.subscribe(Start::Next);

    let mut writers = Vec::new();
    for w in 0..4u32 {
        let mut con = connect(&s).await;
        writers.push(tokio::spawn(async move {
            for i in 0..150u32 {
                let key = format!("k{}", (i * 7 + w * 13) % 40);
                match i % 6 {
                    0 | 1 => {
                        let _: () = con.set(&key, format!("w{w}i{i}")).await.expect("set");
                    }
                    2 => {
                        let _: i64 = con.incr(format!("n{w}"), 1).await.expect("incr");
                    }
                    3 => {
                        let _: i64 = con.del(&key).await.expect("del");
                    }
                    4 => {
                        let _: () = redis::pipe()
                            .atomic()
                            .set(&key, "block")
                            .set(format!("b{w}"), i)
                            .query_async(&mut con)
                            .await
                            .expect("multi");
                    }
                    _ => {
                        let _: () = redis::cmd("SET")
                            .arg(format!("ttl:{w}:{i}"))
                            .arg("x")
                            .arg("PX")
                            .arg(20)
                            .query_async(&mut con)
                            .await
                            .expect("set px");
                    }
                }
                if w == 0 && i == 75 {
                    let _: () = redis::cmd("FLUSHALL")
                        .query_async(&mut con)
                        .await
                        .expect("flushall");
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    // Every `ttl:` key has expired by now; the sweep, which sleeps at most a second, removes
    // them as changes of their own.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let _: () = con.set("done", "1").await.expect("set done");

    let mut versions: HashMap<Bytes, u64> = HashMap::new();
    let mut last_position = None;
    let (mut blocks, mut expired, mut flushes) = (0, 0, 0);
    loop {
        let item = next(&mut sub).await;
        if let Some(last) = last_position {
            assert_eq!(item.position, last + 1, "positions are consecutive");
        }
        last_position = Some(item.position);
        let mut put_here = 0;
        for change in &item.effects.changes {
            match change {
                Change::Put(key, entry) => {
                    assert!(
                        !key.starts_with(b"before:"),
                        "a change from before the feed opened"
                    );
                    if let Some(&earlier) = versions.get(key) {
                        assert!(
                            entry.version > earlier,
                            "versions of {key:?} go down along the feed"
                        );
                    }
                    versions.insert(key.clone(), entry.version);
                    put_here += 1;
                    let value = entry.value.as_string().expect("a string").clone();
                    model.insert(key.clone(), value);
                }
                Change::Remove(key, why) => {
                    if *why == Removal::Expired {
                        assert!(key.starts_with(b"ttl:"), "{key:?} expired");
                        expired += 1;
                    }
                    model.remove(key);
                }
                Change::Flush => {
                    flushes += 1;
                    model.clear();
                }
                other => panic!("only strings are written here, yet {other:?}"),
            }
        }
        if put_here == 2 && item.effects.changes.len() == 2 {
            blocks += 1;
        }
        if puts(&item, b"done") {
            break;
        }
    }
    assert_eq!(flushes, 1);
    assert!(blocks >= 4 * 25, "each MULTI block is one item ({blocks})");
    assert!(expired > 0, "expired keys reach the feed");

    let mut keys: Vec<Vec<u8>> = con.keys("*").await.expect("keys");
    keys.sort();
    let want: Vec<Vec<u8>> = model.keys().map(|k| k.to_vec()).collect();
    assert_eq!(keys, want, "the keys the feed leaves are the server's keys");
    for (key, value) in &model {
        let got: Vec<u8> = con.get(key.as_ref()).await.expect("get");
        assert_eq!(got, value.to_vec(), "value of {key:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_rebuilds_a_keyspace_kept_in_memory() {
    replaying_the_feed_rebuilds_the_keyspace(TestServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_rebuilds_a_durable_keyspace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let s = TestServer::with(move |c| {
        c.persistence = Persistence::in_dir(path, FsyncPolicy::Always);
    })
    .await;
    replaying_the_feed_rebuilds_the_keyspace(s).await;
}

/// The feed opens while counters are being incremented: from the first change it shows on, each
/// counter's values go up by exactly one, so no write that the opening overlapped was left out.
#[tokio::test(flavor = "multi_thread")]
async fn opening_the_feed_under_load_leaves_no_gap() {
    let s = TestServer::start().await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut con = connect(&s).await;
        writers.push(tokio::spawn(async move {
            for _ in 0..2000 {
                let _: i64 = con.incr(format!("c{w}"), 1).await.expect("incr");
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut sub = s.engine.subscribe(Start::Next);
    // What a client reads after subscribing is at most one write older than the feed's first
    // value of it: the feed misses nothing that happened after the subscription.
    let mut con = connect(&s).await;
    let mut read_after: HashMap<Bytes, i64> = HashMap::new();
    for w in 0..4 {
        let key = format!("c{w}");
        let value: Option<i64> = con.get(&key).await.expect("get");
        read_after.insert(Bytes::from(key), value.unwrap_or(0));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut seen: HashMap<Bytes, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.values().filter(|&&v| v == 2000).count() < 4 {
        assert!(Instant::now() < deadline, "the feed stopped at {seen:?}");
        let item = next(&mut sub).await;
        for change in &item.effects.changes {
            let Change::Put(key, entry) = change else {
                panic!("only counters change here: {change:?}");
            };
            let value: i64 = std::str::from_utf8(entry.value.as_string().expect("string"))
                .expect("utf-8")
                .parse()
                .expect("a number");
            match seen.get(key) {
                Some(&before) => assert_eq!(value, before + 1, "a gap in {key:?}"),
                None => assert!(
                    value <= read_after[key] + 1,
                    "{key:?} read as {} after subscribing, first shown as {value}",
                    read_after[key]
                ),
            }
            seen.insert(key.clone(), value);
        }
    }
    s.stop().await;
}

/// With `fsync=always` on a disk whose fsync is held back, the change is not shown to a listener
/// until the fsync completes, exactly when its writer is answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_change_is_shown_only_once_durable() {
    let (engine, gate) = gated_engine();
    let s = TestServer::with_engine(engine).await;
    let mut sub = s.engine.subscribe(Start::Next);
    gate.set(true);
    let mut writer = TcpStream::connect(s.resp).await.expect("connect");
    writer.write_all(b"SET held 1\r\n").await.expect("write");
    let early = tokio::time::timeout(Duration::from_millis(400), sub.next()).await;
    assert!(early.is_err(), "shown before its fsync: {early:?}");
    gate.set(false);
    let item = next(&mut sub).await;
    assert!(puts(&item, b"held"), "{item:?}");
    let mut reply = [0u8; 5];
    writer.read_exact(&mut reply).await.expect("reply");
    assert_eq!(&reply, b"+OK\r\n");
    s.stop().await;
}

/// A listener that falls further behind than the history kept gets `Compacted` with the oldest
/// position still held, and can go on from there.
#[tokio::test(flavor = "multi_thread")]
async fn a_listener_left_too_far_behind_is_told() {
    let engine = Engine::new();
    engine.feed().set_limits(FeedLimits {
        history_items: 8,
        history_bytes: 1 << 20,
    });
    let s = TestServer::with_engine(engine).await;
    let mut con = connect(&s).await;
    let mut sub = s.engine.subscribe(Start::Next);
    let first = sub.position();
    for i in 0..20 {
        let _: () = con.set("k", i).await.expect("set");
    }
    let oldest = match sub.try_next() {
        Err(FeedError::Compacted { wanted, oldest }) => {
            assert_eq!(wanted, first);
            oldest
        }
        other => panic!("expected Compacted, got {other:?}"),
    };
    assert_eq!(oldest, first + 12, "the newest 8 of 20 are kept");
    let mut resumed = s.engine.subscribe(Start::At(oldest));
    let mut values = Vec::new();
    while let Some(item) = resumed.try_next().expect("held") {
        if let Some(Change::Put(_, entry)) = item.effects.changes.first() {
            values.push(entry.value.as_string().expect("string").clone());
        }
    }
    let want: Vec<Bytes> = (12..20).map(|i: i32| Bytes::from(i.to_string())).collect();
    assert_eq!(values, want);
    s.stop().await;
}

/// Positions are the log's: they go on from where the last run stopped. The history is in
/// memory, so asking a restarted server for an older position is refused, not answered with a
/// partial history.
#[tokio::test(flavor = "multi_thread")]
async fn positions_continue_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |path: std::path::PathBuf| async move {
        TestServer::with(move |c| {
            c.persistence = Persistence::in_dir(path, FsyncPolicy::Always);
        })
        .await
    };
    let s = start(dir.path().to_owned()).await;
    let mut con = connect(&s).await;
    let mut sub = s.engine.subscribe(Start::Next);
    let _: () = con.set("a", "1").await.expect("set");
    let before = next(&mut sub).await.position;
    drop(sub);
    s.stop().await;

    let s = start(dir.path().to_owned()).await;
    let mut con = connect(&s).await;
    let mut sub = s.engine.subscribe(Start::Next);
    let _: () = con.set("b", "2").await.expect("set");
    let after = next(&mut sub).await;
    assert!(puts(&after, b"b"));
    assert!(after.position > before, "{} after {before}", after.position);
    let mut old = s.engine.subscribe(Start::At(before));
    assert!(
        matches!(old.try_next(), Err(FeedError::Compacted { wanted, .. }) if wanted == before),
        "an old position is refused"
    );
    s.stop().await;
}

/// Shutting down ends every subscription, after what was committed.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_the_feed() {
    let s = TestServer::start().await;
    let engine = s.engine.clone();
    let mut sub = engine.subscribe(Start::Next);
    let mut con = connect(&s).await;
    let _: () = con.set("last", "1").await.expect("set");
    drop(con);
    s.stop().await;
    let last = next(&mut sub).await;
    assert!(puts(&last, b"last"));
    let end = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("ends");
    assert_eq!(end, Err(FeedError::Closed));
}
