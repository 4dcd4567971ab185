//! Users and permissions over the line protocol: `cmd=auth`, code 21 until a connection has
//! authenticated (with short lines only), code 22 for a key or command the user may not use, and
//! the same user getting the same answer as over RESP and HTTP.

mod common;

use std::time::Duration;

use common::{Line, TestServer, client};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The error code of a JSON error line.
async fn code(line: &mut Line, request: &str) -> i64 {
    let reply = line.send(request).await;
    let v: serde_json::Value =
        serde_json::from_str(&reply).unwrap_or_else(|_| panic!("not an error line: {reply}"));
    v["errorcode"].as_i64().expect("a code")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_is_required_and_only_short_lines_come_before_it() {
    let s = TestServer::with(|c| c.security.requirepass = Some("s3cret".into())).await;
    let mut line = Line::connect(&s).await;
    assert_eq!(code(&mut line, "cmd=get | key=k").await, 21);
    assert_eq!(code(&mut line, "cmd=create | key=k | body=v").await, 21);
    assert_eq!(code(&mut line, "cmd=auth | body=wrong").await, 21);
    assert_eq!(
        code(&mut line, "cmd=auth | key=nobody | body=s3cret").await,
        21
    );
    assert_eq!(line.send("cmd=auth | body=s3cret").await, "OK");
    assert_eq!(line.send("cmd=create | key=k | body=v").await, "v");
    assert_eq!(line.send("cmd=get | key=k").await, "v");
    let mut named = Line::connect(&s).await;
    assert_eq!(
        named.send("cmd=auth | key=default | body=s3cret").await,
        "OK"
    );
    // Before authenticating, a line over 16 KiB closes the connection.
    let mut long = Line::connect(&s).await;
    let body = "x".repeat(20 * 1024);
    assert_eq!(code(&mut long, &format!("cmd=auth | body={body}")).await, 8);
    let mut rest = String::new();
    let n = long.reader.read_line(&mut rest).await.unwrap_or(0);
    assert_eq!(n, 0, "closed after the long line");
    // After it, long values are fine.
    assert_eq!(
        line.send(&format!("cmd=create | key=big | body={body}"))
            .await,
        body
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_user_gets_the_same_answer_on_every_door() {
    let s = TestServer::start().await;
    let mut admin = redis::Client::open(format!("redis://{}/", s.resp).as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    for args in [
        &["SETUSER", "alice", "on", ">pw", "~app:*", "+@read"][..],
        &["SETUSER", "writer", "on", ">pw", "%W~*", "+@all"][..],
    ] {
        let mut c = redis::cmd("ACL");
        for a in args {
            c.arg(*a);
        }
        let _: () = c.query_async(&mut admin).await.expect("ACL SETUSER");
    }
    let _: () = redis::cmd("MSET")
        .arg("app:1")
        .arg("one")
        .arg("other")
        .arg("two")
        .query_async(&mut admin)
        .await
        .expect("mset");

    let mut alice_line = Line::connect(&s).await;
    assert_eq!(
        alice_line.send("cmd=auth | key=alice | body=pw").await,
        "OK"
    );
    let mut alice_resp = redis::Client::open(format!("redis://alice:pw@{}/", s.resp).as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let http = client();
    // (line request, RESP request, HTTP method and path): allowed or not, alike on each door.
    for (line, resp, method, path, allowed) in [
        (
            "cmd=get | key=app:1",
            vec!["GET", "app:1"],
            "GET",
            "/kvs/app:1",
            true,
        ),
        (
            "cmd=get | key=other",
            vec!["GET", "other"],
            "GET",
            "/kvs/other",
            false,
        ),
        (
            "cmd=create | key=app:1 | body=x",
            vec!["SET", "app:1", "x"],
            "PUT",
            "/kvs/app:1",
            false,
        ),
        (
            "cmd=delete | key=app:1",
            vec!["DEL", "app:1"],
            "DELETE",
            "/kvs/app:1",
            false,
        ),
    ] {
        let reply = alice_line.send(line).await;
        let line_allowed = !reply.contains("\"errorcode\":22");
        let mut c = redis::cmd(resp[0]);
        for a in &resp[1..] {
            c.arg(*a);
        }
        let resp_reply: redis::RedisResult<redis::Value> = c.query_async(&mut alice_resp).await;
        let resp_allowed = match &resp_reply {
            Ok(_) => true,
            Err(e) => {
                assert!(e.to_string().contains("NOPERM"), "{e}");
                false
            }
        };
        let status = http
            .request(method.parse().expect("method"), s.url(path))
            .basic_auth("alice", Some("pw"))
            .body("x")
            .send()
            .await
            .expect("http")
            .status();
        let http_allowed = status != reqwest::StatusCode::FORBIDDEN;
        assert_eq!(
            (line_allowed, resp_allowed, http_allowed),
            (allowed, allowed, allowed),
            "{line} / {resp:?} / {method} {path}: {reply}"
        );
    }
    // A write-only pattern over the line protocol.
    let mut writer = Line::connect(&s).await;
    assert_eq!(writer.send("cmd=auth | key=writer | body=pw").await, "OK");
    assert_eq!(writer.send("cmd=update | key=w | body=1").await, "1");
    assert_eq!(code(&mut writer, "cmd=get | key=w").await, 22);
    // That refusal came only from the line door: its log entry names the connection's address.
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .arg("1")
        .query_async(&mut admin)
        .await
        .expect("log");
    let text = format!("{log:?}");
    assert!(text.contains("door=line addr=127.0.0.1:"), "{text}");
    // Deleting the user closes its line connections too.
    let mut c = redis::cmd("ACL");
    c.arg("DELUSER").arg("writer");
    let _: i64 = c.query_async(&mut admin).await.expect("deluser");
    writer
        .writer
        .write_all(b"cmd=get | key=w\n")
        .await
        .expect("send");
    let mut rest = String::new();
    let n = tokio::time::timeout(Duration::from_secs(5), writer.reader.read_line(&mut rest))
        .await
        .expect("answered or closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection of a deleted user closes: {rest}");
    s.stop().await;
}
