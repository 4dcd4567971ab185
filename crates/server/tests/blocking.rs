//! Blocking list and sorted set commands: clients are served in the order they blocked, a push
//! from MULTI or a store command wakes them, timeouts are sub-second and 0 waits forever,
//! CLIENT UNBLOCK ends a wait, a client that disconnects leaves nothing behind, and inside
//! MULTI nothing blocks.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use redis::Value;
use redis::aio::MultiplexedConnection;

async fn connect(s: &TestServer) -> MultiplexedConnection {
    redis::Client::open(format!("redis://{}", s.resp))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

async fn run(c: &mut MultiplexedConnection, words: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
    }
    cmd.query_async(c).await
}

fn text(v: &Value) -> String {
    format!("{v:?}")
}

/// Waits until the server counts `n` blocked clients.
async fn until_blocked(c: &mut MultiplexedConnection, n: usize) {
    for _ in 0..400 {
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(c)
            .await
            .expect("info");
        if info.contains(&format!("blocked_clients:{n}\r")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never saw {n} blocked clients");
}

/// A client that sends one blocking command and hands back its answer.
fn blocked(
    mut c: MultiplexedConnection,
    words: &'static [&'static str],
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        match run(&mut c, words).await {
            Ok(v) => text(&v),
            Err(e) => format!("error: {e}"),
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_are_served_in_the_order_they_blocked() {
    let s = TestServer::start().await;
    let mut admin = connect(&s).await;
    let mut waiting = Vec::new();
    for i in 0..4 {
        let c = connect(&s).await;
        waiting.push(blocked(c, &["BLPOP", "queue", "other", "5"]));
        until_blocked(&mut admin, i + 1).await;
    }
    run(&mut admin, &["RPUSH", "queue", "a", "b", "c"])
        .await
        .expect("push");
    // Three elements: the first three clients, in order; the fourth still waits.
    for (i, want) in ["a", "b", "c"].iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(5), &mut waiting[i])
            .await
            .expect("served")
            .expect("task");
        assert!(
            got.contains("\"queue\"") && got.contains(&format!("\"{want}\"")),
            "client {i}: {got}"
        );
    }
    until_blocked(&mut admin, 1).await;
    run(&mut admin, &["RPUSH", "other", "d"])
        .await
        .expect("push");
    let got = waiting.pop().expect("fourth").await.expect("task");
    assert!(got.contains("\"other\"") && got.contains("\"d\""), "{got}");
    assert_eq!(
        text(
            &run(&mut admin, &["EXISTS", "queue", "other"])
                .await
                .expect("exists")
        ),
        "int(0)"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_are_sub_second_and_zero_waits_forever() {
    let s = TestServer::start().await;
    let mut c = connect(&s).await;
    let started = Instant::now();
    let v = run(&mut c, &["BLPOP", "nothing", "0.2"])
        .await
        .expect("blpop");
    let took = started.elapsed();
    assert_eq!(v, Value::Nil, "a timed-out BLPOP answers a null array");
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(900),
        "{took:?}"
    );
    let v = run(
        &mut c,
        &["BLMOVE", "nothing", "dst", "LEFT", "RIGHT", "0.05"],
    )
    .await
    .expect("blmove");
    assert_eq!(v, Value::Nil);
    // 0: no timeout at all.
    let mut admin = connect(&s).await;
    let forever = blocked(connect(&s).await, &["BZPOPMIN", "z", "0"]);
    until_blocked(&mut admin, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!forever.is_finished(), "still waiting");
    run(&mut admin, &["ZADD", "z", "2", "b", "1", "a"])
        .await
        .expect("zadd");
    let got = forever.await.expect("task");
    assert!(got.contains("\"z\"") && got.contains("\"a\""), "{got}");
    assert!(
        run(&mut c, &["BLPOP", "k", "-1"]).await.is_err(),
        "a negative timeout is refused"
    );
    assert!(run(&mut c, &["BLPOP", "k", "x"]).await.is_err());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_from_multi_and_store_commands_wake_blocked_clients() {
    let s = TestServer::start().await;
    let mut admin = connect(&s).await;
    let by_multi = blocked(connect(&s).await, &["BRPOP", "m", "5"]);
    until_blocked(&mut admin, 1).await;
    let mut tx = redis::pipe();
    tx.atomic()
        .cmd("SET")
        .arg("x")
        .arg("1")
        .cmd("LPUSH")
        .arg("m")
        .arg("from-multi");
    let _: Value = tx.query_async(&mut admin).await.expect("exec");
    assert!(by_multi.await.expect("task").contains("from-multi"));

    let by_rename = blocked(
        connect(&s).await,
        &["BLMOVE", "dest", "moved", "RIGHT", "LEFT", "5"],
    );
    until_blocked(&mut admin, 1).await;
    run(&mut admin, &["RPUSH", "src", "r1"])
        .await
        .expect("push");
    run(&mut admin, &["RENAME", "src", "dest"])
        .await
        .expect("rename");
    assert!(by_rename.await.expect("task").contains("r1"));
    assert_eq!(
        text(
            &run(&mut admin, &["LRANGE", "moved", "0", "-1"])
                .await
                .expect("lrange")
        ),
        "array([bulk-string('\"r1\"')])"
    );

    let by_store = blocked(
        connect(&s).await,
        &["BZMPOP", "5", "1", "zs", "MAX", "COUNT", "2"],
    );
    until_blocked(&mut admin, 1).await;
    run(&mut admin, &["ZADD", "in", "1", "a", "2", "b", "3", "c"])
        .await
        .expect("zadd");
    run(&mut admin, &["ZUNIONSTORE", "zs", "1", "in"])
        .await
        .expect("zunionstore");
    let got = by_store.await.expect("task");
    assert!(
        got.contains("\"c\"") && got.contains("\"b\"") && !got.contains("\"a\""),
        "{got}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_unblock_ends_a_wait_and_a_gone_client_leaves_nothing() {
    let s = TestServer::start().await;
    let mut admin = connect(&s).await;
    let mut victim = connect(&s).await;
    let id = match run(&mut victim, &["CLIENT", "ID"]).await.expect("id") {
        Value::Int(n) => n.to_string(),
        other => panic!("{other:?}"),
    };
    let id: &'static str = Box::leak(id.into_boxed_str());
    let waiting = blocked(victim.clone(), &["BLPOP", "u", "0"]);
    until_blocked(&mut admin, 1).await;
    let list = text(&run(&mut admin, &["CLIENT", "LIST"]).await.expect("list"));
    assert!(list.contains("flags=b"), "{list}");
    assert_eq!(
        run(&mut admin, &["CLIENT", "UNBLOCK", id])
            .await
            .expect("unblock"),
        Value::Int(1)
    );
    assert_eq!(waiting.await.expect("task"), "nil");
    assert_eq!(
        run(&mut admin, &["CLIENT", "UNBLOCK", id])
            .await
            .expect("unblock"),
        Value::Int(0)
    );
    let waiting = blocked(victim.clone(), &["BLPOP", "u", "0"]);
    until_blocked(&mut admin, 1).await;
    run(&mut admin, &["CLIENT", "UNBLOCK", id, "ERROR"])
        .await
        .expect("unblock");
    assert!(waiting.await.expect("task").contains("UNBLOCKED"));

    // A client that disconnects while blocked: gone from the queues, and a later push is kept.
    {
        let mut raw = tokio::net::TcpStream::connect(s.resp)
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(
            &mut raw,
            b"*3\r\n$5\r\nBLPOP\r\n$4\r\ngone\r\n$1\r\n0\r\n",
        )
        .await
        .expect("send");
        until_blocked(&mut admin, 1).await;
    }
    until_blocked(&mut admin, 0).await;
    run(&mut admin, &["RPUSH", "gone", "kept"])
        .await
        .expect("push");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        run(&mut admin, &["LLEN", "gone"]).await.expect("llen"),
        Value::Int(1)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inside_multi_nothing_blocks() {
    let s = TestServer::start().await;
    let mut c = connect(&s).await;
    let mut tx = redis::pipe();
    tx.atomic()
        .cmd("BLPOP")
        .arg("empty")
        .arg("0")
        .cmd("BZPOPMAX")
        .arg("empty2")
        .arg("0")
        .cmd("BLMOVE")
        .arg("empty")
        .arg("x")
        .arg("LEFT")
        .arg("LEFT")
        .arg("0")
        .cmd("RPUSH")
        .arg("full")
        .arg("1")
        .cmd("BRPOP")
        .arg("full")
        .arg("0");
    let replies: Vec<Value> = tx.query_async(&mut c).await.expect("exec");
    assert_eq!(
        text(&Value::Array(replies)),
        "array([nil, nil, nil, int(1), array([bulk-string('\"full\"'), bulk-string('\"1\"')])])"
    );
    s.stop().await;
}
