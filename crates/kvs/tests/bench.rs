//! `kvs bench` against a real server over each protocol: every requested operation is answered
//! and counted, latencies are sane, the values really reach the store, and an unreachable or
//! vanishing server is reported with exit status 3.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{KVS, start, stop};
use kvs_protocol::resp::{Frame, read_frame};
use serde_json::Value;

fn kvs_bench(args: &[&str]) -> Output {
    Command::new(KVS)
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kvs bench runs")
}

/// Runs `kvs bench --json` and returns its summary, failing the test on a non-zero exit.
fn summary(args: &[&str]) -> Value {
    let out = kvs_bench(&[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "kvs bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the summary is one JSON object")
}

fn count(summary: &Value, field: &str) -> u64 {
    summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is a count in {summary}"))
}

/// Every latency row is ordered p50 <= p90 <= p99 <= p99.9 <= max, all above zero.
fn assert_latencies(summary: &Value) {
    for row in ["all", "reads", "writes"] {
        let latency = &summary["latency_ms"][row];
        let values: Vec<f64> = ["p50", "p90", "p99", "p99_9", "max"]
            .iter()
            .map(|p| {
                latency[p]
                    .as_f64()
                    .unwrap_or_else(|| panic!("latency_ms.{row}.{p} in {summary}"))
            })
            .collect();
        assert!(values[0] > 0.0, "{row}: {values:?}");
        assert!(
            values.windows(2).all(|w| w[0] <= w[1]),
            "{row} percentiles out of order: {values:?}"
        );
    }
}

/// The value stored under `key`, read back with a raw RESP GET (`None`: no such key).
fn resp_get(port: u16, key: &str) -> Option<Vec<u8>> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to RESP");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let request = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    conn.write_all(request.as_bytes()).expect("send GET");
    let mut buffer = Vec::new();
    loop {
        if let Some((frame, _)) = read_frame(&buffer).expect("a valid reply") {
            return match frame {
                Frame::Bulk(value) => Some(value.to_vec()),
                Frame::Null => None,
                other => panic!("GET {key} answered {other:?}"),
            };
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).expect("read the reply");
        assert!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn assert_benchmark_value(value: Option<Vec<u8>>, size: usize, key: &str) {
    let value = value.unwrap_or_else(|| panic!("{key} was not stored"));
    assert_eq!(value.len(), size, "{key}");
    assert!(
        value
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{key} holds {:?}",
        String::from_utf8_lossy(&value)
    );
}

/// A preloaded 50/50 run of 2000 requests, then a write-only run on one key, checked through RESP.
fn measures(protocol: &str, port: fn(&common::Ports) -> u16) {
    let (server, ports) = start(&[]);
    let port_arg = port(&ports).to_string();
    let prefix = format!("{protocol}-mix:");
    let mix = summary(&[
        "--protocol",
        protocol,
        "--port",
        &port_arg,
        "-n",
        "2000",
        "-c",
        "4",
        "-P",
        "4",
        "-r",
        "100",
        "--read-ratio",
        "0.5",
        "--key-prefix",
        &prefix,
        "--preload",
    ]);
    assert_eq!(mix["protocol"], protocol);
    assert_eq!(count(&mix, "ops"), 2000, "{mix}");
    assert_eq!(count(&mix, "errors"), 0, "{mix}");
    assert_eq!(count(&mix, "lost_connections"), 0, "{mix}");
    let (reads, writes) = (count(&mix, "reads"), count(&mix, "writes"));
    assert_eq!(reads + writes, 2000);
    assert!(
        (700..=1300).contains(&reads),
        "{reads} reads of 2000 at 0.5"
    );
    assert_eq!(count(&mix, "misses"), 0, "every key was preloaded: {mix}");
    assert_eq!(count(&mix, "hits"), reads);
    assert_latencies(&mix);
    // The preload wrote every key with a 64-byte value.
    for index in [0, 99] {
        let key = format!("{prefix}{index:012}");
        assert_benchmark_value(resp_get(ports.resp, &key), 64, &key);
    }

    // Writes only, all to one key: that key must hold a value of the requested size.
    let prefix = format!("{protocol}-writes:");
    let key = format!("{prefix}000000000000");
    assert_eq!(resp_get(ports.resp, &key), None);
    let writes = summary(&[
        "--protocol",
        protocol,
        "--port",
        &port_arg,
        "-n",
        "40",
        "-c",
        "2",
        "-P",
        "2",
        "-r",
        "1",
        "-d",
        "100",
        "--read-ratio",
        "0",
        "--key-prefix",
        &prefix,
    ]);
    assert_eq!(
        (count(&writes, "ops"), count(&writes, "writes")),
        (40, 40),
        "{writes}"
    );
    assert_eq!(count(&writes, "errors"), 0, "{writes}");
    assert!(writes["latency_ms"]["reads"].is_null(), "{writes}");
    assert_benchmark_value(resp_get(ports.resp, &key), 100, &key);
    stop(server);
}

#[test]
fn resp_bench_counts_every_request_and_stores_values() {
    measures("resp", |p| p.resp);
}

#[test]
fn http_bench_counts_every_request_and_stores_values() {
    measures("http", |p| p.http);
}

#[test]
fn line_bench_counts_every_request_and_stores_values() {
    measures("line", |p| p.line);
}

#[test]
fn a_refused_connection_exits_3_with_a_readable_message() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("its address").port()
    };
    for protocol in ["resp", "http", "line"] {
        let out = kvs_bench(&[
            "--protocol",
            protocol,
            "--port",
            &port.to_string(),
            "-n",
            "10",
            "-c",
            "2",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot connect to 127.0.0.1:{port}: ")),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_server_that_goes_away_is_reported_as_lost_connections() {
    let (mut server, ports) = start(&[]);
    let bench = Command::new(KVS)
        .args(["bench", "--port", &ports.resp.to_string()])
        .args(["-c", "3", "--duration", "20s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvs bench starts");
    std::thread::sleep(Duration::from_millis(700));
    server.kill().expect("stop the server");
    let _ = server.wait();
    let out = bench.wait_with_output().expect("kvs bench finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("every connection to 127.0.0.1:"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(count(&summary, "lost_connections"), 3, "{summary}");
    assert!(count(&summary, "ops") > 0, "{summary}");
    assert!(
        summary["duration_s"].as_f64().is_some_and(|s| s < 10.0),
        "{summary}"
    );
}

#[test]
fn a_key_prefix_the_line_protocol_cannot_carry_is_bad_usage() {
    let out = kvs_bench(&["--protocol", "line", "--key-prefix", "a|b", "-n", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key-prefix"));
}
