use bytes::Bytes;

use super::append::MAX_VALUE_LEN;
use super::parse::{Args, int, is};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`: the longest common subsequence
/// of two strings (a missing key is the empty string), its length, or where it matches, as
/// Redis 7 answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lcs {
    pub a: Bytes,
    pub b: Bytes,
    pub len: bool,
    pub idx: bool,
    pub min_match_len: u64,
    pub with_match_len: bool,
}

impl Lcs {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys = [&self.a[..], &self.b[..]];
        let strings = ks.read_keys(&keys, |locked| {
            let mut out = Vec::with_capacity(2);
            for key in keys {
                match locked.shard(key).and_then(|s| s.live(key, now)) {
                    None => out.push(Bytes::new()),
                    Some(entry) => match entry.string() {
                        Ok(b) => out.push(Bytes::copy_from_slice(b)),
                        Err(_) => {
                            return Err(CommandError::Invalid(
                                "The specified keys must contain string values",
                            ));
                        }
                    },
                }
            }
            Ok(out)
        });
        match strings {
            Ok(s) => self.answer(&s[0], &s[1]),
            Err(e) => e.into(),
        }
    }

    fn answer(&self, a: &[u8], b: &[u8]) -> Reply {
        // The table takes (|a|+1)(|b|+1) counters: refused before it is allocated when too big.
        let cells = (a.len() as u128 + 1) * (b.len() as u128 + 1);
        if cells * 4 > MAX_VALUE_LEN as u128 {
            return CommandError::Invalid(
                "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            )
            .into();
        }
        let width = b.len() + 1;
        let mut dp = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                dp[i * width + j] = if a[i - 1] == b[j - 1] {
                    dp[(i - 1) * width + j - 1] + 1
                } else {
                    dp[(i - 1) * width + j].max(dp[i * width + j - 1])
                };
            }
        }
        let total = dp[a.len() * width + b.len()] as usize;
        if self.len {
            return Reply::Integer(total as i64);
        }
        // Walk back from the end, collecting the subsequence and its matching ranges.
        let mut result = vec![0u8; total];
        let mut matches = Vec::new();
        let (mut i, mut j, mut k) = (a.len(), b.len(), total);
        let none = a.len();
        let (mut a_start, mut a_end, mut b_start, mut b_end) = (none, 0, 0, 0);
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                result[k - 1] = a[i - 1];
                if a_start == none {
                    (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
                } else if a_start == i && b_start == j {
                    a_start -= 1;
                    b_start -= 1;
                } else {
                    emit = true;
                }
                if a_start == 0 || b_start == 0 {
                    emit = true;
                }
                k -= 1;
                i -= 1;
                j -= 1;
            } else {
                if dp[(i - 1) * width + j] > dp[i * width + j - 1] {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if a_start != none {
                    emit = true;
                }
            }
            if emit {
                let match_len = (a_end - a_start + 1) as u64;
                if self.min_match_len == 0 || match_len >= self.min_match_len {
                    let range = |s: usize, e: usize| {
                        Reply::Array(vec![Reply::Integer(s as i64), Reply::Integer(e as i64)])
                    };
                    let mut m = vec![range(a_start, a_end), range(b_start, b_end)];
                    if self.with_match_len {
                        m.push(Reply::Integer(match_len as i64));
                    }
                    matches.push(Reply::Array(m));
                }
                a_start = none;
            }
        }
        if !self.idx {
            return Reply::Bulk(Bytes::from(result));
        }
        Reply::Map(vec![
            (Reply::Bulk(Bytes::from_static(b"matches")), Reply::Array(matches)),
            (Reply::Bulk(Bytes::from_static(b"len")), Reply::Integer(total as i64)),
        ])
    }
}

impl Definition for Lcs {
    const SPECS: &'static [Spec] = &[Spec {
        name: "lcs",
        arity: -3,
        flags: &[Flag::Readonly],
        categories: &[Category::Read, Category::String, Category::Slow],
        keys: KeySpec::Range {
            first: 1,
            last: 2,
            step: 1,
        },
        access: KeyAccess::Each(Access::READ),
        group: "string",
        summary: "Find longest common substring",
        example: "LCS a b IDX",
        ..Spec::BLANK
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let mut lcs = Lcs {
            a: v[0].clone(),
            b: v[1].clone(),
            len: false,
            idx: false,
            min_match_len: 0,
            with_match_len: false,
        };
        let mut i = 2;
        while i < v.len() {
            if is(&v[i], "LEN") {
                lcs.len = true;
            } else if is(&v[i], "IDX") {
                lcs.idx = true;
            } else if is(&v[i], "WITHMATCHLEN") {
                lcs.with_match_len = true;
            } else if is(&v[i], "MINMATCHLEN") && i + 1 < v.len() {
                lcs.min_match_len = int(&v[i + 1])?.max(0) as u64;
                i += 1;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        if lcs.len && lcs.idx {
            return Err(CommandError::Invalid(
                "If you want both the length and indexes, please just use IDX.",
            ));
        }
        Ok(lcs)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.a[..], &self.b[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcs(idx: bool, min: u64) -> Lcs {
        Lcs {
            a: Bytes::new(),
            b: Bytes::new(),
            len: false,
            idx,
            min_match_len: min,
            with_match_len: true,
        }
    }

    #[test]
    fn finds_the_subsequence_and_its_ranges_as_redis_documents() {
        assert_eq!(
            lcs(false, 0).answer(b"ohmytext", b"mynewtext"),
            Reply::Bulk(Bytes::from_static(b"mytext"))
        );
        let Reply::Map(pairs) = lcs(true, 4).answer(b"ohmytext", b"mynewtext") else {
            panic!("IDX answers a map");
        };
        let int = Reply::Integer;
        let range = |s, e| Reply::Array(vec![int(s), int(e)]);
        assert_eq!(
            pairs[0].1,
            Reply::Array(vec![Reply::Array(vec![range(4, 7), range(5, 8), int(4)])])
        );
        assert_eq!(pairs[1].1, int(6));
    }
}
