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

use super::ReplicaManager;
use crate::config::BrokerConfig;
use crate::scheduler::{FirstRun, Scheduler};

/// The longest pause between two checks.
const MAX_CHECK_INTERVAL_MS: u64 = 1_000;

/// How often the flusher looks: `log.flush.scheduler.interval.ms`, at most a second.
pub fn check_interval(config: &BrokerConfig) -> Duration {
    Duration::from_millis(
        config
            .log_flush_scheduler_interval_ms
            .clamp(1, MAX_CHECK_INTERVAL_MS),
    )
}

/// One check of every hosted partition. Blocking. Returns the number of logs flushed.
pub fn flush_stale_logs(replicas: &ReplicaManager, now_ms: i64) -> usize {
    let mut flushed = 0;
    for p in replicas.all_partitions() {
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

/// Schedules the flusher's checks.
pub fn schedule(scheduler: &mut Scheduler, replicas: Arc<ReplicaManager>, interval: Duration) {
    scheduler.schedule_blocking("log flusher", interval, FirstRun::AfterPeriod, move || {
        flush_stale_logs(&replicas, crate::clock::now_ms());
    });
}
