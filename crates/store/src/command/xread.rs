use bytes::Bytes;

use super::Definition;
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use super::xrange::entry_reply;
use super::xtrim::BAD_ID;
use crate::access::Keyspace;
use crate::collection::StreamId;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// Entries a blocked XREAD without COUNT answers at most once new ones arrive, as in Redis.
const BLOCKED_COUNT: usize = 1000;

/// Where XREAD reads a stream from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// `$`: only entries added after the stream's last ID.
    Last,
    /// Entries with IDs above this.
    After(StreamId),
}

/// `XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...`: each stream's entries after its ID, for
/// the streams that have some; nil when none has. With BLOCK the server waits for entries (the
/// store never waits; see [`XRead::for_waiting`]).
#[derive(Clone, Debug, PartialEq)]
pub struct XRead {
    pub keys: Vec<Bytes>,
    pub from: Vec<ReadFrom>,
    pub count: Option<usize>,
    /// BLOCK's wait in seconds (0: forever).
    pub block: Option<f64>,
}

impl XRead {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
        ks.read_keys(&keys, |picked| {
            let mut found = Vec::new();
            for (key, from) in self.keys.iter().zip(&self.from) {
                let Some(entry) = picked.shard(key).and_then(|s| s.live(key, now)) else {
                    continue;
                };
                let stream = match entry.stream() {
                    Ok(s) => s,
                    Err(e) => return e.into(),
                };
                let after = match from {
                    ReadFrom::Last => stream.last_id(),
                    ReadFrom::After(id) => *id,
                };
                let Some(start) = after.next() else { continue };
                let entries: Vec<Reply> = stream
                    .range(start, StreamId::MAX)
                    .take(self.count.unwrap_or(usize::MAX))
                    .map(|(id, p)| entry_reply(id, p))
                    .collect();
                if !entries.is_empty() {
                    found.push((Reply::Bulk(key.clone()), Reply::Array(entries)));
                }
            }
            if found.is_empty() {
                Reply::NilArray
            } else {
                Reply::Grouped(found)
            }
        })
    }

    /// The same read with each `$` replaced by the stream's last ID now, so that waiting for
    /// it and running it again finds only what arrives meanwhile.
    pub fn resolved<K: Keyspace>(&self, ks: &K, now: Millis) -> XRead {
        let from = self
            .keys
            .iter()
            .zip(&self.from)
            .map(|(key, from)| match from {
                ReadFrom::Last => ReadFrom::After(ks.read(key, |shard| {
                    shard
                        .live(key, now)
                        .and_then(|e| e.stream().ok().map(|s| s.last_id()))
                        .unwrap_or(StreamId::MIN)
                })),
                after => *after,
            })
            .collect();
        XRead {
            from,
            ..self.clone()
        }
    }

    /// The read a client that waited runs: without COUNT, at most [`BLOCKED_COUNT`] entries,
    /// as Redis answers a blocked read.
    pub fn waited(self) -> XRead {
        XRead {
            count: Some(self.count.unwrap_or(BLOCKED_COUNT)),
            ..self
        }
    }
}

/// The keys of `XREAD ... STREAMS key ... id ...`: the first half after STREAMS.
fn streams_keys(argv: &[Bytes]) -> Vec<usize> {
    let Some(at) = argv.iter().skip(1).position(|a| is(a, "streams")) else {
        return Vec::new();
    };
    let first = at + 2;
    let n = argv.len().saturating_sub(first) / 2;
    (first..first + n).collect()
}

const XREAD_KEYS: KeySpec = KeySpec::Find {
    shown: (0, 0, 0),
    find: streams_keys,
};

impl Definition for XRead {
    const SPECS: &'static [Spec] = &[Spec::data(
        "xread",
        -4,
        &[Flag::Readonly, Flag::Blocking],
        &[Category::Read, Category::Stream, Category::Slow, Category::Blocking],
        XREAD_KEYS,
        Access::READ,
        "stream",
        "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.",
        "XREAD COUNT 2 STREAMS s 0",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(3)?;
        let mut count = None;
        let mut block = None;
        let mut i = 0;
        let streams = loop {
            let Some(opt) = v.get(i) else {
                return Err(CommandError::Syntax);
            };
            let more = v.len() - 1 - i;
            if is(opt, "block") && more > 0 {
                let ms = int(&v[i + 1]).map_err(|_| {
                    CommandError::Invalid("timeout is not an integer or out of range")
                })?;
                if ms < 0 {
                    return Err(CommandError::Invalid("timeout is negative"));
                }
                block = Some(ms as f64 / 1000.0);
                i += 2;
            } else if is(opt, "count") && more > 0 {
                // COUNT 0 (or less) reads everything, as no COUNT does.
                let n = int(&v[i + 1])?;
                count = usize::try_from(n).ok().filter(|n| *n > 0);
                i += 2;
            } else if is(opt, "streams") && more > 0 {
                break i + 1;
            } else if is(opt, "group") || is(opt, "noack") {
                return Err(CommandError::Invalid(if is(opt, "group") {
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                } else {
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                }));
            } else {
                return Err(CommandError::Syntax);
            }
        };
        let rest = &v[streams..];
        if rest.len() % 2 != 0 {
            return Err(CommandError::Invalid(
                "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
            ));
        }
        let (keys, ids) = rest.split_at(rest.len() / 2);
        let from = ids
            .iter()
            .map(|id| match &id[..] {
                b"$" => Ok(ReadFrom::Last),
                b">" => Err(CommandError::Invalid(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                )),
                id => StreamId::parse(id, 0, true)
                    .map(ReadFrom::After)
                    .ok_or(BAD_ID),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys: keys.to_vec(),
            from,
            count,
            block,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(self.keys.iter().map(|k| &k[..]).collect())
    }

    fn block_timeout(&self) -> Option<f64> {
        self.block
    }
}
