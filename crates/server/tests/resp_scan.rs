//! SCAN over RESP while other clients write: every key present for the whole iteration comes
//! back. As in Redis, a key may come back more than once: here, when its shard's table grew
//! between two calls and the shard was walked again.

mod common;

use std::collections::HashMap;

use common::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn scan_returns_every_stable_key_while_others_write() {
    let s = TestServer::start().await;
    let client = redis::Client::open(format!("redis://{}/", s.resp).as_str()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.set(format!("stable:{i}"), i).ignore();
    }
    let _: () = pipe.query_async(&mut con).await.expect("load");

    let stop = tokio_util::sync::CancellationToken::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = client.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut con = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect");
                let mut n = 0u64;
                while !stop.is_cancelled() && n < 20_000 {
                    n += 1;
                    let key = format!("churn:{w}:{n}");
                    let _: () = redis::cmd("SET")
                        .arg(&key)
                        .arg(n)
                        .query_async(&mut con)
                        .await
                        .expect("set");
                    if n.is_multiple_of(2) {
                        let _: i64 = redis::cmd("DEL")
                            .arg(format!("churn:{w}:{}", n - 1))
                            .query_async(&mut con)
                            .await
                            .expect("del");
                    }
                }
            })
        })
        .collect();

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cursor: u64 = 0;
    let mut calls = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("stable:*")
            .arg("COUNT")
            .arg(25)
            .query_async(&mut con)
            .await
            .expect("scan");
        for k in keys {
            *seen.entry(k).or_default() += 1;
        }
        calls += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(calls < 100_000, "SCAN never finished");
    }
    stop.cancel();
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(seen.len(), 3000, "every stable key, and only those");
    // A shard is walked again only when its table grew, which at most doubles it: a handful of
    // times over this test's keys, never once per call.
    let most = seen.values().max().copied().unwrap_or_default();
    assert!(most <= 8, "a key came back {most} times");
    assert!(calls > 10, "COUNT was not respected: {calls} calls");
    s.stop().await;
}
