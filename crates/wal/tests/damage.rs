//! Which damage recovery may cut off as a torn write, and which is corruption: only the unsynced
//! tail of a log that was not closed cleanly can hold a partial write. A clean close seals the
//! segment; a synced marker tells how far the segment was durable.

mod common;

use std::sync::Arc;

use common::{
    Frame, crc32c, expect, frames, open, puts, rebuild, segments, write, write_and_crash,
};
use kvs_wal::{FsyncPolicy, RecoveryError, RecoveryOptions, SimulatedDisk};

/// Checks that recovery refuses with corruption at `offset` of `name`, with the hint path.
fn refused_at(disk: &SimulatedDisk, name: &str, offset: usize) -> String {
    let err = rebuild(disk, RecoveryOptions::default()).expect_err("refuses");
    match &err {
        RecoveryError::Corrupt {
            file,
            offset: at,
            truncatable,
            ..
        } => {
            assert!(file.contains(name), "{err}");
            assert_eq!(*at, offset as u64, "{err}");
            assert!(*truncatable, "{err}");
        }
        other => panic!("wrong error: {other}"),
    }
    let message = err.to_string();
    assert!(message.contains(&format!("byte {offset}")), "{message}");
    message
}

/// The last record frame before `limit` in `segment`: its offset and whole length.
fn last_record_before(segment: &[u8], limit: usize) -> (usize, usize) {
    frames(segment)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Record { at, len } if at < limit => Some((at, 12 + len)),
            _ => None,
        })
        .next_back()
        .expect("a record")
}

#[test]
fn a_clean_close_seals_the_segment_and_recovers_without_warnings() {
    let disk = SimulatedDisk::new();
    let ops = puts(20);
    write(Arc::new(disk.clone()), &ops);
    let name = segments(&disk).pop().expect("a segment");
    let written = frames(&disk.contents(&name).expect("bytes"));
    assert!(
        matches!(written.last(), Some(Frame::Seal { end: 20, .. })),
        "{written:?}"
    );
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, expect(&ops));
    // Markers and seals are not records: they take no LSN and are never replayed.
    assert_eq!(rebuilt.lsns, (0..20).collect::<Vec<_>>());
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
    // The next run appends to a new segment; the sealed one stays as it is, and a crash then
    // leaves both readable.
    let log = open(Arc::new(disk.clone()), 20, FsyncPolicy::Always);
    log.append(&common::Op::Delete(0).encode()).expect("append");
    common::block_on(log.wait(20)).expect("durable");
    let disk = disk.crash(2);
    drop(log);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(recovered.next_lsn, 21);
    assert!(!rebuilt.state.contains_key(&0));
}

/// (a) A record acknowledged under `always`, a clean shutdown, then any byte of the last record
/// changed: that is damage to durable data, never a torn write.
#[test]
fn damage_in_the_last_record_after_a_clean_close_is_corruption() {
    let disk = SimulatedDisk::new();
    let ops = puts(20);
    write(Arc::new(disk.clone()), &ops);
    let name = segments(&disk).pop().expect("a segment");
    let good = disk.contents(&name).expect("bytes");
    let (at, len) = last_record_before(&good, good.len());
    assert_eq!(
        at + len + 20,
        good.len(),
        "the seal follows the last record"
    );
    for byte in at..at + len {
        let mut bad = good.clone();
        bad[byte] ^= 0x40;
        disk.overwrite(&name, bad);
        let message = refused_at(&disk, &name, at);
        assert!(message.contains("sealed"), "byte {byte}: {message}");
    }
    // A damaged seal alone loses nothing: the records before it are whole.
    let mut bad = good.clone();
    let seal = good.len() - 20;
    bad[seal + 9] ^= 1;
    disk.overwrite(&name, bad);
    let (rebuilt, _) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, expect(&ops));
}

/// (d) The operator's way out of (a) still works: cut the log at the damaged record.
#[test]
fn truncate_corrupt_log_cuts_a_damaged_sealed_segment() {
    let disk = SimulatedDisk::new();
    let ops = puts(20);
    write(Arc::new(disk.clone()), &ops);
    let name = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&name).expect("bytes");
    let (at, _) = last_record_before(&bytes, bytes.len());
    // The length's highest byte: the frame now claims more bytes than the file holds.
    bytes[at + 7] ^= 0x01;
    disk.overwrite(&name, bytes);
    refused_at(&disk, &name, at);
    let options = RecoveryOptions {
        truncate_corrupt: true,
    };
    let (rebuilt, recovered) = rebuild(&disk, options).expect("recovers when asked");
    assert_eq!(rebuilt.state, expect(&ops[..19]));
    assert_eq!(recovered.next_lsn, 19);
    assert!(
        recovered.warnings[0].contains("damaged"),
        "{:?}",
        recovered.warnings
    );
    assert_eq!(disk.contents(&name).expect("bytes").len(), at);
    let (_, again) = rebuild(&disk, RecoveryOptions::default()).expect("clean afterwards");
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

/// (b) Batches fsynced, then a crash: a record before the last synced marker was durable, so
/// damage to it is corruption even where it looks like a cut-short write.
#[test]
fn damage_before_the_last_synced_marker_is_corruption() {
    let ops = puts(20);
    let disk = write_and_crash(&SimulatedDisk::new(), &ops);
    let name = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&name).expect("bytes");
    let synced = frames(&bytes)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Synced { offset, .. } => Some(offset as usize),
            _ => None,
        })
        .next_back()
        .expect("the second batch begins with a synced marker");
    let (at, _) = last_record_before(&bytes, synced);
    bytes[at + 7] ^= 0x01;
    disk.overwrite(&name, bytes);
    let message = refused_at(&disk, &name, at);
    assert!(message.contains("known to be synced"), "{message}");
}

/// (c) A genuine torn write after the last marker: cut off with a warning that says only what
/// is known, and every record before it kept.
#[test]
fn a_torn_write_after_the_last_marker_is_cut_saying_what_is_known() {
    let ops = puts(20);
    let disk = write_and_crash(&SimulatedDisk::new(), &ops);
    let name = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&name).expect("bytes");
    let synced = bytes.len();
    // A batch begun after the last fsync: its synced marker, then half a record.
    bytes.extend_from_slice(&(u64::MAX - 2).to_le_bytes());
    bytes.extend_from_slice(&(synced as u64).to_le_bytes());
    let crc = crc32c(&bytes[synced..]);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let torn_at = bytes.len();
    let mut record = Vec::new();
    kvs_wal::encode_frame(&mut record, &common::Op::Put(1, 1).encode());
    bytes.extend_from_slice(&record[..record.len() - 3]);
    let cut = bytes.len() - torn_at;
    disk.overwrite(&name, bytes);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    assert_eq!(rebuilt.state, expect(&ops));
    assert_eq!(recovered.next_lsn, 20);
    let [warning] = recovered.warnings.as_slice() else {
        panic!("{:?}", recovered.warnings);
    };
    for part in [
        format!("cut off {cut} bytes at the end of"),
        format!("from byte {torn_at}"),
        format!("after the last point known to be synced (byte {synced})"),
        "if kvs ran with --fsync always, those records were never acknowledged".to_owned(),
    ] {
        assert!(warning.contains(&part), "{part:?} not in {warning}");
    }
    assert_eq!(disk.contents(&name).expect("bytes").len(), torn_at);
}

#[test]
fn a_sealed_segment_that_goes_on_after_its_seal_is_corruption() {
    let disk = SimulatedDisk::new();
    write(Arc::new(disk.clone()), &puts(5));
    let name = segments(&disk).pop().expect("a segment");
    let mut bytes = disk.contents(&name).expect("bytes");
    let end = bytes.len();
    kvs_wal::encode_frame(&mut bytes, &common::Op::Put(1, 1).encode());
    disk.overwrite(&name, bytes);
    refused_at(&disk, &name, end);
}
