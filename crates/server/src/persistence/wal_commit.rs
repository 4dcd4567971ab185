//! The write-ahead log as the store's commit pipeline: each submission of effects becomes one log
//! record, and its LSN is the ticket the answer waits for.

use std::sync::Arc;

use kvs_store::change;
use kvs_store::{Commit, Effects, Ticket};
use kvs_wal::Log;

#[derive(Debug)]
pub(crate) struct WalCommit {
    pub(crate) log: Arc<Log>,
}

impl Commit for WalCommit {
    fn submit(&self, effects: &Effects) -> Ticket {
        let mut record = Vec::with_capacity(change::encoded_len(effects));
        change::encode(effects, &mut record);
        match self.log.append(&record) {
            Ok(lsn) => Ticket::Queued(lsn),
            Err(_) => Ticket::Refused,
        }
    }
}
