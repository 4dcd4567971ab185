use bytes::Bytes;

use super::Definition;
use super::parse::Args;
use super::spec::{Access, Category, Flag, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::Edit;
use crate::effects::Event;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::reply::Reply;

/// Which of the hash-setting commands it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HSetForm {
    /// `HSET`: the number of new fields.
    Hset,
    /// `HMSET`: OK.
    Hmset,
    /// `HSETNX`: sets only a new field; 1 or 0.
    Hsetnx,
}

/// `HSET key field value [field value ...]`, `HMSET`, `HSETNX key field value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HSet {
    pub key: Bytes,
    pub pairs: Vec<(Bytes, Bytes)>,
    pub form: HSetForm,
}

impl HSet {
    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        ks.write(&self.key, |w| {
            if let Some(e) = w.live(&self.key, now) {
                match e.hash() {
                    Err(err) => return err.into(),
                    Ok(h) if self.form == HSetForm::Hsetnx && h.get(&self.pairs[0].0).is_some() => {
                        return Reply::Integer(0);
                    }
                    Ok(_) => {}
                }
            }
            let version = ks.next_version();
            match w.edit(&self.key, now, version, Edit::HashSet(self.pairs.clone())) {
                Ok(done) => {
                    w.event(Event::Hashes("hset"), &self.key);
                    match self.form {
                        HSetForm::Hset => Reply::Integer(done.count as i64),
                        HSetForm::Hmset => Reply::Ok,
                        HSetForm::Hsetnx => Reply::Integer(1),
                    }
                }
                Err(e) => e.into(),
            }
        })
    }
}

const W: &[Flag] = &[Flag::Write, Flag::Denyoom, Flag::Fast];
const C: &[Category] = &[Category::Write, Category::Hash, Category::Fast];

impl Definition for HSet {
    const SPECS: &'static [Spec] = &[
        Spec::data("hset", -4, W, C, KeySpec::FIRST, Access::WRITE, "hash", "Set the string value of a hash field", "HSET h f v"),
        Spec::data("hmset", -4, W, C, KeySpec::FIRST, Access::WRITE, "hash", "Set multiple hash fields to multiple values", "HMSET h f v"),
        Spec::data("hsetnx", 4, W, C, KeySpec::FIRST, Access::WRITE, "hash", "Set the value of a hash field, only if the field does not exist", "HSETNX h f v"),
    ];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        let v = a.at_least(3)?;
        if v.len() % 2 == 0 {
            return Err(a.arity());
        }
        let form = match a.cmd {
            "hmset" => HSetForm::Hmset,
            "hsetnx" => HSetForm::Hsetnx,
            _ => HSetForm::Hset,
        };
        Ok(Self {
            key: v[0].clone(),
            pairs: v[1..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
            form,
        })
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(vec![&self.key[..]])
    }
}
