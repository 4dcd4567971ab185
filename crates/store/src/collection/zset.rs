//! Sorted sets: members with scores, ordered by score then member bytes. Small ones are one
//! packed run in that order (Redis's listpack); large ones pair a hash table (member to score)
//! with [`Ranked`], a sorted sequence cut into chunks that finds a rank in O(log n + n/128).

use std::cmp::Ordering;

use super::pack::Pack;
use super::table::{Scored, Table};
use super::{Limits, Rng};
use crate::usage::size_class;

/// Redis's order of two elements: by score, then by member bytes.
pub fn order(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    a.0.partial_cmp(&b.0)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.1.cmp(b.1))
}

/// Chunks hold between `CHUNK / 2` (once split) and `CHUNK * 2` elements.
const CHUNK: usize = 128;

/// Elements in order, in chunks: insertion moves at most a chunk's elements, and a rank sums chunk
/// lengths instead of walking elements.
#[derive(Clone, Debug, Default)]
pub struct Ranked {
    chunks: Vec<Vec<(f64, Box<[u8]>)>>,
    len: usize,
    member_bytes: usize,
    /// Elements the chunks have room for, kept up to date so the footprint costs nothing.
    slots: usize,
}

impl Ranked {
    /// The chunk an element belongs in: the first whose last element is not below it.
    fn chunk_for(&self, score: f64, member: &[u8]) -> usize {
        let i = self.chunks.partition_point(|c| {
            c.last()
                .is_some_and(|(s, m)| order((*s, m), (score, member)) == Ordering::Less)
        });
        i.min(self.chunks.len().saturating_sub(1))
    }

    fn insert(&mut self, score: f64, member: &[u8]) {
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(CHUNK));
            self.slots += CHUNK;
        }
        let c = self.chunk_for(score, member);
        self.slots -= self.chunks[c].capacity();
        let chunk = &mut self.chunks[c];
        let at = chunk.partition_point(|(s, m)| order((*s, m), (score, member)) == Ordering::Less);
        chunk.insert(at, (score, member.into()));
        self.len += 1;
        self.member_bytes += size_class(member.len());
        if chunk.len() >= 2 * CHUNK {
            // The front half keeps exactly its elements: with rising scores (the usual way a
            // sorted set grows) nothing is inserted there again.
            let tail = chunk.split_off(CHUNK);
            chunk.shrink_to_fit();
            self.slots += tail.capacity();
            self.chunks.insert(c + 1, tail);
        }
        self.slots += self.chunks[c].capacity();
    }

    fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let c = self.chunk_for(score, member);
        let chunk = &mut self.chunks[c];
        let Ok(at) = chunk.binary_search_by(|(s, m)| order((*s, m), (score, member))) else {
            return false;
        };
        chunk.remove(at);
        self.len -= 1;
        self.member_bytes -= size_class(member.len());
        if chunk.is_empty() {
            self.slots -= chunk.capacity();
            self.chunks.remove(c);
        } else if chunk.len() < CHUNK / 4 && c + 1 < self.chunks.len() {
            // A nearly empty chunk joins the next one, so chunks stay reasonably full.
            let next = self.chunks.remove(c + 1);
            self.slots -= next.capacity() + self.chunks[c].capacity();
            self.chunks[c].extend(next);
            if self.chunks[c].len() >= 2 * CHUNK {
                let tail = self.chunks[c].split_off(CHUNK);
                self.slots += tail.capacity();
                self.chunks.insert(c + 1, tail);
            }
            self.slots += self.chunks[c].capacity();
        }
        true
    }

    /// How many elements sort before the first one for which `below` is false (`below` must be
    /// true for a prefix of the order).
    fn count_while(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        let c = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|(s, m)| below(*s, m)));
        let before: usize = self.chunks[..c].iter().map(Vec::len).sum();
        before
            + self
                .chunks
                .get(c)
                .map_or(0, |chunk| chunk.partition_point(|(s, m)| below(*s, m)))
    }

    /// The room the chunks have, counted afresh (for tests of the running count).
    #[cfg(test)]
    pub(crate) fn slots_counted(&self) -> (usize, usize) {
        (self.slots, self.chunks.iter().map(Vec::capacity).sum())
    }

    fn iter_from(&self, rank: usize) -> impl Iterator<Item = (&[u8], f64)> {
        let mut skip = rank;
        let mut first = 0;
        for chunk in &self.chunks {
            if skip < chunk.len() {
                break;
            }
            skip -= chunk.len();
            first += 1;
        }
        self.chunks[first.min(self.chunks.len())..]
            .iter()
            .flatten()
            .skip(skip)
            .map(|(s, m)| (&m[..], *s))
    }
}

#[derive(Clone, Debug)]
pub enum ZSet {
    /// Member, score (8 bytes), member, score, ... in order.
    Pack(Pack),
    /// Boxed, so a small sorted set is not as large as the large one's bookkeeping.
    Sorted(Box<Table<Scored>>, Box<Ranked>),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Pack(Pack::default())
    }
}

fn score_of(bytes: &[u8]) -> f64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    f64::from_le_bytes(word)
}

fn scored(score: f64, member: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(8 + member.len());
    out.extend_from_slice(&score.to_le_bytes());
    out.extend_from_slice(member);
    out.into_boxed_slice()
}

/// The pack's elements in order.
fn pack_iter(p: &Pack) -> impl Iterator<Item = (&[u8], f64)> {
    let mut it = p.iter();
    std::iter::from_fn(move || {
        let m = it.next()?;
        let s = it.next()?;
        Some((m, score_of(s)))
    })
}

impl ZSet {
    pub fn len(&self) -> usize {
        match self {
            ZSet::Pack(p) => p.len() / 2,
            ZSet::Sorted(t, _) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Pack(_) => "listpack",
            ZSet::Sorted(..) => "skiplist",
        }
    }

    pub(crate) fn footprint(&self) -> usize {
        match self {
            ZSet::Pack(p) => size_class(p.capacity()),
            ZSet::Sorted(t, r) => {
                t.footprint()
                    + r.member_bytes
                    + r.slots * size_of::<(f64, Box<[u8]>)>()
                    + r.chunks.capacity() * size_of::<Vec<u8>>()
            }
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Pack(p) => pack_iter(p).find(|(m, _)| *m == member).map(|(_, s)| s),
            ZSet::Sorted(t, _) => t.get(member).map(score_of),
        }
    }

    /// Elements in ascending order from rank `rank`.
    pub fn iter_from(&self, rank: usize) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        match self {
            ZSet::Pack(p) => Box::new(pack_iter(p).skip(rank)),
            ZSet::Sorted(_, r) => Box::new(r.iter_from(rank)),
        }
    }

    /// Elements in ascending order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        self.iter_from(0)
    }

    /// How many elements come before the first one for which `below` is false; `below` must hold
    /// for a prefix of the order (a score or member bound).
    pub fn count_while(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSet::Pack(p) => pack_iter(p).take_while(|(m, s)| below(*s, m)).count(),
            ZSet::Sorted(_, r) => r.count_while(below),
        }
    }

    /// The ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.count_while(|s, m| order((s, m), (score, member)) == Ordering::Less))
    }

    /// Sets `member`'s score; whether it is new.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &Limits) -> bool {
        // Redis keeps no negative zero.
        let score = if score == 0.0 { 0.0 } else { score };
        if let ZSet::Pack(p) = self {
            let present = pack_iter(p).position(|(m, _)| m == member);
            let count = p.len() / 2;
            if member.len() > limits.zset_value
                || (present.is_none() && count >= limits.zset_entries)
            {
                self.convert();
            } else {
                if let Some(i) = present {
                    p.remove(2 * i, 2);
                }
                let at = pack_iter(p)
                    .take_while(|(m, s)| order((*s, m), (score, member)) == Ordering::Less)
                    .count();
                p.insert(2 * at, &score.to_le_bytes());
                p.insert(2 * at, member);
                return present.is_none();
            }
        }
        match self {
            ZSet::Sorted(t, r) => {
                let old = t.insert(scored(score, member));
                if let Some(old) = &old {
                    r.remove(score_of(old), member);
                }
                r.insert(score, member);
                old.is_none()
            }
            ZSet::Pack(_) => false,
        }
    }

    /// Removes `member`; whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            ZSet::Pack(p) => {
                let found = pack_iter(p).position(|(m, _)| m == member);
                match found {
                    Some(i) => {
                        p.remove(2 * i, 2);
                        true
                    }
                    None => false,
                }
            }
            ZSet::Sorted(t, r) => match t.remove(member) {
                Some(old) => r.remove(score_of(&old), member),
                None => false,
            },
        }
    }

    fn convert(&mut self) {
        if let ZSet::Pack(p) = self {
            let mut t = Table::with_capacity(p.len() / 2 + 1);
            let mut r = Ranked::default();
            for (m, s) in pack_iter(p) {
                t.insert(scored(s, m));
                r.insert(s, m);
            }
            *self = ZSet::Sorted(Box::new(t), Box::new(r));
        }
    }

    /// Packs a sorted set that fits the limits again (after a store command built it).
    pub fn fit(&mut self, limits: &Limits) {
        if let ZSet::Sorted(..) = self
            && self.len() <= limits.zset_entries
            && self.iter().all(|(m, _)| m.len() <= limits.zset_value)
        {
            let mut p = Pack::default();
            for (m, s) in self.iter() {
                p.push(m);
                p.push(&s.to_le_bytes());
            }
            *self = ZSet::Pack(p);
        }
    }

    pub fn random(&self, rng: &mut Rng) -> Option<(&[u8], f64)> {
        match self {
            ZSet::Pack(_) => {
                let n = self.len();
                (n > 0).then(|| self.iter().nth(rng.below(n as u64) as usize))?
            }
            ZSet::Sorted(t, _) => t.random(rng).map(|i| (&i[8..], score_of(i))),
        }
    }

    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSet::Pack(_) => {
                self.iter().for_each(|(m, s)| visit(m, s));
                0
            }
            ZSet::Sorted(t, _) => t.scan(cursor, count, |i| visit(&i[8..], score_of(i))),
        }
    }
}
