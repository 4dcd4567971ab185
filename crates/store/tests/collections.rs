//! A model per collection type: random command sequences run against the store and against a
//! plain reference (a map, a vector, a set, a sorted vector), and every reply and the final state
//! must agree. Thresholds are tiny, so collections cross from compact to real structures (and
//! lists back) all along. Then the records the store submitted, replayed into an empty store,
//! and a snapshot of it, replayed likewise, must give the same keyspace.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use kvs_store::change::encode;
use kvs_store::{Command, Commit, Effects, Limits, Reply, Store, Ticket};
use parking_lot::Mutex;
use proptest::prelude::*;

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

fn tiny() -> Limits {
    Limits {
        hash_entries: 3,
        hash_value: 8,
        set_intset_entries: 3,
        zset_entries: 3,
        zset_value: 8,
        list_size: 3,
        stream_node_entries: 3,
        stream_node_bytes: 64,
    }
}

fn store() -> (Store, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let mut store = Store::with_shards(4);
    store.set_commit(recorder.clone());
    store.set_collection_limits(tiny());
    (store, recorder)
}

fn run(store: &Store, words: &[String]) -> Reply {
    let argv: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    match Command::from_argv(&argv) {
        Ok(c) => store.apply(c, 0).value,
        Err(e) => Reply::Error(e),
    }
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// Elements: short ones, integers (so sets stay intsets for a while) and long ones (past the
/// value thresholds).
fn element() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-e]",
        2 => (0..6i32).prop_map(|n| n.to_string()),
        1 => "[x-z]{9,12}",
    ]
}

#[derive(Clone, Debug)]
enum Op {
    HSet(usize, String, String),
    HDel(usize, String),
    HIncr(usize, String, i8),
    Push(usize, bool, Vec<String>),
    Pop(usize, bool, usize),
    LRem(usize, i8, String),
    LTrim(usize, i8, i8),
    LSet(usize, i8, String),
    LInsert(usize, bool, String, String),
    SAdd(usize, Vec<String>),
    SRem(usize, String),
    ZAdd(usize, i8, String),
    ZIncr(usize, i8, String),
    ZRem(usize, String),
    ZPop(usize, bool, usize),
    Del(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..2usize;
    prop_oneof![
        (k.clone(), element(), element()).prop_map(|(k, f, v)| Op::HSet(k, f, v)),
        (k.clone(), element()).prop_map(|(k, f)| Op::HDel(k, f)),
        (k.clone(), element(), any::<i8>()).prop_map(|(k, f, n)| Op::HIncr(k, f, n)),
        (
            k.clone(),
            any::<bool>(),
            prop::collection::vec(element(), 1..4)
        )
            .prop_map(|(k, f, v)| Op::Push(k, f, v)),
        (k.clone(), any::<bool>(), 0..4usize).prop_map(|(k, f, n)| Op::Pop(k, f, n)),
        (k.clone(), -3..3i8, element()).prop_map(|(k, n, e)| Op::LRem(k, n, e)),
        (k.clone(), -5..5i8, -5..5i8).prop_map(|(k, a, b)| Op::LTrim(k, a, b)),
        (k.clone(), -5..5i8, element()).prop_map(|(k, i, e)| Op::LSet(k, i, e)),
        (k.clone(), any::<bool>(), element(), element())
            .prop_map(|(k, b, p, e)| Op::LInsert(k, b, p, e)),
        (k.clone(), prop::collection::vec(element(), 1..4)).prop_map(|(k, v)| Op::SAdd(k, v)),
        (k.clone(), element()).prop_map(|(k, m)| Op::SRem(k, m)),
        (k.clone(), -4..4i8, element()).prop_map(|(k, s, m)| Op::ZAdd(k, s, m)),
        (k.clone(), -4..4i8, element()).prop_map(|(k, s, m)| Op::ZIncr(k, s, m)),
        (k.clone(), element()).prop_map(|(k, m)| Op::ZRem(k, m)),
        (k.clone(), any::<bool>(), 0..3usize).prop_map(|(k, f, n)| Op::ZPop(k, f, n)),
        (0..8usize).prop_map(Op::Del),
    ]
}

/// The reference keyspace.
#[derive(Debug, Default)]
struct Model {
    hashes: BTreeMap<usize, BTreeMap<String, String>>,
    lists: BTreeMap<usize, Vec<String>>,
    sets: BTreeMap<usize, BTreeSet<String>>,
    zsets: BTreeMap<usize, Vec<(i64, String)>>,
}

fn name(prefix: &str, k: usize) -> String {
    format!("{prefix}{k}")
}

/// Index as Redis reads a possibly negative one, in a list of `len`.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

impl Model {
    fn sorted(z: &mut [(i64, String)]) {
        z.sort();
    }

    /// Applies `op` and gives the request to send and the reply the model expects.
    fn step(&mut self, op: &Op) -> (Vec<String>, Reply) {
        let s = |x: &str| x.to_owned();
        match op {
            Op::HSet(k, f, v) => {
                let h = self.hashes.entry(*k).or_default();
                let new = h.insert(f.clone(), v.clone()).is_none();
                (
                    vec![s("HSET"), name("h", *k), f.clone(), v.clone()],
                    Reply::Integer(i64::from(new)),
                )
            }
            Op::HDel(k, f) => {
                let gone = self
                    .hashes
                    .get_mut(k)
                    .is_some_and(|h| h.remove(f).is_some());
                if self.hashes.get(k).is_some_and(BTreeMap::is_empty) {
                    self.hashes.remove(k);
                }
                (
                    vec![s("HDEL"), name("h", *k), f.clone()],
                    Reply::Integer(i64::from(gone)),
                )
            }
            Op::HIncr(k, f, n) => {
                let h = self.hashes.entry(*k).or_default();
                let old = h.get(f).cloned();
                let words = vec![s("HINCRBY"), name("h", *k), f.clone(), n.to_string()];
                match old.as_deref().map(str::parse::<i64>).unwrap_or(Ok(0)) {
                    Ok(v) => {
                        h.insert(f.clone(), (v + i64::from(*n)).to_string());
                        (words, Reply::Integer(v + i64::from(*n)))
                    }
                    Err(_) => {
                        if h.is_empty() {
                            self.hashes.remove(k);
                        }
                        (
                            words,
                            Reply::Error(kvs_store::CommandError::Invalid(
                                "hash value is not an integer",
                            )),
                        )
                    }
                }
            }
            Op::Push(k, front, items) => {
                let l = self.lists.entry(*k).or_default();
                for i in items {
                    if *front {
                        l.insert(0, i.clone());
                    } else {
                        l.push(i.clone());
                    }
                }
                let mut w = vec![s(if *front { "LPUSH" } else { "RPUSH" }), name("l", *k)];
                w.extend(items.iter().cloned());
                (w, Reply::Integer(l.len() as i64))
            }
            Op::Pop(k, front, n) => {
                let w = vec![
                    s(if *front { "LPOP" } else { "RPOP" }),
                    name("l", *k),
                    n.to_string(),
                ];
                let Some(l) = self.lists.get_mut(k) else {
                    return (w, Reply::NilArray);
                };
                let n = (*n).min(l.len());
                let popped: Vec<String> = if *front {
                    l.drain(..n).collect()
                } else {
                    let mut t: Vec<String> = l.drain(l.len() - n..).collect();
                    t.reverse();
                    t
                };
                if l.is_empty() {
                    self.lists.remove(k);
                }
                (w, Reply::Array(popped.iter().map(|x| bulk(x)).collect()))
            }
            Op::LRem(k, n, e) => {
                let w = vec![s("LREM"), name("l", *k), n.to_string(), e.clone()];
                let Some(l) = self.lists.get_mut(k) else {
                    return (w, Reply::Integer(0));
                };
                let mut removed = 0;
                let limit = if *n == 0 {
                    usize::MAX
                } else {
                    n.unsigned_abs() as usize
                };
                if *n >= 0 {
                    let mut i = 0;
                    while i < l.len() && removed < limit {
                        if l[i] == *e {
                            l.remove(i);
                            removed += 1;
                        } else {
                            i += 1;
                        }
                    }
                } else {
                    let mut i = l.len();
                    while i > 0 && removed < limit {
                        i -= 1;
                        if l[i] == *e {
                            l.remove(i);
                            removed += 1;
                        }
                    }
                }
                if l.is_empty() {
                    self.lists.remove(k);
                }
                (w, Reply::Integer(removed as i64))
            }
            Op::LTrim(k, a, b) => {
                let w = vec![s("LTRIM"), name("l", *k), a.to_string(), b.to_string()];
                if let Some(l) = self.lists.get_mut(k) {
                    let len = l.len() as i64;
                    let start = if *a < 0 {
                        (i64::from(*a) + len).max(0)
                    } else {
                        i64::from(*a)
                    };
                    let stop = if *b < 0 {
                        i64::from(*b) + len
                    } else {
                        i64::from(*b).min(len - 1)
                    };
                    if start > stop || start >= len {
                        l.clear();
                    } else {
                        *l = l[start as usize..=stop as usize].to_vec();
                    }
                    if l.is_empty() {
                        self.lists.remove(k);
                    }
                }
                (w, Reply::Ok)
            }
            Op::LSet(k, i, e) => {
                let w = vec![s("LSET"), name("l", *k), i.to_string(), e.clone()];
                match self.lists.get_mut(k) {
                    None => (w, Reply::Error(kvs_store::CommandError::NoSuchKey)),
                    Some(l) => match index(i64::from(*i), l.len()) {
                        None => (
                            w,
                            Reply::Error(kvs_store::CommandError::Invalid("index out of range")),
                        ),
                        Some(at) => {
                            l[at] = e.clone();
                            (w, Reply::Ok)
                        }
                    },
                }
            }
            Op::LInsert(k, before, pivot, e) => {
                let w = vec![
                    s("LINSERT"),
                    name("l", *k),
                    s(if *before { "BEFORE" } else { "AFTER" }),
                    pivot.clone(),
                    e.clone(),
                ];
                match self.lists.get_mut(k) {
                    None => (w, Reply::Integer(0)),
                    Some(l) => match l.iter().position(|x| x == pivot) {
                        None => (w, Reply::Integer(-1)),
                        Some(p) => {
                            l.insert(p + usize::from(!*before), e.clone());
                            (w, Reply::Integer(l.len() as i64))
                        }
                    },
                }
            }
            Op::SAdd(k, ms) => {
                let set = self.sets.entry(*k).or_default();
                let added = ms.iter().filter(|m| set.insert((*m).clone())).count();
                let mut w = vec![s("SADD"), name("s", *k)];
                w.extend(ms.iter().cloned());
                (w, Reply::Integer(added as i64))
            }
            Op::SRem(k, m) => {
                let gone = self.sets.get_mut(k).is_some_and(|set| set.remove(m));
                if self.sets.get(k).is_some_and(BTreeSet::is_empty) {
                    self.sets.remove(k);
                }
                (
                    vec![s("SREM"), name("s", *k), m.clone()],
                    Reply::Integer(i64::from(gone)),
                )
            }
            Op::ZAdd(k, sc, m) | Op::ZIncr(k, sc, m) => {
                let incr = matches!(op, Op::ZIncr(..));
                let z = self.zsets.entry(*k).or_default();
                let old = z.iter().position(|(_, x)| x == m).map(|i| z.remove(i).0);
                let new = if incr {
                    old.unwrap_or(0) + i64::from(*sc)
                } else {
                    i64::from(*sc)
                };
                z.push((new, m.clone()));
                Self::sorted(z);
                let w = if incr {
                    vec![s("ZINCRBY"), name("z", *k), sc.to_string(), m.clone()]
                } else {
                    vec![s("ZADD"), name("z", *k), sc.to_string(), m.clone()]
                };
                let reply = if incr {
                    Reply::Double(kvs_store::Score(new as f64))
                } else {
                    Reply::Integer(i64::from(old.is_none()))
                };
                (w, reply)
            }
            Op::ZRem(k, m) => {
                let gone = self.zsets.get_mut(k).is_some_and(|z| {
                    let at = z.iter().position(|(_, x)| x == m);
                    at.map(|i| z.remove(i)).is_some()
                });
                if self.zsets.get(k).is_some_and(Vec::is_empty) {
                    self.zsets.remove(k);
                }
                (
                    vec![s("ZREM"), name("z", *k), m.clone()],
                    Reply::Integer(i64::from(gone)),
                )
            }
            Op::ZPop(k, max, n) => {
                let w = vec![
                    s(if *max { "ZPOPMAX" } else { "ZPOPMIN" }),
                    name("z", *k),
                    n.to_string(),
                ];
                let Some(z) = self.zsets.get_mut(k) else {
                    return (w, Reply::Array(Vec::new()));
                };
                let n = (*n).min(z.len());
                let popped: Vec<(i64, String)> = if *max {
                    let mut t: Vec<_> = z.drain(z.len() - n..).collect();
                    t.reverse();
                    t
                } else {
                    z.drain(..n).collect()
                };
                if z.is_empty() {
                    self.zsets.remove(k);
                }
                let pairs = popped
                    .into_iter()
                    .map(|(sc, m)| (bulk(&m), Reply::Double(kvs_store::Score(sc as f64))))
                    .collect();
                (w, Reply::Pairs(pairs))
            }
            Op::Del(k) => {
                let (prefix, key) = ["h", "l", "s", "z"]
                    .iter()
                    .map(|p| (*p, k % 2))
                    .nth(k / 2)
                    .unwrap_or(("h", 0));
                let existed = match prefix {
                    "h" => self.hashes.remove(&key).is_some(),
                    "l" => self.lists.remove(&key).is_some(),
                    "s" => self.sets.remove(&key).is_some(),
                    _ => self.zsets.remove(&key).is_some(),
                };
                (
                    vec![s("DEL"), name(prefix, key)],
                    Reply::Integer(i64::from(existed)),
                )
            }
        }
    }

    /// The requests that read the whole keyspace back, with what the model says they answer.
    fn dump(&self) -> Vec<(Vec<String>, Reply)> {
        let s = |x: &str| x.to_owned();
        let mut out = Vec::new();
        for k in 0..2 {
            let h: Vec<(Reply, Reply)> = self
                .hashes
                .get(&k)
                .into_iter()
                .flatten()
                .map(|(f, v)| (bulk(f), bulk(v)))
                .collect();
            out.push((vec![s("HGETALL"), name("h", k)], Reply::Map(h)));
            let l: Vec<Reply> = self
                .lists
                .get(&k)
                .into_iter()
                .flatten()
                .map(|x| bulk(x))
                .collect();
            out.push((
                vec![s("LRANGE"), name("l", k), s("0"), s("-1")],
                Reply::Array(l),
            ));
            let set: Vec<Reply> = self
                .sets
                .get(&k)
                .into_iter()
                .flatten()
                .map(|x| bulk(x))
                .collect();
            out.push((vec![s("SMEMBERS"), name("s", k)], Reply::Set(set)));
            let z: Vec<(Reply, Reply)> = self
                .zsets
                .get(&k)
                .into_iter()
                .flatten()
                .map(|(sc, m)| (bulk(m), Reply::Double(kvs_store::Score(*sc as f64))))
                .collect();
            out.push((
                vec![s("ZRANGE"), name("z", k), s("0"), s("-1"), s("WITHSCORES")],
                Reply::Pairs(z),
            ));
        }
        out
    }
}

/// A reply in a form where order does not matter for hashes and sets.
fn canonical(words: &[String], reply: Reply) -> Reply {
    let sort = |mut v: Vec<Reply>| {
        v.sort_by_key(|r| format!("{r:?}"));
        Reply::Array(v)
    };
    match (words[0].as_str(), reply) {
        ("HGETALL", Reply::Map(pairs)) => sort(
            pairs
                .into_iter()
                .map(|(f, v)| Reply::Array(vec![f, v]))
                .collect(),
        ),
        ("SMEMBERS", Reply::Set(items)) => sort(items),
        ("ZRANGE", Reply::Pairs(pairs)) => Reply::Array(
            pairs
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![m, s]))
                .collect(),
        ),
        (_, r) => r,
    }
}

fn dump(store: &Store, model: &Model) -> Vec<Reply> {
    model
        .dump()
        .into_iter()
        .map(|(w, _)| canonical(&w, run(store, &w)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn collections_follow_their_models_and_replay_exactly(ops in prop::collection::vec(op(), 1..80)) {
        let (store, recorder) = store();
        let mut model = Model::default();
        for op in &ops {
            let (words, want) = model.step(op);
            let got = run(&store, &words);
            prop_assert_eq!(&got, &want, "{:?}", words);
        }
        let want: Vec<Reply> = model.dump().into_iter().map(|(w, r)| canonical(&w, r)).collect();
        let got = dump(&store, &model);
        prop_assert_eq!(&got, &want);

        // The log alone rebuilds it.
        let replayed = Store::with_shards(8);
        replayed.set_collection_limits(tiny());
        for record in recorder.0.lock().iter() {
            replayed.replay(record, 0).expect("replays");
        }
        prop_assert_eq!(&dump(&replayed, &model), &want, "from the log");

        // So does a snapshot.
        let mut records = Vec::new();
        store.snapshot(0, |r| { records.push(r.to_vec()); Ok::<_, ()>(()) }).expect("snapshot");
        let restored = Store::with_shards(2);
        for record in &records {
            restored.replay(record, 0).expect("replays");
        }
        prop_assert_eq!(&dump(&restored, &model), &want, "from a snapshot");

        // Records the snapshot already holds, replayed over it (as recovery does when writes
        // went on during a snapshot), change nothing: each edit carries the version it made.
        for record in recorder.0.lock().iter() {
            restored.replay(record, 0).expect("replays");
        }
        prop_assert_eq!(&dump(&restored, &model), &want, "the log again over the snapshot");
    }
}
