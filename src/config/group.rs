//! The group coordinator's settings (Kafka's `group.*` and `offsets.*` broker keys), read from
//! the broker configuration (validated there with the other keys).

use std::time::Duration;

use super::BrokerConfig;

#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for more members.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.replication.factor` (capped at the number of live brokers).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i64,
    /// `offsets.retention.minutes`.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval: Duration,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// KIP-848: `group.consumer.session.timeout.ms`.
    pub consumer_session_timeout: Duration,
    /// KIP-848: `group.consumer.heartbeat.interval.ms`, told to members in every heartbeat.
    pub consumer_heartbeat_interval_ms: i32,
    /// KIP-848: the first of `group.consumer.assignors` (`uniform` or `range`).
    pub consumer_assignor: String,
    /// KIP-848: `group.consumer.max.size`.
    pub consumer_max_size: usize,
}

impl BrokerConfig {
    pub fn group_config(&self) -> GroupConfig {
        let int = |key: &str, default: i64| -> i64 {
            self.raw_value(key)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default)
        };
        GroupConfig {
            initial_rebalance_delay: Duration::from_millis(
                int("group.initial.rebalance.delay.ms", 3000).max(0) as u64,
            ),
            min_session_timeout_ms: int("group.min.session.timeout.ms", 6000) as i32,
            max_session_timeout_ms: int("group.max.session.timeout.ms", 1_800_000) as i32,
            max_size: int("group.max.size", i32::MAX as i64).max(1) as usize,
            offsets_topic_partitions: int("offsets.topic.num.partitions", 50).max(1) as i32,
            offsets_topic_replication_factor: int("offsets.topic.replication.factor", 3).max(1)
                as i16,
            offsets_topic_segment_bytes: int("offsets.topic.segment.bytes", 104_857_600),
            offsets_retention: Duration::from_secs(
                int("offsets.retention.minutes", 10080).max(1) as u64 * 60,
            ),
            offsets_retention_check_interval: Duration::from_millis(
                int("offsets.retention.check.interval.ms", 600_000).max(1) as u64,
            ),
            offset_metadata_max_bytes: int("offset.metadata.max.bytes", 4096).max(0) as usize,
            consumer_session_timeout: Duration::from_millis(
                int("group.consumer.session.timeout.ms", 45_000).max(1) as u64,
            ),
            consumer_heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms", 5000)
                .clamp(1, i32::MAX as i64) as i32,
            consumer_assignor: self
                .raw_value("group.consumer.assignors")
                .and_then(|v| v.split(',').next().map(|a| a.trim().to_string()))
                .filter(|a| a == "uniform" || a == "range")
                .unwrap_or_else(|| "uniform".to_string()),
            consumer_max_size: int("group.consumer.max.size", i32::MAX as i64).max(1) as usize,
        }
    }
}
