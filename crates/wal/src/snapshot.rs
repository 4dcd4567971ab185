//! Writing a snapshot: a header, framed records, a trailer with the record count, all to a
//! temporary name; then fsync, an atomic rename, a directory fsync, and only then the removal of
//! older snapshots. A crash at any step leaves either the old snapshot or the new one complete.

use std::sync::Arc;

use crate::frame;
use crate::header::{self, Kind, TEMP_SUFFIX};
use crate::storage::{LogFile, Storage};

/// Bytes buffered before they are handed to the file.
const CHUNK: usize = 1 << 20;

/// A snapshot being written. Dropping it unfinished leaves only a temporary file, which the next
/// recovery removes.
pub struct SnapshotWriter {
    storage: Arc<dyn Storage>,
    file: Box<dyn LogFile>,
    lsn: u64,
    buf: Vec<u8>,
    records: u64,
    bytes: u64,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("lsn", &self.lsn)
            .field("records", &self.records)
            .finish()
    }
}

/// A finished snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    /// The first LSN it does not contain.
    pub lsn: u64,
    pub records: u64,
    pub bytes: u64,
}

impl SnapshotWriter {
    /// Starts the snapshot from which log replay resumes at `lsn`.
    pub fn create(storage: Arc<dyn Storage>, lsn: u64) -> std::io::Result<Self> {
        let name = format!("{}{TEMP_SUFFIX}", header::snapshot_name(lsn));
        let file = storage.create(&name)?;
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(&header::encode(Kind::Snapshot, lsn));
        Ok(Self {
            storage,
            file,
            lsn,
            buf,
            records: 0,
            bytes: 0,
        })
    }

    /// Adds one record.
    pub fn append(&mut self, payload: &[u8]) -> std::io::Result<()> {
        frame::encode(&mut self.buf, payload);
        self.records += 1;
        if self.buf.len() >= CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> std::io::Result<()> {
        self.file.append(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Seals the snapshot and makes it the one recovery starts from; removes older snapshots.
    pub fn finish(mut self) -> std::io::Result<SnapshotInfo> {
        frame::encode_trailer(&mut self.buf, self.records);
        self.drain()?;
        self.file.sync()?;
        let name = header::snapshot_name(self.lsn);
        self.storage
            .rename(&format!("{name}{TEMP_SUFFIX}"), &name)?;
        self.storage.sync_dir()?;
        for old in self.storage.list()? {
            if let Some((Kind::Snapshot, lsn)) = header::parse_name(&old)
                && lsn < self.lsn
            {
                self.storage.remove(&old)?;
            }
        }
        self.storage.sync_dir()?;
        Ok(SnapshotInfo {
            name,
            lsn: self.lsn,
            records: self.records,
            bytes: self.bytes,
        })
    }
}
