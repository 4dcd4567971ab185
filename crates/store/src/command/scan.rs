use bytes::Bytes;

use super::coll::{cursor as parse_cursor, scan_options};
use super::parse::Args;
use crate::access::Keyspace;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::pattern::glob_match;
use crate::reply::Reply;
use crate::shard::Walk;
use super::spec::{Category, Flag, KeySpec, Spec};
use super::Definition;

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: the keyspace a piece at a time, with
/// a stateless cursor. The cursor names a shard, a bucket of its hash table and the table's layout
/// epoch. Inserting or removing other keys never moves a key to another bucket, so walking buckets
/// in order returns every key present for the whole iteration; when the table has grown or
/// reorganised since the cursor was issued (the epoch differs) the shard is walked again from its
/// first bucket, which may return keys twice (as Redis allows) but never skips one. `COUNT` is how
/// many keys to examine (default 10); MATCH and TYPE filter those. Each call holds one shard's
/// read lock at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    /// Only keys of this type, as `TYPE` names it.
    pub kind: Option<Bytes>,
}

/// Cursor layout: shard + 1 in the top 8 bits, the low 16 bits of the layout epoch, then the bucket.
const SHARD_SHIFT: u32 = 56;
const EPOCH_SHIFT: u32 = 40;
const BUCKET_MASK: u64 = (1 << EPOCH_SHIFT) - 1;
const EPOCH_MASK: u64 = 0xffff;

fn cursor(shard: usize, epoch: u64, bucket: usize) -> u64 {
    ((shard as u64 + 1) << SHARD_SHIFT)
        | ((epoch & EPOCH_MASK) << EPOCH_SHIFT)
        | (bucket as u64 & BUCKET_MASK)
}

impl Scan {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        let o = scan_options(&v[1..], true)?;
        Ok(Scan {
            cursor: parse_cursor(&v[0])?,
            pattern: o.pattern,
            count: o.count,
            kind: o.kind,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let shards = ks.store().shard_count();
        // (shard, epoch the bucket belongs to, bucket); cursor 0 starts at the first shard.
        let (first, epoch, mut from) = match self.cursor {
            0 => (0, None, 0),
            c => (
                ((c >> SHARD_SHIFT) as usize).saturating_sub(1),
                Some((c >> EPOCH_SHIFT) & EPOCH_MASK),
                (c & BUCKET_MASK) as usize,
            ),
        };
        let wanted = |key: &[u8], kind: Kind| {
            self.pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, key, false))
                && self
                    .kind
                    .as_ref()
                    .is_none_or(|t| t.eq_ignore_ascii_case(kind.name().as_bytes()))
        };
        let mut keys = Vec::new();
        let mut examined = 0;
        let mut next = 0;
        for index in first..shards {
            let stop = ks.read_index(index, |shard| {
                let current = shard.layout_epoch();
                if index == first && epoch.is_some_and(|e| e != current & EPOCH_MASK) {
                    from = 0;
                }
                let walk = shard.scan(from, |key, entry| {
                    examined += 1;
                    if entry.is_live(now) && wanted(key, entry.kind) {
                        keys.push(Reply::Bulk(Bytes::copy_from_slice(key)));
                    }
                    examined < self.count
                });
                match walk {
                    Walk::Next(bucket) => Some(cursor(index, current, bucket)),
                    Walk::Done => None,
                }
            });
            if let Some(cursor) = stop {
                next = cursor;
                break;
            }
            from = 0;
        }
        Reply::Array(vec![
            Reply::Bulk(Bytes::from(next.to_string())),
            Reply::Array(keys),
        ])
    }
}

impl Definition for Scan {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "scan",
            arity: -2,
            flags: &[Flag::Readonly],
            categories: &[Category::Keyspace, Category::Read, Category::Slow],
            keys: KeySpec::None,
            group: "generic",
            summary: "Incrementally iterate the keys space",
            example: "SCAN 0",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    /// Runs a whole SCAN iteration; `between` is called after every call.
    fn scan_all(
        s: &Store,
        count: usize,
        pattern: Option<&str>,
        mut between: impl FnMut(usize),
    ) -> Vec<Bytes> {
        let mut cursor = 0;
        let mut out = Vec::new();
        let mut calls = 0;
        loop {
            let scan = Scan {
                cursor,
                pattern: pattern.map(|p| Bytes::copy_from_slice(p.as_bytes())),
                count,
                kind: None,
            };
            let Reply::Array(parts) = scan.apply(s, 0) else {
                panic!("an array")
            };
            let [Reply::Bulk(c), Reply::Array(keys)] = parts.as_slice() else {
                panic!("cursor and keys")
            };
            out.extend(keys.iter().map(|k| match k {
                Reply::Bulk(b) => b.clone(),
                other => panic!("{other:?}"),
            }));
            cursor = std::str::from_utf8(c)
                .expect("utf8")
                .parse()
                .expect("number");
            calls += 1;
            between(calls);
            if cursor == 0 {
                return out;
            }
            assert!(calls < 100_000, "the iteration does not end");
        }
    }

    #[test]
    fn returns_every_key_once_when_nothing_changes() {
        let s = Store::with_shards(8);
        for i in 0..1000 {
            Set::new(format!("key:{i:06}"), "v").apply(&s, 0);
        }
        let keys = scan_all(&s, 7, None, |_| {});
        assert_eq!(keys.len(), 1000);
        assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 1000);
        let matched = scan_all(&s, 50, Some("key:0000*"), |_| {});
        assert_eq!(matched.len(), 100);
    }

    #[test]
    fn keys_present_throughout_are_returned_while_others_come_and_go() {
        let s = Store::with_shards(8);
        for i in 0..500 {
            Set::new(format!("stable:{i}"), "v").apply(&s, 0);
        }
        let mut churn = 0;
        let keys = scan_all(&s, 5, None, |call| {
            // Between calls, add and remove other keys.
            for _ in 0..20 {
                churn += 1;
                Set::new(format!("churn:{churn}"), "v").apply(&s, 0);
                if churn % 3 == 0 {
                    crate::Delete::new(format!("churn:{}", churn - 2)).apply(&s, 0);
                }
            }
            let _ = call;
        });
        let seen: BTreeSet<_> = keys.iter().filter(|k| k.starts_with(b"stable:")).collect();
        assert_eq!(seen.len(), 500, "a stable key was skipped");
    }

    #[test]
    fn bad_arguments() {
        use crate::Command;
        let run = |w: &[&str]| {
            Command::from_argv(
                &w.iter()
                    .map(|x| Bytes::copy_from_slice(x.as_bytes()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(run(&["SCAN", "x"]), Err(CommandError::InvalidCursor));
        assert_eq!(run(&["SCAN", "0", "COUNT", "0"]), Err(CommandError::Syntax));
        assert_eq!(run(&["SCAN", "0", "MATCH"]), Err(CommandError::Syntax));
        assert!(run(&["SCAN", "0", "MATCH", "a*", "COUNT", "5", "TYPE", "string"]).is_ok());
    }
}
