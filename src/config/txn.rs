//! The transaction coordinator's settings (Kafka's `transaction.*` and
//! `transactional.id.*` broker keys), read from the broker configuration (validated there
//! with the other keys).

use std::time::Duration;

use super::{parse_int, BrokerConfig};

#[derive(Clone, Debug)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`.
    pub state_log_partitions: i32,
    /// `transaction.state.log.replication.factor` (capped at the number of live brokers).
    pub state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr` (capped at the replication factor).
    pub state_log_min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub state_log_segment_bytes: i64,
    /// `transaction.max.timeout.ms`: the longest timeout a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration: Duration,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval: Duration,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval: Duration,
    /// `transaction.partition.verification.enable`.
    pub partition_verification: bool,
}

impl BrokerConfig {
    pub fn txn_config(&self) -> TxnConfig {
        // Each key has a default in the key table and a value that passed its check.
        let int = |key: &str| -> i64 {
            self.raw_value(key)
                .and_then(|v| parse_int(&v).ok())
                .unwrap_or_default()
        };
        TxnConfig {
            state_log_partitions: int("transaction.state.log.num.partitions").max(1) as i32,
            state_log_replication_factor: int("transaction.state.log.replication.factor")
                .clamp(1, i64::from(i16::MAX)) as i16,
            state_log_min_isr: int("transaction.state.log.min.isr").clamp(1, i64::from(i32::MAX))
                as i32,
            state_log_segment_bytes: int("transaction.state.log.segment.bytes"),
            max_timeout_ms: int("transaction.max.timeout.ms").clamp(1, i64::from(i32::MAX)) as i32,
            id_expiration: Duration::from_millis(
                int("transactional.id.expiration.ms").max(1) as u64
            ),
            abort_timed_out_interval: Duration::from_millis(
                int("transaction.abort.timed.out.transaction.cleanup.interval.ms").max(1) as u64,
            ),
            remove_expired_interval: Duration::from_millis(
                int("transaction.remove.expired.transaction.cleanup.interval.ms").max(1) as u64,
            ),
            partition_verification: self
                .raw_value("transaction.partition.verification.enable")
                .is_none_or(|v| v.trim().eq_ignore_ascii_case("true")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_keys_are_read() {
        let t = BrokerConfig::default_standalone().txn_config();
        assert_eq!(
            (
                t.state_log_partitions,
                t.state_log_replication_factor,
                t.state_log_min_isr
            ),
            (50, 3, 2)
        );
        assert_eq!(t.max_timeout_ms, 900_000);
        assert_eq!(t.abort_timed_out_interval, Duration::from_secs(10));
        assert_eq!(t.remove_expired_interval, Duration::from_secs(3600));
        assert!(t.partition_verification);
        assert_eq!(t.id_expiration, Duration::from_secs(7 * 24 * 3600));
        let t = BrokerConfig::from_properties_text(
            "transaction.state.log.num.partitions=4\ntransaction.max.timeout.ms=5000\n",
            &[],
        )
        .unwrap()
        .txn_config();
        assert_eq!((t.state_log_partitions, t.max_timeout_ms), (4, 5000));
    }
}
