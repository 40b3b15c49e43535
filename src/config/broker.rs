//! The broker's static configuration: the command line (`gregor [server.properties] [--override
//! key=value ...]`, as Kafka's `kafka-server-start.sh`), the typed [`BrokerConfig`] built from the
//! file (read by `properties`) and the overrides, and the DescribeConfigs rows for resource type
//! BROKER.
//!
//! Only keys gregor actually honours are known here; any other key is kept verbatim in
//! [`BrokerConfig::explicit`] and reported by [`BrokerConfig::warnings`]. gregor-specific defaults
//! (where they differ from Kafka's) are documented on the fields.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

use super::properties::{decode_properties_bytes, parse_override, parse_properties};
use super::{
    check_value, parse_bool, parse_int, split_list, Check, ConfigEntry, ConfigSource,
    ConfigSynonym, ConfigType, INT_MAX,
};

/// One `NAME://host:port` endpoint from `listeners` or `advertised.listeners`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka does, e.g. `PLAINTEXT`.
    pub name: String,
    /// Host or IP address without IPv6 brackets. In `listeners` an empty host (`PLAINTEXT://:9092`)
    /// is stored as `0.0.0.0` (all interfaces).
    pub host: String,
    /// The port; 0 in `listeners` means an ephemeral port chosen at bind time.
    pub port: u16,
}

impl Listener {
    /// `host:port` for binding or connecting, with IPv6 hosts in brackets.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, self.host_port())
    }
}

/// The broker's configuration. Build it with [`BrokerConfig::from_args`],
/// [`BrokerConfig::from_properties_text`] or [`BrokerConfig::default_standalone`].
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerConfig {
    /// `broker.id` (or its synonym `node.id`). Kafka's default is -1 (generate one); gregor's is 0,
    /// so that a standalone broker needs no configuration. Must be >= 0.
    pub broker_id: i32,
    /// `listeners`; gregor's default is `PLAINTEXT://127.0.0.1:9092` (Kafka's is `PLAINTEXT://:9092`,
    /// all interfaces).
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`; default: `listeners`. A listener bound to all interfaces (`0.0.0.0`,
    /// `::` or an empty host) is advertised as `127.0.0.1` (Kafka would advertise the hostname); an
    /// empty host in an explicit `advertised.listeners` is likewise advertised as `127.0.0.1`.
    pub advertised_listeners: Vec<Listener>,
    /// `log.dirs` (comma-separated), else `log.dir`; gregor's default is `./gregor-data`, relative to
    /// the working directory (Kafka's is `/tmp/kafka-logs`).
    pub log_dirs: Vec<PathBuf>,
    /// `zookeeper.connect`; `None` when unset or empty.
    pub zookeeper_connect: Option<String>,
    /// `zookeeper.session.timeout.ms`, default 18000.
    pub zookeeper_session_timeout_ms: u64,
    /// `num.partitions`, default 1.
    pub num_partitions: i32,
    /// `default.replication.factor`, default 1.
    pub default_replication_factor: i16,
    /// `min.insync.replicas`, default 1.
    pub min_insync_replicas: i32,
    /// `auto.create.topics.enable`, default true.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`, default true.
    pub delete_topic_enable: bool,
    /// `message.max.bytes`, default 1048588.
    pub message_max_bytes: i32,
    /// `socket.request.max.bytes`, default 104857600.
    pub socket_request_max_bytes: usize,
    /// `connections.max.idle.ms`, default 600000.
    pub connections_max_idle_ms: u64,
    /// `log.segment.bytes`, default 1073741824.
    pub log_segment_bytes: u64,
    /// `log.index.interval.bytes`, default 4096.
    pub log_index_interval_bytes: u32,
    /// `log.flush.interval.messages`, default Long.MAX_VALUE (9223372036854775807).
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms`; `None` (unset) means `log.flush.scheduler.interval.ms` applies.
    pub log_flush_interval_ms: Option<u64>,
    /// Effective retention: `log.retention.ms`, else `log.retention.minutes`, else
    /// `log.retention.hours` (default 168); any negative result is -1 (unlimited), as in Kafka.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`, default -1 (unlimited).
    pub log_retention_bytes: i64,
    /// `log.cleanup.policy`, default `delete`; stored normalised (`compact,delete`, no spaces).
    pub log_cleanup_policy: String,
    /// `log.retention.check.interval.ms`, default 300000: how often retention runs.
    pub log_retention_check_interval_ms: u64,
    /// `broker.rack`; `None` when unset or empty.
    pub broker_rack: Option<String>,
    /// `cluster.id` (a gregor key, not Kafka's): overrides the cluster id that the broker otherwise
    /// generates and stores in meta.properties.
    pub cluster_id: Option<String>,
    /// Every key explicitly set (file, then `--override`; later wins), verbatim, for DescribeConfigs
    /// sources and for unknown-key warnings.
    pub explicit: BTreeMap<String, String>,
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

/// A broker key that gregor honours.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BrokerKey {
    pub name: &'static str,
    pub ty: ConfigType,
    /// The default as DescribeConfigs shows it; `None` for Kafka's null default.
    pub default: Option<&'static str>,
    pub check: Check,
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";

const fn int(min: i64) -> Check {
    Check::Int { min, max: INT_MAX }
}

const fn long(min: i64) -> Check {
    Check::Long { min, max: i64::MAX }
}

/// Every broker key gregor honours, with Kafka's type, default (gregor's where noted), range and doc.
pub(crate) const BROKER_KEYS: &[BrokerKey] = &[
    BrokerKey { name: "advertised.listeners", ty: ConfigType::String, default: None, check: Check::Special,
        doc: "Listeners to publish to ZooKeeper for clients to use, if different than the listeners config property. Default: the listeners; gregor advertises 127.0.0.1 for a listener bound to all interfaces." },
    BrokerKey { name: "auto.create.topics.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool,
        doc: "Enable auto creation of topic on the server." },
    BrokerKey { name: "broker.id", ty: ConfigType::Int, default: Some("0"), check: int(-1),
        doc: "The broker id for this server. gregor's default is 0; -1 (with zookeeper.connect) takes a generated id above 1000 from /brokers/seqid, kept in meta.properties, as Kafka does." },
    BrokerKey { name: "broker.rack", ty: ConfigType::String, default: None, check: Check::Str,
        doc: "Rack of the broker. This will be used in rack aware replication assignment for fault tolerance. Examples: RACK1, us-east-1d" },
    BrokerKey { name: "cluster.id", ty: ConfigType::String, default: None, check: Check::Str,
        doc: "gregor only: the cluster id to use instead of the one generated and stored in meta.properties." },
    BrokerKey { name: "compression.type", ty: ConfigType::String, default: Some("producer"),
        check: Check::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        doc: "Specify the final compression type for a given topic. This configuration accepts the standard compression codecs ('gzip', 'snappy', 'lz4', 'zstd'). It additionally accepts 'uncompressed' which is equivalent to no compression; and 'producer' which means retain the original compression codec set by the producer." },
    BrokerKey { name: "connections.max.idle.ms", ty: ConfigType::Long, default: Some("600000"), check: long(0),
        doc: "Idle connections timeout: the server socket processor threads close the connections that idle more than this." },
    BrokerKey { name: "default.replication.factor", ty: ConfigType::Int, default: Some("1"),
        check: Check::Int { min: 1, max: i16::MAX as i64 },
        doc: "The replication factor for automatically created topics, and for topics created with -1 as the replication factor." },
    BrokerKey { name: "delete.topic.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool,
        doc: "Enables delete topic. Delete topic through the admin tool will have no effect if this config is turned off." },
    BrokerKey { name: "group.consumer.assignors", ty: ConfigType::List, default: Some("uniform,range"), check: Check::ListOf(&["uniform", "range"]),
        doc: "The server-side assignors as a list of either names for builtin assignors or full class names for customer assignors. The first one in the list is considered as the default assignor to be used in the case where the consumer does not specify an assignor. gregor has the builtin uniform and range assignors." },
    BrokerKey { name: "group.consumer.heartbeat.interval.ms", ty: ConfigType::Int, default: Some("5000"), check: int(1),
        doc: "The heartbeat interval given to the members of a consumer group." },
    BrokerKey { name: "group.consumer.max.size", ty: ConfigType::Int, default: Some("2147483647"), check: int(1),
        doc: "The maximum number of consumers that a single consumer group can accommodate." },
    BrokerKey { name: "group.consumer.session.timeout.ms", ty: ConfigType::Int, default: Some("45000"), check: int(1),
        doc: "The timeout to detect client failures when using the consumer group protocol." },
    BrokerKey { name: "group.initial.rebalance.delay.ms", ty: ConfigType::Int, default: Some("3000"), check: int(0),
        doc: "The amount of time the group coordinator will wait for more consumers to join a new group before performing the first rebalance. A longer delay means potentially fewer rebalances, but increases the time until processing begins." },
    BrokerKey { name: "group.max.session.timeout.ms", ty: ConfigType::Int, default: Some("1800000"), check: int(0),
        doc: "The maximum allowed session timeout for registered consumers. Longer timeouts give consumers more time to process messages in between heartbeats at the cost of a longer time to detect failures." },
    BrokerKey { name: "group.max.size", ty: ConfigType::Int, default: Some("2147483647"), check: int(1),
        doc: "The maximum number of consumers that a single consumer group can accommodate." },
    BrokerKey { name: "group.min.session.timeout.ms", ty: ConfigType::Int, default: Some("6000"), check: int(0),
        doc: "The minimum allowed session timeout for registered consumers. Shorter timeouts result in quicker failure detection at the cost of more frequent consumer heartbeating, which can overwhelm broker resources." },
    BrokerKey { name: "listeners", ty: ConfigType::String, default: Some("PLAINTEXT://127.0.0.1:9092"), check: Check::Special,
        doc: "Listener List - Comma-separated list of URIs we will listen on and the listener names. Specify hostname as 0.0.0.0 to bind to all interfaces; leave hostname empty to bind to all interfaces too. Examples: PLAINTEXT://myhost:9092,SSL://:9091. gregor's default is PLAINTEXT://127.0.0.1:9092." },
    BrokerKey { name: "log.cleaner.backoff.ms", ty: ConfigType::Long, default: Some("15000"), check: long(0),
        doc: "The amount of time to sleep when there are no logs to clean" },
    BrokerKey { name: "log.cleaner.dedupe.buffer.size", ty: ConfigType::Long, default: Some("134217728"), check: long(1024),
        doc: "The total memory used for log deduplication across all cleaner threads" },
    BrokerKey { name: "log.cleaner.delete.retention.ms", ty: ConfigType::Long, default: Some("86400000"), check: long(0),
        doc: "The amount of time to retain tombstone message markers for log compacted topics." },
    BrokerKey { name: "log.cleaner.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool,
        doc: "Enable the log cleaner process to run on the server. Should be enabled if using any topics with a cleanup.policy=compact including the internal offsets topic." },
    BrokerKey { name: "log.cleaner.max.compaction.lag.ms", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(1),
        doc: "The maximum time a message will remain ineligible for compaction in the log. Only applicable for logs that are being compacted." },
    BrokerKey { name: "log.cleaner.min.cleanable.ratio", ty: ConfigType::Double, default: Some("0.5"), check: Check::Double { min: 0.0, max: 1.0 },
        doc: "The minimum ratio of dirty log to total log for a log to eligible for cleaning." },
    BrokerKey { name: "log.cleaner.min.compaction.lag.ms", ty: ConfigType::Long, default: Some("0"), check: long(0),
        doc: "The minimum time a message will remain uncompacted in the log. Only applicable for logs that are being compacted." },
    BrokerKey { name: "log.cleaner.threads", ty: ConfigType::Int, default: Some("1"), check: int(0),
        doc: "The number of background threads to use for log cleaning (gregor runs one when this is above 0)." },
    BrokerKey { name: "log.cleanup.policy", ty: ConfigType::List, default: Some("delete"),
        check: Check::ListOf(&["compact", "delete"]),
        doc: "The default cleanup policy for segments beyond the retention window. A comma separated list of valid policies. Valid policies are: \"delete\" and \"compact\"" },
    BrokerKey { name: "log.dir", ty: ConfigType::String, default: Some("./gregor-data"), check: Check::Special,
        doc: "The directory in which the log data is kept (supplemental for log.dirs property). gregor's default is ./gregor-data, relative to the working directory." },
    BrokerKey { name: "log.dirs", ty: ConfigType::String, default: None, check: Check::Special,
        doc: "A comma-separated list of the directories where the log data is stored. If not set, the value in log.dir is used." },
    BrokerKey { name: "log.flush.interval.messages", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(1),
        doc: "The number of messages accumulated on a log partition before messages are flushed to disk." },
    BrokerKey { name: "log.flush.interval.ms", ty: ConfigType::Long, default: None, check: long(0),
        doc: "The maximum time in ms that a message in any topic is kept in memory before flushed to disk. If not set, the value in log.flush.scheduler.interval.ms is used." },
    BrokerKey { name: "log.flush.scheduler.interval.ms", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(0),
        doc: "The frequency in ms that the log flusher checks whether any log needs to be flushed to disk" },
    BrokerKey { name: "log.index.interval.bytes", ty: ConfigType::Int, default: Some("4096"), check: int(0),
        doc: "The interval with which we add an entry to the offset index." },
    BrokerKey { name: "log.message.timestamp.type", ty: ConfigType::String, default: Some("CreateTime"),
        check: Check::OneOf(&["CreateTime", "LogAppendTime"]),
        doc: "Define whether the timestamp in the message is message create time or log append time. The value should be either CreateTime or LogAppendTime." },
    BrokerKey { name: "log.retention.bytes", ty: ConfigType::Long, default: Some("-1"), check: long(i64::MIN),
        doc: "The maximum size of the log before deleting it" },
    BrokerKey { name: "log.retention.check.interval.ms", ty: ConfigType::Long, default: Some("300000"), check: long(1),
        doc: "The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion" },
    BrokerKey { name: "log.retention.hours", ty: ConfigType::Int, default: Some("168"), check: int(i32::MIN as i64),
        doc: "The number of hours to keep a log file before deleting it (in hours), tertiary to log.retention.ms property" },
    BrokerKey { name: "log.retention.minutes", ty: ConfigType::Int, default: None, check: int(i32::MIN as i64),
        doc: "The number of minutes to keep a log file before deleting it (in minutes), secondary to log.retention.ms property. If not set, the value in log.retention.hours is used" },
    BrokerKey { name: "log.retention.ms", ty: ConfigType::Long, default: None, check: long(i64::MIN),
        doc: "The number of milliseconds to keep a log file before deleting it (in milliseconds), If not set, the value in log.retention.minutes is used. If set to -1, no time limit is applied." },
    BrokerKey { name: "log.roll.hours", ty: ConfigType::Int, default: Some("168"), check: int(1),
        doc: "The maximum time before a new log segment is rolled out (in hours), secondary to log.roll.ms property" },
    BrokerKey { name: "log.roll.ms", ty: ConfigType::Long, default: None, check: long(1),
        doc: "The maximum time before a new log segment is rolled out (in milliseconds). If not set, the value in log.roll.hours is used" },
    BrokerKey { name: "log.segment.bytes", ty: ConfigType::Int, default: Some("1073741824"), check: int(14),
        doc: "The maximum size of a single log file" },
    BrokerKey { name: "message.max.bytes", ty: ConfigType::Int, default: Some("1048588"), check: int(0),
        doc: "The largest record batch size allowed by Kafka (after compression if compression is enabled). This can be set per topic with the topic level max.message.bytes config." },
    BrokerKey { name: "min.insync.replicas", ty: ConfigType::Int, default: Some("1"), check: int(1),
        doc: "When a producer sets acks to \"all\" (or \"-1\"), min.insync.replicas specifies the minimum number of replicas that must acknowledge a write for the write to be considered successful." },
    BrokerKey { name: "node.id", ty: ConfigType::Int, default: None, check: int(0),
        doc: "The node ID; gregor accepts it as a synonym of broker.id (they must agree if both are set)." },
    BrokerKey { name: "num.partitions", ty: ConfigType::Int, default: Some("1"), check: int(1),
        doc: "The default number of log partitions per topic" },
    BrokerKey { name: "offset.metadata.max.bytes", ty: ConfigType::Int, default: Some("4096"), check: int(0),
        doc: "The maximum size for a metadata entry associated with an offset commit." },
    BrokerKey { name: "offsets.retention.check.interval.ms", ty: ConfigType::Long, default: Some("600000"), check: long(1),
        doc: "Frequency at which to check for stale offsets" },
    BrokerKey { name: "offsets.retention.minutes", ty: ConfigType::Int, default: Some("10080"), check: int(1),
        doc: "For subscribed consumers, committed offset of a specific partition will be expired and discarded when 1) this retention period has elapsed after the consumer group loses all its consumers (i.e. becomes empty); 2) this retention period has elapsed since the last time an offset is committed for the partition and the group is no longer subscribed to the corresponding topic. For standalone consumers (using manual assignment), offsets will be expired after this retention period has elapsed since the time of last commit." },
    BrokerKey { name: "offsets.topic.num.partitions", ty: ConfigType::Int, default: Some("50"), check: int(1),
        doc: "The number of partitions for the offset commit topic (should not change after deployment)." },
    BrokerKey { name: "offsets.topic.replication.factor", ty: ConfigType::Short, default: Some("3"), check: Check::Int { min: 1, max: i16::MAX as i64 },
        doc: "The replication factor for the offsets topic (set higher to ensure availability). gregor caps it at the number of live brokers when it creates the topic (Kafka would wait until enough brokers are up)." },
    BrokerKey { name: "offsets.topic.segment.bytes", ty: ConfigType::Int, default: Some("104857600"), check: int(1),
        doc: "The offsets topic segment bytes should be kept relatively small in order to facilitate faster log compaction and cache loads." },
    BrokerKey { name: "socket.request.max.bytes", ty: ConfigType::Int, default: Some("104857600"), check: int(1),
        doc: "The maximum number of bytes in a socket request" },
    BrokerKey { name: "unclean.leader.election.enable", ty: ConfigType::Boolean, default: Some("false"), check: Check::Bool,
        doc: "Indicates whether to enable replicas not in the ISR set to be elected as leader as a last resort, even though doing so may result in data loss" },
    BrokerKey { name: "zookeeper.connect", ty: ConfigType::String, default: None, check: Check::Str,
        doc: "Specifies the ZooKeeper connection string in the form hostname:port where host and port are the host and port of a ZooKeeper server, optionally followed by a chroot path (e.g. host1:2181,host2:2181/kafka)." },
    BrokerKey { name: "zookeeper.session.timeout.ms", ty: ConfigType::Int, default: Some("18000"), check: int(0),
        doc: "Zookeeper session timeout" },
];

/// Groups of broker keys that are synonyms, highest precedence first (Kafka's brokerConfigSynonyms).
const SYNONYM_GROUPS: &[&[&str]] = &[
    &[
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
    ],
    &["log.roll.ms", "log.roll.hours"],
    &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
];

/// The definition of a broker key gregor honours, if it is one.
pub(crate) fn broker_key(name: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

const USAGE: &str = "\
Usage: gregor [server.properties] [--override key=value ...]

Starts a gregor broker, a Kafka-wire-compatible message broker. The optional
properties file uses Kafka's server.properties format and key names (broker.id,
listeners, advertised.listeners, log.dirs, zookeeper.connect, num.partitions,
log.retention.hours, ...). Each --override key=value (or --override=key=value)
sets one key and takes precedence over the file; later overrides win.

Without zookeeper.connect the broker runs standalone. Defaults: broker.id=0,
listeners=PLAINTEXT://127.0.0.1:9092, log.dirs=./gregor-data.

Options:
  --override key=value   set a configuration key
  -h, --help             print this help
";

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
                return Ok(CliAction::Help(USAGE.to_string()));
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
        Self::from_explicit(explicit)
    }

    /// The configuration with nothing set: gregor's defaults (see the field docs).
    pub fn default_standalone() -> BrokerConfig {
        let listener = Listener {
            name: "PLAINTEXT".to_string(),
            host: "127.0.0.1".to_string(),
            port: 9092,
        };
        BrokerConfig {
            broker_id: 0,
            listeners: vec![listener.clone()],
            advertised_listeners: vec![listener],
            log_dirs: vec![PathBuf::from("./gregor-data")],
            zookeeper_connect: None,
            zookeeper_session_timeout_ms: 18000,
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            message_max_bytes: 1048588,
            socket_request_max_bytes: 104857600,
            connections_max_idle_ms: 600000,
            log_segment_bytes: 1073741824,
            log_index_interval_bytes: 4096,
            log_flush_interval_messages: i64::MAX as u64,
            log_flush_interval_ms: None,
            log_retention_ms: 168 * 3_600_000,
            log_retention_bytes: -1,
            log_cleanup_policy: "delete".to_string(),
            log_retention_check_interval_ms: 300_000,
            broker_rack: None,
            cluster_id: None,
            explicit: BTreeMap::new(),
        }
    }

    /// Things worth telling the operator: unknown (ignored) keys, and listeners that are not
    /// plaintext (gregor serves every listener as PLAINTEXT).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for key in self.explicit.keys() {
            if broker_key(key).is_none() {
                out.push(format!(
                    "ignoring unknown or unsupported config key '{key}'"
                ));
            }
        }
        for l in &self.listeners {
            if l.name != "PLAINTEXT" {
                out.push(format!(
                    "listener '{l}': gregor has no TLS/SASL, it serves this listener as PLAINTEXT"
                ));
            }
        }
        out
    }

    /// DescribeConfigs rows for resource type BROKER: every key gregor honours (see `BROKER_KEYS`),
    /// or only those in `names` (unknown names are absent). All are read-only (no dynamic broker
    /// configs); the source is StaticBrokerConfig when the key was set, else DefaultConfig.
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
            let source = if self.explicit.contains_key(key.name) {
                ConfigSource::StaticBrokerConfig
            } else {
                ConfigSource::DefaultConfig
            };
            let synonyms = if include_synonyms {
                self.broker_synonyms(key.name)
            } else {
                Vec::new()
            };
            out.push(ConfigEntry {
                name: key.name.to_string(),
                value: self.current_value(key.name),
                source,
                read_only: true,
                sensitive: false,
                config_type: key.ty,
                documentation: include_documentation.then(|| key.doc.to_string()),
                synonyms,
            });
        }
        out
    }

    /// The raw value of a known broker key as configured: the explicit value (trimmed), else the
    /// key's default. This is what synonyms show.
    pub(crate) fn raw_value(&self, name: &str) -> Option<String> {
        match self.explicit.get(name) {
            Some(v) => Some(v.trim().to_string()),
            None => broker_key(name).and_then(|k| k.default.map(str::to_string)),
        }
    }

    /// The value DescribeConfigs shows for a known key: taken from the typed fields where there is
    /// one (so it is what the broker actually uses), else the raw value.
    fn current_value(&self, name: &str) -> Option<String> {
        let join = |ls: &[Listener]| {
            ls.iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        Some(match name {
            "broker.id" | "node.id" => self.broker_id.to_string(),
            "listeners" => join(&self.listeners),
            "advertised.listeners" => join(&self.advertised_listeners),
            "log.dirs" => self
                .log_dirs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            "zookeeper.connect" => return self.zookeeper_connect.clone(),
            "zookeeper.session.timeout.ms" => self.zookeeper_session_timeout_ms.to_string(),
            "num.partitions" => self.num_partitions.to_string(),
            "default.replication.factor" => self.default_replication_factor.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "auto.create.topics.enable" => self.auto_create_topics_enable.to_string(),
            "delete.topic.enable" => self.delete_topic_enable.to_string(),
            "message.max.bytes" => self.message_max_bytes.to_string(),
            "socket.request.max.bytes" => self.socket_request_max_bytes.to_string(),
            "connections.max.idle.ms" => self.connections_max_idle_ms.to_string(),
            "log.segment.bytes" => self.log_segment_bytes.to_string(),
            "log.index.interval.bytes" => self.log_index_interval_bytes.to_string(),
            "log.flush.interval.messages" => self.log_flush_interval_messages.to_string(),
            "log.flush.interval.ms" => return self.log_flush_interval_ms.map(|v| v.to_string()),
            "log.retention.ms" => self.log_retention_ms.to_string(),
            "log.retention.bytes" => self.log_retention_bytes.to_string(),
            "log.cleanup.policy" => self.log_cleanup_policy.clone(),
            "log.retention.check.interval.ms" => self.log_retention_check_interval_ms.to_string(),
            "broker.rack" => return self.broker_rack.clone(),
            "cluster.id" => return self.cluster_id.clone(),
            _ => return self.raw_value(name),
        })
    }

    /// Synonyms of a broker key for DescribeConfigs: the key itself and its lower-precedence
    /// synonyms, first those set explicitly (StaticBrokerConfig), then those with a default
    /// (DefaultConfig), each group in precedence order.
    fn broker_synonyms(&self, name: &str) -> Vec<ConfigSynonym> {
        let group: &[&str] = SYNONYM_GROUPS
            .iter()
            .find(|g| g.contains(&name))
            .copied()
            .unwrap_or(&[]);
        let names: Vec<&str> = if group.is_empty() {
            vec![name]
        } else {
            group.iter().copied().skip_while(|n| *n != name).collect()
        };
        self.synonyms_of(&names)
    }

    /// Static then default synonym rows for the given broker keys (in the given order).
    pub(crate) fn synonyms_of(&self, names: &[&str]) -> Vec<ConfigSynonym> {
        let mut out = Vec::new();
        for n in names {
            if let Some(v) = self.explicit.get(*n) {
                out.push(ConfigSynonym {
                    name: n.to_string(),
                    value: Some(v.trim().to_string()),
                    source: ConfigSource::StaticBrokerConfig,
                });
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

    /// Builds the typed config from the explicitly set keys.
    fn from_explicit(explicit: BTreeMap<String, String>) -> anyhow::Result<BrokerConfig> {
        // Check every known key's value first, so that errors name the key and value.
        for (key, value) in &explicit {
            if let Some(def) = broker_key(key) {
                check_value(key, value, def.check).map_err(|e| anyhow!(e))?;
            }
        }
        let mut c = BrokerConfig::default_standalone();
        let get = |k: &str| explicit.get(k).map(|v| v.trim());
        // Values below passed check_value, so the parses cannot fail; `num` still reports an error
        // rather than panicking should that ever change.
        let num = |k: &str| -> anyhow::Result<Option<i64>> {
            match get(k) {
                Some(v) => parse_int(v)
                    .map(Some)
                    .map_err(|e| anyhow!("Invalid value {v} for configuration {k}: {e}")),
                None => Ok(None),
            }
        };
        let boolean = |k: &str| -> Option<bool> { get(k).and_then(|v| parse_bool(v).ok()) };

        let broker_id = num("broker.id")?;
        let node_id = num("node.id")?;
        if let (Some(b), Some(n)) = (broker_id, node_id) {
            if b != n {
                bail!("broker.id ({b}) and node.id ({n}) are both set and differ; set only one");
            }
        }
        if let Some(id) = broker_id.or(node_id) {
            c.broker_id = id as i32;
        }

        if let Some(v) = get("listeners") {
            c.listeners = parse_listeners("listeners", v)?;
            for l in &mut c.listeners {
                if l.host.is_empty() {
                    l.host = "0.0.0.0".to_string();
                }
            }
            let mut ports = std::collections::BTreeSet::new();
            for l in &c.listeners {
                if l.port != 0 && !ports.insert(l.port) {
                    bail!("Invalid value {v} for configuration listeners: Each listener must have a different port");
                }
            }
        }
        c.advertised_listeners = match get("advertised.listeners") {
            Some(v) => {
                let ls = parse_listeners("advertised.listeners", v)?;
                for l in &ls {
                    if l.host == "0.0.0.0" || l.host == "::" {
                        bail!("Invalid value {v} for configuration advertised.listeners: it cannot use the nonroutable meta-address {}; use a routable IP address", l.host);
                    }
                    if !c.listeners.iter().any(|x| x.name == l.name) {
                        bail!("Invalid value {v} for configuration advertised.listeners: listener name {} is not among the listeners", l.name);
                    }
                }
                ls.into_iter().map(advertisable).collect()
            }
            None => c.listeners.iter().cloned().map(advertisable).collect(),
        };

        let dirs = get("log.dirs")
            .map(|v| ("log.dirs", v))
            .or(get("log.dir").map(|v| ("log.dir", v)));
        if let Some((k, v)) = dirs {
            let list = split_list(v);
            if list.is_empty() {
                bail!(
                    "Invalid value {v} for configuration {k}: at least one directory is required"
                );
            }
            c.log_dirs = list.into_iter().map(PathBuf::from).collect();
        }

        let non_empty = |k: &str| get(k).filter(|v| !v.is_empty()).map(str::to_string);
        c.zookeeper_connect = non_empty("zookeeper.connect");
        c.broker_rack = non_empty("broker.rack");
        c.cluster_id = non_empty("cluster.id");

        if let Some(n) = num("zookeeper.session.timeout.ms")? {
            c.zookeeper_session_timeout_ms = n as u64;
        }
        if let Some(n) = num("num.partitions")? {
            c.num_partitions = n as i32;
        }
        if let Some(n) = num("default.replication.factor")? {
            c.default_replication_factor = n as i16;
        }
        if let Some(n) = num("min.insync.replicas")? {
            c.min_insync_replicas = n as i32;
        }
        if let Some(b) = boolean("auto.create.topics.enable") {
            c.auto_create_topics_enable = b;
        }
        if let Some(b) = boolean("delete.topic.enable") {
            c.delete_topic_enable = b;
        }
        if let Some(n) = num("message.max.bytes")? {
            c.message_max_bytes = n as i32;
        }
        if let Some(n) = num("socket.request.max.bytes")? {
            c.socket_request_max_bytes = n as usize;
        }
        if let Some(n) = num("connections.max.idle.ms")? {
            c.connections_max_idle_ms = n as u64;
        }
        if let Some(n) = num("log.segment.bytes")? {
            c.log_segment_bytes = n as u64;
        }
        if let Some(n) = num("log.index.interval.bytes")? {
            c.log_index_interval_bytes = n as u32;
        }
        if let Some(n) = num("log.flush.interval.messages")? {
            c.log_flush_interval_messages = n as u64;
        }
        c.log_flush_interval_ms = num("log.flush.interval.ms")?.map(|n| n as u64);
        let retention = match (
            num("log.retention.ms")?,
            num("log.retention.minutes")?,
            num("log.retention.hours")?,
        ) {
            (Some(ms), _, _) => ms,
            (None, Some(minutes), _) => minutes * 60_000,
            (None, None, Some(hours)) => hours * 3_600_000,
            (None, None, None) => c.log_retention_ms,
        };
        c.log_retention_ms = if retention < 0 { -1 } else { retention };
        if let Some(n) = num("log.retention.bytes")? {
            c.log_retention_bytes = n;
        }
        if let Some(v) = get("log.cleanup.policy") {
            c.log_cleanup_policy = split_list(v).join(",");
        }
        if let Some(n) = num("log.retention.check.interval.ms")? {
            c.log_retention_check_interval_ms = n as u64;
        }
        c.explicit = explicit;
        Ok(c)
    }
}

/// An advertised listener: a listener bound to all interfaces (or with an empty host) is advertised
/// as 127.0.0.1.
fn advertisable(mut l: Listener) -> Listener {
    if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
        l.host = "127.0.0.1".to_string();
    }
    l
}

/// Parses `NAME://host:port[,NAME://host:port...]`. The host may be empty (the caller decides what
/// that means); IPv6 hosts may be bracketed. Names are upper-cased and must be unique.
fn parse_listeners(key: &str, value: &str) -> anyhow::Result<Vec<Listener>> {
    let bad = |why: &str| anyhow!("Invalid value {value} for configuration {key}: {why}");
    let items = split_list(value);
    if items.is_empty() {
        return Err(bad("at least one listener is required"));
    }
    let mut out: Vec<Listener> = Vec::new();
    for item in items {
        let Some((name, rest)) = item.split_once("://") else {
            return Err(bad(&format!(
                "'{item}' is not of the form NAME://host:port"
            )));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err(bad(&format!(
                "'{item}' has an invalid listener name '{name}'"
            )));
        }
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            match after.split_once("]:") {
                Some((h, p)) => (h, p),
                None => return Err(bad(&format!("'{item}' has an unterminated IPv6 address"))),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => return Err(bad(&format!("'{item}' has no port"))),
            }
        };
        if !host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-%._:".contains(ch))
        {
            return Err(bad(&format!("'{item}' has an invalid host '{host}'")));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("'{item}' has an invalid port '{port}' (0-65535)")))?;
        let listener = Listener {
            name: name.to_ascii_uppercase(),
            host: host.to_string(),
            port,
        };
        if out.iter().any(|l| l.name == listener.name) {
            return Err(bad(&format!(
                "each listener must have a different name ('{}' repeats)",
                listener.name
            )));
        }
        out.push(listener);
    }
    Ok(out)
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
                port: 9092
            }]
        );
        let c = parse("listeners=PLAINTEXT://:9092");
        assert_eq!(c.listeners[0].host, "0.0.0.0");
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.advertised_listeners[0].host, "127.0.0.1");
        let c = parse("listeners=plaintext://0.0.0.0:0, INTERNAL://[::1]:9093");
        assert_eq!(c.listeners[0].name, "PLAINTEXT");
        assert_eq!(c.listeners[0].port, 0);
        assert_eq!(c.advertised_listeners[0].host, "127.0.0.1");
        assert_eq!(c.listeners[1].host, "::1");
        assert_eq!(c.listeners[1].host_port(), "[::1]:9093");
        assert_eq!(c.listeners[1].to_string(), "INTERNAL://[::1]:9093");
        assert_eq!(c.warnings().len(), 1);
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
            "listeners=A://:9092,B://:9092",
            "advertised.listeners=OTHER://h:1",
            "advertised.listeners=PLAINTEXT://0.0.0.0:9092",
        ] {
            let e = err(bad);
            let key = bad.split('=').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert!(err("listeners=PLAINTEXT://127.0.0.1:99999").contains("99999"));
    }

    #[test]
    fn unknown_keys_are_kept_and_warned() {
        let c = parse("num.io.threads=8\nbroker.id=1\n");
        assert_eq!(c.explicit["num.io.threads"], "8");
        let w = c.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("num.io.threads"));
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
        assert_eq!(all.len(), BROKER_KEYS.len());
        assert!(all.iter().all(|e| e.read_only
            && !e.sensitive
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
}
