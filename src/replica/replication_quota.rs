//! Replication throttles (Kafka's `ReplicationQuotaManager`, KIP-73), as
//! `kafka-reassign-partitions.sh --throttle` sets them: the brokers' dynamic
//! `leader.replication.throttled.rate` and `follower.replication.throttled.rate` (bytes per
//! second), applied only to the replicas that the topics' `leader.replication.throttled.replicas`
//! and `follower.replication.throttled.replicas` name, and only while the replica is out of
//! the ISR: a reassignment's copy is throttled, the ordinary replication of in-sync followers
//! never is.
//!
//! The rate is measured as Kafka measures it: bytes over a window of
//! `REPLICATION_QUOTA_WINDOW_NUM` one-second samples. Once over the bound, a leader answers
//! the throttled partitions with no records, and a follower leaves them out of its fetches,
//! until the rate falls below it again.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// Kafka's `replication.quota.window.num` (samples) and `.window.size.seconds` (1).
const REPLICATION_QUOTA_WINDOW_NUM: usize = 11;
const SAMPLE_MS: i64 = 1000;

/// One direction's throttle on this broker: a bound in bytes per second (`i64::MAX`: none)
/// and the bytes recorded against it.
pub struct ReplicationQuota {
    bound: AtomicI64,
    /// Bytes per sample, with the sample's start (ms); a sample older than the window is
    /// reused.
    samples: Mutex<[(i64, u64); REPLICATION_QUOTA_WINDOW_NUM]>,
}

impl Default for ReplicationQuota {
    fn default() -> Self {
        ReplicationQuota {
            bound: AtomicI64::new(i64::MAX),
            samples: Mutex::new([(i64::MIN, 0); REPLICATION_QUOTA_WINDOW_NUM]),
        }
    }
}

impl ReplicationQuota {
    /// Sets the bound (bytes per second; negative or `i64::MAX`: unthrottled).
    pub fn set_bound(&self, bytes_per_second: i64) {
        let bound = if bytes_per_second < 0 {
            i64::MAX
        } else {
            bytes_per_second
        };
        self.bound.store(bound, Ordering::Relaxed);
    }

    /// Whether a bound is set (throttled replicas are only looked up then).
    pub fn is_bounded(&self) -> bool {
        self.bound.load(Ordering::Relaxed) != i64::MAX
    }

    /// Counts `bytes` replicated for a throttled replica at `now_ms`.
    pub fn record(&self, bytes: u64, now_ms: i64) {
        let start = now_ms - now_ms.rem_euclid(SAMPLE_MS);
        let slot = (now_ms.div_euclid(SAMPLE_MS)).rem_euclid(REPLICATION_QUOTA_WINDOW_NUM as i64);
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let sample = &mut samples[slot as usize];
        if sample.0 != start {
            *sample = (start, 0);
        }
        sample.1 = sample.1.saturating_add(bytes);
    }

    /// Whether the rate over the window exceeds the bound at `now_ms`. The rate divides by
    /// the time the window's samples cover (at least one sample), as Kafka's `Rate` does.
    pub fn is_exceeded(&self, now_ms: i64) -> bool {
        let bound = self.bound.load(Ordering::Relaxed);
        if bound == i64::MAX {
            return false;
        }
        let window_start = now_ms - SAMPLE_MS * REPLICATION_QUOTA_WINDOW_NUM as i64;
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let live = samples.iter().filter(|(start, _)| *start > window_start);
        let (mut bytes, mut oldest) = (0u64, now_ms);
        for (start, b) in live {
            bytes = bytes.saturating_add(*b);
            oldest = oldest.min(*start);
        }
        let elapsed_ms = (now_ms - oldest).max(SAMPLE_MS);
        // bytes / seconds > bound, without floating point.
        u128::from(bytes) * 1000 > i128::from(bound).max(0) as u128 * elapsed_ms as u128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_over_the_window_is_compared_with_the_bound() {
        let unbounded = ReplicationQuota::default();
        unbounded.record(1 << 30, 0);
        assert!(!unbounded.is_exceeded(0), "no bound: never exceeded");
        let q = ReplicationQuota::default();
        q.set_bound(1000);
        q.record(900, 10_000);
        assert!(!q.is_exceeded(10_500), "900 B in the first second");
        q.record(200, 10_600);
        assert!(q.is_exceeded(10_700), "1100 B within one second");
        // Spread over more time, the rate falls under the bound again.
        assert!(!q.is_exceeded(12_500), "1100 B over 2.5 s");
        // Samples older than the window no longer count.
        q.record(5000, 30_000);
        assert!(q.is_exceeded(30_100));
        assert!(!q.is_exceeded(42_000));
        q.set_bound(-1);
        assert!(!q.is_exceeded(30_100));
    }
}
