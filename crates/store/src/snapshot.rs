//! Reading the whole keyspace out for a snapshot while writers keep going.
//!
//! Each shard is read in chunks of keys, bucket by bucket, each chunk under the shard's read lock
//! for a moment, so a writer never waits for more than one chunk. Should the shard's table grow
//! between two chunks (its layout epoch changes), the walk of that shard starts over: keys may be
//! written twice, the later copy being the newer, but none is missed. The result is fuzzy: a key changed
//! during the walk may be caught before or after the change. That is enough because recovery
//! replays every journal record from the point the snapshot began, and each record sets a key
//! to its whole resulting state, so replaying a change the snapshot already holds is harmless.

use crate::change;
use crate::entry::Millis;
use crate::keyspace::Store;
use crate::shard::Walk;

/// Keys per chunk: small enough that holding a shard's read lock for one chunk is brief.
const CHUNK_KEYS: usize = 256;

impl Store {
    /// Hands `sink` the live keyspace at `now` as a series of records in the journal's layout
    /// (puts only), one per chunk. `sink` runs with no lock held. Returns how many keys it wrote.
    pub fn snapshot<E>(
        &self,
        now: Millis,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut buf = Vec::new();
        let mut written = 0;
        for index in 0..self.shard_count() {
            let mut from = 0;
            let mut epoch = None;
            loop {
                buf.clear();
                buf.extend_from_slice(&self.revision().to_le_bytes());
                let walk = {
                    let shard = self.shard_at(index).read();
                    if epoch.is_some_and(|e| e != shard.layout_epoch()) {
                        from = 0;
                    }
                    epoch = Some(shard.layout_epoch());
                    let mut seen = 0;
                    shard.scan(from, |key, entry| {
                        seen += 1;
                        if entry.is_live(now) {
                            change::encode_put(&mut buf, key, entry);
                            written += 1;
                        }
                        seen < CHUNK_KEYS
                    })
                };
                if buf.len() > 8 {
                    sink(&buf)?;
                }
                match walk {
                    Walk::Next(bucket) => from = bucket,
                    Walk::Done => break,
                }
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, Reply, Store};
    use bytes::Bytes;

    fn run(store: &Store, line: &str, now: u64) -> Reply {
        let argv: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        store.execute(Command::from_argv(&argv).expect(line), now)
    }

    #[test]
    fn a_snapshot_replays_into_an_equal_store() {
        let store = Store::with_shards(4);
        for i in 0..4_000 {
            run(&store, &format!("SET key:{i} value:{i}"), 10);
        }
        run(&store, "SET short 1 PX 5", 10);
        run(&store, "SET long 2 PX 100000", 10);
        let mut records = Vec::new();
        let keys = store
            .snapshot(20, |r| {
                records.push(r.to_vec());
                Ok::<_, ()>(())
            })
            .expect("snapshot");
        assert_eq!(keys, 4_001, "every live key, and not the expired one");
        // About 1,000 keys per shard: several chunks each, never one record per shard.
        assert!(records.len() >= 12, "{} records", records.len());
        let copy = Store::with_shards(16);
        for record in &records {
            copy.replay(record, 20).expect("replays");
        }
        assert_eq!(copy.len(20), 4_001);
        assert_eq!(
            run(&copy, "GET key:777", 20),
            run(&store, "GET key:777", 20)
        );
        assert_eq!(run(&copy, "PTTL long", 20), run(&store, "PTTL long", 20));
        assert_eq!(copy.revision(), store.revision());
    }
}
