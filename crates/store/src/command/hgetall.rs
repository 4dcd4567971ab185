use bytes::Bytes;

use super::Definition;
use super::coll::bulk;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// What of each field is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HGetAllForm {
    Keys,
    Vals,
    All,
}

/// `HKEYS`, `HVALS`, `HGETALL key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HGetAll {
    pub key: Bytes,
    pub form: HGetAllForm,
}

impl HGetAll {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let hash = match shard.live(&self.key, now).map(|e| e.hash()).transpose() {
                Ok(h) => h,
                Err(e) => return e.into(),
            };
            let pairs = hash.into_iter().flat_map(|h| h.iter());
            match self.form {
                HGetAllForm::Keys => Reply::Array(pairs.map(|(f, _)| bulk(f)).collect()),
                HGetAllForm::Vals => Reply::Array(pairs.map(|(_, v)| bulk(v)).collect()),
                HGetAllForm::All => Reply::Map(pairs.map(|(f, v)| (bulk(f), bulk(v))).collect()),
            }
        })
    }
}

const R: &[Flag] = &[Flag::Readonly];
const C: &[Category] = &[Category::Read, Category::Hash, Category::Slow];

impl Definition for HGetAll {
    const SPECS: &'static [Spec] = &[
        Spec::data("hkeys", 2, R, C, KeySpec::FIRST, Access::READ, "hash", "Get all the fields in a hash", "HKEYS h"),
        Spec::data("hvals", 2, R, C, KeySpec::FIRST, Access::READ, "hash", "Get all the values in a hash", "HVALS h"),
        Spec::data("hgetall", 2, R, C, KeySpec::FIRST, Access::READ, "hash", "Get all the fields and values in a hash", "HGETALL h"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let form = match a.cmd {
            "hkeys" => HGetAllForm::Keys,
            "hvals" => HGetAllForm::Vals,
            _ => HGetAllForm::All,
        };
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
            form,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
