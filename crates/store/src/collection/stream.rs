//! Streams: an append-only log of entries, each named by an ID that only grows and holding
//! field-value pairs (Redis's stream type). Entries sit in an ordered map by ID, each entry's
//! pairs packed in one allocation. A stream remembers the last ID it gave out, the largest ID
//! deleted and how many entries were ever added, so an emptied stream still refuses old IDs, as
//! Redis's does; for the same reason an empty stream keeps its key.
//!
//! Beside the entries a stream keeps the outline of how Redis would lay them out: runs of at most
//! 100 entries or about 4 KiB (Redis's listpack nodes, `stream-node-max-entries` and
//! `stream-node-max-bytes`). Approximate trimming (`MAXLEN ~`, `MINID ~`) removes only whole
//! nodes, as Redis's does, so it removes exactly what Redis would.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Bound;

use bytes::Bytes;

use super::Limits;
use super::pack::Pack;
use crate::usage::size_class;

/// An entry's ID: milliseconds and a sequence number within them, ordered as a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The ID right after this one; `None` after the last possible.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The ID right before this one; `None` before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    /// Parses `ms-seq` or `ms` (the sequence then `missing_seq`); `-` and `+` are the smallest
    /// and largest IDs unless `strict`. `None` for anything else, which Redis answers "Invalid
    /// stream ID specified as stream command argument".
    pub fn parse(arg: &[u8], missing_seq: u64, strict: bool) -> Option<StreamId> {
        match arg {
            b"-" if !strict => return Some(StreamId::MIN),
            b"+" if !strict => return Some(StreamId::MAX),
            _ => {}
        }
        let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
            Some(at) => (number(&arg[..at])?, number(&arg[at + 1..])?),
            None => (number(arg)?, missing_seq),
        };
        Some(StreamId { ms, seq })
    }

    pub fn to_bytes(self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

/// A decimal number that fits 64 unsigned bits, as Redis reads an ID's parts.
fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Most bytes a node may hold, whatever `stream-node-max-bytes` says (Redis's listpack limit).
const NODE_MAX_BYTES: usize = 1 << 30;

/// One run of entries as Redis would hold them in one listpack node.
#[derive(Clone, Debug)]
struct Node {
    /// The first and the last ID added to it (the last may have been deleted since).
    first: StreamId,
    last: StreamId,
    /// Entries added to it, deleted ones included: a node takes `stream-node-max-entries` at
    /// most.
    added: u64,
    /// Entries in it not deleted: a node with none left is gone.
    live: u64,
    /// Its size as a listpack, roughly, and a fingerprint of its first entry's field names
    /// (entries with the same fields are stored smaller).
    bytes: usize,
    fields: u64,
}

/// A fingerprint of an entry's field names.
fn field_names(pairs: &[Bytes]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    for field in pairs.iter().step_by(2) {
        h.write(field);
        h.write_u8(0xff);
    }
    h.finish()
}

/// Bytes a listpack element of `len` bytes takes (header, data, back-length), roughly.
fn element(len: usize) -> usize {
    len + if len < 64 { 2 } else { 4 }
}

/// How a trim (XTRIM, or XADD with MAXLEN or MINID) decides what goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimTo {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Keep only entries with IDs at or above this.
    MinId(StreamId),
}

#[derive(Clone, Debug, Default)]
pub struct Stream {
    entries: BTreeMap<StreamId, Pack>,
    /// The largest ID ever added (or set by XSETID).
    last_id: StreamId,
    /// The largest ID ever deleted with XDEL.
    max_deleted: StreamId,
    /// Entries ever added.
    entries_added: u64,
    /// Bytes the entries' packs hold, by allocation size.
    bytes: usize,
    /// The entries' outline as Redis's nodes, oldest first.
    nodes: VecDeque<Node>,
}

/// The bookkeeping each entry costs besides its pack: the map's key, value and node share.
const PER_ENTRY: usize = 16 + size_of::<Pack>() + 16;

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    pub fn max_deleted(&self) -> StreamId {
        self.max_deleted
    }

    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    pub(crate) fn footprint(&self) -> usize {
        48 + self.bytes + self.entries.len() * PER_ENTRY + self.nodes.len() * size_of::<Node>()
    }

    /// Nodes Redis would hold the entries in (XINFO's `radix-tree-keys`).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The size of Redis's index of those nodes (XINFO's `radix-tree-nodes`): a radix tree
    /// keyed by each node's first ID as 16 big-endian bytes has a tree node for the root, for
    /// every place two keys part, for each branch out of such a place and for every key.
    pub fn index_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .nodes
            .iter()
            .map(|n| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&n.first.ms.to_be_bytes());
                k[8..].copy_from_slice(&n.first.seq.to_be_bytes());
                k
            })
            .collect();
        let mut prefixes: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
        prefixes.insert(&[]);
        for pair in keys.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            prefixes.insert(&a[..common]);
            if common < 16 {
                prefixes.insert(&a[..=common]);
                prefixes.insert(&b[..=common]);
            }
        }
        for k in &keys {
            prefixes.insert(k);
        }
        prefixes.len()
    }

    /// The node `id` falls in.
    fn node_of(&self, id: StreamId) -> Option<usize> {
        self.nodes.partition_point(|n| n.first <= id).checked_sub(1)
    }

    /// Notes an entry added after every other in the nodes' outline.
    fn outline_add(&mut self, id: StreamId, pairs: &[Bytes], limits: &Limits) {
        let data: usize = pairs.iter().map(|p| p.len()).sum();
        let names = field_names(pairs);
        let max_bytes = match limits.stream_node_bytes {
            0 => NODE_MAX_BYTES,
            n => n.min(NODE_MAX_BYTES),
        };
        let max_entries = limits.stream_node_entries as u64;
        if let Some(tail) = self.nodes.back_mut()
            && (max_entries == 0 || tail.added < max_entries)
            && tail.bytes + data < max_bytes
        {
            // Flags, the ID's two deltas and the back count; an entry whose fields differ from
            // the node's first also holds its field count and names.
            let stored: usize = if tail.fields == names {
                pairs
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .map(|v| element(v.len()))
                    .sum()
            } else {
                2 + pairs.iter().map(|p| element(p.len())).sum::<usize>()
            };
            tail.bytes += stored + 8;
            tail.added += 1;
            tail.live += 1;
            tail.last = id;
            return;
        }
        let master: usize = pairs.iter().step_by(2).map(|f| element(f.len())).sum();
        let values: usize = pairs
            .iter()
            .skip(1)
            .step_by(2)
            .map(|v| element(v.len()))
            .sum();
        self.nodes.push_back(Node {
            first: id,
            last: id,
            added: 1,
            live: 1,
            bytes: 7 + 8 + master + 2 + 8 + values,
            fields: names,
        });
    }

    /// Notes that the entry `id` was removed from the nodes' outline.
    fn outline_remove(&mut self, id: StreamId) {
        if let Some(i) = self.node_of(id) {
            let node = &mut self.nodes[i];
            node.live = node.live.saturating_sub(1);
            if node.live == 0 {
                self.nodes.remove(i);
            }
        }
    }

    /// The first and last entries.
    pub fn first(&self) -> Option<(StreamId, &Pack)> {
        self.entries.first_key_value().map(|(id, p)| (*id, p))
    }

    pub fn last(&self) -> Option<(StreamId, &Pack)> {
        self.entries.last_key_value().map(|(id, p)| (*id, p))
    }

    /// Every entry in ID order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (StreamId, &Pack)> {
        self.entries.iter().map(|(id, p)| (*id, p))
    }

    /// Entries with IDs from `start` to `end`, both included, in ID order.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl DoubleEndedIterator<Item = (StreamId, &Pack)> {
        let range = if start <= end {
            Some(
                self.entries
                    .range((Bound::Included(start), Bound::Included(end))),
            )
        } else {
            None
        };
        range.into_iter().flatten().map(|(id, p)| (*id, p))
    }

    /// The ID XADD gives an entry added at `now` (milliseconds) with `*`: the time, or the last
    /// ID's next when the clock has not moved past it. `None` once the last possible ID is used.
    pub fn next_auto_id(&self, now: u64) -> Option<StreamId> {
        if now > self.last_id.ms {
            Some(StreamId { ms: now, seq: 0 })
        } else {
            self.last_id.next()
        }
    }

    /// Adds an entry; the caller has checked that `id` is above the last ID. `limits` say how
    /// large the layout's nodes grow.
    pub fn add(&mut self, id: StreamId, pairs: &[Bytes], limits: &Limits) {
        let mut pack = Pack::default();
        for item in pairs {
            pack.push(item);
        }
        self.bytes += size_class(pack.capacity());
        if let Some(old) = self.entries.insert(id, pack) {
            self.bytes -= size_class(old.capacity());
        } else {
            self.entries_added += 1;
            if self.nodes.back().is_none_or(|n| n.last < id) {
                self.outline_add(id, pairs, limits);
            } else if let Some(i) = self.node_of(id) {
                // Only a damaged log adds below the top: count it where it falls.
                self.nodes[i].live += 1;
            }
        }
        self.last_id = self.last_id.max(id);
    }

    /// Deletes the entry `id`, if held.
    pub fn delete(&mut self, id: StreamId) -> bool {
        match self.entries.remove(&id) {
            Some(pack) => {
                self.bytes -= size_class(pack.capacity());
                self.max_deleted = self.max_deleted.max(id);
                self.outline_remove(id);
                true
            }
            None => false,
        }
    }

    /// Removes every entry with an ID at or below `through`; how many went.
    pub fn trim_through(&mut self, through: StreamId) -> usize {
        let kept = match through.next() {
            Some(next) => self.entries.split_off(&next),
            None => BTreeMap::new(),
        };
        let gone = std::mem::replace(&mut self.entries, kept);
        for (id, pack) in &gone {
            self.bytes -= size_class(pack.capacity());
            self.outline_remove(*id);
        }
        gone.len()
    }

    /// Sets the stream's counters, as XSETID does and as snapshots carry them.
    pub fn set_meta(&mut self, last_id: StreamId, max_deleted: StreamId, entries_added: u64) {
        self.last_id = last_id;
        self.max_deleted = max_deleted;
        self.entries_added = entries_added;
    }

    /// The last ID a trim removes (every entry at or below it goes), or `None` when it removes
    /// nothing; as Redis trims. Whole nodes go first, while what stays is still enough (MAXLEN)
    /// or the node's last ID is below the minimum (MINID), and no more than `limit` entries
    /// (0: no limit). An exact trim then removes single entries from the next node; an
    /// approximate one (`approx`) stops there.
    pub fn trim_point(&self, to: TrimTo, approx: bool, limit: u64) -> Option<StreamId> {
        let mut length = self.entries.len() as u64;
        let mut through = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if matches!(to, TrimTo::MaxLen(max) if length <= max) {
                break;
            }
            let removed = self.entries.len() as u64 - length;
            if limit > 0 && removed + node.live > limit {
                break;
            }
            let whole = match to {
                TrimTo::MaxLen(max) => length - node.live >= max,
                TrimTo::MinId(min) => node.last < min,
            };
            let end = self.nodes.get(i + 1).map(|n| n.first);
            let in_node = self.entries.range(node.first..).map(|(id, _)| *id);
            let in_node = in_node.take_while(|id| end.is_none_or(|end| *id < end));
            if whole {
                length -= node.live;
                through = in_node.last().or(through);
                continue;
            }
            if approx {
                break;
            }
            for id in in_node {
                let stop = match to {
                    TrimTo::MaxLen(max) => length <= max,
                    TrimTo::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                length -= 1;
                through = Some(id);
            }
            break;
        }
        through
    }

    /// Whether both hold the same entries and counters.
    pub(crate) fn same(&self, other: &Stream) -> bool {
        self.last_id == other.last_id
            && self.max_deleted == other.max_deleted
            && self.entries_added == other.entries_added
            && self
                .entries
                .iter()
                .zip(other.entries.iter())
                .all(|((a, x), (b, y))| a == b && x.iter().eq(y.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    const L: Limits = Limits::DEFAULT;

    #[test]
    fn ids_parse_as_redis_reads_them() {
        assert_eq!(StreamId::parse(b"5-3", 0, true), Some(id(5, 3)));
        assert_eq!(StreamId::parse(b"5", 7, true), Some(id(5, 7)));
        assert_eq!(StreamId::parse(b"-", 0, false), Some(StreamId::MIN));
        assert_eq!(StreamId::parse(b"+", 0, false), Some(StreamId::MAX));
        for bad in [
            &b"-"[..],
            b"+",
            b"",
            b"a-1",
            b"1-",
            b"-1",
            b"1-2-3",
            b"18446744073709551616",
        ] {
            assert_eq!(StreamId::parse(bad, 0, true), None, "{bad:?}");
        }
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(id(2, 0).prev(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(id(12, 4).to_string(), "12-4");
    }

    #[test]
    fn auto_ids_follow_the_clock_and_never_go_back() {
        let mut s = Stream::default();
        assert_eq!(s.next_auto_id(100), Some(id(100, 0)));
        s.add(id(100, 0), &["f".into(), "v".into()], &L);
        assert_eq!(s.next_auto_id(100), Some(id(100, 1)));
        assert_eq!(
            s.next_auto_id(50),
            Some(id(100, 1)),
            "a clock that went back"
        );
        s.set_meta(StreamId::MAX, StreamId::MIN, 1);
        assert_eq!(s.next_auto_id(u64::MAX), None);
    }

    #[test]
    fn deletes_and_trims_keep_the_counters() {
        let mut s = Stream::default();
        for ms in 1..=250 {
            s.add(id(ms, 0), &["f".into(), Bytes::from(ms.to_string())], &L);
        }
        assert!(s.delete(id(7, 0)));
        assert!(!s.delete(id(7, 0)));
        assert_eq!(
            (s.len(), s.max_deleted(), s.entries_added()),
            (249, id(7, 0), 250)
        );
        assert_eq!(s.nodes(), 3, "nodes of 100, 100 and 50 entries");
        // Keys 1-0, 101-0 and 201-0 part at the milliseconds' last byte: the root, the place
        // they part, a branch from it for each, and each key.
        assert_eq!(s.index_nodes(), 8);
        assert_eq!(Stream::default().index_nodes(), 1);
        assert_eq!(s.trim_point(TrimTo::MaxLen(200), false, 0), Some(id(50, 0)));
        assert_eq!(
            s.trim_point(TrimTo::MaxLen(200), true, 0),
            None,
            "the first node is needed"
        );
        assert_eq!(s.trim_point(TrimTo::MaxLen(120), true, 0), Some(id(100, 0)));
        assert_eq!(
            s.trim_point(TrimTo::MaxLen(0), true, 150),
            Some(id(100, 0)),
            "the limit"
        );
        assert_eq!(s.trim_point(TrimTo::MaxLen(0), true, 0), Some(id(250, 0)));
        assert_eq!(
            s.trim_point(TrimTo::MinId(id(10, 0)), false, 0),
            Some(id(9, 0))
        );
        assert_eq!(
            s.trim_point(TrimTo::MinId(id(150, 0)), true, 0),
            Some(id(100, 0))
        );
        assert_eq!(s.trim_point(TrimTo::MaxLen(300), false, 0), None);
        assert_eq!(s.trim_through(id(9, 0)), 8);
        assert_eq!(s.first().map(|e| e.0), Some(id(10, 0)));
        assert_eq!(s.trim_through(id(100, 0)), 91);
        assert_eq!(s.nodes(), 2, "a node with nothing left goes");
        let before = s.footprint();
        s.add(
            id(300, 0),
            &["big".into(), Bytes::from(vec![b'x'; 5000])],
            &L,
        );
        s.add(id(301, 0), &["f".into(), "v".into()], &L);
        assert_eq!(s.nodes(), 4, "a node past 4 KiB takes no more entries");
        assert_eq!(s.trim_through(StreamId::MAX), 152);
        assert!(s.is_empty() && s.footprint() < before && s.nodes() == 0);
        assert_eq!(
            s.last_id(),
            id(301, 0),
            "an emptied stream remembers its last ID"
        );
        let got: Vec<StreamId> = s.range(id(1, 0), StreamId::MAX).map(|e| e.0).collect();
        assert!(got.is_empty());
    }
}
