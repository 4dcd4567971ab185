//! Hashes: fields and values, packed while small, a hash table once large.

use super::pack::Pack;
use super::table::{Prefixed, Table, split_varint};
use super::{Limits, Rng};
use crate::usage::size_class;

#[derive(Clone, Debug)]
pub enum Hash {
    /// Field, value, field, value, ... in insertion order.
    Pack(Pack),
    /// Boxed, so a small hash (the usual one) is not as large as a table's bookkeeping.
    Table(Box<Table<Prefixed>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Pack(Pack::default())
    }
}

fn item(field: &[u8], value: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(field.len() + value.len() + 5);
    let mut n = field.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(field);
    out.extend_from_slice(value);
    out.into_boxed_slice()
}

fn split(item: &[u8]) -> (&[u8], &[u8]) {
    let (h, n) = split_varint(item);
    (&item[h..h + n], &item[h + n..])
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Pack(p) => p.len() / 2,
            Hash::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's name for the encoding.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Pack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    pub(crate) fn footprint(&self) -> usize {
        match self {
            Hash::Pack(p) => size_class(p.capacity()),
            Hash::Table(t) => t.footprint(),
        }
    }

    /// The position of `field` in a pack (counting fields).
    fn pack_position(p: &Pack, field: &[u8]) -> Option<usize> {
        p.iter().step_by(2).position(|f| f == field)
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Pack(p) => {
                let mut it = p.iter();
                while let Some(f) = it.next() {
                    let v = it.next();
                    if f == field {
                        return v;
                    }
                }
                None
            }
            Hash::Table(t) => t.get(field).map(|i| split(i).1),
        }
    }

    /// Fields and values, in the encoding's order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Pack(p) => {
                let mut it = p.iter();
                Box::new(std::iter::from_fn(move || Some((it.next()?, it.next()?))))
            }
            Hash::Table(t) => Box::new(t.iter().map(split)),
        }
    }

    /// Sets `field` to `value`; whether the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &Limits) -> bool {
        if let Hash::Pack(p) = self {
            if field.len() > limits.hash_value || value.len() > limits.hash_value {
                self.convert();
            } else if let Some(i) = Self::pack_position(p, field) {
                p.replace(2 * i + 1, value);
                return false;
            } else if p.len() / 2 >= limits.hash_entries {
                self.convert();
            } else {
                p.push(field);
                p.push(value);
                return true;
            }
        }
        match self {
            Hash::Table(t) => t.insert(item(field, value)).is_none(),
            Hash::Pack(_) => false,
        }
    }

    /// Removes `field`; whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Pack(p) => match Self::pack_position(p, field) {
                Some(i) => {
                    p.remove(2 * i, 2);
                    true
                }
                None => false,
            },
            Hash::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Moves a pack into a hash table.
    fn convert(&mut self) {
        if let Hash::Pack(p) = self {
            let mut t = Table::with_capacity(p.len() / 2 + 1);
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                t.insert(item(f, v));
            }
            *self = Hash::Table(Box::new(t));
        }
    }

    /// A field and its value chosen at random.
    pub fn random(&self, rng: &mut Rng) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Pack(_) => {
                let n = self.len();
                (n > 0).then(|| self.iter().nth(rng.below(n as u64) as usize))?
            }
            Hash::Table(t) => t.random(rng).map(split),
        }
    }

    /// HSCAN's step: visits fields and values from `cursor`; the next cursor, 0 when done.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Pack(_) => {
                self.iter().for_each(|(f, v)| visit(f, v));
                0
            }
            Hash::Table(t) => t.scan(cursor, count, |i| {
                let (f, v) = split(i);
                visit(f, v)
            }),
        }
    }
}
