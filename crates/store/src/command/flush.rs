use super::parse::{Args, is};
use crate::entry::Millis;
use crate::error::CommandError;
use crate::keyspace::Store;
use crate::reply::Reply;

/// `FLUSHDB` / `FLUSHALL [ASYNC|SYNC]`: remove every key (there is one database).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flush;

impl Flush {
    pub(crate) fn parse(a: &Args<'_>) -> Result<Self, CommandError> {
        match a.args {
            [] => Ok(Flush),
            [mode] if is(mode, "ASYNC") || is(mode, "SYNC") => Ok(Flush),
            _ => Err(CommandError::Syntax),
        }
    }

    pub fn apply(&self, store: &Store, _now: Millis) -> Reply {
        store.clear();
        Reply::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;

    #[test]
    fn empties_the_store() {
        let s = Store::new();
        Set::new("a", "1").apply(&s, 0);
        assert_eq!(Flush.apply(&s, 0), Reply::Ok);
        assert_eq!(s.held(), 0);
    }
}
