//! The line protocol end to end, in raw bytes: every command, the seed's error lines and codes,
//! framing that values cannot break, and the seed's bugs fixed.

mod common;

use std::time::Duration;

use common::{TestServer, client};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn open(s: &TestServer) -> Self {
        let (r, w) = TcpStream::connect(s.line)
            .await
            .expect("connect")
            .into_split();
        Self {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    async fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.expect("write");
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(5), self.reader.read_line(&mut line))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(n > 0, "the connection closed");
        line
    }

    async fn ask(&mut self, request: &str) -> String {
        self.send(&format!("{request}\n")).await;
        self.line().await
    }
}

fn error(message: &str, code: u32) -> String {
    format!("{{\"error\":\"{message}\",\"errorcode\":{code},\"errors\":{{}}}}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_and_error() {
    let s = TestServer::start().await;
    let mut c = Conn::open(&s).await;
    assert_eq!(
        c.ask("cmd=get | key=1").await,
        error("key \\\"1\\\" not found", 10)
    );
    assert_eq!(
        c.ask("cmd=create | key=1 | body={\"name\":\"mob\"}").await,
        "{\"name\":\"mob\"}\n"
    );
    assert_eq!(c.ask("cmd=get | key=1").await, "{\"name\":\"mob\"}\n");
    assert_eq!(c.ask("  key=1|cmd=update  |  body=v2 ").await, "v2\n");
    // update upserts exactly like create, as the seed's server did.
    assert_eq!(c.ask("cmd=update | key=2 | body=x").await, "x\n");
    assert_eq!(c.ask("cmd=get | key=2").await, "x\n");
    assert_eq!(c.ask("cmd=create | key=1 | body=upsert").await, "upsert\n");
    assert_eq!(c.ask("cmd=delete | key=1").await, "upsert\n");
    // Deleting a missing key is the seed's "Error unknown", code 2.
    assert_eq!(c.ask("cmd=delete | key=1").await, error("Error unknown", 2));
    // An unknown command is an argument exception, code 8, including the interactive client's
    // terminator sent by mistake.
    assert_eq!(
        c.ask("cmd=frobnicate | key=1").await,
        error("unknown command \\\"frobnicate\\\"", 8)
    );
    assert_eq!(
        c.ask("cmd=stop ->").await,
        error("unknown command \\\"stop ->\\\"", 8)
    );
    assert_eq!(
        c.ask("cmd=frob").await,
        error("unknown command \\\"frob\\\"", 8)
    );
    // An empty line gets its own error line and the connection stays open.
    assert_eq!(
        c.ask("").await,
        error("argument exception: the line is empty", 8)
    );
    assert_eq!(
        c.ask("   \r").await,
        error("argument exception: the line is empty", 8)
    );
    assert_eq!(
        c.ask("cmd=get").await,
        error("argument exception: key is required", 8)
    );
    assert_eq!(
        c.ask("cmd=create | key=3").await,
        error("argument exception: body is required", 8)
    );
    assert_eq!(
        c.ask("key=3").await,
        error("argument exception: cmd is required", 8)
    );
    assert_eq!(
        c.ask("cmd=get | nonsense").await,
        error("argument exception: \\\"nonsense\\\" is not name=value", 8)
    );
    // After every error the connection is still open and working; CRLF works too.
    assert_eq!(
        c.ask("cmd=create | key=4 | body=still here\r").await,
        "still here\n"
    );
    // `=` inside a body is part of the body.
    assert_eq!(c.ask("cmd=create | key=eq | body=a=b==c").await, "a=b==c\n");
    // Several requests in one write get their replies in order.
    c.send("cmd=get|key=4\ncmd=get|key=eq\n\ncmd=get|key=none\n")
        .await;
    assert_eq!(c.line().await, "still here\n");
    assert_eq!(c.line().await, "a=b==c\n");
    assert_eq!(
        c.line().await,
        error("argument exception: the line is empty", 8)
    );
    assert_eq!(c.line().await, error("key \\\"none\\\" not found", 10));
    // stop answers with code 14 and closes.
    assert_eq!(
        c.ask("cmd=stop").await,
        error("stop: closing the connection", 14)
    );
    let mut rest = String::new();
    let n = c.reader.read_to_string(&mut rest).await.expect("read");
    assert_eq!(n, 0, "nothing after stop: {rest:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn values_with_line_breaks_never_break_framing() {
    let s = TestServer::start().await;
    let http = client();
    http.put(s.url("/kvs/multi"))
        .body("first\nsecond\r\nback\\slash|pipe")
        .send()
        .await
        .expect("put");
    let mut c = Conn::open(&s).await;
    assert_eq!(
        c.ask("cmd=get | key=multi").await,
        "first\\nsecond\\r\\nback\\\\slash|pipe\n"
    );
    // Escapes in a request body store the real bytes; `\|` is a literal pipe.
    assert_eq!(
        c.ask("cmd=create | key=esc | body=a\\nb\\|c\\\\d").await,
        "a\\nb|c\\\\d\n"
    );
    let stored = http
        .get(s.url("/kvs/esc"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("t");
    assert_eq!(stored, "a\nb|c\\d");
    // The next request on the same connection is unaffected.
    assert_eq!(c.ask("cmd=get | key=esc").await, "a\\nb|c\\\\d\n");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_last_line_without_newline_is_answered() {
    let s = TestServer::start().await;
    let mut tcp = TcpStream::connect(s.line).await.expect("connect");
    tcp.write_all(b"cmd=create | key=k | body=v\ncmd=get | key=k")
        .await
        .expect("write");
    tcp.shutdown().await.expect("half-close");
    let mut all = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut all))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(all, "v\nv\n");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_line_is_refused_and_closed() {
    let s = TestServer::with(|c| {
        c.limits.max_value_size = 100;
        c.limits.max_key_len = 10;
    })
    .await;
    let mut c = Conn::open(&s).await;
    assert_eq!(
        c.ask(&format!("cmd=create | key={} | body=x", "k".repeat(11)))
            .await,
        error("argument exception: key longer than 10 bytes", 8)
    );
    c.send(&"x".repeat(5000)).await;
    let reply = c.line().await;
    assert!(
        reply.contains("\"errorcode\":8") && reply.contains("exceeds"),
        "{reply}"
    );
    let mut rest = String::new();
    assert_eq!(c.reader.read_to_string(&mut rest).await.expect("read"), 0);
    s.stop().await;
}
