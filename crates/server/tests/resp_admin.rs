//! Connection and server commands: CLIENT LIST/KILL/INFO, COMMAND, INFO, CONFIG, RESET, TIME,
//! AUTH, read back with a real client library.

mod common;

use common::TestServer;

async fn connect(s: &TestServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{}/", s.resp).as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn cmd<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(con).await
}

#[tokio::test(flavor = "multi_thread")]
async fn client_list_info_and_kill() {
    let s = TestServer::start().await;
    let mut me = connect(&s).await;
    let mut victim = connect(&s).await;
    let _: () = cmd(&mut victim, &["CLIENT", "SETNAME", "victim"])
        .await
        .expect("setname");
    let victim_id: i64 = cmd(&mut victim, &["CLIENT", "ID"]).await.expect("id");
    let list: String = cmd(&mut me, &["CLIENT", "LIST"]).await.expect("list");
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.contains(&format!("id={victim_id} ")) && list.contains("name=victim"),
        "{list}"
    );
    let info: String = cmd(&mut me, &["CLIENT", "INFO"]).await.expect("info");
    assert!(
        info.starts_with("id=") && !info.contains("victim"),
        "{info}"
    );

    let killed: i64 = cmd(&mut me, &["CLIENT", "KILL", "ID", &victim_id.to_string()])
        .await
        .expect("kill");
    assert_eq!(killed, 1);
    let gone: redis::RedisResult<String> = cmd(&mut victim, &["PING"]).await;
    assert!(gone.is_err(), "the killed connection still answers");
    // SKIPME yes (the default) spares the caller.
    let killed: i64 = cmd(
        &mut me,
        &["CLIENT", "KILL", "SKIPME", "yes", "ID", "999999"],
    )
    .await
    .expect("kill");
    assert_eq!(killed, 0);
    let pong: String = cmd(&mut me, &["PING"]).await.expect("ping");
    assert_eq!(pong, "PONG");
    let err = cmd::<String>(&mut me, &["CLIENT", "KILL", "10.0.0.1:1"])
        .await
        .expect_err("no such client");
    assert!(err.to_string().contains("No such client"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn command_info_config_time_auth() {
    let s = TestServer::start().await;
    let mut con = connect(&s).await;
    let count: i64 = cmd(&mut con, &["COMMAND", "COUNT"]).await.expect("count");
    let all: Vec<redis::Value> = cmd(&mut con, &["COMMAND"]).await.expect("command");
    assert_eq!(all.len() as i64, count);
    assert!(count > 50);
    let info: Vec<redis::Value> = cmd(&mut con, &["COMMAND", "INFO", "get", "nosuch"])
        .await
        .expect("info");
    assert_eq!(info.len(), 2);
    assert_eq!(info[1], redis::Value::Nil);
    // DOCS gives each command's summary and group from the table.
    let docs: redis::Value = cmd(&mut con, &["COMMAND", "DOCS", "get", "nosuch"])
        .await
        .expect("docs");
    let shown = format!("{docs:?}");
    assert!(
        shown.contains("\"get\"")
            && shown.contains("Get the value of a key")
            && shown.contains("\"string\"")
            && !shown.contains("nosuch"),
        "{shown}"
    );

    let _: () = cmd(&mut con, &["SET", "k", "v", "EX", "100"])
        .await
        .expect("set");
    let text: String = cmd(&mut con, &["INFO"]).await.expect("info");
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Keyspace",
    ] {
        assert!(text.contains(section), "INFO lacks {section}");
    }
    assert!(text.contains("db0:keys=1,expires=1"), "{text}");
    assert!(text.contains("connected_clients:1"), "{text}");
    let only: String = cmd(&mut con, &["INFO", "keyspace"])
        .await
        .expect("info keyspace");
    assert!(
        only.starts_with("# Keyspace") && !only.contains("# Server"),
        "{only}"
    );

    let cfg: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "max*"])
        .await
        .expect("config get");
    assert!(
        cfg.chunks(2)
            .any(|p| p[0] == "maxclients" && p[1] == "10000"),
        "{cfg:?}"
    );
    let err = cmd::<String>(&mut con, &["CONFIG", "SET", "nosuch", "1"])
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("Unknown option"), "{err}");

    let time: Vec<String> = cmd(&mut con, &["TIME"]).await.expect("time");
    let secs: u64 = time[0].parse().expect("seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(secs.abs_diff(now) <= 2);

    let err = cmd::<String>(&mut con, &["AUTH", "secret"])
        .await
        .expect_err("no password set");
    assert!(
        err.to_string().contains("without any password configured"),
        "{err}"
    );
    let ok: String = cmd(&mut con, &["AUTH", "default", "anything"])
        .await
        .expect("auth");
    assert_eq!(ok, "OK");
    let reset: String = cmd(&mut con, &["RESET"]).await.expect("reset");
    assert_eq!(reset, "RESET");
    s.stop().await;
}
