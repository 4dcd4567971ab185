//! Streams over RESP: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD (blocking too), XSETID
//! and XINFO answer as redis-server 7.0 answers, in RESP2 and RESP3, and streams come back
//! after a restart from the log and from a snapshot.

mod common;

use std::time::Duration;

use common::redis_server::redis_server;
use common::{Rng, TestServer, connect_redis as connect};
use kvs_server::{FsyncPolicy, Persistence};
use redis::Value;

async fn ask(c: &mut redis::aio::MultiplexedConnection, words: &[String]) -> String {
    let mut cmd = redis::cmd(&words[0]);
    for w in &words[1..] {
        cmd.arg(w);
    }
    match cmd.query_async::<Value>(c).await {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!(
            "error: {} {}",
            e.code().unwrap_or_default(),
            e.detail().unwrap_or_default()
        ),
    }
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

async fn resp3(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}/?protocol=resp3"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

/// Requests with their answers fixed by the IDs they name (no `*`: the two servers' clocks
/// differ), covering each command's options and errors.
const CASES: &[&str] = &[
    "CONFIG SET stream-node-max-bytes 4kb",
    "CONFIG GET stream-node-max-bytes",
    "CONFIG SET stream-node-max-bytes lots",
    "CONFIG SET stream-node-max-entries 100",
    "CONFIG GET stream-node-max-entries",
    "XADD s 1-1 a 1 b 2",
    "XADD s 1-* c 3",
    "XADD s 1 x y",
    "XADD s 0-0 x y",
    "XADD s 0-* x y",
    "XADD s 2-1 odd",
    "XADD s NOMKSTREAM 3-0 f v",
    "XADD nope NOMKSTREAM 3-0 f v",
    "XADD s 3-x f v",
    "XADD s -1 f v",
    "XADD s 18446744073709551616-0 f v",
    "XADD s MAXLEN -1 4-0 f v",
    "XADD s MAXLEN 1 MINID 1 4-0 f v",
    "XADD s LIMIT 10 4-0 f v",
    "XADD s MAXLEN 5 LIMIT 10 4-0 f v",
    "XADD s MAXLEN ~ 5 LIMIT -1 4-0 f v",
    "XADD s MAXLEN ~ 5 LIMIT 10 4-0 f v",
    "XADD s MINID = 1-2 5-0 g w",
    "XLEN s",
    "XLEN nope",
    "XRANGE s - +",
    "XRANGE s (1-2 +",
    "XRANGE s - (5-0",
    "XRANGE s 1 4",
    "XRANGE s - + COUNT 1",
    "XRANGE s - + COUNT 0",
    "XRANGE s - + COUNT -5",
    "XRANGE s - + LIMIT 1",
    "XRANGE s (- +",
    "XRANGE s - (+",
    "XRANGE s (18446744073709551615-18446744073709551615 +",
    "XRANGE s - (0-0",
    "XRANGE s x +",
    "XRANGE nope - +",
    "XREVRANGE s + -",
    "XREVRANGE s + - COUNT 2",
    "XREVRANGE s (5-0 -",
    "XADD s 6-0 a 1",
    "XADD s 7-0 a 2",
    "XDEL s 6-0 6-0 9-9",
    "XDEL s bad",
    "XDEL nope bad",
    "XINFO STREAM s",
    "XINFO STREAM s FULL",
    "XINFO STREAM s FULL COUNT 1",
    "XINFO STREAM nope",
    "XINFO GROUPS s",
    "XINFO CONSUMERS s g",
    "XINFO NOSUCH s",
    "XREAD STREAMS s 0",
    "XREAD COUNT 1 STREAMS s nope 0 0",
    "XREAD STREAMS s nope 5-0 0",
    "XREAD STREAMS s $",
    "XREAD STREAMS s 18446744073709551615-18446744073709551615",
    "XREAD STREAMS s",
    "XREAD COUNT x STREAMS s 0",
    "XREAD BLOCK -1 STREAMS s 0",
    "XREAD BLOCK x STREAMS s 0",
    "XREAD STREAMS s >",
    "XREAD STREAMS s bad",
    "XREAD GROUP g c STREAMS s 0",
    "XREAD FOO STREAMS s 0",
    "XTRIM s",
    "XTRIM s MAXLEN",
    "XTRIM s FOO 1",
    "XTRIM s MAXLEN 2",
    "XTRIM s MINID 7",
    "XTRIM s MAXLEN ~ 0",
    "XTRIM nope MAXLEN 0",
    "XSETID s 1-0",
    "XSETID s 9-0 ENTRIESADDED 1",
    "XSETID s 9-0 ENTRIESADDED -1",
    "XSETID s 9-0 MAXDELETEDID 10-0",
    "XSETID s 9-0 ENTRIESADDED 20 MAXDELETEDID 8-0",
    "XSETID nope 1-0",
    "XADD s 8-0 late v",
    "XINFO STREAM s",
    "XTRIM s MAXLEN 0",
    "XLEN s",
    "EXISTS s",
    "TYPE s",
    "OBJECT ENCODING s",
    "XADD s 9-0 a b",
    "XADD s 9-* a b",
    "XINFO STREAM s",
    "SET str v",
    "XADD str 1-1 a b",
    "XRANGE str - +",
    "XREAD STREAMS s str 0 0",
    "XLEN str",
    "XTRIM str MAXLEN 0",
    "XDEL str 1-1",
    "XSETID str 1-1",
    "XINFO STREAM str",
    "LPUSH s x",
    "XADD big MAXLEN 3 1-0 f 1",
    "XADD big MAXLEN 3 2-0 f 2",
    "XADD big MAXLEN 3 3-0 f 3",
    "XADD big MAXLEN 3 4-0 f 4",
    "XRANGE big - +",
    "XINFO STREAM big",
];

/// Runs `cases` against both servers, on RESP2 and RESP3 connections, and lists differences.
async fn differences(cases: &[Vec<String>], protocol3: bool) -> Vec<String> {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let (mut ours, mut theirs) = if protocol3 {
        (
            resp3(&kvs.resp.to_string()).await,
            resp3(&redis.addr()).await,
        )
    } else {
        (
            connect(&kvs.resp.to_string()).await,
            connect(&redis.addr()).await,
        )
    };
    let mut differ = Vec::new();
    for case in cases {
        let (a, b) = (ask(&mut ours, case).await, ask(&mut theirs, case).await);
        if a != b {
            differ.push(format!("{case:?}\n  kvs:   {a}\n  redis: {b}"));
        }
    }
    drop(redis);
    kvs.stop().await;
    differ
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_commands_answer_as_redis_server_does() {
    let mut cases: Vec<Vec<String>> = CASES.iter().map(|c| words(c)).collect();
    // Approximate trimming removes whole nodes of 100 entries, as Redis's does.
    for i in 1..=250 {
        cases.push(words(&format!("XADD approx {i}-0 field {i}")));
    }
    for case in [
        "XTRIM approx MAXLEN ~ 120",
        "XLEN approx",
        "XTRIM approx MAXLEN ~ 60 LIMIT 10",
        "XTRIM approx MINID ~ 230",
        "XLEN approx",
        "XADD approx MAXLEN ~ 0 251-0 f v",
        "XLEN approx",
        "XRANGE approx - + COUNT 2",
    ] {
        cases.push(words(case));
    }
    for protocol3 in [false, true] {
        let differ = differences(&cases, protocol3).await;
        assert!(
            differ.is_empty(),
            "RESP{}: {} differences:\n{}",
            if protocol3 { 3 } else { 2 },
            differ.len(),
            differ.join("\n")
        );
    }
}

/// A random request on a few streams, with IDs chosen so both servers give the same answers.
fn request(r: &mut Rng, next_ms: &mut u64) -> Vec<String> {
    let key = r.pick(&["s1", "s2", "s3"]).to_owned();
    let top = *next_ms + 2;
    let id = |r: &mut Rng| format!("{}-{}", r.below(top), r.below(3));
    let mut w = match r.below(10) {
        0..=3 => {
            *next_ms += r.below(3);
            let mut w = vec!["XADD".into(), key];
            if r.below(4) == 0 {
                w.extend(["MAXLEN".into(), r.below(20).to_string()]);
            }
            w.push(match r.below(4) {
                0 => format!("{next_ms}-*"),
                1 => id(r),
                _ => format!("{next_ms}-{}", r.below(4)),
            });
            for f in 0..=r.below(3) {
                w.extend([format!("f{f}"), r.below(100).to_string()]);
            }
            w
        }
        4 => vec!["XDEL".into(), key, id(r), id(r)],
        5 => {
            let (start, end) = (id(r), id(r));
            let start = if r.below(3) == 0 {
                format!("({start}")
            } else {
                start
            };
            let mut w = vec!["XRANGE".into(), key, start, end];
            if r.below(2) == 0 {
                w.extend(["COUNT".into(), r.below(5).to_string()]);
            }
            w
        }
        6 => vec![
            "XREVRANGE".into(),
            key,
            "+".into(),
            id(r),
            "COUNT".into(),
            "3".into(),
        ],
        7 => vec![
            "XREAD".into(),
            "COUNT".into(),
            r.below(4).to_string(),
            "STREAMS".into(),
            key,
            "s2".into(),
            id(r),
            id(r),
        ],
        8 => match r.below(3) {
            0 => vec![
                "XTRIM".into(),
                key,
                "MAXLEN".into(),
                r.below(15).to_string(),
            ],
            1 => vec!["XTRIM".into(), key, "MINID".into(), id(r)],
            _ => vec!["XLEN".into(), key],
        },
        _ => vec!["XINFO".into(), "STREAM".into(), key],
    };
    w.shrink_to_fit();
    w
}

#[tokio::test(flavor = "multi_thread")]
async fn random_stream_requests_answer_as_redis_server_does() {
    let mut r = Rng(0x5eed_0f57_4ea5_0001);
    let mut next_ms = 1;
    let cases: Vec<Vec<String>> = (0..3000).map(|_| request(&mut r, &mut next_ms)).collect();
    let differ = differences(&cases, false).await;
    assert!(
        differ.is_empty(),
        "{} differences, the first:\n{}",
        differ.len(),
        differ
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every stream's entries and counters, comparable across a restart.
async fn dump(c: &mut redis::aio::MultiplexedConnection, keys: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for key in keys {
        out.push(ask(c, &words(&format!("XINFO STREAM {key} FULL COUNT 0"))).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_come_back_after_a_restart_from_the_log_and_from_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persistence = || Persistence::in_dir(dir.path(), FsyncPolicy::Always);
    let keys = ["s1", "s2", "s3", "big", "emptied", "set"];
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    let mut r = Rng(0x5eed_0f57_4ea5_0002);
    let mut next_ms = 1;
    for _ in 0..1500 {
        let _ = ask(&mut c, &request(&mut r, &mut next_ms)).await;
    }
    for i in 1..=3000 {
        let w = words(&format!(
            "XADD big MAXLEN ~ 2500 * n {i} payload {}",
            "x".repeat(i % 50)
        ));
        assert!(ask(&mut c, &w).await.starts_with("bulk-string"));
    }
    for line in [
        "XADD emptied 5-0 a b",
        "XADD emptied 6-0 a b",
        "XDEL emptied 5-0",
        "XTRIM emptied MAXLEN 0",
        "XADD set 1-0 a b",
        "XSETID set 100-5 ENTRIESADDED 50 MAXDELETEDID 90-0",
    ] {
        ask(&mut c, &words(line)).await;
    }
    let before = dump(&mut c, &keys).await;
    assert!(
        before[3].contains("int(2500)") || before[3].contains("int(2600)"),
        "{}",
        before[3]
    );
    assert!(before[4].contains("int(0)"), "{}", before[4]);
    kvs.stop().await;

    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(dump(&mut c, &keys).await, before, "replayed from the log");
    assert_eq!(ask(&mut c, &words("SAVE")).await, "ok");
    ask(&mut c, &words("XADD big * after snapshot")).await;
    ask(&mut c, &words("XDEL emptied 6-0")).await;
    let before = dump(&mut c, &keys).await;
    kvs.stop().await;

    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(
        dump(&mut c, &keys).await,
        before,
        "from the snapshot and the log after it"
    );
    assert!(
        ask(&mut c, &words("XADD set 100-5 a b"))
            .await
            .contains("equal or smaller")
    );
    kvs.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn xread_block_waits_for_entries_added_after_it() {
    let kvs = TestServer::start().await;
    let addr = kvs.resp.to_string();
    let mut c = connect(&addr).await;
    ask(&mut c, &words("XADD s 1-0 old entry")).await;

    // Two readers wait on `$`: both get the one entry added after they blocked, not the old one.
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut r = connect(&addr).await;
        readers.push(tokio::spawn(async move {
            ask(&mut r, &words("XREAD BLOCK 10000 STREAMS nope s $ $")).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for reader in &readers {
        assert!(!reader.is_finished(), "a reader did not wait");
    }
    ask(&mut c, &words("XADD s 2-0 new entry")).await;
    for reader in readers {
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("woken")
            .expect("reader");
        assert!(got.contains("2-0") && got.contains("new"), "{got}");
        assert!(!got.contains("old"), "{got}");
    }

    // A read that finds entries at once does not wait; one that times out answers nil.
    let got = ask(&mut c, &words("XREAD BLOCK 0 STREAMS s 0")).await;
    assert!(got.contains("1-0") && got.contains("2-0"), "{got}");
    let started = std::time::Instant::now();
    assert_eq!(
        ask(&mut c, &words("XREAD BLOCK 100 STREAMS s $")).await,
        "nil"
    );
    assert!(started.elapsed() >= Duration::from_millis(90));

    // In MULTI, and in a script, XREAD does not wait: Redis's answers.
    let mut tx = redis::pipe();
    tx.atomic()
        .cmd("XREAD")
        .arg("BLOCK")
        .arg(0)
        .arg("STREAMS")
        .arg("s")
        .arg("$");
    let (got,): (Value,) = tx.query_async(&mut c).await.expect("exec");
    assert_eq!(got, Value::Nil);
    let script = "return redis.pcall('XREAD', 'BLOCK', 0, 'STREAMS', KEYS[1], '$')";
    let got = ask(
        &mut c,
        &["EVAL".into(), script.into(), "1".into(), "s".into()],
    )
    .await;
    assert!(
        got.contains("xread command is not allowed with BLOCK option from scripts"),
        "{got}"
    );
    kvs.stop().await;
}
