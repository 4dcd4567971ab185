//! A tiny key-value state machine over the log, for recovery tests: records are
//! `[1, key, value (u32 LE)]` (put) or `[2, key]` (delete); snapshot records are puts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use kvs_wal::{
    FsyncPolicy, Leader, Log, LogOptions, Recovered, RecoveryError, RecoveryOptions, Replay,
    SimulatedDisk, SnapshotWriter, Storage, recover,
};

pub type State = BTreeMap<u8, u32>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put(u8, u32),
    Delete(u8),
}

impl Op {
    pub fn encode(self) -> Vec<u8> {
        match self {
            Op::Put(k, v) => {
                let mut out = vec![1, k];
                out.extend_from_slice(&v.to_le_bytes());
                out
            }
            Op::Delete(k) => vec![2, k],
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Op, String> {
        match bytes {
            [1, k, a, b, c, d] => Ok(Op::Put(*k, u32::from_le_bytes([*a, *b, *c, *d]))),
            [2, k] => Ok(Op::Delete(*k)),
            other => Err(format!("not an op: {other:?}")),
        }
    }

    pub fn apply(self, state: &mut State) {
        match self {
            Op::Put(k, v) => {
                state.insert(k, v);
            }
            Op::Delete(k) => {
                state.remove(&k);
            }
        }
    }
}

/// Replays into a [`State`], checking that log LSNs arrive in order.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub state: State,
    pub lsns: Vec<u64>,
}

impl Replay for Rebuilt {
    fn snapshot_record(&mut self, payload: &[u8]) -> Result<(), String> {
        Op::decode(payload)?.apply(&mut self.state);
        Ok(())
    }

    fn log_record(&mut self, lsn: u64, payload: &[u8]) -> Result<(), String> {
        if let Some(last) = self.lsns.last()
            && lsn != last + 1
        {
            return Err(format!("LSN {lsn} after {last}"));
        }
        self.lsns.push(lsn);
        Op::decode(payload)?.apply(&mut self.state);
        Ok(())
    }
}

pub fn rebuild(
    storage: &dyn Storage,
    options: RecoveryOptions,
) -> Result<(Rebuilt, Recovered), RecoveryError> {
    let mut rebuilt = Rebuilt::default();
    let recovered = recover(storage, options, &mut rebuilt)?;
    Ok((rebuilt, recovered))
}

/// Options for a test log: small segments, the caller leading batches.
pub fn options(fsync: FsyncPolicy) -> LogOptions {
    LogOptions {
        fsync,
        leader: Leader::Caller,
        segment_bytes: 256,
        snapshot_after: u64::MAX,
    }
}

pub fn open(storage: Arc<dyn Storage>, next_lsn: u64, fsync: FsyncPolicy) -> Log {
    open_with(storage, next_lsn, fsync, Leader::Caller)
}

/// [`open`] with the given batch leader.
pub fn open_with(
    storage: Arc<dyn Storage>,
    next_lsn: u64,
    fsync: FsyncPolicy,
    leader: Leader,
) -> Log {
    let options = LogOptions {
        leader,
        ..options(fsync)
    };
    Log::open(storage, next_lsn, 0, options, || {}).expect("log opens")
}

/// Writes a snapshot of `state` the way the server does: mark the log, write, finish, then
/// remove the segments it covers.
pub fn snapshot(log: &Log, state: &State) {
    let lsn = log.begin_snapshot();
    let mut writer = SnapshotWriter::create(log.storage(), lsn).expect("snapshot starts");
    for (&k, &v) in state {
        writer
            .append(&Op::Put(k, v).encode())
            .expect("snapshot record");
    }
    writer.finish().expect("snapshot finishes");
    log.remove_covered(lsn).expect("covered segments removed");
}

pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// `n` puts over five keys.
pub fn puts(n: u32) -> Vec<Op> {
    (0..n).map(|i| Op::Put((i % 5) as u8, i)).collect()
}

/// The state `ops` leave.
pub fn expect(ops: &[Op]) -> State {
    let mut state = State::new();
    ops.iter().for_each(|op| op.apply(&mut state));
    state
}

/// Writes `ops` under `always`, waiting for every tenth and the last, then closes the log
/// cleanly (dropping it seals the segment).
pub fn write(storage: Arc<dyn Storage>, ops: &[Op]) {
    let log = open(storage, 0, FsyncPolicy::Always);
    for (i, op) in ops.iter().enumerate() {
        let lsn = log.append(&op.encode()).expect("append");
        // Separate batches, so the small segments of these tests fill up and rotate.
        if i % 10 == 9 {
            block_on(log.wait(lsn)).expect("durable");
        }
    }
    block_on(log.wait(ops.len() as u64 - 1)).expect("durable");
}

/// Writes `ops` as [`write`] does, then crashes instead of closing: every record was synced,
/// and the newest segment is not sealed. Returns the disk as the restarted process sees it.
pub fn write_and_crash(disk: &SimulatedDisk, ops: &[Op]) -> SimulatedDisk {
    let log = open(Arc::new(disk.clone()), 0, FsyncPolicy::Always);
    for (i, op) in ops.iter().enumerate() {
        let lsn = log.append(&op.encode()).expect("append");
        if i % 10 == 9 {
            block_on(log.wait(lsn)).expect("durable");
        }
    }
    block_on(log.wait(ops.len() as u64 - 1)).expect("durable");
    let restarted = disk.crash(5);
    drop(log);
    restarted
}

/// The log segments on `disk`, oldest first.
pub fn segments(disk: &SimulatedDisk) -> Vec<String> {
    let mut names: Vec<String> = disk
        .list()
        .expect("list")
        .into_iter()
        .filter(|n| n.starts_with("log-"))
        .collect();
    names.sort();
    names
}

/// Bitwise CRC32C, independent of the crate under test.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One frame of a segment as the format document describes it, read without the crate under
/// test: a record, or a 20-byte mark (`len` of `u64::MAX - 2` for a synced marker, `u64::MAX - 1`
/// for a seal) with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    Record { at: usize, len: usize },
    Synced { at: usize, offset: u64 },
    Seal { at: usize, end: u64 },
}

/// The frames of an undamaged version-2 segment.
pub fn frames(segment: &[u8]) -> Vec<Frame> {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&segment[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let mut out = Vec::new();
    let mut at = kvs_wal::HEADER_LEN;
    while at < segment.len() {
        let len = word(at);
        if len == u64::MAX - 2 {
            out.push(Frame::Synced {
                at,
                offset: word(at + 8),
            });
            at += 20;
        } else if len == u64::MAX - 1 {
            out.push(Frame::Seal {
                at,
                end: word(at + 8),
            });
            at += 20;
        } else {
            out.push(Frame::Record {
                at,
                len: len as usize,
            });
            at += 12 + len as usize;
        }
    }
    out
}
