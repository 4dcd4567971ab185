//! Durability end to end: a real server on a real data directory (real files, real fsync),
//! written to over every front door, stopped and started again; snapshots while clients write;
//! and a disk that fails under a running server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{TestServer, client};
use kvs_server::{Engine, FsyncPolicy, Persistence};
use kvs_wal::SimulatedDisk;
use redis::aio::MultiplexedConnection;

async fn durable(dir: &std::path::Path, fsync: FsyncPolicy) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::with(move |c| {
        c.persistence = Persistence {
            segment_size: 4096,
            ..Persistence::in_dir(dir, fsync)
        };
    })
    .await
}

async fn resp(s: &TestServer) -> MultiplexedConnection {
    redis::Client::open(format!("redis://{}", s.resp))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn cmd<T: redis::FromRedisValue>(con: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(con)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

async fn line(s: &TestServer, request: &str) -> String {
    common::line_request(s, request).await
}

/// PUTs a value at `path` over HTTP and returns the version it got.
async fn put_version(s: &TestServer, path: &str) -> u64 {
    client()
        .put(s.url(path))
        .body("v")
        .send()
        .await
        .expect("put")
        .json::<serde_json::Value>()
        .await
        .expect("json")["version"]
        .as_u64()
        .expect("version")
}

fn info_field(info: &str, field: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_on_every_front_door_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = durable(dir.path(), FsyncPolicy::Always).await;
    let http = client();
    let put = http
        .put(s.url("/kvs/page/home"))
        .header("content-type", "text/html; charset=utf-8")
        .body("<h1>hi</h1>")
        .query(&[("ttl", "3600")])
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 201);
    let mut con = resp(&s).await;
    let _: () = cmd(&mut con, &["SET", "session", "abc", "PX", "7200000"]).await;
    let _: i64 = cmd(&mut con, &["INCRBY", "counter", "41"]).await;
    let _: i64 = cmd(&mut con, &["INCR", "counter"]).await;
    let _: i64 = cmd(&mut con, &["APPEND", "log", "one,"]).await;
    let _: i64 = cmd(&mut con, &["APPEND", "log", "two"]).await;
    let _: () = cmd(&mut con, &["MSET", "a", "1", "b", "2", "gone", "x"]).await;
    let _: i64 = cmd(&mut con, &["DEL", "gone"]).await;
    let _: i64 = cmd(&mut con, &["SETRANGE", "a", "3", "z"]).await;
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("tx")
        .cmd("INCR")
        .arg("tx")
        .query_async(&mut con)
        .await
        .expect("multi/exec");
    assert_eq!((x, y), (1, 2));
    assert_eq!(
        line(&s, "cmd=create|key=seed|body=from nc").await,
        "from nc\n"
    );
    let last_version = put_version(&s, "/kvs/last").await;
    let expires_before = http
        .get(s.url("/kvs/page/home"))
        .send()
        .await
        .expect("get")
        .headers()["expires"]
        .clone();
    s.stop().await;

    let s = durable(dir.path(), FsyncPolicy::Always).await;
    let got = http.get(s.url("/kvs/page/home")).send().await.expect("get");
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        got.headers()["expires"],
        expires_before,
        "the same absolute expiry"
    );
    assert_eq!(got.text().await.expect("body"), "<h1>hi</h1>");
    let mut con = resp(&s).await;
    let pttl: i64 = cmd(&mut con, &["PTTL", "session"]).await;
    assert!((7_000_000..=7_200_000).contains(&pttl), "{pttl}");
    let values: Vec<Option<String>> = cmd(
        &mut con,
        &["MGET", "counter", "log", "a", "b", "gone", "tx", "seed"],
    )
    .await;
    let want = ["42", "one,two", "1\0\0z", "2"].map(|v| Some(v.to_owned()));
    assert_eq!(&values[..4], &want);
    assert_eq!(values[4], None, "a deletion is durable too");
    assert_eq!(values[5].as_deref(), Some("2"));
    assert_eq!(values[6].as_deref(), Some("from nc"));
    // Versions go on from where they were: a new write never reuses an old ETag.
    let next = put_version(&s, "/kvs/after").await;
    assert!(next > last_version, "{next} after {last_version}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_replace_the_log_and_restarts_read_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = durable(dir.path(), FsyncPolicy::EverySecond).await;
    let mut con = resp(&s).await;
    let mut pipe = redis::pipe();
    for i in 0..3_000 {
        pipe.cmd("SET")
            .arg(format!("k{i}"))
            .arg(format!("v{i}"))
            .ignore();
    }
    let _: () = pipe.query_async(&mut con).await.expect("load");
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("log-"))
            .count()
    };
    assert!(segments(dir.path()) > 3, "small segments rotate");
    let info: String = cmd(&mut con, &["INFO", "persistence"]).await;
    assert_eq!(info_field(&info, "aof_enabled"), "1");
    assert!(
        info_field(&info, "rdb_changes_since_last_save")
            .parse::<u64>()
            .expect("n")
            >= 3_000
    );
    let before: i64 = cmd(&mut con, &["LASTSAVE"]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _: () = cmd(&mut con, &["SAVE"]).await;
    let after: i64 = cmd(&mut con, &["LASTSAVE"]).await;
    assert!(after > before, "LASTSAVE moves on: {before} then {after}");
    let info: String = cmd(&mut con, &["INFO", "persistence"]).await;
    assert_eq!(info_field(&info, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&info, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_field(&info, "kvs_snapshot_keys"), "3000");
    assert!(
        segments(dir.path()) <= 1,
        "segments the snapshot covers are removed"
    );
    let snapshots: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");

    // Changes after the snapshot live in the log; the HTTP route snapshots too.
    let _: i64 = cmd(&mut con, &["DEL", "k0"]).await;
    let _: () = cmd(&mut con, &["SET", "k1", "changed"]).await;
    let http = client();
    let status = http
        .get(s.url("/admin/persistence"))
        .send()
        .await
        .expect("status")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(status["fsync"], "everysec");
    assert_eq!(status["snapshot"]["last_keys"], 3000);
    s.stop().await;

    let s = durable(dir.path(), FsyncPolicy::EverySecond).await;
    let mut con = resp(&s).await;
    let size: i64 = cmd(&mut con, &["DBSIZE"]).await;
    assert_eq!(size, 2_999);
    let v: Option<String> = cmd(&mut con, &["GET", "k1"]).await;
    assert_eq!(v.as_deref(), Some("changed"));
    let v: Option<String> = cmd(&mut con, &["GET", "k2999"]).await;
    assert_eq!(v.as_deref(), Some("v2999"));
    let written = http
        .post(s.url("/admin/snapshot?wait=true"))
        .send()
        .await
        .expect("snapshot");
    assert_eq!(written.status(), 200);
    let body: serde_json::Value = written.json().await.expect("json");
    assert_eq!(body["keys"], 2_999);
    let bg: String = cmd(&mut con, &["BGSAVE"]).await;
    assert_eq!(bg, "Background saving started");
    s.stop().await;
}

/// 32 clients keep writing while a snapshot of a large keyspace is written: every one of them
/// gets answers while the snapshot is in progress, and every acknowledged write is there after
/// a restart.
#[tokio::test(flavor = "multi_thread")]
async fn snapshots_run_while_32_clients_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = durable(dir.path(), FsyncPolicy::EverySecond).await;
    let mut con = resp(&s).await;
    for batch in 0..40 {
        let mut pipe = redis::pipe();
        for i in 0..5_000 {
            let key = format!("bulk:{}", batch * 5_000 + i);
            pipe.cmd("SET")
                .arg(key)
                .arg([b'x'; 100].as_slice())
                .ignore();
        }
        let _: () = pipe.query_async(&mut con).await.expect("load");
    }
    let in_snapshot = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..32 {
        let mut con = resp(&s).await;
        let (in_snapshot, stop) = (in_snapshot.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let (during, last) = (AtomicU64::new(0), AtomicU64::new(0));
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                let _: () = redis::cmd("SET")
                    .arg(format!("w{w}"))
                    .arg(i)
                    .query_async(&mut con)
                    .await
                    .expect("write during snapshot");
                last.store(i, Ordering::Relaxed);
                if in_snapshot.load(Ordering::Acquire) {
                    during.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            (during.into_inner(), last.into_inner())
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    in_snapshot.store(true, Ordering::Release);
    let started: String = cmd(&mut con, &["BGSAVE"]).await;
    assert_eq!(started, "Background saving started");
    loop {
        let info: String = cmd(&mut con, &["INFO", "persistence"]).await;
        if info_field(&info, "rdb_bgsave_in_progress") == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    in_snapshot.store(false, Ordering::Release);
    stop.store(true, Ordering::Release);
    let mut acked = Vec::new();
    for (w, writer) in writers.into_iter().enumerate() {
        let (during, last) = writer.await.expect("writer");
        assert!(during > 0, "writer {w} was answered while the snapshot ran");
        acked.push(last);
    }
    let info: String = cmd(&mut con, &["INFO", "persistence"]).await;
    assert_eq!(
        info_field(&info, "kvs_snapshot_keys")
            .parse::<u64>()
            .map(|k| k >= 200_000),
        Ok(true)
    );
    s.stop().await;

    let s = durable(dir.path(), FsyncPolicy::EverySecond).await;
    let mut con = resp(&s).await;
    for (w, last) in acked.iter().enumerate() {
        let v: Option<u64> = cmd(&mut con, &["GET", &format!("w{w}")]).await;
        assert_eq!(v, Some(*last), "writer {w}");
    }
    let size: i64 = cmd(&mut con, &["DBSIZE"]).await;
    assert_eq!(size, 200_032);
    s.stop().await;
}

/// When the log cannot be written, writes are refused on every front door with a clear error,
/// reads go on, and /healthz says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_log_refuses_writes_and_serves_reads() {
    let disk = SimulatedDisk::new();
    let engine = Engine::open_in(
        Arc::new(disk.clone()),
        &Persistence::in_dir("simulated", FsyncPolicy::Always),
    )
    .expect("opens");
    let s = TestServer::with_engine(engine).await;
    let http = client();
    let mut con = resp(&s).await;
    let _: () = cmd(&mut con, &["SET", "kept", "before"]).await;
    assert_eq!(
        http.get(s.url("/healthz"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );

    disk.fail_writes(Some("No space left on device (os error 28)"));
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async::<()>(&mut con)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("MISCONF"), "{err}");
    assert!(err.to_string().contains("No space left"), "{err}");
    // Later writes are refused up front, on every door.
    let err = redis::cmd("INCR")
        .arg("n")
        .query_async::<i64>(&mut con)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("MISCONF"), "{err}");
    let put = http
        .put(s.url("/kvs/k"))
        .body("v")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 503);
    let body: serde_json::Value = put.json().await.expect("json");
    assert_eq!(body["error"], "read_only");
    let reply = line(&s, "cmd=create|key=k|body=v").await;
    assert!(reply.contains("\"errorcode\":20"), "{reply}");

    let v: Option<String> = cmd(&mut con, &["GET", "kept"]).await;
    assert_eq!(v.as_deref(), Some("before"), "reads go on");
    assert_eq!(line(&s, "cmd=get|key=kept").await, "before\n");
    let health = http.get(s.url("/healthz")).send().await.expect("health");
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.expect("json");
    assert_eq!(body["status"], "read_only");
    let info: String = cmd(&mut con, &["INFO", "persistence"]).await;
    assert_eq!(info_field(&info, "aof_last_write_status"), "err");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = durable(dir.path(), FsyncPolicy::EverySecond).await;
    let err = Engine::open(&Persistence::in_dir(dir.path(), FsyncPolicy::EverySecond))
        .expect_err("locked");
    assert!(
        err.to_string().contains("in use by another kvs process"),
        "{err}"
    );
    first.stop().await;
    Engine::open(&Persistence::in_dir(dir.path(), FsyncPolicy::EverySecond)).expect("free again");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_memory_servers_refuse_snapshots_clearly() {
    let s = TestServer::start().await;
    let mut con = resp(&s).await;
    let err = redis::cmd("BGSAVE")
        .query_async::<String>(&mut con)
        .await
        .expect_err("no data directory");
    assert!(err.to_string().contains("in memory"), "{err}");
    let info: String = cmd(&mut con, &["INFO", "persistence"]).await;
    assert_eq!(info_field(&info, "aof_enabled"), "0");
    let r = client()
        .post(s.url("/admin/snapshot"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 409);
    s.stop().await;
}
