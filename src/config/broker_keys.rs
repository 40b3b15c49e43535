//! The broker key table: every broker key gregor honours, in one place. Parsing and validation
//! (`BrokerConfig::from_properties_text`), defaults (`BrokerConfig::default_standalone`),
//! DescribeConfigs rows (`BrokerConfig::describe`), `--help` and README's key table all read it.
//!
//! To add a key: add a row here (Kafka 3.9's name, type, default, validator and doc; gregor's
//! default where it differs, said so in the doc), give it a `summary` if operators should see it
//! in `--help` and README (then paste the README row the `readme_key_table` test prints), and, if
//! the broker needs it typed, a field in `BrokerConfig` filled in `BrokerConfig::from_layers`.
//! A key that gregor should update while running also goes into `dynamic::LIVE_KEYS`.

use super::{int, long, Check, ConfigType, LONG_MAX};

/// Kafka's dynamic-only broker keys (its `DynamicConfig.Broker` quotas, not in `KafkaConfig`):
/// DescribeConfigs lists them only where they are set, as Kafka's does.
/// Keys gregor reads but DescribeConfigs never lists: Kafka defines them as internal
/// (`ConfigDef.defineInternal`), so a Kafka broker accepts them in its configuration and
/// does not describe them either.
pub(crate) const INTERNAL_KEYS: &[&str] = &["producer.id.expiration.check.interval.ms"];

pub(crate) const DYNAMIC_ONLY_KEYS: &[&str] = &[
    "follower.replication.throttled.rate",
    "leader.replication.throttled.rate",
];

/// One broker key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BrokerKey {
    pub name: &'static str,
    pub ty: ConfigType,
    /// The default as DescribeConfigs shows it; `None` for Kafka's null default (unset).
    pub default: Option<&'static str>,
    /// Kafka's validator for the value.
    pub check: Check,
    /// Lower-precedence keys that supply the value while this one is unset, highest first
    /// (Kafka's broker config synonyms, e.g. `log.retention.ms` <- minutes <- hours).
    pub synonyms: &'static [&'static str],
    /// One line for `--help` and README's key table; `None` keeps the key out of both (it is still
    /// honoured and listed by `--help` among the other keys).
    pub summary: Option<&'static str>,
    /// Kafka's documentation, for DescribeConfigs.
    pub doc: &'static str,
}

/// Kafka's `reserved.broker.max.id` default: explicit broker ids may not exceed it, generated
/// ones (`broker.id=-1`) start above it.
const RESERVED_BROKER_MAX_ID: i64 = 1000;

/// Kafka 3.9's default of `listener.security.protocol.map`: each security protocol is also a
/// listener name (the order is that of Kafka's HashMap, as its DescribeConfigs shows it).
pub(crate) const LISTENER_SECURITY_PROTOCOL_MAP_DEFAULT: &str =
    "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";

/// The KIP-848 assignors gregor has, by name and by Kafka's class name.
pub(crate) const CONSUMER_ASSIGNORS: &[&str] = &[
    "uniform",
    "range",
    "org.apache.kafka.coordinator.group.assignor.UniformAssignor",
    "org.apache.kafka.coordinator.group.assignor.RangeAssignor",
];

/// Kafka 3.9's default of `group.consumer.assignors` (class names; Kafka 4 shows `uniform,range`).
const CONSUMER_ASSIGNORS_DEFAULT: &str = "org.apache.kafka.coordinator.group.assignor.UniformAssignor,org.apache.kafka.coordinator.group.assignor.RangeAssignor";

/// Every broker key gregor honours, sorted by name (DescribeConfigs lists them in this order).
pub(crate) const BROKER_KEYS: &[BrokerKey] = &[
    BrokerKey { name: "advertised.listeners", ty: ConfigType::String, default: None, check: Check::Special, synonyms: &[],
        summary: Some("what clients are told to connect to; unset: `listeners` (a listener on all interfaces is advertised as 127.0.0.1)"),
        doc: "Listeners to publish to ZooKeeper for clients to use, if different than the listeners config property. Default: the listeners; gregor advertises 127.0.0.1 for a listener bound to all interfaces." },
    BrokerKey { name: "authorizer.class.name", ty: ConfigType::String, default: Some(""), check: Check::Str, synonyms: &[],
        summary: Some("`kafka.security.authorizer.AclAuthorizer` (or KRaft's `org.apache.kafka.metadata.authorizer.StandardAuthorizer`): check ACLs; empty: everything is allowed"),
        doc: "The fully qualified name of a class that implements org.apache.kafka.server.authorizer.Authorizer interface, which is used by the broker for authorization. gregor has Kafka's ACL authorizer, named by either of Kafka's class names; ACLs are kept in ZooKeeper at /kafka-acl (standalone: in the embedded metadata)." },
    BrokerKey { name: "auto.create.topics.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool, synonyms: &[],
        summary: Some("create unknown topics on Metadata requests"),
        doc: "Enable auto creation of topic on the server." },
    BrokerKey { name: "auto.leader.rebalance.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool, synonyms: &[],
        summary: Some("the controller moves leadership back to preferred replicas (first in the assignment)"),
        doc: "Enables auto leader balancing. A background thread checks the distribution of partition leaders at regular intervals, configurable by leader.imbalance.check.interval.seconds. If the leader imbalance exceeds leader.imbalance.per.broker.percentage, leader rebalance to the preferred leader for partitions is triggered." },
    BrokerKey { name: "broker.id", ty: ConfigType::Int, default: Some("0"), check: Check::Int { min: -1, max: RESERVED_BROKER_MAX_ID }, synonyms: &[],
        summary: Some("this broker's id (`node.id` is a synonym); -1 with `zookeeper.connect`: a generated id above 1000"),
        doc: "The broker id for this server. gregor's default is 0; -1 (with zookeeper.connect) takes a generated id above 1000 from /brokers/seqid, kept in meta.properties, as Kafka does; an explicit id may not exceed 1000 (Kafka's reserved.broker.max.id)." },
    BrokerKey { name: "broker.rack", ty: ConfigType::String, default: None, check: Check::Str, synonyms: &[],
        summary: Some("rack of this broker; replica assignment alternates racks when every broker has one"),
        doc: "Rack of the broker. This will be used in rack aware replication assignment for fault tolerance. Examples: RACK1, us-east-1d" },
    BrokerKey { name: "cluster.id", ty: ConfigType::String, default: None, check: Check::Str, synonyms: &[],
        summary: Some("gregor only: use this cluster id instead of the generated one"),
        doc: "gregor only: the cluster id to use instead of the one generated and stored in meta.properties." },
    BrokerKey { name: "compression.type", ty: ConfigType::String, default: Some("producer"), check: Check::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), synonyms: &[],
        summary: None,
        doc: "Specify the final compression type for a given topic. This configuration accepts the standard compression codecs ('gzip', 'snappy', 'lz4', 'zstd'). It additionally accepts 'uncompressed' which is equivalent to no compression; and 'producer' which means retain the original compression codec set by the producer." },
    BrokerKey { name: "connection.failed.authentication.delay.ms", ty: ConfigType::Int, default: Some("100"), check: Check::Int { min: 0, max: i32::MAX as i64 }, synonyms: &[],
        summary: None,
        doc: "Connection close delay on failed authentication: this is the time (in milliseconds) by which connection close will be delayed on authentication failure. This must be configured to be less than connections.max.idle.ms to prevent connection timeout." },
    BrokerKey { name: "connections.max.idle.ms", ty: ConfigType::Long, default: Some("600000"), check: long(0), synonyms: &[],
        summary: Some("idle connections are closed"),
        doc: "Idle connections timeout: the server socket processor threads close the connections that idle more than this." },
    BrokerKey { name: "connections.max.reauth.ms", ty: ConfigType::Long, default: Some("0"), check: Check::Long { min: 0, max: i64::MAX }, synonyms: &[],
        summary: Some("SASL: the longest a session may last before the client must re-authenticate (KIP-368); 0: forever"),
        doc: "When explicitly set to a positive number (the default is 0, not a positive number), a session lifetime that will not exceed the configured value will be communicated to v2.2.0 or later clients when they authenticate. The broker will disconnect any such connection that is not re-authenticated within the session lifetime and that is then subsequently used for any purpose other than re-authentication. Configuration names can optionally be prefixed with listener prefix and SASL mechanism name in lower-case. For example, listener.name.sasl_ssl.oauthbearer.connections.max.reauth.ms=3600000" },
    BrokerKey { name: "default.replication.factor", ty: ConfigType::Int, default: Some("1"), check: Check::Int { min: 1, max: i16::MAX as i64 }, synonyms: &[],
        summary: Some("replication factor of auto-created topics"),
        doc: "The replication factor for automatically created topics, and for topics created with -1 as the replication factor." },
    BrokerKey { name: "delete.topic.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool, synonyms: &[],
        summary: Some("allow DeleteTopics"),
        doc: "Enables delete topic. Delete topic through the admin tool will have no effect if this config is turned off." },
    BrokerKey { name: "follower.replication.throttled.rate", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(0), synonyms: &[],
        summary: Some("bytes/s a follower fetches for the replicas its topics' `follower.replication.throttled.replicas` name while out of sync"),
        doc: "A long representing the upper bound (bytes/sec) on replication traffic for followers enumerated in the property follower.replication.throttled.replicas (for each topic). This property can be only set dynamically. It is suggested that the limit be kept above 1MB/s for accurate behaviour." },
    BrokerKey { name: "group.consumer.assignors", ty: ConfigType::List, default: Some(CONSUMER_ASSIGNORS_DEFAULT), check: Check::ListOf(CONSUMER_ASSIGNORS), synonyms: &[],
        summary: Some("KIP-848 server-side assignors, the first is the default (`uniform` or `range`, or their class names)"),
        doc: "The server-side assignors as a list of either names for builtin assignors or full class names for customer assignors. The first one in the list is considered as the default assignor to be used in the case where the consumer does not specify an assignor. gregor has the builtin uniform and range assignors." },
    BrokerKey { name: "group.consumer.heartbeat.interval.ms", ty: ConfigType::Int, default: Some("5000"), check: int(1), synonyms: &[],
        summary: Some("KIP-848 heartbeat interval"),
        doc: "The heartbeat interval given to the members of a consumer group." },
    BrokerKey { name: "group.consumer.max.size", ty: ConfigType::Int, default: Some("2147483647"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The maximum number of consumers that a single consumer group can accommodate." },
    BrokerKey { name: "group.consumer.session.timeout.ms", ty: ConfigType::Int, default: Some("45000"), check: int(1), synonyms: &[],
        summary: Some("KIP-848 session timeout"),
        doc: "The timeout to detect client failures when using the consumer group protocol." },
    BrokerKey { name: "group.initial.rebalance.delay.ms", ty: ConfigType::Int, default: Some("3000"), check: int(0), synonyms: &[],
        summary: Some("a new group waits this long for more members before its first rebalance"),
        doc: "The amount of time the group coordinator will wait for more consumers to join a new group before performing the first rebalance. A longer delay means potentially fewer rebalances, but increases the time until processing begins." },
    BrokerKey { name: "group.max.session.timeout.ms", ty: ConfigType::Int, default: Some("1800000"), check: int(0), synonyms: &[],
        summary: Some("longest classic session timeout allowed"),
        doc: "The maximum allowed session timeout for registered consumers. Longer timeouts give consumers more time to process messages in between heartbeats at the cost of a longer time to detect failures." },
    BrokerKey { name: "group.max.size", ty: ConfigType::Int, default: Some("2147483647"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The maximum number of consumers that a single consumer group can accommodate." },
    BrokerKey { name: "group.min.session.timeout.ms", ty: ConfigType::Int, default: Some("6000"), check: int(0), synonyms: &[],
        summary: Some("shortest classic session timeout allowed"),
        doc: "The minimum allowed session timeout for registered consumers. Shorter timeouts result in quicker failure detection at the cost of more frequent consumer heartbeating, which can overwhelm broker resources." },
    BrokerKey { name: "inter.broker.listener.name", ty: ConfigType::String, default: None, check: Check::Special, synonyms: &[],
        summary: Some("the listener brokers use to reach each other; unset: the one named after `security.inter.broker.protocol`"),
        doc: "Name of listener used for communication between brokers. If this is unset, the listener name is defined by security.inter.broker.protocol. It is an error to set this and security.inter.broker.protocol properties at the same time." },
    BrokerKey { name: "leader.imbalance.check.interval.seconds", ty: ConfigType::Long, default: Some("300"), check: long(1), synonyms: &[],
        summary: Some("how often the controller checks for leaders away from their preferred replica"),
        doc: "The frequency with which the partition rebalance check is triggered by the controller" },
    BrokerKey { name: "leader.imbalance.per.broker.percentage", ty: ConfigType::Int, default: Some("10"), check: int(0), synonyms: &[],
        summary: Some("a broker leading fewer of its preferred partitions than this share is rebalanced"),
        doc: "The ratio of leader imbalance allowed per broker. The controller would trigger a leader balance if it goes above this value per broker. The value is specified in percentage." },
    BrokerKey { name: "leader.replication.throttled.rate", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(0), synonyms: &[],
        summary: Some("bytes/s a leader sends to the replicas its topics' `leader.replication.throttled.replicas` name while out of sync (`kafka-reassign-partitions --throttle`)"),
        doc: "A long representing the upper bound (bytes/sec) on replication traffic for leaders enumerated in the property leader.replication.throttled.replicas (for each topic). This property can be only set dynamically. It is suggested that the limit be kept above 1MB/s for accurate behaviour." },
    BrokerKey { name: "listener.security.protocol.map", ty: ConfigType::String, default: Some(LISTENER_SECURITY_PROTOCOL_MAP_DEFAULT), check: Check::Special, synonyms: &[],
        summary: Some("`NAME:PROTOCOL` pairs: the security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) of each listener name"),
        doc: "Map between listener names and security protocols. This must be defined for the same security protocol to be usable in more than one port or IP. For example, internal and external traffic can be separated even if SSL is required for both. Concretely, the user could define listeners with names INTERNAL and EXTERNAL and this property as: INTERNAL:SSL,EXTERNAL:SSL. As shown, key and value are separated by a colon and map entries are separated by commas. Each listener name should only appear once in the map. Different security (SSL and SASL) settings can be configured for each listener by adding a normalised prefix (the listener name is lowercased) to the config name. For example, to set a different keystore for the INTERNAL listener, a config with name listener.name.internal.ssl.keystore.location would be set. If the config for the listener name is not set, the config will fallback to the generic config (i.e. ssl.keystore.location)." },
    BrokerKey { name: "listeners", ty: ConfigType::String, default: Some("PLAINTEXT://127.0.0.1:9092"), check: Check::Special, synonyms: &[],
        summary: Some("where to listen; an empty host means all interfaces"),
        doc: "Listener List - Comma-separated list of URIs we will listen on and the listener names. Specify hostname as 0.0.0.0 to bind to all interfaces; leave hostname empty to bind to all interfaces too. Examples: PLAINTEXT://myhost:9092,SSL://:9091. gregor's default is PLAINTEXT://127.0.0.1:9092." },
    BrokerKey { name: "log.cleaner.backoff.ms", ty: ConfigType::Long, default: Some("15000"), check: long(0), synonyms: &[],
        summary: Some("pause when no log needs cleaning"),
        doc: "The amount of time to sleep when there are no logs to clean" },
    BrokerKey { name: "log.cleaner.dedupe.buffer.size", ty: ConfigType::Long, default: Some("134217728"), check: long(1024), synonyms: &[],
        summary: Some("memory bound of the cleaner's offset map (key hash -> newest offset, 24 bytes per key)"),
        doc: "The total memory used for log deduplication across all cleaner threads" },
    BrokerKey { name: "log.cleaner.delete.retention.ms", ty: ConfigType::Long, default: Some("86400000"), check: long(0), synonyms: &[],
        summary: Some("default of topic `delete.retention.ms` (tombstone lifetime)"),
        doc: "The amount of time to retain tombstone message markers for log compacted topics." },
    BrokerKey { name: "log.cleaner.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool, synonyms: &[],
        summary: Some("run the log cleaner (compaction of `cleanup.policy=compact` topics)"),
        doc: "Enable the log cleaner process to run on the server. Should be enabled if using any topics with a cleanup.policy=compact including the internal offsets topic." },
    BrokerKey { name: "log.cleaner.max.compaction.lag.ms", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(1), synonyms: &[],
        summary: Some("default of topic `max.compaction.lag.ms`"),
        doc: "The maximum time a message will remain ineligible for compaction in the log. Only applicable for logs that are being compacted." },
    BrokerKey { name: "log.cleaner.min.cleanable.ratio", ty: ConfigType::Double, default: Some("0.5"), check: Check::Double { min: 0.0, max: 1.0 }, synonyms: &[],
        summary: Some("default of topic `min.cleanable.dirty.ratio`"),
        doc: "The minimum ratio of dirty log to total log for a log to eligible for cleaning." },
    BrokerKey { name: "log.cleaner.min.compaction.lag.ms", ty: ConfigType::Long, default: Some("0"), check: long(0), synonyms: &[],
        summary: Some("default of topic `min.compaction.lag.ms`"),
        doc: "The minimum time a message will remain uncompacted in the log. Only applicable for logs that are being compacted." },
    BrokerKey { name: "log.cleaner.threads", ty: ConfigType::Int, default: Some("1"), check: int(0), synonyms: &[],
        summary: Some("`0` turns the cleaner off; any higher value runs gregor's one cleaner thread"),
        doc: "The number of background threads to use for log cleaning (gregor runs one when this is above 0)." },
    BrokerKey { name: "log.cleanup.policy", ty: ConfigType::List, default: Some("delete"), check: Check::ListOf(&["compact", "delete"]), synonyms: &[],
        summary: Some("`delete`, `compact` or both (topic: `cleanup.policy`)"),
        doc: "The default cleanup policy for segments beyond the retention window. A comma separated list of valid policies. Valid policies are: \"delete\" and \"compact\"" },
    BrokerKey { name: "log.dir", ty: ConfigType::String, default: Some("./gregor-data"), check: Check::Special, synonyms: &[],
        summary: Some("data directory when `log.dirs` is unset"),
        doc: "The directory in which the log data is kept (supplemental for log.dirs property). gregor's default is ./gregor-data, relative to the working directory." },
    BrokerKey { name: "log.dirs", ty: ConfigType::String, default: None, check: Check::Special, synonyms: &[],
        summary: Some("data directories, comma-separated: partitions spread over them (fewest first), a failed one goes offline alone; unset: `log.dir`"),
        doc: "A comma-separated list of the directories where the log data is stored. If not set, the value in log.dir is used." },
    BrokerKey { name: "log.flush.interval.messages", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(1), synonyms: &[],
        summary: Some("fsync after this many messages (topic: `flush.messages`); `1` = fsync before every acknowledgement"),
        doc: "The number of messages accumulated on a log partition before messages are flushed to disk." },
    BrokerKey { name: "log.flush.interval.ms", ty: ConfigType::Long, default: None, check: long(0), synonyms: &["log.flush.scheduler.interval.ms"],
        summary: Some("fsync a log whose unflushed messages are older than this (topic: `flush.ms`); unset: `log.flush.scheduler.interval.ms`"),
        doc: "The maximum time in ms that a message in any topic is kept in memory before flushed to disk. If not set, the value in log.flush.scheduler.interval.ms is used." },
    BrokerKey { name: "log.flush.scheduler.interval.ms", ty: ConfigType::Long, default: Some(LONG_MAX), check: long(0), synonyms: &[],
        summary: Some("how often `flush.ms` is checked (gregor checks at least every second)"),
        doc: "The frequency in ms that the log flusher checks whether any log needs to be flushed to disk" },
    BrokerKey { name: "log.index.interval.bytes", ty: ConfigType::Int, default: Some("4096"), check: int(0), synonyms: &[],
        summary: Some("bytes between offset index entries (topic: `index.interval.bytes`)"),
        doc: "The interval with which we add an entry to the offset index." },
    BrokerKey { name: "log.message.timestamp.type", ty: ConfigType::String, default: Some("CreateTime"), check: Check::OneOf(&["CreateTime", "LogAppendTime"]), synonyms: &[],
        summary: None,
        doc: "Define whether the timestamp in the message is message create time or log append time. The value should be either CreateTime or LogAppendTime." },
    BrokerKey { name: "log.retention.bytes", ty: ConfigType::Long, default: Some("-1"), check: long(i64::MIN), synonyms: &[],
        summary: Some("delete old segments beyond this partition size (topic: `retention.bytes`); -1: no limit"),
        doc: "The maximum size of the log before deleting it" },
    BrokerKey { name: "log.retention.check.interval.ms", ty: ConfigType::Long, default: Some("300000"), check: long(1), synonyms: &[],
        summary: Some("how often retention runs"),
        doc: "The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion" },
    BrokerKey { name: "log.retention.hours", ty: ConfigType::Int, default: Some("168"), check: int(i32::MIN as i64), synonyms: &[],
        summary: Some("delete segments older than this (topic: `retention.ms`); -1: keep forever"),
        doc: "The number of hours to keep a log file before deleting it (in hours), tertiary to log.retention.ms property" },
    BrokerKey { name: "log.retention.minutes", ty: ConfigType::Int, default: None, check: int(i32::MIN as i64), synonyms: &["log.retention.hours"],
        summary: Some("overrides `log.retention.hours`"),
        doc: "The number of minutes to keep a log file before deleting it (in minutes), secondary to log.retention.ms property. If not set, the value in log.retention.hours is used" },
    BrokerKey { name: "log.retention.ms", ty: ConfigType::Long, default: None, check: long(i64::MIN), synonyms: &["log.retention.minutes", "log.retention.hours"],
        summary: Some("overrides `log.retention.minutes` and `log.retention.hours`; -1: keep forever"),
        doc: "The number of milliseconds to keep a log file before deleting it (in milliseconds), If not set, the value in log.retention.minutes is used. If set to -1, no time limit is applied." },
    BrokerKey { name: "log.roll.hours", ty: ConfigType::Int, default: Some("168"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The maximum time before a new log segment is rolled out (in hours), secondary to log.roll.ms property" },
    BrokerKey { name: "log.roll.ms", ty: ConfigType::Long, default: None, check: long(1), synonyms: &["log.roll.hours"],
        summary: None,
        doc: "The maximum time before a new log segment is rolled out (in milliseconds). If not set, the value in log.roll.hours is used" },
    BrokerKey { name: "log.segment.bytes", ty: ConfigType::Int, default: Some("1073741824"), check: int(14), synonyms: &[],
        summary: Some("segment roll size (topic: `segment.bytes`)"),
        doc: "The maximum size of a single log file" },
    BrokerKey { name: "message.max.bytes", ty: ConfigType::Int, default: Some("1048588"), check: int(0), synonyms: &[],
        summary: Some("largest record batch accepted (topic: `max.message.bytes`)"),
        doc: "The largest record batch size allowed by Kafka (after compression if compression is enabled). This can be set per topic with the topic level max.message.bytes config." },
    BrokerKey { name: "metrics.port", ty: ConfigType::Int, default: Some("9644"), check: Check::Int { min: 0, max: u16::MAX as i64 }, synonyms: &[],
        summary: Some("gregor only: Prometheus metrics at `http://<listener host>:<port>/metrics`; `0` turns them off; a port in use stops the start"),
        doc: "gregor only: the port of the Prometheus metrics endpoint (http://<host>:<port>/metrics, text format), bound on the host of the first listener (all interfaces if that is empty or 0.0.0.0). 0 turns the endpoint off. A port already in use stops the broker at start." },
    BrokerKey { name: "min.insync.replicas", ty: ConfigType::Int, default: Some("1"), check: int(1), synonyms: &[],
        summary: Some("acks=all needs this many in-sync replicas (topic: `min.insync.replicas`)"),
        doc: "When a producer sets acks to \"all\" (or \"-1\"), min.insync.replicas specifies the minimum number of replicas that must acknowledge a write for the write to be considered successful." },
    BrokerKey { name: "node.id", ty: ConfigType::Int, default: None, check: int(0), synonyms: &[],
        summary: None,
        doc: "The node ID; gregor accepts it as a synonym of broker.id (they must agree if both are set)." },
    BrokerKey { name: "num.partitions", ty: ConfigType::Int, default: Some("1"), check: int(1), synonyms: &[],
        summary: Some("partitions of auto-created topics"),
        doc: "The default number of log partitions per topic" },
    BrokerKey { name: "offset.metadata.max.bytes", ty: ConfigType::Int, default: Some("4096"), check: int(0), synonyms: &[],
        summary: None,
        doc: "The maximum size for a metadata entry associated with an offset commit." },
    BrokerKey { name: "offsets.retention.check.interval.ms", ty: ConfigType::Long, default: Some("600000"), check: long(1), synonyms: &[],
        summary: None,
        doc: "Frequency at which to check for stale offsets" },
    BrokerKey { name: "offsets.retention.minutes", ty: ConfigType::Int, default: Some("10080"), check: int(1), synonyms: &[],
        summary: Some("offsets of an empty group expire this long after its last commit"),
        doc: "For subscribed consumers, committed offset of a specific partition will be expired and discarded when 1) this retention period has elapsed after the consumer group loses all its consumers (i.e. becomes empty); 2) this retention period has elapsed since the last time an offset is committed for the partition and the group is no longer subscribed to the corresponding topic. For standalone consumers (using manual assignment), offsets will be expired after this retention period has elapsed since the time of last commit." },
    BrokerKey { name: "offsets.topic.num.partitions", ty: ConfigType::Int, default: Some("50"), check: int(1), synonyms: &[],
        summary: Some("partitions of `__consumer_offsets` (set before its first use)"),
        doc: "The number of partitions for the offset commit topic (should not change after deployment)." },
    BrokerKey { name: "offsets.topic.replication.factor", ty: ConfigType::Short, default: Some("3"), check: Check::Int { min: 1, max: i16::MAX as i64 }, synonyms: &[],
        summary: Some("capped at the number of live brokers when the topic is created"),
        doc: "The replication factor for the offsets topic (set higher to ensure availability). gregor caps it at the number of live brokers when it creates the topic (Kafka would wait until enough brokers are up)." },
    BrokerKey { name: "offsets.topic.segment.bytes", ty: ConfigType::Int, default: Some("104857600"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The offsets topic segment bytes should be kept relatively small in order to facilitate faster log compaction and cache loads." },
    BrokerKey { name: "producer.id.expiration.check.interval.ms", ty: ConfigType::Int, default: Some("600000"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The interval at which to remove producer IDs that have expired due to `producer.id.expiration.ms` passing." },
    BrokerKey { name: "producer.id.expiration.ms", ty: ConfigType::Int, default: Some("86400000"), check: int(1), synonyms: &[],
        summary: Some("a partition forgets an idle producer (none with a transaction open) after this long"),
        doc: "The time in ms that a topic partition leader will wait before expiring producer IDs. Producer IDs will not expire while a transaction associated to them is still ongoing. Note that producer IDs may expire sooner if the last write from the producer ID is deleted due to the topic's retention settings. Setting this value the same or higher than `delivery.timeout.ms` can help prevent expiration during retries and protect against message duplication, but the default should be reasonable for most use cases." },
    BrokerKey { name: "replica.fetch.backoff.ms", ty: ConfigType::Int, default: Some("1000"), check: int(0), synonyms: &[],
        summary: Some("a follower waits this long after a failed connection to its leader; a partition the leader refuses is retried after 25 ms, doubling up to this"),
        doc: "The amount of time to sleep when fetch partition error occurs." },
    BrokerKey { name: "replica.fetch.max.bytes", ty: ConfigType::Int, default: Some("1048576"), check: int(0), synonyms: &[],
        summary: Some("bytes a follower asks for per partition in one fetch"),
        doc: "The number of bytes of messages to attempt to fetch for each partition. This is not an absolute maximum, if the first record batch in the first non-empty partition of the fetch is larger than this value, the record batch will still be returned to ensure that progress can be made." },
    BrokerKey { name: "replica.fetch.min.bytes", ty: ConfigType::Int, default: Some("1"), check: int(0), synonyms: &[],
        summary: None,
        doc: "Minimum bytes expected for each fetch response. If not enough bytes, wait up to replica.fetch.wait.max.ms (broker config)." },
    BrokerKey { name: "replica.fetch.response.max.bytes", ty: ConfigType::Int, default: Some("10485760"), check: int(0), synonyms: &[],
        summary: Some("bytes a follower asks for in one fetch, all partitions together"),
        doc: "Maximum bytes expected for the entire fetch response. Records are fetched in batches, and if the first record batch in the first non-empty partition of the fetch is larger than this value, the record batch will still be returned to ensure that progress can be made." },
    BrokerKey { name: "replica.fetch.wait.max.ms", ty: ConfigType::Int, default: Some("500"), check: int(0), synonyms: &[],
        summary: Some("how long a follower's fetch long-polls its leader"),
        doc: "The maximum wait time for each fetcher request issued by follower replicas. This value should always be less than the replica.lag.time.max.ms at all times to prevent frequent shrinking of ISR for low throughput topics" },
    BrokerKey { name: "replica.lag.time.max.ms", ty: ConfigType::Long, default: Some("30000"), check: long(1), synonyms: &[],
        summary: Some("a follower that has not caught up for this long leaves the ISR"),
        doc: "If a follower hasn't sent any fetch requests or hasn't consumed up to the leaders log end offset for at least this time, the leader will remove the follower from isr" },
    BrokerKey { name: "sasl.enabled.mechanisms", ty: ConfigType::List, default: Some("GSSAPI"), check: Check::Str, synonyms: &[],
        summary: Some("SASL mechanisms a SASL listener offers (gregor: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER); per listener: `listener.name.<l>.sasl.enabled.mechanisms`"),
        doc: "The list of SASL mechanisms enabled in the Kafka server. The list may contain any mechanism for which a security provider is available. Only GSSAPI is enabled by default. gregor has PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (GSSAPI is not available)." },
    BrokerKey { name: "sasl.mechanism.inter.broker.protocol", ty: ConfigType::String, default: Some("GSSAPI"), check: Check::Str, synonyms: &[],
        summary: None,
        doc: "SASL mechanism used for inter-broker communication. Default is GSSAPI." },
    BrokerKey { name: "sasl.oauthbearer.clock.skew.seconds", ty: ConfigType::Int, default: Some("30"), check: Check::Int { min: i32::MIN as i64, max: i32::MAX as i64 }, synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: the clock difference allowed for `exp`, `iat` and `nbf`"),
        doc: "The (optional) value in seconds to allow for differences between the time of the OAuth/OIDC identity provider and the broker." },
    BrokerKey { name: "sasl.oauthbearer.expected.audience", ty: ConfigType::List, default: None, check: Check::Str, synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: the token's `aud` must name one of these"),
        doc: "The (optional) comma-delimited setting for the broker to use to verify that the JWT was issued for one of the expected audiences. The JWT will be inspected for the standard OAuth \"aud\" claim and if this value is set, the broker will match the value from JWT's \"aud\" claim  to see if there is an exact match. If there is no match, the broker will reject the JWT and authentication will fail." },
    BrokerKey { name: "sasl.oauthbearer.expected.issuer", ty: ConfigType::String, default: None, check: Check::Str, synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: the token's `iss` must be this"),
        doc: "The (optional) setting for the broker to use to verify that the JWT was created by the expected issuer. The JWT will be inspected for the standard OAuth \"iss\" claim and if this value is set, the broker will match it exactly against what is in the JWT's \"iss\" claim. If there is no match, the broker will reject the JWT and authentication will fail." },
    BrokerKey { name: "sasl.oauthbearer.jwks.endpoint.refresh.ms", ty: ConfigType::Long, default: Some("3600000"), check: long(0), synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: how often an http(s) key set is fetched again"),
        doc: "The (optional) value in milliseconds for the broker to wait between refreshing its JWKS (JSON Web Key Set) cache that contains the keys to verify the signature of the JWT." },
    BrokerKey { name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", ty: ConfigType::Long, default: Some("10000"), check: long(0), synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: the longest wait between failed fetches"),
        doc: "The (optional) value in milliseconds for the maximum wait between attempts to retrieve the JWKS (JSON Web Key Set) from the external authentication provider. JWKS retrieval uses an exponential backoff algorithm with an initial wait based on the sasl.oauthbearer.jwks.endpoint.retry.backoff.ms setting and will double in wait length between attempts up to a maximum wait length specified by the sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms setting." },
    BrokerKey { name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", ty: ConfigType::Long, default: Some("100"), check: long(0), synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: the first wait after a failed fetch (it doubles)"),
        doc: "The (optional) value in milliseconds for the initial wait between JWKS (JSON Web Key Set) retrieval attempts from the external authentication provider. JWKS retrieval uses an exponential backoff algorithm with an initial wait based on the sasl.oauthbearer.jwks.endpoint.retry.backoff.ms setting and will double in wait length between attempts up to a maximum wait length specified by the sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms setting." },
    BrokerKey { name: "sasl.oauthbearer.jwks.endpoint.url", ty: ConfigType::String, default: None, check: Check::Str, synonyms: &[],
        summary: Some("OAUTHBEARER: where the identity provider's signing keys are (http://, https:// or file://); with `OAuthBearerValidatorCallbackHandler`"),
        doc: "The OAuth/OIDC provider URL from which the provider's <a href=\"https://datatracker.ietf.org/doc/html/rfc7517#section-5\">JWKS (JSON Web Key Set)</a> can be retrieved. The URL can be HTTP(S)-based or file-based. If the URL is HTTP(S)-based, the JWKS data will be retrieved from the OAuth/OIDC provider via the configured URL on broker startup. All then-current keys will be cached on the broker for incoming requests. If an authentication request is received for a JWT that includes a \"kid\" header claim value that isn't yet in the cache, the JWKS endpoint will be queried again on demand. However, the broker polls the URL every sasl.oauthbearer.jwks.endpoint.refresh.ms milliseconds to refresh the cache with any forthcoming keys before any JWT requests that include them are received. If the URL is file-based, the broker will load the JWKS file from a configured location on startup. In the event that the JWT includes a \"kid\" header value that isn't in the JWKS file, the broker will reject the JWT and authentication will fail." },
    BrokerKey { name: "sasl.oauthbearer.scope.claim.name", ty: ConfigType::String, default: Some("scope"), check: Check::Str, synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: the claim that holds the token's scope"),
        doc: "The OAuth claim for the scope is often named \"scope\", but this (optional) setting can provide a different name to use for the scope included in the JWT payload's claims if the OAuth/OIDC provider uses a different name for that claim." },
    BrokerKey { name: "sasl.oauthbearer.sub.claim.name", ty: ConfigType::String, default: Some("sub"), check: Check::Str, synonyms: &[],
        summary: Some("OAUTHBEARER with JWKS: the claim that names the principal"),
        doc: "The OAuth claim for the subject is often named \"sub\", but this (optional) setting can provide a different name to use for the subject included in the JWT payload's claims if the OAuth/OIDC provider uses a different name for that claim." },
    BrokerKey { name: "security.inter.broker.protocol", ty: ConfigType::String, default: Some("PLAINTEXT"), check: Check::OneOf(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]), synonyms: &[],
        summary: None,
        doc: "Security protocol used to communicate between brokers. It is an error to set this and inter.broker.listener.name properties at the same time." },
    BrokerKey { name: "socket.receive.buffer.bytes", ty: ConfigType::Int, default: Some("-1"), check: Check::Int { min: -1, max: i32::MAX as i64 }, synonyms: &[],
        summary: Some("SO_RCVBUF of client connections; -1 (gregor's default; Kafka's is 102400): the kernel's autotuning"),
        doc: "The SO_RCVBUF buffer of the socket server sockets. If the value is -1, the OS default will be used. gregor's default is -1 where Kafka's is 102400: a 100 KiB receive buffer halved produce at the broker's limit in gregor's benchmark. gregor sets it on each accepted connection (Kafka on the listening socket); 0 also leaves the OS default." },
    BrokerKey { name: "socket.request.max.bytes", ty: ConfigType::Int, default: Some("104857600"), check: int(1), synonyms: &[],
        summary: Some("larger requests are refused and the connection closed"),
        doc: "The maximum number of bytes in a socket request" },
    BrokerKey { name: "socket.send.buffer.bytes", ty: ConfigType::Int, default: Some("102400"), check: Check::Int { min: -1, max: i32::MAX as i64 }, synonyms: &[],
        summary: Some("SO_SNDBUF of client connections (as in Kafka); -1: the kernel's autotuning"),
        doc: "The SO_SNDBUF buffer of the socket server sockets. If the value is -1, the OS default will be used. 0 also leaves the OS default." },
    BrokerKey { name: "ssl.cipher.suites", ty: ConfigType::List, default: Some(""), check: Check::Str, synonyms: &[],
        summary: None,
        doc: "A list of cipher suites. This is a named combination of authentication, encryption, MAC and key exchange algorithm used to negotiate the security settings for a network connection using TLS or SSL network protocol. By default all the available cipher suites are supported. gregor takes the IANA names of the suites rustls has (e.g. TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)." },
    BrokerKey { name: "ssl.client.auth", ty: ConfigType::String, default: Some("none"), check: Check::OneOf(&["required", "requested", "none"]), synonyms: &[],
        summary: Some("TLS client certificates: `required`, `requested` or `none`"),
        doc: "Configures kafka broker to request client authentication. The following settings are common: ssl.client.auth=required If set to required client authentication is required. ssl.client.auth=requested This means client authentication is optional. unlike required, if this option is set client can choose not to provide authentication information about itself ssl.client.auth=none This means client authentication is not needed." },
    BrokerKey { name: "ssl.enabled.protocols", ty: ConfigType::List, default: Some("TLSv1.2,TLSv1.3"), check: Check::ListOf(&["TLSv1.2", "TLSv1.3", "TLSv1.1", "TLSv1", "SSLv3"]), synonyms: &[],
        summary: None,
        doc: "The list of protocols enabled for SSL connections. The default is 'TLSv1.2,TLSv1.3'. gregor speaks TLSv1.2 and TLSv1.3 only; older protocols in the list are ignored." },
    BrokerKey { name: "ssl.endpoint.identification.algorithm", ty: ConfigType::String, default: Some("https"), check: Check::Str, synonyms: &[],
        summary: None,
        doc: "The endpoint identification algorithm to validate server hostname using server certificate." },
    BrokerKey { name: "ssl.key.password", ty: ConfigType::Password, default: None, check: Check::Str, synonyms: &[],
        summary: None,
        doc: "The password of the private key in the key store file or the PEM key specified in 'ssl.keystore.key'. gregor reads unencrypted PEM keys only." },
    BrokerKey { name: "ssl.keystore.certificate.chain", ty: ConfigType::Password, default: None, check: Check::Str, synonyms: &[],
        summary: None,
        doc: "Certificate chain in the format specified by 'ssl.keystore.type'. Default SSL engine factory supports only PEM format with a list of X.509 certificates" },
    BrokerKey { name: "ssl.keystore.key", ty: ConfigType::Password, default: None, check: Check::Str, synonyms: &[],
        summary: None,
        doc: "Private key in the format specified by 'ssl.keystore.type'. Default SSL engine factory supports only PEM format with PKCS#8 keys. If the key is encrypted, key password must be specified using 'ssl.key.password'" },
    BrokerKey { name: "ssl.keystore.location", ty: ConfigType::String, default: None, check: Check::Str, synonyms: &[],
        summary: Some("the broker's key and certificate chain: a JKS, PKCS12 or PEM file (`ssl.keystore.type`); per listener: `listener.name.<l>.ssl.keystore.location`"),
        doc: "The location of the key store file. This is optional for client and can be used for two-way authentication for client. With ssl.keystore.type=PEM, one file with the private key and the certificate chain." },
    BrokerKey { name: "ssl.keystore.password", ty: ConfigType::Password, default: None, check: Check::Str, synonyms: &[],
        summary: None,
        doc: "The store password for the key store file. This is optional for client and only needed if 'ssl.keystore.location' is configured. Key store password is not supported for PEM format." },
    BrokerKey { name: "ssl.keystore.type", ty: ConfigType::String, default: Some("JKS"), check: Check::Str, synonyms: &[],
        summary: None,
        doc: "The file format of the key store file. This is optional for client. The values currently supported by the default `ssl.engine.factory.class` are [JKS, PKCS12, PEM]." },
    BrokerKey { name: "ssl.principal.mapping.rules", ty: ConfigType::String, default: Some("DEFAULT"), check: Check::Special, synonyms: &[],
        summary: None,
        doc: "A method of rules for mapping from distinguished name from the client certificate to short name. The rules are evaluated in order and the first rule that matches a principal name is used to map it to a short name. Any later rules in the list are ignored. By default, distinguished name of the X.500 certificate will be the principal." },
    BrokerKey { name: "ssl.protocol", ty: ConfigType::String, default: Some("TLSv1.3"), check: Check::Str, synonyms: &[],
        summary: None,
        doc: "The SSL protocol used to generate the SSLContext. The default is 'TLSv1.3'. gregor negotiates the highest protocol of ssl.enabled.protocols both sides have." },
    BrokerKey { name: "ssl.truststore.certificates", ty: ConfigType::Password, default: None, check: Check::Str, synonyms: &[],
        summary: None,
        doc: "Trusted certificates in the format specified by 'ssl.truststore.type'. Default SSL engine factory supports only PEM format with X.509 certificates." },
    BrokerKey { name: "ssl.truststore.location", ty: ConfigType::String, default: None, check: Check::Str, synonyms: &[],
        summary: Some("the CA certificates client certificates are checked against (`ssl.truststore.type=PEM`)"),
        doc: "The location of the trust store file. gregor reads ssl.truststore.type=PEM: one file of X.509 certificates." },
    BrokerKey { name: "ssl.truststore.password", ty: ConfigType::Password, default: None, check: Check::Str, synonyms: &[],
        summary: None,
        doc: "The password for the trust store file. If a password is not set, trust store file configured will still be used, but integrity checking is disabled. Trust store password is not supported for PEM format." },
    BrokerKey { name: "ssl.truststore.type", ty: ConfigType::String, default: Some("JKS"), check: Check::Str, synonyms: &[],
        summary: None,
        doc: "The file format of the trust store file. The values currently supported by the default `ssl.engine.factory.class` are [JKS, PKCS12, PEM]." },
    BrokerKey { name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", ty: ConfigType::Int, default: Some("10000"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The interval at which to rollback transactions that have timed out" },
    BrokerKey { name: "transaction.max.timeout.ms", ty: ConfigType::Int, default: Some("900000"), check: int(1), synonyms: &[],
        summary: Some("the longest `transaction.timeout.ms` a producer may ask for"),
        doc: "The maximum allowed timeout for transactions. If a client’s requested transaction time exceed this, then the broker will return an error in InitProducerIdRequest. This prevents a client from too large of a timeout, which can stall consumers reading from topics included in the transaction." },
    BrokerKey { name: "transaction.partition.verification.enable", ty: ConfigType::Boolean, default: Some("true"), check: Check::Bool, synonyms: &[],
        summary: Some("a partition leader asks the coordinator before the first batch of a transaction (KIP-890)"),
        doc: "Enable verification that checks that the partition has been added to the transaction before writing transactional records to the partition" },
    BrokerKey { name: "transaction.remove.expired.transaction.cleanup.interval.ms", ty: ConfigType::Int, default: Some("3600000"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The interval at which to remove transactions that have expired due to `transactional.id.expiration.ms` passing" },
    BrokerKey { name: "transaction.state.log.min.isr", ty: ConfigType::Int, default: Some("2"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The minimum number of replicas that must acknowledge a write to transaction topic in order to be considered successful. gregor caps it at the topic's replication factor when it creates the topic." },
    BrokerKey { name: "transaction.state.log.num.partitions", ty: ConfigType::Int, default: Some("50"), check: int(1), synonyms: &[],
        summary: Some("partitions of `__transaction_state` (set before its first use)"),
        doc: "The number of partitions for the transaction topic (should not change after deployment)." },
    BrokerKey { name: "transaction.state.log.replication.factor", ty: ConfigType::Short, default: Some("3"), check: Check::Int { min: 1, max: i16::MAX as i64 }, synonyms: &[],
        summary: None,
        doc: "The replication factor for the transaction topic (set higher to ensure availability). gregor caps it at the number of live brokers when it creates the topic (Kafka would wait until enough brokers are up)." },
    BrokerKey { name: "transaction.state.log.segment.bytes", ty: ConfigType::Int, default: Some("104857600"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The transaction topic segment bytes should be kept relatively small in order to facilitate faster log compaction and cache loads" },
    BrokerKey { name: "transactional.id.expiration.ms", ty: ConfigType::Int, default: Some("604800000"), check: int(1), synonyms: &[],
        summary: None,
        doc: "The time in ms that the transaction coordinator will wait without receiving any transaction status updates for the current transaction before expiring its transactional id. Transactional IDs will not expire while a the transaction is still ongoing." },
    BrokerKey { name: "unclean.leader.election.enable", ty: ConfigType::Boolean, default: Some("false"), check: Check::Bool, synonyms: &[],
        summary: None,
        doc: "Indicates whether to enable replicas not in the ISR set to be elected as leader as a last resort, even though doing so may result in data loss" },
    BrokerKey { name: "zookeeper.connect", ty: ConfigType::String, default: None, check: Check::Str, synonyms: &[],
        summary: Some("cluster mode: `host:port[,host:port...][/chroot]` (chroot created if missing)"),
        doc: "Specifies the ZooKeeper connection string in the form hostname:port where host and port are the host and port of a ZooKeeper server, optionally followed by a chroot path (e.g. host1:2181,host2:2181/kafka)." },
    BrokerKey { name: "zookeeper.session.timeout.ms", ty: ConfigType::Int, default: Some("18000"), check: int(0), synonyms: &[],
        summary: Some("ZooKeeper session timeout: how long a dead broker keeps its registration (and leadership)"),
        doc: "Zookeeper session timeout" },
];

/// The row of a broker key gregor honours, if it is one.
pub(crate) fn broker_key(name: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// The known key closest to an unknown `name`, if it is near enough to be a typo of it: at most
/// 3 edits, and fewer than a quarter of the name's length (so `num.io.threads`, a Kafka key gregor
/// does not honour, suggests nothing).
pub(crate) fn closest_key(name: &str) -> Option<&'static str> {
    let (distance, key) = BROKER_KEYS
        .iter()
        .map(|k| (edit_distance(name, k.name), k.name))
        .min()?;
    (distance > 0 && distance <= 3 && distance * 4 < name.len()).then_some(key)
}

/// Levenshtein distance between two strings, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // previous[j]: distance between the prefix of `a` seen so far (minus one char) and b[..j].
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::check_value;

    #[test]
    fn keys_are_sorted_unique_with_valid_defaults_and_known_synonyms() {
        for pair in BROKER_KEYS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        for key in BROKER_KEYS {
            if let Some(default) = key.default {
                assert!(
                    matches!(key.check, Check::Special)
                        || check_value(key.name, default, key.check).is_ok(),
                    "{}: default {default} fails its own check",
                    key.name
                );
            }
            for s in key.synonyms {
                assert!(broker_key(s).is_some(), "{}: unknown synonym {s}", key.name);
            }
            if let Some(summary) = key.summary {
                assert!(
                    !summary.contains('|'),
                    "{}: a | would break README's table",
                    key.name
                );
            }
        }
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            edit_distance("log.flush.interval.message", "log.flush.interval.messages"),
            1
        );
    }

    #[test]
    fn typos_suggest_the_key_and_other_kafka_keys_do_not() {
        assert_eq!(
            closest_key("log.flush.interval.message"),
            Some("log.flush.interval.messages")
        );
        assert_eq!(closest_key("num.partition"), Some("num.partitions"));
        assert_eq!(
            closest_key("log.retention.hour"),
            Some("log.retention.hours")
        );
        assert_eq!(closest_key("zookeeper.conect"), Some("zookeeper.connect"));
        assert_eq!(closest_key("num.partitions"), None);
        // Kafka keys of a usual server.properties that gregor does not honour.
        for kafka_key in [
            "num.io.threads",
            "num.network.threads",
            "num.recovery.threads.per.data.dir",
            "zookeeper.connection.timeout.ms",
            "group.consumer.min.session.timeout.ms",
            "log.roll.jitter.hours",
            "log.local.retention.ms",
            "log.cleaner.io.buffer.size",
            "log.preallocate",
            "retention.ms",
            "x",
        ] {
            assert_eq!(closest_key(kafka_key), None, "{kafka_key}");
        }
    }
}
