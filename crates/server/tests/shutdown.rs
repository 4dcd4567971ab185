//! Graceful shutdown: a request in flight when the stop comes is finished, on every front door,
//! while none of them accepts new connections; then the server is gone.

mod common;

use std::time::Duration;

use common::TestServer;
use common::gated_disk::gated_engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_request_finishes_and_new_connections_are_refused() {
    let s = TestServer::start().await;
    let addr = s.addr;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"PUT /kvs/last-words HTTP/1.1\r\nhost: kvs\r\ncontent-length: 10\r\n\r\nhello")
        .await
        .expect("write");
    // Let the server start reading the body, then ask it to stop while the body is incomplete.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(s.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "the server stopped with a request in flight"
    );
    tcp.write_all(b"world").await.expect("finish the body");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut reply))
        .await
        .expect("reply in time")
        .expect("read");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 201 "), "{reply}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("server stops after the request")
        .expect("stop task");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

/// Waits (up to 5 s) until connecting to `addr` is refused.
async fn until_refused(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} still accepts after the stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts nothing has arrived on `stream` yet (without consuming anything that has).
async fn assert_unanswered(stream: &mut TcpStream, door: &str) {
    let mut byte = [0u8; 1];
    let peeked = tokio::time::timeout(Duration::from_millis(100), stream.peek(&mut byte)).await;
    assert!(
        peeked.is_err(),
        "{door} answered before its write was durable"
    );
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
        .await
        .expect("reply in time")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_door_stops_accepting_and_finishes_the_write_in_flight() {
    let (engine, gate) = gated_engine();
    let s = TestServer::with_engine(engine).await;
    let (http, resp, line) = (s.addr, s.resp, s.line);
    let mut h = TcpStream::connect(http).await.expect("connect");
    let mut r = TcpStream::connect(resp).await.expect("connect");
    let mut l = TcpStream::connect(line).await.expect("connect");

    // Each door takes a write that cannot be answered until its fsync, which is held back.
    gate.set(true);
    h.write_all(b"PUT /kvs/h HTTP/1.1\r\nhost: kvs\r\ncontent-length: 1\r\n\r\nx")
        .await
        .expect("write");
    r.write_all(b"SET r 1\r\n").await.expect("write");
    l.write_all(b"cmd=create | key=l | body=y\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_unanswered(&mut h, "HTTP").await;
    assert_unanswered(&mut r, "RESP").await;
    assert_unanswered(&mut l, "the line protocol").await;

    let stopping = tokio::spawn(s.stop());
    for addr in [http, resp, line] {
        until_refused(addr).await;
    }
    assert!(
        !stopping.is_finished(),
        "the server stopped with writes in flight"
    );

    gate.set(false);
    let reply = read_to_close(&mut h).await;
    assert!(reply.starts_with("HTTP/1.1 201 "), "{reply}");
    assert_eq!(read_to_close(&mut r).await, "+OK\r\n");
    assert_eq!(read_to_close(&mut l).await, "y\n");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("server stops once the writes are answered")
        .expect("stop task");
}
