use bytes::Bytes;

use super::Definition;
use super::incrbyfloat::format;
use super::parse::{Args, float, int};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// By how much.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HIncrStep {
    Int(i64),
    Float(f64),
}

/// `HINCRBY key field n`, `HINCRBYFLOAT key field x`: the field's new value. The log records the
/// value, not the increment.
#[derive(Clone, Debug, PartialEq)]
pub struct HIncrBy {
    pub key: Bytes,
    pub field: Bytes,
    pub by: HIncrStep,
}

impl HIncrBy {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let old = match w.live(&self.key, now).map(|e| e.hash()).transpose() {
                Err(e) => return e.into(),
                Ok(h) => h.and_then(|h| h.get(&self.field)).map(<[u8]>::to_vec),
            };
            let (text, reply) = match self.by {
                HIncrStep::Int(by) => {
                    let old = match old {
                        None => 0,
                        Some(v) => match int(&v) {
                            Ok(n) => n,
                            Err(_) => {
                                return CommandError::Invalid("hash value is not an integer").into();
                            }
                        },
                    };
                    let Some(new) = old.checked_add(by) else {
                        return CommandError::Overflow.into();
                    };
                    let text = itoa::Buffer::new().format(new).to_owned();
                    (text, Reply::Integer(new))
                }
                HIncrStep::Float(by) => {
                    let old = match old {
                        None => 0.0,
                        Some(v) => match float(&v) {
                            Ok(x) => x,
                            Err(_) => return CommandError::Invalid("hash value is not a float").into(),
                        },
                    };
                    let new = old + by;
                    if !new.is_finite() {
                        return CommandError::NanOrInfinity.into();
                    }
                    let text = format(new);
                    (text.clone(), Reply::Bulk(Bytes::from(text)))
                }
            };
            let version = ks.next_version();
            let edit = Edit::HashSet(vec![(self.field.clone(), Bytes::from(text))]);
            match w.edit(&self.key, now, version, edit) {
                Ok(_) => {
                    let event = match self.by {
                        HIncrStep::Int(_) => "hincrby",
                        HIncrStep::Float(_) => "hincrbyfloat",
                    };
                    w.event(Event::Hashes(event), &self.key);
                    reply
                }
                Err(e) => e.into(),
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write, Flag::Denyoom, Flag::Fast];
const C: &[Category] = &[Category::Write, Category::Hash, Category::Fast];

impl Definition for HIncrBy {
    const SPECS: &'static [Spec] = &[
        Spec::data("hincrby", 4, W, C, KeySpec::FIRST, Access::READ_WRITE, "hash", "Increment the integer value of a hash field by the given number", "HINCRBY h f 1"),
        Spec::data("hincrbyfloat", 4, W, C, KeySpec::FIRST, Access::READ_WRITE, "hash", "Increment the float value of a hash field by the given amount", "HINCRBYFLOAT h f 1.5"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        let by = if a.cmd == "hincrbyfloat" {
            let by = float(&v[2])?;
            if by.is_infinite() {
                return Err(CommandError::Invalid("value is NaN or Infinity"));
            }
            HIncrStep::Float(by)
        } else {
            HIncrStep::Int(int(&v[2])?)
        };
        Ok(Self {
            key: v[0].clone(),
            field: v[1].clone(),
            by,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
