use bytes::{Bytes, BytesMut};

use super::parse::{Args, is};
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::{DEFAULT_CONTENT_TYPE, Entry, Millis, Value};
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// BITOP's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOperation {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: combines strings byte by byte (a shorter or
/// missing one counts as zeros) into `destkey`; answers its length. An empty result deletes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitOp {
    pub operation: BitOperation,
    pub dest: Bytes,
    pub sources: Vec<Bytes>,
}

impl BitOp {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let mut keys: Vec<&[u8]> = vec![&self.dest[..]];
        keys.extend(self.sources.iter().map(|k| &k[..]));
        ks.write_keys(&keys, |locked| {
            let mut values = Vec::with_capacity(self.sources.len());
            for key in &self.sources {
                let value = match locked.shard(key).and_then(|s| s.live(key, now)) {
                    None => Bytes::new(),
                    Some(entry) => match entry.string() {
                        Ok(b) => Bytes::copy_from_slice(b),
                        Err(e) => return e.into(),
                    },
                };
                values.push(value);
            }
            let len = values.iter().map(Bytes::len).max().unwrap_or(0);
            let mut out = BytesMut::zeroed(len);
            for (i, byte) in out.iter_mut().enumerate() {
                let at = |v: &Bytes| v.get(i).copied().unwrap_or(0);
                *byte = match self.operation {
                    BitOperation::Not => !at(&values[0]),
                    BitOperation::And => values.iter().fold(0xff, |acc, v| acc & at(v)),
                    BitOperation::Or => values.iter().fold(0, |acc, v| acc | at(v)),
                    BitOperation::Xor => values.iter().fold(0, |acc, v| acc ^ at(v)),
                };
            }
            let Some(dest) = locked.shard(&self.dest) else {
                return Reply::Integer(0);
            };
            if len == 0 {
                if dest.remove(&self.dest).is_some() {
                    dest.event(Event::Del, &self.dest);
                }
                return Reply::Integer(0);
            }
            dest.put(
                self.dest.clone(),
                Entry {
                    value: Value::String(out.freeze()),
                    content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
                    version: ks.next_version(),
                    modified_at: now,
                    expires_at: None,
                },
                now,
            );
            dest.event(Event::Set, &self.dest);
            Reply::Integer(len as i64)
        })
    }
}

impl Definition for BitOp {
    const SPECS: &'static [Spec] = &[Spec {
        name: "bitop",
        arity: -4,
        flags: &[Flag::Write, Flag::Denyoom],
        categories: &[Category::Write, Category::Bitmap, Category::Slow],
        keys: KeySpec::Range {
            first: 2,
            last: -1,
            step: 1,
        },
        access: KeyAccess::FirstThenRest(Access::WRITE, Access::READ),
        group: "bitmap",
        summary: "Perform bitwise operations between strings",
        example: "BITOP AND d a b",
        ..Spec::BLANK
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(3)?;
        let operation = if is(&v[0], "AND") {
            BitOperation::And
        } else if is(&v[0], "OR") {
            BitOperation::Or
        } else if is(&v[0], "XOR") {
            BitOperation::Xor
        } else if is(&v[0], "NOT") {
            BitOperation::Not
        } else {
            return Err(CommandError::Syntax);
        };
        if operation == BitOperation::Not && v.len() != 3 {
            return Err(CommandError::BitopNot);
        }
        Ok(Self {
            operation,
            dest: v[1].clone(),
            sources: v[2..].to_vec(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        let mut keys = vec![&self.dest[..]];
        keys.extend(self.sources.iter().map(|k| &k[..]));
        Some(keys)
    }
}
