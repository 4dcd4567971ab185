use bytes::Bytes;

use super::parse::Args;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::keyspace::Store;
use crate::reply::Reply;

/// `STRLEN key`: the value's length in bytes, 0 for a missing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strlen {
    pub key: Bytes,
}

impl Strlen {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        Ok(Self {
            key: a.exactly(1)?[0].clone(),
        })
    }

    pub fn apply(&self, store: &Store, now: Millis) -> Reply {
        let len = store
            .read(&self.key)
            .live(&self.key, now)
            .map_or(0, |e| e.value.len());
        Reply::Integer(len as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;

    #[test]
    fn counts_bytes() {
        let s = Store::new();
        assert_eq!(Strlen { key: "k".into() }.apply(&s, 0), Reply::Integer(0));
        Set::new("k", "héllo").apply(&s, 0);
        assert_eq!(Strlen { key: "k".into() }.apply(&s, 0), Reply::Integer(6));
    }
}
