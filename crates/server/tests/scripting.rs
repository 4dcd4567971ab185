//! Lua scripts answer as redis-server 7.0 answers them: the same scripts (conversions, errors
//! and their texts, the script environment, EVALSHA and SCRIPT) go to both and every answer
//! must match. Then: a script is atomic against other clients, its writes survive a restart,
//! and the Python `redis` package's Lock and Script objects work unmodified.

mod common;

use common::redis_server::redis_server;
use common::{TestServer, connect_redis as connect};
use kvs_server::{FsyncPolicy, Persistence};
use redis::Value;

async fn ask(c: &mut redis::aio::MultiplexedConnection, words: &[&str]) -> String {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
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

/// Requests whose answers must be the same from kvs and redis-server, in order.
const CASES: &[&[&str]] = &[
    &["SET", "str", "hello"],
    &["RPUSH", "list", "a", "b"],
    &["HSET", "hash", "f", "v"],
    // Conversions from Lua.
    &["EVAL", "return 1", "0"],
    &["EVAL", "return 3.99", "0"],
    &["EVAL", "return -3.99", "0"],
    &["EVAL", "return 'text'", "0"],
    &["EVAL", "return true", "0"],
    &["EVAL", "return false", "0"],
    &["EVAL", "return nil", "0"],
    &["EVAL", "return {1, 'two', {3, {4}}, true, false, 5}", "0"],
    &["EVAL", "return {1, nil, 3}", "0"],
    &["EVAL", "return {ok = 'fine'}", "0"],
    &["EVAL", "return {err = 'My Error'}", "0"],
    &["EVAL", "return {err = 'ERR this is an error'}", "0"],
    &["EVAL", "return {1, {err = 'inner'}, 3}", "0"],
    &["EVAL", "return redis.error_reply('MY_CODE custom')", "0"],
    &["EVAL", "return redis.error_reply('oops')", "0"],
    &["EVAL", "return redis.status_reply('FINE')", "0"],
    &["EVAL", "return redis.sha1hex('')", "0"],
    &["EVAL", "return {double = 3.5}", "0"],
    // KEYS and ARGV.
    &[
        "EVAL",
        "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}",
        "2",
        "k1",
        "k2",
        "a1",
        "a2",
    ],
    &["EVAL", "return KEYS", "0"],
    // Conversions to Lua.
    &["EVAL", "return redis.call('get', KEYS[1])", "1", "str"],
    &["EVAL", "return redis.call('get', 'missing')", "0"],
    &["EVAL", "return type(redis.call('get', 'missing'))", "0"],
    &["EVAL", "return redis.call('lrange', 'list', 0, -1)", "0"],
    &["EVAL", "return redis.call('set', 'k', 'v')", "0"],
    &["EVAL", "return type(redis.call('set', 'k', 'v'))", "0"],
    &["EVAL", "return redis.call('set', 'k', 'v')['ok']", "0"],
    &["EVAL", "return redis.call('incrby', 'n', 5)", "0"],
    &["EVAL", "return redis.call('incrbyfloat', 'f', 1.5)", "0"],
    &["EVAL", "return redis.call('hgetall', 'hash')", "0"],
    &[
        "EVAL",
        "redis.setresp(3); return redis.call('hgetall', 'hash')",
        "0",
    ],
    &[
        "EVAL",
        "redis.setresp(3); return type(redis.call('get', 'missing'))",
        "0",
    ],
    &["EVAL", "redis.setresp(3); return false", "0"],
    &[
        "EVAL",
        "redis.setresp(3); return redis.call('hgetall', 'hash')['map']['f']",
        "0",
    ],
    &["EVAL", "return redis.call('zadd', 'z', 1.5, 'm')", "0"],
    &["EVAL", "return redis.call('zscore', 'z', 'm')", "0"],
    // Errors raised, with the script and line they came from.
    &["EVAL", "return redis.call('nosuchcommand')", "0"],
    &["EVAL", "return redis.call('get')", "0"],
    &["EVAL", "return redis.call()", "0"],
    &["EVAL", "return redis.call('get', {})", "0"],
    &["EVAL", "return redis.call('incr', 'str')", "0"],
    &[
        "EVAL",
        "\nlocal x = 1\nreturn redis.call('lpush', 'str', 'x')",
        "0",
    ],
    &["EVAL", "return redis.pcall('incr', 'str')", "0"],
    &["EVAL", "return redis.call('multi')", "0"],
    &["EVAL", "return redis.call('eval', 'return 1', 0)", "0"],
    &["EVAL", "error('boom')", "0"],
    &["EVAL", "error({err = 'CODE raised'})", "0"],
    &["EVAL", "error(redis.error_reply('E2 raised'))", "0"],
    &["EVAL", "local x = nil + 1", "0"],
    &[
        "EVAL",
        "local ok, e = pcall(redis.call, 'nosuch'); return e",
        "0",
    ],
    &[
        "EVAL",
        "local ok, e = pcall(function() error('x') end); return {tostring(ok), e}",
        "0",
    ],
    &[
        "EVAL",
        "return {pcall(function() return redis.call('incr', 'str') end)}",
        "0",
    ],
    // The environment.
    &["EVAL", "return undefined_name", "0"],
    &["EVAL", "newglobal = 1", "0"],
    &["EVAL", "string.extra = 1", "0"],
    &["EVAL", "redis.call = nil", "0"],
    &["EVAL", "return type(os)", "0"],
    &["EVAL", "return type(io)", "0"],
    &["EVAL", "return type(print)", "0"],
    &["EVAL", "return type(loadfile)", "0"],
    &["EVAL", "return type(dofile)", "0"],
    &["EVAL", "return loadstring('return 7')()", "0"],
    &[
        "EVAL",
        "return string.format('%05.1f|%s', 3.14159, 'x')",
        "0",
    ],
    &["EVAL", "return table.concat({'a', 'b'}, '-')", "0"],
    &["EVAL", "return math.floor(7.9)", "0"],
    &["EVAL", "return redis.REDIS_VERSION_NUM > 0", "0"],
    // Arguments and compilation.
    &["EVAL", "return 1", "2", "a"],
    &["EVAL", "return 1", "-1"],
    &["EVAL", "return 1", "x"],
    &["EVAL", "this is not lua", "0"],
    &[
        "EVAL",
        "#!lua flags=no-writes\nreturn redis.call('set', 'x', 1)",
        "0",
    ],
    &[
        "EVAL",
        "#!lua flags=no-writes\nreturn redis.call('get', 'str')",
        "0",
    ],
    &["EVAL", "#!lua\nreturn redis.call('get', 'str')", "0"],
    &["EVAL", "#!lua flags=what\nreturn 1", "0"],
    &["EVAL", "#!lua badger=data\nreturn 1", "0"],
    &["EVAL", "#!notlua\nreturn 1", "0"],
    &["EVAL", "#!lua", "0"],
    &["EVAL_RO", "return redis.call('get', 'str')", "0"],
    &["EVAL_RO", "return redis.call('set', 'x', 1)", "0"],
    &["EVAL_RO", "return redis.call('publish', 'ch', 1)", "0"],
    &["EVAL_RO", "#!lua\nreturn 1", "0"],
    // The script cache.
    &["SCRIPT", "LOAD", "return 'loaded'"],
    &["EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"],
    &["EVALSHA", "B534286061D4B9E4026607613B95C06C06015AE8", "0"],
    &[
        "EVALSHA_RO",
        "b534286061d4b9e4026607613b95c06c06015ae8",
        "0",
    ],
    &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
    &["EVALSHA", "short", "0"],
    &[
        "SCRIPT",
        "EXISTS",
        "b534286061d4b9e4026607613b95c06c06015ae8",
        "ffffffffffffffffffffffffffffffffffffffff",
    ],
    &["SCRIPT", "LOAD", "not lua at all"],
    &["SCRIPT", "FLUSH", "BOGUS"],
    &["SCRIPT", "FLUSH"],
    &[
        "SCRIPT",
        "EXISTS",
        "b534286061d4b9e4026607613b95c06c06015ae8",
    ],
    &["EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"],
    &["SCRIPT", "KILL"],
    &["SCRIPT", "NOSUCH"],
    // What scripts wrote.
    &["MGET", "k", "n", "f", "x"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
];

#[tokio::test(flavor = "multi_thread")]
async fn scripts_answer_as_redis_server_does() {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut k = connect(&kvs.resp.to_string()).await;
    let mut r = connect(&redis.addr()).await;
    let mut differ = Vec::new();
    for case in CASES {
        let ours = ask(&mut k, case).await;
        let theirs = ask(&mut r, case).await;
        if ours != theirs {
            differ.push(format!("{case:?}\n  kvs:   {ours}\n  redis: {theirs}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} differences:\n{}",
        differ.len(),
        differ.join("\n")
    );
    kvs.stop().await;
}

/// While a script increments a counter 200 times, readers on other connections see only
/// multiples of 200: nothing runs between a script's commands.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_is_atomic_against_every_other_client() {
    let kvs = TestServer::start().await;
    let addr = kvs.resp.to_string();
    let mut c = connect(&addr).await;
    let _: () = redis::cmd("SET")
        .arg("n")
        .arg(0)
        .query_async(&mut c)
        .await
        .expect("set");
    let script =
        "for i = 1, 200 do redis.call('incr', KEYS[1]) end return redis.call('get', KEYS[1])";
    let writer = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = connect(&addr).await;
            for _ in 0..50 {
                let _: String = redis::cmd("EVAL")
                    .arg(script)
                    .arg(1)
                    .arg("n")
                    .query_async(&mut c)
                    .await
                    .expect("eval");
            }
        })
    };
    let mut reads = 0;
    let mut r = connect(&addr).await;
    while !writer.is_finished() {
        let n: i64 = redis::cmd("GET")
            .arg("n")
            .query_async(&mut r)
            .await
            .expect("get");
        assert_eq!(n % 200, 0, "a read saw a script half done: {n}");
        reads += 1;
    }
    writer.await.expect("writer");
    let n: i64 = redis::cmd("GET")
        .arg("n")
        .query_async(&mut r)
        .await
        .expect("get");
    assert_eq!(n, 50 * 200);
    assert!(reads > 0);
    kvs.stop().await;
}

/// What a script wrote is logged as one record and comes back after a restart.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_script_wrote_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persistence = || Persistence::in_dir(dir.path(), FsyncPolicy::Always);
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    let script = "redis.call('set', KEYS[1], ARGV[1]); redis.call('rpush', KEYS[2], ARGV[1], ARGV[2]); redis.call('hset', KEYS[3], 'f', ARGV[2]); return 'done'";
    let done: String = redis::cmd("EVAL")
        .arg(script)
        .arg(3)
        .arg("s")
        .arg("l")
        .arg("h")
        .arg("one")
        .arg("two")
        .query_async(&mut c)
        .await
        .expect("eval");
    assert_eq!(done, "done");
    kvs.stop().await;
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(
        ask(&mut c, &["GET", "s"]).await,
        ask(&mut c, &["ECHO", "one"]).await
    );
    assert_eq!(
        ask(&mut c, &["LRANGE", "l", "0", "-1"]).await,
        format!(
            "{:?}",
            Value::Array(vec![
                Value::BulkString(b"one".to_vec()),
                Value::BulkString(b"two".to_vec())
            ])
        )
    );
    assert_eq!(
        ask(&mut c, &["HGET", "h", "f"]).await,
        ask(&mut c, &["ECHO", "two"]).await
    );
    kvs.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_redis_lock_and_scripts_work_unmodified() {
    let kvs = TestServer::start().await;
    common::run_python(&kvs, "scripting_client.py", "scripting ok").await;
    kvs.stop().await;
}

/// A script that never ends: other clients wait for it, then past the time limit are answered
/// BUSY at once; SCRIPT KILL stops it (it wrote nothing), and everything goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_looping_script_makes_others_busy_and_script_kill_stops_it() {
    let kvs = TestServer::start().await;
    let addr = kvs.resp.to_string();
    let mut other = connect(&addr).await;
    assert_eq!(
        ask(&mut other, &["SCRIPT", "KILL"]).await,
        "error: NOTBUSY No scripts in execution right now."
    );
    // Redis's default is 5 s; a shorter limit keeps the test short.
    assert_eq!(
        ask(
            &mut other,
            &["CONFIG", "SET", "busy-reply-threshold", "1000"]
        )
        .await,
        "ok"
    );
    let looping = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = connect(&addr).await;
            ask(
                &mut c,
                &["EVAL", "local n = 0 while true do n = n + 1 end", "0"],
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let waited = ask(&mut other, &["GET", "k"]).await;
    assert!(
        waited.starts_with("error: BUSY Redis is busy running a script"),
        "{waited}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(700),
        "others wait for a script before they are told BUSY: {:?}",
        started.elapsed()
    );
    let at_once = std::time::Instant::now();
    let busy = ask(&mut other, &["SET", "k", "v"]).await;
    assert!(busy.starts_with("error: BUSY"), "{busy}");
    assert!(at_once.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]).await, "ok");
    let ended = looping.await.expect("the script's client");
    assert!(
        ended.starts_with("error: ERR Script killed by user with SCRIPT KILL..."),
        "{ended}"
    );
    assert_eq!(ask(&mut other, &["SET", "k", "v"]).await, "ok");
    assert_eq!(
        ask(&mut other, &["EVAL", "return redis.call('get', 'k')", "0"]).await,
        ask(&mut other, &["ECHO", "v"]).await
    );
    kvs.stop().await;
}

/// A script that allocates without end is stopped at the Lua state's memory limit with an
/// error; the server, its data and later scripts are unharmed.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_allocating_without_end_fails_and_the_server_stays_up() {
    let kvs = TestServer::start().await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(ask(&mut c, &["SET", "k", "v"]).await, "ok");
    let grow = "local s = string.rep('x', 64 * 1024 * 1024) local t = {} for i = 1, 1000 do t[i] = s .. i end return #t";
    let answer = ask(&mut c, &["EVAL", grow, "0"]).await;
    assert!(answer.contains("not enough memory"), "{answer}");
    // Too deep for client libraries to parse: read the raw reply.
    let nested = "local t = {} local c = t for i = 1, 100000 do c[1] = {} c = c[1] end return t";
    let deep = raw_reply(
        &kvs.resp.to_string(),
        &["EVAL", nested, "0"],
        b"lua stack limit",
    )
    .await;
    assert!(
        deep.starts_with(b"*1\r\n*1\r\n") && deep.ends_with(b"-ERR reached lua stack limit\r\n"),
        "a deep table is cut off with an error inside it: {:?}",
        String::from_utf8_lossy(&deep[deep.len().saturating_sub(100)..])
    );
    assert_eq!(
        ask(&mut c, &["GET", "k"]).await,
        ask(&mut c, &["ECHO", "v"]).await
    );
    assert_eq!(ask(&mut c, &["EVAL", "return 1 + 1", "0"]).await, "int(2)");
    let info = ask(&mut c, &["INFO", "memory"]).await;
    assert!(info.contains("number_of_cached_scripts:3"), "{info}");
    kvs.stop().await;
}

/// Sends one request over a fresh connection and reads the reply until it ends with `until`.
async fn raw_reply(addr: &str, words: &[&str], until: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        request.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    stream.write_all(&request).await.expect("write");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reply.windows(until.len()).any(|w| w == until) || !reply.ends_with(b"\r\n") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the reply arrives in time")
            .expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&buf[..n]);
    }
    reply
}
