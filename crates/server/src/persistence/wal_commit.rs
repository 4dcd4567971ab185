//! The write-ahead log as the store's commit pipeline: each submission of effects becomes one log
//! record, and its LSN is the ticket the answer waits for and the change's position in the feed.

use std::sync::Arc;

use kvs_store::change;
use kvs_store::{Commit, Effects, Ticket};
use kvs_wal::Log;

use crate::feed::Feed;

#[derive(Debug)]
pub(crate) struct WalCommit {
    pub(crate) log: Arc<Log>,
    /// Told each record in LSN order, under the log's append mutex.
    pub(crate) feed: Arc<Feed>,
}

impl Commit for WalCommit {
    fn submit(&self, effects: &Effects) -> Ticket {
        let mut record = Vec::with_capacity(change::encoded_len(effects));
        change::encode(effects, &mut record);
        match self
            .log
            .append_with(&record, |lsn| self.feed.record(lsn, effects))
        {
            Ok(lsn) => Ticket::Queued(lsn),
            Err(_) => Ticket::Refused,
        }
    }
}
