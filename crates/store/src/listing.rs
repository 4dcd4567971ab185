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
    /// With a delimiter: the "folders" directly under the prefix (each ending with the
    /// delimiter), each once, in order among the keys.
    pub prefixes: Vec<Bytes>,
    /// Pass this as the next call's cursor; `None` when the listing is complete.
    pub next_cursor: Option<Bytes>,
}

impl Store {
    /// Up to `limit` live keys that start with `prefix` and sort after `cursor`, in order.
    pub fn list(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize, now: Millis) -> Page {
        self.read_every(|shards| page(shards, prefix, cursor, limit, now))
    }

    /// [`Store::list`] with keys under `delimiter` rolled up into folders (see
    /// [`page_delimited`]).
    pub fn list_delimited(
        &self,
        prefix: &[u8],
        delimiter: &[u8],
        cursor: Option<&[u8]>,
        limit: usize,
        now: Millis,
    ) -> Page {
        self.read_every(|shards| page_delimited(shards, prefix, delimiter, cursor, limit, now))
    }
}

/// The keys of every shard that start with `prefix`, from `start` on, merged into one ordered
/// sequence, each with the index of its shard.
fn merged<'a>(
    shards: &'a [&'a Shard],
    prefix: &'a [u8],
    start: Bound<&'a [u8]>,
) -> impl Iterator<Item = (&'a [u8], usize)> + 'a {
    let mut iters: Vec<_> = shards
        .iter()
        .map(|g| {
            g.ordered_keys()
                .range::<[u8], _>((start, Bound::Unbounded))
                .take_while(move |k| k.starts_with(prefix))
        })
        .collect();
    let mut heap = BinaryHeap::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        if let Some(k) = it.next() {
            heap.push(Reverse((k, i)));
        }
    }
    std::iter::from_fn(move || {
        let Reverse((key, i)) = heap.pop()?;
        if let Some(next) = iters[i].next() {
            heap.push(Reverse((next, i)));
        }
        Some((&key[..], i))
    })
}

/// The first key after every key that starts with `prefix`, if there is one: `prefix` with its
/// trailing 0xff bytes dropped and its last byte raised by one.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < 0xff {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// One page of the keys that start with `prefix`, as [`page`] gives them, except that keys with
/// `delimiter` after the prefix are rolled up into one entry of [`Page::prefixes`] per folder
/// (the key up to and including the delimiter), as S3's and Consul's listings do. A folder costs
/// a new seek of each shard, not a walk over its keys.
pub(crate) fn page_delimited(
    shards: &[&Shard],
    prefix: &[u8],
    delimiter: &[u8],
    cursor: Option<&[u8]>,
    limit: usize,
    now: Millis,
) -> Page {
    let folder_of = |key: &[u8]| -> Option<usize> {
        let rest = key.get(prefix.len()..)?;
        rest.windows(delimiter.len())
            .position(|w| w == delimiter)
            .map(|j| prefix.len() + j + delimiter.len())
    };
    let mut page = Page::default();
    if limit == 0 || delimiter.is_empty() {
        return page;
    }
    // Resuming after a folder starts after everything in it.
    let mut start: (bool, Vec<u8>) = match cursor {
        Some(c) if c >= prefix => match folder_of(c) {
            Some(end) => match successor(&c[..end]) {
                Some(next) => (true, next),
                None => return page,
            },
            None => (false, c.to_vec()),
        },
        _ => (true, prefix.to_vec()),
    };
    let mut last: Option<Bytes> = None;
    loop {
        let bound: Bound<&[u8]> = if start.0 {
            Bound::Included(&start.1)
        } else {
            Bound::Excluded(&start.1)
        };
        let mut restart = None;
        for (key, i) in merged(shards, prefix, bound) {
            let Some(entry) = shards[i].peek(key, now) else {
                continue;
            };
            if page.keys.len() + page.prefixes.len() == limit {
                page.next_cursor = last;
                return page;
            }
            match folder_of(key) {
                Some(end) => {
                    let folder = Bytes::copy_from_slice(&key[..end]);
                    page.prefixes.push(folder.clone());
                    last = Some(folder);
                    match successor(&key[..end]) {
                        Some(next) => restart = Some(next),
                        None => return page,
                    }
                    break;
                }
                None => {
                    let key = Bytes::copy_from_slice(key);
                    last = Some(key.clone());
                    page.keys.push(entry.info(key));
                }
            }
        }
        match restart {
            Some(next) => start = (true, next),
            None => return page,
        }
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
    let mut page = Page::default();
    for (key, i) in merged(shards, prefix, start) {
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
