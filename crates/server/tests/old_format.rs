//! A data directory written by kvs before values carried a type tag (file format version 1)
//! still recovers, and every value written then reads back the same: bytes, content type,
//! version, expiry. The files are built here byte by byte as the version-1 format describes
//! them (docs/wal-format.md), so this test keeps meaning the old format whatever the writer
//! becomes.

use kvs_server::{Engine, FsyncPolicy, Persistence};
use kvs_store::{Command, Get, Reply};

const FAR: u64 = 4_102_444_800_000; // 2100-01-01, in ms

/// A version-1 file header: magic, version 1, flags 0, LSN, CRC32C of the 24 bytes before it.
fn header(magic: &[u8; 8], lsn: u64) -> Vec<u8> {
    let mut h = magic.to_vec();
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&lsn.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// A frame: length, CRC32C of the length and the payload, the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    [&len[..], &crc.to_le_bytes(), payload].concat()
}

fn key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
}

/// A version-1 put: tag 1, flags (1 expiry, 2 content type), key, [content type], version,
/// modification time, value, [expiry].
fn put(out: &mut Vec<u8>, k: &str, value: &str, ct: Option<&str>, version: u64, exp: Option<u64>) {
    let flags = u8::from(exp.is_some()) | if ct.is_some() { 2 } else { 0 };
    out.extend_from_slice(&[1, flags]);
    key(out, k);
    if let Some(ct) = ct {
        out.extend_from_slice(&(ct.len() as u32).to_le_bytes());
        out.extend_from_slice(ct.as_bytes());
    }
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&1_000u64.to_le_bytes());
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
    if let Some(at) = exp {
        out.extend_from_slice(&at.to_le_bytes());
    }
}

fn record(revision: u64, build: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut r = revision.to_le_bytes().to_vec();
    build(&mut r);
    r
}

fn get(engine: &Engine, k: &str) -> Reply {
    let answer = engine.apply(Command::Get(Get::new(k.to_owned())));
    answer.ready().unwrap_or_else(|_| panic!("a read wrote"))
}

#[test]
fn a_version_one_directory_recovers_with_every_value_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The snapshot: replay resumes at LSN 2.
    let mut snapshot = header(b"KVS-SNAP", 2);
    snapshot.extend(frame(&record(2, |r| {
        put(r, "a", "alpha", Some("text/plain"), 1, None);
        put(r, "b", "beta", None, 2, Some(FAR));
    })));
    let mut trailer = u64::MAX.to_le_bytes().to_vec();
    trailer.extend_from_slice(&1u64.to_le_bytes());
    let crc = crc32c::crc32c(&trailer);
    trailer.extend_from_slice(&crc.to_le_bytes());
    snapshot.extend(trailer);
    std::fs::write(
        dir.path().join("snapshot-00000000000000000002.kvs"),
        snapshot,
    )
    .expect("write");
    // The log after it: a new key, a deletion, a replacement.
    let mut log = header(b"KVS-LOG\0", 2);
    log.extend(frame(&record(3, |r| {
        put(r, "c", "gamma", None, 3, Some(FAR))
    })));
    log.extend(frame(&record(4, |r| {
        r.push(3);
        key(r, "b");
    })));
    log.extend(frame(&record(5, |r| {
        put(r, "a", "alpha2", Some("application/json"), 5, None)
    })));
    std::fs::write(dir.path().join("log-00000000000000000002.wal"), log).expect("write");

    let engine = Engine::open(&Persistence::in_dir(dir.path(), FsyncPolicy::Always))
        .expect("a version-1 directory recovers");
    match get(&engine, "a") {
        Reply::Value(e) => {
            assert_eq!(e.value, "alpha2");
            assert_eq!(e.content_type, "application/json");
            assert_eq!((e.version, e.modified_at, e.expires_at), (5, 1_000, None));
        }
        other => panic!("a: {other:?}"),
    }
    match get(&engine, "c") {
        Reply::Value(e) => {
            assert_eq!(e.value, "gamma");
            assert_eq!(e.content_type, "application/octet-stream");
            assert_eq!((e.version, e.expires_at), (3, Some(FAR)));
        }
        other => panic!("c: {other:?}"),
    }
    assert_eq!(get(&engine, "b"), Reply::NotFound);
    assert_eq!(engine.store().revision(), 5);
    engine.close();
}
