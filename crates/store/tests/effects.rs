//! Writes become effects handed to the commit pipeline: replaying the records a store submitted
//! rebuilds exactly the same keyspace (values, content types, versions, expiries), for every write
//! command, inside transactions, and under concurrent writers on shared keys; every write gets the
//! ticket of its own submission back, and reads get none.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kvs_store::change::{decode, encode};
use kvs_store::{Change, Command, Commit, Effects, Entry, Removal, Store, Ticket, Transaction};
use parking_lot::Mutex;
use proptest::prelude::*;

/// A pipeline that keeps every record it is given; ticket n is the n-th record (from 0).
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Vec<u8>>>);

impl Commit for Recorder {
    fn submit(&self, effects: &Effects) -> Ticket {
        let mut record = Vec::new();
        encode(effects, &mut record);
        let mut records = self.0.lock();
        records.push(record);
        Ticket::Queued(records.len() as u64 - 1)
    }
}

fn journaled() -> (Store, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let mut store = Store::with_shards(8);
    store.set_commit(recorder.clone());
    (store, recorder)
}

fn command(line: &str) -> Command {
    let argv: Vec<Bytes> = line
        .split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    Command::from_argv(&argv).unwrap_or_else(|e| panic!("{line}: {e:?}"))
}

/// Every live key with its entry, read through a snapshot.
fn contents(store: &Store, now: u64) -> BTreeMap<Bytes, Entry> {
    let mut out = BTreeMap::new();
    store
        .snapshot(now, |record| {
            for change in decode(record).expect("decodes").changes {
                if let Change::Put(key, entry) = change {
                    out.insert(key, entry);
                }
            }
            Ok::<_, ()>(())
        })
        .expect("snapshot");
    out
}

fn replayed(records: &[Vec<u8>], now: u64) -> Store {
    let copy = Store::with_shards(4);
    for record in records {
        copy.replay(record, now).expect("replays");
    }
    copy
}

const KEYS: &[&str] = &["a", "b", "c", "n"];

fn line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(KEYS);
    let key2 = prop::sample::select(KEYS);
    let n = 0u32..50;
    (key, key2, n, 0usize..20).prop_map(|(k, k2, n, which)| match which {
        0 => format!("SET {k} v{n}"),
        1 => format!("SET {k} v{n} PX {}", 1000 + n),
        2 => format!("SET {k} v{n} NX"),
        3 => format!("APPEND {k} x{n}"),
        4 => format!("INCR n{}", n % 2),
        5 => format!("INCRBYFLOAT f {n}.5"),
        6 => format!("SETRANGE {k} {} yy", n % 5),
        7 => format!("DEL {k} {k2}"),
        8 => format!("GETDEL {k}"),
        9 => format!("EXPIRE {k} {n}"),
        10 => format!("PERSIST {k}"),
        11 => format!("GETEX {k} PX {}", 500 + n),
        12 => format!("MSET {k} m{n} {k2} m{n}"),
        13 => format!("RENAME {k} {k2}"),
        14 => format!("COPY {k} {k2} REPLACE"),
        15 => format!("EXPIRE {k} 0"),
        16 if n == 7 => "FLUSHALL".to_owned(),
        17 => format!("PEXPIRE {k} {n} GT"),
        _ => format!("GET {k}"),
    })
}

proptest! {
    #[test]
    fn replay_rebuilds_the_same_keyspace(
        steps in prop::collection::vec((prop::collection::vec(line(), 1..4), any::<bool>()), 1..40)
    ) {
        let (store, recorder) = journaled();
        let mut now = 1_000;
        for (lines, as_block) in steps {
            now += 7;
            let commands: Vec<Command> = lines.iter().map(|l| command(l)).collect();
            if as_block {
                let txn = Transaction::lock(&store, None);
                for c in commands {
                    c.apply(&txn, now);
                }
                let _ = txn.commit();
            } else {
                for c in commands {
                    let _ = store.apply(c, now);
                }
            }
        }
        let records = recorder.0.lock().clone();
        // Replayed at the same instant, and later, when more keys have expired.
        for at in [now, now + 600] {
            let copy = replayed(&records, at);
            prop_assert_eq!(contents(&copy, at), contents(&store, at));
        }
        prop_assert_eq!(replayed(&records, now).revision(), store.revision());
    }
}

#[test]
fn a_transaction_is_one_record() {
    let (store, recorder) = journaled();
    let _ = store.apply(command("SET before 1"), 10);
    let txn = Transaction::lock(&store, None);
    for line in ["SET a 1", "FLUSHALL", "SET b 2", "INCR n", "GET b"] {
        command(line).apply(&txn, 10);
    }
    assert_eq!(txn.commit(), Some(Ticket::Queued(1)));
    let records = recorder.0.lock().clone();
    assert_eq!(records.len(), 2);
    let changes = decode(&records[1]).expect("decodes").changes;
    // FLUSHALL makes what came before it in the block moot: it starts the record.
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0], Change::Flush);
    let copy = replayed(&records, 10);
    assert_eq!(contents(&copy, 10), contents(&store, 10));
    assert_eq!(copy.len(10), 2);

    // A block dropped without commit still hands its changes over: the log never misses one.
    {
        let txn = Transaction::lock(&store, None);
        command("SET dropped 1").apply(&txn, 10);
    }
    assert_eq!(recorder.0.lock().len(), 3);
}

#[test]
fn every_write_gets_its_own_ticket_and_reads_get_none() {
    let (store, _recorder) = journaled();
    assert_eq!(
        store.apply(command("SET a 1"), 10).ticket,
        Some(Ticket::Queued(0))
    );
    assert_eq!(store.apply(command("GET a"), 10).ticket, None);
    assert_eq!(store.apply(command("SET a 2 NX"), 10).ticket, None);
    assert_eq!(
        store.apply(command("MSET a 3 b 4 c 5"), 10).ticket,
        Some(Ticket::Queued(1))
    );
    assert_eq!(
        store.apply(command("DEL a b"), 10).ticket,
        Some(Ticket::Queued(2))
    );
}

#[test]
fn expiry_is_an_effect_with_its_cause() {
    let (store, recorder) = journaled();
    let _ = store.apply(command("SET gone v PX 5"), 100);
    let _ = store.apply(command("SET deleted v"), 100);
    let _ = store.apply(command("DEL deleted"), 100);
    assert_eq!(store.sweep_expired(200, 10), 1);
    let records = recorder.0.lock().clone();
    let last = |i: usize| decode(&records[i]).expect("decodes").changes;
    assert_eq!(
        last(2),
        [Change::Remove(
            Bytes::from_static(b"deleted"),
            Removal::Deleted
        )]
    );
    assert_eq!(
        last(3),
        [Change::Remove(
            Bytes::from_static(b"gone"),
            Removal::Expired
        )]
    );
}

#[test]
fn reads_and_failed_writes_record_nothing() {
    let (store, recorder) = journaled();
    let _ = store.apply(command("SET a 1"), 10);
    for line in [
        "GET a",
        "SET a 2 NX",
        "INCR a x",
        "DEL missing",
        "EXISTS a",
        "TTL a",
    ] {
        let _ = Command::from_argv(
            &line
                .split(' ')
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect::<Vec<_>>(),
        )
        .map(|c| store.apply(c, 10));
    }
    assert_eq!(recorder.0.lock().len(), 1);
}

/// Writers on several threads hit the same keys; the order the journal received the records in
/// must be an order in which replay ends where the store ended, key by key.
#[test]
fn concurrent_writers_leave_a_journal_in_apply_order() {
    let (store, recorder) = journaled();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    let line = match i % 4 {
                        0 => format!("SET k{} t{t}-{i}", i % 3),
                        1 => "INCR counter".to_owned(),
                        2 => format!("APPEND log {t}"),
                        _ => format!("MSET k{} m{t} k{} m{t}", i % 3, (i + 1) % 3),
                    };
                    let _ = store.apply(command(&line), 10);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let records = recorder.0.lock().clone();
    let copy = replayed(&records, 10);
    assert_eq!(contents(&copy, 10), contents(&store, 10));
    match copy.execute(command("GET counter"), 10) {
        kvs_store::Reply::Value(entry) => assert_eq!(entry.value, "2000"),
        other => panic!("counter: {other:?}"),
    }
}

/// A pipeline installed on demand hears nothing until noting starts; starting waits out a block
/// that took its locks before, whose changes stay unnoted (all of them, not half), and every
/// write after it is noted.
#[test]
fn noting_on_demand_starts_between_whole_writes() {
    let recorder = Arc::new(Recorder::default());
    let mut store = Store::with_shards(8);
    store.set_commit_on_demand(recorder.clone());
    assert_eq!(store.apply(command("SET early 1"), 10).ticket, None);
    assert!(recorder.0.lock().is_empty(), "noted before noting started");

    let started = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let txn = Transaction::lock(&store, None);
        command("SET a 1").apply(&txn, 10);
        let starter = scope.spawn(|| {
            store.start_noting();
            started.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !started.load(std::sync::atomic::Ordering::SeqCst),
            "noting started while a block held its locks"
        );
        command("SET b 2").apply(&txn, 10);
        assert_eq!(
            txn.commit(),
            None,
            "the block began before noting: none of it is noted"
        );
        starter.join().expect("starter");
    });
    assert!(recorder.0.lock().is_empty());
    assert_eq!(
        store.apply(command("SET late 3"), 10).ticket,
        Some(Ticket::Queued(0))
    );
    let changes = decode(&recorder.0.lock()[0]).expect("decodes").changes;
    assert!(matches!(&changes[..], [Change::Put(k, _)] if k.as_ref() == b"late"));
}
