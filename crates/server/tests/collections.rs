//! Hashes, lists, sets and sorted sets answer exactly as redis-server 7.0 does: the same random
//! sequence of requests goes to both, every answer (errors included) must match, and so must
//! every key at the end. Small encoding thresholds, set on both, make collections cross from
//! compact to large encodings (and lists back) along the way. Then the same keyspace must come
//! back whole after a restart, from the log and from a snapshot.

mod common;

use common::redis_server::redis_server;
use common::{Rng, TestServer, connect_redis as connect};
use kvs_server::{FsyncPolicy, Persistence};
use redis::Value;

const KEYS: &[&str] = &[
    "h", "l", "s", "z", "h2", "l2", "s2", "z2", "zl", "str", "none",
];

/// One random request over the four types (and a string, for WRONGTYPE).
fn request(r: &mut Rng) -> Vec<String> {
    let key = |r: &mut Rng| r.pick(KEYS).to_owned();
    let elem = |r: &mut Rng| -> String {
        match r.below(12) {
            0 => "x".repeat(70), // past the value thresholds
            1 => (r.below(2000) as i64 - 1000).to_string(),
            2 => "".into(),
            _ => r
                .pick(&["a", "b", "c", "d", "e", "f", "g", "1", "2", "3", "10"])
                .into(),
        }
    };
    let idx = |r: &mut Rng| (r.below(24) as i64 - 12).to_string();
    let score = |r: &mut Rng| -> String {
        match r.below(10) {
            0 => "-inf".into(),
            1 => "+inf".into(),
            2 => "1.5".into(),
            3 => "x".into(),
            4 => format!("({}", r.below(10)),
            _ => (r.below(20) as i64 - 5).to_string(),
        }
    };
    let lex = |r: &mut Rng| -> String {
        match r.below(6) {
            0 => "-".into(),
            1 => "+".into(),
            2 => "bad".into(),
            3 => format!("({}", r.pick(&["a", "c", "e"])),
            _ => format!("[{}", r.pick(&["a", "b", "d", "g"])),
        }
    };
    let w = |s: &str| s.to_owned();
    let mut v: Vec<String> = match r.below(62) {
        // Hashes.
        0..=3 => {
            let mut v = vec![w(r.pick(&["HSET", "HSET", "HMSET", "HSETNX"])), key(r)];
            for _ in 0..=r.below(3) {
                v.push(elem(r));
                v.push(elem(r));
            }
            if v[0] == "HSETNX" {
                v.truncate(4);
            }
            v
        }
        4 => vec![w("HGET"), key(r), elem(r)],
        5 => vec![w("HMGET"), key(r), elem(r), elem(r)],
        6 => vec![w("HDEL"), key(r), elem(r), elem(r)],
        7 => vec![w(r.pick(&["HLEN", "HKEYS", "HVALS", "HGETALL"])), key(r)],
        8 => vec![w(r.pick(&["HEXISTS", "HSTRLEN"])), key(r), elem(r)],
        9 => vec![w("HINCRBY"), key(r), elem(r), idx(r)],
        10 => vec![
            w("HINCRBYFLOAT"),
            key(r),
            elem(r),
            r.pick(&["1.5", "-0.25", "x", "1e3"]).into(),
        ],
        // Lists.
        11..=14 => {
            let mut v = vec![w(r.pick(&["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"])), key(r)];
            for _ in 0..=r.below(4) {
                v.push(elem(r));
            }
            v
        }
        15 | 16 => {
            let mut v = vec![w(r.pick(&["LPOP", "RPOP"])), key(r)];
            if r.below(2) == 0 {
                v.push(r.pick(&["0", "1", "3", "-1"]).into());
            }
            v
        }
        17 => vec![w("LRANGE"), key(r), idx(r), idx(r)],
        18 => vec![w("LINDEX"), key(r), idx(r)],
        19 => vec![w("LSET"), key(r), idx(r), elem(r)],
        20 => vec![
            w("LINSERT"),
            key(r),
            r.pick(&["BEFORE", "AFTER", "x"]).into(),
            elem(r),
            elem(r),
        ],
        21 => vec![w("LREM"), key(r), idx(r), elem(r)],
        22 => vec![w("LTRIM"), key(r), idx(r), idx(r)],
        23 => {
            let mut v = vec![w("LPOS"), key(r), elem(r)];
            for _ in 0..r.below(3) {
                match r.below(3) {
                    0 => v.extend([w("RANK"), r.pick(&["1", "-1", "2", "-2", "0"]).into()]),
                    1 => v.extend([w("COUNT"), r.pick(&["0", "1", "2", "-1"]).into()]),
                    _ => v.extend([w("MAXLEN"), r.pick(&["0", "2", "5"]).into()]),
                }
            }
            v
        }
        24 => vec![
            w("LMOVE"),
            key(r),
            key(r),
            r.pick(&["LEFT", "RIGHT"]).into(),
            r.pick(&["LEFT", "RIGHT"]).into(),
        ],
        25 => vec![w("RPOPLPUSH"), key(r), key(r)],
        26 => {
            let mut v = vec![
                w("LMPOP"),
                w("2"),
                key(r),
                key(r),
                r.pick(&["LEFT", "RIGHT"]).into(),
            ];
            if r.below(2) == 0 {
                v.extend([w("COUNT"), r.pick(&["1", "3", "0"]).into()]);
            }
            v
        }
        27 => vec![w("LLEN"), key(r)],
        // Sets.
        28..=31 => {
            let mut v = vec![w(r.pick(&["SADD", "SADD", "SADD", "SREM"])), key(r)];
            for _ in 0..=r.below(4) {
                v.push(elem(r));
            }
            v
        }
        32 => vec![w("SISMEMBER"), key(r), elem(r)],
        33 => vec![w("SMISMEMBER"), key(r), elem(r), elem(r)],
        34 => vec![w(r.pick(&["SMEMBERS", "SCARD"])), key(r)],
        35 => vec![w("SMOVE"), key(r), key(r), elem(r)],
        36 => vec![w(r.pick(&["SINTER", "SUNION", "SDIFF"])), key(r), key(r)],
        37 => vec![
            w(r.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])),
            key(r),
            key(r),
            key(r),
        ],
        38 => {
            let mut v = vec![w("SINTERCARD"), w("2"), key(r), key(r)];
            if r.below(2) == 0 {
                v.extend([w("LIMIT"), r.pick(&["0", "1", "-1"]).into()]);
            }
            v
        }
        // Sorted sets.
        39..=42 => {
            let mut v = vec![w("ZADD"), key(r)];
            for o in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                if r.below(8) == 0 {
                    v.push(o.into());
                }
            }
            for _ in 0..=r.below(3) {
                v.push(score(r));
                v.push(elem(r));
            }
            v
        }
        43 => vec![w("ZINCRBY"), key(r), score(r), elem(r)],
        44 => vec![w("ZREM"), key(r), elem(r), elem(r)],
        45 => vec![w(r.pick(&["ZCARD", "ZCARD"])), key(r)],
        46 => vec![w(r.pick(&["ZSCORE", "ZRANK", "ZREVRANK"])), key(r), elem(r)],
        47 => vec![w("ZMSCORE"), key(r), elem(r), elem(r)],
        48 => vec![w("ZCOUNT"), key(r), score(r), score(r)],
        49 => vec![w("ZLEXCOUNT"), key(r), lex(r), lex(r)],
        50 | 51 => {
            let by = r.below(3);
            let mut v = vec![w("ZRANGE"), key(r)];
            match by {
                0 => v.extend([idx(r), idx(r)]),
                1 => v.extend([score(r), score(r), w("BYSCORE")]),
                _ => v.extend([lex(r), lex(r), w("BYLEX")]),
            }
            if r.below(2) == 0 {
                v.push(w("REV"));
            }
            if r.below(3) == 0 {
                v.extend([
                    w("LIMIT"),
                    r.pick(&["0", "1", "2", "-1"]).into(),
                    r.pick(&["1", "2", "-1", "0"]).into(),
                ]);
            }
            if r.below(2) == 0 {
                v.push(w("WITHSCORES"));
            }
            v
        }
        52 => {
            let cmd = r.pick(&[
                "ZREVRANGE",
                "ZRANGEBYSCORE",
                "ZREVRANGEBYSCORE",
                "ZRANGEBYLEX",
                "ZREVRANGEBYLEX",
            ]);
            let mut v = vec![w(cmd), key(r)];
            match cmd {
                "ZREVRANGE" => v.extend([idx(r), idx(r)]),
                "ZRANGEBYLEX" | "ZREVRANGEBYLEX" => v.extend([lex(r), lex(r)]),
                _ => v.extend([score(r), score(r)]),
            }
            if r.below(2) == 0 {
                v.push(w("WITHSCORES"));
            }
            if r.below(3) == 0 {
                v.extend([
                    w("LIMIT"),
                    r.pick(&["0", "1"]).into(),
                    r.pick(&["2", "-1"]).into(),
                ]);
            }
            v
        }
        53 => vec![w("ZRANGESTORE"), key(r), key(r), idx(r), idx(r)],
        54 => vec![
            w(r.pick(&["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREMRANGEBYLEX"])),
            key(r),
            w("0"),
            w("1"),
        ],
        55 => {
            let mut v = vec![w(r.pick(&["ZPOPMIN", "ZPOPMAX"])), key(r)];
            if r.below(2) == 0 {
                v.push(r.pick(&["0", "1", "2", "5", "-1"]).into());
            }
            v
        }
        56 => {
            let mut v = vec![
                w("ZMPOP"),
                w("2"),
                key(r),
                key(r),
                r.pick(&["MIN", "MAX"]).into(),
            ];
            if r.below(2) == 0 {
                v.extend([w("COUNT"), r.pick(&["1", "3"]).into()]);
            }
            v
        }
        57 | 58 => {
            let cmd = r.pick(&[
                "ZUNION",
                "ZINTER",
                "ZDIFF",
                "ZUNIONSTORE",
                "ZINTERSTORE",
                "ZDIFFSTORE",
                "ZINTERCARD",
            ]);
            let mut v = vec![w(cmd)];
            if cmd.ends_with("STORE") {
                v.push(key(r));
            }
            v.extend([w("2"), key(r), key(r)]);
            if cmd != "ZDIFF" && cmd != "ZDIFFSTORE" && cmd != "ZINTERCARD" {
                if r.below(2) == 0 {
                    v.extend([w("WEIGHTS"), r.pick(&["1", "2", "-1", "x"]).into(), w("3")]);
                }
                if r.below(2) == 0 {
                    v.extend([w("AGGREGATE"), r.pick(&["SUM", "MIN", "MAX"]).into()]);
                }
            }
            if !cmd.ends_with("STORE") && cmd != "ZINTERCARD" && r.below(2) == 0 {
                v.push(w("WITHSCORES"));
            }
            v
        }
        // Across types.
        59 => vec![w(r.pick(&["TYPE", "EXISTS", "OBJECT"])), key(r)],
        60 => vec![w(r.pick(&["GET", "STRLEN", "APPEND", "INCR"])), key(r)],
        _ => vec![w(r.pick(&["DEL", "SET", "EXPIRE", "COPY"])), key(r)],
    };
    // Member ranges are defined over equal scores: lex commands go to "zl", whose scores are
    // all 0.
    if matches!(
        v[0].as_str(),
        "ZLEXCOUNT" | "ZRANGEBYLEX" | "ZREVRANGEBYLEX" | "ZREMRANGEBYLEX"
    ) || (v[0] == "ZRANGE" && v.iter().any(|a| a == "BYLEX"))
    {
        v[1] = w("zl");
    }
    if v[0] == "ZADD" && v[1] == "zl" {
        let first_pair = v
            .iter()
            .position(|a| {
                a.parse::<f64>().is_ok() || a.starts_with('(') || a == "x" || a.ends_with("inf")
            })
            .unwrap_or(v.len());
        for i in (first_pair..v.len()).step_by(2) {
            v[i] = w("0");
        }
    }
    if v[0] == "ZINCRBY" && v[1] == "zl" {
        v[2] = w("0");
    }
    match v[0].as_str() {
        "OBJECT" => v.insert(1, w("ENCODING")),
        "APPEND" | "SET" => v.push(w("v")),
        "EXPIRE" => v.push(w("100")),
        "COPY" => {
            v.push(key(r));
            v.push(w("REPLACE"));
        }
        _ => {}
    }
    v
}

/// Replies whose order Redis leaves unspecified are sorted, so only their contents compare.
fn unordered(cmd: &str) -> bool {
    matches!(
        cmd,
        "HKEYS" | "HVALS" | "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF"
    )
}

fn show(v: &Value) -> String {
    format!("{v:?}")
}

fn normalize(cmd: &str, v: Value) -> String {
    match v {
        Value::Array(mut items) if unordered(cmd) => {
            items.sort_by_key(show);
            show(&Value::Array(items))
        }
        Value::Set(mut items) if unordered(cmd) => {
            items.sort_by_key(show);
            show(&Value::Array(items))
        }
        Value::Array(items) if cmd == "HGETALL" => {
            let mut pairs: Vec<String> = items.chunks(2).map(|p| format!("{p:?}")).collect();
            pairs.sort();
            pairs.join(",")
        }
        other => show(&other),
    }
}

async fn ask(c: &mut redis::aio::MultiplexedConnection, words: &[String]) -> String {
    let mut cmd = redis::cmd(&words[0]);
    for w in &words[1..] {
        cmd.arg(w);
    }
    match cmd.query_async::<Value>(c).await {
        Ok(v) => normalize(&words[0], v),
        Err(e) => format!(
            "error: {} {}",
            e.code().unwrap_or_default(),
            e.detail().unwrap_or_default()
        ),
    }
}

/// Every key's type and whole contents, in a comparable form.
async fn dump(c: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let mut out = Vec::new();
    for key in KEYS {
        let t = ask(c, &["TYPE".into(), (*key).into()]).await;
        let words: Vec<String> = match t.as_str() {
            s if s.contains("hash") => vec!["HGETALL".into(), (*key).into()],
            s if s.contains("list") => {
                vec!["LRANGE".into(), (*key).into(), "0".into(), "-1".into()]
            }
            s if s.contains("zset") => {
                vec![
                    "ZRANGE".into(),
                    (*key).into(),
                    "0".into(),
                    "-1".into(),
                    "WITHSCORES".into(),
                ]
            }
            s if s.contains("set") => vec!["SMEMBERS".into(), (*key).into()],
            _ => vec!["GET".into(), (*key).into()],
        };
        out.push(format!("{key} {t} {}", ask(c, &words).await));
    }
    out
}

const THRESHOLDS: &[(&str, &str)] = &[
    ("hash-max-listpack-entries", "4"),
    ("hash-max-listpack-value", "64"),
    ("set-max-intset-entries", "5"),
    ("zset-max-listpack-entries", "5"),
    ("zset-max-listpack-value", "64"),
    ("list-max-listpack-size", "4"),
];

async fn set_thresholds(c: &mut redis::aio::MultiplexedConnection) {
    for (name, value) in THRESHOLDS {
        let reply = ask(
            c,
            &[
                "CONFIG".into(),
                "SET".into(),
                (*name).into(),
                (*value).into(),
            ],
        )
        .await;
        assert_eq!(reply, "ok", "CONFIG SET {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn collection_commands_answer_as_redis_server_does() {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut ours = connect(&kvs.resp.to_string()).await;
    let mut theirs = connect(&redis.addr()).await;
    set_thresholds(&mut ours).await;
    set_thresholds(&mut theirs).await;
    let mut r = Rng(0x1111_2222_3333_4447);
    for i in 0..8000 {
        let words = request(&mut r);
        let (a, b) = (ask(&mut ours, &words).await, ask(&mut theirs, &words).await);
        // kvs does not tell raw strings from embedded ones: only collections' encodings compare.
        if words[0] == "OBJECT" && (b.contains("embstr") || b.contains("raw")) {
            continue;
        }
        if std::env::var("KVS_SURVEY").is_ok() {
            if a != b {
                println!("MISMATCH {i}: {words:?}\n  ours:   {a}\n  theirs: {b}");
                // Resynchronise the two keyspaces on the key the request named.
                for k in KEYS {
                    let _ = ask(&mut ours, &["DEL".into(), (*k).into()]).await;
                    let _ = ask(&mut theirs, &["DEL".into(), (*k).into()]).await;
                }
            }
            continue;
        }
        assert_eq!(a, b, "request {i}: {words:?}");
        if i % 1000 == 999 {
            assert_eq!(
                dump(&mut ours).await,
                dump(&mut theirs).await,
                "after request {i}"
            );
        }
    }
    assert_eq!(dump(&mut ours).await, dump(&mut theirs).await);
    kvs.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_come_back_after_a_restart_from_the_log_and_from_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persistence = || Persistence::in_dir(dir.path(), FsyncPolicy::Always);
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    set_thresholds(&mut c).await;
    let mut r = Rng(0x1234_5678_9ABC_DEF1);
    for _ in 0..3000 {
        let words = request(&mut r);
        let _ = ask(&mut c, &words).await;
    }
    // Large collections too: past every threshold, in several snapshot chunks.
    for i in 0..3000 {
        let m = format!("m{i}");
        for words in [
            vec!["HSET".to_owned(), "bigh".into(), m.clone(), i.to_string()],
            vec!["RPUSH".into(), "bigl".into(), m.clone()],
            vec!["SADD".into(), "bigs".into(), m.clone()],
            vec![
                "ZADD".into(),
                "bigz".into(),
                (i % 97).to_string(),
                m.clone(),
            ],
        ] {
            ask(&mut c, &words).await;
        }
    }
    let before = dump(&mut c).await;
    let big = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let mut out = Vec::new();
            for words in [
                vec!["HLEN", "bigh"],
                vec!["HGET", "bigh", "m2999"],
                vec!["LRANGE", "bigl", "1500", "1505"],
                vec!["SCARD", "bigs"],
                vec!["ZRANGE", "bigz", "100", "110", "WITHSCORES"],
                vec!["ZRANK", "bigz", "m1234"],
            ] {
                let words: Vec<String> = words.into_iter().map(str::to_owned).collect();
                out.push(ask(&mut c, &words).await);
            }
            out
        }
    };
    let big_before = big(&mut c).await;
    kvs.stop().await;

    // From the log alone.
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(dump(&mut c).await, before, "replayed from the log");
    assert_eq!(big(&mut c).await, big_before);
    // A snapshot, then more writes on top of it, then a restart from both.
    assert_eq!(ask(&mut c, &["SAVE".into()]).await, "ok");
    ask(&mut c, &["LPUSH".into(), "bigl".into(), "after".into()]).await;
    ask(&mut c, &["HDEL".into(), "bigh".into(), "m0".into()]).await;
    let before = dump(&mut c).await;
    let big_before = big(&mut c).await;
    kvs.stop().await;

    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(
        dump(&mut c).await,
        before,
        "from the snapshot and the log after it"
    );
    assert_eq!(big(&mut c).await, big_before);
    assert_eq!(
        ask(&mut c, &["LINDEX".into(), "bigl".into(), "0".into()]).await,
        "bulk-string('\"after\"')"
    );
    kvs.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_shows_collections_as_json_pages_and_the_line_protocol_refuses_them() {
    let s = TestServer::start().await;
    let mut c = connect(&s.resp.to_string()).await;
    for words in [
        &["HSET", "h", "name", "kvs", "lang", "rust"][..],
        &["RPUSH", "l", "a", "b", "c"],
        &["SADD", "s", "x"],
        &["ZADD", "z", "2", "two", "1", "one", "1.5", "half"],
    ] {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        ask(&mut c, &words).await;
    }
    let http = common::client();
    let get = |path: &str| http.get(s.url(path)).send();
    let r = get("/kvs/h").await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-kvs-type"], "hash");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"name": "kvs", "lang": "rust"}));
    let body: serde_json::Value = get("/kvs/z")
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body,
        serde_json::json!([["one", 1.0], ["half", 1.5], ["two", 2.0]])
    );
    // Pages: the next offset is given until the end.
    let r = get("/kvs/l?offset=1&limit=1").await.expect("get");
    assert_eq!(r.headers()["x-kvs-total"], "3");
    assert_eq!(r.headers()["x-kvs-next-offset"], "2");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body, serde_json::json!(["b"]));
    let r = get("/kvs/l?offset=2").await.expect("get");
    assert!(r.headers().get("x-kvs-next-offset").is_none());
    assert_eq!(get("/kvs/l?limit=x").await.expect("get").status(), 400);
    // Listings say what each key holds.
    let listing: serde_json::Value = get("/kvs").await.expect("list").json().await.expect("json");
    let kinds: Vec<(String, String)> = listing["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap_or_default().to_owned(),
                k["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("s".into(), "set".into())) && kinds.contains(&("z".into(), "zset".into())),
        "{kinds:?}"
    );
    // The line protocol names the type in its error; DELETE over HTTP removes any type.
    let line = common::line_request(&s, "cmd=get | key=s").await;
    assert!(line.contains("24") && line.contains("set"), "{line}");
    assert_eq!(
        http.delete(s.url("/kvs/s"))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    assert_eq!(ask(&mut c, &["EXISTS".into(), "s".into()]).await, "int(0)");
    s.stop().await;
}

/// Total bytes of the files in `dir`: the log and any snapshot.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_patch_sets_and_removes_a_collections_expiry_durably_without_logging_its_elements() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persistence = || Persistence::in_dir(dir.path(), FsyncPolicy::Always);
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    for i in 0..3000 {
        let words = vec![
            "HSET".to_owned(),
            "h".into(),
            format!("field-{i}"),
            "x".repeat(20),
        ];
        ask(&mut c, &words).await;
    }
    ask(
        &mut c,
        &["RPUSH".into(), "l".into(), "a".into(), "b".into()],
    )
    .await;
    ask(&mut c, &["ZADD".into(), "z".into(), "1".into(), "m".into()]).await;
    ask(&mut c, &["PEXPIRE".into(), "z".into(), "3600000".into()]).await;
    let http = common::client();
    let patch = |path: &str| http.patch(kvs.url(path)).send();

    let logged = dir_bytes(dir.path());
    let r = patch("/kvs/h?ttl=1h").await.expect("patch");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["expires_at"].is_string(), "{body}");
    assert!(
        dir_bytes(dir.path()) - logged < 512,
        "an expiry change on a 3,000-field hash logs no fields ({} bytes)",
        dir_bytes(dir.path()) - logged
    );
    let ttl = ask(&mut c, &["TTL".into(), "h".into()]).await;
    assert!(
        ["int(3600)", "int(3599)"].contains(&ttl.as_str()),
        "TTL after PATCH ?ttl=1h: {ttl}"
    );
    assert_eq!(ask(&mut c, &["HLEN".into(), "h".into()]).await, "int(3000)");
    assert_eq!(patch("/kvs/z?persist").await.expect("patch").status(), 200);
    assert_eq!(ask(&mut c, &["TTL".into(), "z".into()]).await, "int(-1)");
    // A short expiry removes the list, as EXPIRE would.
    assert_eq!(
        patch("/kvs/l?ttl=200ms").await.expect("patch").status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(ask(&mut c, &["EXISTS".into(), "l".into()]).await, "int(0)");
    assert_eq!(patch("/kvs/l?ttl=1").await.expect("patch").status(), 404);
    kvs.stop().await;

    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    let ttl = ask(&mut c, &["TTL".into(), "h".into()]).await;
    assert!(
        ["int(3600)", "int(3599)", "int(3598)"].contains(&ttl.as_str()),
        "the expiry set over HTTP survives a restart: {ttl}"
    );
    assert_eq!(ask(&mut c, &["HLEN".into(), "h".into()]).await, "int(3000)");
    assert_eq!(ask(&mut c, &["TTL".into(), "z".into()]).await, "int(-1)");
    assert_eq!(ask(&mut c, &["EXISTS".into(), "l".into()]).await, "int(0)");
    kvs.stop().await;
}
