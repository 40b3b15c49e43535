//! Client quotas as Kafka stores them (`/config/users/<u>`, `/config/clients/<c>`,
//! `/config/users/<u>/clients/<c>`, `<default>` for the default entity): the quota keys and
//! their types, and how a value is written (a whole number for the byte rates, a decimal for
//! `request_percentage`). Enforcement is not here: gregor stores and reports quotas.

/// The quota keys of user and client-id entities, and whether a value must be a whole number
/// (Kafka's `QuotaConfigs`: LONG) or may be a decimal (DOUBLE).
pub const QUOTA_KEYS: &[(&str, bool)] = &[
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];

/// Whether `key` is a quota key (a user's configs also hold SCRAM credentials).
pub fn is_quota_key(key: &str) -> bool {
    QUOTA_KEYS.iter().any(|(k, _)| *k == key)
}

/// The stored text of a quota value, or why it cannot be one.
pub fn encode_quota(key: &str, value: f64) -> Result<String, String> {
    let Some(&(_, whole)) = QUOTA_KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(format!("Invalid configuration key {key}"));
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(format!(
            "Quota {key} must be a positive number, not {value}"
        ));
    }
    if whole {
        if value.fract() != 0.0 || value > i64::MAX as f64 {
            return Err(format!("Configuration {key} must be a Long value"));
        }
        Ok(format!("{}", value as i64))
    } else {
        // Java's Double.toString for ordinary values: always a decimal point.
        let text = format!("{value}");
        Ok(if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        })
    }
}

/// A stored quota value as DescribeClientQuotas reports it.
pub fn decode_quota(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stored_as_kafka_writes_them() {
        assert_eq!(
            encode_quota("producer_byte_rate", 1048576.0).unwrap(),
            "1048576"
        );
        assert_eq!(encode_quota("request_percentage", 200.0).unwrap(), "200.0");
        assert_eq!(encode_quota("request_percentage", 12.5).unwrap(), "12.5");
        assert!(encode_quota("producer_byte_rate", 1.5).is_err());
        assert!(encode_quota("producer_byte_rate", -1.0).is_err());
        assert!(encode_quota("SCRAM-SHA-512", 1.0).is_err());
        assert_eq!(decode_quota("1048576"), Some(1048576.0));
    }
}
