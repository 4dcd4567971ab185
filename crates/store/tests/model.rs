//! Model-based property tests: random operation sequences run against the real [`Store`] and
//! against a plain `BTreeMap` model, comparing every reply exactly.
//!
//! The model also tracks entries that have expired but not yet been swept, because they decide
//! what `sweep_expired` reports. To keep it exact it observes which keys the store still holds by
//! listing at time 0: every expiry in these tests lies after time 0, so at that instant every
//! held entry is still live and the listing shows the store's whole internal state.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kvs_store::{
    Command, Condition, Count, DEFAULT_CONTENT_TYPE, Delete, Entry, Expire, ExpiryUpdate, Get,
    KeyInfo, List, Millis, Page, Reply, Set, Store,
};
use proptest::prelude::*;

/// Keys, several sharing prefixes so that prefix listings and cursors interleave.
const KEYS: &[&str] = &["a", "a/1", "a/2", "ab", "b", "b/1"];
/// Listing prefixes: everything, overlapping ones, and one that matches nothing.
const PREFIXES: &[&str] = &["", "a", "a/", "b", "b/", "c"];
/// Starting cursors: none, keys, and bytes between, before and after the keys.
const CURSORS: &[&str] = &["", "a", "a/", "a/1", "a0", "ab", "b", "b/2", "z"];
const CONTENT_TYPES: &[&str] = &[DEFAULT_CONTENT_TYPE, "text/plain"];
/// The clock starts here; every expiry is later, so time 0 sees every held entry as live.
const START: Millis = 1_000;
/// Time at which to observe every held entry (see the module comment).
const BEFORE_ALL: Millis = 0;

#[derive(Clone, Copy, Debug)]
enum VersionSpec {
    /// The key's current version if it is live (otherwise the store's last revision).
    Current,
    /// One of the versions handed out earlier (index into the history), usually stale.
    Past(usize),
    /// A version never handed out yet.
    Future(u64),
}

#[derive(Clone, Copy, Debug)]
enum CondSpec {
    Always,
    IfAbsent,
    IfPresent,
    IfVersion(VersionSpec),
}

#[derive(Clone, Copy, Debug)]
enum ExpirySpec {
    Clear,
    Keep,
    /// Expires this many ms after now (0: already expired when written).
    In(Millis),
}

#[derive(Clone, Debug)]
enum Op {
    Set {
        key: usize,
        value: Vec<u8>,
        content_type: usize,
        cond: CondSpec,
        expiry: ExpirySpec,
    },
    Delete {
        key: usize,
        if_version: Option<VersionSpec>,
    },
    Expire {
        key: usize,
        in_ms: Option<Millis>,
    },
    Get {
        key: usize,
    },
    Count,
    List {
        prefix: usize,
        cursor: Option<usize>,
        limit: usize,
    },
    Advance {
        ms: Millis,
    },
    Sweep {
        budget: usize,
    },
}

fn version_spec() -> impl Strategy<Value = VersionSpec> {
    prop_oneof![
        3 => Just(VersionSpec::Current),
        2 => any::<usize>().prop_map(VersionSpec::Past),
        1 => (1..5u64).prop_map(VersionSpec::Future),
    ]
}

fn cond_spec() -> impl Strategy<Value = CondSpec> {
    prop_oneof![
        3 => Just(CondSpec::Always),
        1 => Just(CondSpec::IfAbsent),
        1 => Just(CondSpec::IfPresent),
        3 => version_spec().prop_map(CondSpec::IfVersion),
    ]
}

fn expiry_spec() -> impl Strategy<Value = ExpirySpec> {
    prop_oneof![
        3 => Just(ExpirySpec::Clear),
        1 => Just(ExpirySpec::Keep),
        2 => (0..12u64).prop_map(ExpirySpec::In),
    ]
}

fn key() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            key(),
            prop::collection::vec(any::<u8>(), 0..4),
            0..CONTENT_TYPES.len(),
            cond_spec(),
            expiry_spec()
        )
            .prop_map(|(key, value, content_type, cond, expiry)| Op::Set {
                key,
                value,
                content_type,
                cond,
                expiry,
            }),
        3 => (key(), prop::option::weighted(0.6, version_spec()))
            .prop_map(|(key, if_version)| Op::Delete { key, if_version }),
        2 => (key(), prop::option::of(0..12u64)).prop_map(|(key, in_ms)| Op::Expire { key, in_ms }),
        3 => key().prop_map(|key| Op::Get { key }),
        1 => Just(Op::Count),
        2 => (
            0..PREFIXES.len(),
            prop::option::weighted(0.3, 0..CURSORS.len()),
            1..5usize
        )
            .prop_map(|(prefix, cursor, limit)| Op::List {
                prefix,
                cursor,
                limit,
            }),
        2 => (0..8u64).prop_map(|ms| Op::Advance { ms }),
        2 => (0..4usize).prop_map(|budget| Op::Sweep { budget }),
    ]
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelEntry {
    value: Vec<u8>,
    content_type: Vec<u8>,
    version: u64,
    modified_at: Millis,
    expires_at: Option<Millis>,
}

impl ModelEntry {
    fn is_live(&self, now: Millis) -> bool {
        match self.expires_at {
            Some(at) => at > now,
            None => true,
        }
    }

    fn to_entry(&self) -> Entry {
        Entry {
            value: kvs_store::Value::String(Bytes::copy_from_slice(&self.value)),
            content_type: Bytes::copy_from_slice(&self.content_type),
            version: self.version,
            modified_at: self.modified_at,
            expires_at: self.expires_at,
        }
    }

    fn to_info(&self, key: &[u8]) -> KeyInfo {
        KeyInfo {
            kind: kvs_store::Kind::String,
            key: Bytes::copy_from_slice(key),
            size: self.value.len() as u64,
            content_type: Bytes::copy_from_slice(&self.content_type),
            version: self.version,
            modified_at: self.modified_at,
            expires_at: self.expires_at,
        }
    }
}

/// The reference: every entry the store should hold, expired-but-unswept ones included.
#[derive(Debug, Default)]
struct Model {
    held: BTreeMap<Vec<u8>, ModelEntry>,
    revision: u64,
    /// Every version handed out, in order.
    history: Vec<u64>,
}

impl Model {
    fn live(&self, key: &[u8], now: Millis) -> Option<&ModelEntry> {
        self.held.get(key).filter(|e| e.is_live(now))
    }

    fn next_version(&mut self) -> u64 {
        self.revision += 1;
        self.history.push(self.revision);
        self.revision
    }

    fn resolve(&self, spec: VersionSpec, key: &[u8], now: Millis) -> u64 {
        match spec {
            VersionSpec::Current => self.live(key, now).map_or(self.revision, |e| e.version),
            VersionSpec::Past(i) if !self.history.is_empty() => {
                self.history[i % self.history.len()]
            }
            VersionSpec::Past(_) => 0,
            VersionSpec::Future(d) => self.revision + d,
        }
    }

    fn set(&mut self, set: &Set, now: Millis) -> Reply {
        let current = self.live(&set.key, now).cloned();
        let holds = match set.condition {
            Condition::Always => true,
            Condition::IfAbsent => current.is_none(),
            Condition::IfPresent => current.is_some(),
            Condition::IfVersion(v) => current.as_ref().is_some_and(|e| e.version == v),
        };
        if !holds {
            return Reply::ConditionFailed {
                current: current.map(|e| e.version),
            };
        }
        let expires_at = match set.expiry {
            ExpiryUpdate::Clear => None,
            ExpiryUpdate::Keep => current.as_ref().and_then(|e| e.expires_at),
            ExpiryUpdate::At(at) => Some(at),
            ExpiryUpdate::After(ms) => Some(now + ms),
        };
        let version = self.next_version();
        self.held.insert(
            set.key.to_vec(),
            ModelEntry {
                value: set.value.to_vec(),
                content_type: set.content_type.to_vec(),
                version,
                modified_at: now,
                expires_at,
            },
        );
        Reply::Stored {
            version,
            created: current.is_none(),
            previous: current.map(|e| e.to_entry()),
        }
    }

    fn get(&self, key: &[u8], now: Millis) -> Reply {
        match self.live(key, now) {
            Some(e) => Reply::Value(e.to_entry()),
            None => Reply::NotFound,
        }
    }

    fn delete(&mut self, key: &[u8], if_version: Option<u64>, now: Millis) -> Reply {
        let Some(current) = self.live(key, now) else {
            return Reply::NotFound;
        };
        if let Some(v) = if_version
            && current.version != v
        {
            return Reply::ConditionFailed {
                current: Some(current.version),
            };
        }
        let removed = self.held.remove(key).expect("live entry is held");
        Reply::Deleted(removed.to_entry())
    }

    fn expire(&mut self, key: &[u8], at: Option<Millis>, now: Millis) -> Reply {
        if self.live(key, now).is_none() {
            return Reply::NotFound;
        }
        let version = self.next_version();
        let entry = self.held.get_mut(key).expect("live entry is held");
        entry.version = version;
        entry.expires_at = at;
        Reply::ExpirySet { version }
    }

    fn count(&self, now: Millis) -> u64 {
        self.held.values().filter(|e| e.is_live(now)).count() as u64
    }

    fn list(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize, now: Millis) -> Page {
        let mut matching = self
            .held
            .iter()
            .filter(|(k, e)| {
                k.starts_with(prefix) && e.is_live(now) && cursor.is_none_or(|c| k.as_slice() > c)
            })
            .map(|(k, e)| e.to_info(k));
        let keys: Vec<KeyInfo> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        Page {
            next_cursor: if more && !keys.is_empty() {
                keys.last().map(|k| k.key.clone())
            } else {
                None
            },
            keys,
            prefixes: Vec::new(),
        }
    }

    fn expired(&self, now: Millis) -> BTreeSet<Vec<u8>> {
        self.held
            .iter()
            .filter(|(_, e)| !e.is_live(now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// What a listing at [`BEFORE_ALL`] must show: every held entry.
    fn all_held(&self) -> Vec<KeyInfo> {
        self.held.iter().map(|(k, e)| e.to_info(k)).collect()
    }
}

/// Every key the store holds, expired-but-unswept ones included.
fn store_held(store: &Store) -> Vec<KeyInfo> {
    let page = store.list(b"", None, 1_000, BEFORE_ALL);
    assert_eq!(page.next_cursor, None);
    page.keys
}

struct Harness {
    store: Store,
    model: Model,
    now: Millis,
}

impl Harness {
    fn new(store: Store) -> Self {
        Self {
            store,
            model: Model::default(),
            now: START,
        }
    }

    fn exec(&self, command: Command) -> Reply {
        self.store.execute(command, self.now)
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.now;
        match op {
            Op::Set {
                key,
                value,
                content_type,
                cond,
                expiry,
            } => {
                let k = KEYS[*key].as_bytes();
                let condition = match *cond {
                    CondSpec::Always => Condition::Always,
                    CondSpec::IfAbsent => Condition::IfAbsent,
                    CondSpec::IfPresent => Condition::IfPresent,
                    CondSpec::IfVersion(spec) => {
                        Condition::IfVersion(self.model.resolve(spec, k, now))
                    }
                };
                let expiry = match *expiry {
                    ExpirySpec::Clear => ExpiryUpdate::Clear,
                    ExpirySpec::Keep => ExpiryUpdate::Keep,
                    ExpirySpec::In(ms) => ExpiryUpdate::After(ms),
                };
                let set = Set::new(KEYS[*key], value.clone())
                    .content_type(CONTENT_TYPES[*content_type])
                    .condition(condition)
                    .expiry(expiry);
                let expected = self.model.set(&set, now);
                let got = self.exec(Command::Set(set));
                prop_assert_eq!(got, expected, "{:?}", op);
            }
            Op::Delete { key, if_version } => {
                let k = KEYS[*key].as_bytes();
                let if_version = if_version.map(|spec| self.model.resolve(spec, k, now));
                let mut delete = Delete::new(KEYS[*key]);
                if let Some(v) = if_version {
                    delete = delete.if_version(v);
                }
                let expected = self.model.delete(k, if_version, now);
                let got = self.exec(Command::Delete(delete));
                prop_assert_eq!(got, expected, "{:?}", op);
            }
            Op::Expire { key, in_ms } => {
                let at = in_ms.map(|ms| now + ms);
                let expected = self.model.expire(KEYS[*key].as_bytes(), at, now);
                let got = self.exec(Command::Expire(Expire::new(KEYS[*key], at)));
                prop_assert_eq!(got, expected, "{:?}", op);
            }
            Op::Get { key } => {
                let expected = self.model.get(KEYS[*key].as_bytes(), now);
                let got = self.exec(Command::Get(Get::new(KEYS[*key])));
                prop_assert_eq!(got, expected, "{:?}", op);
            }
            Op::Count => {
                let expected = self.model.count(now);
                prop_assert_eq!(self.exec(Command::Count(Count)), Reply::Count(expected));
                prop_assert_eq!(self.store.len(now), expected);
                prop_assert_eq!(self.store.is_empty(now), expected == 0);
            }
            Op::List {
                prefix,
                cursor,
                limit,
            } => {
                let prefix = PREFIXES[*prefix];
                let mut cursor = cursor.map(|c| Bytes::from_static(CURSORS[c].as_bytes()));
                let mut seen = Vec::new();
                // Page all the way through; each page must match the model's.
                for _ in 0..=KEYS.len() + 1 {
                    let expected =
                        self.model
                            .list(prefix.as_bytes(), cursor.as_deref(), *limit, now);
                    let got = self.exec(Command::List(List::new(prefix, cursor.clone(), *limit)));
                    prop_assert_eq!(
                        &got,
                        &Reply::Page(expected.clone()),
                        "{:?} at {:?}",
                        op,
                        cursor
                    );
                    seen.extend(expected.keys.iter().map(|k| k.key.clone()));
                    cursor = expected.next_cursor;
                    if cursor.is_none() {
                        break;
                    }
                }
                prop_assert!(cursor.is_none(), "listing did not finish: {:?}", op);
                prop_assert!(seen.windows(2).all(|w| w[0] < w[1]), "{:?}", seen);
            }
            Op::Advance { ms } => self.now += ms,
            Op::Sweep { budget } => {
                let expired = self.model.expired(now);
                let removed = self.store.sweep_expired(now, *budget);
                prop_assert_eq!(removed, expired.len().min(*budget), "{:?}", op);
                // Which expired keys went is the store's choice; learn it and check it is allowed.
                let still: BTreeSet<Vec<u8>> = store_held(&self.store)
                    .iter()
                    .map(|k| k.key.to_vec())
                    .collect();
                let gone: Vec<Vec<u8>> = self
                    .model
                    .held
                    .keys()
                    .filter(|k| !still.contains(*k))
                    .cloned()
                    .collect();
                prop_assert_eq!(gone.len(), removed, "gone {:?}", gone);
                for k in gone {
                    prop_assert!(expired.contains(&k), "swept a live key {:?}", k);
                    self.model.held.remove(&k);
                }
            }
        }
        // The whole held state, versions and revision counter agree after every step.
        prop_assert_eq!(
            store_held(&self.store),
            self.model.all_held(),
            "after {:?}",
            op
        );
        prop_assert_eq!(self.store.revision(), self.model.revision);
        Ok(())
    }
}

fn store_with(shards: usize) -> Store {
    if shards == 0 {
        Store::default()
    } else {
        Store::with_shards(shards)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every reply of the store equals the model's, for any sequence of operations.
    #[test]
    fn store_matches_model(
        shards in prop_oneof![Just(0usize), Just(1), Just(4)],
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut h = Harness::new(store_with(shards));
        for op in &ops {
            h.run(op)?;
        }
        // A sweep with budget to spare leaves exactly the live keys. (A finite budget, so a
        // sweep that miscounts fails here instead of spinning.)
        let expired = h.model.expired(h.now).len();
        prop_assert_eq!(h.store.sweep_expired(h.now, 2 * KEYS.len()), expired);
        h.model.held.retain(|_, e| e.is_live(h.now));
        prop_assert_eq!(store_held(&h.store), h.model.all_held());
    }
}

// ---- Paging through a listing while the keyspace changes between pages ----

/// A larger key alphabet for the paging property, again with shared prefixes.
const PAGING_KEYS: &[&str] = &[
    "", "a", "a/", "a/1", "a/2", "a/2/x", "a0", "ab", "b", "b/1", "b/2", "ba", "c", "c/1",
];
const PAGING_PREFIXES: &[&str] = &["", "a", "a/", "b"];

#[derive(Clone, Copy, Debug)]
enum Mutation {
    Set(usize),
    SetExpiring(usize, Millis),
    Delete(usize),
    Expire(usize, Option<Millis>),
    Advance(Millis),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let k = 0..PAGING_KEYS.len();
    prop_oneof![
        3 => k.clone().prop_map(Mutation::Set),
        1 => (k.clone(), 0..6u64).prop_map(|(k, ms)| Mutation::SetExpiring(k, ms)),
        3 => k.clone().prop_map(Mutation::Delete),
        1 => (k, prop::option::of(0..6u64)).prop_map(|(k, ms)| Mutation::Expire(k, ms)),
        1 => (1..4u64).prop_map(Mutation::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Paging with the cursor while keys come and go: keys arrive in strictly increasing order
    /// (so never twice), each was live when its page was taken, and every key live for the whole
    /// iteration is returned.
    #[test]
    fn paging_survives_concurrent_changes(
        shards in prop_oneof![Just(0usize), Just(1), Just(4)],
        initial in prop::collection::vec(0..PAGING_KEYS.len(), 0..PAGING_KEYS.len()),
        initial_expiring in prop::collection::vec((0..PAGING_KEYS.len(), 1..10u64), 0..3),
        prefix in 0..PAGING_PREFIXES.len(),
        limit in 1..5usize,
        between in prop::collection::vec(prop::collection::vec(mutation(), 0..4), 0..20),
    ) {
        let store = store_with(shards);
        let prefix = PAGING_PREFIXES[prefix].as_bytes();
        let mut now = START;
        // Key -> expiry of the live entry, for liveness only.
        let mut live: BTreeMap<&[u8], Option<Millis>> = BTreeMap::new();
        for &k in &initial {
            store.execute(Command::Set(Set::new(PAGING_KEYS[k], "v")), now);
            live.insert(PAGING_KEYS[k].as_bytes(), None);
        }
        for &(k, ms) in &initial_expiring {
            store.execute(Command::Set(Set::new(PAGING_KEYS[k], "v").expires_at(now + ms)), now);
            live.insert(PAGING_KEYS[k].as_bytes(), Some(now + ms));
        }
        let is_live = |e: &Option<Millis>, now: Millis| e.is_none_or(|at| at > now);
        let mut throughout: BTreeSet<&[u8]> = live
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && is_live(e, now))
            .map(|(k, _)| *k)
            .collect();

        let mut returned: Vec<Bytes> = Vec::new();
        let mut cursor: Option<Bytes> = None;
        let mut page_no = 0;
        loop {
            prop_assert!(page_no <= PAGING_KEYS.len() + between.len() + 1, "listing never ends");
            let reply = store.execute(Command::List(List::new(prefix.to_vec(), cursor.clone(), limit)), now);
            let Reply::Page(page) = reply else {
                return Err(TestCaseError::fail(format!("expected a page, got {reply:?}")));
            };
            prop_assert!(page.keys.len() <= limit);
            for info in &page.keys {
                prop_assert!(info.key.starts_with(prefix), "{:?} outside prefix", info.key);
                let state = live.get(&info.key[..]);
                prop_assert!(
                    state.is_some_and(|e| is_live(e, now)),
                    "{:?} listed but not live", info.key
                );
                returned.push(info.key.clone());
            }
            match &page.next_cursor {
                Some(c) => {
                    prop_assert_eq!(page.keys.len(), limit, "short page with a cursor");
                    prop_assert_eq!(Some(c), page.keys.last().map(|k| &k.key));
                }
                None => break,
            }
            cursor = page.next_cursor;
            // Change the keyspace before the next page.
            for m in between.get(page_no).into_iter().flatten() {
                match *m {
                    Mutation::Set(k) => {
                        store.execute(Command::Set(Set::new(PAGING_KEYS[k], "w")), now);
                        live.insert(PAGING_KEYS[k].as_bytes(), None);
                    }
                    Mutation::SetExpiring(k, ms) => {
                        let set = Set::new(PAGING_KEYS[k], "w").expires_at(now + ms);
                        store.execute(Command::Set(set), now);
                        live.insert(PAGING_KEYS[k].as_bytes(), Some(now + ms));
                    }
                    Mutation::Delete(k) => {
                        store.execute(Command::Delete(Delete::new(PAGING_KEYS[k])), now);
                        live.remove(PAGING_KEYS[k].as_bytes());
                    }
                    Mutation::Expire(k, ms) => {
                        let key = PAGING_KEYS[k].as_bytes();
                        if live.get(key).is_some_and(|e| is_live(e, now)) {
                            live.insert(key, ms.map(|ms| now + ms));
                        }
                        store.execute(Command::Expire(Expire::new(key.to_vec(), ms.map(|ms| now + ms))), now);
                    }
                    Mutation::Advance(ms) => {
                        now += ms;
                        store.sweep_expired(now, 1);
                    }
                }
                throughout.retain(|k| live.get(k).is_some_and(|e| is_live(e, now)));
            }
            page_no += 1;
        }

        prop_assert!(
            returned.windows(2).all(|w| w[0] < w[1]),
            "not strictly increasing: {:?}", returned
        );
        let returned_set: BTreeSet<&[u8]> = returned.iter().map(|k| &k[..]).collect();
        for k in &throughout {
            prop_assert!(returned_set.contains(k), "{:?} live throughout but never listed", k);
        }
    }
}
