//! Recovery over arbitrary log bytes: whatever follows a valid segment header, recovery either
//! refuses with an error or loads a store, never panics, and a second recovery of what it left
//! finds a clean log. Records that pass their checksum go through the store's change decoder.
#![no_main]

use kvs_store::Store;
use kvs_wal::{RecoveryOptions, Replay, SimulatedDisk, Storage, recover, segment_name};
use libfuzzer_sys::fuzz_target;

struct Load<'a>(&'a Store);

impl Replay for Load<'_> {
    fn snapshot_record(&mut self, payload: &[u8]) -> Result<(), String> {
        self.0.replay(payload, 1_000).map_err(|e| e.to_string())
    }

    fn log_record(&mut self, _lsn: u64, payload: &[u8]) -> Result<(), String> {
        self.snapshot_record(payload)
    }
}

fn header() -> Vec<u8> {
    let mut out = b"KVS-LOG\0".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fuzz_target!(|data: &[u8]| {
    let disk = SimulatedDisk::new();
    let mut bytes = header();
    if data.first().is_some_and(|b| b & 2 == 2) {
        // Valid frames around arbitrary payloads (each led by a length byte), so the change
        // decoder and replay see the fuzzer's bytes, with a raw tail after them.
        let mut rest = &data[1..];
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len).min(tail.len());
            kvs_wal::encode_frame(&mut bytes, &tail[..len]);
            rest = &tail[len..];
            if len == 0 {
                bytes.extend_from_slice(rest);
                break;
            }
        }
    } else {
        bytes.extend_from_slice(data);
    }
    disk.overwrite(&segment_name(0), bytes);
    let truncate = data.first().is_some_and(|b| b & 1 == 1);
    let store = Store::with_shards(4);
    let first = recover(
        &disk,
        RecoveryOptions {
            truncate_corrupt: truncate,
        },
        &mut Load(&store),
    );
    if first.is_ok() {
        let again = Store::with_shards(4);
        let second = recover(&disk, RecoveryOptions::default(), &mut Load(&again))
            .expect("a log recovery accepted recovers again");
        assert!(second.warnings.is_empty(), "{:?}", second.warnings);
        assert_eq!(again.len(1_000), store.len(1_000));
    }
    let _ = disk.list();
});
