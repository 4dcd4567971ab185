//! Ordered, paged listing by prefix: a k-way merge of the shards' ordered key sets.
//!
//! A page holds every shard's read lock while it merges (taken in index order), so a page is a
//! consistent cut of the keyspace and costs O(shards · log n + limit · log shards) — never a scan
//! of the whole keyspace. The cursor is the last key returned; the next page starts strictly after
//! it, so a key that exists for the whole iteration is returned exactly once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;

use bytes::Bytes;

use crate::access::Keyspace;
use crate::entry::{KeyInfo, Millis};
use crate::keyspace::Store;
use crate::shard::Shard;

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Live keys in lexicographic byte order.
    pub keys: Vec<KeyInfo>,
    /// Pass this as the next call's cursor; `None` when the listing is complete.
    pub next_cursor: Option<Bytes>,
}

impl Store {
    /// Up to `limit` live keys that start with `prefix` and sort after `cursor`, in order.
    pub fn list(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize, now: Millis) -> Page {
        self.read_every(|shards| page(shards, prefix, cursor, limit, now))
    }
}

/// One page of the merged, ordered keys of `shards` (all of them, held at once).
pub(crate) fn page(
    shards: &[&Shard],
    prefix: &[u8],
    cursor: Option<&[u8]>,
    limit: usize,
    now: Millis,
) -> Page {
    if limit == 0 {
        return Page::default();
    }
    let start: Bound<&[u8]> = match cursor {
        Some(c) if c >= prefix => Bound::Excluded(c),
        _ => Bound::Included(prefix),
    };
    let mut iters: Vec<_> = shards
        .iter()
        .map(|g| {
            g.ordered_keys()
                .range::<[u8], _>((start, Bound::Unbounded))
                .take_while(|k| k.starts_with(prefix))
        })
        .collect();
    let mut heap = BinaryHeap::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        if let Some(k) = it.next() {
            heap.push(Reverse((k, i)));
        }
    }
    let mut page = Page::default();
    while let Some(Reverse((key, i))) = heap.pop() {
        if let Some(next) = iters[i].next() {
            heap.push(Reverse((next, i)));
        }
        let Some(entry) = shards[i].peek(key, now) else {
            continue;
        };
        if page.keys.len() == limit {
            // A further live key exists: the listing goes on after the last one returned.
            page.next_cursor = page.keys.last().map(|k| k.key.clone());
            break;
        }
        page.keys.push(entry.info(Bytes::copy_from_slice(key)));
    }
    page
}
