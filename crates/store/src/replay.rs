//! Recovery's half of the record codec: applying a log or snapshot record to a store, straight
//! to its shards (a replayed change is not a new write, so it is submitted nowhere).

use crate::change::{BadRecord, decode};
use crate::effects::{Change, Effects};
use crate::entry::Millis;
use crate::keyspace::Store;

impl Store {
    /// Applies a journal or snapshot record, as recovery does. Entries already expired at `now`
    /// are dropped instead of stored. Versions continue after the highest one seen.
    pub fn replay(&self, record: &[u8], now: Millis) -> Result<(), BadRecord> {
        let Effects {
            revision, changes, ..
        } = decode(record)?;
        self.raise_revision(revision);
        for change in changes {
            match change {
                Change::Put(key, entry) => {
                    self.raise_revision(entry.version);
                    let mut shard = self.shard_at(self.shard_index(&key)).write();
                    if entry.is_live(now) {
                        shard.put(key, entry);
                    } else {
                        shard.remove(&key);
                    }
                }
                Change::Remove(key, _) => {
                    self.shard_at(self.shard_index(&key)).write().remove(&key);
                }
                Change::Flush => self.clear(),
            }
        }
        Ok(())
    }
}
