//! A tiny key-value state machine over the log, for recovery tests: records are
//! `[1, key, value (u32 LE)]` (put) or `[2, key]` (delete); snapshot records are puts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use kvs_wal::{
    FsyncPolicy, Log, LogOptions, Recovered, RecoveryError, RecoveryOptions, Replay,
    SnapshotWriter, Storage, recover,
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

pub fn options(fsync: FsyncPolicy) -> LogOptions {
    LogOptions {
        fsync,
        segment_bytes: 256,
        snapshot_after: u64::MAX,
    }
}

pub fn open(storage: Arc<dyn Storage>, next_lsn: u64, fsync: FsyncPolicy) -> Log {
    Log::open(storage, next_lsn, 0, options(fsync), || {}).expect("log opens")
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
