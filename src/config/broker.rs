//! The broker's static configuration: the command line (`gregor [server.properties] [--override
//! key=value ...]`, as Kafka's `kafka-server-start.sh`), the typed [`BrokerConfig`] built from the
//! file (read by `properties`) and the overrides, and the DescribeConfigs rows for resource type
//! BROKER.
//!
//! Only the keys in the key table (`broker_keys.rs`) are known; any other key is kept verbatim in
//! [`BrokerConfig::explicit`] and reported by [`BrokerConfig::warnings`], with the known key it is
//! probably a typo of. gregor-specific defaults (where they differ from Kafka's) are said so in
//! the table's docs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

use super::broker_keys::{
    broker_key, closest_key, BrokerKey, BROKER_KEYS, DYNAMIC_ONLY_KEYS, INTERNAL_KEYS,
};
use super::listener::{
    advertisable, inter_broker_listener, listener_prefixed, parse_listeners, parse_protocol_map,
    Listener, SecurityProtocol,
};
use super::properties::{decode_properties_bytes, parse_override, parse_properties};
use super::{
    check_value, parse_bool, parse_int, split_list, ConfigEntry, ConfigSource, ConfigSynonym,
    ConfigType, LONG_MAX,
};

/// The broker's configuration, typed. Build it with [`BrokerConfig::from_args`],
/// [`BrokerConfig::from_properties_text`] or [`BrokerConfig::default_standalone`]. Each field is
/// filled from its key (explicit value, else the default in `BROKER_KEYS`) in `from_layers`;
/// keys without a field are read with `raw_value`.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerConfig {
    /// `broker.id` (or its synonym `node.id`). Kafka's default is -1 (generate one); gregor's is 0,
    /// so that a standalone broker needs no configuration. -1 is replaced by a generated id
    /// in cluster mode.
    pub broker_id: i32,
    /// `listeners`; gregor's default is `PLAINTEXT://127.0.0.1:9092` (Kafka's is `PLAINTEXT://:9092`,
    /// all interfaces).
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`; default: `listeners`. A listener bound to all interfaces (`0.0.0.0`,
    /// `::` or an empty host) is advertised as `127.0.0.1` (Kafka would advertise the hostname); an
    /// empty host in an explicit `advertised.listeners` is likewise advertised as `127.0.0.1`.
    pub advertised_listeners: Vec<Listener>,
    /// `listener.security.protocol.map`, names upper-cased.
    pub listener_security_protocol_map: BTreeMap<String, SecurityProtocol>,
    /// The listener other brokers are reached on: `inter.broker.listener.name`, else the one
    /// named after `security.inter.broker.protocol`.
    pub inter_broker_listener_name: String,
    /// `connections.max.reauth.ms`: the longest SASL session; 0: unlimited.
    pub connections_max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`.
    pub connection_failed_authentication_delay_ms: u64,
    /// `authorizer.class.name` names Kafka's ACL authorizer: its settings. `None`: no
    /// authorizer, everything is allowed.
    pub authorizer: Option<AuthorizerSettings>,
    /// `log.dirs` (comma-separated), else `log.dir`; gregor's default is `./gregor-data`, relative to
    /// the working directory (Kafka's is `/tmp/kafka-logs`).
    pub log_dirs: Vec<PathBuf>,
    /// `zookeeper.connect`; `None` when unset or empty.
    pub zookeeper_connect: Option<String>,
    /// `zookeeper.session.timeout.ms`.
    pub zookeeper_session_timeout_ms: u64,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `message.max.bytes`.
    pub message_max_bytes: i32,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `socket.send.buffer.bytes`: SO_SNDBUF of client connections; below 1 the kernel's.
    pub socket_send_buffer_bytes: i32,
    /// `socket.receive.buffer.bytes`: SO_RCVBUF of client connections; below 1 the kernel's.
    pub socket_receive_buffer_bytes: i32,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: u64,
    /// `metrics.port` (gregor only): the Prometheus endpoint's port; 0: none.
    pub metrics_port: u16,
    /// `log.segment.bytes`.
    pub log_segment_bytes: u64,
    /// `log.index.interval.bytes`.
    pub log_index_interval_bytes: u32,
    /// `log.flush.interval.messages`.
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms`; `None` (unset) means `log.flush.scheduler.interval.ms` applies.
    pub log_flush_interval_ms: Option<u64>,
    /// Effective retention: `log.retention.ms`, else `log.retention.minutes`, else
    /// `log.retention.hours`; any negative result is -1 (unlimited), as in Kafka (0 is refused).
    pub log_retention_ms: i64,
    /// `log.retention.bytes`.
    pub log_retention_bytes: i64,
    /// `leader.replication.throttled.rate` and `follower.replication.throttled.rate`
    /// (bytes/s; `i64::MAX`: none), set dynamically by `kafka-reassign-partitions --throttle`.
    pub leader_replication_throttled_rate: i64,
    pub follower_replication_throttled_rate: i64,
    /// `log.cleanup.policy`, stored normalised (`compact,delete`, no spaces).
    pub log_cleanup_policy: String,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub log_retention_check_interval_ms: u64,
    /// `producer.id.expiration.ms`: a partition forgets a producer idle this long.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`: how often partitions look for them.
    pub producer_id_expiration_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`: how often the flusher looks for `flush.ms`.
    pub log_flush_scheduler_interval_ms: u64,
    /// `log.cleaner.enable`.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.threads` (0 or 1 honoured: 0 runs no cleaner).
    pub log_cleaner_threads: i64,
    /// `log.cleaner.backoff.ms`.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`.
    pub log_cleaner_dedupe_buffer_size: usize,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: i64,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms`.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes`.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub replica_fetch_backoff_ms: u64,
    /// `broker.rack`; `None` when unset or empty.
    pub broker_rack: Option<String>,
    /// `cluster.id` (a gregor key, not Kafka's): overrides the cluster id that the broker otherwise
    /// generates and stores in meta.properties.
    pub cluster_id: Option<String>,
    /// Every key explicitly set (file, then `--override`; later wins), verbatim, for DescribeConfigs
    /// sources and for unknown-key warnings.
    pub explicit: BTreeMap<String, String>,
    /// Dynamic configs in force from `/config/brokers/<default>` (only keys gregor updates
    /// live, with valid values; see `config::dynamic`). They take precedence over `explicit`.
    pub dynamic_default: BTreeMap<String, String>,
    /// Dynamic configs in force from `/config/brokers/<this broker's id>`; they take
    /// precedence over `dynamic_default`.
    pub dynamic_broker: BTreeMap<String, String>,
}

/// What the command line asks for.
// Built once at start-up, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum CliAction {
    /// Start the broker with this configuration.
    Run(BrokerConfig),
    /// Print this text (usage) and exit successfully.
    Help(String),
}

const USAGE: &str = "\
Usage: gregor [server.properties] [--override key=value ...]

Starts a gregor broker, a Kafka-wire-compatible message broker. The optional
properties file uses Kafka's server.properties format and key names (broker.id,
listeners, advertised.listeners, log.dirs, zookeeper.connect, num.partitions,
log.retention.hours, ...). Each --override key=value (or --override=key=value)
sets one key and takes precedence over the file; later overrides win.

Without zookeeper.connect the broker runs standalone.

       gregor cluster info|health --bootstrap-server host:port
runs the command-line client instead (gregor cluster --help).

Options:
  --override key=value   set a configuration key
  -h, --help             print this help
";

/// `--help`: the usage, the keys with a summary (the rows of README's key table), then every
/// other key gregor honours with its default.
pub(crate) fn help_text() -> String {
    let mut out = USAGE.to_string();
    out.push_str("\nConfiguration keys:\n");
    for key in BROKER_KEYS {
        if let Some(summary) = key.summary {
            out.push_str(&format!(
                "  {} (default: {})\n      {summary}\n",
                key.name,
                default_for_people(key)
            ));
        }
    }
    out.push_str("\nOther keys gregor honours, with Kafka's meaning (default):\n");
    for key in BROKER_KEYS.iter().filter(|k| k.summary.is_none()) {
        out.push_str(&format!("  {} ({})\n", key.name, default_for_people(key)));
    }
    out
}

/// A key's default for people: `unset` for Kafka's null, `no limit` for Long.MAX_VALUE.
fn default_for_people(key: &BrokerKey) -> String {
    match key.default {
        None => "unset".to_string(),
        Some(LONG_MAX) => "no limit".to_string(),
        Some(d) => d.to_string(),
    }
}

impl BrokerConfig {
    /// Interprets the command line (the arguments after the program name):
    /// `gregor [server.properties] [--override key=value ...]`, as `kafka-server-start.sh`.
    /// `--override=key=value` is accepted too; `-h`/`--help` yields [`CliAction::Help`].
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> anyhow::Result<CliAction> {
        let mut file: Option<String> = None;
        let mut overrides: Vec<(String, String)> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(CliAction::Help(help_text()));
            } else if arg == "--override" {
                let Some(kv) = args.next() else {
                    bail!("--override needs an argument of the form key=value");
                };
                overrides.push(parse_override(&kv)?);
            } else if let Some(kv) = arg.strip_prefix("--override=") {
                overrides.push(parse_override(kv)?);
            } else if arg.starts_with('-') && arg != "-" {
                bail!("unknown option '{arg}' (see --help)");
            } else if let Some(first) = &file {
                bail!("more than one properties file given: '{first}' and '{arg}' (see --help)");
            } else {
                file = Some(arg);
            }
        }
        let text = match &file {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read config file '{path}'"))?;
                decode_properties_bytes(bytes)
            }
            None => String::new(),
        };
        let config =
            Self::from_properties_text(&text, &overrides).with_context(|| match &file {
                Some(path) => format!("invalid configuration (file '{path}' and --override flags)"),
                None => "invalid configuration (--override flags)".to_string(),
            })?;
        Ok(CliAction::Run(config))
    }

    /// Parses Java `.properties` text, applies `overrides` on top (later wins), and builds the config.
    /// Errors name the offending line or key and value.
    pub fn from_properties_text(
        text: &str,
        overrides: &[(String, String)],
    ) -> anyhow::Result<BrokerConfig> {
        let mut explicit = BTreeMap::new();
        for (key, value) in parse_properties(text)? {
            explicit.insert(key, value);
        }
        for (key, value) in overrides {
            explicit.insert(key.clone(), value.clone());
        }
        Self::from_layers(explicit, BTreeMap::new(), BTreeMap::new())
    }

    /// The configuration with nothing set: every key at its default in the key table.
    pub fn default_standalone() -> BrokerConfig {
        // The `broker_keys` tests check every default against its key's validator, and
        // `defaults_match_kafka_or_documented_gregor_defaults` builds this very configuration.
        Self::from_layers(BTreeMap::new(), BTreeMap::new(), BTreeMap::new())
            .expect("the key table's defaults are valid")
    }

    /// Things worth telling the operator: unknown (ignored) keys, with the known key they are
    /// probably a typo of.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for key in self.explicit.keys() {
            if broker_key(key).is_none()
                && !is_listener_key(key)
                && !AUTHORIZER_KEYS.contains(&key.as_str())
            {
                let hint = closest_key(key)
                    .map(|known| format!(" (did you mean {known}?)"))
                    .unwrap_or_default();
                out.push(format!(
                    "ignoring unknown or unsupported config key '{key}'{hint}"
                ));
            }
        }
        out
    }

    /// The value of `key` for one listener: `listener.name.<listener>.<key>` if set, else the
    /// broker-wide `key` (or its default), as Kafka resolves its SSL and SASL settings.
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<String> {
        match self.explicit.get(&listener_prefixed(listener, key)) {
            Some(v) => Some(v.trim().to_string()),
            None => self.raw_value(key),
        }
    }

    /// A per-listener key that has no broker-wide form: `listener.name.<listener>.<key>`
    /// (e.g. `<mechanism>.sasl.jaas.config`).
    pub fn listener_only_value(&self, listener: &str, key: &str) -> Option<String> {
        self.explicit
            .get(&listener_prefixed(listener, key))
            .map(|v| v.trim().to_string())
    }

    /// The listener other brokers are reached on.
    pub fn inter_broker_listener(&self) -> Option<&Listener> {
        self.advertised_listeners
            .iter()
            .find(|l| l.name == self.inter_broker_listener_name)
    }

    /// DescribeConfigs rows for resource type BROKER with this broker's id: every key gregor
    /// honours (see `BROKER_KEYS`), or only those in `names` (unknown names are absent). Keys
    /// gregor updates live are not read-only; the source is where the value comes from
    /// (dynamic per broker, dynamic default, static, else default), as in Kafka.
    pub fn describe(
        &self,
        names: Option<&[String]>,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> Vec<ConfigEntry> {
        let mut out = Vec::new();
        for key in BROKER_KEYS {
            if let Some(names) = names {
                if !names.iter().any(|n| n == key.name) {
                    continue;
                }
            }
            if INTERNAL_KEYS.contains(&key.name) {
                continue;
            }
            let configured = self.configured(key.name);
            if configured.is_none() && DYNAMIC_ONLY_KEYS.contains(&key.name) {
                continue;
            }
            let source = configured.map_or(ConfigSource::DefaultConfig, |(_, source)| source);
            let synonyms = if include_synonyms {
                // The key itself, then the keys it falls back to.
                let mut names = vec![key.name];
                names.extend_from_slice(key.synonyms);
                self.synonyms_of(&names)
            } else {
                Vec::new()
            };
            let sensitive = key.ty == ConfigType::Password;
            out.push(ConfigEntry {
                name: key.name.to_string(),
                // Secrets are answered as null, as Kafka does.
                value: if sensitive {
                    None
                } else {
                    self.current_value(key)
                },
                source,
                read_only: !super::dynamic::is_live(key.name),
                sensitive,
                config_type: key.ty,
                documentation: include_documentation.then(|| key.doc.to_string()),
                synonyms,
            });
        }
        out
    }

    /// The raw value of a known broker key as configured: the dynamic or explicit value
    /// (trimmed), else the key's default. This is what synonyms show.
    pub(crate) fn raw_value(&self, name: &str) -> Option<String> {
        match self.configured(name) {
            Some((v, _)) => Some(v.to_string()),
            None => broker_key(name).and_then(|k| k.default.map(str::to_string)),
        }
    }

    /// Where `name` is set, highest precedence first: this broker's dynamic config, the
    /// dynamic default, the static configuration. `None` when it is not set anywhere.
    pub(crate) fn configured(&self, name: &str) -> Option<(&str, ConfigSource)> {
        [
            (&self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                &self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (&self.explicit, ConfigSource::StaticBrokerConfig),
        ]
        .into_iter()
        .find_map(|(layer, source)| layer.get(name).map(|v| (v.trim(), source)))
    }

    /// The value DescribeConfigs shows for a key: what the broker uses. Keys derived from others
    /// come from the typed fields; the rest are their configured value as Kafka prints it.
    fn current_value(&self, key: &BrokerKey) -> Option<String> {
        let join = |ls: &[Listener]| {
            ls.iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match key.name {
            "broker.id" | "node.id" => Some(self.broker_id.to_string()),
            "listeners" => Some(join(&self.listeners)),
            "advertised.listeners" => Some(join(&self.advertised_listeners)),
            // log.dir shows the directories in use too (Kafka shows its unused default).
            "log.dirs" | "log.dir" => Some(
                self.log_dirs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "log.retention.ms" => Some(self.log_retention_ms.to_string()),
            _ => self
                .raw_value(key.name)
                .and_then(|raw| shown_value(key, raw)),
        }
    }

    /// Synonym rows for the given broker keys, as Kafka orders them: every dynamic per-broker
    /// row, then dynamic default, static, default (each layer in the given key order).
    pub(crate) fn synonyms_of(&self, names: &[&str]) -> Vec<ConfigSynonym> {
        let mut out = Vec::new();
        for (layer, source) in [
            (&self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                &self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (&self.explicit, ConfigSource::StaticBrokerConfig),
        ] {
            for n in names {
                if let Some(v) = layer.get(*n) {
                    let secret = broker_key(n).is_some_and(|k| k.ty == ConfigType::Password);
                    out.push(ConfigSynonym {
                        name: n.to_string(),
                        value: (!secret).then(|| v.trim().to_string()),
                        source,
                    });
                }
            }
        }
        for n in names {
            if let Some(default) = broker_key(n).and_then(|k| k.default) {
                out.push(ConfigSynonym {
                    name: n.to_string(),
                    value: Some(default.to_string()),
                    source: ConfigSource::DefaultConfig,
                });
            }
        }
        out
    }

    /// Builds the typed config from the explicitly set keys, the dynamic layers over them
    /// (default, then this broker's) and the key table's defaults.
    pub(crate) fn from_layers(
        explicit: BTreeMap<String, String>,
        dynamic_default: BTreeMap<String, String>,
        dynamic_broker: BTreeMap<String, String>,
    ) -> anyhow::Result<BrokerConfig> {
        let mut merged = explicit.clone();
        merged.extend(dynamic_default.clone());
        merged.extend(dynamic_broker.clone());
        // Check every known key's value first, so that errors name the key and value.
        for (key, value) in &merged {
            if let Some(def) = broker_key(key) {
                check_value(key, value, def.check).map_err(|e| anyhow!(e))?;
            }
        }
        let v = Values(&merged);

        // node.id is gregor's synonym of broker.id (Kafka: they must agree).
        let node_id: Option<i32> = v.opt_num("node.id")?;
        let broker_id: i32 = match node_id {
            Some(n) if !explicit.contains_key("broker.id") => n,
            _ => v.num("broker.id")?,
        };
        if let Some(n) = node_id {
            if n != broker_id {
                bail!("broker.id ({broker_id}) and node.id ({n}) are both set and differ; set only one");
            }
        }

        let protocols =
            parse_protocol_map(v.str("listener.security.protocol.map").unwrap_or_default())?;
        let listeners_value = v.str("listeners").unwrap_or_default();
        let mut listeners = parse_listeners("listeners", listeners_value, &protocols)?;
        for l in &mut listeners {
            if l.host.is_empty() {
                l.host = "0.0.0.0".to_string();
            }
        }
        let mut ports = std::collections::BTreeSet::new();
        for l in &listeners {
            if l.port != 0 && !ports.insert(l.port) {
                bail!("Invalid value {listeners_value} for configuration listeners: Each listener must have a different port");
            }
        }
        let advertised_listeners: Vec<Listener> = match v.str("advertised.listeners") {
            Some(value) => {
                let ls = parse_listeners("advertised.listeners", value, &protocols)?;
                for l in &ls {
                    if l.host == "0.0.0.0" || l.host == "::" {
                        bail!("Invalid value {value} for configuration advertised.listeners: it cannot use the nonroutable meta-address {}; use a routable IP address", l.host);
                    }
                    if !listeners.iter().any(|x| x.name == l.name) {
                        bail!("Invalid value {value} for configuration advertised.listeners: listener name {} is not among the listeners", l.name);
                    }
                }
                ls.into_iter().map(advertisable).collect()
            }
            None => listeners.iter().cloned().map(advertisable).collect(),
        };
        let inter_broker_listener_name = inter_broker_listener(
            merged.get("inter.broker.listener.name").map(String::as_str),
            merged
                .get("security.inter.broker.protocol")
                .map(String::as_str),
            &advertised_listeners,
        )?;

        let (dirs_key, dirs_value) = match v.str("log.dirs") {
            Some(value) => ("log.dirs", value),
            None => ("log.dir", v.str("log.dir").unwrap_or_default()),
        };
        let log_dirs: Vec<PathBuf> = split_list(dirs_value)
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            bail!("Invalid value {dirs_value} for configuration {dirs_key}: at least one directory is required");
        }

        // Kafka's precedence: log.retention.ms, else .minutes, else .hours. A negative result
        // means unlimited (-1); zero is refused, as Kafka's KafkaConfig does.
        let (retention_key, retention) = match (
            v.opt_num::<i64>("log.retention.ms")?,
            v.opt_num::<i64>("log.retention.minutes")?,
        ) {
            (Some(ms), _) => ("log.retention.ms", ms),
            (None, Some(minutes)) => ("log.retention.minutes", minutes.saturating_mul(60_000)),
            (None, None) => (
                "log.retention.hours",
                v.num::<i64>("log.retention.hours")?
                    .saturating_mul(3_600_000),
            ),
        };
        if retention == 0 {
            bail!("Invalid value 0 for configuration {retention_key}: the retention time must be unlimited (-1) or at least 1 ms");
        }

        // Kafka: at least 1 MiB of dedupe buffer per cleaner thread. With 0 threads gregor runs
        // no cleaner, so there is nothing to check.
        let cleaner_threads: i64 = v.num("log.cleaner.threads")?;
        let dedupe_buffer: i64 = v.num("log.cleaner.dedupe.buffer.size")?;
        if cleaner_threads > 0 && dedupe_buffer / cleaner_threads <= 1024 * 1024 {
            bail!("Invalid value {dedupe_buffer} for configuration log.cleaner.dedupe.buffer.size: must be more than 1 MiB per cleaner thread (log.cleaner.threads={cleaner_threads})");
        }

        Ok(BrokerConfig {
            broker_id,
            listeners,
            advertised_listeners,
            listener_security_protocol_map: protocols,
            inter_broker_listener_name,
            connections_max_reauth_ms: v.num("connections.max.reauth.ms")?,
            connection_failed_authentication_delay_ms: v
                .num("connection.failed.authentication.delay.ms")?,
            authorizer: authorizer_settings(&v)?,
            log_dirs,
            zookeeper_connect: v.non_empty("zookeeper.connect"),
            zookeeper_session_timeout_ms: v.num("zookeeper.session.timeout.ms")?,
            num_partitions: v.num("num.partitions")?,
            default_replication_factor: v.num("default.replication.factor")?,
            min_insync_replicas: v.num("min.insync.replicas")?,
            auto_create_topics_enable: v.bool("auto.create.topics.enable")?,
            delete_topic_enable: v.bool("delete.topic.enable")?,
            message_max_bytes: v.num("message.max.bytes")?,
            socket_request_max_bytes: v.num("socket.request.max.bytes")?,
            socket_send_buffer_bytes: v.num("socket.send.buffer.bytes")?,
            socket_receive_buffer_bytes: v.num("socket.receive.buffer.bytes")?,
            connections_max_idle_ms: v.num("connections.max.idle.ms")?,
            metrics_port: v.num("metrics.port")?,
            log_segment_bytes: v.num("log.segment.bytes")?,
            log_index_interval_bytes: v.num("log.index.interval.bytes")?,
            log_flush_interval_messages: v.num("log.flush.interval.messages")?,
            log_flush_interval_ms: v.opt_num("log.flush.interval.ms")?,
            log_retention_ms: retention.max(-1),
            log_retention_bytes: v.num("log.retention.bytes")?,
            leader_replication_throttled_rate: v.num("leader.replication.throttled.rate")?,
            follower_replication_throttled_rate: v.num("follower.replication.throttled.rate")?,
            log_cleanup_policy: split_list(v.str("log.cleanup.policy").unwrap_or_default())
                .join(","),
            log_retention_check_interval_ms: v.num("log.retention.check.interval.ms")?,
            producer_id_expiration_ms: v.num("producer.id.expiration.ms")?,
            producer_id_expiration_check_interval_ms: v
                .num("producer.id.expiration.check.interval.ms")?,
            log_flush_scheduler_interval_ms: v.num("log.flush.scheduler.interval.ms")?,
            log_cleaner_enable: v.bool("log.cleaner.enable")?,
            log_cleaner_threads: cleaner_threads,
            log_cleaner_backoff_ms: v.num("log.cleaner.backoff.ms")?,
            log_cleaner_dedupe_buffer_size: v.num("log.cleaner.dedupe.buffer.size")?,
            auto_leader_rebalance_enable: v.bool("auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval_seconds: v
                .num("leader.imbalance.check.interval.seconds")?,
            leader_imbalance_per_broker_percentage: v
                .num("leader.imbalance.per.broker.percentage")?,
            replica_lag_time_max_ms: v.num("replica.lag.time.max.ms")?,
            replica_fetch_wait_max_ms: v.num("replica.fetch.wait.max.ms")?,
            replica_fetch_min_bytes: v.num("replica.fetch.min.bytes")?,
            replica_fetch_max_bytes: v.num("replica.fetch.max.bytes")?,
            replica_fetch_response_max_bytes: v.num("replica.fetch.response.max.bytes")?,
            replica_fetch_backoff_ms: v.num("replica.fetch.backoff.ms")?,
            broker_rack: v.non_empty("broker.rack"),
            cluster_id: v.non_empty("cluster.id"),
            explicit,
            dynamic_default,
            dynamic_broker,
        })
    }
}

/// `authorizer.class.name` values that mean Kafka's ACL authorizer (ZooKeeper mode's and
/// KRaft's: both keep the same model).
pub const ACL_AUTHORIZER_CLASS_NAMES: [&str; 2] = [
    "kafka.security.authorizer.AclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
];

/// The authorizer's settings (`super.users`, `allow.everyone.if.no.acl.found`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// Principals as written, `User:admin`.
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerSettings {
    /// `super.users`: principals separated by `;` (a principal's name may hold commas).
    pub fn parse_super_users(value: &str) -> Vec<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The ACL authorizer's own keys: read by it, not broker configs (Kafka's DescribeConfigs does
/// not list them either).
const AUTHORIZER_KEYS: [&str; 2] = ["super.users", "allow.everyone.if.no.acl.found"];

/// `authorizer.class.name`: empty, or one of Kafka's ACL authorizers.
fn authorizer_settings(v: &Values) -> anyhow::Result<Option<AuthorizerSettings>> {
    let class = v.str("authorizer.class.name").unwrap_or_default().trim();
    if class.is_empty() {
        return Ok(None);
    }
    if !ACL_AUTHORIZER_CLASS_NAMES.contains(&class) {
        bail!(
            "Invalid value {class} for configuration authorizer.class.name: gregor has Kafka's ACL authorizer only ({})",
            ACL_AUTHORIZER_CLASS_NAMES.join(" or ")
        );
    }
    let allow_everyone = match v.0.get("allow.everyone.if.no.acl.found") {
        None => false,
        Some(value) => parse_bool(value.trim()).map_err(|e| {
            anyhow!("Invalid value {value} for configuration allow.everyone.if.no.acl.found: {e}")
        })?,
    };
    Ok(Some(AuthorizerSettings {
        super_users: AuthorizerSettings::parse_super_users(
            v.0.get("super.users")
                .map(String::as_str)
                .unwrap_or_default(),
        ),
        allow_everyone_if_no_acl_found: allow_everyone,
    }))
}

/// The configured keys read through the key table: a key's value is its explicit value (trimmed),
/// else its default, else none. Values passed their key's check before they are read here, so a
/// failing parse or conversion means the table and a `BrokerConfig` field disagree; it is still
/// an error naming the key, not a panic.
struct Values<'a>(&'a BTreeMap<String, String>);

impl Values<'_> {
    fn str(&self, name: &str) -> Option<&str> {
        let key = broker_key(name);
        debug_assert!(key.is_some(), "{name} is not in BROKER_KEYS");
        match self.0.get(name) {
            Some(v) => Some(v.trim()),
            None => key.and_then(|k| k.default),
        }
    }

    /// A string value, `None` when unset or empty.
    fn non_empty(&self, name: &str) -> Option<String> {
        self.str(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// An integer value converted to the type of the field it fills.
    fn opt_num<T: TryFrom<i64>>(&self, name: &str) -> anyhow::Result<Option<T>> {
        let Some(value) = self.str(name) else {
            return Ok(None);
        };
        let invalid = |why: &str| anyhow!("Invalid value {value} for configuration {name}: {why}");
        let n = parse_int(value).map_err(|e| invalid(&e))?;
        T::try_from(n)
            .map(Some)
            .map_err(|_| invalid("out of range"))
    }

    fn num<T: TryFrom<i64>>(&self, name: &str) -> anyhow::Result<T> {
        self.opt_num(name)?
            .ok_or_else(|| anyhow!("configuration {name} has no value and no default"))
    }

    fn bool(&self, name: &str) -> anyhow::Result<bool> {
        let value = self.str(name).unwrap_or_default();
        parse_bool(value)
            .map_err(|e| anyhow!("Invalid value {value} for configuration {name}: {e}"))
    }
}

/// A configured value as DescribeConfigs shows it, as Kafka prints the parsed value: numbers
/// without `+` or leading zeros, booleans in lower case, lists without spaces; an empty string is
/// unset (null).
fn shown_value(key: &BrokerKey, raw: String) -> Option<String> {
    match key.ty {
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            Some(parse_int(&raw).map_or(raw, |n| n.to_string()))
        }
        ConfigType::Boolean => Some(parse_bool(&raw).map_or(raw, |b| b.to_string())),
        ConfigType::List => Some(split_list(&raw).join(",")),
        // An empty string is unset, except where it is the default itself (Kafka shows
        // `authorizer.class.name` as "").
        _ if raw.is_empty() && key.default != Some("") => None,
        _ => Some(raw),
    }
}

/// `listener.name.<listener>.<key>`: a known key for one listener, or a SASL mechanism's
/// settings (`listener.name.<l>.<mechanism>.sasl.jaas.config` and the like).
fn is_listener_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("listener.name.") else {
        return false;
    };
    let Some((_, key)) = rest.split_once('.') else {
        return false;
    };
    broker_key(key).is_some() || key.contains(".sasl.") || key.starts_with("sasl.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> BrokerConfig {
        BrokerConfig::from_properties_text(text, &[]).unwrap()
    }

    fn err(text: &str) -> String {
        format!(
            "{:#}",
            BrokerConfig::from_properties_text(text, &[]).unwrap_err()
        )
    }

    fn args(list: &[&str]) -> anyhow::Result<CliAction> {
        BrokerConfig::from_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_match_kafka_or_documented_gregor_defaults() {
        let c = parse("");
        assert_eq!(c, BrokerConfig::default_standalone());
        assert_eq!(c.broker_id, 0);
        assert_eq!(c.listeners[0].to_string(), "PLAINTEXT://127.0.0.1:9092");
        assert_eq!(c.advertised_listeners, c.listeners);
        assert_eq!(c.log_dirs, vec![PathBuf::from("./gregor-data")]);
        assert_eq!(c.zookeeper_connect, None);
        assert_eq!(c.zookeeper_session_timeout_ms, 18000);
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.default_replication_factor, 1);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(c.auto_create_topics_enable);
        assert!(c.delete_topic_enable);
        assert_eq!(c.message_max_bytes, 1048588);
        assert_eq!(c.socket_request_max_bytes, 104857600);
        assert_eq!(c.socket_send_buffer_bytes, 102400);
        assert_eq!(c.socket_receive_buffer_bytes, -1);
        assert_eq!(c.connections_max_idle_ms, 600000);
        assert_eq!(c.log_segment_bytes, 1073741824);
        assert_eq!(c.log_index_interval_bytes, 4096);
        assert_eq!(c.log_flush_interval_messages, 9223372036854775807);
        assert_eq!(c.log_flush_interval_ms, None);
        assert_eq!(c.log_retention_ms, 604800000);
        assert_eq!(c.log_retention_bytes, -1);
        assert_eq!(c.log_cleanup_policy, "delete");
        assert!(c.warnings().is_empty());
        // The defaults in the key table agree with the typed defaults.
        for e in c.describe(None, false, false) {
            let key = broker_key(&e.name).unwrap();
            if ![
                "log.retention.ms",
                "node.id",
                "log.dirs",
                "advertised.listeners",
            ]
            .contains(&e.name.as_str())
            {
                assert_eq!(e.value.as_deref(), key.default, "{}", e.name);
            }
        }
    }

    #[test]
    fn typed_values() {
        let c = parse(
            "broker.id=3\nzookeeper.connect=zk1:2181,zk2:2181/kafka\nnum.partitions = 4\n\
             default.replication.factor=3\nmin.insync.replicas=2\nauto.create.topics.enable=FALSE\n\
             delete.topic.enable=false\nmessage.max.bytes=2000000\nsocket.request.max.bytes=1000\n\
             connections.max.idle.ms=5000\nlog.segment.bytes=1048576\nlog.index.interval.bytes=100\n\
             log.flush.interval.messages=10\nlog.flush.interval.ms=1000\nlog.retention.bytes=123\n\
             log.cleanup.policy=compact, delete\nbroker.rack=r1\ncluster.id=abc\n\
             log.dirs=/a, /b\nzookeeper.session.timeout.ms=6000\n",
        );
        assert_eq!(c.broker_id, 3);
        assert_eq!(
            c.zookeeper_connect.as_deref(),
            Some("zk1:2181,zk2:2181/kafka")
        );
        assert_eq!(c.num_partitions, 4);
        assert_eq!(c.default_replication_factor, 3);
        assert_eq!(c.min_insync_replicas, 2);
        assert!(!c.auto_create_topics_enable);
        assert!(!c.delete_topic_enable);
        assert_eq!(c.message_max_bytes, 2000000);
        assert_eq!(c.socket_request_max_bytes, 1000);
        assert_eq!(c.connections_max_idle_ms, 5000);
        assert_eq!(c.log_segment_bytes, 1048576);
        assert_eq!(c.log_index_interval_bytes, 100);
        assert_eq!(c.log_flush_interval_messages, 10);
        assert_eq!(c.log_flush_interval_ms, Some(1000));
        assert_eq!(c.log_retention_bytes, 123);
        assert_eq!(c.log_cleanup_policy, "compact,delete");
        assert_eq!(c.broker_rack.as_deref(), Some("r1"));
        assert_eq!(c.cluster_id.as_deref(), Some("abc"));
        assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(c.zookeeper_session_timeout_ms, 6000);
        assert_eq!(
            c.explicit.get("num.partitions").map(String::as_str),
            Some("4")
        );
    }

    #[test]
    fn log_dirs_precedence() {
        assert_eq!(parse("log.dir=/x").log_dirs, vec![PathBuf::from("/x")]);
        assert_eq!(
            parse("log.dir=/x\nlog.dirs=/y,/z").log_dirs,
            vec![PathBuf::from("/y"), PathBuf::from("/z")]
        );
        assert!(err("log.dirs= , ").contains("log.dirs"));
    }

    #[test]
    fn node_id_synonym() {
        assert_eq!(parse("node.id=7").broker_id, 7);
        // KRaft's node.id has no reserved range; broker.id keeps ZooKeeper mode's.
        assert_eq!(parse("node.id=5000").broker_id, 5000);
        assert_eq!(parse("node.id=7\nbroker.id=7").broker_id, 7);
        assert!(err("node.id=7\nbroker.id=8").contains("differ"));
        assert!(err("broker.id=-2").contains("at least -1"));
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let e = err("broker.id=abc");
        assert!(e.contains("broker.id") && e.contains("abc"), "{e}");
        let e = err("num.partitions=0");
        assert!(
            e.contains("num.partitions") && e.contains("at least 1"),
            "{e}"
        );
        let e = err("auto.create.topics.enable=yes");
        assert!(
            e.contains("auto.create.topics.enable") && e.contains("yes"),
            "{e}"
        );
        assert!(err("log.cleanup.policy=remove").contains("log.cleanup.policy"));
        assert!(err("default.replication.factor=40000").contains("default.replication.factor"));
        assert!(err("message.max.bytes=99999999999").contains("message.max.bytes"));
        assert!(err("log.segment.bytes=13").contains("at least 14"));
    }

    #[test]
    fn override_precedence() {
        let overrides = vec![
            ("num.partitions".to_string(), "5".to_string()),
            ("num.partitions".to_string(), "6".to_string()),
            ("broker.id".to_string(), "9".to_string()),
        ];
        let c = BrokerConfig::from_properties_text("num.partitions=2\nbroker.id=1\n", &overrides)
            .unwrap();
        assert_eq!(c.num_partitions, 6);
        assert_eq!(c.broker_id, 9);
        assert_eq!(c.explicit["num.partitions"], "6");
    }

    #[test]
    fn retention_precedence() {
        assert_eq!(parse("").log_retention_ms, 168 * 3_600_000);
        assert_eq!(parse("log.retention.hours=1").log_retention_ms, 3_600_000);
        assert_eq!(
            parse("log.retention.hours=1\nlog.retention.minutes=2").log_retention_ms,
            120_000
        );
        assert_eq!(
            parse("log.retention.hours=1\nlog.retention.minutes=2\nlog.retention.ms=5")
                .log_retention_ms,
            5
        );
        assert_eq!(
            parse("log.retention.ms=-1\nlog.retention.hours=1").log_retention_ms,
            -1
        );
        assert_eq!(parse("log.retention.hours=-5").log_retention_ms, -1);
        // A shadowed key is still checked.
        assert!(err("log.retention.ms=5\nlog.retention.hours=x").contains("log.retention.hours"));
    }

    #[test]
    fn listeners() {
        let c = parse("listeners=PLAINTEXT://127.0.0.1:9092");
        assert_eq!(
            c.listeners,
            vec![Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
                security_protocol: SecurityProtocol::Plaintext,
            }]
        );
        let c = parse("listeners=PLAINTEXT://:9092");
        assert_eq!(c.listeners[0].host, "0.0.0.0");
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.advertised_listeners[0].host, "127.0.0.1");
        let c = parse("listeners=plaintext://0.0.0.0:0, INTERNAL://[::1]:9093\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SSL");
        assert_eq!(c.listeners[0].name, "PLAINTEXT");
        assert_eq!(c.listeners[0].port, 0);
        assert_eq!(c.advertised_listeners[0].host, "127.0.0.1");
        assert_eq!(c.listeners[1].host, "::1");
        assert_eq!(c.listeners[1].host_port(), "[::1]:9093");
        assert_eq!(c.listeners[1].to_string(), "INTERNAL://[::1]:9093");
        assert_eq!(c.listeners[1].security_protocol, SecurityProtocol::Ssl);
        assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
        assert!(c.warnings().is_empty());
        let c = parse(
            "listeners=PLAINTEXT://:9092\nadvertised.listeners=PLAINTEXT://broker1.example:19092",
        );
        assert_eq!(c.advertised_listeners[0].host, "broker1.example");
        assert_eq!(c.advertised_listeners[0].port, 19092);
        assert_eq!(
            parse("advertised.listeners=PLAINTEXT://:9092").advertised_listeners[0].host,
            "127.0.0.1"
        );

        for bad in [
            "listeners=127.0.0.1:9092",
            "listeners=PLAINTEXT://127.0.0.1",
            "listeners=PLAINTEXT://127.0.0.1:99999",
            "listeners=PLAINTEXT://127.0.0.1:abc",
            "listeners=://127.0.0.1:9092",
            "listeners=PLAIN TEXT://h:1",
            "listeners=PLAINTEXT://h/x:1",
            "listeners=PLAINTEXT://[::1:9092",
            "listeners=",
            "listeners=PLAINTEXT://:9092,PLAINTEXT://:9093",
            "listeners=A://:9092,B://:9092\nlistener.security.protocol.map=A:PLAINTEXT,B:SSL",
            "listeners=EXTERNAL://:9092",
            "advertised.listeners=OTHER://h:1",
            "advertised.listeners=PLAINTEXT://0.0.0.0:9092",
        ] {
            let e = err(bad);
            let key = bad.split('=').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert!(err("listeners=PLAINTEXT://127.0.0.1:99999").contains("99999"));
        // Security protocols and the inter-broker listener, checked as Kafka does.
        for (bad, says) in [
            ("listeners=PLAINTEXT://:9092\nlistener.security.protocol.map=PLAINTEXT:TLS", "'TLS' is not a security protocol"),
            ("listeners=PLAINTEXT://:9092\nlistener.security.protocol.map=PLAINTEXT:SSL,PLAINTEXT:SSL", "more than once"),
            ("listeners=SSL://:9093", "inter.broker.listener.name must be a listener name defined in advertised.listeners"),
            ("listeners=PLAINTEXT://:9092\ninter.broker.listener.name=INTERNAL", "valid options based on currently configured listeners are PLAINTEXT"),
            ("listeners=PLAINTEXT://:9092\ninter.broker.listener.name=PLAINTEXT\nsecurity.inter.broker.protocol=PLAINTEXT", "Only one of"),
        ] {
            let e = err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        let c = parse("listeners=SSL://:9093,INTERNAL://127.0.0.1:9094\nlistener.security.protocol.map=SSL:SSL,INTERNAL:SASL_PLAINTEXT\ninter.broker.listener.name=internal");
        assert_eq!(c.inter_broker_listener_name, "INTERNAL");
        assert_eq!(c.inter_broker_listener().map(|l| l.port), Some(9094));
        let c = parse("listeners=SSL://:9093\nsecurity.inter.broker.protocol=SSL\nlistener.name.ssl.ssl.client.auth=required\nssl.client.auth=requested\nlistener.name.ssl.plain.sasl.jaas.config=x required ;");
        assert_eq!(c.inter_broker_listener_name, "SSL");
        assert_eq!(
            c.listener_value("SSL", "ssl.client.auth").as_deref(),
            Some("required")
        );
        assert_eq!(
            c.listener_value("OTHER", "ssl.client.auth").as_deref(),
            Some("requested")
        );
        assert_eq!(
            c.listener_value("SSL", "ssl.keystore.type").as_deref(),
            Some("JKS")
        );
        assert_eq!(
            c.listener_only_value("SSL", "plain.sasl.jaas.config")
                .as_deref(),
            Some("x required ;")
        );
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn the_acl_authorizer_and_its_own_keys() {
        assert_eq!(parse("").authorizer, None);
        let c = parse(
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer\n\
             super.users=User:admin; User:CN=broker,O=example\n\
             allow.everyone.if.no.acl.found=TRUE\n",
        );
        assert_eq!(
            c.authorizer,
            Some(AuthorizerSettings {
                super_users: vec!["User:admin".into(), "User:CN=broker,O=example".into()],
                allow_everyone_if_no_acl_found: true,
            })
        );
        // The authorizer's keys are known, though not broker configs.
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        assert!(c
            .describe(None, false, false)
            .iter()
            .all(|e| e.name != "super.users"));
        let kraft =
            parse("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer");
        assert!(kraft.authorizer.is_some());
        assert!(err("authorizer.class.name=com.example.Mine").contains("authorizer.class.name"));
        assert!(err(
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer\n\
             allow.everyone.if.no.acl.found=maybe"
        )
        .contains("allow.everyone.if.no.acl.found"));
    }

    #[test]
    fn unknown_keys_are_kept_and_warned() {
        let c = parse("num.io.threads=8\nbroker.id=1\n");
        assert_eq!(c.explicit["num.io.threads"], "8");
        let w = c.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("num.io.threads"));
        assert!(!w[0].contains("did you mean"), "{}", w[0]);
        assert!(c
            .describe(Some(&["num.io.threads".to_string()]), true, true)
            .is_empty());
    }

    #[test]
    fn command_line() {
        assert!(
            matches!(args(&["--help"]).unwrap(), CliAction::Help(t) if t.contains("--override"))
        );
        assert!(matches!(args(&["-h"]).unwrap(), CliAction::Help(_)));
        let CliAction::Run(c) = args(&[]).unwrap() else {
            panic!("expected Run")
        };
        assert_eq!(c, BrokerConfig::default_standalone());
        let CliAction::Run(c) = args(&[
            "--override",
            "broker.id=4",
            "--override=num.partitions=3",
            "--override",
            "x.y=a=b",
        ])
        .unwrap() else {
            panic!("expected Run")
        };
        assert_eq!(c.broker_id, 4);
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.explicit["x.y"], "a=b");

        let dir = std::env::temp_dir().join(format!("gregor-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("server.properties");
        std::fs::write(&file, "broker.id=2\nnum.partitions=2\n").unwrap();
        let path = file.display().to_string();
        let CliAction::Run(c) = args(&[&path, "--override", "num.partitions=8"]).unwrap() else {
            panic!("expected Run")
        };
        assert_eq!((c.broker_id, c.num_partitions), (2, 8));
        std::fs::write(&file, "broker.id=abc\n").unwrap();
        let e = format!("{:#}", args(&[&path]).unwrap_err());
        assert!(
            e.contains("broker.id") && e.contains("abc") && e.contains(&path),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(format!(
            "{:#}",
            args(&["/nonexistent/gregor.properties"]).unwrap_err()
        )
        .contains("cannot read"));
        assert!(args(&["--override"]).is_err());
        assert!(args(&["--override", "novalue"]).is_err());
        assert!(args(&["--frobnicate"]).is_err());
        assert!(args(&["a.properties", "b.properties"]).is_err());
    }

    #[test]
    fn describe_sources_and_synonyms() {
        let c = parse("log.retention.minutes=10\nnum.partitions=3\n");
        let all = c.describe(None, false, true);
        // Every key but the dynamic-only ones, which are listed where set (as Kafka does),
        // and the internal ones, never listed.
        assert_eq!(
            all.len(),
            BROKER_KEYS.len() - DYNAMIC_ONLY_KEYS.len() - INTERNAL_KEYS.len()
        );
        assert!(all
            .iter()
            .all(|e| !INTERNAL_KEYS.contains(&e.name.as_str())));
        assert!(all
            .iter()
            .all(|e| !DYNAMIC_ONLY_KEYS.contains(&e.name.as_str())));
        let mut throttled = crate::config::DynamicBrokerConfigs::default();
        throttled.set(
            crate::config::BrokerEntity::Default,
            [(
                "leader.replication.throttled.rate".to_string(),
                "1000".to_string(),
            )]
            .into(),
        );
        let listed = c
            .with_dynamic(&throttled)
            .unwrap()
            .describe(None, false, false);
        assert_eq!(
            listed.len(),
            BROKER_KEYS.len() - DYNAMIC_ONLY_KEYS.len() - INTERNAL_KEYS.len() + 1
        );
        assert!(listed
            .iter()
            .any(|e| e.name == "leader.replication.throttled.rate"
                && e.value.as_deref() == Some("1000")));
        assert!(all
            .iter()
            .all(|e| e.read_only != super::super::dynamic::is_live(&e.name)
                && e.sensitive == (e.config_type == ConfigType::Password)
                && (!e.sensitive || e.value.is_none())
                && e.documentation.is_some()
                && e.synonyms.is_empty()));

        let names = vec![
            "num.partitions".to_string(),
            "log.retention.ms".to_string(),
            "nope".to_string(),
        ];
        let rows = c.describe(Some(&names), true, false);
        assert_eq!(rows.len(), 2);
        let np = rows.iter().find(|e| e.name == "num.partitions").unwrap();
        assert_eq!(np.value.as_deref(), Some("3"));
        assert_eq!(np.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(np.config_type, ConfigType::Int);
        assert_eq!(np.documentation, None);
        assert_eq!(
            np.synonyms,
            vec![
                ConfigSynonym {
                    name: "num.partitions".into(),
                    value: Some("3".into()),
                    source: ConfigSource::StaticBrokerConfig
                },
                ConfigSynonym {
                    name: "num.partitions".into(),
                    value: Some("1".into()),
                    source: ConfigSource::DefaultConfig
                },
            ]
        );
        let ms = rows.iter().find(|e| e.name == "log.retention.ms").unwrap();
        assert_eq!(ms.value.as_deref(), Some("600000"));
        assert_eq!(ms.source, ConfigSource::DefaultConfig);
        assert_eq!(ms.config_type, ConfigType::Long);
        assert_eq!(
            ms.synonyms,
            vec![
                ConfigSynonym {
                    name: "log.retention.minutes".into(),
                    value: Some("10".into()),
                    source: ConfigSource::StaticBrokerConfig
                },
                ConfigSynonym {
                    name: "log.retention.hours".into(),
                    value: Some("168".into()),
                    source: ConfigSource::DefaultConfig
                },
            ]
        );
        let hours = c.describe(Some(&["log.retention.hours".to_string()]), true, false);
        assert_eq!(hours[0].value.as_deref(), Some("168"));
        assert_eq!(hours[0].source, ConfigSource::DefaultConfig);
        assert_eq!(hours[0].synonyms.len(), 1);
        let l = c.describe(Some(&["listeners".to_string()]), false, false);
        assert_eq!(l[0].value.as_deref(), Some("PLAINTEXT://127.0.0.1:9092"));
        assert_eq!(l[0].source, ConfigSource::DefaultConfig);
    }

    #[test]
    fn a_typo_of_a_known_key_suggests_it() {
        let w = parse("log.flush.interval.message=1\n").warnings();
        assert_eq!(
            w,
            vec![
                "ignoring unknown or unsupported config key 'log.flush.interval.message' \
                  (did you mean log.flush.interval.messages?)"
                    .to_string()
            ]
        );
    }

    #[test]
    fn values_kafka_refuses_are_refused_naming_key_and_value() {
        // Kafka 3.9's validators (ConfigDef ranges and KafkaConfig's cross-key checks); the
        // refused key and value are those of the last line.
        for text in [
            "log.retention.ms=0",
            "log.retention.minutes=0",
            "log.retention.hours=0",
            "log.index.interval.bytes=-1",
            "num.partitions=0",
            "log.segment.bytes=13",
            "log.roll.ms=0",
            "log.roll.hours=0",
            "log.retention.check.interval.ms=0",
            "log.flush.interval.messages=0",
            "message.max.bytes=-1",
            "socket.request.max.bytes=0",
            "min.insync.replicas=0",
            "offsets.topic.replication.factor=0",
            "offsets.topic.num.partitions=0",
            "offsets.retention.minutes=0",
            "group.max.size=0",
            "group.consumer.heartbeat.interval.ms=0",
            "log.cleaner.threads=-1",
            "log.cleaner.backoff.ms=-1",
            "log.cleaner.min.cleanable.ratio=1.5",
            "log.cleaner.max.compaction.lag.ms=0",
            "log.cleaner.dedupe.buffer.size=1048576",
            "log.cleaner.threads=2\nlog.cleaner.dedupe.buffer.size=2097152",
            "compression.type=brotli",
            "log.message.timestamp.type=Now",
            "broker.id=-2",
            "broker.id=1001",
            "node.id=-1",
        ] {
            let last = text.lines().last().unwrap_or_default();
            let (key, value) = last.split_once('=').unwrap_or_default();
            let e = err(text);
            assert!(
                e.contains(&format!("Invalid value {value} for configuration {key}")),
                "{text}: {e}"
            );
        }
        assert_eq!(parse("broker.id=1000").broker_id, 1000);
        // Negative retention is unlimited in Kafka, not refused; 0 threads turns the cleaner off.
        assert_eq!(parse("log.retention.ms=-5").log_retention_ms, -1);
        assert!(BrokerConfig::from_properties_text(
            "log.cleaner.threads=0\nlog.cleaner.dedupe.buffer.size=1024",
            &[]
        )
        .is_ok());
    }

    #[test]
    fn describe_shows_values_as_kafka_prints_them() {
        let c = parse(
            "group.consumer.assignors=range, uniform\nlog.cleaner.enable=FALSE\n\
             offsets.topic.num.partitions=+7\nzookeeper.connect=\n",
        );
        let value = |name: &str| {
            c.describe(Some(&[name.to_string()]), false, false)[0]
                .value
                .clone()
        };
        assert_eq!(
            value("group.consumer.assignors").as_deref(),
            Some("range,uniform")
        );
        assert_eq!(value("log.cleaner.enable").as_deref(), Some("false"));
        assert_eq!(value("offsets.topic.num.partitions").as_deref(), Some("7"));
        assert_eq!(value("zookeeper.connect"), None);
    }

    /// README's key table (under "## Running it"): one row per key with a summary.
    fn readme_key_table() -> String {
        let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
        for key in BROKER_KEYS {
            if let Some(summary) = key.summary {
                let default = match key.default {
                    Some(d) if d != LONG_MAX => format!("`{d}`"),
                    _ => default_for_people(key),
                };
                out.push_str(&format!("| `{}` | {default} | {summary} |\n", key.name));
            }
        }
        out
    }

    /// The rows of the markdown table that starts with `header` in README's section `section`.
    fn readme_table(section: &str, header: &str) -> String {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md is readable");
        let body = readme
            .split(&format!("\n{section}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("README has no '{section}' section"));
        let start = body
            .find(header)
            .unwrap_or_else(|| panic!("README's '{section}' has no table '{header}'"));
        body[start..]
            .lines()
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    }

    #[test]
    fn readme_key_table_and_help_list_the_summarised_keys_with_their_defaults() {
        let expected = readme_key_table();
        let readme = readme_table("## Running it", "| key | default | meaning |");
        assert!(
            readme == expected,
            "README's key table under '## Running it' differs from the key table in \
             src/config/broker_keys.rs; it should read:\n\n{expected}"
        );

        // (key, default) of each README row ...
        let readme_rows: Vec<(String, String)> = readme
            .lines()
            .skip(2)
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                (
                    cells[1].trim_matches('`').to_string(),
                    cells[2].trim_matches('`').to_string(),
                )
            })
            .collect();
        // ... and of each key listed by --help before the other keys.
        let help = help_text();
        let main_keys = help
            .split("\nConfiguration keys:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("--help lists the configuration keys");
        let help_rows: Vec<(String, String)> = main_keys
            .lines()
            .filter(|l| !l.starts_with("      "))
            .map(|l| {
                let (name, default) = l
                    .trim()
                    .split_once(" (default: ")
                    .expect("key (default: x)");
                (name.to_string(), default.trim_end_matches(')').to_string())
            })
            .collect();
        assert_eq!(readme_rows, help_rows);
        assert!(readme_rows.len() >= 30);
        for (name, default) in &readme_rows {
            let key = broker_key(name).unwrap_or_else(|| panic!("README lists unknown key {name}"));
            let code_default = match key.default {
                None => "unset",
                Some(LONG_MAX) => "no limit",
                Some(d) => d,
            };
            assert_eq!(default, code_default, "{name}");
        }
        // Every other key is in --help too, with its default.
        for key in BROKER_KEYS.iter().filter(|k| k.summary.is_none()) {
            assert!(
                help.contains(&format!("\n  {} (", key.name)),
                "{}",
                key.name
            );
        }
    }
}
