use bytes::Bytes;

use super::Definition;
use super::parse::{Args, is};
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 without the pivot, 0 for a
/// missing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LInsert {
    pub key: Bytes,
    pub before: bool,
    pub pivot: Bytes,
    pub item: Bytes,
}

impl LInsert {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            let at = match w.live(&self.key, now).map(|e| e.list()).transpose() {
                Err(e) => return e.into(),
                Ok(None) => return Reply::Integer(0),
                Ok(Some(l)) => match l.iter().position(|x| x == &self.pivot[..]) {
                    Some(i) => i + usize::from(!self.before),
                    None => return Reply::Integer(-1),
                },
            };
            let version = ks.next_version();
            let edit = Edit::ListInsert {
                index: at as u64,
                item: self.item.clone(),
            };
            match w.edit(&self.key, now, version, edit) {
                Ok(done) => {
                    w.event(Event::Lists("linsert"), &self.key);
                    Reply::Integer(done.count as i64)
                }
                Err(e) => e.into(),
            }
        })
    }
}

impl Definition for LInsert {
    const SPECS: &'static [Spec] = &[Spec::data(
        "linsert",
        5,
        &[Flag::Write, Flag::Denyoom],
        &[Category::Write, Category::List, Category::Slow],
        KeySpec::FIRST,
        Access::WRITE,
        "list",
        "Insert an element before or after another element in a list",
        "LINSERT l BEFORE a b",
    )];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.exactly(4)?;
        let before = if is(&v[1], "before") {
            true
        } else if is(&v[1], "after") {
            false
        } else {
            return Err(CommandError::Syntax);
        };
        Ok(Self {
            key: v[0].clone(),
            before,
            pivot: v[2].clone(),
            item: v[3].clone(),
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
