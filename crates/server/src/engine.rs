//! The engine: the one place front doors send commands. It owns the store and the clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvs_store::{Command, Millis, Reply, Store};

/// Shared by every connection. Executing a command takes only the affected shard's lock, so it is
/// cheap enough to run directly on an async worker.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    started: Instant,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self {
            store: Store::new(),
            started: Instant::now(),
        }
    }

    /// How long this engine has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Applies `command` at the current wall-clock time.
    pub fn execute(&self, command: Command) -> Reply {
        self.store.execute(command, now_millis())
    }

    /// The keyspace, for maintenance tasks such as the expiry sweep.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
