use bytes::Bytes;

use super::Definition;
use super::coll::bulk;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// What is asked of the fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HGetForm {
    /// `HGET`: the value, or nil.
    Get,
    /// `HMGET`: each value, or nil.
    MGet,
    /// `HEXISTS`: 1 or 0.
    Exists,
    /// `HSTRLEN`: the value's length, or 0.
    Strlen,
}

/// `HGET key field`, `HMGET key field ...`, `HEXISTS key field`, `HSTRLEN key field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HGet {
    pub key: Bytes,
    pub fields: Vec<Bytes>,
    pub form: HGetForm,
}

impl HGet {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.read(&self.key, |shard| {
            let hash = match shard.live(&self.key, now).map(|e| e.hash()).transpose() {
                Ok(h) => h,
                Err(e) => return e.into(),
            };
            let value = |f: &Bytes| hash.and_then(|h| h.get(f));
            match self.form {
                HGetForm::Get => value(&self.fields[0]).map_or(Reply::Nil, bulk),
                HGetForm::MGet => Reply::Array(
                    self.fields
                        .iter()
                        .map(|f| value(f).map_or(Reply::Nil, bulk))
                        .collect(),
                ),
                HGetForm::Exists => Reply::Integer(i64::from(value(&self.fields[0]).is_some())),
                HGetForm::Strlen => {
                    Reply::Integer(value(&self.fields[0]).map_or(0, |v| v.len() as i64))
                }
            }
        })
    }
}

const R: &[Flag] = &[Flag::Readonly, Flag::Fast];
const C: &[Category] = &[Category::Read, Category::Hash, Category::Fast];

impl Definition for HGet {
    const SPECS: &'static [Spec] = &[
        Spec::data("hget", 3, R, C, KeySpec::FIRST, Access::READ, "hash", "Get the value of a hash field", "HGET h f"),
        Spec::data("hmget", -3, R, C, KeySpec::FIRST, Access::READ, "hash", "Get the values of all the given hash fields", "HMGET h f g"),
        Spec::data("hexists", 3, R, C, KeySpec::FIRST, Access::NONE, "hash", "Determine if a hash field exists", "HEXISTS h f"),
        Spec::data("hstrlen", 3, R, C, KeySpec::FIRST, Access::NONE, "hash", "Get the length of the value of a hash field", "HSTRLEN h f"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(2)?;
        let form = match a.cmd {
            "hmget" => HGetForm::MGet,
            "hexists" => HGetForm::Exists,
            "hstrlen" => HGetForm::Strlen,
            _ => HGetForm::Get,
        };
        Ok(Self {
            key: v[0].clone(),
            fields: v[1..].to_vec(),
            form,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
