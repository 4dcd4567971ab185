//! The commit wait and the leader role.
//!
//! The role and the waiter list share one mutex, so a waiter either finds the role free and takes
//! it, or is registered before the leader, releasing the role, looks for the next one: nobody is
//! left waiting for a batch that no one will write. Waiters are kept in LSN order; a leader's
//! release removes and wakes exactly those its batch covered, then wakes the first one left
//! whose record is queued, to lead the next batch (the *elect*).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use super::writer::{self, Duty, Published};
use super::{Leader, Log, LogFailed, Shared};

/// The leader role and the waiters not yet covered.
#[derive(Default)]
pub(super) struct Commits {
    /// Someone holds the leader role: a batch is being written.
    leading: bool,
    /// Waiters by (LSN, id), each with the waker of its task.
    waiters: BTreeMap<(u64, u64), Waker>,
    next_id: u64,
    /// The waiter woken to lead the next batch.
    elect: Option<(u64, u64)>,
    /// Threads blocked in [`Leading::acquire`].
    blocked: usize,
    /// Why the log failed.
    pub(super) failed: Option<LogFailed>,
    /// Set when the log is closed: waits it did not cover end with this.
    stopped: Option<LogFailed>,
}

impl Commits {
    /// Chooses the first waiter whose record is queued (`lsn < appended`) to lead the next
    /// batch, and returns its waker. A waiter whose record is not even appended yet is left to
    /// the batch that will hold it.
    fn choose_elect(&mut self, appended: u64) -> Option<Waker> {
        self.elect = None;
        let (&key, waker) = self.waiters.iter().next()?;
        if key.0 >= appended {
            return None;
        }
        self.elect = Some(key);
        Some(waker.clone())
    }

    /// Whether waits that are not covered yet can only fail: the log failed or closed.
    fn ended(&self) -> Option<&LogFailed> {
        self.failed.as_ref().or(self.stopped.as_ref())
    }
}

/// The leader role, held while one batch is written. Dropping it without [`Leading::finish`]
/// (only a panic while writing does) fails the log, so that no waiter stays asleep forever.
pub(super) struct Leading<'a> {
    shared: &'a Shared,
    done: bool,
}

impl<'a> Leading<'a> {
    /// Takes the leader role, blocking this thread while a batch is being written. For the
    /// background thread and `close`, never for async callers.
    pub(super) fn acquire(shared: &'a Shared) -> Self {
        let mut commits = shared.commits.lock();
        while commits.leading {
            commits.blocked += 1;
            shared.released.wait(&mut commits);
            commits.blocked -= 1;
        }
        commits.leading = true;
        Self {
            shared,
            done: false,
        }
    }

    /// Gives the role up after a batch: publishes its progress, wakes the waiters it covered
    /// (or every waiter, if the log failed or `stop` closes it), and wakes the next leader.
    pub(super) fn finish(mut self, outcome: Result<Option<Published>, LogFailed>, stop: bool) {
        self.done = true;
        release(self.shared, outcome, stop);
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.done {
            let failed = LogFailed("a log write was interrupted".into());
            release(self.shared, Err(failed), false);
        }
    }
}

fn release(shared: &Shared, outcome: Result<Option<Published>, LogFailed>, stop: bool) {
    let mut wake = Vec::new();
    let mut advanced = None;
    let mut commits = shared.commits.lock();
    commits.leading = false;
    match outcome {
        Ok(None) => {}
        Ok(Some(published)) => {
            if let Some(synced) = published.synced {
                shared.synced.fetch_max(synced, Ordering::Release);
            }
            // Published under the mutex together with the removal of the waiters it covers, so
            // a waiter that sees it without the mutex knows its entry is gone.
            shared
                .acknowledged
                .fetch_max(published.acknowledged, Ordering::Release);
            let acknowledged = shared.acknowledged.load(Ordering::Relaxed);
            advanced = Some(acknowledged);
            let uncovered = commits.waiters.split_off(&(acknowledged, 0));
            let covered = std::mem::replace(&mut commits.waiters, uncovered);
            wake.extend(covered.into_values());
        }
        Err(failed) => {
            if commits.failed.is_none() {
                let mut queue = shared.queue.lock();
                queue.refused = Some(failed.clone());
                drop(queue);
                commits.failed = Some(failed);
                shared.failed.store(true, Ordering::Release);
            }
        }
    }
    if stop && commits.stopped.is_none() {
        commits.stopped = Some(LogFailed("kvs is shutting down".into()));
    }
    if commits.ended().is_some() {
        commits.elect = None;
        wake.extend(std::mem::take(&mut commits.waiters).into_values());
    } else if shared.options.leader == Leader::LogThread {
        // Waiters this batch left uncovered asked after it was taken; the log thread answers.
        if !commits.waiters.is_empty() && shared.queue.lock().want() {
            shared.background.notify_one();
        }
    } else if let Some(next) = commits.choose_elect(shared.appended.load(Ordering::Acquire)) {
        wake.push(next);
    }
    if commits.blocked > 0 {
        shared.released.notify_all();
    }
    drop(commits);
    // Before the waiters: whoever the hook tells (the change feed) knows of a record no later
    // than its writer does.
    if let (Some(acknowledged), Some(hook)) = (advanced, shared.on_acknowledged.get()) {
        hook(acknowledged);
    }
    for waker in wake {
        waker.wake();
    }
}

/// The future [`Log::wait`] returns: the commit wait for one record.
#[must_use = "a commit wait does nothing unless polled"]
pub struct Commit<'a> {
    log: &'a Log,
    lsn: u64,
    /// Its entry in the waiter list, while it has one.
    key: Option<(u64, u64)>,
}

impl std::fmt::Debug for Commit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit")
            .field("lsn", &self.lsn)
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

impl<'a> Commit<'a> {
    pub(super) fn new(log: &'a Log, lsn: u64) -> Self {
        Self {
            log,
            lsn,
            key: None,
        }
    }
}

impl Future for Commit<'_> {
    type Output = Result<(), LogFailed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = &*this.log.shared;
        loop {
            // The release that covered this record also removed its entry.
            if shared.acknowledged.load(Ordering::Acquire) > this.lsn {
                this.key = None;
                return Poll::Ready(Ok(()));
            }
            let mut commits = shared.commits.lock();
            if shared.acknowledged.load(Ordering::Acquire) > this.lsn {
                continue;
            }
            if let Some(ended) = commits.ended() {
                let ended = ended.clone();
                if let Some(key) = this.key.take() {
                    commits.waiters.remove(&key);
                }
                return Poll::Ready(Err(ended));
            }
            let log_thread = shared.options.leader == Leader::LogThread;
            if !log_thread && !commits.leading && this.lsn < shared.appended.load(Ordering::Acquire)
            {
                // Lead: the batch holds every record queued, this one included.
                commits.leading = true;
                if let Some(key) = this.key.take() {
                    commits.waiters.remove(&key);
                    if commits.elect == Some(key) {
                        commits.elect = None;
                    }
                }
                drop(commits);
                let leading = Leading {
                    shared,
                    done: false,
                };
                let outcome = writer::lead(shared, Duty::Commit);
                leading.finish(outcome, false);
                continue;
            }
            let waker = cx.waker();
            match this.key.and_then(|key| commits.waiters.get_mut(&key)) {
                Some(registered) => {
                    if !registered.will_wake(waker) {
                        registered.clone_from(waker);
                    }
                }
                None => {
                    let key = (this.lsn, commits.next_id);
                    commits.next_id += 1;
                    commits.waiters.insert(key, waker.clone());
                    this.key = Some(key);
                    if log_thread {
                        // Registered before asking, so the batch that answers finds it.
                        let wake = shared.queue.lock().want();
                        if wake {
                            shared.background.notify_one();
                        }
                    }
                }
            }
            return Poll::Pending;
        }
    }
}

impl Drop for Commit<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let shared = &*self.log.shared;
        if shared.acknowledged.load(Ordering::Acquire) > self.lsn {
            return;
        }
        let mut commits = shared.commits.lock();
        commits.waiters.remove(&key);
        if commits.elect == Some(key) {
            // It was chosen to lead the next batch: hand that on.
            let next = commits.choose_elect(shared.appended.load(Ordering::Acquire));
            drop(commits);
            if let Some(next) = next {
                next.wake();
            }
        }
    }
}
