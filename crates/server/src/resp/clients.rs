//! The registry of open RESP connections, for `CLIENT LIST`, `CLIENT KILL`, `INFO clients` and
//! the server's counters. Touched at connect, disconnect and by those commands, never per request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// What a connection did last, written by the connection itself after each request and read by
/// `CLIENT LIST`: plain atomics, so the connection never takes the registry's lock per request.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// When the last request was answered, in milliseconds of the server's clock.
    pub(crate) last_ms: AtomicU64,
    /// The last command, as a slot of the statistics' command table (+1; 0: none yet).
    pub(crate) cmd: AtomicUsize,
    /// Commands queued in MULTI, or -1 outside one.
    pub(crate) multi: std::sync::atomic::AtomicI64,
    /// The query buffer: bytes held, room left, and the record of a request's arguments.
    pub(crate) qbuf: AtomicUsize,
    pub(crate) qbuf_free: AtomicUsize,
    pub(crate) argv_mem: AtomicUsize,
    /// Reply bytes waiting in the output buffer, and subscribed messages waiting to go.
    pub(crate) obl: AtomicUsize,
    pub(crate) omem: AtomicUsize,
    /// It ran MONITOR (and has not RESET since).
    pub(crate) monitor: std::sync::atomic::AtomicBool,
    /// `CLIENT NO-EVICT on`: never disconnected to bring clients under `maxmemory-clients`.
    pub(crate) no_evict: std::sync::atomic::AtomicBool,
    /// Blocked in BLPOP or its kin now.
    pub(crate) blocked: std::sync::atomic::AtomicBool,
    /// `CLIENT UNBLOCK`: ends the wait, as a timeout or (with `unblock_error`) an error.
    pub(crate) unblock: tokio::sync::Notify,
    pub(crate) unblock_error: std::sync::atomic::AtomicBool,
    /// `CLIENT UNBLOCK`s so far, so a wait ignores one meant for an earlier wait.
    pub(crate) unblocks: AtomicU64,
}

/// One open connection as others see it.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    /// The socket's file descriptor.
    pub(crate) fd: i64,
    /// What it did last.
    pub(crate) activity: Arc<Activity>,
    pub(crate) addr: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) name: String,
    pub(crate) since: Instant,
    pub(crate) resp: u8,
    /// The ACL user it runs as.
    pub(crate) user: String,
    /// Bytes its buffers hold now (see [`Clients::account`]).
    pub(crate) memory: Arc<AtomicUsize>,
    /// Cancelled by `CLIENT KILL`; the connection closes after its current request.
    pub(crate) kill: CancellationToken,
    /// Channels, patterns and shard channels it is subscribed to.
    pub(crate) pubsub: (usize, usize, usize),
}

impl ClientInfo {
    /// As `GET /admin/clients` lists it.
    pub(crate) fn to_json(&self, id: u64) -> serde_json::Value {
        serde_json::json!({
            "id": id,
            "door": "resp",
            "addr": self.addr.to_string(),
            "laddr": self.local.to_string(),
            "name": self.name,
            "user": self.user,
            "age": self.since.elapsed().as_secs(),
            "resp": self.resp,
            "sub": self.pubsub.0,
            "psub": self.pubsub.1,
            "ssub": self.pubsub.2,
        })
    }
}

/// Open connections and lifetime counters.
#[derive(Debug, Default)]
pub struct Clients {
    open: Mutex<BTreeMap<u64, ClientInfo>>,
    next_id: AtomicU64,
    /// Bytes every client's buffers hold together.
    memory: AtomicUsize,
    /// Clients disconnected because all clients together held more than `maxmemory_clients`.
    pub(crate) evicted: AtomicU64,
    pub(crate) connections_received: AtomicU64,
    pub(crate) commands_processed: AtomicU64,
}

impl Clients {
    /// Registers a new connection and returns its id (from 1, never reused).
    pub(crate) fn register(&self, info: ClientInfo) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.connections_received.fetch_add(1, Ordering::Relaxed);
        self.open.lock().insert(id, info);
        id
    }

    pub(crate) fn unregister(&self, id: u64) {
        if let Some(info) = self.open.lock().remove(&id) {
            let held = info.memory.swap(0, Ordering::AcqRel);
            self.memory.fetch_sub(held, Ordering::AcqRel);
        }
    }

    /// Records that a client's buffers now hold `bytes` (its `memory`), and, when all clients
    /// together hold more than `limit` (0: no limit), disconnects the clients holding the most
    /// until the rest fit, as Redis 7's `maxmemory-clients` does. Cheap when nothing changed.
    pub(crate) fn account(&self, memory: &AtomicUsize, bytes: usize, limit: usize) {
        let before = memory.swap(bytes, Ordering::AcqRel);
        if bytes == before {
            return;
        }
        let total = if bytes > before {
            self.memory.fetch_add(bytes - before, Ordering::AcqRel) + (bytes - before)
        } else {
            self.memory.fetch_sub(before - bytes, Ordering::AcqRel) - (before - bytes)
        };
        if limit > 0 && total > limit {
            self.evict(limit);
        }
    }

    /// Bytes all clients' buffers hold.
    pub(crate) fn memory(&self) -> usize {
        self.memory.load(Ordering::Acquire)
    }

    fn evict(&self, limit: usize) {
        let open = self.open.lock();
        let mut by_size: Vec<&ClientInfo> = open
            .values()
            .filter(|c| !c.kill.is_cancelled() && !c.activity.no_evict.load(Ordering::Relaxed))
            .collect();
        by_size.sort_by_key(|c| std::cmp::Reverse(c.memory.load(Ordering::Acquire)));
        let mut total = self.memory.load(Ordering::Acquire);
        for client in by_size {
            if total <= limit {
                break;
            }
            let held = client.memory.load(Ordering::Acquire);
            client.kill.cancel();
            self.evicted.fetch_add(1, Ordering::Relaxed);
            total = total.saturating_sub(held);
            tracing::warn!(
                addr = %client.addr,
                held,
                limit,
                "client disconnected: all clients together hold more than maxmemory_clients"
            );
        }
    }

    pub(crate) fn update(&self, id: u64, f: impl FnOnce(&mut ClientInfo)) {
        if let Some(info) = self.open.lock().get_mut(&id) {
            f(info);
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<ClientInfo> {
        self.open.lock().get(&id).cloned()
    }

    pub(crate) fn snapshot(&self) -> Vec<(u64, ClientInfo)> {
        self.open
            .lock()
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.open.lock().len()
    }

    /// Asks every connection matching `matches` to close; how many matched.
    pub(crate) fn kill(&self, matches: impl Fn(u64, &ClientInfo) -> bool) -> usize {
        let open = self.open.lock();
        let mut n = 0;
        for (id, c) in open.iter() {
            if matches(*id, c) {
                c.kill.cancel();
                n += 1;
            }
        }
        n
    }
}
