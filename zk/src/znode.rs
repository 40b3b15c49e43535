//! The payloads of Kafka's znodes with their exact JSON (field names, JSON types, versions) as
//! Kafka 3.x writes them in ZooKeeper mode (`kafka.zk.ZkData`, see
//! docs/kafka-zookeeper-layout.md). Every type has `encode` (the bytes we
//! store) and `decode` (which never panics on what ZooKeeper hands back).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ZkError};

fn decode_json<'a, T: Deserialize<'a>>(path: &str, bytes: &'a [u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| ZkError::MalformedJson {
        path: path.to_owned(),
        source,
    })
}

fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain structs of strings, numbers and maps with string keys cannot fail.
    serde_json::to_vec(value).unwrap_or_else(|err| {
        tracing::error!(%err, "serializing a znode payload failed");
        Vec::new()
    })
}

/// A string field Kafka writes as a JSON string holding a number (`"timestamp":"1700000000000"`).
mod long_as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum StringOrNumber {
            String(String),
            Number(i64),
        }
        match StringOrNumber::deserialize(deserializer)? {
            StringOrNumber::String(text) => text.trim().parse().map_err(serde::de::Error::custom),
            StringOrNumber::Number(number) => Ok(number),
        }
    }
}

/// Kafka's `Uuid.toString()`: the 16 bytes in URL-safe base64 without padding (22 characters),
/// as used for topic ids and the cluster id. Like Kafka, never starts with '-'.
pub fn new_kafka_uuid() -> String {
    loop {
        let uuid = uuid::Uuid::new_v4();
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid.as_bytes());
        if !text.starts_with('-') {
            return text;
        }
    }
}

/// Kafka's `Uuid.toString()` of 16 raw bytes (URL-safe base64, no padding).
pub fn kafka_uuid_string(bytes: &[u8; 16]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses Kafka's `Uuid.toString()` form back into its 16 bytes; `None` if malformed.
pub fn parse_kafka_uuid(text: &str) -> Option<[u8; 16]> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()?;
    bytes.try_into().ok()
}

/// Milliseconds since the Unix epoch, as Kafka's `time.milliseconds()`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `/brokers/ids/<id>`: broker registration, JSON version 5 (IBP >= 2.7).
///
/// `{"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://h:9092"],
///   "jmx_port":-1,"features":{},"host":"h","timestamp":"1700000000000","port":9092,"version":5}`
/// plus `"rack":"r1"` when set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Not stored in the JSON (it is the znode name); filled from the path on reads.
    #[serde(skip)]
    pub broker_id: i32,
    /// Listener name -> security protocol name, e.g. `{"CLIENT":"PLAINTEXT"}`.
    #[serde(default)]
    pub listener_security_protocol_map: BTreeMap<String, String>,
    /// `"<LISTENER_NAME>://host:port"`, in listener order.
    #[serde(default)]
    pub endpoints: Vec<String>,
    pub jmx_port: i32,
    /// Supported feature ranges, `{"<feature>":{"min_version":1,"max_version":N}}`.
    #[serde(default)]
    pub features: BTreeMap<String, FeatureRange>,
    /// Host of the first PLAINTEXT endpoint, `null` if there is none.
    pub host: Option<String>,
    /// Registration time, ms (a JSON string).
    #[serde(with = "long_as_string")]
    pub timestamp: i64,
    /// Port of the first PLAINTEXT endpoint, -1 if there is none.
    pub port: i32,
    pub version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// A supported-feature range in a broker registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureRange {
    pub min_version: i16,
    pub max_version: i16,
}

/// One listener of a broker: `CLIENT://host:9092` with protocol `PLAINTEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub listener_name: String,
    pub security_protocol: String,
    pub host: String,
    pub port: i32,
}

impl BrokerRegistration {
    pub const VERSION: i32 = 5;

    /// A v5 registration for `listeners`, with `host`/`port` taken from the first PLAINTEXT
    /// listener as Kafka does, `jmx_port` -1, no features, timestamp now.
    pub fn new(broker_id: i32, listeners: &[Endpoint], rack: Option<String>) -> Self {
        let plaintext = listeners
            .iter()
            .find(|e| e.security_protocol == "PLAINTEXT");
        BrokerRegistration {
            broker_id,
            listener_security_protocol_map: listeners
                .iter()
                .map(|e| (e.listener_name.clone(), e.security_protocol.clone()))
                .collect(),
            endpoints: listeners
                .iter()
                .map(|e| format!("{}://{}:{}", e.listener_name, e.host, e.port))
                .collect(),
            jmx_port: -1,
            features: BTreeMap::new(),
            host: plaintext.map(|e| e.host.clone()),
            timestamp: now_ms(),
            port: plaintext.map(|e| e.port).unwrap_or(-1),
            version: Self::VERSION,
            rack,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, broker_id: i32, bytes: &[u8]) -> Result<Self> {
        let mut registration: BrokerRegistration = decode_json(path, bytes)?;
        if registration.version < 1 {
            return Err(ZkError::InvalidData {
                path: path.to_owned(),
                reason: format!(
                    "unsupported broker registration version {}",
                    registration.version
                ),
            });
        }
        registration.broker_id = broker_id;
        Ok(registration)
    }

    /// The endpoints parsed back into listener name, protocol, host and port. A listener
    /// missing from the protocol map defaults to its own name (Kafka's rule for the
    /// well-known names PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL).
    pub fn parsed_endpoints(&self, path: &str) -> Result<Vec<Endpoint>> {
        self.endpoints
            .iter()
            .map(|text| {
                let invalid = || ZkError::InvalidData {
                    path: path.to_owned(),
                    reason: format!("bad endpoint {text:?}"),
                };
                let (listener_name, address) = text.split_once("://").ok_or_else(invalid)?;
                let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
                let port: i32 = port.parse().map_err(|_| invalid())?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let security_protocol = self
                    .listener_security_protocol_map
                    .get(listener_name)
                    .cloned()
                    .unwrap_or_else(|| listener_name.to_owned());
                Ok(Endpoint {
                    listener_name: listener_name.to_owned(),
                    security_protocol,
                    host: host.to_owned(),
                    port,
                })
            })
            .collect()
    }
}

/// `/brokers/topics/<topic>`: replica assignment, JSON version 3.
///
/// `{"partitions":{"0":[1,2]},"topic_id":"<22 chars>","adding_replicas":{},"removing_replicas":{},"version":3}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    /// Partition -> replicas, preferred leader first. JSON keys are the partition numbers as strings.
    pub partitions: BTreeMap<i32, Vec<i32>>,
    /// Kafka's base64 topic id; absent in v1/v2 nodes (the controller then assigns one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    #[serde(default)]
    pub adding_replicas: BTreeMap<i32, Vec<i32>>,
    #[serde(default)]
    pub removing_replicas: BTreeMap<i32, Vec<i32>>,
    pub version: i32,
}

impl TopicAssignment {
    pub const VERSION: i32 = 3;

    /// A v3 assignment with a fresh topic id and no reassignment in progress.
    pub fn new(partitions: BTreeMap<i32, Vec<i32>>) -> Self {
        TopicAssignment {
            partitions,
            topic_id: Some(new_kafka_uuid()),
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
            version: Self::VERSION,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `leader_recovery_state` of a partition (KIP-704): 0 RECOVERED (not written), 1 RECOVERING.
pub const LEADER_RECOVERY_STATE_RECOVERED: u8 = 0;
pub const LEADER_RECOVERY_STATE_RECOVERING: u8 = 1;

fn is_recovered(state: &u8) -> bool {
    *state == LEADER_RECOVERY_STATE_RECOVERED
}

/// `/brokers/topics/<t>/partitions/<p>/state`: leader and ISR, JSON version 1.
///
/// `{"controller_epoch":1,"leader":0,"version":1,"leader_epoch":0,"isr":[0,1]}` plus
/// `"leader_recovery_state":1` only while RECOVERING, as Kafka 3.x writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub controller_epoch: i32,
    /// Leader broker id, -1 when there is none.
    pub leader: i32,
    pub version: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    #[serde(default, skip_serializing_if = "is_recovered")]
    pub leader_recovery_state: u8,
}

impl PartitionState {
    pub const VERSION: i32 = 1;

    pub fn new(leader: i32, leader_epoch: i32, isr: Vec<i32>, controller_epoch: i32) -> Self {
        PartitionState {
            controller_epoch,
            leader,
            version: Self::VERSION,
            leader_epoch,
            isr,
            leader_recovery_state: LEADER_RECOVERY_STATE_RECOVERED,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `/controller` (ephemeral): `{"version":2,"brokerid":1,"timestamp":"1700000000000","kraftControllerEpoch":-1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerZnode {
    pub version: i32,
    pub brokerid: i32,
    #[serde(with = "long_as_string")]
    pub timestamp: i64,
    #[serde(rename = "kraftControllerEpoch", default = "minus_one")]
    pub kraft_controller_epoch: i32,
}

fn minus_one() -> i32 {
    -1
}

impl ControllerZnode {
    pub const VERSION: i32 = 2;

    pub fn new(broker_id: i32) -> Self {
        ControllerZnode {
            version: Self::VERSION,
            brokerid: broker_id,
            timestamp: now_ms(),
            kraft_controller_epoch: -1,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `/controller_epoch`: the bare decimal epoch (`5`), not JSON.
pub fn encode_controller_epoch(epoch: i32) -> Vec<u8> {
    epoch.to_string().into_bytes()
}

pub fn decode_controller_epoch(path: &str, bytes: &[u8]) -> Result<i32> {
    let text = std::str::from_utf8(bytes).map_err(|_| ZkError::InvalidData {
        path: path.to_owned(),
        reason: "controller epoch is not UTF-8".to_owned(),
    })?;
    text.trim().parse().map_err(|_| ZkError::InvalidData {
        path: path.to_owned(),
        reason: format!("controller epoch {text:?} is not an integer"),
    })
}

/// `/config/<type>/<name>`: `{"version":1,"config":{"retention.ms":"1000"}}` (values are strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityConfig {
    pub version: i32,
    pub config: BTreeMap<String, String>,
}

impl EntityConfig {
    pub const VERSION: i32 = 1;

    pub fn new(config: BTreeMap<String, String>) -> Self {
        EntityConfig {
            version: Self::VERSION,
            config,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `/feature` (KIP-584), as a Kafka 3.9 controller writes it: `{"features":{},"version":2,
/// "status":1}` (status 1 = enabled; in ZooKeeper mode no feature is finalized).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureZnode {
    /// Finalized features, `{"<name>":{"max_version_level":N}}`, kept as written.
    pub features: serde_json::Map<String, serde_json::Value>,
    pub version: i32,
    pub status: i32,
}

impl FeatureZnode {
    pub const VERSION: i32 = 2;
    pub const ENABLED: i32 = 1;

    /// Enabled, with the given finalized features.
    pub fn enabled(features: serde_json::Map<String, serde_json::Value>) -> Self {
        FeatureZnode {
            features,
            version: Self::VERSION,
            status: Self::ENABLED,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
    /// Each finalized feature's level (`max_version_level`), if the znode is enabled;
    /// entries that are not `{"max_version_level": N}` are left out.
    pub fn finalized_levels(&self) -> BTreeMap<String, i16> {
        if self.status != Self::ENABLED {
            return BTreeMap::new();
        }
        self.features
            .iter()
            .filter_map(|(name, v)| {
                let level = v.get("max_version_level")?.as_i64()?;
                Some((name.clone(), i16::try_from(level).ok()?))
            })
            .collect()
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `/config/changes/config_change_<seq>`: `{"version":2,"entity_path":"topics/<t>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChangeNotification {
    pub version: i32,
    pub entity_path: String,
}

impl ConfigChangeNotification {
    pub const VERSION: i32 = 2;

    pub fn new(entity_path: impl Into<String>) -> Self {
        ConfigChangeNotification {
            version: Self::VERSION,
            entity_path: entity_path.into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `/log_dir_event_notification/log_dir_event_<seq>`: `{"version":1,"broker":<id>,"event":1}`,
/// written by a broker whose log directory failed (event 1, Kafka's only one) so that the
/// controller asks it which of its replicas are offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDirEventNotification {
    pub version: i32,
    pub broker: i32,
    pub event: i32,
}

impl LogDirEventNotification {
    pub const VERSION: i32 = 1;
    /// Kafka's `LogDirFailureEvent`.
    pub const LOG_DIR_FAILURE: i32 = 1;

    pub fn failure(broker: i32) -> Self {
        LogDirEventNotification {
            version: Self::VERSION,
            broker,
            event: Self::LOG_DIR_FAILURE,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `/cluster/id`: `{"version":"1","id":"<22 chars>"}`; note the version is a JSON string here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdZnode {
    pub version: String,
    pub id: String,
}

impl ClusterIdZnode {
    pub fn new(id: impl Into<String>) -> Self {
        ClusterIdZnode {
            version: "1".to_owned(),
            id: id.into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

/// `/latest_producer_id_block`:
/// `{"version":1,"broker":0,"block_start":"0","block_end":"999"}` (longs as strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    pub version: i32,
    pub broker: i32,
    #[serde(with = "long_as_string")]
    pub block_start: i64,
    #[serde(with = "long_as_string")]
    pub block_end: i64,
}

impl ProducerIdBlock {
    pub const VERSION: i32 = 1;
    /// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
    pub const DEFAULT_SIZE: i64 = 1000;

    pub fn new(broker: i32, block_start: i64, size: i64) -> Self {
        ProducerIdBlock {
            version: Self::VERSION,
            broker,
            block_start,
            block_end: block_start + size - 1,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_znode_is_kafkas() {
        let z = FeatureZnode::enabled(Default::default());
        assert_eq!(
            z.encode(),
            br#"{"features":{},"version":2,"status":1}"#.to_vec()
        );
        let v1 = FeatureZnode::decode(
            "/feature",
            br#"{"version":1,"status":0,"features":{"x":{"min_version_level":1,"max_version_level":2}}}"#,
        )
        .unwrap();
        assert_eq!((v1.version, v1.status, v1.features.len()), (1, 0, 1));
    }

    #[test]
    fn log_dir_event_is_kafkas() {
        let json: serde_json::Value =
            serde_json::from_slice(&LogDirEventNotification::failure(3).encode()).expect("json");
        assert_eq!(json, serde_json::json!({"version":1,"broker":3,"event":1}));
        // As Kafka's LogDirEventNotificationSequenceZNode writes it.
        let kafka =
            LogDirEventNotification::decode("/x", br#"{"version":1,"broker":1001,"event":1}"#)
                .unwrap();
        assert_eq!(kafka, LogDirEventNotification::failure(1001));
    }

    #[test]
    fn partition_state_omits_recovered_state() {
        let state = PartitionState::new(1, 0, vec![1, 2], 3);
        let json: serde_json::Value = serde_json::from_slice(&state.encode()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"controller_epoch":3,"leader":1,"version":1,"leader_epoch":0,"isr":[1,2]})
        );
        let mut recovering = state.clone();
        recovering.leader_recovery_state = LEADER_RECOVERY_STATE_RECOVERING;
        let json: serde_json::Value = serde_json::from_slice(&recovering.encode()).expect("json");
        assert_eq!(json["leader_recovery_state"], 1);
    }

    #[test]
    fn topic_assignment_keys_are_strings() {
        let assignment = TopicAssignment::new(BTreeMap::from([(0, vec![1, 2]), (10, vec![2, 1])]));
        let json: serde_json::Value = serde_json::from_slice(&assignment.encode()).expect("json");
        assert_eq!(json["partitions"]["10"], serde_json::json!([2, 1]));
        assert_eq!(json["version"], 3);
        assert_eq!(json["topic_id"].as_str().map(str::len), Some(22));
        // A v1 node written by an old Kafka decodes too.
        let old = br#"{"version":1,"partitions":{"0":[0]}}"#;
        let decoded = TopicAssignment::decode("/brokers/topics/t", old).expect("decode v1");
        assert_eq!(decoded.topic_id, None);
        assert_eq!(decoded.partitions[&0], vec![0]);
    }

    #[test]
    fn decoding_garbage_is_an_error_not_a_panic() {
        assert!(PartitionState::decode("/p", b"\xff\x00").is_err());
        assert!(decode_controller_epoch("/controller_epoch", b"x").is_err());
        assert!(ControllerZnode::decode(
            "/controller",
            br#"{"version":2,"brokerid":1,"timestamp":"abc"}"#
        )
        .is_err());
        assert_eq!(
            decode_controller_epoch("/controller_epoch", b"17").ok(),
            Some(17)
        );
    }

    #[test]
    fn broker_endpoints_round_trip() {
        let listeners = vec![
            Endpoint {
                listener_name: "CLIENT".into(),
                security_protocol: "PLAINTEXT".into(),
                host: "h1".into(),
                port: 9092,
            },
            Endpoint {
                listener_name: "REPL".into(),
                security_protocol: "SSL".into(),
                host: "h1".into(),
                port: 9093,
            },
        ];
        let registration = BrokerRegistration::new(3, &listeners, None);
        assert_eq!(registration.host.as_deref(), Some("h1"));
        assert_eq!(registration.port, 9092);
        let back = BrokerRegistration::decode("/brokers/ids/3", 3, &registration.encode())
            .expect("decode");
        assert_eq!(
            back.parsed_endpoints("/brokers/ids/3").expect("endpoints"),
            listeners
        );
    }
}

/// `/kafka-acl/<ResourceType>/<name>` (literal patterns) and
/// `/kafka-acl-extended/prefixed/<ResourceType>/<name>`:
/// `{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}`
/// (`AclEntry.toJsonCompatibleMap`). Names as Kafka writes them; the broker maps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAcls {
    pub version: i32,
    pub acls: Vec<AclZnodeEntry>,
}

/// One ACL of a resource znode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclZnodeEntry {
    pub principal: String,
    #[serde(rename = "permissionType")]
    pub permission_type: String,
    pub operation: String,
    pub host: String,
}

impl ResourceAcls {
    pub const VERSION: i32 = 1;

    pub fn new(acls: Vec<AclZnodeEntry>) -> Self {
        ResourceAcls {
            version: Self::VERSION,
            acls,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    /// Empty data reads as no ACLs, as Kafka's `AclEntry.fromBytes` does.
    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(ResourceAcls::new(Vec::new()));
        }
        let acls: ResourceAcls = decode_json(path, bytes)?;
        if acls.version != Self::VERSION {
            return Err(ZkError::InvalidData {
                path: path.to_owned(),
                reason: format!("ACL znode version {} (expected 1)", acls.version),
            });
        }
        Ok(acls)
    }
}

/// `/kafka-acl-extended-changes/acl_changes_<seq>`: the prefixed pattern whose ACLs changed,
/// `{"version":1,"resourceType":"TOPIC","name":"pre-","patternType":"PREFIXED"}` (Java enum
/// names). Literal patterns are announced in `/kafka-acl-changes` as text, `TOPIC:name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedAclChangeEvent {
    pub version: i32,
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    pub name: String,
    #[serde(rename = "patternType")]
    pub pattern_type: String,
}

impl ExtendedAclChangeEvent {
    pub const VERSION: i32 = 1;

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        decode_json(path, bytes)
    }
}
