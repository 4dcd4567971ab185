//! The background sweep that reclaims expired keys. Expired keys are already invisible to every
//! read; this only frees their memory, in small batches so no request waits behind it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, now_millis};

/// The longest the sweep sleeps: a key given an expiry meanwhile is reclaimed at most this late
/// (it is invisible from its expiry instant on regardless). An idle server wakes once per period.
const LONGEST_SLEEP: Duration = Duration::from_secs(1);
/// The longest sleep while someone listens to the change feed (watches, keyspace
/// notifications): an expiry is then reported within 100 ms, as Redis's default `hz 10` does.
const LONGEST_SLEEP_LISTENED: Duration = Duration::from_millis(100);
/// The shortest: expiries closer together than this are reclaimed in one pass.
const SHORTEST_SLEEP: Duration = Duration::from_millis(10);
/// Most keys reclaimed under one lock acquisition spree before yielding to requests.
const BATCH: usize = 256;

/// How long to sleep before the next pass: until the earliest expiry, within the bounds above.
fn pause(next_expiry: Option<u64>, now: u64, listened: bool) -> Duration {
    let longest = if listened {
        LONGEST_SLEEP_LISTENED
    } else {
        LONGEST_SLEEP
    };
    match next_expiry {
        None => longest,
        Some(at) => Duration::from_millis(at.saturating_sub(now)).clamp(SHORTEST_SLEEP, longest),
    }
}

/// Runs until `stop` is cancelled.
pub(crate) async fn sweep(engine: Arc<Engine>, stop: CancellationToken) {
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        engine.script_done().await;
        let listened = engine.feed().is_open();
        let wait = pause(engine.store().next_expiry(), now_millis(), listened);
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(wait) => {}
        }
        engine.script_done().await;
        // Keep going while whole batches come back, yielding between them.
        while engine.store().sweep_expired(now_millis(), BATCH) == BATCH {
            if stop.is_cancelled() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_sleeps_until_the_next_expiry_within_bounds() {
        assert_eq!(
            pause(None, 5, false),
            LONGEST_SLEEP,
            "nothing expires: the longest sleep"
        );
        assert_eq!(pause(Some(1_250), 1_000, false), Duration::from_millis(250));
        assert_eq!(pause(Some(999_999), 0, false), LONGEST_SLEEP);
        assert_eq!(
            pause(Some(3), 1_000, false),
            SHORTEST_SLEEP,
            "already due: the shortest"
        );
        assert_eq!(
            pause(None, 5, true),
            LONGEST_SLEEP_LISTENED,
            "with listeners, expiries are reported within 100 ms"
        );
    }
}
