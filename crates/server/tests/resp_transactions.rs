//! MULTI/EXEC/DISCARD/WATCH: exact replies, atomicity under concurrent clients, and WATCH
//! noticing a change made over HTTP.

mod common;

use std::time::Duration;

use common::{TestServer, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn exchange(tcp: &mut TcpStream, request: &str, reply: &str) {
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut got = vec![0u8; reply.len()];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut got))
        .await
        .expect("reply in time")
        .expect("read");
    assert_eq!(String::from_utf8_lossy(&got), reply, "for {request:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_exec_discard_and_their_errors() {
    let s = TestServer::start().await;
    let mut t = TcpStream::connect(s.resp).await.expect("connect");
    exchange(&mut t, "EXEC\r\n", "-ERR EXEC without MULTI\r\n").await;
    exchange(&mut t, "DISCARD\r\n", "-ERR DISCARD without MULTI\r\n").await;
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "SET k 10\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "INCR k\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "PING\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "GET nothing\r\n", "+QUEUED\r\n").await;
    exchange(
        &mut t,
        "MULTI\r\n",
        "-ERR MULTI calls can not be nested\r\n",
    )
    .await;
    exchange(&mut t, "EXEC\r\n", "*4\r\n+OK\r\n:11\r\n+PONG\r\n$-1\r\n").await;

    // A command refused while queueing discards the whole transaction.
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "SET k 1\r\n", "+QUEUED\r\n").await;
    exchange(
        &mut t,
        "NOSUCH x\r\n",
        "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n",
    )
    .await;
    exchange(
        &mut t,
        "EXEC\r\n",
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;
    exchange(&mut t, "GET k\r\n", "$2\r\n11\r\n").await;

    // An unknown command with no arguments, as Redis's own multi.tcl sends it, and a wrong
    // number of arguments, both doom the block: EXEC runs nothing.
    for bad in [
        (
            "non-existing-command\r\n",
            "-ERR unknown command 'non-existing-command', with args beginning with: \r\n",
        ),
        (
            "NOSUCH\r\n",
            "-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
        ),
        (
            "GET\r\n",
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
    ] {
        exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
        exchange(&mut t, "SET k doomed\r\n", "+QUEUED\r\n").await;
        exchange(&mut t, bad.0, bad.1).await;
        exchange(&mut t, "SET k doomed2\r\n", "+QUEUED\r\n").await;
        exchange(
            &mut t,
            "EXEC\r\n",
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        )
        .await;
        exchange(&mut t, "GET k\r\n", "$2\r\n11\r\n").await;
    }

    // WATCH inside MULTI is refused but does not abort the block.
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(
        &mut t,
        "WATCH k\r\n",
        "-ERR WATCH inside MULTI is not allowed\r\n",
    )
    .await;
    exchange(&mut t, "SET w 1\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "EXEC\r\n", "*1\r\n+OK\r\n").await;

    // Errors at run time are answered in place; the rest still runs.
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "SET s abc\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "INCR s\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "APPEND s d\r\n", "+QUEUED\r\n").await;
    exchange(
        &mut t,
        "EXEC\r\n",
        "*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n:4\r\n",
    )
    .await;

    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "SET k discarded\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "DISCARD\r\n", "+OK\r\n").await;
    exchange(&mut t, "GET k\r\n", "$2\r\n11\r\n").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_aborts_when_http_changes_the_key() {
    let s = TestServer::start().await;
    let http = client();
    let mut t = TcpStream::connect(s.resp).await.expect("connect");
    exchange(&mut t, "SET balance 100\r\n", "+OK\r\n").await;

    exchange(&mut t, "WATCH balance\r\n", "+OK\r\n").await;
    let r = http
        .put(s.url("/kvs/balance"))
        .body("50")
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success());
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "SET balance 90\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "EXEC\r\n", "*-1\r\n").await;
    assert_eq!(
        http.get(s.url("/kvs/balance"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("t"),
        "50"
    );

    // Without a change in between, the same transaction goes through; EXEC ends the WATCH.
    exchange(&mut t, "WATCH balance\r\n", "+OK\r\n").await;
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "SET balance 40\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "EXEC\r\n", "*1\r\n+OK\r\n").await;
    http.put(s.url("/kvs/balance"))
        .body("30")
        .send()
        .await
        .expect("put");
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "SET balance 20\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "EXEC\r\n", "*1\r\n+OK\r\n").await;

    // Deleting, expiring or creating a watched key also counts as a change; UNWATCH forgets.
    exchange(&mut t, "WATCH balance absent\r\n", "+OK\r\n").await;
    http.put(s.url("/kvs/absent"))
        .body("now here")
        .send()
        .await
        .expect("put");
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "GET balance\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "EXEC\r\n", "*-1\r\n").await;
    exchange(&mut t, "WATCH balance\r\n", "+OK\r\n").await;
    http.delete(s.url("/kvs/balance"))
        .send()
        .await
        .expect("delete");
    exchange(&mut t, "UNWATCH\r\n", "+OK\r\n").await;
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "GET balance\r\n", "+QUEUED\r\n").await;
    exchange(&mut t, "EXEC\r\n", "*1\r\n$-1\r\n").await;
    // RESP3 answers an aborted EXEC with null.
    exchange(&mut t, "SET w 1\r\n", "+OK\r\n").await;
    t.write_all(b"HELLO 3\r\n").await.expect("write");
    let mut buf = vec![0u8; 4096];
    let _ = t.read(&mut buf).await.expect("hello reply");
    exchange(&mut t, "WATCH w\r\n", "+OK\r\n").await;
    http.put(s.url("/kvs/w"))
        .body("2")
        .send()
        .await
        .expect("put");
    exchange(&mut t, "MULTI\r\n", "+OK\r\n").await;
    exchange(&mut t, "EXEC\r\n", "_\r\n").await;
    s.stop().await;
}

/// Transfers between two counters in MULTI/EXEC blocks from many clients, while other clients
/// read both in one block: every read sees the same total, and nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn exec_blocks_are_atomic_under_concurrent_clients() {
    let s = TestServer::start().await;
    let mut setup = TcpStream::connect(s.resp).await.expect("connect");
    exchange(&mut setup, "MSET left 1000 right 1000\r\n", "+OK\r\n").await;
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let addr = s.resp;
            tokio::spawn(async move {
                let mut t = TcpStream::connect(addr).await.expect("connect");
                let (from, to) = if w % 2 == 0 {
                    ("left", "right")
                } else {
                    ("right", "left")
                };
                let block = format!("MULTI\r\nDECRBY {from} 3\r\nINCRBY {to} 3\r\nEXEC\r\n");
                for _ in 0..150 {
                    t.write_all(block.as_bytes()).await.expect("write");
                    let mut got = Vec::new();
                    while !got.ends_with(b"\r\n") || got.iter().filter(|&&b| b == b'\n').count() < 6
                    {
                        let mut buf = [0u8; 256];
                        let n = t.read(&mut buf).await.expect("read");
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    let text = String::from_utf8_lossy(&got);
                    assert!(
                        text.starts_with("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:"),
                        "{text}"
                    );
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let addr = s.resp;
            tokio::spawn(async move {
                let mut t = TcpStream::connect(addr).await.expect("connect");
                for _ in 0..300 {
                    t.write_all(b"MULTI\r\nGET left\r\nGET right\r\nEXEC\r\n")
                        .await
                        .expect("write");
                    let mut got = Vec::new();
                    while got.iter().filter(|&&b| b == b'\n').count() < 8 {
                        let mut buf = [0u8; 256];
                        let n = t.read(&mut buf).await.expect("read");
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    let text = String::from_utf8_lossy(&got);
                    let numbers: Vec<i64> = text
                        .split("\r\n")
                        .filter(|l| {
                            !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                        })
                        .map(|l| l.parse().expect("number"))
                        .collect();
                    assert_eq!(numbers.len(), 2, "{text}");
                    assert_eq!(
                        numbers[0] + numbers[1],
                        2000,
                        "a block saw half a transfer: {text}"
                    );
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.await.expect("client");
    }
    let mut t = TcpStream::connect(s.resp).await.expect("connect");
    // 3 even writers move left→right, 3 odd ones right→left, 150 times each: back to even.
    exchange(
        &mut t,
        "MGET left right\r\n",
        "*2\r\n$4\r\n1000\r\n$4\r\n1000\r\n",
    )
    .await;
    s.stop().await;
}
