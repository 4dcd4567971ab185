use bytes::Bytes;

use super::parse::Args;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::keyspace::Store;
use crate::reply::Reply;

/// `TYPE key`: `string` for every stored value (the only type so far), `none` when missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeOf {
    pub key: Bytes,
}

impl TypeOf {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
        })
    }

    pub fn apply(&self, store: &Store, now: Millis) -> Reply {
        match store.read(&self.key).live(&self.key, now) {
            Some(_) => Reply::Status("string"),
            None => Reply::Status("none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;

    #[test]
    fn string_or_none() {
        let s = Store::new();
        assert_eq!(
            TypeOf { key: "k".into() }.apply(&s, 0),
            Reply::Status("none")
        );
        Set::new("k", "v").apply(&s, 0);
        assert_eq!(
            TypeOf { key: "k".into() }.apply(&s, 0),
            Reply::Status("string")
        );
    }
}
