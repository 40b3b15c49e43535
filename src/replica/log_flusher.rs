//! Kafka's log flusher (`LogManager.flushDirtyLogs`): a background task that fsyncs every
//! partition whose oldest unflushed message is older than its `flush.ms` (topic config; broker
//! `log.flush.interval.ms`), checked every `log.flush.scheduler.interval.ms`.
//!
//! Kafka's scheduler default is Long.MAX_VALUE, which would make a topic's `flush.ms` do
//! nothing unless the broker key is also set; gregor checks at least once a second, so
//! `flush.ms` alone takes effect (with a granularity of that check).

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::broker::Broker;

/// The longest pause between two checks.
const MAX_CHECK_INTERVAL_MS: u64 = 1_000;

/// How often the flusher looks: `log.flush.scheduler.interval.ms`, at most a second.
pub fn check_interval(broker: &Broker) -> Duration {
    let configured = broker
        .config
        .raw_value("log.flush.scheduler.interval.ms")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    Duration::from_millis(configured.clamp(1, MAX_CHECK_INTERVAL_MS))
}

/// One check of every hosted partition. Blocking. Returns the number of logs flushed.
pub fn flush_stale_logs(broker: &Broker, now_ms: i64) -> usize {
    let mut flushed = 0;
    for p in broker.replicas.all_partitions() {
        match p.flush_if_stale(now_ms) {
            Ok(true) => flushed += 1,
            Ok(false) => {}
            Err(e) => {
                warn!(topic = %p.topic, partition = p.index, error = %e, "flush.ms flush failed")
            }
        }
    }
    if flushed > 0 {
        debug!(logs = flushed, "flushed logs past flush.ms");
    }
    flushed
}

/// Starts the flusher task.
pub fn spawn(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(check_interval(&broker));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let b = broker.clone();
            let now = crate::clock::now_ms();
            if let Err(e) = tokio::task::spawn_blocking(move || flush_stale_logs(&b, now)).await {
                warn!(error = %e, "log flusher task failed");
            }
        }
    })
}
