//! BullMQ, the Node.js job queue, unmodified from the npm registry, against kvs. It runs almost
//! every operation as a Lua script and records its events in streams, so this is scripting,
//! streams, blocking pops and persistence working together the way its users rely on them.
//! `.ci/run` installs Node and the package (`npm ci` in `crates/server/tests/bullmq`); this test installs the
//! package itself when it is missing, so `cargo test` works on any machine with Node and npm.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestServer;
use kvs_server::{FsyncPolicy, Persistence};
use redis::Value;

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bullmq")
}

/// Installs the pinned BullMQ and ioredis (package-lock.json) unless they are there already.
async fn ensure_installed(dir: &Path) {
    if dir.join("node_modules/bullmq/package.json").exists() {
        return;
    }
    let out = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .await
        .expect("npm runs: install Node 20 and npm (see .ci/run)");
    assert!(
        out.status.success(),
        "npm ci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every key with its type and its whole contents, as text, in key order.
async fn contents(c: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(c)
        .await
        .expect("KEYS");
    keys.sort();
    let mut all = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(c)
            .await
            .expect("TYPE");
        let read = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).clone(),
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
            "set" => redis::cmd("SORT").arg(&key).arg("ALPHA").clone(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .clone(),
            "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
            other => panic!("{key} holds a {other}"),
        };
        let value: Value = read.query_async(c).await.expect("read");
        let shown = match (kind.as_str(), &value) {
            // A hash has no order: its fields sorted.
            ("hash", Value::Array(flat)) => {
                let mut pairs: Vec<String> = flat.chunks(2).map(|kv| format!("{kv:?}")).collect();
                pairs.sort();
                pairs.join(",")
            }
            _ => format!("{value:?}"),
        };
        all.push(format!("{key} {kind} {shown}"));
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn bullmq_processes_every_job_exactly_once_and_its_queue_survives_a_restart() {
    let dir = project();
    ensure_installed(&dir).await;
    let data = tempfile::tempdir().expect("tempdir");
    let persistence = || Persistence::in_dir(data.path(), FsyncPolicy::EverySecond);
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;

    let run = tokio::process::Command::new("node")
        .arg("queue.cjs")
        .env("PORT", kvs.resp.port().to_string())
        .env("JOBS", "1000")
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("BullMQ finishes within two minutes")
        .expect("node runs: install Node 20 (see .ci/run)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("bullmq: done"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What BullMQ left (jobs as hashes, the completed set, its event stream, ...) comes back
    // the same from the log.
    let mut c = common::connect_redis(&kvs.resp.to_string()).await;
    let before = contents(&mut c).await;
    let streams = before.iter().filter(|k| k.contains(" stream ")).count();
    assert!(streams >= 1, "BullMQ keeps its events in a stream");
    assert!(before.len() > 1000, "{} keys", before.len());
    drop(c);
    kvs.stop().await;
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = common::connect_redis(&kvs.resp.to_string()).await;
    let after = contents(&mut c).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    kvs.stop().await;
}
