use bytes::Bytes;

use super::parse::Args;
use crate::access::Keyspace;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use super::Definition;

/// `GETDEL key`: the value, and the key removed, in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetDel {
    pub key: Bytes,
}

impl GetDel {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |shard| {
            match shard.live(&self.key, now) {
                None => return Reply::Nil,
                Some(e) if e.string().is_err() => return CommandError::WrongType.into(),
                Some(_) => {}
            }
            shard.event(Event::Del, &self.key);
            shard.remove(&self.key).map(|e| e.value_bytes()).into()
        })
    }
}

impl Definition for GetDel {
    const SPECS: &'static [Spec] = &[
        Spec {
            name: "getdel",
            arity: 2,
            flags: &[Flag::Write, Flag::Fast],
            categories: &[Category::Write, Category::String, Category::Fast],
            keys: KeySpec::FIRST,
            access: KeyAccess::Each(Access::READ_WRITE),
            group: "string",
            summary: "Get the value of a key and delete the key",
            example: "GETDEL k",
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
    fn returns_and_removes() {
        let s = Store::new();
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(
            GetDel { key: "k".into() }.apply(&s, 0),
            Reply::Bulk("v".into())
        );
        assert_eq!(GetDel { key: "k".into() }.apply(&s, 0), Reply::Nil);
        assert_eq!(s.held(), 0);
    }
}
