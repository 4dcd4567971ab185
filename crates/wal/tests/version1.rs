//! Data directories written by a kvs of format version 1 still recover. The bytes are built by
//! hand from the version-1 format (header, `len | crc | payload` frames, the snapshot trailer),
//! with a CRC32C computed apart from the crate under test.

mod common;

use std::sync::Arc;

use common::{Op, block_on, crc32c, open, rebuild};
use kvs_wal::{FsyncPolicy, RecoveryOptions, SimulatedDisk, segment_name, snapshot_name};

/// A version-1 header: magic, version 1, flags 0, the LSN, the CRC32C of the 24 bytes before.
fn header(magic: &[u8; 8], lsn: u64) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A version-1 frame: `len`, the CRC32C of `len` and the payload, the payload.
fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u64).to_le_bytes();
    let mut covered = len.to_vec();
    covered.extend_from_slice(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c(&covered).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A version-1 segment starting at `lsn` holding `ops`.
fn segment(lsn: u64, ops: &[Op]) -> Vec<u8> {
    let mut out = header(b"KVS-LOG\0", lsn);
    for op in ops {
        frame(&mut out, &op.encode());
    }
    out
}

#[test]
fn the_hand_built_bytes_are_version_1() {
    let bytes = segment(0, &[Op::Put(1, 10)]);
    assert_eq!(
        &bytes[..24],
        b"KVS-LOG\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        "magic, version 1, flags, LSN 0"
    );
    assert_eq!(&bytes[28..36], &6u64.to_le_bytes(), "the record's length");
    assert_eq!(
        &bytes[40..],
        &[1, 1, 10, 0, 0, 0],
        "the record: put key 1 = 10"
    );
    assert_eq!(bytes.len(), 28 + 12 + 6);
}

#[test]
fn a_version_1_segment_recovers() {
    let disk = SimulatedDisk::new();
    let ops = [
        Op::Put(1, 10),
        Op::Put(2, 20),
        Op::Delete(1),
        Op::Put(3, 30),
    ];
    disk.overwrite(&segment_name(0), segment(0, &ops));
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, common::expect(&ops));
    assert_eq!((recovered.next_lsn, recovered.log_records), (4, 4));
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);

    // The log goes on in a version-2 segment; both are read at the next start.
    let log = open(Arc::new(disk.clone()), 4, FsyncPolicy::Always);
    log.append(&Op::Delete(2).encode()).expect("append");
    block_on(log.wait(4)).expect("durable");
    drop(log);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(recovered.next_lsn, 5);
    assert_eq!(rebuilt.state.into_iter().collect::<Vec<_>>(), [(3, 30)]);
}

#[test]
fn a_version_1_torn_tail_is_cut_by_version_1_rules() {
    let disk = SimulatedDisk::new();
    let ops = [Op::Put(1, 10), Op::Put(2, 20)];
    let mut bytes = segment(0, &ops);
    let whole = bytes.len();
    let mut extra = Vec::new();
    frame(&mut extra, &Op::Put(3, 30).encode());
    bytes.extend_from_slice(&extra[..extra.len() - 2]);
    disk.overwrite(&segment_name(0), bytes);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, common::expect(&ops));
    let [warning] = recovered.warnings.as_slice() else {
        panic!("{:?}", recovered.warnings);
    };
    assert!(warning.contains("version-1"), "{warning}");
    assert!(!warning.contains("never acknowledged"), "{warning}");
    assert_eq!(
        disk.contents(&segment_name(0)).map(|b| b.len()),
        Some(whole)
    );
}

#[test]
fn a_version_1_snapshot_and_the_log_after_it_recover() {
    let disk = SimulatedDisk::new();
    let mut snapshot = header(b"KVS-SNAP", 2);
    frame(&mut snapshot, &Op::Put(1, 10).encode());
    frame(&mut snapshot, &Op::Put(2, 20).encode());
    // The trailer: `len` u64::MAX, the record count, the CRC32C of those 16 bytes.
    let start = snapshot.len();
    snapshot.extend_from_slice(&u64::MAX.to_le_bytes());
    snapshot.extend_from_slice(&2u64.to_le_bytes());
    let crc = crc32c(&snapshot[start..]);
    snapshot.extend_from_slice(&crc.to_le_bytes());
    disk.overwrite(&snapshot_name(2), snapshot);
    disk.overwrite(
        &segment_name(2),
        segment(2, &[Op::Delete(1), Op::Put(4, 40)]),
    );
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(recovered.snapshot, Some((snapshot_name(2), 2)));
    assert_eq!((recovered.next_lsn, recovered.log_records), (4, 2));
    assert_eq!(
        rebuilt.state.into_iter().collect::<Vec<_>>(),
        [(2, 20), (4, 40)]
    );
}
