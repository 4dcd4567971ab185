//! A simulated disk whose fsyncs can be held back, so a test can keep writes in flight (with
//! `fsync=always`, no door answers a write before its fsync).

use std::io::{self, Read};
use std::sync::Arc;

use kvs_server::{Engine, FsyncPolicy, Persistence};
use kvs_wal::{LogFile, SimulatedDisk, Storage};
use parking_lot::{Condvar, Mutex};

/// A gate fsync must pass: while it is closed, every sync waits.
#[derive(Debug, Default)]
pub struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn set(&self, closed: bool) {
        *self.closed.lock() = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock();
        while *closed {
            self.opened.wait(&mut closed);
        }
    }
}

/// An engine logging with `fsync=always` to a simulated disk whose fsyncs wait at the returned
/// gate (open to begin with).
pub fn gated_engine() -> (Engine, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let disk = Arc::new(GatedDisk {
        disk: SimulatedDisk::new(),
        gate: gate.clone(),
    });
    let persistence = Persistence::in_dir("gated-disk", FsyncPolicy::Always);
    let engine = Engine::open_in(disk, &persistence).expect("opens");
    (engine, gate)
}

/// A simulated disk whose fsyncs wait at the gate.
#[derive(Debug)]
struct GatedDisk {
    disk: SimulatedDisk,
    gate: Arc<Gate>,
}

struct GatedFile {
    file: Box<dyn LogFile>,
    gate: Arc<Gate>,
}

impl LogFile for GatedFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.append(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.gate.pass();
        self.file.sync()
    }
}

impl Storage for GatedDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        self.disk.list()
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        Ok(Box::new(GatedFile {
            file: self.disk.create(name)?,
            gate: self.gate.clone(),
        }))
    }
    fn open(&self, name: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        self.disk.open(name)
    }
    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.disk.truncate(name, len)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.disk.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.disk.remove(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.disk.sync_dir()
    }
    fn describe(&self, name: &str) -> String {
        self.disk.describe(name)
    }
}
