//! Takes the console's one-second samples (see [`super::history`]) until the server stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::history::Gauges;
use crate::engine::{Engine, now_millis};

pub(crate) async fn run(engine: Arc<Engine>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is at once: it sets the baseline the next sample subtracts.
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        engine.script_done().await;
        let now = now_millis();
        let memory = engine.memory();
        let gauges = Gauges {
            now_unix: now / 1000,
            used_memory: memory.last().allocated,
            maxmemory: memory.limit(),
            keys: engine.store().len(now),
        };
        engine.stats().history.sample(engine.stats(), gauges);
    }
}
