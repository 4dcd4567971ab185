//! The Rust `redis` crate against kvs, in RESP2 and RESP3, as an application would use it.

mod common;

use common::TestServer;
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread")]
async fn the_redis_crate_works_unmodified() {
    let s = TestServer::start().await;
    for protocol in ["", "?protocol=resp3"] {
        let url = format!("redis://{}/{}", s.resp, protocol);
        let client = redis::Client::open(url.as_str()).expect("client");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut con)
            .await
            .expect("flushall");

        let _: () = con.set("name", "kvs").await.expect("set");
        let name: String = con.get("name").await.expect("get");
        assert_eq!(name, "kvs");
        let missing: Option<String> = con.get("missing").await.expect("get");
        assert_eq!(missing, None);
        let n: i64 = con.incr("counter", 5).await.expect("incrby");
        assert_eq!(n, 5);
        let _: () = con.mset(&[("a", "1"), ("b", "2")]).await.expect("mset");
        let values: Vec<Option<String>> = con.mget(&["a", "b", "c"]).await.expect("mget");
        assert_eq!(values, vec![Some("1".into()), Some("2".into()), None]);
        let _: () = con.set_ex("temp", "x", 100).await.expect("setex");
        let ttl: i64 = con.ttl("temp").await.expect("ttl");
        assert!((99..=100).contains(&ttl), "{ttl}");
        let removed: i64 = con.del(&["a", "b", "nope"]).await.expect("del");
        assert_eq!(removed, 2);
        let bytes: Vec<u8> = vec![0, 159, 146, 150, 255];
        let _: () = con.set("binary", bytes.clone()).await.expect("set binary");
        let back: Vec<u8> = con.get("binary").await.expect("get binary");
        assert_eq!(back, bytes);

        // An atomic pipeline is MULTI/EXEC underneath.
        let (a, b): (i64, i64) = redis::pipe()
            .atomic()
            .incr("tx", 1)
            .incr("tx", 1)
            .query_async(&mut con)
            .await
            .expect("transaction");
        assert_eq!((a, b), (1, 2));

        // Errors come back as errors with Redis's text, and the connection goes on.
        let err = con
            .incr::<_, _, i64>("name", 1)
            .await
            .expect_err("INCR on a string");
        assert!(err.to_string().contains("not an integer"), "{err}");
        let pong: String = redis::cmd("PING")
            .query_async(&mut con)
            .await
            .expect("ping");
        assert_eq!(pong, "PONG");
    }
    s.stop().await;
}
