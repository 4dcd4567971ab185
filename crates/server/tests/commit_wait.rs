//! No answer to a write leaves before the log has made it durable: with `--fsync always` on a disk
//! whose fsync is held back, a write over any front door gets no reply, nor does anything
//! pipelined behind it; once the fsync completes, every held reply arrives, in order.

mod common;

use std::time::Duration;

use common::gated_disk::gated_engine;
use common::{TestServer, client};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Reads exactly `n` bytes, or `None` if they do not all arrive within `wait`.
async fn read_within(stream: &mut TcpStream, n: usize, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    match tokio::time::timeout(wait, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        Ok(Err(e)) => panic!("read: {e}"),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_is_answered_only_after_its_fsync() {
    let (engine, gate) = gated_engine();
    let s = TestServer::with_engine(engine).await;
    let mut writer = TcpStream::connect(s.resp).await.expect("connect");
    writer.write_all(b"SET before 1\r\n").await.expect("write");
    assert_eq!(
        read_within(&mut writer, 5, Duration::from_secs(5)).await,
        Some(b"+OK\r\n".to_vec())
    );

    gate.set(true);
    // A pipeline: a read, a write, a read. The write's reply (and those after it) must wait.
    writer
        .write_all(b"GET before\r\nSET k v\r\nGET k\r\n")
        .await
        .expect("write");
    let held = read_within(&mut writer, 1, Duration::from_millis(400)).await;
    assert_eq!(held, None, "a reply left before the fsync of the write");
    // The HTTP and line doors wait too.
    let http = tokio::spawn({
        let url = s.url("/kvs/h");
        async move {
            client()
                .put(url)
                .body("x")
                .send()
                .await
                .expect("put")
                .status()
        }
    });
    let line = tokio::spawn({
        let addr = s.line;
        async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (r, mut w) = stream.into_split();
            w.write_all(b"cmd=create | key=l | body=y\n")
                .await
                .expect("send");
            let mut reply = String::new();
            BufReader::new(r)
                .read_line(&mut reply)
                .await
                .expect("reply");
            reply
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !http.is_finished(),
        "HTTP answered a write before its fsync"
    );
    assert!(
        !line.is_finished(),
        "the line protocol answered before fsync"
    );

    gate.set(false);
    let want = b"$1\r\n1\r\n+OK\r\n$1\r\nv\r\n";
    assert_eq!(
        read_within(&mut writer, want.len(), Duration::from_secs(5))
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        Some(String::from_utf8_lossy(want).into_owned())
    );
    assert_eq!(http.await.expect("http").as_u16(), 201);
    assert_eq!(line.await.expect("line"), "y\n");
    s.stop().await;
}
