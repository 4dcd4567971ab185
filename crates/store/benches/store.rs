//! Store throughput against the obvious alternatives, and the cost of one listing page.
//!
//! The parallel groups report time per operation as wall time divided by the total number of
//! operations across all threads (like Go's `b.RunParallel` ns/op): with 2 threads, perfect
//! scaling halves the figure.
//!
//! Run with `cargo bench -p kvs-store --bench store`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dashmap::DashMap;
use kvs_store::{Command, DEFAULT_SHARDS, Get, List, Millis, Reply, Set, Store};

/// Keys the parallel benches draw from.
const KEYSPACE: usize = 100_000;
const VALUE_LEN: usize = 64;
const THREADS: &[usize] = &[1, 2];
/// Keys preloaded for the listing bench, and its page size.
const LIST_KEYS: usize = 1_000_000;
const PAGE: usize = 100;
const NOW: Millis = 1_000;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key:{i:07}"))
}

/// Keys and a distinct 64-byte value per key (distinct, so that threads cloning values do not
/// all contend on one reference count).
fn dataset() -> (Vec<Bytes>, Vec<Bytes>) {
    let keys = (0..KEYSPACE).map(key).collect();
    let values = (0..KEYSPACE)
        .map(|i| {
            let mut v = vec![b'v'; VALUE_LEN];
            v[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Bytes::from(v)
        })
        .collect();
    (keys, values)
}

/// A fast per-thread random index sequence (xorshift64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    #[inline]
    fn index(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The three maps under test, behind one interface.
trait Target: Sync {
    fn write(&self, key: &Bytes, value: &Bytes);
    fn read(&self, key: &Bytes) -> Option<Bytes>;
}

impl Target for Store {
    #[inline]
    fn write(&self, key: &Bytes, value: &Bytes) {
        let reply = self.execute(Command::Set(Set::new(key.clone(), value.clone())), NOW);
        black_box(reply);
    }

    #[inline]
    fn read(&self, key: &Bytes) -> Option<Bytes> {
        match self.execute(Command::Get(Get::new(key.clone())), NOW) {
            Reply::Value(e) => e.value.as_string().cloned(),
            _ => None,
        }
    }
}

impl Target for Mutex<HashMap<Bytes, Bytes>> {
    #[inline]
    fn write(&self, key: &Bytes, value: &Bytes) {
        let old = self
            .lock()
            .expect("not poisoned")
            .insert(key.clone(), value.clone());
        black_box(old);
    }

    #[inline]
    fn read(&self, key: &Bytes) -> Option<Bytes> {
        self.lock().expect("not poisoned").get(key).cloned()
    }
}

impl Target for DashMap<Bytes, Bytes> {
    #[inline]
    fn write(&self, key: &Bytes, value: &Bytes) {
        black_box(self.insert(key.clone(), value.clone()));
    }

    #[inline]
    fn read(&self, key: &Bytes) -> Option<Bytes> {
        self.get(key).map(|v| v.value().clone())
    }
}

/// Runs `iters` operations in total, split over `threads` threads, and returns the wall time
/// from the moment all threads are released until the last one finishes.
fn run_parallel<T: Target>(
    target: &T,
    threads: usize,
    iters: u64,
    seed: u64,
    op: impl Fn(&T, usize) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let (barrier, op) = (&barrier, &op);
    thread::scope(|s| {
        for t in 0..threads {
            let share = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
            s.spawn(move || {
                let mut rng = Rng::new(seed ^ ((t as u64 + 1) << 32));
                barrier.wait();
                for _ in 0..share {
                    op(target, rng.index(KEYSPACE));
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins every thread.
        start
    })
    .elapsed()
}

fn preloaded<T: Target>(target: T, keys: &[Bytes], values: &[Bytes]) -> T {
    for (k, v) in keys.iter().zip(values) {
        target.write(k, v);
    }
    target
}

fn parallel_group(c: &mut Criterion, name: &str, write: bool) {
    let (keys, values) = dataset();
    let store = preloaded(Store::new(), &keys, &values);
    let mutex = preloaded(Mutex::new(HashMap::new()), &keys, &values);
    let dash = preloaded(DashMap::new(), &keys, &values);
    assert!(store.read(&keys[0]).is_some() && mutex.read(&keys[0]).is_some());
    assert!(dash.read(&keys[KEYSPACE - 1]).is_some());

    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    fn bench<T: Target>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        label: &str,
        target: &T,
        keys: &[Bytes],
        values: &[Bytes],
        write: bool,
    ) {
        for &threads in THREADS {
            let mut seed = 0u64;
            group.bench_with_input(BenchmarkId::new(label, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    seed += 1;
                    if write {
                        run_parallel(target, threads, iters, seed, |t, i| {
                            t.write(&keys[i], &values[i]);
                        })
                    } else {
                        run_parallel(target, threads, iters, seed, |t, i| {
                            black_box(t.read(&keys[i]));
                        })
                    }
                });
            });
        }
    }

    bench(&mut group, "kvs_store", &store, &keys, &values, write);
    bench(&mut group, "mutex_hashmap", &mutex, &keys, &values, write);
    bench(&mut group, "dashmap", &dash, &keys, &values, write);
    group.finish();
}

fn parallel_writes(c: &mut Criterion) {
    parallel_group(c, "parallel_writes", true);
}

fn parallel_reads(c: &mut Criterion) {
    parallel_group(c, "parallel_reads", false);
}

fn list_page(c: &mut Criterion) {
    let value = Bytes::from_static(&[b'v'; 16]);
    let keys: Vec<Bytes> = (0..LIST_KEYS).map(key).collect();

    let mut group = c.benchmark_group("list_page");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    // The default store, and one with few shards to show what the per-shard seeks cost.
    for shards in [DEFAULT_SHARDS, 4] {
        let store = Store::with_shards(shards);
        for k in &keys {
            store.execute(Command::Set(Set::new(k.clone(), value.clone())), NOW);
        }
        assert_eq!(store.len(NOW), LIST_KEYS as u64);
        let mut rng = Rng::new(7);
        let id = BenchmarkId::new(
            format!("{PAGE}_of_{LIST_KEYS}_keys"),
            format!("{shards}_shards"),
        );
        group.bench_function(id, |b| {
            b.iter(|| {
                // A cursor at a random key, far enough from the end that the page is full.
                let cursor = keys[rng.index(LIST_KEYS - PAGE)].clone();
                let list = List::new("key:", Some(cursor), PAGE);
                match store.execute(Command::List(list), NOW) {
                    Reply::Page(page) => {
                        assert_eq!(page.keys.len(), PAGE);
                        black_box(page)
                    }
                    other => panic!("expected a page, got {other:?}"),
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parallel_writes, parallel_reads, list_page);
criterion_main!(benches);
