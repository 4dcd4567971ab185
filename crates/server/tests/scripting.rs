//! Lua scripts answer as redis-server 7.0 answers them: the same scripts (conversions, errors
//! and their texts, the script environment, EVALSHA and SCRIPT) go to both and every answer
//! must match. Then: a script is atomic against other clients, its writes survive a restart,
//! and the Python `redis` package's Lock and Script objects work unmodified. Function libraries
//! (FUNCTION, FCALL) answer as redis-server's do, move between the two servers by DUMP and
//! RESTORE both ways, and survive restarts from the log and from a snapshot.

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
    // Redis's libraries for scripts.
    &[
        "EVAL",
        "return cjson.encode({a = {1, 2.5, 'x/y'}, b = cjson.null})",
        "0",
    ],
    &[
        "EVAL",
        "return cjson.decode('[1,\"\\u00e9\",{\"k\":null}]')[2]",
        "0",
    ],
    // Not in tail position: kvs's library functions are Lua wrappers, and a tail call to one
    // loses the script's line (a documented difference).
    &["EVAL", "local t = cjson.decode('[1,2') return t", "0"],
    &[
        "EVAL",
        "local t = cmsgpack.unpack(cmsgpack.pack({1, 'two', {3}})) return {t[1], t[2], t[3][1]}",
        "0",
    ],
    &[
        "EVAL",
        "return cmsgpack.pack(-1099511627776, 0.1, 'x')",
        "0",
    ],
    &[
        "EVAL",
        "return {bit.band(0xff, 0x0f), bit.tohex(255), bit.rol(1, 33), bit.bnot(0)}",
        "0",
    ],
    &[
        "EVAL",
        "return {struct.pack('>i2B', 258, 7), struct.unpack('<H', 'ab')}",
        "0",
    ],
    &["EVAL", "local s = struct.pack('i99', 1) return s", "0"],
    &[
        "EVAL",
        "return {tostring(math.random()), math.random(10), math.random(5, 6)}",
        "0",
    ],
    &[
        "EVAL",
        "math.randomseed(42) return tostring(math.random())",
        "0",
    ],
    &["EVAL", "cjson.encode = nil", "0"],
    // What scripts wrote.
    &["MGET", "k", "n", "f", "x"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
];

#[tokio::test(flavor = "multi_thread")]
async fn scripts_answer_as_redis_server_does() {
    same_answers(CASES).await;
}

/// Scripts and functions queued in MULTI run in their place among the block's commands: what a
/// script reads was written by the commands before it and not yet by those after it, a library
/// loaded in the block is callable later in it, WATCH still aborts the block, and errors stay
/// with their command.
const IN_MULTI: &[&[&str]] = &[
    &["MULTI"],
    &["SET", "a", "1"],
    &["EVAL", "return redis.call('get', 'a')", "0"],
    &["SET", "a", "2"],
    &["PING"],
    &["EVAL", "return redis.call('incr', KEYS[1])", "1", "a"],
    &["EVAL", "return redis.call('nosuch')", "0"],
    &["EVAL", "return redis.error_reply('MY custom')", "0"],
    &["SCRIPT", "LOAD", "return 7"],
    &["EVALSHA", "59b6ab2fbe0ee4b25733de0f62e6cda4899ef8e9", "0"],
    &["EVAL_RO", "return redis.call('set', 'a', 'x')", "1", "a"],
    &["GET", "a"],
    &["EXEC"],
    &["MULTI"],
    &[
        "FUNCTION",
        "LOAD",
        "#!lua name=blk\nredis.register_function('g', function(keys) return redis.call('get', keys[1]) end)",
    ],
    &["FCALL", "g", "1", "a"],
    &["SET", "a", "5"],
    &["FCALL", "g", "1", "a"],
    &["FCALL", "nosuch", "x", "a"],
    &["EXEC"],
    &["FUNCTION", "DELETE", "blk"],
    &["WATCH", "a"],
    &["SET", "a", "6"],
    &["MULTI"],
    &["EVAL", "return redis.call('set', 'a', 'never')", "0"],
    &["EXEC"],
    &["GET", "a"],
    &["MULTI"],
    &["EVAL", "return redis.call('rpush', 'l', 'x')", "0"],
    &["EVAL", "return redis.call('lpop', 'l')", "0"],
    &["DEL", "a"],
    &["EXEC"],
    &["EXISTS", "a", "l"],
];

#[tokio::test(flavor = "multi_thread")]
async fn scripts_in_multi_run_in_their_place_as_redis_server_does() {
    let cases: Vec<Vec<String>> = IN_MULTI
        .iter()
        .map(|c| c.iter().map(|w| w.replace("\\n", "\n")).collect())
        .collect();
    let cases: Vec<Vec<&str>> = cases
        .iter()
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    let cases: Vec<&[&str]> = cases.iter().map(Vec::as_slice).collect();
    same_answers(&cases).await;
}

/// Sends `cases` in order to a fresh kvs and a fresh redis-server; every answer must match.
async fn same_answers(cases: &[&[&str]]) {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut k = connect(&kvs.resp.to_string()).await;
    let mut r = connect(&redis.addr()).await;
    let mut differ = Vec::new();
    for case in cases {
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

/// A quick script runs on its connection's own thread. When one turns slow there (it loops),
/// its thread stops serving its other connections, so new connections are placed on the other
/// threads: they get BUSY past the time limit, SCRIPT KILL from them stops it, and all goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_quick_script_that_turns_slow_can_still_be_killed_from_a_new_connection() {
    let kvs = TestServer::start().await;
    let addr = kvs.resp.to_string();
    let mut c = connect(&addr).await;
    ask(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "300"]).await;
    let script =
        "if ARGV[1] == 'spin' then while true do end end return redis.call('incr', KEYS[1])";
    for n in 1..=3 {
        assert_eq!(
            ask(&mut c, &["EVAL", script, "1", "n", "quick"]).await,
            format!("int({n})")
        );
    }
    let looping = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = connect(&addr).await;
            ask(&mut c, &["EVAL", script, "1", "n", "spin"]).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Two new connections: dealt out in turn, one would land on the looping script's thread.
    for _ in 0..2 {
        let mut fresh = within(connect(&addr)).await;
        let busy = within(ask(&mut fresh, &["GET", "n"])).await;
        assert!(busy.starts_with("error: BUSY"), "{busy}");
    }
    let mut fresh = within(connect(&addr)).await;
    assert_eq!(within(ask(&mut fresh, &["SCRIPT", "KILL"])).await, "ok");
    let ended = within(async { looping.await.expect("the script's client") }).await;
    assert!(ended.contains("Script killed by user"), "{ended}");
    assert_eq!(
        ask(&mut c, &["EVAL", script, "1", "n", "quick"]).await,
        "int(4)"
    );
    kvs.stop().await;
}

/// `what`, which must be done within 10 s.
async fn within<T>(what: impl Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), what)
        .await
        .expect("served in time")
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

// One function per library and one library per listing: Redis lists them in its hash tables'
// order, which differs from run to run.
const LIB: &str = "#!lua name=mylib\nlocal function key(keys) return keys[1] end\nredis.register_function('setget', function(keys, args) redis.call('set', key(keys), args[1]) return redis.call('get', key(keys)) end)";
const PEEK: &str = "#!lua name=peeklib\nredis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads a key'}";

/// Function requests whose answers must be the same from kvs and redis-server, in order.
const FUNCTION_CASES: &[&[&str]] = &[
    &["FUNCTION", "FLUSH"],
    &["FUNCTION", "LOAD", LIB],
    &["FUNCTION", "LOAD", LIB],
    &["FUNCTION", "LOAD", "REPLACE", LIB],
    &["FUNCTION", "LIST"],
    &["FUNCTION", "LOAD", PEEK],
    &["FCALL", "setget", "1", "k", "v1"],
    &["FCALL", "SETGET", "1", "k", "v2"],
    &["FCALL_RO", "peek", "1", "k"],
    &["FCALL_RO", "setget", "1", "k", "v3"],
    &["FCALL", "nosuch", "0"],
    &["FCALL", "peek", "x"],
    &["FCALL", "peek", "2", "k"],
    &["FCALL", "peek", "-1"],
    &["FUNCTION", "LIST", "LIBRARYNAME", "peek*", "WITHCODE"],
    &["FUNCTION", "LIST", "LIBRARYNAME", "MY*"],
    &["FUNCTION", "LIST", "LIBRARYNAME", "other*"],
    &["FUNCTION", "LIST", "LIBRARYNAME"],
    &["FUNCTION", "LIST", "BAD"],
    &["FUNCTION", "STATS"],
    &["FUNCTION", "KILL"],
    &["FUNCTION", "LOAD", "return 1"],
    &["FUNCTION", "LOAD", "#!lua name=a name=b\nreturn 1"],
    &["FUNCTION", "LOAD", "#!lua\nreturn 1"],
    &["FUNCTION", "LOAD", "#!lua name=bad-name\nreturn 1"],
    &["FUNCTION", "LOAD", "#!nope name=x\nreturn 1"],
    &["FUNCTION", "LOAD", "#!lua name=x\nreturn 1"],
    &["FUNCTION", "LOAD", "#!lua name=x\nnot lua"],
    &[
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function('setget', function() return 1 end)",
    ],
    &[
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function('f', function() return 1 end, 3)",
    ],
    &[
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() return 1 end, flags={'bad'}}",
    ],
    &[
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() return 1 end, extra=1}",
    ],
    &["FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"],
    &["FUNCTION", "LOAD", "#!lua name=x\ny = 1"],
    &[
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function('f', function() return KEYS[1] end)",
    ],
    &["FCALL", "f", "1", "k"],
    &[
        "FUNCTION",
        "LOAD",
        "#!lua name=y\nredis.register_function('g', function() return redis.call('nosuch') end)",
    ],
    &["FCALL", "g", "0"],
    &["FUNCTION", "DELETE", "x"],
    &["FUNCTION", "DELETE", "x"],
    &["FUNCTION", "DELETE", "y"],
    &["FUNCTION", "DELETE", "PEEKLIB"],
    &["FUNCTION", "DELETE", "peeklib"],
    &["FUNCTION", "RESTORE", "garbage"],
    &["FUNCTION", "RESTORE", "garbage", "BADPOLICY"],
    &["FUNCTION", "FLUSH", "LATER"],
    &["FUNCTION", "STATS"],
    &["FUNCTION", "LIST"],
    &["FLUSHALL"],
    &["FCALL", "setget", "1", "k", "after flushall"],
    &["FUNCTION", "FLUSH", "ASYNC"],
    &["FCALL", "setget", "1", "k", "v"],
    &["FUNCTION", "LIST"],
];

#[tokio::test(flavor = "multi_thread")]
async fn functions_answer_as_redis_server_does() {
    same_answers(FUNCTION_CASES).await;
}

async fn dump(c: &mut redis::aio::MultiplexedConnection) -> Vec<u8> {
    redis::cmd("FUNCTION")
        .arg("DUMP")
        .query_async(c)
        .await
        .expect("dump")
}

async fn restore(
    c: &mut redis::aio::MultiplexedConnection,
    payload: &[u8],
    policy: &str,
) -> String {
    match redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(payload)
        .arg(policy)
        .query_async::<Value>(c)
        .await
    {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {}", e.detail().unwrap_or_default()),
    }
}

/// Libraries move between kvs and redis-server with FUNCTION DUMP and RESTORE, both ways
/// (redis-server compresses its payloads with LZF; kvs writes them plain), and RESTORE's
/// policies act as Redis's do.
#[tokio::test(flavor = "multi_thread")]
async fn function_payloads_move_between_kvs_and_redis_server() {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut k = connect(&kvs.resp.to_string()).await;
    let mut r = connect(&redis.addr()).await;
    let other = "#!lua name=other\nredis.register_function('twice', function(keys, args) return args[1] .. args[1] end)";
    ask(&mut r, &["FUNCTION", "LOAD", LIB]).await;
    ask(&mut r, &["FUNCTION", "LOAD", other]).await;
    let theirs = dump(&mut r).await;
    assert_eq!(restore(&mut k, &theirs, "APPEND").await, "ok");
    assert_eq!(
        ask(&mut k, &["FCALL", "twice", "0", "ab"]).await,
        ask(&mut k, &["ECHO", "abab"]).await
    );
    assert_eq!(
        ask(&mut k, &["FUNCTION", "LIST", "WITHCODE"]).await,
        ask(&mut r, &["FUNCTION", "LIST", "WITHCODE"]).await
    );
    // APPEND refuses a library already there; REPLACE replaces it; FLUSH starts over.
    let again = restore(&mut k, &theirs, "APPEND").await;
    assert!(again.contains("already exists"), "{again}");
    assert_eq!(restore(&mut k, &theirs, "REPLACE").await, "ok");
    let ours = dump(&mut k).await;
    ask(&mut r, &["FUNCTION", "FLUSH"]).await;
    assert_eq!(
        restore(&mut r, &ours, "FLUSH").await,
        "ok",
        "redis-server takes kvs's payload"
    );
    assert_eq!(
        ask(&mut r, &["FCALL", "setget", "1", "k", "v"]).await,
        ask(&mut r, &["ECHO", "v"]).await
    );
    let mut damaged = ours.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    assert_eq!(
        restore(&mut k, &damaged, "FLUSH").await,
        "error: DUMP payload version or checksum are wrong"
    );
    // Library by library: redis-server lists its libraries in no fixed order.
    for name in ["mylib", "other"] {
        let list = ["FUNCTION", "LIST", "LIBRARYNAME", name];
        assert_eq!(
            ask(&mut k, &list).await,
            ask(&mut r, &list).await,
            "a refused payload changes nothing"
        );
    }
    kvs.stop().await;
}

/// Function libraries are data: they come back after a restart, from the log and then from a
/// snapshot, and FLUSHALL leaves them; scripts loaded with SCRIPT LOAD do not come back, as in
/// Redis.
#[tokio::test(flavor = "multi_thread")]
async fn function_libraries_survive_restarts_and_scripts_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persistence = || Persistence::in_dir(dir.path(), FsyncPolicy::Always);
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(
        ask(&mut c, &["FUNCTION", "LOAD", LIB]).await,
        ask(&mut c, &["ECHO", "mylib"]).await
    );
    ask(&mut c, &["FUNCTION", "LOAD", PEEK]).await;
    let gone = "#!lua name=gone\nredis.register_function('g', function() return 1 end)";
    ask(&mut c, &["FUNCTION", "LOAD", gone]).await;
    assert_eq!(ask(&mut c, &["FUNCTION", "DELETE", "gone"]).await, "ok");
    let sha = ask(&mut c, &["SCRIPT", "LOAD", "return 1"]).await;
    assert_eq!(ask(&mut c, &["FLUSHALL"]).await, "ok");
    let listed = ask(&mut c, &["FUNCTION", "LIST", "WITHCODE"]).await;
    kvs.stop().await;

    // From the log.
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(ask(&mut c, &["FUNCTION", "LIST", "WITHCODE"]).await, listed);
    assert_eq!(
        ask(&mut c, &["FCALL", "setget", "1", "k", "v"]).await,
        ask(&mut c, &["ECHO", "v"]).await
    );
    assert!(
        sha.contains("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
        "{sha}"
    );
    assert_eq!(
        ask(
            &mut c,
            &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"]
        )
        .await,
        "error: NOSCRIPT No matching script. Please use EVAL."
    );
    let info = ask(&mut c, &["INFO", "memory"]).await;
    assert!(info.contains("number_of_libraries:2"), "{info}");
    assert!(info.contains("number_of_functions:2"), "{info}");
    // From a snapshot, with the log behind it empty of functions.
    assert_eq!(ask(&mut c, &["SAVE"]).await, "ok");
    kvs.stop().await;
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(ask(&mut c, &["FUNCTION", "LIST", "WITHCODE"]).await, listed);
    assert_eq!(
        ask(&mut c, &["FCALL_RO", "peek", "1", "k"]).await,
        ask(&mut c, &["ECHO", "v"]).await
    );
    assert_eq!(ask(&mut c, &["FUNCTION", "FLUSH"]).await, "ok");
    kvs.stop().await;
    let kvs = TestServer::with(|c| c.persistence = persistence()).await;
    let mut c = connect(&kvs.resp.to_string()).await;
    assert_eq!(
        ask(&mut c, &["FUNCTION", "LIST"]).await,
        format!("{:?}", Value::Array(vec![])),
        "a flush is kept too"
    );
    kvs.stop().await;
}

/// A looping function: others are answered BUSY in FUNCTION KILL's words, FUNCTION STATS names
/// it, SCRIPT KILL does not stop it and FUNCTION KILL does.
#[tokio::test(flavor = "multi_thread")]
async fn a_looping_function_is_stopped_by_function_kill() {
    let kvs = TestServer::start().await;
    let addr = kvs.resp.to_string();
    let mut other = connect(&addr).await;
    ask(
        &mut other,
        &["CONFIG", "SET", "busy-reply-threshold", "100"],
    )
    .await;
    let spin = "#!lua name=spin\nredis.register_function('spin', function() local n = 0 while true do n = n + 1 end end)";
    ask(&mut other, &["FUNCTION", "LOAD", spin]).await;
    let looping = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = connect(&addr).await;
            ask(&mut c, &["FCALL", "spin", "0"]).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        ask(&mut other, &["GET", "k"]).await,
        "error: BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    );
    let stats = ask(&mut other, &["FUNCTION", "STATS"]).await;
    assert!(
        stats.contains("\"spin\"") && stats.contains("\"fcall\"") && stats.contains("duration_ms"),
        "{stats}"
    );
    let refused = ask(&mut other, &["SCRIPT", "KILL"]).await;
    assert!(
        refused.contains("You can only call FUNCTION KILL"),
        "{refused}"
    );
    assert_eq!(ask(&mut other, &["FUNCTION", "KILL"]).await, "ok");
    let ended = looping.await.expect("the function's client");
    assert!(ended.contains("Script killed by user"), "{ended}");
    assert_eq!(
        ask(&mut other, &["SET", "k", "v"]).await,
        "ok",
        "the server goes on"
    );
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

/// The counters INFO shows for errors and for the commands named, without times: what must
/// match between kvs and redis-server.
async fn counted(c: &mut redis::aio::MultiplexedConnection, commands: &[&str]) -> Vec<String> {
    let info: String = redis::cmd("INFO")
        .arg("everything")
        .query_async(c)
        .await
        .expect("INFO");
    let mut out: Vec<String> = info
        .lines()
        .filter(|l| l.starts_with("errorstat_") || l.starts_with("total_error_replies:"))
        .map(str::to_owned)
        .collect();
    for name in commands {
        let line = info
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .unwrap_or_default();
        let kept: Vec<&str> = line
            .split([':', ','])
            .filter(|f| !f.starts_with("usec"))
            .collect();
        out.push(format!("{name} {}", kept.join(",")));
    }
    out
}

/// Errors from commands a script calls are counted once, when they happen, and a rejected
/// command is a rejected call of it; EVAL's own call is failed when the script's answer is an
/// error: INFO errorstats and commandstats agree with redis-server's after each case (Redis's
/// "Consistent eval error reporting", without its GEOADD part).
#[tokio::test(flavor = "multi_thread")]
async fn errors_in_scripts_are_counted_as_redis_server_counts_them() {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut k = connect(&kvs.resp.to_string()).await;
    let mut r = connect(&redis.addr()).await;
    let oom = "local t = redis.pcall('set','x','y') if t['err'] == \"OOM command not allowed when used memory > 'maxmemory'.\" then return 1 else return 0 end";
    let ro = "local t = redis.pcall('set','x','y') if t['err'] == \"ERR Write commands are not allowed from read-only scripts.\" then return 1 else return 0 end";
    let cases: &[&[&[&str]]] = &[
        &[
            &["CONFIG", "SET", "maxmemory", "1"],
            &["EVAL", "return redis.call('set','x','y')", "1", "x"],
        ],
        &[&["EVAL", oom, "1", "x"]],
        &[&["EVAL", "return redis.pcall('set','x','y')", "1", "x"]],
        &[
            &["CONFIG", "SET", "maxmemory", "0"],
            &["EVAL", "return redis.call('get','x','y')", "0"],
        ],
        &[&["EVAL", "return redis.call('nosuch')", "0"]],
        &[&["EVAL", "local ok = redis.pcall('nosuch') return 1", "0"]],
        &[&["EVAL_RO", "return redis.call('set','x','y')", "1", "x"]],
        &[&["EVAL_RO", ro, "1", "x"]],
        &[&[
            "EVAL",
            "return redis.error_reply('MY_ERR_CODE custom msg')",
            "0",
        ]],
        &[&["EVAL", "return redis.call('incr', 'x')", "1", "x"]],
        &[&["EVAL", "return redis.call('ping', {})", "0"]],
        &[&["EVAL", "return 1", "0"]],
    ];
    let commands = ["set", "get", "incr", "eval", "eval_ro"];
    for steps in cases {
        for c in [&mut k, &mut r] {
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(c)
                .await
                .expect("resetstat");
            // Refused while memory is over the limit, by both alike.
            ask(c, &["SET", "x", "text"]).await;
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(c)
                .await
                .expect("resetstat");
        }
        for step in *steps {
            assert_eq!(ask(&mut k, step).await, ask(&mut r, step).await, "{step:?}");
        }
        assert_eq!(
            counted(&mut k, &commands).await,
            counted(&mut r, &commands).await,
            "after {steps:?}"
        );
    }
    kvs.stop().await;
}

/// The fields of each ACL LOG entry that do not depend on time or the connection.
async fn acl_log(c: &mut redis::aio::MultiplexedConnection) -> Vec<Vec<String>> {
    let log: Value = redis::cmd("ACL")
        .arg("LOG")
        .query_async(c)
        .await
        .expect("ACL LOG");
    let Value::Array(entries) = log else {
        panic!("ACL LOG: {log:?}")
    };
    entries
        .iter()
        .map(|entry| {
            let fields: Vec<(String, String)> = match entry {
                Value::Array(flat) => flat
                    .chunks(2)
                    .map(|kv| (format!("{:?}", kv[0]), format!("{:?}", kv[1])))
                    .collect(),
                Value::Map(pairs) => pairs
                    .iter()
                    .map(|(k, v)| (format!("{k:?}"), format!("{v:?}")))
                    .collect(),
                other => panic!("an entry: {other:?}"),
            };
            fields
                .into_iter()
                .filter(|(k, _)| {
                    ["count", "reason", "context", "object", "username"]
                        .iter()
                        .any(|name| k.contains(&format!("\"{name}\"")))
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
        .collect()
}

/// A command a script is refused by the ACL leaves an ACL LOG entry with context `lua`, as
/// redis-server's does.
#[tokio::test(flavor = "multi_thread")]
async fn acl_refusals_in_scripts_are_logged_as_redis_server_logs_them() {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut logs = Vec::new();
    for addr in [kvs.resp.to_string(), redis.addr()] {
        let mut admin = connect(&addr).await;
        for setup in [
            &[
                "ACL", "SETUSER", "u", "on", "nopass", "~a*", "+@all", "-incr",
            ][..],
            &["ACL", "LOG", "RESET"],
        ] {
            assert_eq!(ask(&mut admin, setup).await, "ok", "{setup:?}");
        }
        let mut user = redis::Client::open(format!("redis://u:x@{addr}"))
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connects as u");
        for script in [
            "return redis.pcall('get', 'b')",
            "return redis.pcall('incr', 'a')",
            "return redis.pcall('get', 'a')",
        ] {
            ask(&mut user, &["EVAL", script, "0"]).await;
        }
        logs.push(acl_log(&mut admin).await);
    }
    assert_eq!(logs[0].len(), 2, "{:?}", logs[0]);
    assert_eq!(logs[0], logs[1]);
    kvs.stop().await;
}
