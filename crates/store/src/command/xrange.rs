use bytes::Bytes;

use super::Definition;
use super::coll::bulk;
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use super::xtrim::BAD_ID;
use crate::access::Keyspace;
use crate::collection::StreamId;
use crate::collection::pack::Pack;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// A stream entry as Redis answers one: its ID, then its fields and values.
pub(crate) fn entry_reply(id: StreamId, pairs: &Pack) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(id.to_bytes()),
        Reply::Array(pairs.iter().map(bulk).collect()),
    ])
}

/// One end of an XRANGE interval: an ID (`ms` alone fills the sequence with `missing_seq`),
/// `-`, `+`, or `(id` to leave the ID itself out.
fn bound(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, CommandError> {
    match arg.split_first() {
        Some((b'(', rest)) if !rest.is_empty() => {
            let id = StreamId::parse(rest, missing_seq, true).ok_or(BAD_ID)?;
            if start {
                id.next()
                    .ok_or(CommandError::Invalid("invalid start ID for the interval"))
            } else {
                id.prev()
                    .ok_or(CommandError::Invalid("invalid end ID for the interval"))
            }
        }
        _ => StreamId::parse(arg, missing_seq, false).ok_or(BAD_ID),
    }
}

/// `XRANGE key start end [COUNT n]` and `XREVRANGE key end start [COUNT n]`: the entries in
/// that inclusive interval, oldest first (newest first for XREVRANGE), at most `count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XRange {
    pub key: Bytes,
    pub start: StreamId,
    pub end: StreamId,
    pub rev: bool,
    /// `None`: every entry in the interval.
    pub count: Option<usize>,
}

impl XRange {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let stream = match shard.live(&self.key, now).map(|e| e.stream()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => return Reply::Array(Vec::new()),
                Ok(Some(s)) => s,
            };
            if self.count == Some(0) {
                return Reply::NilArray;
            }
            let take = self.count.unwrap_or(usize::MAX);
            let range = stream.range(self.start, self.end);
            let entries: Vec<Reply> = if self.rev {
                range.rev().take(take).map(|(id, p)| entry_reply(id, p)).collect()
            } else {
                range.take(take).map(|(id, p)| entry_reply(id, p)).collect()
            };
            Reply::Array(entries)
        })
    }
}

const R: &[Flag] = &[Flag::Readonly];
const C: &[Category] = &[Category::Read, Category::Stream, Category::Slow];

impl Definition for XRange {
    const SPECS: &'static [Spec] = &[
        Spec::data("xrange", -4, R, C, KeySpec::FIRST, Access::READ, "stream", "Return a range of elements in a stream, with IDs matching the specified IDs interval", "XRANGE s - + COUNT 10"),
        Spec::data("xrevrange", -4, R, C, KeySpec::FIRST, Access::READ, "stream", "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", "XREVRANGE s + - COUNT 10"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(3)?;
        let rev = a.cmd == "xrevrange";
        let (start, end) = if rev { (&v[2], &v[1]) } else { (&v[1], &v[2]) };
        let start = bound(start, 0, true)?;
        let end = bound(end, u64::MAX, false)?;
        let mut count = None;
        let mut rest = v[3..].iter();
        while let Some(opt) = rest.next() {
            match rest.next() {
                Some(n) if is(opt, "count") => {
                    count = Some(usize::try_from(int(n)?.max(0)).unwrap_or(usize::MAX));
                }
                _ => return Err(CommandError::Syntax),
            }
        }
        Ok(Self {
            key: v[0].clone(),
            start,
            end,
            rev,
            count,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
