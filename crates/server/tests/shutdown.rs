//! Graceful shutdown: a request in flight when the stop comes is finished; then the server is gone.

mod common;

use std::time::Duration;

use common::TestServer;
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
