//! `kvs watch` against the real binary: it prints changes as they come and, when the server
//! restarts, reconnects and resumes without missing or repeating a change.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{KVS, stop};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A durable server on fixed ports, so a restart listens where the watcher reconnects.
fn serve(dir: &std::path::Path, ports: (u16, u16, u16)) -> Child {
    let mut child = Command::new(KVS)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--fsync", "always"])
        .args(["--http", &format!("127.0.0.1:{}", ports.0)])
        .args(["--resp", &format!("127.0.0.1:{}", ports.1)])
        .args(["--line", &format!("127.0.0.1:{}", ports.2)])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kvs starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    loop {
        let line = lines.next().expect("kvs logs").expect("utf-8");
        if line.contains("line protocol listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

fn put(http: u16, key: &str, value: &str) {
    let out = Command::new(KVS)
        .args([
            "put",
            key,
            value,
            "--addr",
            &format!("http://127.0.0.1:{http}"),
        ])
        .output()
        .expect("kvs put");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kvs_watch_prints_changes_and_resumes_across_a_server_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = (free_port(), free_port(), free_port());
    let server = serve(dir.path(), ports);
    let mut watcher = Command::new(KVS)
        .args(["watch", "app/", "--json", "--addr"])
        .arg(format!("http://127.0.0.1:{}", ports.0))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kvs watch runs");
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let stdout = watcher.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(serde_json::from_str(&line).expect("one JSON object per line"));
        }
    });
    // The watch starts from the next change: wait until it is connected.
    std::thread::sleep(Duration::from_millis(500));
    put(ports.0, "app/1", "one");
    put(ports.0, "other", "not watched");
    put(ports.0, "app/2", "two");
    let next = || rx.recv_timeout(Duration::from_secs(20)).expect("an event");
    let (a, b) = (next(), next());
    assert_eq!(
        (a["key"].as_str(), a["op"].as_str()),
        (Some("app/1"), Some("put"))
    );
    assert_eq!(
        (b["key"].as_str(), b["value"].as_str()),
        (Some("app/2"), Some("two"))
    );

    // The server goes away and comes back; a change made before the watcher is back is read
    // back from the log.
    stop(server);
    let server = serve(dir.path(), ports);
    put(ports.0, "app/3", "three");
    let c = next();
    assert_eq!(c["key"].as_str(), Some("app/3"));
    put(ports.0, "app/4", "four");
    let d = next();
    assert_eq!(d["key"].as_str(), Some("app/4"));
    let ids: Vec<u64> = [&a, &b, &c, &d]
        .iter()
        .map(|e| e["id"].as_str().expect("id").parse().expect("number"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing repeated"
    );
    let _ = watcher.kill();
    let _ = watcher.wait();
    stop(server);
}
