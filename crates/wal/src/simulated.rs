//! A disk in memory that can crash: [`SimulatedDisk::crash`] keeps exactly what the
//! [`Storage`] contract promises (synced bytes, synced directory entries) and an arbitrary part of
//! the rest, the way a power cut does. It can also be told to fail writes, like a full disk.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::storage::{LogFile, Storage};

#[derive(Debug, Default)]
struct FileState {
    data: Vec<u8>,
    /// Bytes guaranteed to survive a crash.
    synced: usize,
}

#[derive(Debug, Default)]
struct Disk {
    files: HashMap<u64, FileState>,
    /// Names as the running program sees them.
    names: BTreeMap<String, u64>,
    /// Names as they were at the last directory sync: what a crash leaves.
    durable_names: BTreeMap<String, u64>,
    next_id: u64,
    /// When set, every append and sync fails with this message.
    failing: Option<String>,
    /// Bumped by each crash; handles from an earlier generation belong to the crashed process
    /// and every use of them fails.
    generation: u64,
}

/// An in-memory [`Storage`] for crash and fault tests. Clones share the same disk.
#[derive(Clone, Debug, Default)]
pub struct SimulatedDisk {
    disk: Arc<Mutex<Disk>>,
    generation: u64,
}

struct SimFile {
    disk: Arc<Mutex<Disk>>,
    id: u64,
    generation: u64,
}

impl SimFile {
    fn check(disk: &Disk, generation: u64) -> io::Result<()> {
        if disk.generation != generation {
            return Err(io::Error::other("the process using this disk crashed"));
        }
        match &disk.failing {
            Some(why) => Err(io::Error::other(why.clone())),
            None => Ok(()),
        }
    }
}

impl LogFile for SimFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        Self::check(&disk, self.generation)?;
        if let Some(file) = disk.files.get_mut(&self.id) {
            file.data.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        Self::check(&disk, self.generation)?;
        if let Some(file) = disk.files.get_mut(&self.id) {
            file.synced = file.data.len();
        }
        Ok(())
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name}"))
}

impl SimulatedDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a power cut: unsynced directory changes are undone, and each file keeps its
    /// synced bytes plus a prefix of the unsynced ones whose length `seed` picks (from none to
    /// all), so a record can be cut anywhere. Returns the disk as the restarted process sees
    /// it; this handle, its clones and its open files fail from now on.
    pub fn crash(&self, seed: u64) -> SimulatedDisk {
        let mut disk = self.disk.lock();
        disk.generation += 1;
        let mut state = seed | 1;
        let mut next = move || {
            // xorshift64: enough to pick cut points reproducibly.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        disk.names = disk.durable_names.clone();
        let live: Vec<u64> = disk.names.values().copied().collect();
        disk.files.retain(|id, _| live.contains(id));
        let mut ids: Vec<u64> = disk.files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(file) = disk.files.get_mut(&id) {
                let unsynced = file.data.len() - file.synced;
                let kept = (next() % (unsynced as u64 + 1)) as usize;
                file.data.truncate(file.synced + kept);
                file.synced = file.data.len();
            }
        }
        disk.failing = None;
        SimulatedDisk {
            disk: self.disk.clone(),
            generation: disk.generation,
        }
    }

    fn check(&self) -> io::Result<()> {
        SimFile::check(&self.disk.lock(), self.generation)
    }

    /// Makes every later append and sync fail with `why` (`None` heals the disk).
    pub fn fail_writes(&self, why: Option<&str>) {
        self.disk.lock().failing = why.map(str::to_owned);
    }

    /// The current bytes of `name`, for tests that damage files.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let disk = self.disk.lock();
        let id = disk.names.get(name)?;
        disk.files.get(id).map(|f| f.data.clone())
    }

    /// Replaces the bytes of `name` (durably), for tests that damage files.
    pub fn overwrite(&self, name: &str, bytes: Vec<u8>) {
        let mut disk = self.disk.lock();
        let id = disk.next_id;
        disk.next_id += 1;
        let synced = bytes.len();
        disk.files.insert(
            id,
            FileState {
                data: bytes,
                synced,
            },
        );
        disk.names.insert(name.to_owned(), id);
        disk.durable_names.insert(name.to_owned(), id);
    }
}

impl Storage for SimulatedDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        self.check()?;
        Ok(self.disk.lock().names.keys().cloned().collect())
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let mut disk = self.disk.lock();
        SimFile::check(&disk, self.generation)?;
        let id = disk.next_id;
        disk.next_id += 1;
        disk.files.insert(id, FileState::default());
        disk.names.insert(name.to_owned(), id);
        Ok(Box::new(SimFile {
            disk: self.disk.clone(),
            id,
            generation: self.generation,
        }))
    }

    fn open(&self, name: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        self.check()?;
        let bytes = self.contents(name).ok_or_else(|| not_found(name))?;
        let len = bytes.len() as u64;
        Ok((Box::new(io::Cursor::new(bytes)), len))
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock();
        SimFile::check(&disk, self.generation)?;
        let id = *disk.names.get(name).ok_or_else(|| not_found(name))?;
        if let Some(file) = disk.files.get_mut(&id) {
            file.data.truncate(len as usize);
            file.synced = file.synced.min(file.data.len());
        }
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut disk = self.disk.lock();
        SimFile::check(&disk, self.generation)?;
        let id = disk.names.remove(from).ok_or_else(|| not_found(from))?;
        disk.names.insert(to.to_owned(), id);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut disk = self.disk.lock();
        SimFile::check(&disk, self.generation)?;
        disk.names.remove(name).ok_or_else(|| not_found(name))?;
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        SimFile::check(&disk, self.generation)?;
        disk.durable_names = disk.names.clone();
        Ok(())
    }

    fn describe(&self, name: &str) -> String {
        format!("simulated:{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_what_was_synced_and_drops_unsynced_names() {
        let disk = SimulatedDisk::new();
        let mut kept = disk.create("kept").expect("create");
        kept.append(b"durable").expect("append");
        kept.sync().expect("sync");
        disk.sync_dir().expect("sync dir");
        kept.append(b" maybe").expect("append");
        let mut lost = disk.create("lost").expect("create");
        lost.append(b"x").expect("append");
        lost.sync().expect("sync");
        kept.append(b"!").expect("append");
        let disk = disk.crash(7);
        assert!(
            kept.append(b"after").is_err(),
            "the crashed process's files are dead"
        );
        assert_eq!(disk.list().expect("list"), ["kept"]);
        let data = disk.contents("kept").expect("kept survives");
        assert!(data.starts_with(b"durable") && b"durable maybe!".starts_with(&data));
    }

    #[test]
    fn failing_writes_fail_until_healed() {
        let disk = SimulatedDisk::new();
        let mut file = disk.create("f").expect("create");
        disk.fail_writes(Some("No space left on device"));
        let err = file.append(b"x").expect_err("full disk");
        assert!(err.to_string().contains("No space"));
        disk.fail_writes(None);
        file.append(b"x").expect("healed");
    }
}
