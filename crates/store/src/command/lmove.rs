use bytes::Bytes;

use super::Definition;
use super::coll::timeout;
use super::parse::{Args, is};
use super::pop::pop_list;
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::{Kind, Millis};
use crate::error::CommandError;
use crate::reply::Reply;

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`, `RPOPLPUSH source destination`, and their
/// blocking forms `BLMOVE ... timeout`, `BRPOPLPUSH ... timeout`: moves one item atomically; the
/// item, or nil when the source is empty (a blocking form then waits, see the server).
#[derive(Clone, Debug, PartialEq)]
pub struct LMove {
    pub from: Bytes,
    pub to: Bytes,
    pub from_front: bool,
    pub to_front: bool,
    /// Seconds a blocking form waits (0: forever); `None` for the plain forms.
    pub timeout: Option<f64>,
}

fn side(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "left") {
        Ok(true)
    } else if is(arg, "right") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

impl LMove {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write_keys(&[&self.from[..], &self.to[..]], |locked| {
            let Some(src) = locked.shard(&self.from) else {
                return Reply::Nil;
            };
            match src.live(&self.from, now) {
                None => return Reply::Nil,
                Some(e) if e.kind != Kind::List => return CommandError::WrongType.into(),
                Some(_) => {}
            }
            if let Some(dst) = locked.shard(&self.to)
                && dst.live(&self.to, now).is_some_and(|e| e.kind != Kind::List)
            {
                return CommandError::WrongType.into();
            }
            let Some(src) = locked.shard(&self.from) else {
                return Reply::Nil;
            };
            let item = match pop_list(ks, src, &self.from, self.from_front, 1, now) {
                Err(e) => return e.into(),
                Ok(items) => match items.into_iter().next() {
                    Some(item) => item,
                    None => return Reply::Nil,
                },
            };
            let Some(dst) = locked.shard(&self.to) else {
                return Reply::Nil;
            };
            let version = ks.next_version();
            let edit = Edit::ListPush {
                front: self.to_front,
                items: vec![item.clone()],
            };
            match dst.edit(&self.to, now, version, edit) {
                Ok(_) => {
                    let event = if self.to_front { "lpush" } else { "rpush" };
                    dst.event(Event::Lists(event), &self.to);
                    Reply::Bulk(item)
                }
                Err(e) => e.into(),
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write, Flag::Denyoom];
const B: &[Flag] = &[Flag::Write, Flag::Denyoom, Flag::Noscript, Flag::Blocking];
const C: &[Category] = &[Category::Write, Category::List, Category::Slow];
const CB: &[Category] = &[Category::Write, Category::List, Category::Slow, Category::Blocking];
const TWO: KeySpec = KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
};
const MOVE: KeyAccess = KeyAccess::FirstThenRest(Access::READ_WRITE, Access::WRITE);

impl Definition for LMove {
    const SPECS: &'static [Spec] = &[
        Spec { access: MOVE, ..Spec::data("lmove", 5, W, C, TWO, Access::WRITE, "list", "Pop an element from a list, push it to another list and return it", "LMOVE a b LEFT RIGHT") },
        Spec { access: MOVE, ..Spec::data("rpoplpush", 3, W, C, TWO, Access::WRITE, "list", "Remove the last element in a list, prepend it to another list and return it", "RPOPLPUSH a b") },
        Spec { access: MOVE, ..Spec::data("blmove", 6, B, CB, TWO, Access::WRITE, "list", "Pop an element from a list, push it to another list and return it; or block until one is available", "BLMOVE a b LEFT RIGHT 0.5") },
        Spec { access: MOVE, ..Spec::data("brpoplpush", 4, B, CB, TWO, Access::WRITE, "list", "Pop an element from a list, push it to another list and return it; or block until one is available", "BRPOPLPUSH a b 1") },
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.args;
        let (from_front, to_front, timeout) = match a.cmd {
            "lmove" => (side(&v[2])?, side(&v[3])?, None),
            "blmove" => (side(&v[2])?, side(&v[3])?, Some(timeout(&v[4])?)),
            "brpoplpush" => (false, true, Some(timeout(&v[2])?)),
            _ => (false, true, None),
        };
        Ok(Self {
            from: v[0].clone(),
            to: v[1].clone(),
            from_front,
            to_front,
            timeout,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.from[..], &self.to[..]])
    }

    fn block_timeout(&self) -> Option<f64> {
        self.timeout
    }
}
