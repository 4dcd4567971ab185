//! A reliable job queue built the usual way on kvs (LPUSH, BLMOVE to a processing list, MULTI to
//! record a job done), driven by the Python redis client with 4 producers and 4 consumers: the
//! server runs with `--fsync always` and is killed with SIGKILL mid-run, then started again on
//! the same port and data directory. Every job must be done exactly once (see job_queue.py).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KVS, start, stop};

#[test]
fn every_job_is_done_exactly_once_across_a_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let (mut server, ports) = start(&["--data-dir", data, "--fsync", "always"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/job_queue.py");
    let mut python = Command::new("python3")
        .args([script, &ports.resp.to_string(), "400"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    // Let producers and consumers get going, then kill the server mid-stream.
    std::thread::sleep(Duration::from_millis(700));
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    std::thread::sleep(Duration::from_millis(200));
    let mut restarted = Command::new(KVS)
        .args([
            "serve",
            "--data-dir",
            data,
            "--fsync",
            "always",
            "--http",
            "127.0.0.1:0",
        ])
        .args([
            "--line",
            "127.0.0.1:0",
            "--resp",
            &format!("127.0.0.1:{}", ports.resp),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kvs starts again");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = python.try_wait().expect("python") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(170),
            "the job queue did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out: Vec<String> = BufReader::new(python.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .collect();
    stop(std::mem::replace(
        &mut restarted,
        Command::new("true").spawn().expect("true"),
    ));
    let _ = restarted.wait();
    assert!(status.success(), "job_queue.py failed: {out:?}");
    assert!(out.iter().any(|l| l.starts_with("JOBS OK 1600")), "{out:?}");
    println!("{}", out.join("\n"));
}
