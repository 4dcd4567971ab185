//! The compact encoding of a small collection: every item in one buffer, each as a varint length
//! followed by its bytes, in the spirit of Redis's listpack. Every operation walks the buffer, so
//! it is meant for a few hundred items at most; a collection outgrowing its thresholds moves to a
//! real structure (see [`super::Limits`]).

/// Items in one allocation of exactly their size, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pack {
    buf: Box<[u8]>,
    len: u32,
}

fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The item starting at `at` in `buf`: (header length, item length).
fn header(buf: &[u8], at: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut i = at;
    loop {
        let byte = buf[i];
        i += 1;
        n |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return (i - at, n);
        }
        shift += 7;
    }
}

impl Pack {
    /// Items held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it holds no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the buffer (its encoded size).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the buffer takes (it is always exactly the encoded size).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Changes the buffer as a vector, then gives it back exactly sized.
    fn with_vec(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut v = std::mem::take(&mut self.buf).into_vec();
        f(&mut v);
        self.buf = v.into_boxed_slice();
    }

    /// The items in order.
    pub fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            at: 0,
        }
    }

    /// The byte offset of item `index` (the buffer's end for `index == len`).
    fn offset(&self, index: usize) -> usize {
        let mut at = 0;
        for _ in 0..index {
            let (h, n) = header(&self.buf, at);
            at += h + n;
        }
        at
    }

    /// Item `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        (index < self.len()).then(|| {
            let at = self.offset(index);
            let (h, n) = header(&self.buf, at);
            &self.buf[at + h..at + h + n]
        })
    }

    /// Inserts `item` so that it becomes item `index` (at most `len`).
    pub fn insert(&mut self, index: usize, item: &[u8]) {
        let at = self.offset(index.min(self.len()));
        let mut encoded = Vec::with_capacity(varint_len(item.len()) + item.len());
        put_varint(&mut encoded, item.len());
        encoded.extend_from_slice(item);
        self.with_vec(|v| {
            v.reserve_exact(encoded.len());
            v.splice(at..at, encoded);
        });
        self.len += 1;
    }

    /// Appends `item`.
    pub fn push(&mut self, item: &[u8]) {
        self.with_vec(|v| {
            v.reserve_exact(varint_len(item.len()) + item.len());
            put_varint(v, item.len());
            v.extend_from_slice(item);
        });
        self.len += 1;
    }

    /// Removes `count` items starting at item `index`.
    pub fn remove(&mut self, index: usize, count: usize) {
        let count = count.min(self.len().saturating_sub(index));
        if count == 0 {
            return;
        }
        let start = self.offset(index);
        let mut end = start;
        for _ in 0..count {
            let (h, n) = header(&self.buf, end);
            end += h + n;
        }
        self.with_vec(|v| {
            v.drain(start..end);
        });
        self.len -= count as u32;
    }

    /// Replaces item `index` with `item`.
    pub fn replace(&mut self, index: usize, item: &[u8]) {
        if index >= self.len() {
            return;
        }
        let start = self.offset(index);
        let (h, n) = header(&self.buf, start);
        let mut encoded = Vec::with_capacity(varint_len(item.len()) + item.len());
        put_varint(&mut encoded, item.len());
        encoded.extend_from_slice(item);
        self.with_vec(|v| {
            v.splice(start..start + h + n, encoded);
        });
    }

    /// Keeps only `len` items from item `start`.
    pub fn keep(&mut self, start: usize, len: usize) {
        let tail = self.len().saturating_sub(start.saturating_add(len));
        self.remove(start.saturating_add(len).min(self.len()), tail);
        self.remove(0, start.min(self.len()));
    }
}

/// The items of a [`Pack`], in order.
#[derive(Clone, Debug)]
pub struct PackIter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.buf.len() {
            return None;
        }
        let (h, n) = header(self.buf, self.at);
        let item = &self.buf[self.at + h..self.at + h + n];
        self.at += h + n;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(p: &Pack) -> Vec<Vec<u8>> {
        p.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn inserts_removes_and_replaces_in_place() {
        let mut p = Pack::default();
        p.push(b"b");
        p.insert(0, b"a");
        p.push(&[7u8; 300]);
        p.insert(2, b"");
        assert_eq!(p.len(), 4);
        assert_eq!(p.get(3), Some(&[7u8; 300][..]));
        assert_eq!(p.get(2), Some(&b""[..]));
        assert_eq!(p.get(4), None);
        p.replace(0, b"alpha");
        p.remove(1, 2);
        assert_eq!(items(&p), vec![b"alpha".to_vec(), vec![7u8; 300]]);
        p.keep(1, 5);
        assert_eq!(items(&p), vec![vec![7u8; 300]]);
        p.remove(0, 9);
        assert!(p.is_empty() && p.bytes() == 0);
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
    }
}
