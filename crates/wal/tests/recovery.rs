//! Recovery from the states a data directory can be found in.

mod common;

use std::sync::Arc;

use common::{
    Op, block_on, crc32c, expect, open, puts, rebuild, segments, snapshot, write, write_and_crash,
};
use kvs_wal::{
    Directory, FsyncPolicy, HEADER_LEN, RecoveryError, RecoveryOptions, SimulatedDisk,
    SnapshotWriter, Storage, segment_name, snapshot_name,
};

#[test]
fn an_empty_directory_recovers_to_nothing() {
    let disk = SimulatedDisk::new();
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert!(rebuilt.state.is_empty());
    assert_eq!(recovered.next_lsn, 0);
    assert!(recovered.snapshot.is_none() && recovered.warnings.is_empty());
}

#[test]
fn a_real_directory_round_trips() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ops = puts(300);
    {
        let storage: Arc<dyn Storage> = Arc::new(Directory::open(dir.path()).expect("open"));
        write(storage, &ops);
    }
    let storage = Directory::open(dir.path()).expect("reopen");
    let (rebuilt, recovered) = rebuild(&storage, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, expect(&ops));
    assert_eq!(recovered.next_lsn, 300);
    assert!(recovered.log_bytes > 0);
}

#[test]
fn a_torn_tail_is_cut_with_a_warning() {
    let ops = puts(20);
    let disk = write_and_crash(&SimulatedDisk::new(), &ops);
    let last = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&last).expect("bytes");
    let whole = bytes.len();
    // Half of one more record, as a crash in the middle of a write leaves it.
    let mut extra = Vec::new();
    kvs_wal::encode_frame(&mut extra, &Op::Put(1, 1).encode());
    bytes.extend_from_slice(&extra[..extra.len() / 2]);
    disk.overwrite(&last, bytes);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, expect(&ops));
    assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
    assert!(
        recovered.warnings[0].contains("after the last point known to be synced"),
        "{:?}",
        recovered.warnings
    );
    assert_eq!(
        disk.contents(&last).expect("bytes").len(),
        whole,
        "the tail was cut off the file"
    );
    let (_, again) = rebuild(&disk, RecoveryOptions::default()).expect("recovers again");
    assert!(again.warnings.is_empty());
}

#[test]
fn a_zero_filled_tail_is_torn_too() {
    let ops = puts(5);
    let disk = write_and_crash(&SimulatedDisk::new(), &ops);
    let last = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&last).expect("bytes");
    bytes.extend_from_slice(&[0u8; 4096]);
    disk.overwrite(&last, bytes);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, expect(&ops));
    assert_eq!(recovered.next_lsn, 5);
}

#[test]
fn a_bad_checksum_mid_log_stops_recovery_naming_file_and_offset() {
    let disk = SimulatedDisk::new();
    let ops = puts(10);
    write(Arc::new(disk.clone()), &ops);
    let name = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&name).expect("bytes");
    // The third record's payload; records here are 12 + 6 bytes.
    let offset = HEADER_LEN + 2 * 18;
    bytes[offset + 14] ^= 0xff;
    disk.overwrite(&name, bytes);
    let err = rebuild(&disk, RecoveryOptions::default()).expect_err("refuses");
    match &err {
        RecoveryError::Corrupt {
            file,
            offset: at,
            truncatable,
            ..
        } => {
            assert!(file.contains(&name), "{err}");
            assert_eq!(*at, offset as u64);
            assert!(*truncatable);
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(err.to_string().contains(&format!("byte {offset}")), "{err}");
    // Asked to, recovery cuts the log there and keeps the two records before it.
    let options = RecoveryOptions {
        truncate_corrupt: true,
    };
    let (rebuilt, recovered) = rebuild(&disk, options).expect("recovers when asked");
    assert_eq!(rebuilt.state, expect(&ops[..2]));
    assert_eq!(recovered.next_lsn, 2);
    assert!(recovered.warnings[0].contains("damaged"));
    rebuild(&disk, RecoveryOptions::default()).expect("clean afterwards");
}

#[test]
fn damage_in_an_earlier_segment_is_not_a_torn_tail() {
    let disk = SimulatedDisk::new();
    // Small segments: 300 records span several files.
    let ops = puts(300);
    write(Arc::new(disk.clone()), &ops);
    let names = segments(&disk);
    assert!(names.len() > 2, "{names:?}");
    let first = &names[0];
    let mut bytes = disk.contents(first).expect("bytes");
    let end = bytes.len();
    bytes.truncate(end - 3);
    disk.overwrite(first, bytes);
    let err = rebuild(&disk, RecoveryOptions::default()).expect_err("refuses");
    assert!(matches!(err, RecoveryError::Corrupt { .. }), "{err}");
}

#[test]
fn an_unknown_format_version_is_refused_by_name() {
    let disk = SimulatedDisk::new();
    write(Arc::new(disk.clone()), &puts(3));
    let name = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&name).expect("bytes");
    bytes[8] = 3;
    let crc = crc32c(&bytes[..24]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    disk.overwrite(&name, bytes);
    let err = rebuild(&disk, RecoveryOptions::default()).expect_err("refuses");
    assert!(
        matches!(err, RecoveryError::Version { found: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer kvs"), "{err}");
}

#[test]
fn a_crash_between_snapshot_write_and_rename_keeps_the_old_state() {
    let disk = SimulatedDisk::new();
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let ops = puts(40);
    let log = open(storage.clone(), 0, FsyncPolicy::Always);
    for op in &ops[..20] {
        log.append(&op.encode()).expect("append");
    }
    snapshot(&log, &expect(&ops[..20]));
    for op in &ops[20..] {
        log.append(&op.encode()).expect("append");
    }
    block_on(log.wait(39)).expect("durable");
    // A second snapshot written and synced, but the process dies before the rename.
    let lsn = log.begin_snapshot();
    let mut writer = SnapshotWriter::create(storage, lsn).expect("start");
    writer.append(&Op::Put(4, 4444).encode()).expect("record");
    drop(writer);
    // The temporary file's name reached the disk before the crash.
    disk.sync_dir().expect("sync dir");
    let disk = disk.crash(11);
    drop(log);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, expect(&ops));
    assert_eq!(
        recovered.snapshot.as_ref().map(|s| s.0.clone()),
        Some(snapshot_name(20))
    );
    assert!(
        recovered
            .warnings
            .iter()
            .any(|w| w.contains("never finished"))
    );
    assert!(
        !disk
            .list()
            .expect("list")
            .iter()
            .any(|n| n.ends_with(".tmp"))
    );
}

#[test]
fn a_snapshot_replaces_the_log_it_covers() {
    let disk = SimulatedDisk::new();
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let ops = puts(200);
    write(storage.clone(), &ops[..100]);
    let log = open(storage, 100, FsyncPolicy::Always);
    for op in &ops[100..] {
        log.append(&op.encode()).expect("append");
    }
    block_on(log.wait(199)).expect("durable");
    assert!(segments(&disk).len() > 2);
    snapshot(&log, &expect(&ops));
    log.append(&Op::Delete(0).encode()).expect("append");
    block_on(log.wait(200)).expect("durable");
    assert_eq!(
        segments(&disk),
        [segment_name(200)],
        "only the segment after the snapshot"
    );
    drop(log);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    let mut want = expect(&ops);
    want.remove(&0);
    assert_eq!(rebuilt.state, want);
    assert_eq!((recovered.log_records, recovered.next_lsn), (1, 201));
}

#[test]
fn a_damaged_snapshot_stops_recovery() {
    let disk = SimulatedDisk::new();
    let log = open(Arc::new(disk.clone()), 0, FsyncPolicy::Always);
    snapshot(&log, &expect(&puts(10)));
    drop(log);
    let name = snapshot_name(0);
    let mut bytes = disk.contents(&name).expect("snapshot");
    let at = bytes.len() - 25;
    bytes[at] ^= 1;
    disk.overwrite(&name, bytes);
    let err = rebuild(&disk, RecoveryOptions::default()).expect_err("refuses");
    assert!(
        matches!(
            err,
            RecoveryError::Corrupt {
                truncatable: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&name));
}
