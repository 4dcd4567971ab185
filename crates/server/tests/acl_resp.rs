//! Users and permissions over the Redis protocol: passwords, NOAUTH, WRONGPASS, NOPERM for
//! commands and keys (read and write patterns), the ACL commands and their log, MULTI, and the
//! limits on clients that have not authenticated. Where Redis's words are the contract, the same
//! requests go to a real redis-server in the same test and the answers must be the same.

mod common;

use std::time::Duration;

use common::TestServer;
use common::redis_server::redis_server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request as RESP, from words.
fn request(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    out
}

/// A raw RESP2 connection that reads whole replies as text.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: impl tokio::net::ToSocketAddrs) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Sends `words` and returns the reply, flattened to one line per element.
    async fn call(&mut self, words: &[&str]) -> String {
        self.stream.write_all(&request(words)).await.expect("send");
        self.reply().await
    }

    async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        self.element(&mut lines).await;
        lines.join("\n")
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return line;
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
            .await
            .expect("a reply within 5 s")
            .expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn element<'a>(
        &'a mut self,
        out: &'a mut Vec<String>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>> {
        Box::pin(async move {
            let line = self.line().await;
            let (kind, rest) = line.split_at(1);
            match kind {
                "*" => {
                    let n: i64 = rest.parse().expect("count");
                    for _ in 0..n.max(0) {
                        self.element(out).await;
                    }
                }
                "$" => {
                    let n: i64 = rest.parse().expect("length");
                    if n < 0 {
                        out.push("(nil)".into());
                        return;
                    }
                    while self.buf.len() < n as usize + 2 {
                        self.fill().await;
                    }
                    out.push(String::from_utf8_lossy(&self.buf[..n as usize]).into_owned());
                    self.buf.drain(..n as usize + 2);
                }
                _ => out.push(line),
            }
        })
    }

    /// Whether the server closed the connection (within a second).
    async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Runs each step on a kvs connection and a redis-server connection and compares the answers.
async fn same_answers(kvs: &mut Raw, redis: &mut Raw, steps: &[&[&str]]) {
    for step in steps {
        let ours = kvs.call(step).await;
        let theirs = redis.call(step).await;
        assert_eq!(ours, theirs, "{step:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_is_required_and_checked_as_redis_does() {
    let s = TestServer::with(|c| c.security.requirepass = Some("s3cret".into())).await;
    let redis = redis_server(&["--requirepass", "s3cret"]).await;
    let mut kvs = Raw::connect(s.resp).await;
    let mut theirs = Raw::connect(("127.0.0.1", redis.port)).await;
    same_answers(
        &mut kvs,
        &mut theirs,
        &[
            &["GET", "k"],
            &["SET", "k", "v"],
            &["ACL", "WHOAMI"],
            &["GET"],
            &["NOSUCH"],
            &["HELLO", "3"],
            &["AUTH", "wrong"],
            &["AUTH", "default", "wrong"],
            &["AUTH", "nobody", "s3cret"],
            &["AUTH", "a", "b", "c"],
            &["PING"],
            &["AUTH", "s3cret"],
            &["SET", "k", "v"],
            &["GET", "k"],
            &["ACL", "WHOAMI"],
            &["RESET"],
            &["GET", "k"],
            &["AUTH", "default", "s3cret"],
            &["GET", "k"],
            &["CONFIG", "SET", "requirepass", "n3w"],
            &["AUTH", "s3cret"],
            &["AUTH", "n3w"],
            &["CONFIG", "SET", "requirepass", "s3cret"],
        ],
    )
    .await;
    // HELLO authenticates and sets the name in one request.
    let mut hello = Raw::connect(s.resp).await;
    let answer = hello
        .call(&["HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "app"])
        .await;
    assert!(answer.contains("proto\n:2"), "{answer}");
    let list = hello.call(&["CLIENT", "LIST"]).await;
    assert!(
        list.contains("name=app") && list.contains("user=default"),
        "{list}"
    );
    let wrong = hello.call(&["HELLO", "2", "AUTH", "default", "nope"]).await;
    assert_eq!(
        wrong,
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    // The failures are in the log, with the user they tried.
    let log = kvs.call(&["ACL", "LOG"]).await;
    assert!(log.contains("reason\nauth"), "{log}");
    assert!(log.contains("username\nnobody"), "{log}");
    assert!(log.contains("object\nHELLO"), "{log}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unauthenticated_client_may_send_only_small_requests() {
    let s = TestServer::with(|c| c.security.requirepass = Some("pw".into())).await;
    let mut big = Raw::connect(s.resp).await;
    // It claims a huge request; it is refused at the header, before anything is allocated.
    big.stream
        .write_all(b"*2147483647\r\n$1\r\na\r\n")
        .await
        .expect("send");
    assert_eq!(
        big.reply().await,
        "-ERR Protocol error: unauthenticated multibulk length"
    );
    assert!(big.closed().await);
    let mut bulk = Raw::connect(s.resp).await;
    bulk.stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$16385\r\n")
        .await
        .expect("send");
    assert_eq!(
        bulk.reply().await,
        "-ERR Protocol error: unauthenticated bulk length"
    );
    assert!(bulk.closed().await);
    // Once authenticated, the usual limits apply.
    let mut ok = Raw::connect(s.resp).await;
    assert_eq!(ok.call(&["AUTH", "pw"]).await, "+OK");
    let pairs = [
        "MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6",
    ];
    assert_eq!(ok.call(&pairs).await, "+OK");
    let value = "x".repeat(20_000);
    assert_eq!(ok.call(&["SET", "big", &value]).await, "+OK");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_permissions_and_the_acl_commands_answer_as_redis_does() {
    let s = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut kvs = Raw::connect(s.resp).await;
    let mut theirs = Raw::connect(("127.0.0.1", redis.port)).await;
    same_answers(
        &mut kvs,
        &mut theirs,
        &[
            &[
                "ACL",
                "SETUSER",
                "alice",
                "on",
                ">secret",
                "~app:*",
                "+@read",
                "+@transaction",
            ],
            &[
                "ACL",
                "SETUSER",
                "bob",
                "on",
                "nopass",
                "%R~r:*",
                "%W~w:*",
                "+@all",
                "-flushall",
                "&news*",
            ],
            &["ACL", "SETUSER", "x"],
            &["ACL", "LIST"],
            &["ACL", "USERS"],
            &["ACL", "GETUSER", "alice"],
            &["ACL", "GETUSER", "bob"],
            &["ACL", "GETUSER", "nosuch"],
            &["ACL", "SETUSER", "y", "~*", "~foo"],
            &["ACL", "SETUSER", "y", "<nopw"],
            &["ACL", "SETUSER", "y", "#abc"],
            &["ACL", "SETUSER", "y", "+nosuch"],
            &["ACL", "SETUSER", "y", "+@nosuch"],
            &["ACL", "SETUSER", "y", "bogus"],
            &["ACL", "SETUSER", "y", "+config|get|appendonly"],
            &["ACL", "SETUSER", "y", "+config|asdf"],
            &["ACL", "SETUSER", "y", "+get|key1|key2"],
            &["ACL", "CAT", "NON_EXISTS", "NON_EXISTS2"],
            &["ACL", "GENPASS", "1", "2"],
            &["ACL", "LOG", "1", "2"],
            &["ACL", "SETUSER", "y", "on", "bogus"],
            &["ACL", "GETUSER", "y"],
            &["ACL", "SETUSER", "z", "+@all", "-@dangerous"],
            &[
                "ACL",
                "SETUSER",
                "w",
                "allcommands",
                "allkeys",
                "allchannels",
                "on",
                "nopass",
                "reset",
            ],
            &["ACL", "LIST"],
            &["ACL", "DELUSER", "default"],
            &["ACL", "DELUSER", "nosuch", "w"],
            &["ACL", "GENPASS", "0"],
            &["ACL", "GENPASS", "4097"],
            &["ACL", "CAT", "nosuch"],
            &["ACL", "DRYRUN", "nosuch", "get", "a"],
            &["ACL", "DRYRUN", "alice", "nosuch", "a"],
            &["ACL", "DRYRUN", "alice", "get"],
            &["ACL", "DRYRUN", "alice", "set", "app:1", "x"],
            &["ACL", "DRYRUN", "alice", "get", "other"],
            &["ACL", "DRYRUN", "alice", "get", "app:1"],
            &["ACL", "DRYRUN", "bob", "get", "w:1"],
            &["ACL", "DRYRUN", "bob", "set", "w:1", "x"],
            &["ACL", "DRYRUN", "bob", "set", "w:1", "x", "get"],
            &["ACL", "DRYRUN", "bob", "exists", "r:1", "w:1"],
            &["ACL", "SAVE"],
            &["ACL", "LOAD"],
            &["ACL", "LOG", "x"],
            &["AUTH", "alice", "secret"],
            &["ACL", "WHOAMI"],
            &["GET", "app:1"],
            &["GET", "other"],
            &["SET", "app:1", "x"],
            &["MGET", "app:1", "other"],
            &["MULTI"],
            &["GET", "app:1"],
            &["SET", "app:1", "x"],
            &["EXEC"],
            &["ACL", "SETUSER", "alice", "-exec"],
            &["EXEC"],
            &["AUTH", "bob", "anything"],
            &["SET", "w:1", "x"],
            &["GET", "w:1"],
            &["GET", "r:1"],
            &["SET", "r:1", "x"],
            &["INCR", "w:n"],
            &["FLUSHALL"],
        ],
    )
    .await;
    // The log holds the refusals, newest first, grouped, with the connection described.
    let log = kvs.call(&["ACL", "LOG", "1"]).await;
    assert!(
        log.starts_with(
            "count\n:1\nreason\ncommand\ncontext\ntoplevel\nobject\nflushall\nusername\nbob"
        ),
        "{log}"
    );
    assert!(log.contains("user=bob"), "{log}");
    let all = kvs.call(&["ACL", "LOG"]).await;
    assert!(
        all.contains("reason\nkey\ncontext\ntoplevel\nobject\nother\nusername\nalice"),
        "{all}"
    );
    assert!(
        all.contains("context\nmulti"),
        "the refusal inside MULTI: {all}"
    );
    assert_eq!(kvs.call(&["ACL", "LOG", "RESET"]).await, "+OK");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_reach_connected_clients() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.resp).await;
    let mut alice = Raw::connect(s.resp).await;
    assert_eq!(
        admin
            .call(&["ACL", "SETUSER", "alice", "on", ">pw", "~*", "+@all"])
            .await,
        "+OK"
    );
    assert_eq!(alice.call(&["AUTH", "alice", "pw"]).await, "+OK");
    let list = admin.call(&["CLIENT", "LIST"]).await;
    assert!(list.contains("user=alice"), "{list}");
    // Queued while allowed, refused at EXEC once the permission is gone; the rest still run.
    assert_eq!(alice.call(&["MULTI"]).await, "+OK");
    assert_eq!(alice.call(&["SET", "a", "1"]).await, "+QUEUED");
    assert_eq!(alice.call(&["GET", "a"]).await, "+QUEUED");
    assert_eq!(
        admin.call(&["ACL", "SETUSER", "alice", "-set"]).await,
        "+OK"
    );
    let exec = alice.call(&["EXEC"]).await;
    assert!(
        exec.starts_with("-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call."),
        "{exec}"
    );
    assert!(exec.ends_with("(nil)"), "GET still ran: {exec}");
    assert_eq!(
        alice.call(&["SET", "a", "1"]).await,
        "-NOPERM this user has no permissions to run the 'set' command"
    );
    // Deleting the user closes its connections.
    assert_eq!(admin.call(&["ACL", "DELUSER", "alice"]).await, ":1");
    assert!(alice.closed().await, "alice's connection stays open");
    assert_eq!(admin.call(&["PING"]).await, "+PONG");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_survive_a_restart_through_acl_save_and_a_broken_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users.acl");
    std::fs::write(&file, "user default on nopass ~* &* +@all\n").expect("write");
    let start =
        |file: std::path::PathBuf| TestServer::with(move |c| c.security.aclfile = Some(file));
    let s = start(file.clone()).await;
    let mut con = Raw::connect(s.resp).await;
    assert_eq!(
        con.call(&["ACL", "SETUSER", "carol", "on", ">x", "~c:*", "+get"])
            .await,
        "+OK"
    );
    assert_eq!(con.call(&["ACL", "SAVE"]).await, "+OK");
    let saved = std::fs::read_to_string(&file).expect("read");
    assert_eq!(
        saved,
        "user carol on #2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 ~c:* resetchannels -@all +get\nuser default on nopass ~* &* +@all\n"
    );
    // A broken file at ACL LOAD: an error naming the line, and the users stay as they were.
    std::fs::write(&file, "user carol on >x\nuser dave on bogus\n").expect("write");
    let refused = con.call(&["ACL", "LOAD"]).await;
    assert!(
        refused.starts_with("-ERR ") && refused.contains("users.acl:2: Syntax error."),
        "{refused}"
    );
    assert!(con.call(&["ACL", "USERS"]).await.contains("carol"));
    std::fs::write(&file, saved).expect("write");
    s.stop().await;

    let s = start(file.clone()).await;
    let mut carol = Raw::connect(s.resp).await;
    assert_eq!(carol.call(&["AUTH", "carol", "x"]).await, "+OK");
    assert_eq!(
        carol.call(&["SET", "c:1", "v"]).await,
        "-NOPERM this user has no permissions to run the 'set' command"
    );
    // ACL LOAD makes every user but default anew and closes their connections, as Redis does.
    let mut admin = Raw::connect(s.resp).await;
    assert_eq!(admin.call(&["ACL", "LOAD"]).await, "+OK");
    assert!(
        carol.closed().await,
        "carol's connection stays open after ACL LOAD"
    );
    assert_eq!(admin.call(&["PING"]).await, "+PONG");
    s.stop().await;

    // At startup a broken file stops the server with every bad line named.
    std::fs::write(&file, "user default on nopass +@all\nfoo\n").expect("write");
    let mut config = kvs_server::Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        resp: "127.0.0.1:0".parse().expect("addr"),
        line: "127.0.0.1:0".parse().expect("addr"),
        persistence: kvs_server::Persistence::in_memory(),
        ..kvs_server::Config::default()
    };
    config.security.aclfile = Some(file.clone());
    let err = kvs_server::Server::bind(config).await.expect_err("refused");
    assert!(
        err.to_string()
            .contains("users.acl:2 should start with user keyword"),
        "{err}"
    );
}
