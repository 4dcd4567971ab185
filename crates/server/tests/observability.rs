//! Seeing what the server does: `/metrics` (checked by Prometheus's own `promtool`), `INFO`'s
//! sections and fields, `SLOWLOG`, `LATENCY HISTOGRAM`, `CONFIG RESETSTAT`, the admin routes the
//! console reads, and the console's files. Real server, real sockets, real clients.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestServer, client, line_request};
use redis::aio::MultiplexedConnection;

async fn resp(s: &TestServer) -> MultiplexedConnection {
    redis::Client::open(format!("redis://{}", s.resp))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

async fn cmd<T: redis::FromRedisValue>(c: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query_async(c).await.expect("command succeeds")
}

async fn info(c: &mut MultiplexedConnection, sections: &[&str]) -> String {
    let mut all = vec!["INFO"];
    all.extend_from_slice(sections);
    cmd(c, &all).await
}

/// `field:value` lines of an INFO answer.
fn fields(info: &str) -> HashMap<String, String> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn scrape(s: &TestServer) -> String {
    let response = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    response.text().await.expect("text")
}

/// The value of one sample line, `name{labels} value`, in a scrape.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// Prometheus's own checker: the format is right and the names follow its conventions.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install Debian's prometheus package (see .ci/run)")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("written");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_promtool_and_count_exactly_the_requests_sent() {
    let s = TestServer::start().await;
    let mut c = resp(&s).await;
    let before = scrape(&s).await;
    promtool_check(&before);
    for i in 0..37 {
        let _: () = cmd(&mut c, &["SET", &format!("k{i}"), "v"]).await;
    }
    for i in 0..5 {
        let _: Option<String> = cmd(&mut c, &["GET", &format!("k{i}")]).await;
    }
    let _: Option<String> = cmd(&mut c, &["GET", "missing"]).await;
    let http = client();
    for _ in 0..11 {
        let r = http.get(s.url("/kvs/k1")).send().await.expect("get");
        assert_eq!(r.status(), 200);
    }
    for _ in 0..3 {
        let r = http
            .put(s.url("/kvs/h"))
            .body("x")
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success());
    }
    for _ in 0..4 {
        assert!(line_request(&s, "cmd=get|key=k2").await.contains('v'));
    }
    let after = scrape(&s).await;
    promtool_check(&after);
    let delta = |series: &str| sample(&after, series) - sample(&before, series).max(0.0);
    assert_eq!(sample(&after, "kvs_commands_total{command=\"set\"}"), 37.0);
    assert_eq!(sample(&after, "kvs_commands_total{command=\"get\"}"), 6.0);
    assert_eq!(
        delta("kvs_request_duration_seconds_count{door=\"http\",class=\"read\"}"),
        11.0
    );
    assert_eq!(
        delta("kvs_request_duration_seconds_count{door=\"http\",class=\"write\"}"),
        3.0
    );
    assert_eq!(
        delta("kvs_request_duration_seconds_count{door=\"line\",class=\"read\"}"),
        4.0
    );
    assert_eq!(
        delta("kvs_request_duration_seconds_count{door=\"resp\",class=\"write\"}"),
        37.0
    );
    // GETs over every door: 5 + 11 + 4 found their key, one did not.
    assert_eq!(delta("kvs_keyspace_hits_total"), 20.0);
    assert_eq!(delta("kvs_keyspace_misses_total"), 1.0);
    assert_eq!(sample(&after, "kvs_keys"), 38.0);
    // Four line connections and at least one RESP connection were accepted; the RESP one is open.
    assert_eq!(delta("kvs_connections_accepted_total{door=\"line\"}"), 4.0);
    assert_eq!(sample(&after, "kvs_connections{door=\"resp\"}"), 1.0);
    let buckets = after
        .lines()
        .filter(|l| {
            l.starts_with("kvs_request_duration_seconds_bucket{door=\"resp\",class=\"write\"")
        })
        .count();
    assert_eq!(buckets, 23, "22 bounds and +Inf");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn info_has_redis_sections_fields_and_statistics() {
    let s = TestServer::start().await;
    let mut c = resp(&s).await;
    let default = info(&mut c, &[]).await;
    let headers: Vec<&str> = default.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    let f = fields(&default);
    for field in [
        "redis_version",
        "run_id",
        "uptime_in_seconds",
        "connected_clients",
        "used_memory",
        "total_commands_processed",
        "keyspace_hits",
        "expired_keys",
        "role",
        "master_repl_offset",
        "used_cpu_sys",
        "used_cpu_user_children",
        "used_cpu_sys_main_thread",
    ] {
        assert!(f.contains_key(field), "{field} missing from:\n{default}");
    }
    assert_eq!(f["role"], "master");
    assert_eq!(f["run_id"].len(), 40);
    let everything = info(&mut c, &["everything"]).await;
    assert!(everything.contains("# Commandstats") && everything.contains("# Latencystats"));
    let two = info(&mut c, &["keyspace", "SERVER"]).await;
    let two: Vec<&str> = two.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(two, ["# Server", "# Keyspace"]);

    for _ in 0..3 {
        let _: () = cmd(&mut c, &["SET", "n", "x"]).await;
    }
    let _: () = cmd(&mut c, &["SET", "t", "1", "EX", "1000"]).await;
    let wrong: redis::RedisResult<i64> = redis::cmd("INCR").arg("n").query_async(&mut c).await;
    assert!(wrong.is_err());
    let arity: redis::RedisResult<String> = redis::cmd("GET").query_async(&mut c).await;
    assert!(arity.is_err());
    let stats = fields(&info(&mut c, &["commandstats", "errorstats", "keyspace"]).await);
    let set = &stats["cmdstat_set"];
    assert!(set.starts_with("calls=4,usec="), "{set}");
    assert!(set.ends_with(",rejected_calls=0,failed_calls=0"), "{set}");
    assert!(
        stats["cmdstat_incr"].ends_with("rejected_calls=0,failed_calls=1"),
        "{}",
        stats["cmdstat_incr"]
    );
    assert!(
        stats["cmdstat_get"].ends_with("rejected_calls=1,failed_calls=0"),
        "{}",
        stats["cmdstat_get"]
    );
    assert_eq!(stats["errorstat_ERR"], "count=2");
    let keyspace = &stats["db0"];
    let avg_ttl: u64 = keyspace
        .rsplit_once("avg_ttl=")
        .and_then(|(_, v)| v.parse().ok())
        .expect("avg_ttl");
    assert!(keyspace.starts_with("keys=2,expires=1,"), "{keyspace}");
    assert!((990_000..=1_000_000).contains(&avg_ttl), "{keyspace}");
    let latency = fields(&info(&mut c, &["latencystats"]).await);
    assert!(latency["latency_percentiles_usec_set"].starts_with("p50="));

    let _: () = cmd(&mut c, &["CONFIG", "RESETSTAT"]).await;
    let after = info(&mut c, &["commandstats", "errorstats"]).await;
    assert!(!after.contains("cmdstat_set"), "{after}");
    assert!(!after.contains("errorstat_ERR"), "{after}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_slow_log_keeps_slow_requests_from_every_door() {
    let s = TestServer::start().await;
    let mut c = resp(&s).await;
    // Nothing this quick is slow under the default 10 ms.
    let _: () = cmd(&mut c, &["SET", "quick", "1"]).await;
    assert_eq!(cmd::<i64>(&mut c, &["SLOWLOG", "LEN"]).await, 0);
    // A blocking read over HTTP that waits 300 ms is slow at a 100 ms threshold.
    let _: () = cmd(
        &mut c,
        &["CONFIG", "SET", "slowlog-log-slower-than", "100000"],
    )
    .await;
    let version = s.engine.store().revision();
    let r = client()
        .get(s.url(&format!("/kvs/quick?wait=300ms&index={version}")))
        .send()
        .await
        .expect("blocking read");
    assert_eq!(r.status(), 200);
    let entries: Vec<redis::Value> = cmd(&mut c, &["SLOWLOG", "GET"]).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let redis::Value::Array(entry) = &entries[0] else {
        panic!("{entries:?}")
    };
    assert_eq!(
        entry.len(),
        6,
        "id, time, duration, arguments, address, name"
    );
    let redis::Value::Int(micros) = entry[2] else {
        panic!("{entry:?}")
    };
    assert!(micros >= 300_000, "{micros}");
    let args: Vec<String> = redis::from_redis_value(&entry[3]).expect("arguments");
    assert_eq!(args[0], "GET");
    assert!(args[1].starts_with("/kvs/quick?wait=300ms"), "{args:?}");
    let admin: serde_json::Value = client()
        .get(s.url("/admin/slowlog"))
        .send()
        .await
        .expect("slowlog")
        .json()
        .await
        .expect("json");
    assert_eq!(admin["entries"][0]["door"], "http");

    // Threshold 0: every command is logged, newest first, with passwords left out.
    let _: () = cmd(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await;
    let _: redis::RedisResult<()> = redis::cmd("AUTH")
        .arg("nobody")
        .arg("secret")
        .query_async(&mut c)
        .await;
    let _: () = cmd(&mut c, &["SET", "a", "1"]).await;
    let newest: Vec<Vec<redis::Value>> = cmd(&mut c, &["SLOWLOG", "GET", "2"]).await;
    let set: Vec<String> = redis::from_redis_value(&newest[0][3]).expect("args");
    assert_eq!(set, ["SET", "a", "1"]);
    let auth: Vec<String> = redis::from_redis_value(&newest[1][3]).expect("args");
    assert_eq!(auth, ["AUTH", "(redacted)", "(redacted)"]);
    let too_low: redis::RedisResult<()> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg("-2")
        .query_async(&mut c)
        .await;
    assert!(
        too_low
            .expect_err("-2 is refused")
            .to_string()
            .contains("count should be greater than or equal to -1")
    );
    let _: () = cmd(&mut c, &["SLOWLOG", "RESET"]).await;
    // The RESET itself is logged after it ran.
    assert_eq!(cmd::<i64>(&mut c, &["SLOWLOG", "LEN"]).await, 1);
    let _: () = cmd(&mut c, &["CONFIG", "SET", "slowlog-max-len", "3"]).await;
    for _ in 0..10 {
        let _: () = cmd(&mut c, &["SET", "a", "1"]).await;
    }
    assert_eq!(cmd::<i64>(&mut c, &["SLOWLOG", "LEN"]).await, 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_histogram_is_cumulative_in_powers_of_two() {
    let s = TestServer::start().await;
    let mut c = resp(&s).await;
    for _ in 0..50 {
        let _: () = cmd(&mut c, &["SET", "a", "1"]).await;
    }
    let _: i64 = cmd(&mut c, &["CLIENT", "ID"]).await;
    let h: HashMap<String, HashMap<String, redis::Value>> =
        cmd(&mut c, &["LATENCY", "HISTOGRAM", "set", "client"]).await;
    // `client` names every CLIENT subcommand that ran (the client library sent SETINFO too).
    assert!(
        h.keys().all(|k| k == "set" || k.starts_with("client|")),
        "{h:?}"
    );
    let set = &h["set"];
    assert_eq!(set["calls"], redis::Value::Int(50));
    let buckets: Vec<(i64, i64)> = redis::from_redis_value(&set["histogram_usec"]).expect("map");
    let counts: Vec<i64> = buckets.iter().map(|(_, n)| *n).collect();
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{buckets:?}");
    assert_eq!(counts.last(), Some(&50));
    for (us, _) in &buckets {
        // 1024 ns × 2^k, in microseconds, truncated.
        assert!((0..40).any(|k| (1024u64 << k) / 1000 == *us as u64), "{us}");
    }
    assert!(h.contains_key("client|id"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_routes_answer_what_the_console_reads() {
    let s = TestServer::start().await;
    let http = client();
    let mut c = resp(&s).await;
    let _: () = cmd(&mut c, &["CLIENT", "SETNAME", "watched"]).await;
    for k in ["app/a/1", "app/a/2", "app/b", "app/c/d/e"] {
        let _: () = cmd(&mut c, &["SET", k, "v"]).await;
    }
    // The console's files, with their types and a policy that loads nothing from elsewhere.
    let page = http.get(s.url("/ui/")).send().await.expect("ui");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    let js = http.get(s.url("/ui/app.js")).send().await.expect("js");
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        http.get(s.url("/ui/nothing.js"))
            .send()
            .await
            .expect("404")
            .status(),
        404
    );
    // Folders under a prefix.
    let listing: serde_json::Value = http
        .get(s.url("/kvs?prefix=app/&delimiter=/"))
        .send()
        .await
        .expect("listing")
        .json()
        .await
        .expect("json");
    assert_eq!(listing["prefixes"], serde_json::json!(["app/a/", "app/c/"]));
    assert_eq!(listing["keys"][0]["key"], "app/b");
    // The dashboard's samples: one a second, with the requests of that second.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let stats: serde_json::Value = http
        .get(s.url("/admin/stats?seconds=3"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["server"]["doors"]["resp"], s.resp.to_string());
    let series = stats["series"].as_array().expect("series");
    assert!(!series.is_empty() && series.len() <= 3, "{stats}");
    let resp_ops: u64 = series
        .iter()
        .map(|x| x["ops"]["resp"].as_u64().expect("a count"))
        .sum();
    assert!(resp_ops >= 5, "{stats}");
    assert_eq!(
        http.get(s.url("/admin/stats?seconds=0"))
            .send()
            .await
            .expect("400")
            .status(),
        400
    );
    // The clients, and killing one.
    let clients: serde_json::Value = http
        .get(s.url("/admin/clients"))
        .send()
        .await
        .expect("clients")
        .json()
        .await
        .expect("json");
    let me = clients["clients"]
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["name"] == "watched")
        .expect("the named client")
        .clone();
    let id = me["id"].as_u64().expect("id");
    let killed = http
        .delete(s.url(&format!("/admin/clients/{id}")))
        .send()
        .await
        .expect("kill");
    assert_eq!(killed.status(), 204);
    // The client leaves the list once its connection has closed, a moment after the kill.
    let mut status = 0;
    for _ in 0..100 {
        let gone = http
            .delete(s.url(&format!("/admin/clients/{id}")))
            .send()
            .await
            .expect("kill again");
        status = gone.status().as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 404, "a killed client is gone");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_password_the_console_loads_but_its_data_needs_the_password() {
    let s = TestServer::with(|c| {
        c.security.requirepass = Some("hunter2".into());
        c.observability.slowlog_log_slower_than = 0;
    })
    .await;
    let http = client();
    assert_eq!(
        http.get(s.url("/ui/")).send().await.expect("ui").status(),
        200
    );
    for path in [
        "/metrics",
        "/admin/stats",
        "/admin/slowlog",
        "/admin/clients",
    ] {
        let r = http.get(s.url(path)).send().await.expect("request");
        assert_eq!(r.status(), 401, "{path}");
        let r = http
            .get(s.url(path))
            .bearer_auth("hunter2")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{path}");
    }
    // A wrong password is a failed authentication; a request without one is not.
    let wrong = http
        .get(s.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    let text = http
        .get(s.url("/metrics"))
        .bearer_auth("hunter2")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert_eq!(sample(&text, "kvs_auth_failures_total"), 1.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_can_be_turned_off() {
    let s = TestServer::with(|c| c.observability.ui = false).await;
    let r = client().get(s.url("/ui/")).send().await.expect("ui");
    assert_eq!(r.status(), 404);
    s.stop().await;
}

/// The field names of a `CLIENT INFO` line, in order.
fn field_names(line: &str) -> Vec<String> {
    line.split_whitespace()
        .filter_map(|f| f.split_once('=').map(|(k, _)| k.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_info_has_redis_server_s_fields_in_its_order() {
    let s = TestServer::start().await;
    let redis = common::redis_server::redis_server(&[]).await;
    let ours: String = cmd(&mut resp(&s).await, &["CLIENT", "INFO"]).await;
    let mut theirs_conn = redis::Client::open(format!("redis://{}", redis.addr()))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis-server");
    let theirs: String = cmd(&mut theirs_conn, &["CLIENT", "INFO"]).await;
    assert_eq!(field_names(&ours), field_names(&theirs), "{ours}\n{theirs}");
    assert!(ours.contains(" cmd=client|info "), "{ours}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_monitor_slowlog_and_info_work_through_the_python_client() {
    let s = TestServer::start().await;
    common::run_python(
        &s,
        "introspection_client.py",
        "python introspection: all passed",
    )
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_monitor_sees_every_door_and_one_that_falls_behind_is_cut_off() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let s = TestServer::start().await;
    let mut c = resp(&s).await;
    // A limit small enough that a monitor that never reads is over it quickly.
    let _: () = cmd(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 64kb 0 0",
        ],
    )
    .await;
    let mut monitor = tokio::net::TcpStream::connect(s.resp)
        .await
        .expect("monitor");
    monitor
        .write_all(b"*1\r\n$7\r\nMONITOR\r\n")
        .await
        .expect("sent");
    let mut lines = BufReader::new(monitor);
    let mut first = String::new();
    lines.read_line(&mut first).await.expect("OK");
    assert_eq!(first, "+OK\r\n");
    let _: () = cmd(&mut c, &["SET", "k", "v"]).await;
    client()
        .get(s.url("/kvs/k"))
        .send()
        .await
        .expect("http get");
    assert!(line_request(&s, "cmd=get|key=k").await.contains('v'));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(5), lines.read_line(&mut line))
            .await
            .expect("a monitor line in time")
            .expect("read");
        seen.push(line);
    }
    assert!(seen[0].contains("] \"SET\" \"k\" \"v\""), "{seen:?}");
    assert!(
        seen[1].contains(" [0 http 127.0.0.1:") && seen[1].contains("\"/kvs/k\""),
        "{seen:?}"
    );
    assert!(
        seen[2].contains(" [0 line 127.0.0.1:") && seen[2].contains("\"key=k\""),
        "{seen:?}"
    );
    // The monitor stops reading; the server goes on at full speed and cuts it off once the
    // socket's buffers (a few MiB on loopback) and then 64 KiB of its own are full.
    let big = "x".repeat(64 * 1024);
    let started = std::time::Instant::now();
    for _ in 0..400 {
        let _: () = cmd(&mut c, &["SET", "k", &big]).await;
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut lines, &mut rest),
    )
    .await
    .expect("the monitor's connection is closed");
    assert!(read.is_ok());
    assert!(
        rest.len() < 400 * 64 * 1024,
        "cut off before everything was sent: {}",
        rest.len()
    );
    s.stop().await;
}
