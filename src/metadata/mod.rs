//! Cluster metadata: which topics exist, their ids, partition assignment, leaders, epochs and
//! topic configs, plus producer-id blocks.
//!
//! Everything the broker knows about the cluster sits behind `MetadataStore`, with two
//! implementations: `embedded` (single node, state in the data directory, the zero-setup
//! default) and, with `zookeeper.connect`, `zookeeper` (Kafka's znode layout, several brokers,
//! see `zookeeper::cluster_state` and `zookeeper::controller`). Readers take an immutable `MetadataImage` snapshot, so a Metadata request never
//! waits on a writer; writers go through the store and publish a new image.

pub mod embedded;
pub mod reassignment;
pub mod zookeeper;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::config::{BrokerEntity, DynamicBrokerConfigs};
use crate::security::acl::{AccessControlEntry, ResourcePattern};
use crate::security::authorizer::AclTable;

/// Kafka's text form of a Uuid (topic ids, cluster ids): one implementation, the znodes'.
pub use gregor_zk::znode::{kafka_uuid_string, parse_kafka_uuid};

/// One partition's assignment and leadership, as Kafka keeps it in
/// `/brokers/topics/<t>` (replicas) and `.../partitions/<p>/state` (the rest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    pub replicas: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// Bumped on every change of this partition's state (Kafka: the state znode's zkVersion).
    pub partition_epoch: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionMetadata>,
    /// Topic-level config overrides (Kafka: `/config/topics/<t>`).
    pub configs: BTreeMap<String, String>,
}

impl TopicMetadata {
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

/// A live broker: where it is reached on each of its listeners.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerEndpoint {
    pub id: i32,
    /// One per advertised listener, in the broker's listener order.
    pub endpoints: Vec<ListenerEndpoint>,
    pub rack: Option<String>,
}

/// A broker's address on one listener. Clients are told the address of the listener they
/// came in on; brokers reach each other on the inter-broker listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

impl BrokerEndpoint {
    /// The broker's address on `listener`, if it has that listener.
    pub fn endpoint(&self, listener: &str) -> Option<&ListenerEndpoint> {
        self.endpoints.iter().find(|e| e.listener == listener)
    }

    /// `endpoint` as the (host, port) pair the inter-broker clients connect to.
    pub fn address(&self, listener: &str) -> Option<(String, u16)> {
        self.endpoint(listener).map(|e| (e.host.clone(), e.port))
    }
}

/// An entity's configs, key to value (a user's `SCRAM-SHA-512` credential, quotas such as
/// `producer_byte_rate`).
pub type EntityConfig = BTreeMap<String, String>;

/// One name of a config entity: a user or client id, or the default one (`<default>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityName {
    Named(String),
    Default,
}

/// An entity with configs (Kafka's client-quota entities; a user also holds its SCRAM
/// credentials): a user, a client id, or a client id of one user. At least one is set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
}

impl ConfigEntity {
    pub fn user(name: impl Into<String>) -> Self {
        ConfigEntity {
            user: Some(EntityName::Named(name.into())),
            client_id: None,
        }
    }

    /// Kafka's entity path under `/config`: `users/<u>`, `clients/<c>` or
    /// `users/<u>/clients/<c>`, names sanitized, the default as `<default>`.
    pub fn path(&self) -> String {
        let name = |n: &EntityName| match n {
            EntityName::Named(s) => gregor_zk::paths::sanitize(s),
            EntityName::Default => "<default>".to_string(),
        };
        match (&self.user, &self.client_id) {
            (Some(u), Some(c)) => format!("users/{}/clients/{}", name(u), name(c)),
            (Some(u), None) => format!("users/{}", name(u)),
            (None, Some(c)) => format!("clients/{}", name(c)),
            (None, None) => String::new(),
        }
    }

    /// The entity of a path `path` gives.
    pub fn from_path(path: &str) -> Option<Self> {
        let name = |s: &str| {
            if s == "<default>" {
                EntityName::Default
            } else {
                EntityName::Named(gregor_zk::paths::desanitize(s))
            }
        };
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["users", u] => Some(ConfigEntity {
                user: Some(name(u)),
                client_id: None,
            }),
            ["clients", c] => Some(ConfigEntity {
                user: None,
                client_id: Some(name(c)),
            }),
            ["users", u, "clients", c] => Some(ConfigEntity {
                user: Some(name(u)),
                client_id: Some(name(c)),
            }),
            _ => None,
        }
    }
}

/// Per partition, the replicas on other brokers that sit in a failed log directory.
pub type OfflineReplicasByPartition = BTreeMap<(String, i32), Vec<i32>>;

/// An immutable snapshot of the cluster, shared by all readers.
#[derive(Clone, Debug, Default)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerEndpoint>,
    pub topics: BTreeMap<String, Arc<TopicMetadata>>,
    pub topic_names_by_id: HashMap<Uuid, String>,
    /// Topics marked for deletion (Kafka: `/admin/delete_topics/<t>`) and not deleted yet:
    /// still listed in `topics` for clients, but no broker keeps their replicas.
    pub topics_being_deleted: BTreeSet<String>,
    /// Each live broker's epoch (cluster mode; Kafka: its registration's czxid).
    pub broker_epochs: BTreeMap<i32, i64>,
    /// Dynamic broker configs as stored (Kafka: `/config/brokers/<default>` and `/<id>`).
    pub dynamic_broker_configs: DynamicBrokerConfigs,
    /// The cluster's finalized feature levels (KIP-584), as ApiVersions tells clients.
    pub finalized_features: FinalizedFeatures,
}

/// Kafka's feature `transaction.version` (KIP-890): 2 is transactions v2.
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The highest `transaction.version` gregor supports.
pub const MAX_TRANSACTION_VERSION: i16 = 2;

/// Finalized features (KIP-584): standalone, what gregor finalizes itself; in ZooKeeper
/// mode, the `/feature` znode's (its zkVersion is the epoch, as in Kafka's ZooKeeper mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalizedFeatures {
    /// -1: none finalized (clients then take every level as 0).
    pub epoch: i64,
    pub levels: BTreeMap<String, i16>,
}

impl FinalizedFeatures {
    /// The finalized `transaction.version`, capped at what gregor supports (0: none).
    pub fn transaction_version(&self) -> i16 {
        self.levels
            .get(TRANSACTION_VERSION_FEATURE)
            .copied()
            .unwrap_or(0)
            .clamp(0, MAX_TRANSACTION_VERSION)
    }
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMetadata>> {
        self.topics.get(name)
    }

    /// True if `topic` exists with a partition `index` (wherever it is led).
    pub fn has_partition(&self, topic: &str, index: i32) -> bool {
        self.topic(topic)
            .is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partitions.len()))
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicMetadata>> {
        self.topic_names_by_id
            .get(id)
            .and_then(|n| self.topics.get(n))
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerEndpoint> {
        self.brokers.iter().find(|b| b.id == id)
    }
}

/// An ISR change a partition leader asks for (the data of Kafka's AlterPartition): valid
/// only while the partition is still led by `leader` at `leader_epoch` and its state is at
/// `partition_epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

/// The election ElectLeaders asks for (Kafka's `ElectionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    /// Leadership to the first assigned replica, if it is live and in the ISR.
    Preferred,
    /// A leader for a partition that has none, from outside the ISR if need be (may lose
    /// committed records, as in Kafka).
    Unclean,
}

/// What an election on request did for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionOutcome {
    Elected {
        leader: i32,
    },
    /// The partition already has the leader this election would give it.
    NotNeeded,
    /// Preferred election: the preferred replica is not live or not in the ISR.
    PreferredNotAvailable,
    /// Unclean election: no live replica to lead.
    EligibleLeadersNotAvailable,
    UnknownPartition,
    /// The write failed (the state changed meanwhile, or ZooKeeper did).
    Failed(String),
}

/// Each partition an election was asked for, with its outcome.
pub type ElectionResults = Vec<((String, i32), ElectionOutcome)>;

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("metadata storage failed: {0}")]
    Storage(String),
    /// An ISR change whose leader or partition epoch is no longer current.
    #[error("stale ISR change: {0}")]
    StaleIsrChange(String),
    /// A controller operation asked of a broker that is not the controller.
    #[error("this broker is not the controller")]
    NotController,
    /// A broker's request carries an epoch older than its registration, or it is not live.
    #[error("stale broker epoch: {0}")]
    StaleBrokerEpoch(String),
    /// A feature level some broker does not support (UpdateFeatures).
    #[error("{0}")]
    InvalidUpdateVersion(String),
}

/// An edit of one resource's ACLs: the new set from the stored one.
pub type AclEdit =
    Box<dyn Fn(&BTreeSet<AccessControlEntry>) -> BTreeSet<AccessControlEntry> + Send + Sync>;

/// A resource's ACLs before and after an `update_acls`.
#[derive(Clone, Debug, Default)]
pub struct AclUpdate {
    pub before: BTreeSet<AccessControlEntry>,
    pub after: BTreeSet<AccessControlEntry>,
}

/// How far a broker has read the ACL change notifications: the newest literal and prefixed
/// notification seen (`None` before the first look).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclChangeCursor {
    pub literal: Option<String>,
    pub prefixed: Option<String>,
}

/// An ACL in the form Kafka stores it (`"permissionType":"Allow","operation":"Read"`), as
/// read from a znode or the embedded file; `None` for names this broker does not know.
pub(crate) fn acl_entry_from_stored(e: &gregor_zk::AclZnodeEntry) -> Option<AccessControlEntry> {
    use crate::security::acl::{AclOperation, AclPermissionType};
    Some(AccessControlEntry {
        principal: e.principal.clone(),
        host: e.host.clone(),
        operation: AclOperation::parse(&e.operation)?,
        permission_type: AclPermissionType::parse(&e.permission_type)?,
    })
}

pub(crate) fn acl_entry_to_stored(e: &AccessControlEntry) -> gregor_zk::AclZnodeEntry {
    gregor_zk::AclZnodeEntry {
        principal: e.principal.clone(),
        permission_type: e.permission_type.zk_name().to_string(),
        operation: e.operation.zk_name().to_string(),
        host: e.host.clone(),
    }
}

/// Where cluster metadata is kept. Writes are asynchronous because the ZooKeeper store
/// talks to a server; each returns once the change is durable and visible in `image()`.
pub trait MetadataStore: Send + Sync {
    fn image(&self) -> Arc<MetadataImage>;
    /// Creates topics, answering for each in order (TopicExists for a name already taken,
    /// also by an earlier topic of the same call). Each returns once durable and visible in
    /// `image()`; the embedded store writes them in one file rewrite, ZooKeeper side by side.
    fn create_topics(
        &self,
        topics: Vec<TopicMetadata>,
    ) -> BoxFuture<'_, Vec<Result<(), MetadataError>>>;
    fn delete_topic(&self, name: String) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// Appends partitions to an existing topic.
    fn add_partitions(
        &self,
        name: String,
        partitions: Vec<PartitionMetadata>,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// Replaces a topic's config overrides (Kafka: `/config/topics/<t>`).
    fn set_topic_configs(
        &self,
        name: String,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// Replaces the dynamic broker configs of `entity` (Kafka: `/config/brokers/<entity>`,
    /// announced in `/config/changes`); returns once the image shows them.
    fn set_broker_configs(
        &self,
        entity: BrokerEntity,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// One entity's configs (Kafka: `/config/<entity path>`; a user's SCRAM credentials under
    /// their mechanism's name, quotas); empty if it has none. Read from the store each time,
    /// so a credential changed through any broker applies to the next authentication.
    fn entity_config(
        &self,
        entity: ConfigEntity,
    ) -> BoxFuture<'_, Result<EntityConfig, MetadataError>>;
    /// Every entity that has configs.
    fn config_entities(&self) -> BoxFuture<'_, Result<Vec<ConfigEntity>, MetadataError>>;
    /// Replaces one entity's configs (Kafka: announced in `/config/changes`).
    fn set_entity_config(
        &self,
        entity: ConfigEntity,
        configs: EntityConfig,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// One user's configs.
    fn user_config(&self, user: String) -> BoxFuture<'_, Result<EntityConfig, MetadataError>> {
        self.entity_config(ConfigEntity::user(user))
    }
    /// Every ACL (Kafka: `/kafka-acl/<type>/<name>` and `/kafka-acl-extended/prefixed/...`).
    fn load_acls(&self) -> BoxFuture<'_, Result<AclTable, MetadataError>>;
    /// One resource's ACLs as stored now.
    fn resource_acls(
        &self,
        pattern: ResourcePattern,
    ) -> BoxFuture<'_, Result<BTreeSet<AccessControlEntry>, MetadataError>>;
    /// Rewrites one resource's ACLs with `edit` applied to what is stored (re-read and
    /// retried if another broker changed them meanwhile, as Kafka's conditional writes do),
    /// announces the change to every broker, and answers the ACLs before and after.
    fn update_acls(
        &self,
        pattern: ResourcePattern,
        edit: AclEdit,
    ) -> BoxFuture<'_, Result<AclUpdate, MetadataError>>;
    /// The resources whose ACLs other brokers changed since `cursor` (Kafka's
    /// `/kafka-acl-changes` notifications), with the cursor to ask from next time. A fresh
    /// cursor answers no resources, only where the notifications stand. A single broker has
    /// nobody else to hear from.
    fn acl_changes(
        &self,
        cursor: AclChangeCursor,
    ) -> BoxFuture<'_, Result<(AclChangeCursor, Vec<ResourcePattern>), MetadataError>> {
        async move { Ok((cursor, Vec::new())) }.boxed()
    }
    /// A signal each time new ACL change notifications may have arrived (ZooKeeper: a watch
    /// on them), so that `acl_changes` is asked at once; the stream ends with the session.
    /// `None`: nothing to watch (a single broker), or not now.
    fn acl_change_signals(&self) -> BoxFuture<'_, Option<tokio::sync::mpsc::Receiver<()>>> {
        async move { None }.boxed()
    }
    /// At the controller (UpdateFeatures): finalizes `feature` at `level` (0: removes it),
    /// if every broker supports that level; `validate_only` checks without writing.
    fn update_finalized_feature(
        &self,
        feature: String,
        level: i16,
        validate_only: bool,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// Reserves `count` producer ids and returns the first (Kafka: `/latest_producer_id_block`).
    fn allocate_producer_ids(&self, count: i64) -> BoxFuture<'_, Result<i64, MetadataError>>;
    /// At the controller (AlterPartition): writes a leader's ISR change, conditional on the
    /// partition still being where the leader saw it (`IsrChange`); returns the new
    /// partition epoch. Only cluster mode has followers, so only its store implements it.
    fn alter_isr(&self, change: IsrChange) -> BoxFuture<'_, Result<i32, MetadataError>> {
        let _ = change;
        Box::pin(async {
            Err(MetadataError::Storage(
                "this metadata store keeps no ISR of several replicas".into(),
            ))
        })
    }
    /// A stream of new images, for stores whose image changes without a local write
    /// (ZooKeeper: other brokers and the controller). `None`: only local writes change it.
    fn subscribe(&self) -> Option<tokio::sync::watch::Receiver<Arc<MetadataImage>>> {
        None
    }
    /// ElectLeaders at the controller: for each partition (`None`: every partition), the
    /// election asked for, written and visible in the image before the answer. Standalone,
    /// each partition has its only replica as leader: nothing is ever needed.
    fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'_, Result<ElectionResults, MetadataError>> {
        let _ = election;
        let image = self.image();
        let results = partitions
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, p)| {
                let outcome = if image.has_partition(&topic, p) {
                    ElectionOutcome::NotNeeded
                } else {
                    ElectionOutcome::UnknownPartition
                };
                ((topic, p), outcome)
            })
            .collect();
        Box::pin(async move { Ok(results) })
    }
    /// AlterPartitionReassignments at the controller: for each partition, a new target
    /// replica list (`None`: cancel the reassignment in progress), validated as Kafka does
    /// (`reassignment::validate_target`) and written as the partition's full replica set;
    /// the controller then brings the target replicas into sync and completes it.
    /// Standalone, the only broker already holds every replica: a target of itself changes
    /// nothing, any other broker is not alive, and nothing is ever in progress.
    fn alter_partition_reassignments(
        &self,
        partitions: reassignment::ReassignmentTargets,
        allow_replication_factor_change: bool,
    ) -> BoxFuture<'_, Result<reassignment::ReassignmentResults, MetadataError>> {
        let image = self.image();
        let live: BTreeSet<i32> = image.brokers.iter().map(|b| b.id).collect();
        let results = partitions
            .into_iter()
            .map(|((topic, p), target)| {
                let current = image
                    .topic(&topic)
                    .and_then(|t| t.partitions.get(usize::try_from(p).ok()?))
                    .map(|m| reassignment::ReplicaAssignment::settled(m.replicas.clone()));
                let planned = reassignment::plan(
                    current.as_ref(),
                    target.as_deref(),
                    &live,
                    allow_replication_factor_change,
                );
                // A valid target can only be the broker itself: nothing to move.
                ((topic, p), planned.map(|_| ()))
            })
            .collect();
        Box::pin(async move { Ok(results) })
    }
    /// ListPartitionReassignments at the controller: the reassignments in progress among
    /// `partitions` (`None`: all of them).
    fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'_, Result<Vec<reassignment::OngoingReassignment>, MetadataError>> {
        let _ = partitions;
        Box::pin(async { Ok(Vec::new()) })
    }
    /// The first step of a controlled shutdown: stop being a member of the cluster (ZooKeeper:
    /// resign as controller, delete the registration, stand for no election) while the
    /// session and the image keep going, so that the controller moves this broker's
    /// leaderships to other replicas while it still serves. No-op without a cluster.
    fn leave_cluster(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// ControlledShutdown at the controller: marks `broker` (at `broker_epoch`) as shutting
    /// down, so that its leaderships move to other in-sync replicas and it leaves the ISRs,
    /// and returns the partitions it still leads (those without another in-sync replica;
    /// a partition with one replica is never counted, as in Kafka).
    fn controlled_shutdown(
        &self,
        broker: i32,
        broker_epoch: i64,
    ) -> BoxFuture<'_, Result<Vec<(String, i32)>, MetadataError>> {
        let _ = (broker, broker_epoch);
        Box::pin(async { Err(MetadataError::NotController) })
    }
    /// This broker's replicas whose log directory has failed, given whenever a directory
    /// fails and after every image while one is offline. ZooKeeper: when the set grows, a
    /// `/log_dir_event_notification` tells the controller (Kafka's `propagateLogDirEvent`),
    /// which then moves leadership and ISR membership off them; a controller reads this
    /// broker's own set directly. No-op without a cluster (nothing to move to).
    fn report_offline_replicas(&self, offline: BTreeSet<(String, i32)>) -> BoxFuture<'_, ()> {
        let _ = offline;
        Box::pin(async {})
    }
    /// Replicas in failed log directories, per partition, as the controller last said
    /// (ZooKeeper mode: UpdateMetadata's offline replicas; on the controller, its own
    /// record). Metadata lists them among the offline replicas, as Kafka's brokers do.
    fn replicas_on_offline_dirs(&self) -> Arc<OfflineReplicasByPartition> {
        Arc::default()
    }
    /// UpdateMetadata's offline replicas of these partitions, each replacing what was known
    /// of it (an empty list: none).
    fn note_offline_replicas(&self, partitions: Vec<((String, i32), Vec<i32>)>) {
        let _ = partitions;
    }
    /// Leaves the cluster (ZooKeeper: resign, close the session). Blocking, bounded.
    fn shutdown(&self) {}
    /// This broker's epoch (Kafka: the czxid of its registration znode, new with every
    /// session); -1 without a cluster. Controller requests carrying an older one are stale.
    fn broker_epoch(&self) -> i64 {
        -1
    }
    /// Brings `image()` up to date with the store now: returns once an image read after the
    /// call has been published (a controller's request names state it wrote before sending).
    fn sync(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
