use bytes::Bytes;

use super::Definition;
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::{Keyspace, Writer};
use crate::collection::{Edit, StreamId, TrimTo};
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// Redis's answer to an ID it cannot read.
pub(crate) const BAD_ID: CommandError =
    CommandError::Invalid("Invalid stream ID specified as stream command argument");

/// How XADD and XTRIM trim a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trim {
    pub to: TrimTo,
    /// `~`: only whole nodes' worth of entries go.
    pub approx: bool,
    /// Most entries one call removes (0: no limit); `None`: 100 nodes' worth when `approx`,
    /// no limit otherwise, as Redis's default.
    pub limit: Option<u64>,
}

/// XADD's and XTRIM's options, read as Redis reads them.
pub(crate) struct Options {
    pub(crate) trim: Option<Trim>,
    pub(crate) nomkstream: bool,
    /// XADD: where the ID is among the arguments (the key at 0); past the end if missing.
    pub(crate) id_at: usize,
}

/// Reads the options after the key (`v[0]`) up to the ID (XADD) or the end (XTRIM).
pub(crate) fn options(v: &[Bytes], xadd: bool) -> Result<Options, CommandError> {
    let mut to = None;
    let mut approx = false;
    let mut limit = None;
    let mut nomkstream = false;
    let mut i = 1;
    let both = CommandError::Invalid(
        "syntax error, MAXLEN and MINID options at the same time are not compatible",
    );
    while i < v.len() {
        let more = v.len() - 1 - i;
        let opt = &v[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more >= 1 {
            if to.is_some() {
                return Err(both);
            }
            approx = false;
            if more >= 2 && &v[i + 1][..] == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && &v[i + 1][..] == b"=" {
                i += 1;
            }
            let arg = v.get(i + 1).ok_or(CommandError::Syntax)?;
            to = Some(if is(opt, "maxlen") {
                let n = int(arg)?;
                let n = u64::try_from(n)
                    .map_err(|_| CommandError::Invalid("The MAXLEN argument must be >= 0."))?;
                TrimTo::MaxLen(n)
            } else {
                TrimTo::MinId(StreamId::parse(arg, 0, true).ok_or(BAD_ID)?)
            });
            i += 1;
        } else if is(opt, "limit") && more >= 1 {
            let n = int(&v[i + 1])?;
            let n = u64::try_from(n)
                .map_err(|_| CommandError::Invalid("The LIMIT argument must be >= 0."))?;
            limit = Some(n);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            nomkstream = true;
        } else if xadd {
            break;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if limit.is_some_and(|n| n > 0) && to.is_none() {
        return Err(CommandError::Invalid(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && to.is_none() {
        return Err(CommandError::Invalid(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit.is_some() && !approx {
        return Err(CommandError::Invalid(
            "syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    Ok(Options {
        trim: to.map(|to| Trim { to, approx, limit }),
        nomkstream,
        id_at: i,
    })
}

/// Trims the stream under `key` as `trim` says; how many entries went.
pub(crate) fn trim_stream<K: Keyspace>(
    ks: &K,
    w: &mut Writer<'_>,
    key: &Bytes,
    trim: Trim,
    now: Millis,
) -> Result<usize, CommandError> {
    let limit = match trim.limit {
        Some(n) => n,
        None if trim.approx => {
            let per_node = ks.store().collection_limits().stream_node_entries as u64;
            match per_node.saturating_mul(100) {
                0 => 10_000,
                n => n.min(1_000_000),
            }
        }
        None => 0,
    };
    let through = match w.live(key, now) {
        None => return Ok(0),
        Some(e) => e.stream()?.trim_point(trim.to, trim.approx, limit),
    };
    let Some(through) = through else {
        return Ok(0);
    };
    let done = w.edit(key, now, ks.next_version(), Edit::StreamTrim { through })?;
    if done.count > 0 {
        w.event(Event::Streams("xtrim"), key);
    }
    Ok(done.count)
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`: how many entries went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XTrim {
    pub key: Bytes,
    pub trim: Trim,
}

impl XTrim {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            if w.live(&self.key, now).is_some_and(|e| e.kind != Kind::Stream) {
                return CommandError::WrongType.into();
            }
            match trim_stream(ks, w, &self.key, self.trim, now) {
                Ok(n) => Reply::Integer(n as i64),
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for XTrim {
    const SPECS: &'static [Spec] = &[Spec::data(
        "xtrim",
        -4,
        &[Flag::Write],
        &[Category::Write, Category::Stream, Category::Slow],
        KeySpec::FIRST,
        Access::WRITE,
        "stream",
        "Deletes messages from the beginning of a stream.",
        "XTRIM s MAXLEN ~ 1000",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(3)?;
        let options = options(v, false)?;
        Ok(Self {
            key: v[0].clone(),
            trim: options.trim.ok_or(CommandError::Syntax)?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
