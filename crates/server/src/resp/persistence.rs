//! SAVE, BGSAVE, LASTSAVE and the `Persistence` section of INFO, with Redis's replies. A kvs
//! snapshot never stops other clients: SAVE only makes its own client wait until it is written.

use kvs_protocol::resp::Frame;
use tokio::sync::oneshot;

use crate::engine::{Engine, SnapshotRefused};
use crate::persistence::SnapshotDone;

/// A snapshot the client waits for before its reply (SAVE).
pub(crate) type Awaited = oneshot::Receiver<Result<SnapshotDone, String>>;

/// `SAVE`: starts a snapshot whose completion answers this client.
pub(crate) fn save(engine: &std::sync::Arc<Engine>) -> Result<Awaited, Frame> {
    engine.start_snapshot().map_err(|e| match e {
        SnapshotRefused::InProgress => Frame::err("Background save already in progress"),
        other => Frame::err(other.to_string()),
    })
}

/// The reply to SAVE once its snapshot is done.
pub(crate) async fn saved(awaited: Awaited) -> Frame {
    match awaited.await {
        Ok(Ok(_)) => Frame::ok(),
        Ok(Err(why)) => Frame::err(&why),
        Err(_) => Frame::err("the snapshot stopped before it finished"),
    }
}

/// `BGSAVE [SCHEDULE]`.
pub(crate) fn bgsave(engine: &std::sync::Arc<Engine>) -> Frame {
    match engine.start_snapshot() {
        Ok(_) => Frame::Simple("Background saving started".into()),
        Err(SnapshotRefused::InProgress) => Frame::err("Background save already in progress"),
        Err(other) => Frame::err(other.to_string()),
    }
}

/// `LASTSAVE`: Unix seconds of the last completed snapshot (of startup before the first).
pub(crate) fn lastsave(engine: &Engine) -> Frame {
    let at = engine
        .durability()
        .map_or_else(|| engine.started_unix(), |d| d.status().last_save);
    Frame::Integer(at as i64)
}

/// The lines of INFO's `Persistence` section.
pub(crate) fn info(engine: &Engine) -> Vec<(String, String)> {
    let kv = |k: &str, v: String| (k.to_owned(), v);
    let Some(d) = engine.durability() else {
        return vec![
            kv("loading", "0".into()),
            kv("rdb_changes_since_last_save", "0".into()),
            kv("rdb_bgsave_in_progress", "0".into()),
            kv("rdb_last_save_time", engine.started_unix().to_string()),
            kv("aof_enabled", "0".into()),
            kv("kvs_persistence", "in-memory".into()),
        ];
    };
    let status = d.status();
    let progress = d.progress();
    let log = d.log();
    let next = log.next_lsn();
    let ok = |good: bool| if good { "ok" } else { "err" }.to_owned();
    vec![
        kv("loading", "0".into()),
        kv(
            "rdb_changes_since_last_save",
            next.saturating_sub(status.last_lsn).to_string(),
        ),
        kv(
            "rdb_bgsave_in_progress",
            u8::from(status.in_progress).to_string(),
        ),
        kv("rdb_last_save_time", status.last_save.to_string()),
        kv("rdb_last_bgsave_status", ok(status.last_ok)),
        kv(
            "rdb_last_bgsave_time_sec",
            (status.last_millis / 1000).to_string(),
        ),
        kv("aof_enabled", "1".into()),
        kv("aof_rewrite_in_progress", "0".into()),
        kv("aof_last_write_status", ok(progress.failed.is_none())),
        kv("kvs_persistence", "log+snapshots".into()),
        kv("kvs_data_dir", d.dir().display().to_string()),
        kv("kvs_fsync", log.policy().to_string()),
        kv("kvs_log_next_lsn", next.to_string()),
        kv(
            "kvs_log_acknowledged_lsn",
            progress.acknowledged.to_string(),
        ),
        kv("kvs_log_synced_lsn", progress.synced.to_string()),
        kv(
            "kvs_log_bytes_since_snapshot",
            log.bytes_since_snapshot().to_string(),
        ),
        kv("kvs_snapshot_bytes", status.last_bytes.to_string()),
        kv("kvs_snapshot_keys", status.last_keys.to_string()),
        kv("kvs_last_snapshot_ms", status.last_millis.to_string()),
        kv(
            "kvs_log_error",
            progress.failed.map(|f| f.0.to_string()).unwrap_or_default(),
        ),
    ]
}
