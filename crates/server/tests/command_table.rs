//! The command table as clients read it: every name `COMMAND` lists is dispatched (never
//! "unknown command"), COUNT, LIST and the full table agree, `COMMAND GETKEYS` answers from the
//! key specs with Redis's errors, and what kvs declares for each command (arity, flags, key
//! positions, ACL categories, subcommands) is what redis-server 7 declares, compared in one run
//! against a real redis-server.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use common::redis_server::redis_server;
use redis::Value;
use redis::aio::MultiplexedConnection;

async fn connect(addr: &str) -> MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn query(con: &mut MultiplexedConnection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(con).await.expect("query")
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        other => panic!("not a list: {other:?}"),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// What `COMMAND INFO` says of one command, in comparable form.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    name: String,
    arity: i64,
    flags: BTreeSet<String>,
    keys: (i64, i64, i64),
    categories: BTreeSet<String>,
    subcommands: BTreeSet<String>,
}

fn facts(v: &Value) -> Facts {
    let f = items(v);
    Facts {
        name: text(&f[0]),
        arity: int(&f[1]),
        flags: items(&f[2]).iter().map(text).collect(),
        keys: (int(&f[3]), int(&f[4]), int(&f[5])),
        categories: items(&f[6]).iter().map(text).collect(),
        subcommands: items(&f[9]).iter().map(|s| text(&items(s)[0])).collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_is_whole_and_every_name_dispatches() {
    let s = TestServer::start().await;
    let mut con = connect(&s.resp.to_string()).await;
    let listed: Vec<String> = items(&query(&mut con, &["COMMAND", "LIST"]).await)
        .iter()
        .map(text)
        .collect();
    // COMMAND LIST names subcommands too (`client|list`), as Redis 7's does; COUNT and the
    // full table count commands.
    assert!(listed.iter().any(|n| n == "client|list"));
    let names: Vec<String> = listed.into_iter().filter(|n| !n.contains('|')).collect();
    let count = int(&query(&mut con, &["COMMAND", "COUNT"]).await);
    let all = query(&mut con, &["COMMAND"]).await;
    assert_eq!(count as usize, names.len());
    assert_eq!(items(&all).len(), names.len());
    for required in [
        "copy",
        "randomkey",
        "rename",
        "renamenx",
        "get",
        "client",
        "watch",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} missing");
    }
    // Every listed name reaches a command: with no arguments it answers or refuses the
    // arity, never "unknown command". (A second connection, since QUIT and RESET act on it.)
    let mut probe = connect(&s.resp.to_string()).await;
    for name in &names {
        if ["quit", "save", "flushall", "flushdb", "shutdown"].contains(&name.as_str()) {
            continue;
        }
        let reply: redis::RedisResult<Value> = redis::cmd(name).query_async(&mut probe).await;
        if let Err(e) = reply {
            assert!(!e.to_string().contains("unknown command"), "{name}: {e}");
        }
    }
    // GETKEYS reads the key specs, with Redis's errors.
    let keys = query(
        &mut con,
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
    )
    .await;
    assert_eq!(
        items(&keys).iter().map(text).collect::<Vec<_>>(),
        ["a", "b"]
    );
    for (args, error) in [
        (
            &["COMMAND", "GETKEYS", "PING", "x"][..],
            "The command has no key arguments",
        ),
        (
            &["COMMAND", "GETKEYS", "GET", "k", "extra"][..],
            "Invalid number of arguments",
        ),
        (
            &["COMMAND", "GETKEYS", "NOSUCH", "k"][..],
            "Invalid command specified",
        ),
    ] {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        let got: redis::RedisResult<Value> = c.query_async(&mut con).await;
        let e = got.expect_err("an error");
        assert!(e.to_string().contains(error), "{args:?}: {e}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_kvs_declares_is_what_redis_declares() {
    let redis = redis_server(&[]).await;
    let s = TestServer::start().await;
    let mut ours = connect(&s.resp.to_string()).await;
    let mut theirs = connect(&redis.addr()).await;
    let names: Vec<String> = items(&query(&mut ours, &["COMMAND", "LIST"]).await)
        .iter()
        .map(text)
        .filter(|n| !n.contains('|'))
        .collect();
    let mut args = vec!["COMMAND", "INFO"];
    args.extend(names.iter().map(String::as_str));
    let ours_info = query(&mut ours, &args).await;
    let theirs_info = query(&mut theirs, &args).await;
    let mut compared = 0;
    let mut differ = Vec::new();
    for (o, t) in items(&ours_info).iter().zip(items(&theirs_info)) {
        let o = facts(o);
        let t = facts(t);
        assert_eq!(o.name, t.name);
        let (a, b) = (
            (&o.arity, &o.flags, &o.keys, &o.categories),
            (&t.arity, &t.flags, &t.keys, &t.categories),
        );
        if a != b {
            differ.push(format!("{}\n  ours:   {a:?}\n  theirs: {b:?}", o.name));
        }
        // kvs has fewer subcommands than Redis (and two from Redis 7.2: CLIENT SETINFO and
        // NO-TOUCH); the ones it shares must agree.
        let shared: Vec<&String> = o.subcommands.intersection(&t.subcommands).collect();
        let sub_args: Vec<&str> = ["COMMAND", "INFO"]
            .into_iter()
            .chain(shared.iter().map(|s| s.as_str()))
            .collect();
        if shared.is_empty() {
            compared += 1;
            continue;
        }
        let os = query(&mut ours, &sub_args).await;
        let ts = query(&mut theirs, &sub_args).await;
        for (a, b) in items(&os).iter().zip(items(&ts)) {
            assert_eq!(facts(a), facts(b));
        }
        compared += 1;
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(compared, names.len());
    s.stop().await;
}

/// How a Redis key-flag list reads for ACL key permissions: `access` reads; `insert`, `update`
/// and `delete` write.
fn access_of(flags: &Value) -> kvs_store::Access {
    let flags: Vec<String> = items(flags).iter().map(text).collect();
    let has = |f: &str| flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    kvs_store::Access {
        read: has("access"),
        write: has("insert") || has("update") || has("delete"),
    }
}

/// For every data command's example (and the variants whose key use depends on the arguments),
/// the keys kvs finds and how it says it uses each match `COMMAND GETKEYSANDFLAGS` on
/// redis-server: ACL key permissions (`%R~`, `%W~`) depend on it.
#[tokio::test(flavor = "multi_thread")]
async fn key_access_is_what_redis_declares() {
    let redis = redis_server(&[]).await;
    let mut theirs = connect(&redis.addr()).await;
    let mut requests: Vec<String> = kvs_store::data_specs()
        .flat_map(|s| std::iter::once(s).chain(s.subcommands.iter()))
        .filter(|s| !s.example.is_empty())
        .map(|s| s.example.to_owned())
        .collect();
    requests.extend(
        [
            "SET k v GET",
            "SET k v EX 10 GET",
            "SET k v NX",
            "RENAME a b",
        ]
        .map(String::from),
    );
    let mut compared = 0;
    let mut differ = Vec::new();
    for request in &requests {
        let argv: Vec<bytes::Bytes> = request
            .split(' ')
            .map(|w| bytes::Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let name = request.split(' ').next().unwrap_or_default().to_lowercase();
        let spec = kvs_store::data_spec(&name).expect("a data command");
        let spec = spec.describing(&argv);
        let positions = spec.keys.positions(&argv);
        let ours: Vec<(String, kvs_store::Access)> = positions
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                (
                    String::from_utf8_lossy(&argv[p]).into_owned(),
                    spec.access.of(&argv, i),
                )
            })
            .collect();
        let mut c = redis::cmd("COMMAND");
        c.arg("GETKEYSANDFLAGS");
        for a in request.split(' ') {
            c.arg(a);
        }
        let got: redis::RedisResult<Value> = c.query_async(&mut theirs).await;
        let theirs_keys: Vec<(String, kvs_store::Access)> = match got {
            Ok(v) => items(&v)
                .iter()
                .map(|k| (text(&items(k)[0]), access_of(&items(k)[1])))
                .collect(),
            // No keys (or no arguments to look at): redis answers with an error.
            Err(_) => Vec::new(),
        };
        if ours != theirs_keys {
            differ.push(format!(
                "{request}\n  ours:   {ours:?}\n  theirs: {theirs_keys:?}"
            ));
        }
        compared += 1;
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(compared > 40, "only {compared} requests compared");
}
