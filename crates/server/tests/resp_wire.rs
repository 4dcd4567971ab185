//! The Redis protocol in raw bytes: exact replies, pipelines split at every byte, RESP3,
//! protocol errors, limits.

mod common;

use std::time::Duration;

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until exactly `n` bytes have arrived (or fails after 5 s).
async fn read_exact_n(tcp: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut out))
        .await
        .expect("reply in time")
        .expect("read");
    out
}

/// Sends `request` and expects exactly `reply` back, with nothing after it.
async fn exchange(tcp: &mut TcpStream, request: &[u8], reply: &[u8]) {
    tcp.write_all(request).await.expect("write");
    let got = read_exact_n(tcp, reply.len()).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(reply),
        "for {}",
        String::from_utf8_lossy(request)
    );
}

/// Reads until the server closes the connection; what arrived.
async fn read_to_close(tcp: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out))
        .await
        .expect("closed in time")
        .expect("read");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn exact_replies_in_resp2_and_resp3() {
    let s = TestServer::start().await;
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    exchange(&mut tcp, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n").await;
    exchange(&mut tcp, b"PING hello\r\n", b"$5\r\nhello\r\n").await;
    exchange(
        &mut tcp,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\x00\xff\r\n",
        b"+OK\r\n",
    )
    .await;
    exchange(
        &mut tcp,
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"$3\r\nv\x00\xff\r\n",
    )
    .await;
    exchange(
        &mut tcp,
        b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n",
        b"$-1\r\n",
    )
    .await;
    exchange(&mut tcp, b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", b":1\r\n").await;
    exchange(
        &mut tcp,
        b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    exchange(
        &mut tcp,
        b"*3\r\n$4\r\nMGET\r\n$1\r\nk\r\n$1\r\nx\r\n",
        b"*2\r\n$3\r\nv\x00\xff\r\n$-1\r\n",
    )
    .await;
    exchange(
        &mut tcp,
        b"*2\r\n$3\r\nFOO\r\n$3\r\nbar\r\n",
        b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n",
    )
    .await;
    exchange(
        &mut tcp,
        b"*1\r\n$3\r\nGET\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    )
    .await;

    // HELLO 3 switches this connection to RESP3: maps, and `_` for null.
    tcp.write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).await.expect("read");
    assert_eq!(&head, b"%7\r\n");
    let mut rest = vec![0u8; 4096];
    let n = tcp.read(&mut rest).await.expect("read");
    assert!(String::from_utf8_lossy(&rest[..n]).contains("$5\r\nproto\r\n:3\r\n"));
    exchange(&mut tcp, b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", b"_\r\n").await;
    // Another connection still speaks RESP2.
    let mut other = TcpStream::connect(s.resp).await.expect("connect");
    exchange(&mut other, b"GET missing\r\n", b"$-1\r\n").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_split_at_every_byte_gets_every_reply_in_order() {
    let s = TestServer::start().await;
    let pipeline: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nPING\r\n*3\r\n$6\r\nAPPEND\r\n$3\r\nkey\r\n$1\r\n!\r\n*2\r\n$3\r\nDEL\r\n$3\r\nkey\r\n*2\r\n$6\r\nEXISTS\r\n$3\r\nkey\r\n";
    let replies: &[u8] = b"+OK\r\n$5\r\nvalue\r\n+PONG\r\n:6\r\n:1\r\n:0\r\n";
    for cut in 0..=pipeline.len() {
        let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
        tcp.write_all(&pipeline[..cut]).await.expect("write");
        tcp.flush().await.expect("flush");
        if cut > 0 && cut < pipeline.len() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tcp.write_all(&pipeline[cut..]).await.expect("write");
        let got = read_exact_n(&mut tcp, replies.len()).await;
        assert_eq!(got, replies, "split at byte {cut}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_errors_close_the_connection_with_redis_words() {
    let s = TestServer::start().await;
    for (request, error) in [
        (
            &b"*1\r\n$-5\r\n"[..],
            &b"-ERR Protocol error: invalid bulk length\r\n"[..],
        ),
        (
            b"*x\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n:1\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"SET \"unclosed\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ] {
        let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
        tcp.write_all(request).await.expect("write");
        assert_eq!(read_to_close(&mut tcp).await, error);
    }
    // The server is unharmed.
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    exchange(&mut tcp, b"PING\r\n", b"+PONG\r\n").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claimed_length_is_not_trusted() {
    let s = TestServer::with(|c| c.limits.max_value_size = 1024).await;
    // Within the limit but not yet sent: the server waits, holding only what arrived.
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    tcp.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\nabc")
        .await
        .expect("write");
    let mut probe = [0u8; 16];
    let waited = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut probe)).await;
    assert!(waited.is_err(), "the server answered an incomplete request");
    tcp.write_all(&[b'x'; 997]).await.expect("write");
    tcp.write_all(b"\r\n").await.expect("write");
    let got = read_exact_n(&mut tcp, 5).await;
    assert_eq!(got, b"+OK\r\n");
    // Past the value limit: refused at once.
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    tcp.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000000\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_to_close(&mut tcp).await,
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quit_answers_then_closes_and_the_client_limit_holds() {
    let s = TestServer::with(|c| c.limits.max_connections = 2).await;
    let mut a = TcpStream::connect(s.resp).await.expect("connect");
    a.write_all(b"PING\r\nQUIT\r\nPING\r\n")
        .await
        .expect("write");
    assert_eq!(read_to_close(&mut a).await, b"+PONG\r\n+OK\r\n");

    // `a` has closed, but its slot is given back only once its task ends, a moment after the
    // client sees the close: a connection in that moment may still be refused, so retry briefly.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut admitted = None;
        for _ in 0..40 {
            let mut t = TcpStream::connect(s.resp).await.expect("connect");
            t.write_all(b"PING\r\n").await.expect("write");
            if read_exact_n(&mut t, 7).await == b"+PONG\r\n" {
                admitted = Some(t);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        held.push(admitted.expect("admitted once the closed connection's slot is free"));
    }
    let mut third = TcpStream::connect(s.resp).await.expect("connect");
    assert_eq!(
        read_to_close(&mut third).await,
        b"-ERR max number of clients reached\r\n"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn select_and_connection_commands() {
    let s = TestServer::start().await;
    let mut tcp = TcpStream::connect(s.resp).await.expect("connect");
    exchange(&mut tcp, b"SELECT 0\r\n", b"+OK\r\n").await;
    exchange(
        &mut tcp,
        b"SELECT 1\r\n",
        b"-ERR DB index is out of range\r\n",
    )
    .await;
    exchange(
        &mut tcp,
        b"SELECT x\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    exchange(&mut tcp, b"CLIENT SETNAME worker-1\r\n", b"+OK\r\n").await;
    exchange(&mut tcp, b"CLIENT GETNAME\r\n", b"$8\r\nworker-1\r\n").await;
    exchange(
        &mut tcp,
        b"CLIENT SETNAME \"a b\"\r\n",
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )
    .await;
    exchange(&mut tcp, b"ECHO \"x y\"\r\n", b"$3\r\nx y\r\n").await;
    exchange(&mut tcp, b"TYPE nothing\r\n", b"+none\r\n").await;
    exchange(&mut tcp, b"DBSIZE\r\n", b":0\r\n").await;
    exchange(
        &mut tcp,
        b"HELLO 4\r\n",
        b"-NOPROTO unsupported protocol version\r\n",
    )
    .await;
    s.stop().await;
}
