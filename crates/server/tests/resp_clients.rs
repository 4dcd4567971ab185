//! Real Redis clients against kvs: redis-cli, redis-benchmark (Debian's redis-tools) and the
//! Python `redis` package. `.ci/run` installs them; a missing one fails the test with a hint.

mod common;

use std::process::{Command, Output};

use common::TestServer;

fn run(program: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run {program} ({e}); install redis-tools and python3 with the redis package (see .ci/run)"
        ),
    }
}

fn cli(s: &TestServer, args: &[&str]) -> String {
    let port = s.resp.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    let out = run("redis-cli", &all);
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cli_works_unmodified() {
    let s = TestServer::start().await;
    assert_eq!(cli(&s, &["PING"]), "PONG");
    assert_eq!(cli(&s, &["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&s, &["GET", "greeting"]), "hello world");
    assert_eq!(cli(&s, &["INCRBY", "n", "5"]), "5");
    assert_eq!(cli(&s, &["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(cli(&s, &["MGET", "a", "b", "missing"]), "1\n2");
    assert_eq!(cli(&s, &["SET", "t", "x", "EX", "100"]), "OK");
    assert_eq!(cli(&s, &["TTL", "t"]), "100");
    assert_eq!(cli(&s, &["DBSIZE"]), "5");
    assert_eq!(cli(&s, &["GET", "missing"]), "");
    assert!(cli(&s, &["INFO", "keyspace"]).contains("db0:keys=5,expires=1"));
    let hello = cli(&s, &["-3", "HELLO", "3"]);
    assert!(hello.lines().any(|l| l == "proto 3"), "{hello}");
    let err = cli(&s, &["INCR", "greeting"]);
    assert!(
        err.contains("ERR value is not an integer or out of range"),
        "{err}"
    );
    assert_eq!(cli(&s, &["FLUSHALL"]), "OK");
    assert_eq!(cli(&s, &["DBSIZE"]), "0");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_benchmark_runs_cleanly() {
    let s = TestServer::start().await;
    let port = s.resp.port().to_string();
    for pipeline in ["1", "16"] {
        let out = run(
            "redis-benchmark",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-n",
                "2000",
                "-c",
                "10",
                "-P",
                pipeline,
                "-q",
                "-t",
                "set,get,incr,mset",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for test in ["SET", "GET", "INCR", "MSET"] {
            assert!(
                text.lines()
                    .any(|l| l.contains(test) && l.contains("requests per second")),
                "-P {pipeline}: no result for {test}:\n{text}"
            );
        }
        assert!(!text.to_lowercase().contains("error"), "{text}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_redis_package_works_in_resp2_and_resp3() {
    let s = TestServer::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/redis_client.py");
    let port = s.resp.port().to_string();
    let out = run("python3", &[script, &port]);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python redis client: all passed"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cli_lists_kills_pauses_and_monitors() {
    let s = TestServer::start().await;
    let port = s.resp.port().to_string();
    // MONITOR through redis-cli, which prints each line as it comes.
    let monitor = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port, "MONITOR"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli runs (install redis-tools)");
    let list = loop {
        let list = cli(&s, &["CLIENT", "LIST"]);
        if list.contains("flags=O") {
            break list;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let monitor_id: String = list
        .lines()
        .find(|l| l.contains("flags=O"))
        .and_then(|l| l.split(' ').next())
        .and_then(|id| id.strip_prefix("id="))
        .expect("the monitor's id")
        .to_owned();
    assert_eq!(cli(&s, &["SET", "seen", "by the monitor"]), "OK");
    assert_eq!(cli(&s, &["CLIENT", "PAUSE", "100", "WRITE"]), "OK");
    assert_eq!(cli(&s, &["CLIENT", "UNPAUSE"]), "OK");
    assert_eq!(cli(&s, &["CLIENT", "KILL", "ID", &monitor_id]), "1");
    let out = monitor
        .wait_with_output()
        .expect("redis-cli ends once killed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""SET" "seen" "by the monitor""#), "{text}");
    assert!(text.contains(r#""CLIENT" "PAUSE" "100" "WRITE""#), "{text}");
    assert_eq!(
        cli(&s, &["CLIENT", "KILL", "TYPE", "nosuch"]),
        "ERR Unknown client type 'nosuch'"
    );
    s.stop().await;
}
