use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// `HLEN`, `LLEN`, `SCARD`, `ZCARD`, `XLEN key`: the number of elements, 0 for a missing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    pub key: Bytes,
    pub kind: Kind,
}

impl Card {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| match shard.live(&self.key, now) {
            None => Reply::Integer(0),
            Some(e) if e.kind != self.kind => CommandError::WrongType.into(),
            Some(e) => Reply::Integer(e.collection().map_or(0, |c| c.len()) as i64),
        })
    }
}

const R: &[Flag] = &[Flag::Readonly, Flag::Fast];

impl Definition for Card {
    const SPECS: &'static [Spec] = &[
        Spec::data("hlen", 2, R, &[Category::Read, Category::Hash, Category::Fast], KeySpec::FIRST, Access::NONE, "hash", "Get the number of fields in a hash", "HLEN h"),
        Spec::data("llen", 2, R, &[Category::Read, Category::List, Category::Fast], KeySpec::FIRST, Access::NONE, "list", "Get the length of a list", "LLEN l"),
        Spec::data("scard", 2, R, &[Category::Read, Category::Set, Category::Fast], KeySpec::FIRST, Access::NONE, "set", "Get the number of members in a set", "SCARD s"),
        Spec::data("zcard", 2, R, &[Category::Read, Category::SortedSet, Category::Fast], KeySpec::FIRST, Access::NONE, "sorted-set", "Get the number of members in a sorted set", "ZCARD z"),
        Spec::data("xlen", 2, R, &[Category::Read, Category::Stream, Category::Fast], KeySpec::FIRST, Access::NONE, "stream", "Return the number of entries in a stream", "XLEN s"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let kind = match a.cmd {
            "hlen" => Kind::Hash,
            "llen" => Kind::List,
            "scard" => Kind::Set,
            "xlen" => Kind::Stream,
            _ => Kind::ZSet,
        };
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
            kind,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
