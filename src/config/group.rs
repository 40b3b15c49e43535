//! The group coordinator's settings (Kafka's `group.*` and `offsets.*` broker keys), read from
//! the broker configuration (validated there with the other keys).

use std::time::Duration;

use super::{parse_int, BrokerConfig};

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
    /// KIP-848: the first of `group.consumer.assignors`, by name (`uniform` or `range`).
    pub consumer_assignor: String,
    /// KIP-848: `group.consumer.max.size`.
    pub consumer_max_size: usize,
}

impl BrokerConfig {
    pub fn group_config(&self) -> GroupConfig {
        // Each of these keys has a default in the key table and a value that passed its check,
        // so the fallback 0 is never used.
        let int = |key: &str| -> i64 {
            self.raw_value(key)
                .and_then(|v| parse_int(&v).ok())
                .unwrap_or_default()
        };
        GroupConfig {
            initial_rebalance_delay: Duration::from_millis(
                int("group.initial.rebalance.delay.ms").max(0) as u64,
            ),
            min_session_timeout_ms: int("group.min.session.timeout.ms") as i32,
            max_session_timeout_ms: int("group.max.session.timeout.ms") as i32,
            max_size: int("group.max.size").max(1) as usize,
            offsets_topic_partitions: int("offsets.topic.num.partitions").max(1) as i32,
            offsets_topic_replication_factor: int("offsets.topic.replication.factor").max(1) as i16,
            offsets_topic_segment_bytes: int("offsets.topic.segment.bytes"),
            offsets_retention: Duration::from_secs(
                int("offsets.retention.minutes").max(1) as u64 * 60,
            ),
            offsets_retention_check_interval: Duration::from_millis(
                int("offsets.retention.check.interval.ms").max(1) as u64,
            ),
            offset_metadata_max_bytes: int("offset.metadata.max.bytes").max(0) as usize,
            consumer_session_timeout: Duration::from_millis(
                int("group.consumer.session.timeout.ms").max(1) as u64,
            ),
            consumer_heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms")
                .clamp(1, i32::MAX as i64) as i32,
            consumer_assignor: self
                .raw_value("group.consumer.assignors")
                .and_then(|v| v.split(',').next().map(|a| a.trim().to_string()))
                .and_then(|a| match a.as_str() {
                    "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => {
                        Some("uniform".to_string())
                    }
                    "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => {
                        Some("range".to_string())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "uniform".to_string()),
            consumer_max_size: int("group.consumer.max.size").max(1) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let g = BrokerConfig::default_standalone().group_config();
        assert_eq!(g.initial_rebalance_delay, Duration::from_millis(3000));
        assert_eq!(
            (g.min_session_timeout_ms, g.max_session_timeout_ms),
            (6000, 1_800_000)
        );
        assert_eq!(g.max_size, i32::MAX as usize);
        assert_eq!(g.offsets_topic_partitions, 50);
        assert_eq!(g.offsets_topic_replication_factor, 3);
        assert_eq!(g.offsets_topic_segment_bytes, 104_857_600);
        assert_eq!(g.offsets_retention, Duration::from_secs(10080 * 60));
        assert_eq!(
            g.offsets_retention_check_interval,
            Duration::from_millis(600_000)
        );
        assert_eq!(g.offset_metadata_max_bytes, 4096);
        assert_eq!(g.consumer_session_timeout, Duration::from_millis(45_000));
        assert_eq!(g.consumer_heartbeat_interval_ms, 5000);
        assert_eq!(g.consumer_assignor, "uniform");
        assert_eq!(g.consumer_max_size, i32::MAX as usize);
    }

    #[test]
    fn set_values_are_read() {
        let c = BrokerConfig::from_properties_text(
            "group.max.size=7\noffsets.topic.num.partitions=3\ngroup.consumer.assignors=range\n",
            &[],
        )
        .unwrap();
        let g = c.group_config();
        assert_eq!((g.max_size, g.offsets_topic_partitions), (7, 3));
        assert_eq!(g.consumer_assignor, "range");
        // Kafka 3.9's class names name the same assignors.
        let c = BrokerConfig::from_properties_text(
            "group.consumer.assignors=org.apache.kafka.coordinator.group.assignor.RangeAssignor\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.group_config().consumer_assignor, "range");
    }
}
