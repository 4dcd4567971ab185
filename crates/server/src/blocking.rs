//! Clients blocked on keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
//! BZMPOP), and the writes that wake them.
//!
//! A blocked client waits in a queue per key, in the order clients blocked. Every committed
//! change passes [`Blocking::touched`] (from the feed, so writes from every door, inside MULTI or
//! not, are seen): a change to a key someone waits on wakes the first waiter of that key only.
//! The woken client runs its command again: if it got something, it leaves every queue and
//! passes the wake on to the next waiter of its keys (more may have been pushed); if another
//! client took the element first, it stays where it was and waits again. So among blocked
//! clients, the one that blocked first is served first, and a push of one element wakes one
//! client, not all of them.
//!
//! A waiter that goes away (timeout, disconnect, `CLIENT UNBLOCK`) leaves through its
//! [`Waiter`]'s drop, which also passes on any wake it received and did not use: nothing is left
//! behind.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use kvs_store::Effects;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// The queues of blocked clients.
#[derive(Debug, Default)]
pub struct Blocking {
    queues: Mutex<Queues>,
    /// Clients blocked now: a write looks at the queues only when some client is.
    count: AtomicUsize,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Queues {
    /// Per key, the waiters in the order they blocked.
    by_key: HashMap<Bytes, VecDeque<Arc<Slot>>>,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    wake: Notify,
}

impl Blocking {
    /// Clients blocked now (INFO's `blocked_clients`).
    pub fn blocked(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Keys with at least one blocked client (INFO's `total_blocking_keys`).
    pub fn keys(&self) -> usize {
        self.queues.lock().by_key.len()
    }

    /// Queues a client on `keys`, behind every client already blocked on them.
    pub fn register(self: &Arc<Self>, keys: &[Bytes]) -> Waiter {
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            wake: Notify::new(),
        });
        let mut keys: Vec<Bytes> = keys.to_vec();
        keys.sort();
        keys.dedup();
        {
            let mut q = self.queues.lock();
            for key in &keys {
                q.by_key
                    .entry(key.clone())
                    .or_default()
                    .push_back(slot.clone());
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        Waiter {
            blocking: self.clone(),
            slot,
            keys,
        }
    }

    /// Wakes the first waiter of each key `effects` changed.
    pub(crate) fn touched(&self, effects: &Effects) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let q = self.queues.lock();
        for change in &effects.changes {
            if let Some(first) = change
                .key()
                .and_then(|key| q.by_key.get(key))
                .and_then(VecDeque::front)
            {
                first.wake.notify_one();
            }
        }
    }

    /// Wakes the first waiter of each of `keys`.
    fn wake_keys(&self, keys: &[Bytes]) {
        let q = self.queues.lock();
        for key in keys {
            if let Some(first) = q.by_key.get(key).and_then(VecDeque::front) {
                first.wake.notify_one();
            }
        }
    }
}

/// A client's place in the queues of its keys; dropping it leaves them.
#[derive(Debug)]
pub struct Waiter {
    blocking: Arc<Blocking>,
    slot: Arc<Slot>,
    keys: Vec<Bytes>,
}

impl Waiter {
    /// Resolves when a change to one of the keys reached this client (it is first in line).
    pub async fn woken(&self) {
        self.slot.wake.notified().await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        {
            let mut q = self.blocking.queues.lock();
            for key in &self.keys {
                if let Some(queue) = q.by_key.get_mut(key) {
                    queue.retain(|s| s.id != self.slot.id);
                    if queue.is_empty() {
                        q.by_key.remove(key);
                    }
                }
            }
        }
        self.blocking.count.fetch_sub(1, Ordering::Relaxed);
        // A wake this client took and did not use (or the elements left after its own) go to
        // whoever is next.
        self.blocking.wake_keys(&self.keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touch(b: &Blocking, key: &'static str) {
        b.touched(&Effects {
            revision: 1,
            changes: vec![kvs_store::Change::Remove(
                Bytes::from_static(key.as_bytes()),
                kvs_store::Removal::Deleted,
            )],
            events: Vec::new(),
        });
    }

    async fn woke(w: &Waiter) -> bool {
        tokio::time::timeout(Duration::from_millis(50), w.woken())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_change_wakes_the_first_waiter_only_and_leaving_passes_it_on() {
        let b = Arc::new(Blocking::default());
        let first = b.register(&[Bytes::from_static(b"k")]);
        let second = b.register(&[Bytes::from_static(b"k"), Bytes::from_static(b"j")]);
        assert_eq!((b.blocked(), b.keys()), (2, 2));
        touch(&b, "k");
        assert!(woke(&first).await);
        assert!(!woke(&second).await, "one change, one wake");
        touch(&b, "j");
        assert!(woke(&second).await, "first in line on j");
        drop(first);
        assert!(
            woke(&second).await,
            "the first one's leaving wakes the next"
        );
        drop(second);
        assert_eq!((b.blocked(), b.keys()), (0, 0), "nothing left behind");
        touch(&b, "k");
    }
}
