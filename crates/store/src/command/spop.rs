use bytes::Bytes;

use super::Definition;
use super::coll::positive;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Edit, Rng};
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `SPOP key [count]`: removes and returns random members. The log records which members went,
/// so replay removes the same ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SPop {
    pub key: Bytes,
    pub count: Option<usize>,
}

impl SPop {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let mut rng = Rng::new();
        ks.write(&self.key, |w| {
            let chosen: Vec<Bytes> = match w.live(&self.key, now).map(|e| e.set()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => {
                    return if self.count.is_some() {
                        Reply::Array(Vec::new())
                    } else {
                        Reply::Nil
                    };
                }
                Ok(Some(set)) => {
                    let want = self.count.unwrap_or(1);
                    if want >= set.len() {
                        set.iter().map(Bytes::copy_from_slice).collect()
                    } else {
                        let mut seen = std::collections::HashSet::new();
                        while seen.len() < want {
                            if let Some(m) = set.random(&mut rng) {
                                seen.insert(Bytes::copy_from_slice(m));
                            }
                        }
                        seen.into_iter().collect()
                    }
                }
            };
            if chosen.is_empty() {
                return Reply::Array(Vec::new());
            }
            let version = ks.next_version();
            match w.edit(&self.key, now, version, Edit::SetRemove(chosen.clone())) {
                Ok(done) => {
                    w.event(Event::Sets("spop"), &self.key);
                    if done.removed {
                        w.event(Event::Del, &self.key);
                    }
                    match self.count {
                        None => chosen.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
                        Some(_) => Reply::Set(chosen.into_iter().map(Reply::Bulk).collect()),
                    }
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for SPop {
    const SPECS: &'static [Spec] = &[Spec::data(
        "spop",
        -2,
        &[Flag::Write, Flag::Fast],
        &[Category::Write, Category::Set, Category::Fast],
        KeySpec::FIRST,
        Access::READ_WRITE,
        "set",
        "Remove and return one or multiple random members from a set",
        "SPOP s 2",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(1)?;
        if v.len() > 2 {
            return Err(CommandError::Syntax);
        }
        Ok(Self {
            key: v[0].clone(),
            count: v.get(1).map(|c| positive(c)).transpose()?,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
