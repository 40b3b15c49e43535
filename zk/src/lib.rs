//! gregor-zk: typed access to the znodes Apache Kafka used in ZooKeeper mode, on the
//! `zookeeper-client` crate (tokio).
//!
//! - [`paths`]: Kafka's znode paths (relative to the chroot of `zookeeper.connect`).
//! - [`znode`]: the JSON payloads, byte-compatible with Kafka 3.x (ZooKeeper mode).
//! - [`ZkClient`]: one session; typed reads, conditional writes by zkVersion, writes fenced by
//!   the controller epoch, controller election, broker registration (epoch = czxid).
//! - [`watch`]: watches as `tokio::sync::mpsc` event streams, session state events.
//!
//! Controller logic and broker wiring live in the `gregor` binary (cluster-mode issue).

mod client;
mod error;
pub mod watch;
pub mod znode;

pub use client::{
    split_connect_string, ControllerEpoch, Versioned, ZkClient, DEFAULT_RESERVED_BROKER_MAX_ID,
};
pub use error::{Result, ZkError};
pub use watch::{SessionEvent, ZkEvent};
pub use znode::{
    AclZnodeEntry, BrokerRegistration, ClusterIdZnode, ConfigChangeNotification, ControllerZnode,
    Endpoint, EntityConfig, ExtendedAclChangeEvent, FeatureRange, FeatureZnode,
    LogDirEventNotification, PartitionState, ProducerIdBlock, ResourceAcls, TopicAssignment,
};

/// Kafka's znode paths (ZooKeeper mode, 3.x), relative to the chroot.
pub mod paths {
    pub const BROKER_IDS: &str = "/brokers/ids";
    pub const BROKER_TOPICS: &str = "/brokers/topics";
    pub const BROKER_SEQID: &str = "/brokers/seqid";
    pub const CONTROLLER: &str = "/controller";
    pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
    pub const CONFIG_TOPICS: &str = "/config/topics";
    pub const CONFIG_BROKERS: &str = "/config/brokers";
    /// The entity name of the cluster-wide default (`/config/brokers/<default>`).
    pub const DEFAULT_ENTITY: &str = "<default>";
    pub const CONFIG_CHANGES: &str = "/config/changes";
    pub const ADMIN_DELETE_TOPICS: &str = "/admin/delete_topics";
    pub const CLUSTER_ID: &str = "/cluster/id";
    pub const LATEST_PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";
    pub const FEATURE: &str = "/feature";

    pub const CONFIG: &str = "/config";
    pub const ADMIN: &str = "/admin";
    pub const CONSUMERS: &str = "/consumers";
    pub const ISR_CHANGE_NOTIFICATION: &str = "/isr_change_notification";
    pub const LOG_DIR_EVENT_NOTIFICATION: &str = "/log_dir_event_notification";
    /// Name prefix of the sequential children of [`CONFIG_CHANGES`].
    pub const CONFIG_CHANGE_PREFIX: &str = "config_change_";
    /// Name prefix of the sequential children of [`LOG_DIR_EVENT_NOTIFICATION`].
    pub const LOG_DIR_EVENT_PREFIX: &str = "log_dir_event_";

    /// Kafka's `ZkData.PersistentZkPaths`: created (empty) by every broker at startup.
    pub const PERSISTENT_PATHS: [&str; 14] = [
        CONSUMERS,
        BROKER_IDS,
        BROKER_TOPICS,
        CONFIG_CHANGES,
        ADMIN_DELETE_TOPICS,
        BROKER_SEQID,
        ISR_CHANGE_NOTIFICATION,
        LATEST_PRODUCER_ID_BLOCK,
        LOG_DIR_EVENT_NOTIFICATION,
        "/config/topics",
        "/config/clients",
        "/config/users",
        "/config/brokers",
        "/config/ips",
    ];

    /// `/brokers/ids/<id>`
    pub fn broker_id(id: i32) -> String {
        format!("{BROKER_IDS}/{id}")
    }

    /// `/brokers/topics/<topic>`
    pub fn topic(topic: &str) -> String {
        format!("{BROKER_TOPICS}/{topic}")
    }

    /// `/brokers/topics/<topic>/partitions/<partition>/state`
    pub fn partition_state(topic: &str, partition: i32) -> String {
        format!("{BROKER_TOPICS}/{topic}/partitions/{partition}/state")
    }

    /// `/config/topics/<topic>`
    pub fn topic_config(topic: &str) -> String {
        format!("{CONFIG_TOPICS}/{topic}")
    }

    /// `/config/brokers/<entity>`: a broker id, or [`DEFAULT_ENTITY`].
    pub fn broker_config(entity: &str) -> String {
        format!("{CONFIG_BROKERS}/{entity}")
    }

    /// ACLs of literal resource patterns: `/kafka-acl/<ResourceType>/<name>`.
    pub const KAFKA_ACL: &str = "/kafka-acl";
    /// ACLs of prefixed patterns: `/kafka-acl-extended/prefixed/<ResourceType>/<name>`.
    pub const KAFKA_ACL_PREFIXED: &str = "/kafka-acl-extended/prefixed";
    /// Change notifications of literal patterns (`acl_changes_<seq>`, text `TOPIC:name`).
    pub const KAFKA_ACL_CHANGES: &str = "/kafka-acl-changes";
    /// Change notifications of prefixed patterns (`acl_changes_<seq>`, JSON).
    pub const KAFKA_ACL_EXTENDED_CHANGES: &str = "/kafka-acl-extended-changes";
    pub const ACL_CHANGE_PREFIX: &str = "acl_changes_";

    /// `/config/users`: SCRAM credentials and quotas of each user.
    pub const CONFIG_USERS: &str = "/config/users";

    /// `/config/users/<user>`, the name sanitized as Kafka's `Sanitizer.sanitize` does.
    pub fn user_config(user: &str) -> String {
        format!("{CONFIG_USERS}/{}", sanitize(user))
    }

    /// Kafka's `Sanitizer.sanitize`: URL-encoding (UTF-8), with `*` as `%2A` and a space as
    /// `%20`, so that any principal name is one znode name.
    pub fn sanitize(name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        for b in name.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => out.push(b as char),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    /// Kafka's `Sanitizer.desanitize`: the name a sanitized znode name stands for.
    pub fn desanitize(name: &str) -> String {
        let bytes = name.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = (bytes[i] == b'%')
                .then(|| name.get(i + 1..i + 3))
                .flatten()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `/admin/delete_topics/<topic>`
    pub fn delete_topic(topic: &str) -> String {
        format!("{ADMIN_DELETE_TOPICS}/{topic}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_names_are_sanitized_as_kafka_does() {
        use super::paths::{desanitize, sanitize, user_config};
        assert_eq!(user_config("alice"), "/config/users/alice");
        assert_eq!(sanitize("User:a b*c/é"), "User%3Aa%20b%2Ac%2F%C3%A9");
        assert_eq!(desanitize("User%3Aa%20b%2Ac%2F%C3%A9"), "User:a b*c/é");
    }

    #[test]
    fn partition_state_path_matches_kafka() {
        assert_eq!(
            super::paths::partition_state("orders", 3),
            "/brokers/topics/orders/partitions/3/state"
        );
    }

    #[test]
    fn connect_string_chroot() {
        use super::split_connect_string;
        let split = |s| split_connect_string(s).expect("valid");
        assert_eq!(
            split("h1:2181,h2:2181/kafka"),
            ("h1:2181,h2:2181".into(), Some("/kafka".into()))
        );
        assert_eq!(split("h1:2181"), ("h1:2181".into(), None));
        assert_eq!(split("h1:2181/"), ("h1:2181".into(), None));
        assert_eq!(
            split("tcp://h1:2181/a/b/"),
            ("tcp://h1:2181".into(), Some("/a/b".into()))
        );
        assert!(split_connect_string("/kafka").is_err());
    }
}
