//! Eviction by each policy, on a real store: which keys go, which stay, what the commit pipeline
//! is told, and how the store's own memory figure follows writes and evictions.

use std::sync::Arc;

use bytes::Bytes;
use kvs_store::change::{decode, encode};
use kvs_store::{Change, Command, Commit, Effects, Policy, Removal, Reply, Store, Ticket};
use parking_lot::Mutex;

const NOW: u64 = 1_790_000_000_000;

/// A pipeline that keeps every change it is given.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Change>>);

impl Commit for Recorder {
    fn submit(&self, effects: &Effects) -> Ticket {
        let mut record = Vec::new();
        encode(effects, &mut record);
        let decoded = decode(&record).expect("the record decodes");
        let mut changes = self.0.lock();
        changes.extend(decoded.changes);
        Ticket::Queued(changes.len() as u64)
    }
}

fn run(store: &Store, line: &str, now: u64) -> Reply {
    let argv: Vec<Bytes> = line
        .split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    let command = Command::from_argv(&argv).unwrap_or_else(|e| panic!("{line}: {e:?}"));
    store.apply(command, now).value
}

fn store_with(policy: Policy) -> Store {
    let store = Store::with_shards(8);
    store.tracking().set_policy(policy);
    store
}

fn exists(store: &Store, key: &str, now: u64) -> bool {
    run(store, &format!("EXISTS {key}"), now) == Reply::Integer(1)
}

#[test]
fn allkeys_lru_evicts_the_keys_not_read_lately() {
    let store = store_with(Policy::AllKeysLru);
    for i in 0..1_000 {
        run(&store, &format!("SET k{i} v"), NOW);
    }
    // The first 100 keys are read a minute later; the rest stay idle.
    for i in 0..100 {
        run(&store, &format!("GET k{i}"), NOW + 60_000);
    }
    let done = store.evict(u64::MAX, 800, 5, NOW + 61_000);
    assert_eq!(done.keys, 800);
    assert!(!done.exhausted);
    let kept = (0..100)
        .filter(|i| exists(&store, &format!("k{i}"), NOW + 61_000))
        .count();
    // Sampling is approximate, as Redis's is: nearly all recently read keys survive.
    assert!(kept >= 90, "only {kept} of 100 recently read keys kept");
    assert_eq!(store.evicted_keys(), 800);
}

#[test]
fn allkeys_lfu_keeps_the_keys_read_often() {
    let store = store_with(Policy::AllKeysLfu);
    for i in 0..1_000 {
        run(&store, &format!("SET k{i} v"), NOW);
    }
    // Keys 0..50 are read 50 times each, the rest once, all at the same instant so recency
    // cannot tell them apart.
    for round in 0..50 {
        for i in 0..1_000 {
            if i < 50 || round == 0 {
                run(&store, &format!("GET k{i}"), NOW);
            }
        }
    }
    assert!(matches!(run(&store, "OBJECT FREQ k0", NOW), Reply::Integer(f) if f > 6));
    assert_eq!(run(&store, "OBJECT FREQ k999", NOW), Reply::Integer(6));
    store.evict(u64::MAX, 900, 5, NOW);
    let kept = (0..50)
        .filter(|i| exists(&store, &format!("k{i}"), NOW))
        .count();
    assert!(kept >= 45, "only {kept} of 50 hot keys kept");
}

#[test]
fn volatile_policies_evict_only_keys_with_an_expiry_and_then_give_up() {
    for policy in [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
    ] {
        let store = store_with(policy);
        for i in 0..200 {
            run(&store, &format!("SET p{i} v"), NOW);
            run(&store, &format!("SET t{i} v PX {}", 100_000 + i), NOW);
        }
        let done = store.evict(u64::MAX, 1_000, 5, NOW + 1);
        assert_eq!(done.keys, 200, "{policy}");
        assert!(done.exhausted, "{policy}: nothing more may go");
        for i in 0..200 {
            assert!(exists(&store, &format!("p{i}"), NOW + 1), "{policy}: p{i}");
            assert!(!exists(&store, &format!("t{i}"), NOW + 1), "{policy}: t{i}");
        }
        let again = store.evict(100, 10, 5, NOW + 1);
        assert_eq!((again.keys, again.exhausted), (0, true), "{policy}");
    }
}

#[test]
fn volatile_ttl_evicts_the_soonest_to_expire_first() {
    let store = store_with(Policy::VolatileTtl);
    for i in 0..500u64 {
        // Expiries in a scrambled order, so insertion order says nothing.
        let ttl = 10_000 + (i * 7919) % 500 * 1_000;
        run(&store, &format!("SET t{i} v PX {ttl}"), NOW);
    }
    let done = store.evict(u64::MAX, 100, 5, NOW);
    assert_eq!(done.keys, 100);
    let mut remaining_ttls = Vec::new();
    for i in 0..500 {
        if let Reply::Integer(ms) = run(&store, &format!("PTTL t{i}"), NOW)
            && ms > 0
        {
            remaining_ttls.push(ms);
        }
    }
    assert_eq!(remaining_ttls.len(), 400);
    let shortest_left = remaining_ttls.iter().min().copied().unwrap_or_default();
    // Exact per shard, sampled across shards: the survivors are (nearly) the 400 latest.
    assert!(
        shortest_left >= 10_000 + 90 * 1_000,
        "a key expiring in {shortest_left} ms survived 100 evictions"
    );
}

#[test]
fn noeviction_evicts_nothing_and_says_so() {
    let store = store_with(Policy::NoEviction);
    run(&store, "SET a v", NOW);
    let done = store.evict(u64::MAX, 10, 5, NOW);
    assert_eq!((done.keys, done.exhausted), (0, true));
    assert!(exists(&store, "a", NOW));
}

#[test]
fn evictions_reach_the_pipeline_as_evictions_and_expired_keys_as_expiries() {
    let recorder = Arc::new(Recorder::default());
    let mut store = Store::with_shards(4);
    store.set_commit(recorder.clone());
    store.tracking().set_policy(Policy::AllKeysRandom);
    run(&store, "SET gone v PX 10", NOW);
    for i in 0..20 {
        run(&store, &format!("SET k{i} v"), NOW);
    }
    recorder.0.lock().clear();
    let done = store.evict(u64::MAX, 21, 5, NOW + 100);
    assert_eq!(done.keys, 21);
    let changes = recorder.0.lock().clone();
    assert_eq!(changes.len(), 21);
    for change in &changes {
        match change {
            Change::Remove(key, why) if key == "gone" => assert_eq!(*why, Removal::Expired),
            Change::Remove(_, why) => assert_eq!(*why, Removal::Evicted),
            other => panic!("unexpected change {other:?}"),
        }
    }
    assert_eq!(store.evicted_keys(), 20, "the expired key is not counted");
}

#[test]
fn the_footprint_follows_writes_and_removals() {
    let store = store_with(Policy::AllKeysLru);
    assert_eq!(store.footprint_exact(), 0);
    let value = "x".repeat(100);
    for i in 0..1_000 {
        run(&store, &format!("SET key:{i:06} {value}"), NOW);
    }
    let full = store.footprint_exact();
    // Each key: its packed entry (about 140 bytes with the usage word) plus its table slot.
    assert!(
        (140_000..=200_000).contains(&full),
        "1,000 keys of 100 bytes take {full} bytes"
    );
    let reported = store.footprint();
    assert!(
        full - reported <= 8 * 8 * 1024,
        "the running total lags by at most 8 KiB per shard: {reported} of {full}"
    );
    let one = store.usage_of(b"key:000001", NOW).expect("live");
    assert!((150..=250).contains(&one), "one key takes {one}");
    run(&store, "SET key:000001 short", NOW);
    assert!(store.footprint_exact() < full, "a shorter value takes less");
    run(&store, "EXPIRE key:000002 100", NOW);
    assert!(
        store.usage_of(b"key:000002", NOW) > store.usage_of(b"key:000003", NOW),
        "an expiry costs its place in the index"
    );
    let done = store.evict(u64::MAX, 1_000, 5, NOW);
    assert_eq!(done.keys, 1_000);
    // Only the hash tables' buckets remain: a table keeps its capacity.
    let tables = store.footprint_exact();
    assert!(tables > 0 && tables < full / 8, "{tables} of {full}");
    assert!(done.bytes >= full / 2);
    run(&store, "SET a b", NOW);
    run(&store, "SET c d", NOW);
    assert!(store.take_garbage().is_none(), "nothing flushed yet");
    run(&store, "FLUSHALL", NOW);
    assert_eq!(store.footprint_exact(), 0, "FLUSHALL frees everything");
    // ... and leaves the entries to whoever frees them, outside the shard locks.
    assert_eq!(store.pending_free(), 2);
    let garbage = store.take_garbage().expect("the flushed entries");
    assert_eq!(garbage.iter().map(|g| g.len()).sum::<usize>(), 2);
    assert_eq!(store.pending_free(), 0);
    assert!(store.take_garbage().is_none());
}

#[test]
fn object_idletime_and_freq_follow_the_policy_as_redis_does() {
    let store = store_with(Policy::AllKeysLru);
    run(&store, "SET k v", NOW);
    assert_eq!(
        run(&store, "OBJECT IDLETIME k", NOW + 5_500),
        Reply::Integer(5)
    );
    // OBJECT, TYPE, TTL and EXISTS look without touching.
    run(&store, "TYPE k", NOW + 6_000);
    run(&store, "TTL k", NOW + 6_000);
    assert_eq!(
        run(&store, "OBJECT IDLETIME k", NOW + 7_000),
        Reply::Integer(7)
    );
    run(&store, "GET k", NOW + 7_000);
    assert_eq!(
        run(&store, "OBJECT IDLETIME k", NOW + 9_000),
        Reply::Integer(2)
    );
    assert!(matches!(
        run(&store, "OBJECT FREQ k", NOW),
        Reply::Error(e) if e.to_string().starts_with("ERR An LFU maxmemory policy is not selected")
    ));
    store.tracking().set_policy(Policy::AllKeysLfu);
    assert!(matches!(
        run(&store, "OBJECT IDLETIME k", NOW),
        Reply::Error(e) if e.to_string().starts_with("ERR An LRU maxmemory policy is not selected")
    ));
    assert_eq!(run(&store, "OBJECT FREQ k", NOW + 9_000), Reply::Integer(5));
    run(&store, "GET k", NOW + 9_000);
    assert_eq!(run(&store, "OBJECT FREQ k", NOW + 9_000), Reply::Integer(6));
    // A minute idle per decay step (lfu-decay-time 1).
    assert_eq!(
        run(&store, "OBJECT FREQ k", NOW + 9_000 + 3 * 60_000),
        Reply::Integer(3)
    );
    // Overwriting keeps the frequency, as in Redis.
    run(&store, "SET k w", NOW + 9_000);
    assert!(matches!(
        run(&store, "OBJECT FREQ k", NOW + 9_000),
        Reply::Integer(6 | 7)
    ));
}

/// Writes `keys` cold keys once each, as a scan through a read-through cache would, keeping the
/// store at `capacity` keys by evicting one key per write once full. Returns how many of the
/// `hot` keys written and read before the scan survive it.
fn scan_survivors(policy: Policy, hot: u64, capacity: u64, keys: u64) -> u64 {
    let store = store_with(policy);
    let mut now = NOW;
    let write = |store: &Store, key: String, now: u64| {
        run(store, &format!("SET {key} v"), now);
        if store.held() > capacity {
            store.evict(u64::MAX, 1, 5, now);
        }
    };
    for i in 0..hot {
        write(&store, format!("hot{i}"), now);
    }
    // The hot keys are read a few times, as a working set is, before the scan.
    for _ in 0..3 {
        for i in 0..hot {
            now += 1;
            run(&store, &format!("GET hot{i}"), now);
        }
    }
    for i in 0..capacity - hot {
        write(&store, format!("warm{i}"), now);
    }
    for i in 0..keys {
        now += 1;
        write(&store, format!("cold{i}"), now);
    }
    (0..hot)
        .filter(|i| exists(&store, &format!("hot{i}"), now))
        .count() as u64
}

#[test]
fn allkeys_s3fifo_keeps_the_working_set_through_a_scan_that_flushes_lru() {
    let (hot, capacity, scan) = (300, 2_000, 10_000);
    let s3fifo = scan_survivors(Policy::AllKeysS3Fifo, hot, capacity, scan);
    let lru = scan_survivors(Policy::AllKeysLru, hot, capacity, scan);
    assert!(
        s3fifo >= hot * 95 / 100,
        "allkeys-s3fifo kept only {s3fifo} of {hot} hot keys through the scan"
    );
    assert!(
        lru <= hot / 10,
        "the scan should flush LRU's hot keys, yet {lru} of {hot} survived"
    );
}

#[test]
fn allkeys_s3fifo_evicts_in_insertion_order_what_was_not_read_and_rebuilds_on_a_switch() {
    // One shard: its queue order is the store's.
    let store = Store::with_shards(1);
    store.tracking().set_policy(Policy::AllKeysS3Fifo);
    for i in 0..100 {
        run(&store, &format!("SET k{i} v"), NOW);
    }
    // Nothing was read: small-queue keys go first, in insertion order.
    let done = store.evict(u64::MAX, 10, 5, NOW);
    assert_eq!(done.keys, 10);
    for i in 0..10 {
        assert!(!exists(&store, &format!("k{i}"), NOW), "k{i} was first in");
    }
    assert!(exists(&store, "k10", NOW));
    // Switching policy and back rebuilds the queues from what is held.
    store.tracking().set_policy(Policy::AllKeysLru);
    run(&store, "SET other v", NOW);
    store.tracking().set_policy(Policy::AllKeysS3Fifo);
    run(&store, "SET k0 again", NOW);
    let all = store.evict(u64::MAX, 1_000, 5, NOW);
    assert_eq!(all.keys, 92, "every key can still be evicted");
    assert!(all.exhausted);
    assert_eq!(store.held(), 0);
}
