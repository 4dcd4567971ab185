//! The background sweep that reclaims expired keys. Expired keys are already invisible to every
//! read; this only frees their memory, in small batches so no request waits behind it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, now_millis};

/// How often the sweep wakes when there is nothing to do.
const PERIOD: Duration = Duration::from_millis(100);
/// Most keys reclaimed under one lock acquisition spree before yielding to requests.
const BATCH: usize = 256;

/// Runs until `stop` is cancelled.
pub(crate) async fn sweep(engine: Arc<Engine>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Keep going while whole batches come back, yielding between them.
        while engine.store().sweep_expired(now_millis(), BATCH) == BATCH {
            if stop.is_cancelled() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}
