//! Starting the real `kvs` binary on free ports for a test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const KVS: &str = env!("CARGO_BIN_EXE_kvs");

/// The ports a started server reports in its log.
#[derive(Debug, Default)]
pub struct Ports {
    pub http: u16,
    pub resp: u16,
    pub line: u16,
}

fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = line.split(marker).nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Starts `kvs serve` with every listener on a free port (plus `extra` flags) and waits until it
/// has said where each listens.
pub fn start(extra: &[&str]) -> (Child, Ports) {
    let mut child = Command::new(KVS)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--resp",
            "127.0.0.1:0",
            "--line",
            "127.0.0.1:0",
        ])
        .args(extra)
        // Tests that do not name a data directory keep nothing on disk.
        .args(
            (!extra
                .iter()
                .any(|a| *a == "--data-dir" || *a == "--in-memory"))
            .then_some("--in-memory"),
        )
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kvs starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut ports = Ports::default();
    while ports.http == 0 || ports.resp == 0 || ports.line == 0 {
        let line = lines
            .next()
            .expect("kvs logs before exiting")
            .expect("utf-8 log");
        // One startup line names every door.
        if let Some(p) = port_after(&line, "HTTP listening on http://127.0.0.1:") {
            ports.http = p;
        }
        if let Some(p) = port_after(&line, "RESP listening on redis://127.0.0.1:") {
            ports.resp = p;
        }
        if let Some(p) = port_after(&line, "line protocol listening on 127.0.0.1:") {
            ports.line = p;
        }
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, ports)
}

/// Stops a server started with [`start`].
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
