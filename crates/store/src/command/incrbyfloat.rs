use bytes::Bytes;

use super::parse::{Args, float};
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::packed::EntryRef;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `INCRBYFLOAT key by`: add to the number held as a decimal string; the new value, as a string.
#[derive(Clone, Debug, PartialEq)]
pub struct IncrByFloat {
    pub key: Bytes,
    pub by: f64,
}

/// A double as Redis writes a stored number: plain decimal, no exponent, no trailing zeros.
pub(crate) fn format(v: f64) -> String {
    let s = format!("{v}");
    if s == "-0" { "0".to_owned() } else { s }
}

impl IncrByFloat {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(2)?;
        Ok(Self {
            key: v[0].clone(),
            by: float(&v[1])?,
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            let mut text = String::new();
            let written = shard.update(&self.key, now, |current| {
                let old = match current {
                    Some(e) => float(e.string()?)?,
                    None => 0.0,
                };
                let new = old + self.by;
                if !new.is_finite() {
                    return Err(CommandError::NanOrInfinity);
                }
                text = format(new);
                Ok(EntryRef::successor(
                    current,
                    Bytes::copy_from_slice(text.as_bytes()),
                    ks.next_version(),
                    now,
                ))
            });
            match written {
                Ok(_) => {
                    shard.event(Event::Incrbyfloat, &self.key);
                    Reply::Bulk(Bytes::from(text))
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for IncrByFloat {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "incrbyfloat",
            arity: 3,
            flags: &[Flag::Write, Flag::Denyoom, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Increment the float value of a key by the given amount",
            example: "INCRBYFLOAT k 1.5",
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
    fn adds_floats() {
        let s = Store::new();
        Set::new("f", "10.50").apply(&s, 0);
        let by = |by| {
            IncrByFloat {
                key: "f".into(),
                by,
            }
            .apply(&s, 0)
        };
        assert_eq!(by(0.1), Reply::Bulk("10.6".into()));
        assert_eq!(by(-5.0), Reply::Bulk("5.6".into()));
        assert_eq!(by(f64::INFINITY), Reply::Error(CommandError::NanOrInfinity));
        Set::new("f", "abc").apply(&s, 0);
        assert_eq!(by(1.0), Reply::Error(CommandError::NotFloat));
        assert_eq!(
            IncrByFloat {
                key: "new".into(),
                by: 3e3
            }
            .apply(&s, 0),
            Reply::Bulk("3000".into())
        );
    }
}
