//! Limits and slow clients, spoken in raw bytes: oversized bodies are refused before they are
//! buffered, trickling clients are cut off, and the connection limit holds on every front door.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{TestServer, client};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes or `limit` passes; returns what arrived.
async fn read_until_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response head (up to the blank line).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("response in time")
            .expect("read");
        assert_eq!(
            n,
            1,
            "connection closed before a full response head: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.push(byte[0]);
    }
    String::from_utf8(out).expect("ascii head")
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_oversized_body_is_refused_before_it_is_sent() {
    let s = TestServer::with(|c| c.limits.max_value_size = 1024).await;
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    // Claims a gigabyte and sends none of it: the answer must not wait for (or buffer) the body.
    tcp.write_all(b"PUT /kvs/huge HTTP/1.1\r\nhost: kvs\r\ncontent-length: 1000000000\r\n\r\n")
        .await
        .expect("write");
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    let r = client().get(s.url("/kvs/huge")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_body_is_cut_off_at_the_limit() {
    let s = TestServer::with(|c| c.limits.max_value_size = 1024).await;
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    tcp.write_all(b"PUT /kvs/chunked HTTP/1.1\r\nhost: kvs\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .expect("write");
    // 2 KiB in 512-byte chunks, never finishing the body; the server answers once past 1 KiB.
    for _ in 0..4 {
        let mut chunk = b"200\r\n".to_vec();
        chunk.extend_from_slice(&[b'z'; 512]);
        chunk.extend_from_slice(b"\r\n");
        if tcp.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    let r = client()
        .get(s.url("/kvs/chunked"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "no partial write");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_trickles_headers_is_disconnected() {
    let s = TestServer::with(|c| c.limits.header_timeout = Duration::from_millis(500)).await;
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    let started = Instant::now();
    tcp.write_all(b"GET /kvs/slow HTTP/1.1\r\n")
        .await
        .expect("write");
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tcp.write_all(b"x-slow: y\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), tcp.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the trickling client was never cut off");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "cut off only after {took:?}");
    // The server is unharmed.
    let r = client()
        .get(s.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_never_finishes_gets_408() {
    let s = TestServer::with(|c| c.limits.body_timeout = Duration::from_millis(300)).await;
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    tcp.write_all(b"PUT /kvs/stalled HTTP/1.1\r\nhost: kvs\r\ncontent-length: 10\r\n\r\nab")
        .await
        .expect("write");
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 408 "), "{head}");
    let r = client()
        .get(s.url("/kvs/stalled"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_get_431() {
    let s = TestServer::start().await;
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    let mut request = b"GET /kvs/x HTTP/1.1\r\nhost: kvs\r\n".to_vec();
    for i in 0..400 {
        request.extend_from_slice(format!("x-filler-{i}: {}\r\n", "f".repeat(80)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let _ = tcp.write_all(&request).await;
    let (reply, _) = read_until_close(&mut tcp, Duration::from_secs(5)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
    s.stop().await;
}

/// How one front door is spoken to in the connection-limit tests.
struct Door {
    addr: SocketAddr,
    /// A request whose answer begins with `served`: proof the connection is being served.
    probe: &'static [u8],
    served: &'static [u8],
    /// A request that would store the key `refused`; a refused connection must never run it.
    write: &'static [u8],
    /// What a connection past the limit reads before the door closes it.
    refusal: &'static [u8],
}

/// With room for two connections on `door`: two are served, a third gets the door's refusal, is
/// closed, and its write never runs; once a served connection closes, a new one is served.
async fn the_connection_limit_holds(s: &TestServer, door: Door) {
    let served = |tcp: TcpStream| async move {
        let mut tcp = tcp;
        tcp.write_all(door.probe).await.ok()?;
        let mut answer = vec![0u8; door.served.len()];
        tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut answer))
            .await
            .ok()?
            .ok()?;
        (answer == door.served).then_some(tcp)
    };
    let mut held = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(door.addr).await.expect("connect");
        held.push(served(tcp).await.expect("served below the limit"));
    }
    for _ in 0..2 {
        let mut refused = TcpStream::connect(door.addr).await.expect("connect");
        let _ = refused.write_all(door.write).await;
        let (reply, closed) = read_until_close(&mut refused, Duration::from_secs(5)).await;
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(door.refusal)
        );
        assert!(closed, "a refused connection was left open");
    }

    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tcp = TcpStream::connect(door.addr).await.expect("connect");
        if let Some(tcp) = served(tcp).await {
            held.push(tcp);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed slot never became usable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.engine.version_of(b"refused"),
        None,
        "a refused connection's request ran"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_connections_past_the_limit_get_503_until_one_closes() {
    let s = TestServer::with(|c| c.limits.max_connections = 2).await;
    let door = Door {
        addr: s.addr,
        probe: b"GET /healthz HTTP/1.1\r\nhost: kvs\r\n\r\n",
        served: b"HTTP/1.1 200 ",
        write: b"PUT /kvs/refused HTTP/1.1\r\nhost: kvs\r\ncontent-length: 1\r\n\r\nx",
        refusal: b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
            connection: close\r\nretry-after: 1\r\ncontent-length: 82\r\n\r\n\
            {\"error\":\"too_many_connections\",\"message\":\"the server is at its connection limit\"}",
    };
    the_connection_limit_holds(&s, door).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resp_connections_past_the_limit_get_redis_words_until_one_closes() {
    let s = TestServer::with(|c| c.limits.max_connections = 2).await;
    let door = Door {
        addr: s.resp,
        probe: b"PING\r\n",
        served: b"+PONG\r\n",
        write: b"SET refused x\r\n",
        refusal: b"-ERR max number of clients reached\r\n",
    };
    the_connection_limit_holds(&s, door).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn line_connections_past_the_limit_get_code_8_until_one_closes() {
    let s = TestServer::with(|c| c.limits.max_connections = 2).await;
    let door = Door {
        addr: s.line,
        probe: b"cmd=create | key=present | body=here\n",
        served: b"here\n",
        write: b"cmd=create | key=refused | body=x\n",
        refusal: b"{\"error\":\"too many connections\",\"errorcode\":8,\"errors\":{}}\n",
    };
    the_connection_limit_holds(&s, door).await;
    s.stop().await;
}

/// Sends `pieces` one at a time, `gap` apart, stopping early if the server closes.
async fn trickle(stream: &mut TcpStream, pieces: &[&[u8]], gap: Duration) {
    for piece in pieces {
        if stream.write_all(piece).await.is_err() {
            return;
        }
        tokio::time::sleep(gap).await;
    }
}

/// A RESP or line-protocol request that has begun must be complete within the body timeout: a
/// client trickling one never-ending request is answered with a timeout and closed, while a
/// steady pipeline of complete requests running longer than the timeout is not cut.
#[tokio::test(flavor = "multi_thread")]
async fn resp_and_line_clients_that_trickle_are_disconnected() {
    let s = TestServer::with(|c| c.limits.body_timeout = Duration::from_millis(400)).await;
    for (addr, start, expect) in [
        (
            s.resp,
            &b"*2\r\n$3\r\nGET\r\n$100\r\n"[..],
            &b"-ERR request timeout"[..],
        ),
        (
            s.line,
            &b"cmd=get | key="[..],
            &b"{\"error\":\"request timeout"[..],
        ),
    ] {
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        let started = Instant::now();
        slow.write_all(start).await.expect("send");
        let (mut reader, mut writer) = slow.into_split();
        let dribble = tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if writer.write_all(b"x").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await;
            let _ = reader.read_to_end(&mut rest).await;
            rest
        });
        let got = dribble.await.expect("dribble");
        assert!(got.starts_with(expect), "{}", String::from_utf8_lossy(&got));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "cut off near the timeout"
        );
    }
    // A steady pipeline of whole requests with a partial one always in flight, for longer than
    // the timeout: every request is answered, none is cut.
    let mut steady = TcpStream::connect(s.resp).await.expect("connect");
    steady.set_nodelay(true).expect("nodelay");
    let ping = b"*1\r\n$4\r\nPING\r\n";
    // Each write ends one request and begins the next, so the buffer is never empty.
    let joined = [&ping[7..], &ping[..7]].concat();
    trickle(&mut steady, &[&ping[..7]], Duration::from_millis(50)).await;
    let mut sent = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        trickle(&mut steady, &[&joined], Duration::from_millis(100)).await;
        sent += 1;
    }
    let want = b"+PONG\r\n".repeat(sent);
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(Duration::from_secs(5), steady.read_exact(&mut got))
        .await
        .expect("all answered")
        .expect("read");
    assert_eq!(got, want);
    s.stop().await;
}

/// More headers than `limits.max_headers` get 431; as many as that are served.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_headers_get_431() {
    let s = TestServer::with(|c| c.limits.max_headers = 10).await;
    for (count, want) in [(8, "200"), (20, "431")] {
        let mut stream = TcpStream::connect(s.addr).await.expect("connect");
        let mut request = String::from("GET /healthz HTTP/1.1\r\nhost: kvs\r\n");
        for i in 0..count {
            request.push_str(&format!("x-extra-{i}: y\r\n"));
        }
        request.push_str("connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let head = read_head(&mut stream).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {want}")),
            "{count} headers: {head}"
        );
    }
    s.stop().await;
}

/// When all RESP clients together hold more than `maxmemory_clients`, the one holding the most
/// is disconnected first; the others go on, and INFO counts it.
#[tokio::test(flavor = "multi_thread")]
async fn past_maxmemory_clients_the_largest_client_goes_first() {
    let s = TestServer::with(|c| c.limits.maxmemory_clients = 48 << 20).await;
    // Two clients each begin a large SET and send part of its value.
    let begin = |size: usize| format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${size}\r\n").into_bytes();
    let mut big = TcpStream::connect(s.resp).await.expect("connect");
    let mut small = TcpStream::connect(s.resp).await.expect("connect");
    small.write_all(&begin(8 << 20)).await.expect("send");
    small.write_all(&vec![b'x'; 4 << 20]).await.expect("send");
    big.write_all(&begin(60 << 20)).await.expect("send");
    let chunk = vec![b'y'; 1 << 20];
    let mut cut = false;
    for _ in 0..58 {
        if big.write_all(&chunk).await.is_err() {
            cut = true;
            break;
        }
    }
    let (_, closed) = read_until_close(&mut big, Duration::from_secs(5)).await;
    assert!(cut || closed, "the largest client was not disconnected");
    // The smaller one finishes its request.
    small.write_all(&vec![b'x'; 4 << 20]).await.expect("send");
    small.write_all(b"\r\n").await.expect("send");
    let mut ok = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), small.read_exact(&mut ok))
        .await
        .expect("answered")
        .expect("read");
    assert_eq!(&ok, b"+OK\r\n");
    small.write_all(b"INFO stats\r\n").await.expect("send");
    let (info, _) = read_until_close(&mut small, Duration::from_millis(500)).await;
    assert!(
        String::from_utf8_lossy(&info).contains("evicted_clients:1"),
        "{}",
        String::from_utf8_lossy(&info)
    );
    s.stop().await;
}

/// `CLIENT NO-EVICT on` keeps a client out of that choice: the others go first, however small.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_no_evict_is_never_the_one_disconnected() {
    let s = TestServer::with(|c| c.limits.maxmemory_clients = 48 << 20).await;
    let begin = |size: usize| format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${size}\r\n").into_bytes();
    let mut big = TcpStream::connect(s.resp).await.expect("connect");
    big.write_all(b"*3\r\n$6\r\nCLIENT\r\n$8\r\nNO-EVICT\r\n$2\r\non\r\n")
        .await
        .expect("send");
    let mut ok = [0u8; 5];
    big.read_exact(&mut ok).await.expect("read");
    assert_eq!(&ok, b"+OK\r\n");
    let mut small = TcpStream::connect(s.resp).await.expect("connect");
    small.write_all(&begin(8 << 20)).await.expect("send");
    small.write_all(&vec![b'x'; 4 << 20]).await.expect("send");
    big.write_all(&begin(52 << 20)).await.expect("send");
    let chunk = vec![b'y'; 1 << 20];
    for _ in 0..52 {
        big.write_all(&chunk)
            .await
            .expect("the exempt client is not cut off");
    }
    big.write_all(b"\r\n").await.expect("send");
    tokio::time::timeout(Duration::from_secs(10), big.read_exact(&mut ok))
        .await
        .expect("answered")
        .expect("read");
    assert_eq!(&ok, b"+OK\r\n");
    let (_, closed) = read_until_close(&mut small, Duration::from_secs(5)).await;
    assert!(closed, "the smaller client, not exempt, was disconnected");
    s.stop().await;
}
