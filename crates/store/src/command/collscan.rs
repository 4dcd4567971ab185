use bytes::Bytes;

use super::Definition;
use super::coll::{bulk, cursor, scan_options};
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Collection, format_double};
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::pattern::glob_match;
use crate::reply::Reply;

/// `HSCAN`, `SSCAN`, `ZSCAN key cursor [MATCH pattern] [COUNT count]`: a step of a walk over a
/// collection's elements. A compact collection is returned whole with cursor 0, as Redis does; a
/// large one a few buckets at a time. Every element held throughout a walk is returned at least
/// once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollScan {
    pub key: Bytes,
    pub kind: Kind,
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
}

impl CollScan {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let entry = shard.live(&self.key, now);
            if entry.is_some_and(|e| e.kind != self.kind) {
                return CommandError::WrongType.into();
            }
            let mut out = Vec::new();
            let wanted = |b: &[u8]| self.pattern.as_ref().is_none_or(|p| glob_match(p, b, false));
            let next = match entry.and_then(|e| e.collection()).map(|c| &**c) {
                Some(Collection::Hash(h)) => h.scan(self.cursor, self.count, |f, v| {
                    if wanted(f) {
                        out.push(bulk(f));
                        out.push(bulk(v));
                    }
                }),
                Some(Collection::Set(s)) => s.scan(self.cursor, self.count, |m| {
                    if wanted(m) {
                        out.push(bulk(m));
                    }
                }),
                Some(Collection::ZSet(z)) => z.scan(self.cursor, self.count, |m, s| {
                    if wanted(m) {
                        out.push(bulk(m));
                        out.push(Reply::Bulk(Bytes::from(format_double(s))));
                    }
                }),
                _ => 0,
            };
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(next.to_string())),
                Reply::Array(out),
            ])
        })
    }
}

const R: &[Flag] = &[Flag::Readonly];

impl Definition for CollScan {
    const SPECS: &'static [Spec] = &[
        Spec::data("hscan", -3, R, &[Category::Read, Category::Hash, Category::Slow], KeySpec::FIRST, Access::READ, "hash", "Incrementally iterate hash fields and associated values", "HSCAN h 0 COUNT 10"),
        Spec::data("sscan", -3, R, &[Category::Read, Category::Set, Category::Slow], KeySpec::FIRST, Access::READ, "set", "Incrementally iterate Set elements", "SSCAN s 0 MATCH a*"),
        Spec::data("zscan", -3, R, &[Category::Read, Category::SortedSet, Category::Slow], KeySpec::FIRST, Access::READ, "sorted-set", "Incrementally iterate sorted sets elements and associated scores", "ZSCAN z 0"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let kind = match a.cmd {
            "hscan" => Kind::Hash,
            "sscan" => Kind::Set,
            _ => Kind::ZSet,
        };
        let o = scan_options(&v[2..], false)?;
        Ok(Self {
            key: v[0].clone(),
            kind,
            cursor: cursor(&v[1])?,
            pattern: o.pattern,
            count: o.count,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
