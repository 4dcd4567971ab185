//! The durability promise, tested on the real binary: with `--fsync always`, every write that
//! was acknowledged to a client survives `kill -9` of the server. Concurrent writers over RESP
//! and HTTP record each acknowledged write and delete; the server is killed mid-load, restarted
//! on the same directory, and every key must hold exactly its last acknowledged state (or the
//! state of the one write that was in flight when the server died). Collection writers do the
//! same with hashes, lists and sorted sets (HSET, RPUSH, LPOP, ZADD, ZREM): every acknowledged
//! field, push and member survives. Several rounds on one directory, with small snapshot
//! thresholds so snapshots are written (collections included) and cut short too.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Ports, start};

/// What a key holds: value, content type and absolute expiry (ms), or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    value: Vec<u8>,
    content_type: String,
    expires_at: Option<u64>,
}

/// The model of one key: its last acknowledged state and the write in flight, if any.
#[derive(Clone, Debug, Default)]
struct Key {
    acked: Option<State>,
    in_flight: Option<Option<State>>,
}

type Model = Arc<Mutex<HashMap<String, Key>>>;

/// A buffered connection to a local port that gives up on a silent server.
fn connect(port: u16) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(BufReader::new(stream))
}

/// One RESP connection speaking raw bytes.
struct Resp(BufReader<TcpStream>);

impl Resp {
    fn connect(port: u16) -> std::io::Result<Self> {
        connect(port).map(Self)
    }

    fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.0.get_mut().write_all(&out)?;
        let mut line = Vec::new();
        self.0.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line[0] == b'$' {
            let len: i64 = String::from_utf8_lossy(&line[1..])
                .trim()
                .parse()
                .unwrap_or(-1);
            if len < 0 {
                return Ok(b"(nil)".to_vec());
            }
            let mut body = vec![0; len as usize + 2];
            self.0.read_exact(&mut body)?;
            body.truncate(len as usize);
            return Ok(body);
        }
        Ok(line)
    }
}

/// One keep-alive HTTP/1.1 connection speaking raw bytes; returns status, headers, body.
struct Http(BufReader<TcpStream>);

impl Http {
    fn connect(port: u16) -> std::io::Result<Self> {
        connect(port).map(Self)
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, HashMap<String, String>, Vec<u8>)> {
        let mut out = format!(
            "{method} {path} HTTP/1.1\r\nhost: kvs\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        self.0.get_mut().write_all(&bytes)?;
        let mut status_line = String::new();
        if self.0.read_line(&mut status_line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            self.0.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; if method == "HEAD" { 0 } else { len }];
        self.0.read_exact(&mut body)?;
        Ok((status, headers, body))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A little deterministic randomness per writer.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl Resp {
    /// An array reply of bulk strings (HGETALL, LRANGE, ZRANGE ... WITHSCORES).
    fn strings(&mut self, args: &[&[u8]]) -> std::io::Result<Vec<String>> {
        let head = self.call(args)?;
        let n: usize = String::from_utf8_lossy(head.get(1..).unwrap_or_default())
            .trim()
            .parse()
            .map_err(|_| std::io::Error::other("not an array"))?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut line = Vec::new();
            self.0.read_until(b'\n', &mut line)?;
            let len: usize = String::from_utf8_lossy(&line[1..])
                .trim()
                .parse()
                .map_err(|_| std::io::Error::other("not a bulk string"))?;
            let mut body = vec![0; len + 2];
            self.0.read_exact(&mut body)?;
            body.truncate(len);
            out.push(String::from_utf8_lossy(&body).into_owned());
        }
        Ok(out)
    }
}

/// What one collection holds, as the test reads it back: a hash's `field=value` pairs sorted, a
/// list's items in order, a sorted set's `member:score` in order.
type Elements = Vec<String>;

/// The model of one collection key: its last acknowledged contents and what it holds if the
/// write in flight happened.
#[derive(Clone, Debug, Default)]
struct Coll {
    acked: Elements,
    in_flight: Option<Elements>,
}

type CollModel = Arc<Mutex<HashMap<String, Coll>>>;

/// The request that reads a collection key back whole.
fn read_back(key: &str) -> Vec<&[u8]> {
    if key.ends_with(":hash") {
        vec![b"HGETALL", key.as_bytes()]
    } else if key.ends_with(":list") {
        vec![b"LRANGE", key.as_bytes(), b"0", b"-1"]
    } else {
        vec![b"ZRANGE", key.as_bytes(), b"0", b"-1", b"WITHSCORES"]
    }
}

/// A read-back reply in the model's form.
fn elements(key: &str, raw: Vec<String>) -> Elements {
    if key.ends_with(":list") {
        return raw;
    }
    let sep = if key.ends_with(":hash") { "=" } else { ":" };
    let mut pairs: Vec<String> = raw.chunks(2).map(|p| p.join(sep)).collect();
    if key.ends_with(":hash") {
        pairs.sort();
    }
    pairs
}

/// Writes to a hash, a list and a sorted set of its own over RESP until the connection fails;
/// records each acknowledged change.
fn collection_writer(port: u16, id: usize, round: usize, model: CollModel, stop: Arc<AtomicBool>) {
    let Ok(mut con) = Resp::connect(port) else {
        return;
    };
    let mut rng = Rng(0x5bd1_e995 ^ ((id as u64 + 1) << 24) ^ round as u64);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let which = rng.next() % 3;
        let key = format!("coll:{id}:{}", ["hash", "list", "zset"][which as usize]);
        let acked = model
            .lock()
            .expect("model")
            .entry(key.clone())
            .or_default()
            .acked
            .clone();
        let item = format!("r{round}-{seq}");
        let field = format!("f{}", rng.next() % 24);
        let score = (rng.next() % 1000).to_string();
        let remove = rng.next().is_multiple_of(4);
        let (args, next): (Vec<Vec<u8>>, Elements) = match which {
            0 => {
                let mut next: Elements = acked
                    .iter()
                    .filter(|p| !p.starts_with(&format!("{field}=")))
                    .cloned()
                    .collect();
                next.push(format!("{field}={item}"));
                next.sort();
                let args = [
                    &b"HSET"[..],
                    key.as_bytes(),
                    field.as_bytes(),
                    item.as_bytes(),
                ];
                (args.iter().map(|a| a.to_vec()).collect(), next)
            }
            1 if remove => {
                let next = acked.iter().skip(1).cloned().collect();
                (vec![b"LPOP".to_vec(), key.clone().into_bytes()], next)
            }
            1 => {
                let mut next = acked.clone();
                next.push(item.clone());
                let args = [&b"RPUSH"[..], key.as_bytes(), item.as_bytes()];
                (args.iter().map(|a| a.to_vec()).collect(), next)
            }
            _ => {
                let member = format!("m{}", rng.next() % 32);
                let mut pairs: Vec<(u64, String)> = acked
                    .iter()
                    .filter_map(|p| {
                        let (m, s) = p.rsplit_once(':')?;
                        Some((s.parse().ok()?, m.to_owned()))
                    })
                    .filter(|(_, m)| *m != member)
                    .collect();
                let args: Vec<Vec<u8>> = if remove {
                    vec![
                        b"ZREM".to_vec(),
                        key.clone().into_bytes(),
                        member.into_bytes(),
                    ]
                } else {
                    pairs.push((score.parse().unwrap_or(0), member.clone()));
                    vec![
                        b"ZADD".to_vec(),
                        key.clone().into_bytes(),
                        score.into_bytes(),
                        member.into_bytes(),
                    ]
                };
                pairs.sort();
                (
                    args,
                    pairs.into_iter().map(|(s, m)| format!("{m}:{s}")).collect(),
                )
            }
        };
        model
            .lock()
            .expect("model")
            .get_mut(&key)
            .expect("key")
            .in_flight = Some(next.clone());
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        match con.call(&args) {
            Ok(r) if r.starts_with(b"-") => {
                panic!("unexpected reply {:?}", String::from_utf8_lossy(&r))
            }
            Ok(_) => {
                let mut m = model.lock().expect("model");
                let k = m.get_mut(&key).expect("key");
                k.acked = next;
                k.in_flight = None;
            }
            Err(_) => return,
        }
    }
}

/// Reads every modelled collection back; afterwards the model holds what the server holds.
fn verify_collections(ports: &Ports, model: &CollModel) -> usize {
    let mut resp = Resp::connect(ports.resp).expect("resp");
    let mut m = model.lock().expect("model");
    for (key, k) in m.iter_mut() {
        let found = elements(key, resp.strings(&read_back(key)).expect("read back"));
        assert!(
            found == k.acked || k.in_flight.as_ref() == Some(&found),
            "{key}: found {found:?}, acknowledged {:?}, in flight {:?}",
            k.acked,
            k.in_flight
        );
        k.acked = found;
        k.in_flight = None;
    }
    m.len()
}

/// Writes over RESP until the connection fails; records each acknowledged effect.
fn resp_writer(port: u16, id: usize, round: usize, model: Model, stop: Arc<AtomicBool>) {
    let Ok(mut con) = Resp::connect(port) else {
        return;
    };
    let mut rng = Rng(0x9e37_79b9 ^ ((id as u64 + 1) << 20) ^ round as u64);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let key = format!("resp:{id}:{}", rng.next() % 16);
        let delete = rng.next().is_multiple_of(5);
        let expires_at = now_ms() + 3_600_000 + rng.next() % 1_000_000;
        let mut value = format!("r{round}-{id}-{seq}-").into_bytes();
        value.extend((0..rng.next() % 64).map(|i| (i * 37 % 256) as u8));
        let next = (!delete).then(|| State {
            value: value.clone(),
            content_type: "application/octet-stream".into(),
            expires_at: Some(expires_at),
        });
        model
            .lock()
            .expect("model")
            .entry(key.clone())
            .or_default()
            .in_flight = Some(next.clone());
        let at = expires_at.to_string();
        let reply = if delete {
            con.call(&[b"DEL", key.as_bytes()])
        } else {
            con.call(&[b"SET", key.as_bytes(), &value, b"PXAT", at.as_bytes()])
        };
        match reply {
            Ok(r) if r.starts_with(b"+OK") || r.starts_with(b":") => {
                let mut m = model.lock().expect("model");
                let k = m.get_mut(&key).expect("key");
                k.acked = next;
                k.in_flight = None;
            }
            Ok(r) => panic!("unexpected reply {:?}", String::from_utf8_lossy(&r)),
            Err(_) => return,
        }
    }
}

/// Writes over HTTP until the connection fails; records each acknowledged effect.
fn http_writer(port: u16, id: usize, round: usize, model: Model, stop: Arc<AtomicBool>) {
    let Ok(mut con) = Http::connect(port) else {
        return;
    };
    let mut rng = Rng(0x51_7cc1_b727 ^ ((id as u64 + 1) << 24) ^ round as u64);
    let types = [
        "text/plain",
        "application/json",
        "image/png",
        "text/html; charset=utf-8",
    ];
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let key = format!("http:{id}:{}", rng.next() % 16);
        let delete = rng.next().is_multiple_of(5);
        let content_type = types[(rng.next() % 4) as usize];
        let value = format!("h{round}-{id}-{seq}").into_bytes();
        let next = (!delete).then(|| State {
            value: value.clone(),
            content_type: content_type.into(),
            expires_at: None,
        });
        model
            .lock()
            .expect("model")
            .entry(key.clone())
            .or_default()
            .in_flight = Some(next.clone());
        let path = format!("/kvs/{key}");
        let reply = if delete {
            con.call("DELETE", &path, &[], b"")
        } else {
            con.call("PUT", &path, &[("content-type", content_type)], &value)
        };
        match reply {
            Ok((200 | 201 | 204 | 404, _, _)) => {
                let mut m = model.lock().expect("model");
                let k = m.get_mut(&key).expect("key");
                k.acked = next;
                k.in_flight = None;
            }
            Ok((status, _, body)) => {
                panic!(
                    "unexpected status {status}: {}",
                    String::from_utf8_lossy(&body)
                )
            }
            Err(_) => return,
        }
    }
}

/// Reads every modelled key back and checks it against the model; afterwards the model holds
/// what the server holds (an in-flight write either happened or did not).
fn verify(ports: &Ports, model: &Model) -> usize {
    let mut http = Http::connect(ports.http).expect("http");
    let mut resp = Resp::connect(ports.resp).expect("resp");
    let mut m = model.lock().expect("model");
    let mut checked = 0;
    for (key, k) in m.iter_mut() {
        let (status, headers, body) = http
            .call("GET", &format!("/kvs/{key}"), &[], b"")
            .expect("get");
        let found = match status {
            200 => {
                let at: i64 = String::from_utf8_lossy(
                    &resp
                        .call(&[b"PEXPIRETIME", key.as_bytes()])
                        .expect("pexpiretime")[1..],
                )
                .trim()
                .parse()
                .expect("integer");
                Some(State {
                    value: body,
                    content_type: headers.get("content-type").cloned().unwrap_or_default(),
                    expires_at: u64::try_from(at).ok(),
                })
            }
            404 => None,
            other => panic!("GET {key}: {other}"),
        };
        let allowed = found == k.acked || k.in_flight.as_ref() == Some(&found);
        assert!(
            allowed,
            "{key}: found {found:?}, acknowledged {:?}, in flight {:?}",
            k.acked, k.in_flight
        );
        k.acked = found;
        k.in_flight = None;
        checked += 1;
    }
    checked
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("kvs-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_string_lossy().into_owned();
    let model: Model = Arc::default();
    let collections: CollModel = Arc::default();
    let rounds = 4;
    for round in 0..rounds {
        let (mut child, ports) = start(&[
            "--data-dir",
            &dir_arg,
            "--fsync",
            "always",
            "--snapshot-after",
            "65536",
        ]);
        if round > 0 {
            let checked = verify(&ports, &model);
            assert!(checked > 0, "round {round}: the model holds keys");
            let checked = verify_collections(&ports, &collections);
            assert!(checked > 0, "round {round}: the model holds collections");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for id in 0..4 {
            let (m, s) = (model.clone(), stop.clone());
            let port = ports.resp;
            writers.push(std::thread::spawn(move || {
                resp_writer(port, id, round, m, s)
            }));
            let (m, s) = (model.clone(), stop.clone());
            let port = ports.http;
            writers.push(std::thread::spawn(move || {
                http_writer(port, id, round, m, s)
            }));
            let (m, s) = (collections.clone(), stop.clone());
            let port = ports.resp;
            writers.push(std::thread::spawn(move || {
                collection_writer(port, id, round, m, s)
            }));
        }
        std::thread::sleep(Duration::from_millis(1_500));
        if round == 2 {
            // A snapshot cut short by the kill, in one round.
            if let Ok(mut r) = Resp::connect(ports.resp) {
                let _ = r.call(&[b"BGSAVE"]);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGKILL while the writers are mid-request.
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer thread");
        }
        let acked = model
            .lock()
            .expect("model")
            .values()
            .filter(|k| k.acked.is_some())
            .count();
        assert!(
            acked > 0,
            "round {round}: writes were acknowledged before the kill"
        );
    }
    let (child, ports) = start(&["--data-dir", &dir_arg, "--fsync", "always"]);
    verify(&ports, &model);
    assert!(verify_collections(&ports, &collections) > 0);
    common::stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
