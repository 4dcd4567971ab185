//! Sets: a packed run of integers while every member is one and they are few (Redis's intset), a
//! hash table of members otherwise.

use super::pack::Pack;
use super::table::{Table, Whole};
use super::{Limits, Rng};
use crate::usage::size_class;

#[derive(Clone, Debug)]
pub enum Set {
    /// Members that are all integers in canonical form, in insertion order.
    Ints(Pack),
    /// Boxed, so a small set is not as large as a table's bookkeeping.
    Table(Box<Table<Whole>>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(Pack::default())
    }
}

/// Whether `member` is an integer written as Redis writes one (so it could live in an intset).
pub(crate) fn is_integer(member: &[u8]) -> bool {
    if member.is_empty() || member.len() > 20 {
        return false;
    }
    std::str::from_utf8(member)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|n| itoa::Buffer::new().format(n).as_bytes() == member)
}

impl Set {
    pub fn len(&self) -> usize {
        match self {
            Set::Ints(p) => p.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    pub(crate) fn footprint(&self) -> usize {
        match self {
            Set::Ints(p) => size_class(p.capacity()),
            Set::Table(t) => t.footprint(),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            Set::Ints(p) => p.iter().any(|m| m == member),
            Set::Table(t) => t.get(member).is_some(),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match self {
            Set::Ints(p) => Box::new(p.iter()),
            Set::Table(t) => Box::new(t.iter()),
        }
    }

    /// Adds `member`; whether it is new.
    pub fn add(&mut self, member: &[u8], limits: &Limits) -> bool {
        if let Set::Ints(p) = self {
            if p.iter().any(|m| m == member) {
                return false;
            }
            if is_integer(member) && p.len() < limits.set_intset_entries {
                p.push(member);
                return true;
            }
            self.convert();
        }
        match self {
            Set::Table(t) => t.insert(member.into()).is_none(),
            Set::Ints(_) => false,
        }
    }

    /// Removes `member`; whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(p) => match p.iter().position(|m| m == member) {
                Some(i) => {
                    p.remove(i, 1);
                    true
                }
                None => false,
            },
            Set::Table(t) => t.remove(member).is_some(),
        }
    }

    fn convert(&mut self) {
        if let Set::Ints(p) = self {
            let mut t = Table::with_capacity(p.len() + 1);
            for m in p.iter() {
                t.insert(m.into());
            }
            *self = Set::Table(Box::new(t));
        }
    }

    pub fn random(&self, rng: &mut Rng) -> Option<&[u8]> {
        match self {
            Set::Ints(p) => p.get(rng.below(p.len().max(1) as u64) as usize),
            Set::Table(t) => t.random(rng),
        }
    }

    pub fn scan(&self, cursor: u64, count: usize, visit: impl FnMut(&[u8])) -> u64 {
        match self {
            Set::Ints(p) => {
                p.iter().for_each(visit);
                0
            }
            Set::Table(t) => t.scan(cursor, count, visit),
        }
    }
}
