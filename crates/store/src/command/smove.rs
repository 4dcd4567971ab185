use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// `SMOVE source destination member`: 1 if the member moved, 0 if the source lacks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SMove {
    pub from: Bytes,
    pub to: Bytes,
    pub member: Bytes,
}

impl SMove {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write_keys(&[&self.from[..], &self.to[..]], |locked| {
            let has = match locked
                .shard(&self.from)
                .and_then(|s| s.live(&self.from, now))
                .map(|e| e.set().map(|s| s.contains(&self.member)))
                .transpose()
            {
                Err(e) => return e.into(),
                Ok(has) => has,
            };
            if has.is_none() {
                return Reply::Integer(0);
            }
            if locked
                .shard(&self.to)
                .and_then(|s| s.live(&self.to, now))
                .is_some_and(|e| e.kind != Kind::Set)
            {
                return CommandError::WrongType.into();
            }
            match has {
                None | Some(false) => return Reply::Integer(0),
                Some(true) if self.from == self.to => return Reply::Integer(1),
                Some(true) => {}
            }
            if let Some(src) = locked.shard(&self.from) {
                let version = ks.next_version();
                match src.edit(&self.from, now, version, Edit::SetRemove(vec![self.member.clone()])) {
                    Err(e) => return e.into(),
                    Ok(done) => {
                        src.event(Event::Sets("srem"), &self.from);
                        if done.removed {
                            src.event(Event::Del, &self.from);
                        }
                    }
                }
            }
            if let Some(dst) = locked.shard(&self.to) {
                if dst
                    .live(&self.to, now)
                    .is_some_and(|e| e.set().is_ok_and(|s| s.contains(&self.member)))
                {
                    // Already there: nothing changes, and nothing is announced.
                    return Reply::Integer(1);
                }
                let version = ks.next_version();
                if let Err(e) = dst.edit(&self.to, now, version, Edit::SetAdd(vec![self.member.clone()])) {
                    return e.into();
                }
                dst.event(Event::Sets("sadd"), &self.to);
            }
            Reply::Integer(1)
        })
    }
}

impl Definition for SMove {
    const SPECS: &'static [Spec] = &[Spec {
        access: KeyAccess::FirstThenRest(Access::READ_WRITE, Access::WRITE),
        ..Spec::data(
            "smove",
            4,
            &[Flag::Write, Flag::Fast],
            &[Category::Write, Category::Set, Category::Fast],
            KeySpec::Range {
                first: 1,
                last: 2,
                step: 1,
            },
            Access::WRITE,
            "set",
            "Move a member from one set to another",
            "SMOVE a b m",
        )
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(3)?;
        Ok(Self {
            from: v[0].clone(),
            to: v[1].clone(),
            member: v[2].clone(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.from[..], &self.to[..]])
    }
}
