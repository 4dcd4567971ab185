//! What a `kvs bench` connection asks for: the operation, the key and the value, drawn from a
//! small per-connection random generator so no state is shared on the hot path.

/// A GET (read) or a SET/PUT/create (write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    Set,
}

/// SplitMix64: fast, statistically sound for load generation, seeded per connection. Not for
/// anything that must be unpredictable.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` for `n > 0` (multiply-shift; the bias is below `n / 2^64`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next operation: a read with probability `read_ratio`.
    pub fn op(&mut self, read_ratio: f64) -> Op {
        if self.unit() < read_ratio {
            Op::Get
        } else {
            Op::Set
        }
    }
}

/// Keys are the prefix followed by the index in decimal, zero-padded to at least 12 digits
/// (`bench:000000012345`), so every key of a run has the same length.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Vec<u8>,
    width: usize,
}

impl Keys {
    /// Keys `0..keyspace` under `prefix` (already in the form the protocol sends).
    pub fn new(prefix: &[u8], keyspace: u64) -> Self {
        let digits = keyspace.saturating_sub(1).checked_ilog10().unwrap_or(0) as usize + 1;
        Keys {
            prefix: prefix.to_vec(),
            width: digits.max(12),
        }
    }

    /// Writes key `index` into `out`, replacing what it held.
    pub fn write(&self, index: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.prefix);
        let start = out.len();
        out.resize(start + self.width, b'0');
        let mut rest = index;
        for slot in out[start..].iter_mut().rev() {
            if rest == 0 {
                break;
            }
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    }
}

/// A value of `size` bytes from `[a-z0-9]`: safe on every protocol (no `|`, no line breaks).
pub fn value(rng: &mut Rng, size: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..size)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_and_widen_for_large_keyspaces() {
        let mut out = Vec::new();
        Keys::new(b"bench:", 100_000).write(12_345, &mut out);
        assert_eq!(out, b"bench:000000012345");
        Keys::new(b"k", 1).write(0, &mut out);
        assert_eq!(out, b"k000000000000");
        Keys::new(b"", 10_000_000_000_000).write(9_999_999_999_999, &mut out);
        assert_eq!(out, b"9999999999999");
    }

    #[test]
    fn draws_stay_in_range_and_follow_the_ratio() {
        let mut rng = Rng::new(7);
        let mut reads = 0;
        for _ in 0..10_000 {
            assert!(rng.below(3) < 3);
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            if rng.op(0.25) == Op::Get {
                reads += 1;
            }
        }
        assert!((2_000..3_000).contains(&reads), "{reads} reads of 10000");
        assert!((0..100).all(|_| rng.op(0.0) == Op::Set && rng.op(1.0) == Op::Get));
    }

    #[test]
    fn values_are_lowercase_alphanumeric() {
        let v = value(&mut Rng::new(1), 1000);
        assert_eq!(v.len(), 1000);
        assert!(
            v.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
