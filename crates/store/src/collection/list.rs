//! Lists: packed while short, a deque of boxed elements once long; a long list that shrinks to
//! half the limit is packed again.

use std::collections::VecDeque;

use super::Limits;
use super::pack::Pack;
use crate::usage::size_class;

#[derive(Clone, Debug)]
pub enum List {
    Pack(Pack),
    /// Boxed, so a short list is not as large as a deque's bookkeeping; with the bytes its
    /// items take.
    Deque(Box<VecDeque<Box<[u8]>>>, usize),
}

impl Default for List {
    fn default() -> Self {
        List::Pack(Pack::default())
    }
}

impl List {
    pub fn len(&self) -> usize {
        match self {
            List::Pack(p) => p.len(),
            List::Deque(d, _) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis 7.0 names every list `quicklist`, however it is held.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    pub(crate) fn footprint(&self) -> usize {
        match self {
            List::Pack(p) => size_class(p.capacity()),
            List::Deque(d, bytes) => d.capacity() * size_of::<Box<[u8]>>() + bytes,
        }
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        match self {
            List::Pack(p) => p.get(index),
            List::Deque(d, _) => d.get(index).map(|b| &b[..]),
        }
    }

    pub fn iter(&self) -> Box<dyn DoubleEndedIterator<Item = &[u8]> + '_> {
        match self {
            List::Pack(p) => {
                // A pack walks forwards only; a reversed walk collects first (packs are small).
                let items: Vec<&[u8]> = p.iter().collect();
                Box::new(items.into_iter())
            }
            List::Deque(d, _) => Box::new(d.iter().map(|b| &b[..])),
        }
    }

    /// Items from `start`, at most `len` of them.
    pub fn range(&self, start: usize, len: usize) -> Vec<&[u8]> {
        match self {
            List::Pack(p) => p.iter().skip(start).take(len).collect(),
            List::Deque(d, _) => d
                .range(start.min(d.len())..)
                .take(len)
                .map(|b| &b[..])
                .collect(),
        }
    }

    fn fits(&self, extra_items: usize, extra_bytes: usize, limits: &Limits) -> bool {
        match self {
            List::Pack(p) => limits.list_fits(p.len() + extra_items, p.bytes() + extra_bytes),
            List::Deque(..) => false,
        }
    }

    /// Inserts `item` to become item `index` (at most `len`).
    pub fn insert(&mut self, index: usize, item: &[u8], limits: &Limits) {
        if !self.fits(1, item.len() + 2, limits) {
            self.unpack();
        }
        match self {
            List::Pack(p) => p.insert(index, item),
            List::Deque(d, bytes) => {
                *bytes += size_class(item.len());
                d.insert(index.min(d.len()), item.into());
            }
        }
    }

    pub fn push_back(&mut self, item: &[u8], limits: &Limits) {
        if !self.fits(1, item.len() + 2, limits) {
            self.unpack();
        }
        match self {
            List::Pack(p) => p.push(item),
            List::Deque(d, bytes) => {
                *bytes += size_class(item.len());
                d.push_back(item.into());
            }
        }
    }

    /// Removes `count` items from `index`.
    pub fn remove(&mut self, index: usize, count: usize, limits: &Limits) {
        match self {
            List::Pack(p) => p.remove(index, count),
            List::Deque(d, bytes) => {
                let end = index.saturating_add(count).min(d.len());
                for b in d.drain(index.min(end)..end) {
                    *bytes -= size_class(b.len());
                }
            }
        }
        self.repack(limits);
    }

    pub fn replace(&mut self, index: usize, item: &[u8], limits: &Limits) {
        if !self.fits(0, item.len() + 2, limits) {
            self.unpack();
        }
        match self {
            List::Pack(p) => p.replace(index, item),
            List::Deque(d, bytes) => {
                if let Some(slot) = d.get_mut(index) {
                    *bytes += size_class(item.len());
                    *bytes -= size_class(slot.len());
                    *slot = item.into();
                }
            }
        }
    }

    /// Keeps `len` items from `start`.
    pub fn keep(&mut self, start: usize, len: usize, limits: &Limits) {
        match self {
            List::Pack(p) => p.keep(start, len),
            List::Deque(d, bytes) => {
                let start = start.min(d.len());
                let end = start.saturating_add(len).min(d.len());
                for b in d.drain(end..) {
                    *bytes -= size_class(b.len());
                }
                for b in d.drain(..start) {
                    *bytes -= size_class(b.len());
                }
            }
        }
        self.repack(limits);
    }

    fn unpack(&mut self) {
        if let List::Pack(p) = self {
            let d: VecDeque<Box<[u8]>> = p.iter().map(Box::from).collect();
            let bytes = d.iter().map(|b| size_class(b.len())).sum();
            *self = List::Deque(Box::new(d), bytes);
        }
    }

    /// Packs a long list again once it fits in half the limit (so a list near the limit does not
    /// convert back and forth).
    fn repack(&mut self, limits: &Limits) {
        if let List::Deque(d, _) = self {
            // Counting the bytes walks the list: only once the item count alone would fit.
            if !limits.list_fits(d.len() * 2, 0) {
                if d.capacity() > 64 && d.len() * 4 < d.capacity() {
                    d.shrink_to_fit();
                }
                return;
            }
            let raw: usize = d.iter().map(|b| b.len() + 2).sum();
            if limits.list_fits(d.len() * 2, raw * 2) {
                let mut p = Pack::default();
                for b in d.iter() {
                    p.push(b);
                }
                *self = List::Pack(p);
            } else if d.capacity() > 64 && d.len() * 4 < d.capacity() {
                d.shrink_to_fit();
            }
        }
    }
}
