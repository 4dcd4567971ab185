//! The memory limit holds under load, measured from outside: the real `kvs` binary with
//! `--maxmemory 64mb` and each policy, 50 writers pushing 1 GB of distinct keys through it, and
//! the process's resident memory sampled all along. It must stay within the margins the README
//! states ("kvs as a cache"): memory in use (the allocator's count, what the limit applies to)
//! never more than 1/8 over the limit, and the process's resident memory never more than what it
//! holds with no keys at all plus 1.5 times the limit (pages the allocator keeps for reuse, and
//! fragmentation).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const LIMIT: u64 = 64 << 20;
const WRITERS: u64 = 50;
const TOTAL: u64 = 1 << 30;
/// Requests each writer sends before reading their replies.
const PIPELINE: usize = 16;

/// Resident memory of process `pid` in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A SET request as RESP, with an expiry when `ttl` is set.
fn set(key: &str, value: &[u8], ttl: bool) -> Vec<u8> {
    let mut words: Vec<&[u8]> = vec![b"SET", key.as_bytes(), value];
    if ttl {
        words.extend([&b"EX"[..], b"3600"]);
    }
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
        out.extend_from_slice(w);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A field of `INFO memory`, as a number.
fn info_memory(port: u16, field: &str) -> u64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n")
        .expect("send");
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).expect("reply header");
    let len: usize = header[1..].trim().parse().expect("a bulk length");
    let mut body = vec![0u8; len + 2];
    std::io::Read::read_exact(&mut reader, &mut body).expect("reply body");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO memory"))
}

/// What the writers saw.
#[derive(Debug, Default)]
struct Tally {
    stored: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

/// One writer: its share of the bytes, in distinct keys, values of 1 to 16 KiB.
fn writer(port: u16, id: u64, policy: &str, tally: &Tally) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut out = stream.try_clone().expect("clone");
    let mut replies = BufReader::new(stream);
    let mut written = 0u64;
    let mut n = 0u64;
    let mut line = String::new();
    while written < TOTAL / WRITERS {
        let mut batch = Vec::new();
        for _ in 0..PIPELINE {
            let size = 1024 + ((id * 7919 + n * 104_729) % (15 * 1024)) as usize;
            let ttl = policy.starts_with("volatile") || n.is_multiple_of(2);
            batch.extend(set(&format!("w{id}:k{n}"), &vec![b'v'; size], ttl));
            written += size as u64;
            n += 1;
        }
        out.write_all(&batch).expect("send");
        for _ in 0..PIPELINE {
            line.clear();
            replies.read_line(&mut line).expect("a reply");
            let counter = if line == "+OK\r\n" {
                &tally.stored
            } else if line.starts_with("-OOM ") {
                &tally.refused
            } else {
                &tally.other
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn under_each_policy_50_writers_of_1_gb_stay_within_the_stated_margin() {
    let policies = [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-s3fifo",
        "noeviction",
    ];
    for policy in policies {
        let (child, ports) = common::start(&["--maxmemory", "64mb", "--maxmemory-policy", policy]);
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(200));
        let empty = rss(pid);
        let done = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(empty));
        let sampler = {
            let (done, peak) = (done.clone(), peak.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let tally = Arc::new(Tally::default());
        let started = Instant::now();
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                let (tally, policy) = (tally.clone(), policy.to_owned());
                std::thread::spawn(move || writer(ports.resp, id, &policy, &tally))
            })
            .collect();
        for w in writers {
            w.join().expect("writer finishes");
        }
        done.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        let peak = peak.load(Ordering::Relaxed);
        let used_peak = info_memory(ports.resp, "used_memory_peak");
        let margin = empty + LIMIT + LIMIT / 2;
        let (stored, refused, other) = (
            tally.stored.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
            tally.other.load(Ordering::Relaxed),
        );
        eprintln!(
            "{policy}: peak RSS {} MiB (empty {} MiB, margin {} MiB), peak used_memory {} MiB, {stored} stored, {refused} refused, in {:?}",
            peak >> 20,
            empty >> 20,
            margin >> 20,
            used_peak >> 20,
            started.elapsed()
        );
        common::stop(child);
        assert_eq!(other, 0, "{policy}: unexpected replies");
        assert!(
            used_peak <= LIMIT + LIMIT / 8,
            "{policy}: the allocator held {} MiB at its peak, over the limit by more than 1/8",
            used_peak >> 20
        );
        assert!(
            peak <= margin,
            "{policy}: RSS reached {} MiB, over the margin of {} MiB",
            peak >> 20,
            margin >> 20
        );
        if policy == "noeviction" {
            assert!(refused > 0 && stored > 0, "{policy}: {stored} {refused}");
        } else {
            assert_eq!(
                refused, 0,
                "{policy}: writes refused while keys could be evicted"
            );
        }
    }
}
