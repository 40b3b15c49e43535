//! Dynamic broker configs, as Kafka keeps them in ZooKeeper mode: `/config/brokers/<default>`
//! (DYNAMIC_DEFAULT_BROKER_CONFIG, every broker) and `/config/brokers/<id>`
//! (DYNAMIC_BROKER_CONFIG, one broker), layered over the static configuration in that order of
//! precedence: per broker, cluster default, server.properties, built-in default.
//!
//! This module says which keys gregor updates live ([`LIVE_KEYS`]), checks an update the way
//! Kafka's `DynamicBrokerConfig.validate` does, and builds the effective [`BrokerConfig`] from
//! the static one and the stored layers.

use std::collections::BTreeMap;
use std::fmt;

use super::broker_keys::broker_key;
use super::{check_value, BrokerConfig, ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};

/// Keys gregor applies while running, when set at `<default>` or for this broker: the
/// broker-level defaults of topic configs (Kafka's `DynamicLogConfig`) that gregor honours,
/// plus `message.max.bytes`, `min.insync.replicas`, `unclean.leader.election.enable` and the
/// replication throttles.
pub(crate) const LIVE_KEYS: &[&str] = &[
    "compression.type",
    "follower.replication.throttled.rate",
    "leader.replication.throttled.rate",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleanup.policy",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.index.interval.bytes",
    "log.message.timestamp.type",
    "log.retention.bytes",
    "log.retention.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "message.max.bytes",
    "min.insync.replicas",
    "unclean.leader.election.enable",
];

/// Keys Kafka updates dynamically but gregor only reads at start: an update through gregor
/// is refused rather than stored and not acted on.
const RESTART_KEYS: &[&str] = &[
    "advertised.listeners",
    "listeners",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.threads",
];

/// Whether gregor applies `key` while running.
pub fn is_live(key: &str) -> bool {
    LIVE_KEYS.contains(&key)
}

/// Which dynamic config entity: the cluster-wide default or one broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerEntity {
    Default,
    Broker(i32),
}

impl BrokerEntity {
    /// The entity's name under `/config/brokers`: `<default>` or the broker id.
    pub fn zk_name(self) -> String {
        match self {
            BrokerEntity::Default => "<default>".to_string(),
            BrokerEntity::Broker(id) => id.to_string(),
        }
    }

    /// The entity of a `/config/brokers` child name, `None` for a name that is neither.
    pub fn from_zk_name(name: &str) -> Option<BrokerEntity> {
        if name == "<default>" {
            Some(BrokerEntity::Default)
        } else {
            name.parse().ok().map(BrokerEntity::Broker)
        }
    }
}

impl fmt::Display for BrokerEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/config/brokers/{}", self.zk_name())
    }
}

/// Every stored dynamic broker config, as read (unchecked: a value another Kafka version
/// wrote may be anything; [`BrokerConfig::with_dynamic`] skips what it cannot use).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DynamicBrokerConfigs {
    /// `/config/brokers/<default>`.
    #[serde(default)]
    pub default: BTreeMap<String, String>,
    /// `/config/brokers/<id>`, by broker id.
    #[serde(default)]
    pub brokers: BTreeMap<i32, BTreeMap<String, String>>,
}

impl DynamicBrokerConfigs {
    /// The stored configs of `entity` (empty if none).
    pub fn of(&self, entity: BrokerEntity) -> BTreeMap<String, String> {
        match entity {
            BrokerEntity::Default => self.default.clone(),
            BrokerEntity::Broker(id) => self.brokers.get(&id).cloned().unwrap_or_default(),
        }
    }

    /// Replaces the configs of `entity` (an empty map removes the entity).
    pub fn set(&mut self, entity: BrokerEntity, configs: BTreeMap<String, String>) {
        match entity {
            BrokerEntity::Default => self.default = configs,
            BrokerEntity::Broker(id) if configs.is_empty() => {
                self.brokers.remove(&id);
            }
            BrokerEntity::Broker(id) => {
                self.brokers.insert(id, configs);
            }
        }
    }

    /// What gregor does not act on among the layers that apply to `broker_id`, one line per
    /// key, naming its znode: keys gregor does not update live, and values that fail their
    /// key's check. For the log, so that nothing read is ignored silently.
    pub fn not_acted_on(&self, broker_id: i32) -> Vec<String> {
        let mut out = Vec::new();
        let own = self.brokers.get(&broker_id);
        let layers = [
            (BrokerEntity::Default, Some(&self.default)),
            (BrokerEntity::Broker(broker_id), own),
        ];
        for (entity, layer) in layers {
            for (key, value) in layer.into_iter().flatten() {
                if !is_live(key) {
                    out.push(format!(
                        "{entity}: {key}={value} is not applied by gregor (it is not a key gregor updates while running)"
                    ));
                } else if let Some(def) = broker_key(key) {
                    if let Err(e) = check_value(key, value, def.check) {
                        out.push(format!("{entity}: ignored: {e}"));
                    }
                }
            }
        }
        out
    }
}

/// For APPEND and SUBTRACT on a broker key: the key's default if it is a list
/// (`Some(None)` for a list without default), `None` if the key is unknown or not a list.
pub fn list_default(key: &str) -> Option<Option<&'static str>> {
    broker_key(key)
        .filter(|def| def.ty == ConfigType::List)
        .map(|def| def.default)
}

/// DescribeConfigs rows for the BROKER resource named "" (the cluster-wide default): the
/// configs stored at `/config/brokers/<default>` (or only those in `names`), each with source
/// DYNAMIC_DEFAULT_BROKER_CONFIG, as Kafka lists them.
pub fn describe_default(
    stored: &BTreeMap<String, String>,
    names: Option<&[String]>,
    include_synonyms: bool,
    include_documentation: bool,
) -> Vec<ConfigEntry> {
    stored
        .iter()
        .filter(|(k, _)| names.is_none_or(|names| names.iter().any(|n| n == *k)))
        .map(|(k, v)| {
            let def = broker_key(k);
            let source = ConfigSource::DynamicDefaultBrokerConfig;
            ConfigEntry {
                name: k.clone(),
                value: Some(v.trim().to_string()),
                source,
                read_only: !is_live(k),
                sensitive: false,
                config_type: def.map_or(ConfigType::Unknown, |d| d.ty),
                documentation: include_documentation
                    .then(|| def.map(|d| d.doc.to_string()))
                    .flatten(),
                synonyms: if include_synonyms {
                    vec![ConfigSynonym {
                        name: k.clone(),
                        value: Some(v.trim().to_string()),
                        source,
                    }]
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Checks a replacement of `entity`'s dynamic configs as Kafka's `DynamicBrokerConfig.validate`
/// does (its messages too): keys Kafka never updates dynamically are refused, as are those
/// gregor only reads at start; known keys must have valid values, and the resulting
/// configuration must hold together. Keys neither Kafka's table nor gregor's knows are
/// accepted (Kafka keeps custom keys) and stored for other brokers.
pub fn check_update(
    config: &BrokerConfig,
    current: &DynamicBrokerConfigs,
    entity: BrokerEntity,
    configs: &BTreeMap<String, String>,
) -> Result<(), String> {
    let static_keys: Vec<&str> = configs
        .keys()
        .map(String::as_str)
        .filter(|k| broker_key(k).is_some() && !is_live(k) && !RESTART_KEYS.contains(k))
        .collect();
    if !static_keys.is_empty() {
        return Err(format!(
            "Cannot update these configs dynamically: Set({})",
            static_keys.join(", ")
        ));
    }
    let restart: Vec<&str> = configs
        .keys()
        .map(String::as_str)
        .filter(|k| RESTART_KEYS.contains(k))
        .collect();
    if !restart.is_empty() {
        return Err(format!(
            "gregor reads these configs only at start; set them in server.properties: Set({})",
            restart.join(", ")
        ));
    }
    for (key, value) in configs {
        if let Some(def) = broker_key(key) {
            check_value(key, value, def.check)?;
        }
    }
    let mut next = current.clone();
    next.set(entity, configs.clone());
    config.with_dynamic(&next).map(|_| ())
}

impl BrokerConfig {
    /// This configuration with the dynamic layers that apply to this broker on top. Keys gregor
    /// does not update live and values that fail their check are left out (see
    /// [`DynamicBrokerConfigs::not_acted_on`]); an error says the layers together make an
    /// invalid configuration (e.g. a retention of 0).
    pub fn with_dynamic(&self, dynamic: &DynamicBrokerConfigs) -> Result<BrokerConfig, String> {
        let usable = |layer: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
            layer
                .into_iter()
                .flatten()
                .filter(|(k, v)| {
                    is_live(k)
                        && broker_key(k).is_some_and(|def| check_value(k, v, def.check).is_ok())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let default = usable(Some(&dynamic.default));
        let broker = usable(dynamic.brokers.get(&self.broker_id));
        if default == self.dynamic_default && broker == self.dynamic_broker {
            return Ok(self.clone());
        }
        let mut next = Self::from_layers(self.explicit.clone(), default, broker)
            .map_err(|e| format!("{e:#}"))?;
        // Set at start from ZooKeeper, not from the keys.
        next.broker_id = self.broker_id;
        Ok(next)
    }

    /// Like [`BrokerConfig::with_dynamic`], but a combination that does not hold together
    /// leaves the static configuration in force (and says so in the log).
    pub fn effective(&self, dynamic: &DynamicBrokerConfigs) -> BrokerConfig {
        match self.with_dynamic(dynamic) {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!(error = %e, "dynamic broker configs ignored: they make an invalid configuration");
                self.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn config(text: &str) -> BrokerConfig {
        BrokerConfig::from_properties_text(text, &[]).unwrap()
    }

    #[test]
    fn live_keys_are_known_keys() {
        for key in LIVE_KEYS.iter().chain(RESTART_KEYS) {
            assert!(broker_key(key).is_some(), "{key}");
        }
    }

    #[test]
    fn layers_take_precedence_per_broker_then_default_then_static() {
        let c = config("broker.id=2\nlog.retention.hours=48\nmessage.max.bytes=2000\n");
        let mut d = DynamicBrokerConfigs {
            default: map(&[
                ("log.retention.ms", "86400000"),
                ("message.max.bytes", "3000"),
            ]),
            ..Default::default()
        };
        d.brokers.insert(2, map(&[("message.max.bytes", "4000")]));
        d.brokers.insert(3, map(&[("message.max.bytes", "5000")]));
        let e = c.with_dynamic(&d).unwrap();
        assert_eq!(e.log_retention_ms, 86_400_000);
        assert_eq!(e.message_max_bytes, 4000);
        assert_eq!(e.broker_id, 2);
        let rows = e.describe(Some(&["message.max.bytes".to_string()]), true, false);
        assert_eq!(rows[0].value.as_deref(), Some("4000"));
        assert_eq!(rows[0].source, ConfigSource::DynamicBrokerConfig);
        assert!(!rows[0].read_only);
        let sources: Vec<_> = rows[0]
            .synonyms
            .iter()
            .map(|s| (s.value.clone().unwrap(), s.source))
            .collect();
        assert_eq!(
            sources,
            vec![
                ("4000".to_string(), ConfigSource::DynamicBrokerConfig),
                ("3000".to_string(), ConfigSource::DynamicDefaultBrokerConfig),
                ("2000".to_string(), ConfigSource::StaticBrokerConfig),
                ("1048588".to_string(), ConfigSource::DefaultConfig),
            ]
        );
        // Removing the layers brings the static values back.
        let back = e.with_dynamic(&DynamicBrokerConfigs::default()).unwrap();
        assert_eq!(back.message_max_bytes, 2000);
        assert_eq!(back.log_retention_ms, 48 * 3_600_000);
    }

    #[test]
    fn unusable_entries_are_skipped_and_reported() {
        let c = config("broker.id=1\n");
        let d = DynamicBrokerConfigs {
            default: map(&[
                ("num.io.threads", "16"),
                ("log.retention.bytes", "lots"),
                ("log.segment.bytes", "2000000"),
            ]),
            ..Default::default()
        };
        let e = c.with_dynamic(&d).unwrap();
        assert_eq!(e.log_segment_bytes, 2_000_000);
        assert_eq!(e.log_retention_bytes, -1);
        let said = d.not_acted_on(1);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].contains("/config/brokers/<default>: ignored: Invalid value lots"),
            "{said:?}"
        );
        assert!(
            said[1].contains("num.io.threads=16 is not applied"),
            "{said:?}"
        );
    }

    #[test]
    fn updates_are_checked_as_kafka_checks_them() {
        let c = config("broker.id=1\n");
        let none = DynamicBrokerConfigs::default();
        let check =
            |pairs: &[(&str, &str)]| check_update(&c, &none, BrokerEntity::Default, &map(pairs));
        assert_eq!(
            check(&[("log.retention.ms", "3600000"), ("num.io.threads", "4")]),
            Ok(())
        );
        assert_eq!(
            check(&[("broker.id", "7"), ("num.partitions", "3")]),
            Err(
                "Cannot update these configs dynamically: Set(broker.id, num.partitions)"
                    .to_string()
            )
        );
        assert!(check(&[("log.cleaner.threads", "2")])
            .unwrap_err()
            .contains("only at start"));
        assert!(check(&[("min.insync.replicas", "0")])
            .unwrap_err()
            .contains("at least 1"));
        assert!(check(&[("log.retention.ms", "0")])
            .unwrap_err()
            .contains("retention"));
    }

    #[test]
    fn the_default_resource_lists_what_is_stored() {
        let stored = map(&[("log.retention.ms", "1000"), ("num.io.threads", "4")]);
        let rows = describe_default(&stored, None, true, false);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "log.retention.ms");
        assert_eq!(rows[0].source, ConfigSource::DynamicDefaultBrokerConfig);
        assert_eq!(rows[0].config_type, ConfigType::Long);
        assert!(!rows[0].read_only);
        assert_eq!(rows[0].synonyms.len(), 1);
        assert_eq!(rows[1].config_type, ConfigType::Unknown);
        let only = describe_default(&stored, Some(&["num.io.threads".to_string()]), false, false);
        assert_eq!(only.len(), 1);
        assert_eq!(list_default("log.cleanup.policy"), Some(Some("delete")));
        assert_eq!(list_default("log.retention.ms"), None);
    }

    #[test]
    fn entity_names() {
        assert_eq!(BrokerEntity::Default.zk_name(), "<default>");
        assert_eq!(
            BrokerEntity::from_zk_name("<default>"),
            Some(BrokerEntity::Default)
        );
        assert_eq!(
            BrokerEntity::from_zk_name("3"),
            Some(BrokerEntity::Broker(3))
        );
        assert_eq!(BrokerEntity::from_zk_name("x"), None);
        assert_eq!(BrokerEntity::Broker(3).to_string(), "/config/brokers/3");
    }
}
