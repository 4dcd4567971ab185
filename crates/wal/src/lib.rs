//! kvs-wal owns what kvs keeps on disk: an append-only, segmented log of opaque records with
//! group commit and an fsync policy, snapshot files, and recovery from both. Each record is
//! framed with its length and a CRC32C; each file starts with a versioned header. See
//! `docs/wal-format.md` for the byte layout.
//!
//! It knows nothing of keys or values: the server decides what a record means. All file access
//! goes through the narrow [`Storage`] trait, so tests can crash a [`SimulatedDisk`] and lose
//! exactly what was never synced.

mod frame;
mod header;
mod log;
mod recovery;
mod simulated;
mod snapshot;
mod storage;
mod tail;

pub use frame::{Damage, FRAME_HEADER, FrameReader, Item, MARK_LEN, encode as encode_frame};
pub use header::{FORMAT_VERSION, HEADER_LEN, OLDEST_FORMAT_VERSION, segment_name, snapshot_name};
pub use log::{
    Commit, Counters, FLUSH_BOUND, FsyncPolicy, Leader, Log, LogFailed, LogOptions, Progress,
};
pub use recovery::{Recovered, RecoveryError, RecoveryOptions, Replay, recover};
pub use simulated::SimulatedDisk;
pub use snapshot::{SnapshotInfo, SnapshotWriter};
pub use storage::{Directory, LOCK_FILE, LogFile, Storage};
pub use tail::{TailError, read_records};
