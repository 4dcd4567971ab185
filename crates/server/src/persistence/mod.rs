//! Durability: where the store and the write-ahead log meet. At startup the data directory is
//! locked and recovered into the store (newest snapshot, then the log after it); from then on
//! the log is the store's commit pipeline: the effects of every write are appended to it under
//! the shard locks of the keys they change, and snapshots are
//! written on a thread of their own while writers go on.

mod wal_commit;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kvs_store::Store;
use kvs_wal::{
    Directory, Leader, Log, LogOptions, Progress, RecoveryError, RecoveryOptions, Replay,
    SnapshotWriter, Storage, recover,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::config::Persistence;
use crate::engine::now_millis;
use crate::feed::Feed;
use wal_commit::WalCommit;

/// Why the data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    #[error("cannot use data directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot recover the data in {path}: {source}{hint}")]
    Recovery {
        path: String,
        source: RecoveryError,
        hint: &'static str,
    },
    #[error("cannot open the log in {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
}

/// The state of snapshots, as `INFO persistence` and the admin route show it.
#[derive(Clone, Debug, Default)]
pub struct SnapshotStatus {
    pub in_progress: bool,
    /// Unix seconds of the last snapshot that completed (or of startup, as Redis reports).
    pub last_save: u64,
    pub last_ok: bool,
    pub last_error: Option<String>,
    pub last_millis: u64,
    pub last_bytes: u64,
    pub last_keys: u64,
    /// The LSN the last snapshot resumes at: changes since then are `next_lsn - last_lsn`.
    pub last_lsn: u64,
}

/// What a finished snapshot reports.
#[derive(Clone, Debug)]
pub struct SnapshotDone {
    pub keys: u64,
    pub bytes: u64,
    pub millis: u64,
}

/// The durable half of an engine.
#[derive(Debug)]
pub struct Durability {
    log: Arc<Log>,
    dir: PathBuf,
    status: Mutex<SnapshotStatus>,
    /// Signalled by the log when it has grown enough to deserve a snapshot; taken by the server.
    grown: Mutex<Option<mpsc::UnboundedReceiver<()>>>,
}

struct Loader<'a> {
    store: &'a Store,
    now: u64,
}

impl Replay for Loader<'_> {
    fn snapshot_record(&mut self, payload: &[u8]) -> Result<(), String> {
        self.store
            .replay(payload, self.now)
            .map_err(|e| e.to_string())
    }

    fn log_record(&mut self, _lsn: u64, payload: &[u8]) -> Result<(), String> {
        self.snapshot_record(payload)
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Durability {
    /// Locks and recovers the data directory into `store` (blocking), then attaches the log to
    /// it as its journal.
    pub fn open(
        config: &Persistence,
        store: &mut Store,
        feed: Arc<Feed>,
    ) -> Result<Self, PersistenceError> {
        let dir =
            Directory::open(&config.data_dir).map_err(|source| PersistenceError::Directory {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        Self::open_in(Arc::new(dir), config, store, feed)
    }

    /// [`Durability::open`] on `storage` instead of the directory `config` names (which is
    /// then only shown in messages): how tests run a server on a disk that fails or crashes.
    pub fn open_in(
        storage: Arc<dyn Storage>,
        config: &Persistence,
        store: &mut Store,
        feed: Arc<Feed>,
    ) -> Result<Self, PersistenceError> {
        let path = config.data_dir.display().to_string();
        let started = Instant::now();
        let options = RecoveryOptions {
            truncate_corrupt: config.truncate_corrupt_log,
        };
        let mut loader = Loader {
            store,
            now: now_millis(),
        };
        let recovered = recover(&*storage, options, &mut loader).map_err(|source| {
            let hint = match &source {
                RecoveryError::Corrupt {
                    truncatable: true, ..
                } => {
                    ". To start anyway, losing that record and every later one, back up the \
                     directory and run `kvs serve --truncate-corrupt-log`"
                }
                RecoveryError::Corrupt { .. } => ". Restore the data directory from a backup",
                _ => "",
            };
            PersistenceError::Recovery {
                path: path.clone(),
                source,
                hint,
            }
        })?;
        for warning in &recovered.warnings {
            tracing::warn!("{warning}");
        }
        let keys = store.len(now_millis());
        let elapsed = started.elapsed();
        let rate = keys as f64 / elapsed.as_secs_f64().max(1e-6);
        tracing::info!(
            "recovered {keys} keys in {} ms ({rate:.0} keys/s) from {}: {}{} log records",
            elapsed.as_millis(),
            path,
            recovered
                .snapshot
                .as_ref()
                .map(|(name, records)| format!("snapshot {name} ({records} records) + "))
                .unwrap_or_default(),
            recovered.log_records,
        );
        let (grown_tx, grown_rx) = mpsc::unbounded_channel();
        let log = Log::open(
            storage,
            recovered.next_lsn,
            recovered.log_bytes,
            LogOptions {
                fsync: config.fsync,
                // The log thread writes and fsyncs each batch, so connection threads never block
                // on the disk (measured against callers leading: docs/benchmarks.md).
                leader: Leader::LogThread,
                segment_bytes: config.segment_size,
                snapshot_after: config.snapshot_after,
            },
            move || {
                let _ = grown_tx.send(());
            },
        )
        .map_err(|source| PersistenceError::Log {
            path: path.clone(),
            source,
        })?;
        let log = Arc::new(log);
        let listening = Arc::downgrade(&feed);
        log.on_acknowledged(move |acknowledged| {
            if let Some(feed) = listening.upgrade() {
                feed.publish(acknowledged);
            }
        });
        store.set_commit(Arc::new(WalCommit {
            log: log.clone(),
            feed,
        }));
        let status = SnapshotStatus {
            last_save: unix_seconds(),
            last_ok: true,
            last_lsn: recovered.next_lsn - recovered.log_records.min(recovered.next_lsn),
            ..SnapshotStatus::default()
        };
        Ok(Self {
            log,
            dir: config.data_dir.clone(),
            status: Mutex::new(status),
            grown: Mutex::new(Some(grown_rx)),
        })
    }

    /// The log, for waiting on acknowledgements.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The data directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// How far the log has come, and whether it failed.
    pub fn progress(&self) -> Progress {
        self.log.progress()
    }

    /// The snapshot state.
    pub fn status(&self) -> SnapshotStatus {
        self.status.lock().clone()
    }

    /// The signal that the log has grown enough for a snapshot; `None` once taken.
    pub(crate) fn take_growth_signal(&self) -> Option<mpsc::UnboundedReceiver<()>> {
        self.grown.lock().take()
    }

    /// Marks a snapshot as running; `false` if one already is.
    pub(crate) fn try_begin(&self) -> bool {
        let mut status = self.status.lock();
        !std::mem::replace(&mut status.in_progress, true)
    }

    /// Writes a snapshot of `store` (blocking; run it off the async workers), after
    /// [`Durability::try_begin`] returned `true`.
    pub(crate) fn snapshot(&self, store: &Store) -> Result<SnapshotDone, String> {
        let started = Instant::now();
        let result = (|| {
            let lsn = self.log.begin_snapshot();
            let mut writer = SnapshotWriter::create(self.log.storage(), lsn)?;
            let keys = store.snapshot(now_millis(), |record| writer.append(record))?;
            let info = writer.finish()?;
            self.log.remove_covered(lsn)?;
            std::io::Result::Ok((keys, info))
        })();
        let millis = started.elapsed().as_millis() as u64;
        let mut status = self.status.lock();
        status.in_progress = false;
        match result {
            Ok((keys, info)) => {
                tracing::info!(
                    "snapshot {} written: {keys} keys, {} bytes in {millis} ms",
                    info.name,
                    info.bytes
                );
                status.last_save = unix_seconds();
                status.last_ok = true;
                status.last_error = None;
                status.last_millis = millis;
                status.last_bytes = info.bytes;
                status.last_keys = keys;
                status.last_lsn = info.lsn;
                Ok(SnapshotDone {
                    keys,
                    bytes: info.bytes,
                    millis,
                })
            }
            Err(e) => {
                let why = format!("writing a snapshot failed: {e}");
                tracing::error!("{why}");
                status.last_ok = false;
                status.last_error = Some(why.clone());
                Err(why)
            }
        }
    }

    /// Writes and syncs what the log holds, then stops it.
    pub fn close(&self) {
        self.log.close();
    }
}
