//! The narrow door through which the log and snapshots touch files. Everything durable goes
//! through [`Storage`]; [`Directory`] is the real one, [`crate::SimulatedDisk`] the one tests crash.
//!
//! The contract both keep: bytes written to a file survive a crash only once that file's
//! [`LogFile::sync`] returned; a created, renamed or removed name survives a crash only once
//! [`Storage::sync_dir`] returned.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A file open for appending.
pub trait LogFile: Send {
    /// Appends all of `bytes` (to the operating system; not yet durable).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
}

/// A directory of named files.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The names of the files in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates `name` empty (replacing any file of that name) and opens it for appending.
    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>>;
    /// Opens `name` for reading; returns the reader and the file's length.
    fn open(&self, name: &str) -> io::Result<(Box<dyn Read + Send>, u64)>;
    /// Cuts `name` to `len` bytes and makes the cut durable.
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes `name`.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes every create, rename and remove so far durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Where the files live, for messages.
    fn describe(&self, name: &str) -> String;
}

/// A real directory on disk, locked against a second kvs process for as long as this value lives.
#[derive(Debug)]
pub struct Directory {
    path: PathBuf,
    /// Holds the exclusive lock on `LOCK`; released when dropped.
    _lock: File,
}

/// The lock file every data directory holds while a server uses it.
pub const LOCK_FILE: &str = "LOCK";

impl Directory {
    /// Opens (creating if needed) the data directory at `path` and takes its lock, failing if
    /// another process holds it.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by another kvs process (its {LOCK_FILE} file is locked)",
                        path.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(Self { path, _lock: lock })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

struct DirFile(File);

impl LogFile for DirFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Storage for Directory {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let file = File::create(self.path.join(name))?;
        Ok(Box::new(DirFile(file)))
    }

    fn open(&self, name: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let file = File::open(self.path.join(name))?;
        let len = file.metadata()?.len();
        Ok((Box::new(file), len))
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(self.path.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path.join(from), self.path.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path.join(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    fn describe(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_process_cannot_take_the_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Directory::open(dir.path()).expect("first opener");
        let second = Directory::open(dir.path()).expect_err("second opener");
        assert!(second.to_string().contains("in use"), "{second}");
        drop(first);
        Directory::open(dir.path()).expect("free again once the first is gone");
    }

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Directory::open(dir.path()).expect("open");
        let mut file = storage.create("a.tmp").expect("create");
        file.append(b"hello world").expect("append");
        file.sync().expect("sync");
        storage.rename("a.tmp", "a").expect("rename");
        storage.sync_dir().expect("sync dir");
        storage.truncate("a", 5).expect("truncate");
        let (mut reader, len) = storage.open("a").expect("open");
        let mut text = String::new();
        reader.read_to_string(&mut text).expect("read");
        assert_eq!((text.as_str(), len), ("hello", 5));
        let mut names = storage.list().expect("list");
        names.sort();
        assert_eq!(names, [LOCK_FILE, "a"]);
        storage.remove("a").expect("remove");
        assert_eq!(storage.list().expect("list"), [LOCK_FILE]);
    }
}
