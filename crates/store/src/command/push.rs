use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// `LPUSH`, `RPUSH key element ...` and the `X` forms that push only onto an existing list: the
/// list's new length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    pub key: Bytes,
    pub items: Vec<Bytes>,
    pub front: bool,
    pub only_if_exists: bool,
}

impl Push {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            match w.live(&self.key, now) {
                Some(e) if e.kind != Kind::List => return CommandError::WrongType.into(),
                None if self.only_if_exists => return Reply::Integer(0),
                _ => {}
            }
            let version = ks.next_version();
            let edit = Edit::ListPush {
                front: self.front,
                items: self.items.clone(),
            };
            match w.edit(&self.key, now, version, edit) {
                Ok(done) => {
                    let event = if self.front { "lpush" } else { "rpush" };
                    w.event(Event::Lists(event), &self.key);
                    Reply::Integer(done.count as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write, Flag::Denyoom, Flag::Fast];
const C: &[Category] = &[Category::Write, Category::List, Category::Fast];

impl Definition for Push {
    const SPECS: &'static [Spec] = &[
        Spec::data("lpush", -3, W, C, KeySpec::FIRST, Access::WRITE, "list", "Prepend one or multiple elements to a list", "LPUSH l a b"),
        Spec::data("rpush", -3, W, C, KeySpec::FIRST, Access::WRITE, "list", "Append one or multiple elements to a list", "RPUSH l a b"),
        Spec::data("lpushx", -3, W, C, KeySpec::FIRST, Access::WRITE, "list", "Prepend an element to a list, only if the list exists", "LPUSHX l a"),
        Spec::data("rpushx", -3, W, C, KeySpec::FIRST, Access::WRITE, "list", "Append an element to a list, only if the list exists", "RPUSHX l a"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        Ok(Self {
            key: v[0].clone(),
            items: v[1..].to_vec(),
            front: a.cmd.starts_with('l'),
            only_if_exists: a.cmd.ends_with('x'),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
