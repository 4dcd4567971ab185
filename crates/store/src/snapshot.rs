//! Reading the whole keyspace out for a snapshot while writers keep going.
//!
//! Each shard is read in chunks of keys, bucket by bucket, each chunk under the shard's read lock
//! for a moment, so a writer never waits for more than one chunk. Should the shard's table grow
//! between two chunks (its layout epoch changes), the walk of that shard starts over: keys may be
//! written twice, the later copy being the newer, but none is missed. The result is fuzzy: a key changed
//! during the walk may be caught before or after the change. That is enough because recovery
//! replays every journal record from the point the snapshot began, and each record sets a key
//! to its whole resulting state, so replaying a change the snapshot already holds is harmless.
//! A collection's record is an edit instead, and carries the version it made: replay skips the
//! edits a collection's snapshot already holds.
//!
//! A collection is taken whole under the lock only as a shared handle (no copy): its elements are
//! encoded after the lock is released, in records of [`CHUNK_ELEMENTS`] elements, a put with the
//! first chunk and extensions with the rest. Should a writer change it meanwhile, the writer
//! copies it (copy on write), so the snapshot still sees the collection as it was.

use bytes::Bytes;

use crate::change;
use crate::entry::{Entry, Millis};
use crate::keyspace::Store;
use crate::shard::Walk;

/// Keys per chunk: small enough that holding a shard's read lock for one chunk is brief.
const CHUNK_KEYS: usize = 256;
/// Elements of a collection per record.
const CHUNK_ELEMENTS: usize = 1024;

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
        let mut collections: Vec<(Bytes, Entry)> = Vec::new();
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
                            if entry.collection().is_some() {
                                collections.push((Bytes::copy_from_slice(key), entry.to_entry()));
                            } else {
                                change::encode_put(&mut buf, key, entry);
                            }
                            written += 1;
                        }
                        seen < CHUNK_KEYS
                    })
                };
                if buf.len() > 8 {
                    sink(&buf)?;
                }
                for (key, entry) in collections.drain(..) {
                    self.snapshot_collection(&key, &entry, &mut sink)?;
                }
                match walk {
                    Walk::Next(bucket) => from = bucket,
                    Walk::Done => break,
                }
            }
        }
        // The server's state kept beside the keys, one record for each piece.
        for (name, value) in self.all_meta() {
            buf.clear();
            buf.extend_from_slice(&self.revision().to_le_bytes());
            change::encode_meta(&mut buf, &name, &value);
            sink(&buf)?;
        }
        Ok(written)
    }

    /// Hands `sink` the records of one collection: its put with the first chunk of elements,
    /// then one record per further chunk.
    fn snapshot_collection<E>(
        &self,
        key: &[u8],
        entry: &Entry,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let view = entry.view();
        let Some(collection) = view.collection() else {
            return Ok(());
        };
        let mut chunks = collection.chunks(CHUNK_ELEMENTS);
        let mut buf = self.revision().to_le_bytes().to_vec();
        change::encode_put_head(&mut buf, key, view, chunks.next().as_ref());
        sink(&buf)?;
        for chunk in chunks {
            buf.truncate(8);
            change::encode_extend(&mut buf, key, &chunk);
            sink(&buf)?;
        }
        Ok(())
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

    #[test]
    fn server_state_beside_the_keys_survives_a_snapshot_and_a_flush() {
        let store = Store::with_shards(4);
        run(&store, "SET k v", 10);
        let txn = crate::Transaction::lock(&store, None);
        txn.set_meta(
            Bytes::from_static(b"functions"),
            Bytes::from_static(b"code"),
        );
        let _ = txn.commit();
        run(&store, "FLUSHALL", 10);
        assert_eq!(store.meta(b"functions").as_deref(), Some(&b"code"[..]));
        let mut records = Vec::new();
        store
            .snapshot(20, |r| {
                records.push(r.to_vec());
                Ok::<_, ()>(())
            })
            .expect("snapshot");
        let copy = Store::with_shards(2);
        for record in &records {
            copy.replay(record, 20).expect("replays");
        }
        assert_eq!(copy.meta(b"functions").as_deref(), Some(&b"code"[..]));
        assert_eq!(copy.meta(b"other"), None);
    }
}
