//! Pub/sub and keyspace notifications over real sockets: raw RESP frames, redis-cli and the
//! Python `redis` package (which `.ci/run` installs).

mod common;

use std::process::Stdio;
use std::time::Duration;

use bytes::BytesMut;
use common::TestServer;
use kvs_protocol::resp::{Frame, read_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A RESP connection that sends commands and reads frames one at a time.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect(s: &TestServer) -> Self {
        Self {
            stream: TcpStream::connect(s.resp).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, argv: &[&str]) {
        let mut out = format!("*{}\r\n", argv.len());
        for a in argv {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.stream.write_all(out.as_bytes()).await.expect("send");
    }

    /// The next frame, within 5 s.
    async fn read(&mut self) -> Frame {
        self.try_read(Duration::from_secs(5))
            .await
            .expect("a frame within 5 s")
    }

    /// The next frame, if one arrives within `wait`.
    async fn try_read(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((frame, used)) = read_frame(&self.buf).expect("valid RESP") {
                let _ = self.buf.split_to(used);
                return Some(frame);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .ok()?
                .expect("read");
            assert!(n > 0, "the server closed the connection");
        }
    }

    async fn call(&mut self, argv: &[&str]) -> Frame {
        self.send(argv).await;
        self.read().await
    }
}

/// A frame's strings and numbers, flattened, for comparing with `["message", "ch", "hi"]`.
fn words(frame: &Frame) -> Vec<String> {
    match frame {
        Frame::Array(items) | Frame::Push(items) => items.iter().flat_map(words).collect(),
        Frame::Bulk(b) => vec![String::from_utf8_lossy(b).into_owned()],
        Frame::Simple(s) | Frame::Error(s) => vec![s.clone()],
        Frame::Integer(n) => vec![n.to_string()],
        Frame::Null => vec!["(nil)".into()],
        other => vec![format!("{other:?}")],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_get_messages_in_resp2_and_as_push_frames_in_resp3() {
    let s = TestServer::start().await;
    let mut sub2 = Raw::connect(&s).await;
    let mut sub3 = Raw::connect(&s).await;
    let mut publisher = Raw::connect(&s).await;
    assert!(matches!(sub3.call(&["HELLO", "3"]).await, Frame::Map(_)));
    sub2.send(&["SUBSCRIBE", "news", "sport"]).await;
    assert_eq!(words(&sub2.read().await), ["subscribe", "news", "1"]);
    assert_eq!(words(&sub2.read().await), ["subscribe", "sport", "2"]);
    let confirm = sub3.call(&["PSUBSCRIBE", "n[ae]ws*"]).await;
    assert!(matches!(confirm, Frame::Push(_)), "{confirm:?}");
    assert_eq!(words(&confirm), ["psubscribe", "n[ae]ws*", "1"]);

    assert_eq!(
        publisher.call(&["PUBLISH", "news", "hello"]).await,
        Frame::Integer(2)
    );
    let message = sub2.read().await;
    assert!(matches!(message, Frame::Array(_)));
    assert_eq!(words(&message), ["message", "news", "hello"]);
    let pmessage = sub3.read().await;
    assert!(matches!(pmessage, Frame::Push(_)));
    assert_eq!(words(&pmessage), ["pmessage", "n[ae]ws*", "news", "hello"]);

    // RESP2's subscribed mode allows only the pub/sub commands, PING, QUIT and RESET.
    assert_eq!(
        words(&sub2.call(&["GET", "k"]).await),
        [
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ]
    );
    assert_eq!(words(&sub2.call(&["PING", "x"]).await), ["pong", "x"]);
    // RESP3 mixes other commands in.
    assert_eq!(
        sub3.call(&["SET", "k", "v"]).await,
        Frame::Simple("OK".into())
    );

    assert_eq!(
        words(&publisher.call(&["PUBSUB", "NUMSUB", "news", "none"]).await),
        ["news", "1", "none", "0"]
    );
    assert_eq!(
        publisher.call(&["PUBSUB", "NUMPAT"]).await,
        Frame::Integer(1)
    );
    let mut channels = words(&publisher.call(&["PUBSUB", "CHANNELS"]).await);
    channels.sort();
    assert_eq!(channels, ["news", "sport"]);

    sub2.send(&["UNSUBSCRIBE"]).await;
    let mut left = [words(&sub2.read().await), words(&sub2.read().await)];
    left.sort();
    assert_eq!(left[0][0], "unsubscribe");
    assert_eq!(sub2.call(&["GET", "k"]).await, Frame::Bulk("v".into()));
    assert_eq!(
        publisher.call(&["PUBLISH", "sport", "goal"]).await,
        Frame::Integer(0)
    );

    // Shard channels are a namespace of their own.
    let mut shard = Raw::connect(&s).await;
    assert_eq!(
        words(&shard.call(&["SSUBSCRIBE", "orders"]).await),
        ["ssubscribe", "orders", "1"]
    );
    assert_eq!(
        publisher.call(&["PUBLISH", "orders", "x"]).await,
        Frame::Integer(0)
    );
    assert_eq!(
        publisher.call(&["SPUBLISH", "orders", "o1"]).await,
        Frame::Integer(1)
    );
    assert_eq!(words(&shard.read().await), ["smessage", "orders", "o1"]);
    assert_eq!(
        words(&publisher.call(&["PUBSUB", "SHARDNUMSUB", "orders"]).await),
        ["orders", "1"]
    );
    // CLIENT LIST shows subscriptions (CLIENT itself is refused in subscribed mode); RESET ends
    // them.
    let list = words(&publisher.call(&["CLIENT", "LIST"]).await).join(" ");
    assert!(list.contains("flags=P db=0 sub=0 psub=0 ssub=1 "), "{list}");
    assert_eq!(shard.call(&["RESET"]).await, Frame::Simple("RESET".into()));
    let info = words(&shard.call(&["CLIENT", "INFO"]).await).join(" ");
    assert!(info.contains("flags=N db=0 sub=0 psub=0 ssub=0 "), "{info}");
    assert_eq!(
        publisher.call(&["SPUBLISH", "orders", "o2"]).await,
        Frame::Integer(0)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_never_reads_is_cut_off_while_others_keep_receiving() {
    let s = TestServer::with(|c| {
        c.pubsub.client_output_buffer_limit = "256kb 0 0".into();
    })
    .await;
    // Never reads after subscribing: its socket buffers fill, then its mailbox.
    let mut stuck = Raw::connect(&s).await;
    stuck.call(&["SUBSCRIBE", "firehose"]).await;
    let mut reader = Raw::connect(&s).await;
    reader.call(&["SUBSCRIBE", "firehose"]).await;
    let mut publisher = Raw::connect(&s).await;
    let payload = "x".repeat(16 * 1024);
    // The reader keeps up: the publisher never gets more than 8 messages (128 KiB, half the
    // limit) ahead of it, however the machine schedules the two. The stuck one never reads.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = received.clone();
    let reading = tokio::spawn(async move {
        let mut got = 0;
        while got < 2000 {
            let frame = reader.read().await;
            assert_eq!(words(&frame)[0], "message");
            got += 1;
            progress.store(got, std::sync::atomic::Ordering::Release);
        }
        got
    });
    let mut cut_off = false;
    for sent in 0..2000 {
        while sent > received.load(std::sync::atomic::Ordering::Acquire) + 8 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let Frame::Integer(n) = publisher.call(&["PUBLISH", "firehose", &payload]).await else {
            panic!("PUBLISH answers an integer");
        };
        if n == 1 {
            cut_off = true;
        }
    }
    assert!(
        cut_off,
        "the stuck subscriber stopped counting as a receiver"
    );
    assert_eq!(
        reading.await.expect("reader"),
        2000,
        "the other got every message"
    );
    assert_eq!(s.engine.pubsub().disconnected(), 1);
    // Both subscriptions end: the cut-off one's and, once it hangs up, the reader's.
    let mut left = Vec::new();
    for _ in 0..100 {
        left = words(&publisher.call(&["PUBSUB", "NUMSUB", "firehose"]).await);
        if left == ["firehose", "0"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, ["firehose", "0"]);
    s.stop().await;
}

/// Reads `n` frames and gives their words, each joined by spaces.
async fn messages(sub: &mut Raw, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(words(&sub.read().await).join(" "));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn keyspace_events_come_from_every_door_including_expiry_and_eviction() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(&s).await;
    assert_eq!(
        admin
            .call(&["CONFIG", "SET", "notify-keyspace-events", "KEA"])
            .await,
        Frame::Simple("OK".into())
    );
    assert_eq!(
        words(
            &admin
                .call(&["CONFIG", "GET", "notify-keyspace-events"])
                .await
        ),
        ["notify-keyspace-events", "AKE"]
    );
    let mut sub = Raw::connect(&s).await;
    sub.call(&["PSUBSCRIBE", "__keyevent@0__:*"]).await;

    // RESP
    admin.call(&["SET", "r", "1", "EX", "100"]).await;
    admin.call(&["INCRBY", "r", "2"]).await;
    admin.call(&["RENAME", "r", "r2"]).await;
    let e =
        |event: &str, key: &str| format!("pmessage __keyevent@0__:* __keyevent@0__:{event} {key}");
    assert_eq!(
        messages(&mut sub, 5).await,
        [
            e("set", "r"),
            e("expire", "r"),
            e("incrby", "r"),
            e("rename_from", "r"),
            e("rename_to", "r2")
        ]
    );
    // HTTP: a PUT is a set, a DELETE a del.
    let http = common::client();
    http.put(s.url("/kvs/h"))
        .body("v")
        .send()
        .await
        .expect("put");
    http.delete(s.url("/kvs/h")).send().await.expect("delete");
    assert_eq!(messages(&mut sub, 2).await, [e("set", "h"), e("del", "h")]);
    // The line protocol.
    common::line_request(&s, "cmd=create | key=l | body=v").await;
    common::line_request(&s, "cmd=delete | key=l").await;
    assert_eq!(messages(&mut sub, 2).await, [e("set", "l"), e("del", "l")]);
    // Expiry, by the background sweep.
    admin.call(&["SET", "t", "v", "PX", "50"]).await;
    assert_eq!(
        messages(&mut sub, 3).await,
        [e("set", "t"), e("expire", "t"), e("expired", "t")]
    );
    // Eviction, under a memory limit (of the one key there is: FLUSHALL raises no events).
    admin.call(&["FLUSHALL"]).await;
    admin
        .call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        .await;
    admin.call(&["SET", "victim", "v"]).await;
    assert_eq!(messages(&mut sub, 1).await, [e("set", "victim")]);
    admin.call(&["CONFIG", "SET", "maxmemory", "1"]).await;
    assert_eq!(messages(&mut sub, 1).await, [e("evicted", "victim")]);
    admin.call(&["CONFIG", "SET", "maxmemory", "0"]).await;

    // Masks: only expiry events, and only on the keyspace channel.
    admin
        .call(&["CONFIG", "SET", "notify-keyspace-events", "Kx"])
        .await;
    let mut space = Raw::connect(&s).await;
    space.call(&["PSUBSCRIBE", "__keyspace@0__:*"]).await;
    admin.call(&["SET", "quiet", "v", "PX", "30"]).await;
    assert_eq!(
        messages(&mut space, 1).await,
        ["pmessage __keyspace@0__:* __keyspace@0__:quiet expired"]
    );
    assert!(
        sub.try_read(Duration::from_millis(200)).await.is_none(),
        "no keyevent messages under Kx"
    );
    admin
        .call(&["CONFIG", "SET", "notify-keyspace-events", ""])
        .await;
    admin.call(&["SET", "silent", "v"]).await;
    assert!(space.try_read(Duration::from_millis(200)).await.is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn channel_permissions_are_checked_as_redis_checks_them() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(&s).await;
    admin
        .call(&[
            "ACL",
            "SETUSER",
            "reader",
            "on",
            ">pw",
            "resetchannels",
            "&news.*",
            "+@all",
            "~*",
        ])
        .await;
    let mut c = Raw::connect(&s).await;
    assert_eq!(
        c.call(&["AUTH", "reader", "pw"]).await,
        Frame::Simple("OK".into())
    );
    let denied =
        "NOPERM this user has no permissions to access one of the channels used as arguments";
    assert_eq!(words(&c.call(&["PUBLISH", "secret", "x"]).await), [denied]);
    assert_eq!(
        words(&c.call(&["SUBSCRIBE", "news.a", "secret"]).await),
        [denied]
    );
    // A pattern must be one of the user's, literally.
    assert_eq!(words(&c.call(&["PSUBSCRIBE", "news.a*"]).await), [denied]);
    assert_eq!(
        words(&c.call(&["PSUBSCRIBE", "news.*"]).await),
        ["psubscribe", "news.*", "1"]
    );
    let log = words(&admin.call(&["ACL", "LOG", "1"]).await);
    assert!(log.contains(&"channel".to_owned()), "{log:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cli_subscribe_receives_what_is_published() {
    let s = TestServer::start().await;
    let port = s.resp.port().to_string();
    let mut child = tokio::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port, "SUBSCRIBE", "alerts"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-cli runs (install redis-tools; see .ci/run)");
    let mut publisher = Raw::connect(&s).await;
    // Publish until redis-cli is subscribed and has received one.
    let mut delivered = false;
    for _ in 0..100 {
        if publisher.call(&["PUBLISH", "alerts", "disk full"]).await == Frame::Integer(1) {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "redis-cli subscribed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.start_kill().expect("kill");
    let out = child.wait_with_output().await.expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("subscribe\nalerts\n1\nmessage\nalerts\ndisk full"),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_redis_package_pubsub_works_in_resp2_and_resp3() {
    let s = TestServer::start().await;
    common::run_python(&s, "pubsub_client.py", "python pubsub: all passed").await;
    s.stop().await;
}
