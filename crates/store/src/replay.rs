//! Recovery's half of the record codec: applying a log or snapshot record to a store, straight
//! to its shards (a replayed change is not a new write, so it is submitted nowhere).

use crate::change::{BadRecord, decode_with};
use crate::effects::{Change, Effects};
use crate::entry::Millis;
use crate::keyspace::Store;

impl Store {
    /// Applies a journal or snapshot record, as recovery does. Entries already expired at `now`
    /// are dropped instead of stored. Versions continue after the highest one seen.
    pub fn replay(&self, record: &[u8], now: Millis) -> Result<(), BadRecord> {
        let Effects {
            revision, changes, ..
        } = decode_with(record, &self.tracking.limits())?;
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
                Change::Meta(name, value) => self.put_meta(name, value),
                Change::Edit {
                    key,
                    version,
                    modified_at,
                    edit,
                } => {
                    self.raise_revision(version);
                    let mut shard = self.shard_at(self.shard_index(&key)).write();
                    // Replay replaces a key of another type, so this cannot be WRONGTYPE.
                    let _ = shard.edit(&key, now, version, modified_at, &edit, true);
                }
                Change::Restamp {
                    key,
                    version,
                    modified_at,
                    expires_at,
                } => {
                    self.raise_revision(version);
                    let mut shard = self.shard_at(self.shard_index(&key)).write();
                    shard.restamp(&key, now, version, modified_at, expires_at);
                }
                Change::Extend(key, edit) => {
                    self.shard_at(self.shard_index(&key))
                        .write()
                        .extend(&key, &edit);
                }
            }
        }
        Ok(())
    }
}
