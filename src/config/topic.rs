//! Topic-level configuration: Kafka's topic config keys (as of Kafka 3.9) with their types,
//! defaults, ranges, docs and broker-level synonyms; validation for CreateTopics / AlterConfigs;
//! the effective [`TopicSettings`] the log uses; and DescribeConfigs rows for resource type TOPIC.
//!
//! A topic's value comes from its own override, else from the broker's synonym key (e.g.
//! `log.segment.bytes` for `segment.bytes`) when gregor honours that key, else Kafka's default.

use std::collections::BTreeMap;

use super::broker_keys::broker_key;
use super::{
    check_value, int, long, parse_bool, parse_int, split_list, BrokerConfig, Check, ConfigEntry,
    ConfigSource, ConfigSynonym, ConfigType, LONG_MAX,
};

/// The effective settings of one topic: topic overrides (from CreateTopics configs / stored), else
/// the broker's log.* default, else Kafka's default.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSettings {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// `segment.index.bytes`: preallocated size of each `.index` / `.timeindex` file.
    pub segment_index_bytes: u32,
    pub index_interval_bytes: u32,
    pub flush_messages: u64,
    pub flush_ms: i64,
    pub max_message_bytes: i32,
    pub min_insync_replicas: i32,
    /// `delete`, `compact` or `compact,delete` (normalised: no spaces).
    pub cleanup_policy: String,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub message_timestamp_type: String,
    /// `producer`, `gzip`, `snappy`, `lz4`, `zstd` or `uncompressed`.
    pub compression_type: String,
    pub unclean_leader_election_enable: bool,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the dirty share of a log that makes it worth cleaning.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records stay uncompacted at least this long.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log with dirty records older than this is cleaned
    /// whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `leader.replication.throttled.replicas`: replicas whose fetches from this broker as
    /// leader count against `leader.replication.throttled.rate`.
    pub leader_replication_throttled_replicas: ThrottledReplicas,
    /// `follower.replication.throttled.replicas`: replicas whose fetching on this broker
    /// counts against `follower.replication.throttled.rate`.
    pub follower_replication_throttled_replicas: ThrottledReplicas,
}

/// A topic's `leader.replication.throttled.replicas` or `follower.replication.throttled.replicas`:
/// `*`, or `partition:broker` pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ThrottledReplicas {
    #[default]
    None,
    All,
    Listed(Vec<(i32, i32)>),
}

impl ThrottledReplicas {
    /// Parses a validated value (an entry that does not parse is left out).
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        if value == "*" {
            return ThrottledReplicas::All;
        }
        let listed: Vec<(i32, i32)> = value
            .split(',')
            .filter_map(|entry| {
                let (p, b) = entry.trim().split_once(':')?;
                Some((p.trim().parse().ok()?, b.trim().parse().ok()?))
            })
            .collect();
        if listed.is_empty() {
            ThrottledReplicas::None
        } else {
            ThrottledReplicas::Listed(listed)
        }
    }

    /// Whether broker `broker`'s replica of `partition` is throttled.
    pub fn includes(&self, partition: i32, broker: i32) -> bool {
        match self {
            ThrottledReplicas::None => false,
            ThrottledReplicas::All => true,
            ThrottledReplicas::Listed(l) => l.contains(&(partition, broker)),
        }
    }
}

impl TopicSettings {
    /// `cleanup.policy` includes `compact`.
    pub fn compacted(&self) -> bool {
        self.cleanup_policy
            .split(',')
            .any(|p| p.trim() == "compact")
    }
}

/// How a broker synonym's value converts to the topic key's unit.
#[derive(Clone, Copy, Debug)]
enum Conv {
    Same,
    MinutesToMs,
    HoursToMs,
}

/// One topic config key.
#[derive(Clone, Copy, Debug)]
struct TopicKey {
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    check: Check,
    /// Kafka's broker synonyms, highest precedence first; only those gregor honours are used.
    synonyms: &'static [(&'static str, Conv)],
    doc: &'static str,
}

const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Kafka 3.9's topic configs, sorted by name.
const TOPIC_KEYS: &[TopicKey] = &[
    TopicKey { name: "cleanup.policy", ty: ConfigType::List, default: "delete", check: Check::ListOf(&["compact", "delete"]),
        synonyms: &[("log.cleanup.policy", Conv::Same)],
        doc: "This config designates the retention policy to use on log segments. The \"delete\" policy (which is the default) will discard old segments when their retention time or size limit has been reached. The \"compact\" policy will enable log compaction, which retains the latest value for each key." },
    TopicKey { name: "compression.gzip.level", ty: ConfigType::Int, default: "-1", check: Check::GzipLevel,
        synonyms: &[("compression.gzip.level", Conv::Same)],
        doc: "The compression level to use if compression.type is set to gzip." },
    TopicKey { name: "compression.lz4.level", ty: ConfigType::Int, default: "9", check: Check::Int { min: 1, max: 17 },
        synonyms: &[("compression.lz4.level", Conv::Same)],
        doc: "The compression level to use if compression.type is set to lz4." },
    TopicKey { name: "compression.type", ty: ConfigType::String, default: "producer", check: Check::OneOf(COMPRESSION_TYPES),
        synonyms: &[("compression.type", Conv::Same)],
        doc: "Specify the final compression type for a given topic. This configuration accepts the standard compression codecs ('gzip', 'snappy', 'lz4', 'zstd'). It additionally accepts 'uncompressed' which is equivalent to no compression; and 'producer' which means retain the original compression codec set by the producer." },
    TopicKey { name: "compression.zstd.level", ty: ConfigType::Int, default: "3", check: Check::Int { min: -131072, max: 22 },
        synonyms: &[("compression.zstd.level", Conv::Same)],
        doc: "The compression level to use if compression.type is set to zstd." },
    TopicKey { name: "delete.retention.ms", ty: ConfigType::Long, default: "86400000", check: long(0),
        synonyms: &[("log.cleaner.delete.retention.ms", Conv::Same)],
        doc: "The amount of time to retain delete tombstone markers for log compacted topics." },
    TopicKey { name: "file.delete.delay.ms", ty: ConfigType::Long, default: "60000", check: long(0),
        synonyms: &[("log.segment.delete.delay.ms", Conv::Same)],
        doc: "The time to wait before deleting a file from the filesystem" },
    TopicKey { name: "flush.messages", ty: ConfigType::Long, default: LONG_MAX, check: long(1),
        synonyms: &[("log.flush.interval.messages", Conv::Same)],
        doc: "This setting allows specifying an interval at which we will force an fsync of data written to the log. For example if this was set to 1 we would fsync after every message." },
    TopicKey { name: "flush.ms", ty: ConfigType::Long, default: LONG_MAX, check: long(0),
        synonyms: &[("log.flush.interval.ms", Conv::Same), ("log.flush.scheduler.interval.ms", Conv::Same)],
        doc: "This setting allows specifying a time interval at which we will force an fsync of data written to the log." },
    TopicKey { name: "follower.replication.throttled.replicas", ty: ConfigType::List, default: "", check: Check::ThrottledReplicas,
        synonyms: &[],
        doc: "A list of replicas for which log replication should be throttled on the follower side. The list should describe a set of replicas in the form [PartitionId]:[BrokerId],[PartitionId]:[BrokerId]:... or alternatively the wildcard '*' can be used to throttle all replicas for this topic." },
    TopicKey { name: "index.interval.bytes", ty: ConfigType::Int, default: "4096", check: int(0),
        synonyms: &[("log.index.interval.bytes", Conv::Same)],
        doc: "This setting controls how frequently Kafka adds an index entry to its offset index." },
    TopicKey { name: "leader.replication.throttled.replicas", ty: ConfigType::List, default: "", check: Check::ThrottledReplicas,
        synonyms: &[],
        doc: "A list of replicas for which log replication should be throttled on the leader side. The list should describe a set of replicas in the form [PartitionId]:[BrokerId],[PartitionId]:[BrokerId]:... or alternatively the wildcard '*' can be used to throttle all replicas for this topic." },
    TopicKey { name: "local.retention.bytes", ty: ConfigType::Long, default: "-2", check: long(-2),
        synonyms: &[("log.local.retention.bytes", Conv::Same)],
        doc: "The maximum size of local log segments that can grow for a partition before it deletes the old segments. Default value is -2, it represents `retention.bytes` value to be used." },
    TopicKey { name: "local.retention.ms", ty: ConfigType::Long, default: "-2", check: long(-2),
        synonyms: &[("log.local.retention.ms", Conv::Same)],
        doc: "The number of milliseconds to keep the local log segment before it gets deleted. Default value is -2, it represents `retention.ms` value is to be used." },
    TopicKey { name: "max.compaction.lag.ms", ty: ConfigType::Long, default: LONG_MAX, check: long(1),
        synonyms: &[("log.cleaner.max.compaction.lag.ms", Conv::Same)],
        doc: "The maximum time a message will remain ineligible for compaction in the log. Only applicable for logs that are being compacted." },
    TopicKey { name: "max.message.bytes", ty: ConfigType::Int, default: "1048588", check: int(0),
        synonyms: &[("message.max.bytes", Conv::Same)],
        doc: "The largest record batch size allowed by Kafka (after compression if compression is enabled)." },
    TopicKey { name: "message.downconversion.enable", ty: ConfigType::Boolean, default: "true", check: Check::Bool,
        synonyms: &[("log.message.downconversion.enable", Conv::Same)],
        doc: "This configuration controls whether down-conversion of message formats is enabled to satisfy consume requests." },
    TopicKey { name: "message.format.version", ty: ConfigType::String, default: "3.0-IV1", check: Check::Str,
        synonyms: &[("log.message.format.version", Conv::Same)],
        doc: "[DEPRECATED] Specify the message format version the broker will use to append messages to the logs." },
    TopicKey { name: "message.timestamp.after.max.ms", ty: ConfigType::Long, default: LONG_MAX, check: long(0),
        synonyms: &[("log.message.timestamp.after.max.ms", Conv::Same)],
        doc: "This configuration sets the allowable timestamp difference between the message timestamp and the broker's timestamp. The message timestamp can be later than or equal to the broker's timestamp, with the maximum allowable difference determined by the value set in this configuration." },
    TopicKey { name: "message.timestamp.before.max.ms", ty: ConfigType::Long, default: LONG_MAX, check: long(0),
        synonyms: &[("log.message.timestamp.before.max.ms", Conv::Same)],
        doc: "This configuration sets the allowable timestamp difference between the broker's timestamp and the message timestamp. The message timestamp can be earlier than or equal to the broker's timestamp, with the maximum allowable difference determined by the value set in this configuration." },
    TopicKey { name: "message.timestamp.difference.max.ms", ty: ConfigType::Long, default: LONG_MAX, check: long(0),
        synonyms: &[("log.message.timestamp.difference.max.ms", Conv::Same)],
        doc: "[DEPRECATED] The maximum difference allowed between the timestamp when a broker receives a message and the timestamp specified in the message." },
    TopicKey { name: "message.timestamp.type", ty: ConfigType::String, default: "CreateTime", check: Check::OneOf(&["CreateTime", "LogAppendTime"]),
        synonyms: &[("log.message.timestamp.type", Conv::Same)],
        doc: "Define whether the timestamp in the message is message create time or log append time." },
    TopicKey { name: "min.cleanable.dirty.ratio", ty: ConfigType::Double, default: "0.5", check: Check::Double { min: 0.0, max: 1.0 },
        synonyms: &[("log.cleaner.min.cleanable.ratio", Conv::Same)],
        doc: "This configuration controls how frequently the log compactor will attempt to clean the log (assuming log compaction is enabled)." },
    TopicKey { name: "min.compaction.lag.ms", ty: ConfigType::Long, default: "0", check: long(0),
        synonyms: &[("log.cleaner.min.compaction.lag.ms", Conv::Same)],
        doc: "The minimum time a message will remain uncompacted in the log. Only applicable for logs that are being compacted." },
    TopicKey { name: "min.insync.replicas", ty: ConfigType::Int, default: "1", check: int(1),
        synonyms: &[("min.insync.replicas", Conv::Same)],
        doc: "When a producer sets acks to \"all\" (or \"-1\"), this configuration specifies the minimum number of replicas that must acknowledge a write for the write to be considered successful." },
    TopicKey { name: "preallocate", ty: ConfigType::Boolean, default: "false", check: Check::Bool,
        synonyms: &[("log.preallocate", Conv::Same)],
        doc: "True if we should preallocate the file on disk when creating a new log segment." },
    TopicKey { name: "remote.log.copy.disable", ty: ConfigType::Boolean, default: "false", check: Check::Bool,
        synonyms: &[],
        doc: "Determines whether tiered data for a topic should become read only, and no more data uploading on a topic." },
    TopicKey { name: "remote.log.delete.on.disable", ty: ConfigType::Boolean, default: "false", check: Check::Bool,
        synonyms: &[],
        doc: "Determines whether tiered data for a topic should be deleted after tiered storage is disabled on a topic." },
    TopicKey { name: "remote.storage.enable", ty: ConfigType::Boolean, default: "false", check: Check::Bool,
        synonyms: &[],
        doc: "To enable tiered storage for a topic, set this configuration as true." },
    TopicKey { name: "retention.bytes", ty: ConfigType::Long, default: "-1", check: long(i64::MIN),
        synonyms: &[("log.retention.bytes", Conv::Same)],
        doc: "This configuration controls the maximum size a partition (which consists of log segments) can grow to before we will discard old log segments to free up space if we are using the \"delete\" retention policy." },
    TopicKey { name: "retention.ms", ty: ConfigType::Long, default: "604800000", check: long(-1),
        synonyms: &[("log.retention.ms", Conv::Same), ("log.retention.minutes", Conv::MinutesToMs), ("log.retention.hours", Conv::HoursToMs)],
        doc: "This configuration controls the maximum time we will retain a log before we will discard old log segments to free up space if we are using the \"delete\" retention policy. If set to -1, no time limit is applied." },
    TopicKey { name: "segment.bytes", ty: ConfigType::Int, default: "1073741824", check: int(14),
        synonyms: &[("log.segment.bytes", Conv::Same)],
        doc: "This configuration controls the segment file size for the log. Retention and cleaning is always done a file at a time so a larger segment size means fewer files but less granular control over retention." },
    TopicKey { name: "segment.index.bytes", ty: ConfigType::Int, default: "10485760", check: int(4),
        synonyms: &[("log.index.size.max.bytes", Conv::Same)],
        doc: "This configuration controls the size of the index that maps offsets to file positions." },
    TopicKey { name: "segment.jitter.ms", ty: ConfigType::Long, default: "0", check: long(0),
        synonyms: &[("log.roll.jitter.ms", Conv::Same), ("log.roll.jitter.hours", Conv::HoursToMs)],
        doc: "The maximum random jitter subtracted from the scheduled segment roll time to avoid thundering herds of segment rolling" },
    TopicKey { name: "segment.ms", ty: ConfigType::Long, default: "604800000", check: long(1),
        synonyms: &[("log.roll.ms", Conv::Same), ("log.roll.hours", Conv::HoursToMs)],
        doc: "This configuration controls the period of time after which Kafka will force the log to roll even if the segment file isn't full to ensure that retention can delete or compact old data." },
    TopicKey { name: "unclean.leader.election.enable", ty: ConfigType::Boolean, default: "false", check: Check::Bool,
        synonyms: &[("unclean.leader.election.enable", Conv::Same)],
        doc: "Indicates whether to enable replicas not in the ISR set to be elected as leader as a last resort, even though doing so may result in data loss." },
];

fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// The broker synonyms of `key` that gregor honours, highest precedence first.
fn honoured_synonyms(key: &TopicKey) -> Vec<(&'static str, Conv)> {
    key.synonyms
        .iter()
        .copied()
        .filter(|(name, _)| broker_key(name).is_some())
        .collect()
}

/// CreateTopics / AlterConfigs validation of one topic config (Kafka 3.9's names and ranges).
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    match topic_key(name) {
        None => Err(format!("Unknown topic config name: {name}")),
        Some(key) => check_value(name, value, key.check),
    }
}

/// A topic override, if present and valid (stored overrides that fail validation are ignored).
fn valid_override<'a>(overrides: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    let value = overrides.get(name)?;
    validate_topic_config(name, value)
        .ok()
        .map(|_| value.trim())
}

/// Converts a broker synonym's value to the topic key's unit.
fn convert(value: &str, conv: Conv) -> String {
    let factor = match conv {
        Conv::Same => return value.trim().to_string(),
        Conv::MinutesToMs => 60_000,
        Conv::HoursToMs => 3_600_000,
    };
    match parse_int(value) {
        Ok(n) => n.saturating_mul(factor).to_string(),
        Err(_) => value.trim().to_string(),
    }
}

/// The broker-level value of a topic key from the broker's dynamic or explicit keys or their
/// defaults (first configured honoured synonym, else the first honoured synonym with a
/// default), converted.
fn broker_level_value(key: &TopicKey, broker: &BrokerConfig) -> Option<String> {
    let synonyms = honoured_synonyms(key);
    for (name, conv) in &synonyms {
        if let Some((v, _)) = broker.configured(name) {
            return Some(convert(v, *conv));
        }
    }
    for (name, conv) in &synonyms {
        if let Some(v) = broker.raw_value(name) {
            return Some(convert(&v, *conv));
        }
    }
    None
}

/// The value of `name` for a topic (override, else broker level, else Kafka default), as a string.
fn value_of(name: &str, overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> String {
    if let Some(v) = valid_override(overrides, name) {
        return v.to_string();
    }
    match topic_key(name) {
        Some(key) => broker_level_value(key, broker).unwrap_or_else(|| key.default.to_string()),
        None => String::new(),
    }
}

/// The effective settings of one topic. Invalid stored overrides are ignored (the broker level
/// value applies); for the keys with a typed field in [`BrokerConfig`] the field is used.
pub fn topic_settings(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> TopicSettings {
    let num = |name: &str| valid_override(overrides, name).and_then(|v| parse_int(v).ok());
    // For keys without a typed broker field: the value (override, broker level, else the
    // table's default) parsed. Every one of them was validated, so the parse cannot fail; should
    // it, the table's default applies rather than a panic.
    let num_of = |name: &str| -> i64 {
        parse_int(&value_of(name, overrides, broker))
            .or_else(|_| parse_int(topic_key(name).map_or("", |k| k.default)))
            .unwrap_or_default()
    };
    TopicSettings {
        segment_bytes: num("segment.bytes").map_or(broker.log_segment_bytes, |n| n as u64),
        segment_ms: num_of("segment.ms"),
        // Validated as an int of at least 4, so it fits.
        segment_index_bytes: u32::try_from(num_of("segment.index.bytes")).unwrap_or(u32::MAX),
        index_interval_bytes: num("index.interval.bytes")
            .map_or(broker.log_index_interval_bytes, |n| n as u32),
        flush_messages: num("flush.messages")
            .map_or(broker.log_flush_interval_messages, |n| n as u64),
        flush_ms: match num("flush.ms") {
            Some(n) => n,
            None => match broker.log_flush_interval_ms {
                Some(ms) => i64::try_from(ms).unwrap_or(i64::MAX),
                None => num_of("flush.ms"),
            },
        },
        max_message_bytes: num("max.message.bytes").map_or(broker.message_max_bytes, |n| n as i32),
        min_insync_replicas: num("min.insync.replicas")
            .map_or(broker.min_insync_replicas, |n| n as i32),
        cleanup_policy: match valid_override(overrides, "cleanup.policy") {
            Some(v) => split_list(v).join(","),
            None => broker.log_cleanup_policy.clone(),
        },
        retention_ms: num("retention.ms").unwrap_or(broker.log_retention_ms),
        retention_bytes: num("retention.bytes").unwrap_or(broker.log_retention_bytes),
        message_timestamp_type: value_of("message.timestamp.type", overrides, broker),
        compression_type: value_of("compression.type", overrides, broker),
        unclean_leader_election_enable: parse_bool(&value_of(
            "unclean.leader.election.enable",
            overrides,
            broker,
        ))
        .unwrap_or(false),
        delete_retention_ms: num_of("delete.retention.ms"),
        min_cleanable_dirty_ratio: value_of("min.cleanable.dirty.ratio", overrides, broker)
            .trim()
            .parse()
            .unwrap_or(0.5),
        min_compaction_lag_ms: num_of("min.compaction.lag.ms"),
        max_compaction_lag_ms: num_of("max.compaction.lag.ms"),
        leader_replication_throttled_replicas: ThrottledReplicas::parse(
            valid_override(overrides, "leader.replication.throttled.replicas").unwrap_or(""),
        ),
        follower_replication_throttled_replicas: ThrottledReplicas::parse(
            valid_override(overrides, "follower.replication.throttled.replicas").unwrap_or(""),
        ),
    }
}

/// The value DescribeConfigs shows for a key with a [`TopicSettings`] field.
fn settings_value(s: &TopicSettings, name: &str) -> Option<String> {
    Some(match name {
        "segment.bytes" => s.segment_bytes.to_string(),
        "segment.ms" => s.segment_ms.to_string(),
        "segment.index.bytes" => s.segment_index_bytes.to_string(),
        "index.interval.bytes" => s.index_interval_bytes.to_string(),
        "flush.messages" => s.flush_messages.to_string(),
        "flush.ms" => s.flush_ms.to_string(),
        "max.message.bytes" => s.max_message_bytes.to_string(),
        "min.insync.replicas" => s.min_insync_replicas.to_string(),
        "cleanup.policy" => s.cleanup_policy.clone(),
        "retention.ms" => s.retention_ms.to_string(),
        "retention.bytes" => s.retention_bytes.to_string(),
        "message.timestamp.type" => s.message_timestamp_type.clone(),
        "compression.type" => s.compression_type.clone(),
        "unclean.leader.election.enable" => s.unclean_leader_election_enable.to_string(),
        _ => return None,
    })
}

/// DescribeConfigs rows for resource type TOPIC: every topic config (or only those in `names`;
/// unknown names are absent), with the effective value and its source: TopicConfig when
/// overridden, else the layer of the first honoured broker synonym that is set (dynamic per
/// broker, dynamic default, static), else DefaultConfig. Synonyms (when asked): the topic
/// override, then the broker synonyms layer by layer, then their defaults.
pub fn describe_topic_configs(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
    names: Option<&[String]>,
    include_synonyms: bool,
    include_documentation: bool,
) -> Vec<ConfigEntry> {
    let settings = topic_settings(overrides, broker);
    let mut out = Vec::new();
    for key in TOPIC_KEYS {
        if let Some(names) = names {
            if !names.iter().any(|n| n == key.name) {
                continue;
            }
        }
        let synonym_names: Vec<&str> = honoured_synonyms(key).iter().map(|(n, _)| *n).collect();
        let over = valid_override(overrides, key.name);
        // Kafka: the source of the first synonym (topic override, then the broker layers).
        let broker_source = broker.synonyms_of(&synonym_names).first().map(|s| s.source);
        let source = if over.is_some() {
            ConfigSource::TopicConfig
        } else {
            broker_source.unwrap_or(ConfigSource::DefaultConfig)
        };
        let value = settings_value(&settings, key.name)
            .unwrap_or_else(|| value_of(key.name, overrides, broker));
        let mut synonyms = Vec::new();
        if include_synonyms {
            if let Some(v) = over {
                synonyms.push(ConfigSynonym {
                    name: key.name.to_string(),
                    value: Some(v.to_string()),
                    source: ConfigSource::TopicConfig,
                });
            }
            synonyms.extend(broker.synonyms_of(&synonym_names));
        }
        out.push(ConfigEntry {
            name: key.name.to_string(),
            value: Some(value),
            source,
            read_only: false,
            sensitive: false,
            config_type: key.ty,
            documentation: include_documentation.then(|| key.doc.to_string()),
            synonyms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn broker(text: &str) -> BrokerConfig {
        BrokerConfig::from_properties_text(text, &[]).unwrap()
    }

    #[test]
    fn keys_are_sorted_and_defaults_valid() {
        for pair in TOPIC_KEYS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} {}",
                pair[0].name,
                pair[1].name
            );
        }
        for key in TOPIC_KEYS {
            if key.ty != ConfigType::List {
                assert_eq!(
                    validate_topic_config(key.name, key.default),
                    Ok(()),
                    "{}",
                    key.name
                );
            }
        }
    }

    #[test]
    fn validation_accepts() {
        for (k, v) in [
            ("cleanup.policy", "compact"),
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "delete, compact"),
            ("compression.type", "zstd"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("segment.bytes", "14"),
            ("segment.ms", "1"),
            ("max.message.bytes", "0"),
            ("min.insync.replicas", "2"),
            ("message.timestamp.type", "LogAppendTime"),
            ("unclean.leader.election.enable", "True"),
            ("min.cleanable.dirty.ratio", "0.1"),
            ("leader.replication.throttled.replicas", "*"),
            ("follower.replication.throttled.replicas", "0:1,1:2"),
            ("message.downconversion.enable", "false"),
            ("local.retention.ms", "-2"),
            ("compression.zstd.level", "-5"),
            ("flush.messages", "1"),
        ] {
            assert_eq!(validate_topic_config(k, v), Ok(()), "{k}={v}");
        }
    }

    #[test]
    fn validation_rejects() {
        assert_eq!(
            validate_topic_config("x.y", "1"),
            Err("Unknown topic config name: x.y".to_string())
        );
        assert!(validate_topic_config("log.segment.bytes", "1")
            .unwrap_err()
            .contains("Unknown topic config name"));
        for (k, v, why) in [
            ("segment.bytes", "13", "at least 14"),
            ("segment.bytes", "abc", "Not a number"),
            ("segment.bytes", "4294967296", "right size"),
            ("cleanup.policy", "remove", "subset"),
            ("cleanup.policy", "", "Empty"),
            ("min.insync.replicas", "0", "at least 1"),
            ("message.timestamp.type", "createtime", "one of"),
            ("compression.type", "brotli", "one of"),
            ("retention.ms", "-2", "at least -1"),
            ("unclean.leader.election.enable", "1", "true or false"),
            ("min.cleanable.dirty.ratio", "1.5", "between"),
            (
                "leader.replication.throttled.replicas",
                "all",
                "[partitionId]",
            ),
            ("compression.gzip.level", "10", "-1 or between"),
            ("segment.ms", "0", "at least 1"),
        ] {
            let e = validate_topic_config(k, v).unwrap_err();
            assert!(e.contains(why) && e.contains(k), "{k}={v}: {e}");
        }
    }

    #[test]
    fn settings_defaults_match_kafka() {
        let s = topic_settings(&BTreeMap::new(), &BrokerConfig::default_standalone());
        assert_eq!(
            s,
            TopicSettings {
                segment_bytes: 1073741824,
                segment_ms: 604800000,
                segment_index_bytes: 10485760,
                index_interval_bytes: 4096,
                flush_messages: i64::MAX as u64,
                flush_ms: i64::MAX,
                max_message_bytes: 1048588,
                min_insync_replicas: 1,
                cleanup_policy: "delete".into(),
                retention_ms: 604800000,
                retention_bytes: -1,
                message_timestamp_type: "CreateTime".into(),
                compression_type: "producer".into(),
                unclean_leader_election_enable: false,
                delete_retention_ms: 86_400_000,
                min_cleanable_dirty_ratio: 0.5,
                min_compaction_lag_ms: 0,
                max_compaction_lag_ms: i64::MAX,
                leader_replication_throttled_replicas: ThrottledReplicas::None,
                follower_replication_throttled_replicas: ThrottledReplicas::None,
            }
        );
    }

    #[test]
    fn settings_from_broker_and_overrides() {
        let b = broker(
            "log.segment.bytes=2000000\nlog.roll.hours=2\nlog.retention.minutes=3\nlog.flush.interval.ms=50\n\
             log.message.timestamp.type=LogAppendTime\ncompression.type=lz4\nunclean.leader.election.enable=true\n\
             message.max.bytes=500\nlog.cleanup.policy=compact\nmin.insync.replicas=2\n",
        );
        let s = topic_settings(&BTreeMap::new(), &b);
        assert_eq!(s.segment_bytes, 2000000);
        assert_eq!(s.segment_ms, 7_200_000);
        assert_eq!(s.retention_ms, 180_000);
        assert_eq!(s.flush_ms, 50);
        assert_eq!(s.message_timestamp_type, "LogAppendTime");
        assert_eq!(s.compression_type, "lz4");
        assert!(s.unclean_leader_election_enable);
        assert_eq!(s.max_message_bytes, 500);
        assert_eq!(s.cleanup_policy, "compact");
        assert_eq!(s.min_insync_replicas, 2);
        assert_eq!(
            topic_settings(
                &BTreeMap::new(),
                &broker("log.roll.ms=99\nlog.roll.hours=2")
            )
            .segment_ms,
            99
        );
        assert_eq!(
            topic_settings(
                &BTreeMap::new(),
                &broker("log.flush.scheduler.interval.ms=77")
            )
            .flush_ms,
            77
        );

        let o = map(&[
            ("segment.bytes", "1048576"),
            ("segment.ms", "1000"),
            ("segment.index.bytes", "4096"),
            ("retention.ms", "-1"),
            ("retention.bytes", "100"),
            ("cleanup.policy", "compact, delete"),
            ("compression.type", "gzip"),
            ("message.timestamp.type", "CreateTime"),
            ("unclean.leader.election.enable", "false"),
            ("max.message.bytes", "1000"),
            ("flush.messages", "1"),
            ("flush.ms", "0"),
            ("index.interval.bytes", "1"),
            ("min.insync.replicas", "3"),
        ]);
        let s = topic_settings(&o, &b);
        assert_eq!(
            s,
            TopicSettings {
                segment_bytes: 1048576,
                segment_ms: 1000,
                segment_index_bytes: 4096,
                index_interval_bytes: 1,
                flush_messages: 1,
                flush_ms: 0,
                max_message_bytes: 1000,
                min_insync_replicas: 3,
                cleanup_policy: "compact,delete".into(),
                retention_ms: -1,
                retention_bytes: 100,
                message_timestamp_type: "CreateTime".into(),
                compression_type: "gzip".into(),
                unclean_leader_election_enable: false,
                ..s.clone()
            }
        );
        // Invalid stored overrides fall back to the broker level.
        let s = topic_settings(
            &map(&[("segment.bytes", "x"), ("compression.type", "brotli")]),
            &b,
        );
        assert_eq!(s.segment_bytes, 2000000);
        assert_eq!(s.compression_type, "lz4");
    }

    #[test]
    fn describe_sources_values_and_synonyms() {
        let b = broker("log.retention.hours=24\nnum.io.threads=8\n");
        let o = map(&[("segment.bytes", "2097152")]);
        let all = describe_topic_configs(&o, &b, None, false, false);
        assert_eq!(all.len(), TOPIC_KEYS.len());
        assert!(all.iter().all(|e| !e.read_only
            && !e.sensitive
            && e.synonyms.is_empty()
            && e.documentation.is_none()));

        let names: Vec<String> = [
            "segment.bytes",
            "retention.ms",
            "cleanup.policy",
            "delete.retention.ms",
            "nope",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rows = describe_topic_configs(&o, &b, Some(&names), true, true);
        assert_eq!(rows.len(), 4);
        let row = |n: &str| rows.iter().find(|e| e.name == n).unwrap();

        let seg = row("segment.bytes");
        assert_eq!(seg.value.as_deref(), Some("2097152"));
        assert_eq!(seg.source, ConfigSource::TopicConfig);
        assert_eq!(seg.config_type, ConfigType::Int);
        assert!(seg
            .documentation
            .as_deref()
            .unwrap()
            .contains("segment file size"));
        assert_eq!(
            seg.synonyms,
            vec![
                ConfigSynonym {
                    name: "segment.bytes".into(),
                    value: Some("2097152".into()),
                    source: ConfigSource::TopicConfig
                },
                ConfigSynonym {
                    name: "log.segment.bytes".into(),
                    value: Some("1073741824".into()),
                    source: ConfigSource::DefaultConfig
                },
            ]
        );

        let ret = row("retention.ms");
        assert_eq!(ret.value.as_deref(), Some("86400000"));
        assert_eq!(ret.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(ret.config_type, ConfigType::Long);
        assert_eq!(
            ret.synonyms,
            vec![
                ConfigSynonym {
                    name: "log.retention.hours".into(),
                    value: Some("24".into()),
                    source: ConfigSource::StaticBrokerConfig
                },
                ConfigSynonym {
                    name: "log.retention.hours".into(),
                    value: Some("168".into()),
                    source: ConfigSource::DefaultConfig
                },
            ]
        );

        let cp = row("cleanup.policy");
        assert_eq!(cp.value.as_deref(), Some("delete"));
        assert_eq!(cp.source, ConfigSource::DefaultConfig);
        assert_eq!(cp.config_type, ConfigType::List);

        // The cleaner's broker synonym (honoured since the log cleaner exists).
        let dr = row("delete.retention.ms");
        assert_eq!(dr.value.as_deref(), Some("86400000"));
        assert_eq!(dr.source, ConfigSource::DefaultConfig);
        assert_eq!(
            dr.synonyms,
            vec![ConfigSynonym {
                name: "log.cleaner.delete.retention.ms".into(),
                value: Some("86400000".into()),
                source: ConfigSource::DefaultConfig
            }]
        );
    }

    #[test]
    fn describe_reflects_typed_broker_fields() {
        let mut b = BrokerConfig::default_standalone();
        b.log_segment_bytes = 1048576;
        let rows = describe_topic_configs(
            &BTreeMap::new(),
            &b,
            Some(&["segment.bytes".to_string()]),
            false,
            false,
        );
        assert_eq!(rows[0].value.as_deref(), Some("1048576"));
    }

    #[test]
    fn throttled_replica_lists_parse_as_kafka_writes_them() {
        assert_eq!(ThrottledReplicas::parse(""), ThrottledReplicas::None);
        assert!(ThrottledReplicas::parse("*").includes(3, 9));
        let listed = ThrottledReplicas::parse("0:1, 1:2,1:3");
        assert!(listed.includes(0, 1) && listed.includes(1, 3));
        assert!(!listed.includes(0, 2));
    }
}
