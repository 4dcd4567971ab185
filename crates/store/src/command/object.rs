use bytes::Bytes;

use super::parse::{Args, int};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// What `OBJECT` is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectQuery {
    Encoding,
    Freq,
    IdleTime,
    RefCount,
}

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, answered as Redis would for a string: the
/// encoding Redis would choose (`int`, `embstr`, `raw`); FREQ refuses as Redis does without an LFU
/// policy; IDLETIME counts from the last write (reads are not tracked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub query: ObjectQuery,
    pub key: Bytes,
}

impl Object {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        let sub = String::from_utf8_lossy(&v[0]).to_ascii_lowercase();
        let query = match sub.as_str() {
            "encoding" => ObjectQuery::Encoding,
            "freq" => ObjectQuery::Freq,
            "idletime" => ObjectQuery::IdleTime,
            "refcount" => ObjectQuery::RefCount,
            _ => {
                return Err(CommandError::UnknownSubcommand {
                    sub,
                    command: "OBJECT".into(),
                });
            }
        };
        if v.len() != 2 {
            return Err(CommandError::UnknownSubcommand {
                sub,
                command: "OBJECT".into(),
            });
        }
        Ok(Self {
            query,
            key: v[1].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let Some(entry) = shard.live(&self.key, now) else {
                return Reply::Nil;
            };
            match self.query {
                ObjectQuery::Encoding => {
                    let v = &entry.value;
                    Reply::Bulk(Bytes::from_static(if v.len() <= 20 && int(v).is_ok() {
                        b"int"
                    } else if v.len() <= 44 {
                        b"embstr"
                    } else {
                        b"raw"
                    }))
                }
                ObjectQuery::Freq => CommandError::NoLfuPolicy.into(),
                ObjectQuery::IdleTime => {
                    Reply::Integer(((now.saturating_sub(entry.modified_at)) / 1000) as i64)
                }
                ObjectQuery::RefCount => Reply::Integer(1),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    #[test]
    fn encodings() {
        let s = Store::new();
        let enc = |k: &'static str| {
            Object {
                query: ObjectQuery::Encoding,
                key: k.into(),
            }
            .apply(&s, 0)
        };
        Set::new("i", "12345").apply(&s, 0);
        Set::new("e", "hello").apply(&s, 0);
        Set::new("r", "x".repeat(45)).apply(&s, 0);
        assert_eq!(enc("i"), Reply::Bulk("int".into()));
        assert_eq!(enc("e"), Reply::Bulk("embstr".into()));
        assert_eq!(enc("r"), Reply::Bulk("raw".into()));
        assert_eq!(enc("missing"), Reply::Nil);
    }
}
