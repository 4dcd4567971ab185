use bytes::Bytes;

use super::parse::{Args, int};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `GETRANGE key start end`: the bytes from `start` to `end` inclusive; negative offsets count
/// from the end. Out-of-range offsets are clamped; an empty range is the empty string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetRange {
    pub key: Bytes,
    pub start: i64,
    pub end: i64,
}

impl GetRange {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        Ok(Self {
            key: v[0].clone(),
            start: int(&v[1])?,
            end: int(&v[2])?,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let value = match ks.read(&self.key, |shard| {
            shard
                .live(&self.key, now)
                .map(|e| e.string().map(|_| e.value_bytes()))
        }) {
            Some(Ok(v)) => v,
            Some(Err(e)) => return e.into(),
            None => return Reply::Bulk(Bytes::new()),
        };
        let len = value.len() as i64;
        if len == 0 {
            return Reply::Bulk(Bytes::new());
        }
        let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i };
        let (start, end) = (clamp(self.start), clamp(self.end).min(len - 1));
        if self.start < 0 && self.end < 0 && self.start > self.end || start > end {
            return Reply::Bulk(Bytes::new());
        }
        Reply::Bulk(value.slice(start as usize..=end as usize))
    }
}

impl Definition for GetRange {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "getrange",
            arity: 4,
            flags: &[Flag::Readonly],
            categories: &[Category::Read, Category::String, Category::Slow],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "string",
            summary: "Get a substring of the string stored at a key",
            example: "GETRANGE k 0 -1",
            ..Spec::BLANK
        },
        Spec {
            name: "substr",
            arity: 4,
            flags: &[Flag::Readonly],
            categories: &[Category::Read, Category::String, Category::Slow],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ),
            group: "string",
            summary: "Get a substring of the string stored at a key",
            example: "SUBSTR k 0 -1",
            ..Spec::BLANK
        },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Self::parse(a)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    #[test]
    fn ranges_like_redis() {
        let s = Store::new();
        Set::new("k", "This is a string").apply(&s, 0);
        let r = |start, end| {
            GetRange {
                key: "k".into(),
                start,
                end,
            }
            .apply(&s, 0)
        };
        assert_eq!(r(0, 3), Reply::Bulk("This".into()));
        assert_eq!(r(-3, -1), Reply::Bulk("ing".into()));
        assert_eq!(r(0, -1), Reply::Bulk("This is a string".into()));
        assert_eq!(r(10, 100), Reply::Bulk("string".into()));
        assert_eq!(r(5, 2), Reply::Bulk("".into()));
        assert_eq!(r(-1, -5), Reply::Bulk("".into()));
        assert_eq!(
            GetRange {
                key: "no".into(),
                start: 0,
                end: 5
            }
            .apply(&s, 0),
            Reply::Bulk("".into())
        );
    }
}
