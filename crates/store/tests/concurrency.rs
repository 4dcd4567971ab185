//! Many threads on one shared store: optimistic counters never lose an update, exactly one
//! creator wins each `IfAbsent` race, and readers never see a torn or unknown value.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use bytes::Bytes;
use kvs_store::{Command, Condition, Delete, Entry, Get, List, Millis, Reply, Set, Store};

const THREADS: usize = 8;
const NOW: Millis = 1_000;

fn get(store: &Store, key: &str) -> Option<Entry> {
    match store.execute(Command::Get(Get::new(key.to_owned())), NOW) {
        Reply::Value(e) => Some(e),
        Reply::NotFound => None,
        other => panic!("get {key}: unexpected reply {other:?}"),
    }
}

/// A small deterministic generator, so each thread has its own reproducible key order.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---- (a) version-checked counters ----

/// One successful increment: which counter, the version it read, the version it wrote.
#[derive(Clone, Copy, Debug)]
struct Success {
    counter: usize,
    prev: u64,
    new: u64,
}

#[test]
fn version_checked_counters_lose_no_update() {
    const COUNTERS: usize = 3;
    const INCREMENTS_PER_THREAD: usize = 400;

    let store = Arc::new(Store::with_shards(4));
    let names: Vec<String> = (0..COUNTERS).map(|i| format!("counter/{i}")).collect();
    let mut initial = Vec::new();
    for name in &names {
        match store.execute(Command::Set(Set::new(name.clone(), "0")), NOW) {
            Reply::Stored { version, .. } => initial.push(version),
            other => panic!("initial set: {other:?}"),
        }
    }
    let conflicts = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let names = names.clone();
            let conflicts = Arc::clone(&conflicts);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                let mut successes = Vec::with_capacity(INCREMENTS_PER_THREAD);
                barrier.wait();
                while successes.len() < INCREMENTS_PER_THREAD {
                    let counter = rng.below(COUNTERS);
                    let name = &names[counter];
                    let read = get(&store, name).expect("counters are never deleted");
                    // Widen the window between read and write, so increments really collide.
                    if rng.below(2) == 0 {
                        thread::yield_now();
                    }
                    let n: u64 = std::str::from_utf8(read.value.as_string().expect("a string"))
                        .expect("utf-8 counter")
                        .parse()
                        .expect("numeric counter");
                    let set = Set::new(name.clone(), (n + 1).to_string())
                        .condition(Condition::IfVersion(read.version));
                    match store.execute(Command::Set(set), NOW) {
                        Reply::Stored {
                            version,
                            created,
                            previous,
                        } => {
                            assert!(!created, "an increment cannot create the counter");
                            // The write replaced exactly the entry this thread read.
                            assert_eq!(previous.as_ref(), Some(&read), "{name}");
                            assert!(version > read.version, "{version} <= {}", read.version);
                            successes.push(Success {
                                counter,
                                prev: read.version,
                                new: version,
                            });
                        }
                        Reply::ConditionFailed { current } => {
                            // Refused only because someone else wrote in between.
                            let current = current.expect("counter exists");
                            assert!(current > read.version, "{current} <= {}", read.version);
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("increment {name}: unexpected reply {other:?}"),
                    }
                }
                successes
            })
        })
        .collect();
    let successes: Vec<Success> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("worker panicked"))
        .collect();
    assert_eq!(successes.len(), THREADS * INCREMENTS_PER_THREAD);

    for (counter, name) in names.iter().enumerate() {
        let mut chain: Vec<Success> = successes
            .iter()
            .filter(|s| s.counter == counter)
            .copied()
            .collect();
        let last = get(&store, name).expect("counter exists");
        // No lost update: the value counts every successful increment.
        assert_eq!(
            last.value,
            Bytes::from(chain.len().to_string()),
            "{name}: value does not match {} successful increments",
            chain.len()
        );
        // No two increments succeeded from the same version.
        let mut prevs = HashSet::new();
        for s in &chain {
            assert!(
                prevs.insert(s.prev),
                "{name}: two increments from version {}",
                s.prev
            );
        }
        // The successes form one chain initial -> ... -> current, versions strictly increasing.
        chain.sort_by_key(|s| s.new);
        let mut expected_prev = initial[counter];
        for s in &chain {
            assert_eq!(s.prev, expected_prev, "{name}: chain broken at {s:?}");
            assert!(s.new > s.prev, "{name}: version did not increase at {s:?}");
            expected_prev = s.new;
        }
        assert_eq!(
            last.version, expected_prev,
            "{name}: final version is not the chain's end"
        );
    }
    // Versions are store-wide: every write got its own.
    let all_new: HashSet<u64> = successes.iter().map(|s| s.new).collect();
    assert_eq!(
        all_new.len(),
        successes.len(),
        "a version was handed out twice"
    );
    assert_eq!(
        store.revision(),
        (COUNTERS + successes.len()) as u64,
        "every successful write takes exactly one version, failed ones none"
    );
    eprintln!(
        "counters: {} increments, {} conflicts retried",
        successes.len(),
        conflicts.load(Ordering::Relaxed)
    );
}

// ---- (b) IfAbsent races ----

#[test]
fn exactly_one_if_absent_creator_wins() {
    const KEYS: usize = 300;

    let store = Arc::new(Store::new());
    // Every other key holds an entry that has expired but not been swept: it counts as absent.
    for k in (0..KEYS).filter(|k| k % 2 == 1) {
        let set = Set::new(format!("race/{k}"), "stale").expires_at(NOW - 1);
        assert!(matches!(
            store.execute(Command::Set(set), NOW - 10),
            Reply::Stored { .. }
        ));
    }
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                // Only record here: a worker that panicked would leave the others stuck at the
                // barrier, so every check happens after the join.
                let mut replies = Vec::with_capacity(KEYS);
                for k in 0..KEYS {
                    // Line everyone up every few keys so the attempts really race.
                    if k % 10 == 0 {
                        barrier.wait();
                    }
                    let set = Set::new(format!("race/{k}"), format!("thread-{t}"))
                        .condition(Condition::IfAbsent);
                    replies.push(store.execute(Command::Set(set), NOW));
                }
                replies
            })
        })
        .collect();
    let replies: Vec<Vec<Reply>> = handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .collect();
    // Per thread and key: (won, version it wrote or the version that refused it).
    let outcomes: Vec<Vec<(bool, u64)>> = replies
        .iter()
        .map(|per_key| {
            per_key
                .iter()
                .enumerate()
                .map(|(k, reply)| match reply {
                    Reply::Stored {
                        version,
                        created,
                        previous,
                    } => {
                        assert!(created, "race/{k}: IfAbsent write did not create");
                        assert_eq!(*previous, None, "race/{k}");
                        (true, *version)
                    }
                    Reply::ConditionFailed { current } => {
                        (false, current.expect("the winner's key exists"))
                    }
                    other => panic!("race/{k}: unexpected reply {other:?}"),
                })
                .collect()
        })
        .collect();

    for k in 0..KEYS {
        let winners: Vec<usize> = (0..THREADS).filter(|&t| outcomes[t][k].0).collect();
        assert_eq!(winners.len(), 1, "race/{k}: winners {winners:?}");
        let winner = winners[0];
        let won_version = outcomes[winner][k].1;
        let entry = get(&store, &format!("race/{k}")).expect("the winner's key exists");
        assert_eq!(
            entry.value,
            Bytes::from(format!("thread-{winner}")),
            "race/{k}"
        );
        assert_eq!(entry.version, won_version, "race/{k}");
        // Every loser was refused because of the winner's write, not some other version.
        for (t, outcome) in outcomes.iter().enumerate() {
            if t != winner {
                assert_eq!(outcome[k], (false, won_version), "race/{k}, thread {t}");
            }
        }
    }
}

// ---- (c) readers never see torn or unknown values ----

/// The value written as the `seq`-th write of `writer` to `key`: it names both and carries a
/// body whose length and bytes depend on them, so any mix of two writes is detectable.
fn pattern(key: &str, writer: usize, seq: u64) -> (String, String) {
    let len = 8 + (seq as usize * 7 + writer * 13) % 120;
    let fill = char::from(b'a' + ((seq as usize + writer) % 26) as u8);
    let body: String = std::iter::repeat_n(fill, len).collect();
    let value = format!("{key}|{writer}|{seq}|{body}");
    let content_type = format!("x/w{writer}s{seq}l{}", value.len());
    (value, content_type)
}

/// Checks that `value` and `content_type` are exactly one write of `key` by a known writer with
/// a sequence number it has already started writing. Returns (writer, seq).
fn validate(key: &str, value: &[u8], content_type: &[u8], issued: &[AtomicU64]) -> (usize, u64) {
    let text = std::str::from_utf8(value).unwrap_or_else(|_| panic!("{key}: non-utf-8 value"));
    let mut parts = text.splitn(4, '|');
    let (Some(k), Some(w), Some(s), Some(_)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("{key}: malformed value {text:?}");
    };
    assert_eq!(k, key, "value of {key} names another key: {text:?}");
    let writer: usize = w
        .parse()
        .unwrap_or_else(|_| panic!("{key}: bad writer in {text:?}"));
    let seq: u64 = s
        .parse()
        .unwrap_or_else(|_| panic!("{key}: bad seq in {text:?}"));
    assert!(writer < issued.len(), "{key}: unknown writer {writer}");
    assert!(
        seq < issued[writer].load(Ordering::Acquire),
        "{key}: writer {writer} never wrote seq {seq}"
    );
    let (want_value, want_type) = pattern(key, writer, seq);
    assert_eq!(text, want_value, "{key}: torn value");
    assert_eq!(
        content_type,
        want_type.as_bytes(),
        "{key}: content type from another write"
    );
    (writer, seq)
}

#[test]
fn readers_never_see_torn_or_unknown_values() {
    const KEYS: usize = 16;
    const WRITERS: usize = 4;
    const READERS: usize = 4;
    const WRITES_PER_WRITER: u64 = 3_000;

    let store = Arc::new(Store::with_shards(4));
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|k| format!("torn/{k:02}")).collect());
    // Next sequence number per writer; a writer bumps it before writing that number.
    let issued: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(WRITERS + READERS));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, keys, issued, barrier) = (
                Arc::clone(&store),
                Arc::clone(&keys),
                Arc::clone(&issued),
                Arc::clone(&barrier),
            );
            thread::spawn(move || {
                let mut rng = XorShift(0xD1B5_4A32_D192_ED03 ^ (w as u64 + 1));
                barrier.wait();
                for seq in 0..WRITES_PER_WRITER {
                    let key = &keys[rng.below(KEYS)];
                    if rng.below(10) == 0 {
                        store.execute(Command::Delete(Delete::new(key.clone())), NOW);
                        continue;
                    }
                    issued[w].store(seq + 1, Ordering::Release);
                    let (value, content_type) = pattern(key, w, seq);
                    let set = Set::new(key.clone(), value).content_type(content_type);
                    assert!(matches!(
                        store.execute(Command::Set(set), NOW),
                        Reply::Stored { .. }
                    ));
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (store, keys, issued, done, barrier) = (
                Arc::clone(&store),
                Arc::clone(&keys),
                Arc::clone(&issued),
                Arc::clone(&done),
                Arc::clone(&barrier),
            );
            thread::spawn(move || {
                let mut rng = XorShift(0x2545_F491_4F6C_DD1D ^ (r as u64 + 1));
                // Last version this reader saw per key: linearizability means it never goes back.
                let mut last_seen: HashMap<String, u64> = HashMap::new();
                let mut values_checked = 0u64;
                barrier.wait();
                loop {
                    // Read `done` first, so at least one read follows the writers' last write.
                    let finished = done.load(Ordering::Acquire);
                    if rng.below(8) == 0 {
                        let reply =
                            store.execute(Command::List(List::new("torn/", None, KEYS)), NOW);
                        let Reply::Page(page) = reply else {
                            panic!("list: unexpected reply {reply:?}");
                        };
                        assert!(page.keys.windows(2).all(|w| w[0].key < w[1].key));
                        for info in &page.keys {
                            let key = std::str::from_utf8(&info.key).expect("utf-8 key");
                            assert!(keys.iter().any(|k| k == key), "unknown key {key}");
                            // The metadata belongs to one write: its size is the one it names.
                            let ct = std::str::from_utf8(&info.content_type).expect("utf-8 type");
                            let len: u64 = ct
                                .rsplit_once('l')
                                .and_then(|(_, l)| l.parse().ok())
                                .unwrap_or_else(|| panic!("{key}: bad content type {ct}"));
                            assert_eq!(info.size, len, "{key}: size from another write");
                            let prev = last_seen.insert(key.to_owned(), info.version);
                            assert!(prev.is_none_or(|p| p <= info.version), "{key} went back");
                        }
                    } else {
                        let key = &keys[rng.below(KEYS)];
                        if let Some(e) = get(&store, key) {
                            validate(
                                key,
                                e.value.as_string().expect("a string"),
                                &e.content_type,
                                &issued,
                            );
                            values_checked += 1;
                            let prev = last_seen.insert(key.clone(), e.version);
                            assert!(
                                prev.is_none_or(|p| p <= e.version),
                                "{key}: version went back from {prev:?} to {}",
                                e.version
                            );
                        }
                    }
                    if finished {
                        break;
                    }
                }
                values_checked
            })
        })
        .collect();

    // Stop the readers before reporting any failure, so a failing writer cannot leave them
    // spinning.
    let writer_results: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
    done.store(true, Ordering::Release);
    let reader_results: Vec<_> = readers.into_iter().map(|r| r.join()).collect();
    for result in writer_results {
        result.expect("writer panicked");
    }
    let checked: u64 = reader_results
        .into_iter()
        .map(|r| r.expect("reader panicked"))
        .sum();
    assert!(checked > 0, "readers validated no value at all");

    // After the dust settles every key holds one whole write.
    for key in keys.iter() {
        if let Some(e) = get(&store, key) {
            validate(
                key,
                e.value.as_string().expect("a string"),
                &e.content_type,
                &issued,
            );
        }
    }
}
