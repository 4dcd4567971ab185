//! Random operation sequences against the log on a disk that crashes at random points: after
//! every crash, recovery must bring back every synced operation, in order, and invent nothing.

mod common;

use std::sync::Arc;

use common::{Op, State, block_on, open, rebuild, snapshot};
use kvs_wal::{FsyncPolicy, Log, RecoveryOptions, SimulatedDisk, SnapshotWriter, Storage};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Write(Op),
    /// Wait until everything appended so far is acknowledged (fsynced under `always`).
    Wait,
    Snapshot,
    /// A snapshot that is written but never finished, as when the process dies mid-way.
    AbandonedSnapshot,
    Crash(u64),
    /// A clean shutdown and restart: nothing is lost and recovery warns of nothing.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0u8..6, any::<u32>()).prop_map(|(k, v)| Step::Write(Op::Put(k, v))),
        4 => (0u8..6).prop_map(|k| Step::Write(Op::Delete(k))),
        3 => Just(Step::Wait),
        1 => Just(Step::Snapshot),
        1 => Just(Step::AbandonedSnapshot),
        2 => any::<u64>().prop_map(Step::Crash),
        1 => Just(Step::Restart),
    ]
}

fn state_after(history: &[Op]) -> State {
    let mut state = State::new();
    for op in history {
        op.apply(&mut state);
    }
    state
}

/// Crashes `disk`, recovers, checks the outcome against `history`, and reopens the log.
fn crash_and_recover(
    disk: &mut SimulatedDisk,
    log: Log,
    history: &mut Vec<Op>,
    seed: u64,
) -> Result<Log, TestCaseError> {
    let acknowledged = log.progress().acknowledged;
    let restarted = disk.crash(seed);
    drop(log);
    *disk = restarted;
    let (rebuilt, recovered) = rebuild(disk, RecoveryOptions::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let kept = recovered.next_lsn;
    prop_assert!(
        kept >= acknowledged,
        "acknowledged up to {acknowledged}, recovered only {kept}"
    );
    prop_assert!(
        kept as usize <= history.len(),
        "recovered more than was written"
    );
    prop_assert_eq!(&rebuilt.state, &state_after(&history[..kept as usize]));
    history.truncate(kept as usize);
    // A second recovery of the same directory finds the same thing (torn tails were cut).
    let (again, _) = rebuild(disk, RecoveryOptions::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again.state, &rebuilt.state);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    Ok(open(storage, kept, FsyncPolicy::Always))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn synced_operations_survive_any_crash(steps in prop::collection::vec(step(), 1..80)) {
        let mut disk = SimulatedDisk::new();
        let mut log = open(Arc::new(disk.clone()), 0, FsyncPolicy::Always);
        let mut history: Vec<Op> = Vec::new();
        for step in steps {
            match step {
                Step::Write(op) => {
                    let lsn = log.append(&op.encode()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(lsn as usize, history.len());
                    history.push(op);
                }
                Step::Wait => {
                    if let Some(last) = history.len().checked_sub(1) {
                        block_on(log.wait(last as u64)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert!(log.progress().synced as usize >= history.len());
                    }
                }
                Step::Snapshot => snapshot(&log, &state_after(&history)),
                Step::AbandonedSnapshot => {
                    let lsn = log.begin_snapshot();
                    let mut writer = SnapshotWriter::create(log.storage(), lsn)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    writer.append(&Op::Put(99, 1).encode()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    drop(writer);
                }
                Step::Crash(seed) => {
                    log = crash_and_recover(&mut disk, log, &mut history, seed)?;
                }
                Step::Restart => {
                    log.close();
                    drop(log);
                    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default())
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(recovered.next_lsn as usize, history.len());
                    // Only an abandoned snapshot may be left to clean up; nothing is cut.
                    prop_assert!(
                        recovered.warnings.iter().all(|w| w.contains("never finished")),
                        "{:?}",
                        recovered.warnings
                    );
                    prop_assert_eq!(&rebuilt.state, &state_after(&history));
                    log = open(Arc::new(disk.clone()), recovered.next_lsn, FsyncPolicy::Always);
                }
            }
        }
        crash_and_recover(&mut disk, log, &mut history, 1)?;
    }
}

/// The same with the `everysec` policy: what was acknowledged had reached the OS, so it is
/// only guaranteed after a sync; recovery must still invent nothing and keep log order.
#[test]
fn everysec_recovers_a_prefix() {
    let disk = SimulatedDisk::new();
    let log = open(Arc::new(disk.clone()), 0, FsyncPolicy::EverySecond);
    let mut history = Vec::new();
    for i in 0..500u32 {
        let op = Op::Put((i % 7) as u8, i);
        log.append(&op.encode()).expect("append");
        history.push(op);
    }
    block_on(log.wait(499)).expect("acknowledged");
    let disk = disk.crash(3);
    drop(log);
    let (rebuilt, recovered) = rebuild(&disk, RecoveryOptions::default()).expect("recovers");
    let kept = recovered.next_lsn as usize;
    assert!(kept <= history.len());
    assert_eq!(rebuilt.state, state_after(&history[..kept]));
}
