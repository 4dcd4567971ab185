//! What the collection commands share: index ranges, score and member bounds, replies.

use bytes::Bytes;

use std::sync::Arc;

use super::parse::{float, int, is};
use crate::access::{Keyspace, Writer};
use crate::collection::{Collection, Edit, Score};
use crate::effects::Event;
use crate::entry::{DEFAULT_CONTENT_TYPE, Entry, Millis, Value};
use crate::error::CommandError;
use crate::reply::Reply;

/// Replaces whatever `key` holds with a new collection built by `edit` (a store command's
/// result: SINTERSTORE, ZUNIONSTORE, SORT ... STORE), or removes the key when the result is
/// empty. Returns the result's size.
pub(crate) fn store_collection<K: Keyspace>(
    ks: &K,
    w: &mut Writer<'_>,
    key: &Bytes,
    edit: Edit,
    event: &'static str,
    now: Millis,
) -> usize {
    let mut collection = Collection::empty(edit.kind());
    collection.apply(&edit, &ks.store().collection_limits());
    if let Collection::ZSet(z) = &mut collection {
        z.fit(&ks.store().collection_limits());
    }
    let len = collection.len();
    if len == 0 {
        if w.live(key, now).is_some() {
            w.remove(key);
            w.event(Event::Del, key);
        }
        return 0;
    }
    let entry = Entry {
        value: Value::Collection(Arc::new(collection)),
        content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
        version: ks.next_version(),
        modified_at: now,
        expires_at: None,
    };
    w.put(key.clone(), entry, now);
    w.event(Event::Stored(event), key);
    len
}

/// An element as a bulk reply.
pub(crate) fn bulk(item: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(item))
}

/// A score as a double reply.
pub(crate) fn double(score: f64) -> Reply {
    Reply::Double(Score(score))
}

/// Redis's inclusive `start`/`stop` indices (negative from the end) over `len` items, as the
/// first index and how many; `None` when the range is empty.
pub(crate) fn index_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop + len
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, (stop - start + 1) as usize))
}

/// A count argument that must be positive (LPOP, SPOP, ...): Redis's error otherwise.
pub(crate) fn positive(arg: &[u8]) -> Result<usize, CommandError> {
    let n =
        int(arg).map_err(|_| CommandError::Invalid("value is out of range, must be positive"))?;
    usize::try_from(n).map_err(|_| CommandError::Invalid("value is out of range, must be positive"))
}

/// One end of a score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

impl ScoreBound {
    pub(crate) fn parse(arg: &[u8]) -> Result<Self, CommandError> {
        let bad = CommandError::Invalid("min or max is not a float");
        let (exclusive, text) = match arg.split_first() {
            Some((b'(', rest)) => (true, rest),
            _ => (false, arg),
        };
        let value = float(text).map_err(|_| bad.clone())?;
        Ok(Self { value, exclusive })
    }

    /// Whether `score` lies below this bound taken as a minimum.
    pub(crate) fn below_min(&self, score: f64) -> bool {
        if self.exclusive {
            score <= self.value
        } else {
            score < self.value
        }
    }

    /// Whether `score` lies at or below this bound taken as a maximum.
    pub(crate) fn within_max(&self, score: f64) -> bool {
        if self.exclusive {
            score < self.value
        } else {
            score <= self.value
        }
    }
}

/// One end of a member range: `[a` (inclusive), `(a` (exclusive), `-` (before all), `+` (after
/// all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl LexBound {
    pub(crate) fn parse(arg: &Bytes) -> Result<Self, CommandError> {
        match arg.first() {
            Some(b'-') if arg.len() == 1 => Ok(LexBound::Min),
            Some(b'+') if arg.len() == 1 => Ok(LexBound::Max),
            Some(b'[') => Ok(LexBound::Inclusive(arg.slice(1..))),
            Some(b'(') => Ok(LexBound::Exclusive(arg.slice(1..))),
            _ => Err(CommandError::Invalid(
                "min or max not valid string range item",
            )),
        }
    }

    /// Whether `member` lies below this bound taken as a minimum.
    pub(crate) fn below_min(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => member < &b[..],
            LexBound::Exclusive(b) => member <= &b[..],
        }
    }

    /// Whether `member` lies at or below this bound taken as a maximum.
    pub(crate) fn within_max(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => member <= &b[..],
            LexBound::Exclusive(b) => member < &b[..],
        }
    }
}

/// `numkeys key ...` at the start of `args`: the keys, and the arguments after them.
pub(crate) fn numkeys<'a>(
    args: &'a [Bytes],
    zero: &'static str,
) -> Result<(&'a [Bytes], &'a [Bytes]), CommandError> {
    let n =
        int(args.first().ok_or(CommandError::Syntax)?).map_err(|_| CommandError::Invalid(zero))?;
    if n <= 0 {
        return Err(CommandError::Invalid(zero));
    }
    let n = n as usize;
    if n > args.len() - 1 {
        return Err(CommandError::Invalid(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok((&args[1..1 + n], &args[1 + n..]))
}

/// Keys found by a `numkeys` at position `at` of the request (name at 0).
pub(crate) fn numkeys_positions(argv: &[Bytes], at: usize) -> Vec<usize> {
    let n = argv
        .get(at)
        .and_then(|a| int(a).ok())
        .filter(|n| *n > 0)
        .unwrap_or(0) as usize;
    (at + 1..(at + 1 + n).min(argv.len())).collect()
}

/// `LEFT|RIGHT [COUNT n]` after the keys.
pub(crate) fn side_and_count(
    rest: &[Bytes],
    left: &str,
    right: &str,
) -> Result<(bool, usize), CommandError> {
    let front = match rest.first() {
        Some(s) if is(s, left) => true,
        Some(s) if is(s, right) => false,
        _ => return Err(CommandError::Syntax),
    };
    let count = match &rest[1..] {
        [] => 1,
        [opt, n] if is(opt, "count") => {
            let n = int(n).map_err(|_| CommandError::Invalid("count should be greater than 0"))?;
            if n <= 0 {
                return Err(CommandError::Invalid("count should be greater than 0"));
            }
            n as usize
        }
        _ => return Err(CommandError::Syntax),
    };
    Ok((front, count))
}

/// BLPOP's and BZPOPMIN's `key ... timeout`: the keys and the timeout.
pub(crate) fn keys_then_timeout(v: &[Bytes]) -> Result<(Vec<Bytes>, f64), CommandError> {
    let (last, keys) = v.split_last().ok_or(CommandError::Syntax)?;
    Ok((keys.to_vec(), timeout(last)?))
}

/// LMPOP's and ZMPOP's `numkeys key ... SIDE [COUNT n]`, after BLMPOP's and BZMPOP's leading
/// `timeout` when `blocking`: the keys, whether the first side (`first`) was named, the count and
/// the timeout.
pub(crate) fn mpop_args(
    v: &[Bytes],
    blocking: bool,
    first: &str,
    second: &str,
) -> Result<(Vec<Bytes>, bool, usize, Option<f64>), CommandError> {
    let (wait, v) = if blocking {
        (
            Some(timeout(v.first().ok_or(CommandError::Syntax)?)?),
            &v[1..],
        )
    } else {
        (None, v)
    };
    let (keys, rest) = numkeys(v, "numkeys should be greater than 0")?;
    let (side, count) = side_and_count(rest, first, second)?;
    Ok((keys.to_vec(), side, count, wait))
}

/// SINTERCARD's and ZINTERCARD's `[LIMIT n]` after the keys (0: none).
pub(crate) fn card_limit(rest: &[Bytes]) -> Result<usize, CommandError> {
    match rest {
        [] => Ok(0),
        [opt, n] if is(opt, "limit") => int(n)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(CommandError::Invalid("LIMIT can't be negative")),
        _ => Err(CommandError::Syntax),
    }
}

/// A SCAN cursor: a whole number, or Redis's error.
pub(crate) fn cursor(arg: &[u8]) -> Result<u64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(CommandError::InvalidCursor)
}

/// SCAN's options, and its kin's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScanOptions {
    pub(crate) pattern: Option<Bytes>,
    pub(crate) count: usize,
    pub(crate) kind: Option<Bytes>,
}

/// `[MATCH pattern] [COUNT count]`, and `[TYPE type]` when `types` (SCAN has it, HSCAN, SSCAN
/// and ZSCAN do not).
pub(crate) fn scan_options(rest: &[Bytes], types: bool) -> Result<ScanOptions, CommandError> {
    let mut o = ScanOptions {
        count: 10,
        ..ScanOptions::default()
    };
    let mut rest = rest;
    while let [opt, value, tail @ ..] = rest {
        if is(opt, "MATCH") {
            o.pattern = Some(value.clone());
        } else if is(opt, "COUNT") {
            o.count = usize::try_from(int(value)?)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(CommandError::Syntax)?;
        } else if types && is(opt, "TYPE") {
            o.kind = Some(value.clone());
        } else {
            return Err(CommandError::Syntax);
        }
        rest = tail;
    }
    if rest.is_empty() {
        Ok(o)
    } else {
        Err(CommandError::Syntax)
    }
}

/// A blocking command's timeout in seconds (0: forever), as Redis reads and refuses one.
pub(crate) fn timeout(arg: &[u8]) -> Result<f64, CommandError> {
    let secs =
        float(arg).map_err(|_| CommandError::Invalid("timeout is not a float or out of range"))?;
    if secs < 0.0 {
        return Err(CommandError::Invalid("timeout is negative"));
    }
    if secs * 1000.0 > (i64::MAX / 2) as f64 {
        return Err(CommandError::Invalid("timeout is out of range"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ranges_follow_redis() {
        assert_eq!(index_range(0, -1, 3), Some((0, 3)));
        assert_eq!(index_range(-2, -1, 3), Some((1, 2)));
        assert_eq!(index_range(-10, 0, 3), Some((0, 1)));
        assert_eq!(index_range(1, 100, 3), Some((1, 2)));
        assert_eq!(index_range(3, 5, 3), None);
        assert_eq!(index_range(2, 1, 3), None);
        assert_eq!(index_range(0, -1, 0), None);
    }

    #[test]
    fn bounds_parse() {
        assert_eq!(
            ScoreBound::parse(b"(1.5"),
            Ok(ScoreBound {
                value: 1.5,
                exclusive: true
            })
        );
        assert!(ScoreBound::parse(b"x").is_err());
        assert_eq!(
            LexBound::parse(&Bytes::from_static(b"[a")),
            Ok(LexBound::Inclusive(Bytes::from_static(b"a")))
        );
        assert!(LexBound::parse(&Bytes::from_static(b"a")).is_err());
    }
}
