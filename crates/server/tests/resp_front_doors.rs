//! One keyspace behind every front door: what RESP writes HTTP reads, versions agree, expiry is
//! seen everywhere at once (HTTP, RESP and the line protocol), and concurrent RESP clients lose no
//! update.

mod common;

use std::time::Duration;

use common::{TestServer, client};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one inline command and reads one reply line (enough for simple and integer replies and
/// for bulk replies that fit in one read).
async fn cmd(tcp: &mut TcpStream, line: &str) -> String {
    tcp.write_all(format!("{line}\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("reply in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn resp_writes_are_http_resources_with_the_same_versions() {
    let s = TestServer::start().await;
    let http = client();
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    assert_eq!(cmd(&mut tcp, "SET shared hello").await, "+OK\r\n");
    let r = http.get(s.url("/kvs/shared")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let v1 = r.headers()["etag"].to_str().expect("etag").to_owned();
    assert_eq!(r.text().await.expect("body"), "hello");

    // A RESP write moves the version: an HTTP writer holding the old ETag is refused.
    assert_eq!(cmd(&mut tcp, "APPEND shared !").await, ":6\r\n");
    let r = http
        .put(s.url("/kvs/shared"))
        .header("if-match", &v1)
        .body("stale")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    // And what HTTP writes, RESP reads, content type aside.
    let r = http
        .put(s.url("/kvs/counter"))
        .header("content-type", "text/plain")
        .body("41")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(cmd(&mut tcp, "INCR counter").await, ":42\r\n");
    let r = http.get(s.url("/kvs/counter")).send().await.expect("get");
    assert_eq!(
        r.headers()["content-type"],
        "text/plain",
        "INCR keeps the content type"
    );
    assert_eq!(r.text().await.expect("body"), "42");
    assert_eq!(cmd(&mut tcp, "DEL counter shared").await, ":2\r\n");
    assert_eq!(
        http.get(s.url("/kvs/counter"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_is_visible_within_milliseconds_on_both_doors() {
    let s = TestServer::start().await;
    let http = client();
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    assert_eq!(cmd(&mut tcp, "SET brief x PX 150").await, "+OK\r\n");
    let ttl = cmd(&mut tcp, "PTTL brief").await;
    let left: i64 = ttl.trim_start_matches(':').trim().parse().expect("integer");
    assert!((1..=150).contains(&left), "{ttl}");
    assert_eq!(
        http.get(s.url("/kvs/brief"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(160)).await;
    assert_eq!(cmd(&mut tcp, "GET brief").await, "$-1\r\n");
    assert_eq!(cmd(&mut tcp, "EXISTS brief").await, ":0\r\n");
    assert_eq!(
        http.get(s.url("/kvs/brief"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );

    // An HTTP TTL is a RESP TTL.
    http.put(s.url("/kvs/lease?ttl=30"))
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(cmd(&mut tcp, "TTL lease").await, ":30\r\n");
    assert_eq!(cmd(&mut tcp, "PERSIST lease").await, ":1\r\n");
    assert!(
        !http
            .get(s.url("/kvs/lease"))
            .send()
            .await
            .expect("get")
            .headers()
            .contains_key("expires")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_incr_loses_nothing() {
    let s = TestServer::start().await;
    let clients = 16;
    let each = 200;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let addr = s.resp;
            tokio::spawn(async move {
                let mut tcp = TcpStream::connect(addr).await.expect("connect");
                // Pipelined in batches of 20, to mix pipelining with concurrency.
                let batch = "INCR hits\r\n".repeat(20);
                let mut seen = Vec::new();
                for _ in 0..each / 20 {
                    tcp.write_all(batch.as_bytes()).await.expect("write");
                    let mut got = String::new();
                    while got.matches("\r\n").count() < 20 {
                        let mut buf = [0u8; 1024];
                        let n = tcp.read(&mut buf).await.expect("read");
                        assert!(n > 0, "closed");
                        got.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                    seen.extend(got.split("\r\n").filter(|l| !l.is_empty()).map(|l| {
                        l.strip_prefix(':')
                            .and_then(|n| n.parse::<i64>().ok())
                            .expect("integer reply")
                    }));
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all.sort_unstable();
    let want: Vec<i64> = (1..=(clients * each) as i64).collect();
    assert_eq!(all, want, "every INCR saw a distinct value, none lost");
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    assert_eq!(
        cmd(&mut tcp, "GET hits").await,
        format!("${}\r\n{}\r\n", 4, clients * each)
    );
    s.stop().await;
}
