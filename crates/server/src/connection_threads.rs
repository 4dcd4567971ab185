//! Threads that own connections: each runs a single-threaded async runtime, and a connection
//! handed to one stays on it for its whole life (new connections are dealt out in turn).
//!
//! Why: on the shared multi-threaded runtime, an idle worker is woken to steal the tasks of a busy
//! one, so an unpipelined request can hop threads between its read and its write; each hop is a
//! wake-up and cache misses. Measured on 2 cores with redis-benchmark (50 clients, GET and SET of
//! 64 bytes, 5 interleaved runs): requests per server CPU-second went from 0.91–0.93× to 0.95×
//! redis-server's — a small gain on 2 cores, where the load generator takes one of them; the
//! figures are in docs/benchmarks.md. The store is shared by all threads as before;
//! only the scheduling of each connection's task changes.
//!
//! The RESP and line doors place their connections here; HTTP's stay on the shared runtime
//! (`Door::PLACEMENT` in `crate::listener`). A connection moves here as a raw socket, so anything
//! that wraps the socket (TLS) is applied after the move, on this thread.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// A fixed set of connection threads. Dropping it stops them; tasks still running on them are
/// dropped, so drain connections first.
#[derive(Debug)]
pub(crate) struct ConnectionThreads {
    handles: Vec<Handle>,
    /// Per thread: it is held by a long script (see [`stalled`]).
    stalled: Vec<Arc<AtomicBool>>,
    next: AtomicUsize,
    stops: Vec<oneshot::Sender<()>>,
    joins: Vec<JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `n` threads (at least one), named `kvs-conn-<i>`.
    pub(crate) fn start(n: usize) -> std::io::Result<Self> {
        let mut threads = Self {
            handles: Vec::new(),
            stalled: Vec::new(),
            next: AtomicUsize::new(0),
            stops: Vec::new(),
            joins: Vec::new(),
        };
        for i in 0..n.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            let flag = Arc::new(AtomicBool::new(false));
            threads.handles.push(runtime.handle().clone());
            threads.stops.push(stop);
            threads.stalled.push(flag.clone());
            threads.joins.push(
                std::thread::Builder::new()
                    .name(format!("kvs-conn-{i}"))
                    // Quick scripts run here: the same room as the scripting thread's.
                    .stack_size(crate::script::SCRIPT_STACK)
                    .spawn(move || {
                        STALLED.with(|s| *s.borrow_mut() = Some(flag));
                        // Runs the spawned connections until told to stop (or until the pool,
                        // and with it the sender, is dropped).
                        let _ = runtime.block_on(stopped);
                    })?,
            );
        }
        Ok(threads)
    }

    /// Runs `task` on the next thread in turn, passing over threads a long script holds
    /// (unless every one is).
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let n = self.handles.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let i = (0..n)
            .map(|k| (first + k) % n)
            .find(|&i| !self.stalled[i].load(Ordering::Relaxed))
            .unwrap_or(first % n);
        self.handles[i].spawn(task);
    }

    /// Moves an accepted connection to the next thread in turn and runs `serve` on it there,
    /// tracked by `tasks` so shutdown waits for it. A socket that cannot be moved is closed.
    pub(crate) fn adopt<F>(
        &self,
        tasks: &TaskTracker,
        stream: TcpStream,
        serve: impl FnOnce(TcpStream) -> F + Send + 'static,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        // The socket leaves this runtime's reactor here and joins the target thread's there.
        let Ok(socket) = stream.into_std() else {
            return;
        };
        self.spawn(tasks.track_future(async move {
            match TcpStream::from_std(socket) {
                Ok(stream) => serve(stream).await,
                Err(e) => {
                    tracing::warn!(error = %e, "a connection could not be moved to its thread")
                }
            }
        }));
    }
}

thread_local! {
    /// The stalled flag of the connection thread this is (`None` on other threads).
    static STALLED: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Says whether the connection thread this is called on is held by a long script (a quick
/// script that turned slow runs where it started): new connections are placed elsewhere while
/// it is. Does nothing on other threads.
pub(crate) fn stalled(on: bool) {
    STALLED.with(|s| {
        if let Some(flag) = &*s.borrow() {
            flag.store(on, Ordering::Relaxed);
        }
    });
}

/// Whether this is a connection thread.
pub(crate) fn on_connection_thread() -> bool {
    STALLED.with(|s| s.borrow().is_some())
}

impl Drop for ConnectionThreads {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for join in self.joins.drain(..) {
            let _ = join.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_dealt_out_in_turn_and_each_stays_on_its_thread() {
        let threads = ConnectionThreads::start(2).expect("threads");
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            threads.spawn(async move {
                let before = std::thread::current().name().map(String::from);
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                let after = std::thread::current().name().map(String::from);
                let _ = tx.send((before, after));
            });
        }
        let mut names: Vec<_> = (0..4)
            .map(|_| rx.recv().expect("a task finished"))
            .map(|(before, after)| {
                assert_eq!(before, after, "a task moved between threads");
                before.expect("named thread")
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["kvs-conn-0", "kvs-conn-0", "kvs-conn-1", "kvs-conn-1"]
        );
        drop(threads);
    }
}
