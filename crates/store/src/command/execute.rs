//! Running commands on the store: one command as one [`Call`], or a `MULTI`/`EXEC` block as one
//! [`Transaction`]. Both hand back the reply together with the ticket its writes wait for.

use bytes::Bytes;

use super::Command;
use crate::access::{Call, Keyspace, Transaction};
use crate::effects::Ticket;
use crate::entry::Millis;
use crate::keyspace::Store;
use crate::reply::Reply;

/// What running something on the store gave: its answer, and the ticket that must be durable
/// before the answer may be sent (`None` when it wrote nothing).
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Applied<T> {
    pub value: T,
    pub ticket: Option<Ticket>,
}

/// A key under WATCH and the version it had when watched (`None`: absent).
pub type Watched = (Bytes, Option<u64>);

impl Transaction<'_> {
    /// Whether every watched key still has the version it had when watched, at `now`; the
    /// transaction must hold their shards.
    pub fn unchanged(&self, watched: &[Watched], now: Millis) -> bool {
        watched.iter().all(|(key, version)| {
            self.read(key, |shard| shard.peek(key, now).map(|e| e.version)) == *version
        })
    }
}

impl Store {
    /// Applies one command at time `now`.
    pub fn apply(&self, command: Command, now: Millis) -> Applied<Reply> {
        let call = Call::new(self);
        let value = command.apply(&call, now);
        Applied {
            value,
            ticket: call.finish(),
        }
    }

    /// Applies one command at time `now` and returns only its reply: for a store without a
    /// commit pipeline, where there is nothing to wait for.
    pub fn execute(&self, command: Command, now: Millis) -> Reply {
        let applied = self.apply(command, now);
        debug_assert!(applied.ticket.is_none(), "a durable write's ticket dropped");
        applied.value
    }

    /// The version of the live entry under `key` at `now`, if any: what `WATCH` remembers.
    pub fn version_of(&self, key: &[u8], now: Millis) -> Option<u64> {
        self.read(key, |shard| shard.peek(key, now).map(|e| e.version))
    }

    /// Runs `commands` as one block no other client can interleave with (`MULTI`/`EXEC`): the
    /// write locks of every shard they touch, and of every watched key, are taken first, in index
    /// order. If a watched key's version differs from the one remembered, nothing runs and the
    /// answer is `None`. The block's effects are submitted as one.
    pub fn apply_block(
        &self,
        commands: Vec<Command>,
        watched: &[Watched],
        now: Millis,
    ) -> Option<Applied<Vec<Reply>>> {
        let mut keys: Option<Vec<&[u8]>> = Some(watched.iter().map(|(k, _)| &k[..]).collect());
        for command in &commands {
            match (command.keys(), keys.as_mut()) {
                (Some(more), Some(all)) => all.extend(more),
                _ => keys = None,
            }
        }
        let txn = Transaction::lock(self, keys.as_deref());
        if !txn.unchanged(watched, now) {
            return None;
        }
        let value = commands.into_iter().map(|c| c.apply(&txn, now)).collect();
        Some(Applied {
            value,
            ticket: txn.commit(),
        })
    }
}
