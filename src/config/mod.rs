//! Configuration of the gregor broker: the broker's own settings, read from a Kafka-style
//! `server.properties` plus `--override key=value` flags (`broker`), and the per-topic settings that
//! CreateTopics / AlterConfigs accept and DescribeConfigs reports (`topic`).
//!
//! Key names, types, defaults, ranges and documentation follow Apache Kafka 3.9 (the last release
//! with ZooKeeper mode, which gregor emulates), so an existing Kafka configuration mostly just works.
//! This module also holds the shared DescribeConfigs row types and value checks.

pub mod broker;
mod broker_keys;
pub mod dynamic;
pub mod group;
pub mod listener;
mod properties;
pub mod topic;
pub mod txn;

pub use broker::{AuthorizerSettings, BrokerConfig, CliAction, ACL_AUTHORIZER_CLASS_NAMES};
pub use dynamic::{BrokerEntity, DynamicBrokerConfigs};
pub use group::GroupConfig;
pub use listener::{Listener, SecurityProtocol};
pub use topic::{describe_topic_configs, topic_settings, validate_topic_config, TopicSettings};
pub use txn::TxnConfig;

/// One row of a DescribeConfigs answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    pub config_type: ConfigType,
    pub documentation: Option<String>,
    pub synonyms: Vec<ConfigSynonym>,
}

/// One synonym of a DescribeConfigs row: where else (and under which name) the value may come from.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// Kafka's DescribeConfigs source codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    Unknown = 0,
    /// DYNAMIC_TOPIC_CONFIG: a per-topic override.
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    /// Set in server.properties or by `--override`.
    StaticBrokerConfig = 4,
    /// Not set anywhere: the built-in default.
    DefaultConfig = 5,
    DynamicBrokerLoggerConfig = 6,
}

impl ConfigSource {
    /// The wire code of this source.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// Kafka's config types as DescribeConfigs (v3+) reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    /// The wire code of this type.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// How the value of one key is checked, mirroring Kafka's ConfigDef types and validators.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Check {
    /// A 32-bit integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A 64-bit integer in `min..=max`.
    Long { min: i64, max: i64 },
    /// A floating point number in `min..=max`.
    Double { min: f64, max: f64 },
    /// `true` or `false`, case-insensitive.
    Bool,
    /// Any string.
    Str,
    /// Exactly one of the given strings.
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose items are all among the given strings.
    ListOf(&'static [&'static str]),
    /// `*` or a list of `partition:brokerId` pairs (the replication throttle lists).
    ThrottledReplicas,
    /// A compression level: `-1` or `1..=9` (gzip).
    GzipLevel,
    /// Checked by dedicated code elsewhere (listeners, log directories).
    Special,
}

/// Integer bounds of Java's int.
pub(crate) const INT_MIN: i64 = i32::MIN as i64;
pub(crate) const INT_MAX: i64 = i32::MAX as i64;

/// Java's Long.MAX_VALUE as a default: Kafka's "never" / "no limit".
pub(crate) const LONG_MAX: &str = "9223372036854775807";

/// An INT key with Kafka's `atLeast(min)` validator.
pub(crate) const fn int(min: i64) -> Check {
    Check::Int { min, max: INT_MAX }
}

/// A LONG key with Kafka's `atLeast(min)` validator.
pub(crate) const fn long(min: i64) -> Check {
    Check::Long { min, max: i64::MAX }
}

/// Splits a Kafka list value on commas, trimming items and dropping empty ones.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a Java-style integer (surrounding whitespace ignored).
pub(crate) fn parse_int(value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| "Not a number".to_string())
}

/// Parses a Java-style boolean (`true`/`false`, any case, surrounding whitespace ignored).
pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("Expected value to be either true or false".to_string())
    }
}

/// Checks `value` against `check`; the error reads like Kafka's ConfigException message.
pub(crate) fn check_value(name: &str, value: &str, check: Check) -> Result<(), String> {
    let invalid =
        |reason: String| format!("Invalid value {value} for configuration {name}: {reason}");
    match check {
        Check::Int { min, max } | Check::Long { min, max } => {
            let n = parse_int(value).map_err(invalid)?;
            let (lo, hi) = match check {
                Check::Int { .. } => (INT_MIN, INT_MAX),
                _ => (i64::MIN, i64::MAX),
            };
            if n < lo || n > hi {
                return Err(invalid("Not a number of the right size".to_string()));
            }
            if n < min {
                return Err(invalid(format!("Value must be at least {min}")));
            }
            if n > max {
                return Err(invalid(format!("Value must be no more than {max}")));
            }
            Ok(())
        }
        Check::Double { min, max } => {
            let x = value
                .trim()
                .parse::<f64>()
                .map_err(|_| invalid("Not a number".to_string()))?;
            if x.is_nan() || x < min || x > max {
                return Err(invalid(format!("Value must be between {min} and {max}")));
            }
            Ok(())
        }
        Check::Bool => parse_bool(value).map(|_| ()).map_err(invalid),
        Check::Str | Check::Special => Ok(()),
        Check::OneOf(allowed) => {
            if allowed.contains(&value.trim()) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )))
            }
        }
        Check::ListOf(allowed) => {
            let items = split_list(value);
            if items.is_empty() {
                return Err(invalid("Empty list".to_string()));
            }
            for item in &items {
                if !allowed.contains(&item.as_str()) {
                    return Err(invalid(format!(
                        "Invalid value {item}, must be a subset of [{}]",
                        allowed.join(", ")
                    )));
                }
            }
            Ok(())
        }
        Check::ThrottledReplicas => {
            let items = split_list(value);
            if items.len() == 1 && items[0] == "*" {
                return Ok(());
            }
            for item in &items {
                let ok = match item.split_once(':') {
                    Some((p, b)) => {
                        p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    }
                    None => false,
                };
                if !ok {
                    return Err(invalid(
                        "must be the literal '*' or a list of replicas in the following format: \
                         [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                            .to_string(),
                    ));
                }
            }
            Ok(())
        }
        Check::GzipLevel => {
            let n = parse_int(value).map_err(invalid)?;
            if n == -1 || (1..=9).contains(&n) {
                Ok(())
            } else {
                Err(invalid("Value must be -1 or between 1 and 9".to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(ConfigSource::TopicConfig.code(), 1);
        assert_eq!(ConfigSource::StaticBrokerConfig.code(), 4);
        assert_eq!(ConfigSource::DefaultConfig.code(), 5);
        assert_eq!(ConfigSource::DynamicBrokerLoggerConfig.code(), 6);
        assert_eq!(ConfigType::Boolean.code(), 1);
        assert_eq!(ConfigType::Long.code(), 5);
        assert_eq!(ConfigType::List.code(), 7);
        assert_eq!(ConfigType::Password.code(), 9);
    }

    #[test]
    fn checks() {
        let int = Check::Int {
            min: 1,
            max: INT_MAX,
        };
        assert!(check_value("k", " 5 ", int).is_ok());
        assert!(check_value("k", "0", int)
            .unwrap_err()
            .contains("at least 1"));
        assert!(check_value("k", "abc", int)
            .unwrap_err()
            .contains("Invalid value abc for configuration k"));
        assert!(check_value("k", "3000000000", int).is_err());
        let long = Check::Long {
            min: -1,
            max: i64::MAX,
        };
        assert!(check_value("k", "3000000000", long).is_ok());
        assert!(check_value("k", "TRUE", Check::Bool).is_ok());
        assert!(check_value("k", "yes", Check::Bool).is_err());
        let list = Check::ListOf(&["compact", "delete"]);
        assert!(check_value("k", "compact, delete", list).is_ok());
        assert!(check_value("k", "compact,remove", list).is_err());
        assert!(check_value("k", "", list).is_err());
        assert!(check_value("k", "*", Check::ThrottledReplicas).is_ok());
        assert!(check_value("k", "0:1, 1:2", Check::ThrottledReplicas).is_ok());
        assert!(check_value("k", "0-1", Check::ThrottledReplicas).is_err());
        assert!(check_value("k", "1.5", Check::Double { min: 0.0, max: 1.0 }).is_err());
        assert!(check_value("k", "0.25", Check::Double { min: 0.0, max: 1.0 }).is_ok());
        assert!(check_value("k", "-1", Check::GzipLevel).is_ok());
        assert!(check_value("k", "0", Check::GzipLevel).is_err());
    }
}
