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

/// `SADD key member ...` (how many were new) and `SREM key member ...` (how many were removed;
/// a set left empty is removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SAdd {
    pub key: Bytes,
    pub members: Vec<Bytes>,
    pub remove: bool,
}

impl SAdd {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let members: Vec<Bytes> = match w.live(&self.key, now) {
                Some(e) if e.kind != Kind::Set => return CommandError::WrongType.into(),
                None if self.remove => return Reply::Integer(0),
                Some(e) => {
                    let Ok(set) = e.set() else {
                        return CommandError::WrongType.into();
                    };
                    self.members
                        .iter()
                        .filter(|m| set.contains(m) == self.remove)
                        .cloned()
                        .collect()
                }
                None => self.members.clone(),
            };
            if members.is_empty() {
                return Reply::Integer(0);
            }
            let version = ks.next_version();
            let edit = if self.remove {
                Edit::SetRemove(members)
            } else {
                Edit::SetAdd(members)
            };
            match w.edit(&self.key, now, version, edit) {
                Ok(done) => {
                    w.event(Event::Sets(if self.remove { "srem" } else { "sadd" }), &self.key);
                    if done.removed {
                        w.event(Event::Del, &self.key);
                    }
                    Reply::Integer(done.count as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for SAdd {
    const SPECS: &'static [Spec] = &[
        Spec::data("sadd", -3, &[Flag::Write, Flag::Denyoom, Flag::Fast], &[Category::Write, Category::Set, Category::Fast], KeySpec::FIRST, Access::WRITE, "set", "Add one or more members to a set", "SADD s a b"),
        Spec::data("srem", -3, &[Flag::Write, Flag::Fast], &[Category::Write, Category::Set, Category::Fast], KeySpec::FIRST, Access::WRITE, "set", "Remove one or more members from a set", "SREM s a"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        Ok(Self {
            key: v[0].clone(),
            members: v[1..].to_vec(),
            remove: a.cmd == "srem",
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
