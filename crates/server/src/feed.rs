//! The change feed: every committed change, once, in the one order the commit pipeline gives
//! them, for whoever listens inside the server (watches, keyspace notifications, and later a
//! replication log).
//!
//! **Order.** Each submission of effects (one command, one `MULTI`/`EXEC` block, or one batch of
//! expired keys) gets a *position* from the pipeline: in a durable server its LSN, assigned under
//! the log's append mutex; in memory, a counter under a mutex of its own. The feed records it in
//! that same critical section, so the feed's order is the log's order, which is the order a
//! restart replays: a listener, a restart and a replica all see the same history. Effects are
//! submitted while the locks of the keys they change are held, so for each key positions follow
//! the order its writes were applied, and a write answered before another began has the smaller
//! position. Positions are what a listener resumes from. Revisions (entry versions) are not: a
//! version is taken when a write is applied, before its position, and deletions, expiries and
//! flushes take none; within one key, versions increase along the feed.
//!
//! **Committed only.** An item is delivered once its position is acknowledged under the fsync
//! policy, the moment a writer of it could be answered. Nothing a crash could take back is ever
//! shown.
//!
//! **Cost.** The feed records nothing, and writes note no effects in a server kept in memory,
//! until the first listener subscribes. From then on it keeps the latest items within
//! [`FeedLimits`] so that a listener can resume; one that falls further behind is told
//! [`FeedError::Compacted`] instead of silently missing changes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use kvs_store::{Change, Commit, Effects, Ticket};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::Notify;

/// How much history the feed keeps for listeners that fall behind or reconnect. Each has a
/// documented default (README, "Configuration").
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedLimits {
    /// Most items kept. Default 100,000.
    pub history_items: usize,
    /// Most bytes of keys and values kept (values are shared with the store while they are
    /// current, so this bounds what old values the history alone keeps alive). Default 64 MiB.
    pub history_bytes: usize,
}

impl Default for FeedLimits {
    fn default() -> Self {
        Self {
            history_items: 100_000,
            history_bytes: 64 << 20,
        }
    }
}

/// One committed submission: what one command, block or expiry batch changed.
#[derive(Debug, PartialEq, Eq)]
pub struct FeedItem {
    /// Its place in the order of changes; the next item's is greater (by one, unless the
    /// pipeline refused a submission in between).
    pub position: u64,
    pub effects: Effects,
}

/// Where a new subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With the first change submitted after the subscription is made.
    Next,
    /// With the item at this position (or the first one after it), if the feed still holds it.
    At(u64),
}

/// Why a subscription cannot go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The items from `wanted` on are no longer all held: the listener fell further behind than
    /// the history kept (or asked for a position from before the feed was opened).
    #[error(
        "the change feed no longer holds position {wanted}; the oldest position it holds is {oldest}"
    )]
    Compacted { wanted: u64, oldest: u64 },
    /// The server is shutting down.
    #[error("the change feed is closed: kvs is shutting down")]
    Closed,
}

#[derive(Debug, Default)]
struct History {
    items: VecDeque<Arc<FeedItem>>,
    /// The first position the history can answer for.
    oldest: u64,
    bytes: usize,
}

/// The feed. One per engine; see the module docs.
#[derive(Debug)]
pub struct Feed {
    /// Items are recorded (set under the pipeline's sequencing lock).
    recording: AtomicBool,
    /// Opening is done once, by whoever subscribes first; the others wait for it.
    opening: Mutex<()>,
    history: Mutex<History>,
    /// Every position below this is committed and may be delivered.
    visible: AtomicU64,
    listeners: AtomicUsize,
    changed: Notify,
    closed: AtomicBool,
    max_items: AtomicUsize,
    max_bytes: AtomicUsize,
    /// Cancelled when the server begins to shut down: long-lived listeners (watch streams,
    /// blocking reads) end, and their clients resume from where they were.
    stopping: tokio_util::sync::CancellationToken,
    /// Listeners cut off for falling behind.
    dropped: AtomicU64,
    /// Clients blocked on keys (BLPOP and kin), woken by the changes recorded here.
    pub(crate) blocking: Arc<crate::blocking::Blocking>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new(FeedLimits::default())
    }
}

/// What one change keeps alive in the history, roughly.
fn weight(effects: &Effects) -> usize {
    effects
        .changes
        .iter()
        .map(|change| match change {
            Change::Put(key, entry) => match &entry.value {
                kvs_store::Value::String(v) => key.len() + v.len() + entry.content_type.len() + 64,
                kvs_store::Value::Collection(c) => key.len() + c.footprint() + 64,
            },
            Change::Remove(key, _) | Change::Restamp { key, .. } => key.len() + 32,
            Change::Edit { key, edit, .. } | Change::Extend(key, edit) => {
                key.len() + edit.weight() + 64
            }
            Change::Flush => 32,
            Change::Meta(name, value) => name.len() + value.len() + 32,
        })
        .sum::<usize>()
        + 64
}

impl Feed {
    pub(crate) fn new(limits: FeedLimits) -> Self {
        Self {
            recording: AtomicBool::new(false),
            opening: Mutex::new(()),
            history: Mutex::new(History::default()),
            visible: AtomicU64::new(0),
            listeners: AtomicUsize::new(0),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            max_items: AtomicUsize::new(limits.history_items.max(1)),
            max_bytes: AtomicUsize::new(limits.history_bytes.max(1)),
            stopping: tokio_util::sync::CancellationToken::new(),
            dropped: AtomicU64::new(0),
            blocking: Arc::default(),
        }
    }

    /// Tells long-lived listeners the server is shutting down (see [`Feed::stopping`]).
    pub fn stop_listeners(&self) {
        self.stopping.cancel();
    }

    /// Resolves once the server begins to shut down.
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stopping.cancelled()
    }

    /// Whether the server is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Counts a listener cut off for falling behind (a watch sent `overflow`).
    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Listeners cut off for falling behind, since the server started.
    pub fn dropped_listeners(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How many listeners are subscribed now.
    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Relaxed)
    }

    /// The oldest position the history holds, and how many items it holds.
    pub fn span(&self) -> (u64, usize) {
        let history = self.history.lock();
        (history.oldest, history.items.len())
    }

    /// Changes how much history is kept; takes effect with the next item recorded.
    pub fn set_limits(&self, limits: FeedLimits) {
        self.max_items
            .store(limits.history_items.max(1), Ordering::Relaxed);
        self.max_bytes
            .store(limits.history_bytes.max(1), Ordering::Relaxed);
    }

    /// Bytes the history keeps alive, roughly (not counted against the memory limit).
    pub fn history_bytes(&self) -> usize {
        self.history.lock().bytes
    }

    /// Whether anyone has opened the feed (and it is recording).
    pub fn is_open(&self) -> bool {
        self.recording.load(Ordering::Acquire)
    }

    /// Opens the feed once: `open` must make the pipeline submit every later write and then
    /// call [`Feed::begin`] from inside its sequencing lock.
    pub(crate) fn open_once(&self, open: impl FnOnce()) {
        if self.is_open() {
            return;
        }
        let _opening = self.opening.lock();
        if !self.is_open() {
            open();
        }
    }

    /// Starts recording at `next`, the position the next submission gets. Call it under the
    /// pipeline's sequencing lock.
    pub(crate) fn begin(&self, next: u64) {
        let mut history = self.history.lock();
        history.oldest = next;
        self.visible.fetch_max(next, Ordering::AcqRel);
        self.recording.store(true, Ordering::Release);
    }

    /// Records the submission at `position`. Called under the pipeline's sequencing lock, so in
    /// position order.
    pub(crate) fn record(&self, position: u64, effects: &Effects) {
        self.blocking.touched(effects);
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let item = Arc::new(FeedItem {
            position,
            effects: effects.clone(),
        });
        let max_items = self.max_items.load(Ordering::Relaxed);
        let max_bytes = self.max_bytes.load(Ordering::Relaxed);
        let mut history = self.history.lock();
        history.bytes += weight(&item.effects);
        history.items.push_back(item);
        while history.items.len() > 1
            && (history.items.len() > max_items || history.bytes > max_bytes)
        {
            if let Some(old) = history.items.pop_front() {
                history.bytes -= weight(&old.effects);
                history.oldest = old.position + 1;
            }
        }
    }

    /// Everything below `upto` is committed: wakes the listeners waiting for it.
    pub(crate) fn publish(&self, upto: u64) {
        let before = self.visible.fetch_max(upto, Ordering::AcqRel);
        if before < upto && self.listeners.load(Ordering::Acquire) > 0 {
            self.changed.notify_waiters();
        }
    }

    /// Ends every subscription once it has taken what is committed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The first position not yet committed.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// The item at `wanted` or the first after it, if committed.
    fn get(&self, wanted: u64) -> Result<Option<Arc<FeedItem>>, FeedError> {
        let visible = self.visible();
        if wanted >= visible {
            return if self.closed.load(Ordering::Acquire) {
                Err(FeedError::Closed)
            } else {
                Ok(None)
            };
        }
        let history = self.history.lock();
        if wanted < history.oldest {
            return Err(FeedError::Compacted {
                wanted,
                oldest: history.oldest,
            });
        }
        let at = history.items.partition_point(|item| item.position < wanted);
        Ok(history
            .items
            .get(at)
            .filter(|item| item.position < visible)
            .cloned())
    }
}

/// One listener's place in the feed. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    feed: Arc<Feed>,
    next: u64,
}

impl Subscription {
    pub(crate) fn new(feed: Arc<Feed>, next: u64) -> Self {
        feed.listeners.fetch_add(1, Ordering::AcqRel);
        Self { feed, next }
    }

    /// The position this subscription delivers next (or the first after it): where a listener
    /// that stops now resumes.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Moves this subscription to deliver `position` (or the first item after it) next.
    pub(crate) fn seek(&mut self, position: u64) {
        self.next = position;
    }

    /// The next committed item, if one is there now.
    pub fn try_next(&mut self) -> Result<Option<Arc<FeedItem>>, FeedError> {
        let item = self.feed.get(self.next)?;
        if let Some(item) = &item {
            self.next = item.position + 1;
        }
        Ok(item)
    }

    /// The next committed item, waiting for it.
    pub async fn next(&mut self) -> Result<Arc<FeedItem>, FeedError> {
        let feed = self.feed.clone();
        loop {
            let changed = feed.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a publish between the look and the wait is not lost.
            changed.as_mut().enable();
            if let Some(item) = self.try_next()? {
                return Ok(item);
            }
            changed.await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.listeners.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The commit pipeline of a server kept in memory: nothing to make durable, so a submission is
/// committed as soon as it has its position. Installed on demand (see
/// [`kvs_store::Store::set_commit_on_demand`]): writes reach it only once the feed is open.
#[derive(Debug)]
pub(crate) struct MemoryCommit {
    next: Mutex<u64>,
    feed: Arc<Feed>,
}

impl MemoryCommit {
    pub(crate) fn new(feed: Arc<Feed>) -> Self {
        // Positions start at the time in microseconds, so those of a later run of the server
        // are greater than any a client kept from an earlier one (which would have had to make
        // more than a million writes a second, all its life, to get ahead): a client resuming
        // from a position this run never gave is told its history is gone, never shown wrong
        // changes. Microseconds keep ids below 2^53, exact as JavaScript numbers.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Self {
            next: Mutex::new(start.max(1)),
            feed,
        }
    }

    /// Runs `f` with the next position, with no submission in between.
    pub(crate) fn sequenced<R>(&self, f: impl FnOnce(u64) -> R) -> R {
        let next = self.next.lock();
        f(*next)
    }
}

impl Commit for MemoryCommit {
    fn submit(&self, effects: &Effects) -> Ticket {
        let mut next = self.next.lock();
        let position = *next;
        *next += 1;
        self.feed.record(position, effects);
        drop(next);
        self.feed.publish(position + 1);
        Ticket::Queued(position)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kvs_store::Removal;

    use super::*;

    fn removal(key: &str) -> Effects {
        Effects {
            revision: 0,
            changes: vec![Change::Remove(
                Bytes::copy_from_slice(key.as_bytes()),
                Removal::Deleted,
            )],
            events: Vec::new(),
        }
    }

    #[test]
    fn items_are_held_back_until_committed_and_the_oldest_are_dropped() {
        let feed = Arc::new(Feed::new(FeedLimits {
            history_items: 3,
            history_bytes: usize::MAX,
        }));
        feed.begin(10);
        let mut early = Subscription::new(feed.clone(), 10);
        for (i, key) in ["a", "b", "c", "d"].iter().enumerate() {
            feed.record(10 + i as u64, &removal(key));
        }
        assert_eq!(early.try_next(), Ok(None), "nothing committed yet");
        feed.publish(12);
        // 10 was dropped to keep three items: the early listener is told, not skipped ahead.
        assert_eq!(
            early.try_next(),
            Err(FeedError::Compacted {
                wanted: 10,
                oldest: 11
            })
        );
        let mut late = Subscription::new(feed.clone(), 11);
        assert_eq!(late.try_next().map(|i| i.map(|i| i.position)), Ok(Some(11)));
        assert_eq!(late.try_next(), Ok(None), "12 is not committed");
        feed.publish(14);
        assert_eq!(late.try_next().map(|i| i.map(|i| i.position)), Ok(Some(12)));
        assert_eq!(late.try_next().map(|i| i.map(|i| i.position)), Ok(Some(13)));
        feed.close();
        assert_eq!(late.try_next(), Err(FeedError::Closed));
    }

    #[test]
    fn nothing_is_recorded_before_the_feed_begins() {
        let feed = Feed::new(FeedLimits::default());
        feed.record(1, &removal("a"));
        feed.begin(2);
        feed.record(2, &removal("b"));
        feed.publish(3);
        let history = feed.history.lock();
        assert_eq!(history.items.len(), 1);
        assert_eq!(history.oldest, 2);
    }

    #[test]
    fn the_byte_limit_bounds_the_history() {
        let feed = Feed::new(FeedLimits {
            history_items: usize::MAX,
            history_bytes: 1000,
        });
        feed.begin(1);
        for i in 1..=100 {
            feed.record(i, &removal("some-key"));
        }
        let history = feed.history.lock();
        assert!(history.bytes <= 1000, "{} bytes held", history.bytes);
        assert_eq!(history.items.back().map(|i| i.position), Some(100));
        assert_eq!(history.oldest, history.items[0].position);
    }
}
