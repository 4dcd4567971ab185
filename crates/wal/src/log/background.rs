//! The `kvs-log` thread. With [`crate::Leader::LogThread`] it writes every batch commit waiters
//! ask for (`Queue::want`); in any case it writes what no waiter asks for. It sleeps until a
//! waiter asks, until the oldest queued record has waited [`FLUSH_BOUND`], or until an `everysec`
//! fsync is due, whichever comes first, and without a deadline when there is none; whoever queues
//! earlier work wakes it (see `Queue::due_at`). It stops when the log fails or closes; `close`
//! writes the rest.

use std::time::Instant;

use super::commit::Leading;
use super::writer::{self, Duty};
use super::{FLUSH_BOUND, Shared, Sleep};

pub(super) fn run(shared: &Shared) {
    loop {
        let sync = {
            let mut queue = shared.queue.lock();
            loop {
                if queue.refused.is_some() {
                    return;
                }
                let now = Instant::now();
                // A commit waiter asked for a batch: it is due now.
                let flush_at = if queue.wanted {
                    Some(now)
                } else {
                    queue.since.map(|since| since + FLUSH_BOUND)
                };
                let due = match (flush_at, queue.sync_due) {
                    (Some(flush), Some(sync)) => Some(flush.min(sync)),
                    (flush, sync) => flush.or(sync),
                };
                match due {
                    Some(at) if at <= now => {
                        queue.sleep = Sleep::Awake;
                        break queue.sync_due.is_some_and(|sync| sync <= now);
                    }
                    Some(at) => {
                        queue.sleep = Sleep::Until(at);
                        shared.background.wait_until(&mut queue, at);
                    }
                    None => {
                        queue.sleep = Sleep::Idle;
                        shared.background.wait(&mut queue);
                    }
                }
            }
        };
        let leading = Leading::acquire(shared);
        let outcome = writer::lead(shared, Duty::Background { sync });
        leading.finish(outcome, false);
    }
}
