//! Hashes, lists, sets, sorted sets and streams: what a key holds besides a string.
//!
//! Each type has a compact encoding for small collections ([`pack::Pack`]: one allocation) and a
//! real structure for large ones, switching at thresholds like Redis's `*-max-listpack-*`
//! ([`Limits`]). A collection changes only through an [`Edit`]: the command decides what changes
//! (which members to pop, what score a member ends with) and the edit, applied here, is both the
//! change made in memory and the record written to the log, so replaying the log rebuilds exactly
//! the same collection.

pub mod hash;
pub mod list;
pub mod pack;
pub mod set;
pub mod stream;
pub mod table;
pub mod zset;

use std::hash::{BuildHasher, RandomState};

use bytes::Bytes;

pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use stream::{Stream, StreamId, TrimTo};
pub use zset::ZSet;

use crate::entry::Kind;

/// A score, compared and hashed by its bits so replies and records can be compared exactly.
#[derive(Clone, Copy, Debug, Default)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Score {}

/// Formats a double as Redis 7.0 replies with one (C's `%.17g`): `0.10000000000000001`, `3`,
/// `1.0000000000000001e+300`, `inf`, `-inf`, `nan`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".to_owned();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        trim(&format!("{d:.*}", (16 - exp) as usize))
    }
}

/// A small, fast generator for the commands that choose at random (SPOP, SRANDMEMBER,
/// HRANDFIELD, ZRANDMEMBER), seeded from the operating system's randomness.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}

impl Rng {
    pub fn new() -> Self {
        Self(RandomState::new().hash_one(0x6b76_7321_u64) | 1)
    }

    /// The next number (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// When a collection leaves its compact encoding, as Redis's settings of the same names say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`.
    pub hash_entries: usize,
    /// `hash-max-listpack-value`.
    pub hash_value: usize,
    /// `set-max-intset-entries`.
    pub set_intset_entries: usize,
    /// `zset-max-listpack-entries`.
    pub zset_entries: usize,
    /// `zset-max-listpack-value`.
    pub zset_value: usize,
    /// `list-max-listpack-size`: a positive count of items, or -1 to -5 for 4 to 64 KiB.
    pub list_size: i64,
    /// `stream-node-max-entries`: entries in one node of a stream's layout (0: no limit).
    pub stream_node_entries: usize,
    /// `stream-node-max-bytes`: bytes past which a stream's node takes no more (0: no limit).
    pub stream_node_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Limits {
    /// Redis's defaults.
    pub const DEFAULT: Limits = Limits {
        hash_entries: 128,
        hash_value: 64,
        set_intset_entries: 512,
        zset_entries: 128,
        zset_value: 64,
        list_size: -2,
        stream_node_entries: 100,
        stream_node_bytes: 4096,
    };

    /// Whether a list of `items` items taking `bytes` bytes packed stays packed.
    pub fn list_fits(&self, items: usize, bytes: usize) -> bool {
        if self.list_size > 0 {
            items <= self.list_size as usize && bytes <= 64 << 10
        } else {
            let shift = (-self.list_size).clamp(1, 5) - 1;
            items <= 128 * (1 << shift) && bytes <= (4096usize << shift)
        }
    }
}

/// A collection held under a key.
#[derive(Clone, Debug)]
pub enum Collection {
    Hash(Hash),
    List(List),
    Set(Set),
    ZSet(ZSet),
    /// Boxed: a stream's counters would make every collection handle larger.
    Stream(Box<Stream>),
}

impl Collection {
    /// An empty collection of `kind` (a string kind gives an empty hash; callers never ask).
    pub fn empty(kind: Kind) -> Collection {
        match kind {
            Kind::List => Collection::List(List::default()),
            Kind::Set => Collection::Set(Set::default()),
            Kind::ZSet => Collection::ZSet(ZSet::default()),
            Kind::Stream => Collection::Stream(Box::default()),
            Kind::Hash | Kind::String => Collection::Hash(Hash::default()),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Collection::Hash(_) => Kind::Hash,
            Collection::List(_) => Kind::List,
            Collection::Set(_) => Kind::Set,
            Collection::ZSet(_) => Kind::ZSet,
            Collection::Stream(_) => Kind::Stream,
        }
    }

    /// Elements (fields, items, members) held.
    pub fn len(&self) -> usize {
        match self {
            Collection::Hash(h) => h.len(),
            Collection::List(l) => l.len(),
            Collection::Set(s) => s.len(),
            Collection::ZSet(z) => z.len(),
            Collection::Stream(s) => s.len(),
        }
    }

    /// Whether it holds nothing and so its key goes. A stream is never empty in this sense: an
    /// emptied stream keeps its key and its last ID, as in Redis.
    pub fn is_empty(&self) -> bool {
        !matches!(self, Collection::Stream(_)) && self.len() == 0
    }

    /// Whether both hold the same elements: the same fields and values, the same members, the
    /// same items in the same order, the same members with the same scores.
    pub fn same(&self, other: &Collection) -> bool {
        if self.len() != other.len() {
            return false;
        }
        match (self, other) {
            (Collection::Hash(a), Collection::Hash(b)) => {
                a.iter().all(|(f, v)| b.get(f) == Some(v))
            }
            (Collection::List(a), Collection::List(b)) => a.iter().eq(b.iter()),
            (Collection::Set(a), Collection::Set(b)) => a.iter().all(|m| b.contains(m)),
            (Collection::ZSet(a), Collection::ZSet(b)) => a
                .iter()
                .zip(b.iter())
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits()),
            (Collection::Stream(a), Collection::Stream(b)) => a.same(b),
            _ => false,
        }
    }

    /// Redis's name for how it is held (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match self {
            Collection::Hash(h) => h.encoding(),
            Collection::List(l) => l.encoding(),
            Collection::Set(s) => s.encoding(),
            Collection::ZSet(z) => z.encoding(),
            Collection::Stream(_) => "stream",
        }
    }

    /// Bytes it takes from the allocator, roughly.
    pub fn footprint(&self) -> usize {
        32 + match self {
            Collection::Hash(h) => h.footprint(),
            Collection::List(l) => l.footprint(),
            Collection::Set(s) => s.footprint(),
            Collection::ZSet(z) => z.footprint(),
            Collection::Stream(s) => s.footprint(),
        }
    }

    /// Every element as an edit that adds it to an empty collection of this kind, in chunks of
    /// at most `chunk` elements: how snapshots and whole-value records carry a collection.
    pub fn chunks(&self, chunk: usize) -> impl Iterator<Item = Edit> + '_ {
        let chunk = chunk.max(1);
        let mut hash = match self {
            Collection::Hash(h) => Some(h.iter()),
            _ => None,
        };
        let mut list = match self {
            Collection::List(l) => Some(l.iter()),
            _ => None,
        };
        let mut set = match self {
            Collection::Set(s) => Some(s.iter()),
            _ => None,
        };
        let mut zset = match self {
            Collection::ZSet(z) => Some(z.iter()),
            _ => None,
        };
        let mut stream = match self {
            Collection::Stream(s) => Some((s.iter(), Some(s))),
            _ => None,
        };
        let b = Bytes::copy_from_slice;
        std::iter::from_fn(move || {
            let edit = if let Some(it) = hash.as_mut() {
                Edit::HashSet(it.take(chunk).map(|(f, v)| (b(f), b(v))).collect())
            } else if let Some(it) = list.as_mut() {
                Edit::ListPush {
                    front: false,
                    items: it.take(chunk).map(b).collect(),
                }
            } else if let Some(it) = set.as_mut() {
                Edit::SetAdd(it.take(chunk).map(b).collect())
            } else if let Some(it) = zset.as_mut() {
                Edit::ZAdd(it.take(chunk).map(|(m, s)| (Score(s), b(m))).collect())
            } else if let Some((it, meta)) = stream.as_mut() {
                let entries: Vec<_> = it
                    .take(chunk)
                    .map(|(id, pairs)| (id, pairs.iter().map(b).collect()))
                    .collect();
                if entries.is_empty() {
                    // The counters last, over what adding the entries counted.
                    let s = meta.take()?;
                    Edit::StreamMeta {
                        last_id: s.last_id(),
                        max_deleted: s.max_deleted(),
                        entries_added: s.entries_added(),
                    }
                } else {
                    Edit::StreamAdd(entries)
                }
            } else {
                return None;
            };
            (!edit.is_empty()).then_some(edit)
        })
    }

    /// Applies `edit`. Returns how many elements it added (pushes: the new length) or removed;
    /// an edit of another type changes nothing and returns 0 (commands check types first).
    pub fn apply(&mut self, edit: &Edit, limits: &Limits) -> usize {
        match (self, edit) {
            (Collection::Hash(h), Edit::HashSet(pairs)) => {
                pairs.iter().filter(|(f, v)| h.set(f, v, limits)).count()
            }
            (Collection::Hash(h), Edit::HashRemove(fields)) => {
                fields.iter().filter(|f| h.remove(f)).count()
            }
            (Collection::List(l), Edit::ListPush { front, items }) => {
                for item in items {
                    if *front {
                        l.insert(0, item, limits);
                    } else {
                        l.push_back(item, limits);
                    }
                }
                l.len()
            }
            (Collection::List(l), Edit::ListPop { front, count }) => {
                let n = (*count as usize).min(l.len());
                let at = if *front { 0 } else { l.len() - n };
                l.remove(at, n, limits);
                n
            }
            (Collection::List(l), Edit::ListSet { index, item }) => {
                l.replace(*index as usize, item, limits);
                0
            }
            (Collection::List(l), Edit::ListInsert { index, item }) => {
                l.insert(*index as usize, item, limits);
                l.len()
            }
            (Collection::List(l), Edit::ListRemove { count, item }) => {
                list_remove(l, *count, item, limits)
            }
            (Collection::List(l), Edit::ListTrim { start, len }) => {
                let before = l.len();
                l.keep(*start as usize, *len as usize, limits);
                before - l.len()
            }
            (Collection::Set(s), Edit::SetAdd(members)) => {
                members.iter().filter(|m| s.add(m, limits)).count()
            }
            (Collection::Set(s), Edit::SetRemove(members)) => {
                members.iter().filter(|m| s.remove(m)).count()
            }
            (Collection::ZSet(z), Edit::ZAdd(pairs)) => pairs
                .iter()
                .filter(|(s, m)| z.insert(m, s.0, limits))
                .count(),
            (Collection::ZSet(z), Edit::ZRemove(members)) => {
                members.iter().filter(|m| z.remove(m)).count()
            }
            (Collection::Stream(s), Edit::StreamAdd(entries)) => {
                for (id, pairs) in entries {
                    s.add(*id, pairs, limits);
                }
                entries.len()
            }
            (Collection::Stream(s), Edit::StreamDelete(ids)) => {
                ids.iter().filter(|id| s.delete(**id)).count()
            }
            (Collection::Stream(s), Edit::StreamTrim { through }) => s.trim_through(*through),
            (
                Collection::Stream(s),
                Edit::StreamMeta {
                    last_id,
                    max_deleted,
                    entries_added,
                },
            ) => {
                s.set_meta(*last_id, *max_deleted, *entries_added);
                0
            }
            _ => 0,
        }
    }
}

/// LREM: removes up to `count` items equal to `item` from the head (`count` > 0), the tail
/// (`count` < 0) or everywhere (0); how many went.
fn list_remove(l: &mut List, count: i64, item: &[u8], limits: &Limits) -> usize {
    let mut positions: Vec<usize> = l
        .iter()
        .enumerate()
        .filter(|(_, x)| *x == item)
        .map(|(i, _)| i)
        .collect();
    let limit = count.unsigned_abs() as usize;
    if count < 0 {
        positions.reverse();
    }
    if count != 0 {
        positions.truncate(limit);
    }
    positions.sort_unstable();
    for (removed, at) in positions.iter().enumerate() {
        l.remove(at - removed, 1, limits);
    }
    positions.len()
}

/// One change to a collection: what a write to it logs and what replay applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Fields set to values (HSET, HINCRBY with the resulting value, ...).
    HashSet(Vec<(Bytes, Bytes)>),
    /// Fields removed.
    HashRemove(Vec<Bytes>),
    /// Items pushed one by one at the head (each becomes the first) or the tail.
    ListPush { front: bool, items: Vec<Bytes> },
    /// Items popped from the head or the tail.
    ListPop { front: bool, count: u64 },
    /// Item `index` replaced.
    ListSet { index: u64, item: Bytes },
    /// An item inserted to become item `index`.
    ListInsert { index: u64, item: Bytes },
    /// LREM: up to |count| items equal to `item`, from the head (count > 0), the tail (< 0), all (0).
    ListRemove { count: i64, item: Bytes },
    /// Only `len` items from `start` kept.
    ListTrim { start: u64, len: u64 },
    /// Members added.
    SetAdd(Vec<Bytes>),
    /// Members removed.
    SetRemove(Vec<Bytes>),
    /// Members set to these scores (ZADD, ZINCRBY with the resulting score, ...).
    ZAdd(Vec<(Score, Bytes)>),
    /// Members removed.
    ZRemove(Vec<Bytes>),
    /// Stream entries added, each its ID (decided by the command) and its fields and values.
    StreamAdd(Vec<(StreamId, Vec<Bytes>)>),
    /// Stream entries deleted (XDEL).
    StreamDelete(Vec<StreamId>),
    /// Every stream entry at or below this ID removed (XTRIM, XADD's trimming).
    StreamTrim { through: StreamId },
    /// A stream's counters set (XSETID; the end of a stream in a snapshot).
    StreamMeta {
        last_id: StreamId,
        max_deleted: StreamId,
        entries_added: u64,
    },
}

impl Edit {
    /// The type of collection it edits (and creates, on a missing key).
    pub fn kind(&self) -> Kind {
        match self {
            Edit::HashSet(_) | Edit::HashRemove(_) => Kind::Hash,
            Edit::ListPush { .. }
            | Edit::ListPop { .. }
            | Edit::ListSet { .. }
            | Edit::ListInsert { .. }
            | Edit::ListRemove { .. }
            | Edit::ListTrim { .. } => Kind::List,
            Edit::SetAdd(_) | Edit::SetRemove(_) => Kind::Set,
            Edit::ZAdd(_) | Edit::ZRemove(_) => Kind::ZSet,
            Edit::StreamAdd(_)
            | Edit::StreamDelete(_)
            | Edit::StreamTrim { .. }
            | Edit::StreamMeta { .. } => Kind::Stream,
        }
    }

    /// Elements it names.
    pub fn len(&self) -> usize {
        match self {
            Edit::HashSet(p) => p.len(),
            Edit::HashRemove(v) | Edit::SetAdd(v) | Edit::SetRemove(v) | Edit::ZRemove(v) => {
                v.len()
            }
            Edit::ListPush { items, .. } => items.len(),
            Edit::ZAdd(p) => p.len(),
            Edit::StreamAdd(e) => e.len(),
            Edit::StreamDelete(ids) => ids.len(),
            _ => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of element data it carries, roughly: for sizing buffers and history.
    pub fn weight(&self) -> usize {
        match self {
            Edit::HashSet(p) => p.iter().map(|(f, v)| f.len() + v.len() + 8).sum(),
            Edit::HashRemove(v) | Edit::SetAdd(v) | Edit::SetRemove(v) | Edit::ZRemove(v) => {
                v.iter().map(|m| m.len() + 4).sum()
            }
            Edit::ListPush { items, .. } => items.iter().map(|m| m.len() + 4).sum(),
            Edit::ZAdd(p) => p.iter().map(|(_, m)| m.len() + 12).sum(),
            Edit::ListSet { item, .. }
            | Edit::ListInsert { item, .. }
            | Edit::ListRemove { item, .. } => item.len() + 16,
            Edit::ListPop { .. } | Edit::ListTrim { .. } => 16,
            Edit::StreamAdd(e) => e
                .iter()
                .map(|(_, p)| 16 + p.iter().map(|x| x.len() + 4).sum::<usize>())
                .sum(),
            Edit::StreamDelete(ids) => ids.len() * 16,
            Edit::StreamTrim { .. } | Edit::StreamMeta { .. } => 40,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::zset::order;
    use super::*;

    /// A small collection is one small allocation besides its packed items: the large
    /// encodings' bookkeeping is boxed away.
    #[test]
    fn a_collection_handle_is_small() {
        assert!(size_of::<Collection>() <= 32, "{}", size_of::<Collection>());
    }

    #[test]
    fn doubles_format_as_redis_7_0_does() {
        for (d, want) in [
            (0.1, "0.10000000000000001"),
            (3.0, "3"),
            (1e300, "1.0000000000000001e+300"),
            (0.30000000000000004, "0.30000000000000004"),
            (-2.5, "-2.5"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123456789.125, "123456789.125"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(format_double(d), want, "{d}");
        }
    }

    #[test]
    fn random_numbers_stay_below_their_bound_and_vary() {
        let mut rng = Rng::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let n = rng.below(10);
            assert!(n < 10);
            seen.insert(n);
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(rng.below(0), 0);
    }

    fn limits() -> Limits {
        Limits {
            hash_entries: 4,
            set_intset_entries: 4,
            zset_entries: 4,
            list_size: 4,
            ..Limits::default()
        }
    }

    #[test]
    fn collections_move_to_real_structures_past_their_limits() {
        let l = limits();
        let mut h = Collection::empty(Kind::Hash);
        for i in 0..4 {
            h.apply(
                &Edit::HashSet(vec![(format!("f{i}").into(), "v".into())]),
                &l,
            );
        }
        assert_eq!(h.encoding(), "listpack");
        h.apply(&Edit::HashSet(vec![("f9".into(), "v".into())]), &l);
        assert_eq!((h.encoding(), h.len()), ("hashtable", 5));

        let mut s = Collection::empty(Kind::Set);
        s.apply(&Edit::SetAdd(vec!["1".into(), "2".into()]), &l);
        assert_eq!(s.encoding(), "intset");
        s.apply(&Edit::SetAdd(vec!["x".into()]), &l);
        assert_eq!((s.encoding(), s.len()), ("hashtable", 3));

        let mut z = Collection::empty(Kind::ZSet);
        let add = |z: &mut Collection, s: f64, m: &str| {
            z.apply(
                &Edit::ZAdd(vec![(Score(s), Bytes::copy_from_slice(m.as_bytes()))]),
                &l,
            )
        };
        for (i, m) in ["d", "c", "b", "a"].iter().enumerate() {
            add(&mut z, i as f64, m);
        }
        assert_eq!(z.encoding(), "listpack");
        add(&mut z, -1.0, "e");
        assert_eq!(z.encoding(), "skiplist");
        let Collection::ZSet(zs) = &z else { panic!() };
        let order: Vec<&[u8]> = zs.iter().map(|(m, _)| m).collect();
        assert_eq!(order, [&b"e"[..], b"d", b"c", b"b", b"a"]);
        assert_eq!(zs.rank(b"b"), Some(3));

        let mut list = Collection::empty(Kind::List);
        list.apply(
            &Edit::ListPush {
                front: true,
                items: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
            },
            &l,
        );
        let Collection::List(items) = &list else {
            panic!()
        };
        assert!(matches!(items, List::Deque(..)));
        let got: Vec<&[u8]> = items.iter().collect();
        assert_eq!(got, [&b"e"[..], b"d", b"c", b"b", b"a"]);
        list.apply(
            &Edit::ListPop {
                front: true,
                count: 4,
            },
            &l,
        );
        let Collection::List(items) = &list else {
            panic!()
        };
        assert!(matches!(items, List::Pack(..)), "packed again once small");
    }

    #[test]
    fn a_large_sorted_set_keeps_order_and_ranks() {
        let l = Limits::default();
        let mut z = ZSet::default();
        let mut model = Vec::new();
        let mut rng = Rng::new();
        for i in 0..5_000u64 {
            let score = rng.below(1000) as f64;
            let member = format!("m{}", rng.below(3000));
            z.insert(member.as_bytes(), score, &l);
            model.retain(|(_, m): &(f64, String)| *m != member);
            model.push((score, member));
            if i % 7 == 0 {
                let gone = format!("m{}", rng.below(3000));
                let had = model.iter().any(|(_, m)| *m == gone);
                assert_eq!(z.remove(gone.as_bytes()), had);
                model.retain(|(_, m)| *m != gone);
            }
        }
        model.sort_by(|a, b| order((a.0, a.1.as_bytes()), (b.0, b.1.as_bytes())));
        assert_eq!(z.len(), model.len());
        let ZSet::Sorted(_, ranked) = &z else {
            panic!("a large sorted set")
        };
        let (kept, counted) = ranked.slots_counted();
        assert_eq!(kept, counted, "the running count of chunk room");
        let got: Vec<(f64, String)> = z
            .iter()
            .map(|(m, s)| (s, String::from_utf8_lossy(m).into_owned()))
            .collect();
        assert_eq!(got, model);
        for (rank, (_, m)) in model.iter().enumerate().step_by(97) {
            assert_eq!(z.rank(m.as_bytes()), Some(rank));
            assert_eq!(z.iter_from(rank).next().map(|(x, _)| x), Some(m.as_bytes()));
        }
    }
}
