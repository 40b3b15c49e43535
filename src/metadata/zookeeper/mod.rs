//! Cluster metadata in ZooKeeper, in Kafka's znode layout (selected by `zookeeper.connect`).
//!
//! At start the store connects (creating the chroot), creates Kafka's persistent paths, reads
//! or creates `/cluster/id`, takes an id from `/brokers/seqid` for `broker.id=-1`, and
//! registers the ephemeral `/brokers/ids/<id>` (its czxid is the broker epoch). A second
//! broker with the same id is refused.
//!
//! One background task owns the session. It keeps a persistent recursive watch on the
//! chroot; every event (debounced) reloads the whole `ClusterState` and publishes a new
//! `MetadataImage`, and, on the elected broker, runs the controller (`controller`)
//! over the same snapshot. A reload also follows every reconnection (events can be lost
//! then) and a periodic tick. When the session expires the task builds a new one,
//! re-registers (replacing a znode its dead session still owns, as Kafka's CheckedEphemeral),
//! re-arms the watch and competes in the election again.
//!
//! Writes from this broker (topics, configs, deletions, producer-id blocks) go straight to
//! ZooKeeper as Kafka's `AdminZkClient` does, then wait until this broker's image shows the
//! result, so an answer to a client is only sent once the change is visible here.

mod acl_store;
pub mod cluster_state;
pub mod controller;
pub mod controller_channel;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::StreamExt;
use gregor_zk::{
    BrokerRegistration, ControllerEpoch, Endpoint, SessionEvent, TopicAssignment, ZkClient,
    ZkError, ZkEvent, DEFAULT_RESERVED_BROKER_MAX_ID,
};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::reassignment::{self, OngoingReassignment, ReassignmentResults};
use super::{
    AclChangeCursor, AclEdit, AclUpdate, ConfigEntity, ElectionOutcome, ElectionResults,
    ElectionType, EntityConfig, IsrChange, MetadataError, MetadataImage, MetadataStore,
    PartitionMetadata, TopicMetadata, MAX_TRANSACTION_VERSION, TRANSACTION_VERSION_FEATURE,
};
use crate::config::BrokerConfig;
use crate::metrics::{self, ZkSessionState};
use crate::security::acl::{AccessControlEntry, ResourcePattern};
use crate::security::authorizer::AclTable;
use cluster_state::ClusterState;
use controller_channel::{ControllerChannelManager, ControllerView};

use crate::inter_broker::InterBrokerSecurity;

/// How long a write waits for its effect to show in this broker's image.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// Events arriving this close together are handled by one reload.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// Reload even without events (insurance against a lost watch event).
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Topic znodes written at once by one CreateTopics request.
const TOPICS_WRITTEN_AT_ONCE: usize = 64;

pub struct ZookeeperMetadata {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    stopped: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

struct Shared {
    broker_id: i32,
    /// TLS and SASL of the controller's connections to the other brokers.
    inter_broker_security: InterBrokerSecurity,
    cluster_id: String,
    image: watch::Sender<Arc<MetadataImage>>,
    /// The current session; replaced after an expiry, taken at shutdown.
    client: RwLock<Option<ZkClient>>,
    /// Controlled shutdown has begun: registration deleted, no more elections.
    leaving: std::sync::atomic::AtomicBool,
    /// `auto.leader.rebalance.enable`: how often, and the imbalance that triggers it.
    leader_rebalance: Option<(Duration, i32)>,
    /// The czxid of our current registration (Kafka's broker epoch).
    broker_epoch: AtomicI64,
    /// `sync`: asks the session task for a reload now.
    reload_requested: Arc<Notify>,
    /// Reloads begun so far; a reload carries the number it began as.
    reloads_begun: AtomicU64,
    /// The number of the last reload whose image is published.
    reloaded: watch::Sender<u64>,
    /// Controller: brokers in a controlled shutdown, with the epoch they asked at.
    shutting_down: Mutex<BTreeMap<i32, i64>>,
    /// This broker's replicas in failed log directories (`report_offline_replicas`): the
    /// controller's knowledge of its own broker, which is sent no LeaderAndIsr.
    offline_replicas: Mutex<BTreeSet<(String, i32)>>,
    /// Controller: every broker's replicas in failed log directories, as of the last pass
    /// (for ElectLeaders, which reads the cluster outside the session task).
    replicas_on_offline_dirs: Mutex<controller_channel::ReplicasOnOfflineDirs>,
    /// The same per partition, for Metadata: from the controller's UpdateMetadata, or, on
    /// the controller, its own pass.
    offline_replicas_by_partition: Mutex<Arc<super::OfflineReplicasByPartition>>,
    /// The static configuration (the controller's topic defaults come from it and the
    /// dynamic broker configs).
    config: BrokerConfig,
    /// Dynamic broker config entries already logged as not acted on (each is said once).
    reported_configs: Mutex<std::collections::BTreeSet<String>>,
}

/// What `open` found out: the store, and the broker id and cluster id to run with.
pub struct Opened {
    pub store: ZookeeperMetadata,
    pub broker_id: i32,
    pub cluster_id: String,
}

fn zk_err(e: ZkError) -> MetadataError {
    MetadataError::Storage(e.to_string())
}

fn registration(config: &BrokerConfig, broker_id: i32) -> BrokerRegistration {
    let listeners = if config.advertised_listeners.is_empty() {
        &config.listeners
    } else {
        &config.advertised_listeners
    };
    let endpoints: Vec<Endpoint> = listeners
        .iter()
        .map(|l| Endpoint {
            listener_name: l.name.clone(),
            security_protocol: l.security_protocol.name().into(),
            host: if l.host == "0.0.0.0" || l.host.is_empty() {
                "127.0.0.1".into()
            } else {
                l.host.clone()
            },
            port: i32::from(l.port),
        })
        .collect();
    let mut registration =
        BrokerRegistration::new(broker_id, &endpoints, config.broker_rack.clone());
    // The features this broker supports (KIP-584): a controller finalizes a level only
    // where every live broker supports it.
    registration.features.insert(
        TRANSACTION_VERSION_FEATURE.to_string(),
        gregor_zk::znode::FeatureRange {
            min_version: 0,
            max_version: MAX_TRANSACTION_VERSION,
        },
    );
    registration
}

/// Registers the broker. A znode owned by another session with the *same* endpoints is
/// most likely this broker's previous run (killed before its session expired): wait for
/// ZooKeeper to expire it. Different endpoints: another broker has this id, refuse.
async fn register(
    zk: &ZkClient,
    registration: &BrokerRegistration,
    session_timeout: Duration,
) -> anyhow::Result<i64> {
    let id = registration.broker_id;
    let deadline = Instant::now() + session_timeout + Duration::from_secs(2);
    loop {
        match zk.register_broker(registration).await {
            Ok(epoch) => return Ok(epoch),
            Err(ZkError::BrokerIdInUse { owner, .. }) => {
                let existing = zk.get_broker(id).await.ok().flatten();
                let same_endpoints = existing
                    .as_ref()
                    .is_some_and(|b| b.value.endpoints == registration.endpoints);
                if !same_endpoints || Instant::now() >= deadline {
                    let other = existing
                        .map(|b| b.value.endpoints.join(","))
                        .unwrap_or_default();
                    anyhow::bail!(
                        "broker.id {id} is already registered in ZooKeeper by another live broker \
                         (session 0x{owner:x}, endpoints {other}); two brokers cannot share an id: \
                         give this one another broker.id (or broker.id=-1 for a generated one)"
                    );
                }
                info!(
                    broker_id = id,
                    owner = format_args!("0x{owner:x}"),
                    "our id is still held by an older session with our endpoints (a previous run?); waiting for it to expire"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("registering the broker in ZooKeeper"),
        }
    }
}

/// Connects as `ZkClient::connect` does (giving up after the session timeout, Kafka's
/// default connection timeout), saying so at once and counting down every two seconds: an
/// unreachable ensemble is otherwise 18 silent seconds before the start fails.
async fn connect_visibly(connect: &str, timeout: Duration) -> Result<ZkClient, ZkError> {
    const EVERY: Duration = Duration::from_secs(2);
    info!(
        connect,
        timeout_ms = timeout.as_millis() as u64,
        "connecting to ZooKeeper"
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let connecting = ZkClient::connect(connect, timeout);
    tokio::pin!(connecting);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    loop {
        tokio::select! {
            result = &mut connecting => return result,
            _ = tick.tick() => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                warn!(connect, seconds_left = left.as_millis().div_ceil(1000) as u64,
                    "ZooKeeper not reachable yet; still trying");
            }
        }
    }
}

impl ZookeeperMetadata {
    /// Connects, registers this broker and loads the first image. Must run inside the
    /// tokio runtime (it spawns the session task).
    pub async fn open(
        config: &BrokerConfig,
        log_dir: &Path,
        inter_broker_security: &InterBrokerSecurity,
    ) -> anyhow::Result<Opened> {
        let connect = config
            .zookeeper_connect
            .clone()
            .context("zookeeper.connect is not set")?;
        let session_timeout = Duration::from_millis(config.zookeeper_session_timeout_ms.max(1));
        let zk = connect_visibly(&connect, session_timeout)
            .await
            .with_context(|| format!("cannot connect to ZooKeeper at {connect}"))?;
        zk.ensure_persistent_paths()
            .await
            .context("creating Kafka's persistent znodes")?;
        let cluster_id = zk
            .get_or_create_cluster_id()
            .await
            .context("reading /cluster/id")?;
        if let Some(configured) = &config.cluster_id {
            if configured != &cluster_id {
                warn!(configured = %configured, zookeeper = %cluster_id,
                    "cluster.id differs from ZooKeeper's /cluster/id; using ZooKeeper's");
            }
        }
        let broker_id = if config.broker_id >= 0 {
            config.broker_id
        } else if let Some(stored) = crate::meta_properties::stored_node_id(log_dir) {
            stored
        } else {
            let id = zk
                .generate_broker_id(DEFAULT_RESERVED_BROKER_MAX_ID)
                .await
                .context("generating a broker id from /brokers/seqid")?;
            info!(broker_id = id, "generated broker id from /brokers/seqid");
            id
        };
        crate::meta_properties::load_or_create(
            log_dir,
            broker_id,
            Some(&cluster_id),
            crate::meta_properties::Version::ZooKeeper,
        )?;
        let registration = registration(config, broker_id);
        let epoch = register(&zk, &registration, session_timeout).await?;
        let state = ClusterState::load(&zk)
            .await
            .context("reading cluster metadata from ZooKeeper")?;
        let (image, _) = watch::channel(Arc::new(state.to_image(&cluster_id)));
        let shared = Arc::new(Shared {
            broker_id,
            cluster_id: cluster_id.clone(),
            inter_broker_security: inter_broker_security.clone(),
            image,
            client: RwLock::new(Some(zk.clone())),
            leaving: std::sync::atomic::AtomicBool::new(false),
            leader_rebalance: config.auto_leader_rebalance_enable.then(|| {
                (
                    Duration::from_secs(
                        config.leader_imbalance_check_interval_seconds.max(1) as u64
                    ),
                    config.leader_imbalance_per_broker_percentage,
                )
            }),
            broker_epoch: AtomicI64::new(epoch),
            reload_requested: Arc::new(Notify::new()),
            reloads_begun: AtomicU64::new(0),
            reloaded: watch::channel(0).0,
            shutting_down: Mutex::new(BTreeMap::new()),
            offline_replicas: Mutex::new(BTreeSet::new()),
            replicas_on_offline_dirs: Mutex::new(BTreeMap::new()),
            offline_replicas_by_partition: Mutex::new(Arc::default()),
            reported_configs: Mutex::new(Default::default()),
            config: config.clone(),
        });
        report_unused_znodes(&zk, config.authorizer.is_some()).await;
        report_dynamic_configs(&shared, &state.broker_configs);
        info!(broker_id, broker_epoch = epoch, cluster_id = %cluster_id, "joined the cluster");
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let task_shared = shared.clone();
        tokio::spawn(async move {
            run_sessions(task_shared, zk, registration, session_timeout, stop_rx).await;
            let _ = done_tx.send(());
        });
        Ok(Opened {
            store: ZookeeperMetadata {
                shared,
                stop,
                stopped: Mutex::new(Some(done_rx)),
            },
            broker_id,
            cluster_id,
        })
    }

    /// The current session. While an expired session is being replaced (ZooKeeper was
    /// unreachable for longer than the session timeout), waits for the new one rather than
    /// failing the client's request at once.
    async fn client(&self) -> Result<ZkClient, MetadataError> {
        let deadline = Instant::now() + VISIBILITY_TIMEOUT;
        loop {
            let current = self
                .shared
                .client
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            match current {
                None => {
                    return Err(MetadataError::Storage(
                        "the ZooKeeper session is closed".into(),
                    ))
                }
                Some(zk) if zk.is_session_alive() => return Ok(zk),
                Some(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some(_) => {
                    return Err(MetadataError::Storage(
                        "the ZooKeeper session expired and no new one could be built yet".into(),
                    ))
                }
            }
        }
    }

    /// Writes a topic's assignment znode (`/brokers/topics/<t>`) and its configs; the
    /// controller then creates the partition state. Already there with our topic id (an
    /// earlier attempt went through before a lost connection) counts as written.
    async fn write_topic(&self, topic: &TopicMetadata) -> Result<(), MetadataError> {
        let partitions = topic
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| (i as i32, p.replicas.clone()))
            .collect();
        let mut assignment = TopicAssignment::new(partitions);
        assignment.topic_id = Some(gregor_zk::znode::kafka_uuid_string(topic.id.as_bytes()));
        let (name, assignment, configs) = (&topic.name, &assignment, &topic.configs);
        match self
            .call(|zk| async move { zk.create_topic(name, assignment, configs).await })
            .await
        {
            Ok(()) => Ok(()),
            Err(ZkError::NodeExists { .. }) => {
                let existing = self
                    .call(|zk| async move { zk.get_topic_assignment(name).await })
                    .await
                    .map_err(zk_err)?;
                let ours = existing.is_some_and(|a| a.value.topic_id == assignment.topic_id);
                if ours {
                    Ok(())
                } else {
                    Err(MetadataError::TopicExists(topic.name.clone()))
                }
            }
            Err(e) => Err(zk_err(e)),
        }
    }

    /// Runs one ZooKeeper operation on the current session, as Kafka's ZooKeeperClient
    /// does: if the session expires under it, again on the next session; if the connection
    /// is lost (the client reconnects, e.g. to another ensemble member), again once
    /// reconnected. After a lost connection the operation may have been applied already:
    /// callers make their operations safe to repeat.
    /// The controller epoch to fence a controller's write with, if this broker holds
    /// `/controller` (NotController otherwise).
    async fn controller_fence(&self, zk: &ZkClient) -> Result<ControllerEpoch, MetadataError> {
        let holder = zk.get_controller().await.map_err(zk_err)?;
        if holder.map(|c| c.value.brokerid) != Some(self.shared.broker_id) {
            return Err(MetadataError::NotController);
        }
        zk.get_controller_epoch()
            .await
            .map_err(zk_err)?
            .ok_or(MetadataError::NotController)
    }

    async fn call<T, F, Fut>(&self, op: F) -> Result<T, ZkError>
    where
        F: Fn(ZkClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, ZkError>>,
    {
        let deadline = Instant::now() + VISIBILITY_TIMEOUT;
        loop {
            let zk = self.client().await.map_err(|_| ZkError::SessionExpired)?;
            match op(zk).await {
                Err(e)
                    if (e.is_session_expired() || e.is_connection_loss())
                        && Instant::now() < deadline =>
                {
                    debug!(error = %e, "ZooKeeper operation interrupted; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                result => return result,
            }
        }
    }

    /// Waits until `done` holds for this broker's image.
    async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&MetadataImage) -> bool,
    ) -> Result<(), MetadataError> {
        let mut rx = self.shared.image.subscribe();
        let waited = tokio::time::timeout(VISIBILITY_TIMEOUT, async {
            loop {
                if done(&rx.borrow_and_update()) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        match waited {
            Ok(true) => Ok(()),
            _ => Err(MetadataError::Storage(format!(
                "timed out after {VISIBILITY_TIMEOUT:?} waiting for {what} to show in the metadata"
            ))),
        }
    }
}

/// `topic` (this incarnation of it) is in the image with state for every partition.
fn has_state(image: &MetadataImage, topic: &TopicMetadata) -> bool {
    image
        .topic(&topic.name)
        .is_some_and(|t| t.id == topic.id && all_partitions_have_state(t, topic.partitions.len()))
}

fn all_partitions_have_state(t: &TopicMetadata, count: usize) -> bool {
    t.partitions.len() == count && t.partitions.iter().all(|p| p.partition_epoch >= 0)
}

impl MetadataStore for ZookeeperMetadata {
    fn image(&self) -> Arc<MetadataImage> {
        self.shared.image.borrow().clone()
    }

    fn subscribe(&self) -> Option<watch::Receiver<Arc<MetadataImage>>> {
        Some(self.shared.image.subscribe())
    }

    /// ElectLeaders at the controller: checks that this broker holds `/controller`, reads the
    /// cluster, and writes each election fenced by the controller epoch and conditional on
    /// the partition's zkVersion (`controller::election_on_request`), then waits until this
    /// broker's image shows the new leaders.
    fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'_, Result<ElectionResults, MetadataError>> {
        async move {
            let zk = self.client().await?;
            let fence = self.controller_fence(&zk).await?;
            let mut state = ClusterState::load(&zk).await.map_err(zk_err)?;
            state.offline_replicas = self
                .shared
                .replicas_on_offline_dirs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let wanted = partitions.unwrap_or_else(|| {
                state
                    .topics
                    .iter()
                    .flat_map(|(t, s)| s.assignment.value.partitions.keys().map(|p| (t.clone(), *p)))
                    .collect()
            });
            let mut results = Vec::with_capacity(wanted.len());
            for (topic, partition) in wanted {
                let outcome =
                    match controller::election_on_request(&state, &topic, partition, election, fence.epoch) {
                        Err(outcome) => outcome,
                        Ok((new, zk_version)) => {
                            match zk
                                .set_partition_state(&topic, partition, &new, zk_version, Some(&fence))
                                .await
                            {
                                Ok(_) => {
                                    info!(topic = %topic, partition, leader = new.leader,
                                        leader_epoch = new.leader_epoch, ?election, "elected on request");
                                    ElectionOutcome::Elected { leader: new.leader }
                                }
                                Err(e) => ElectionOutcome::Failed(e.to_string()),
                            }
                        }
                    };
                results.push(((topic, partition), outcome));
            }
            let elected: Vec<(String, i32, i32)> = results
                .iter()
                .filter_map(|((t, p), o)| match o {
                    ElectionOutcome::Elected { leader } => Some((t.clone(), *p, *leader)),
                    _ => None,
                })
                .collect();
            self.wait_until("the elected leaders", |image| {
                elected.iter().all(|(t, p, leader)| {
                    image
                        .topic(t)
                        .and_then(|m| m.partitions.get(*p as usize))
                        .is_some_and(|m| m.leader == *leader)
                })
            })
            .await?;
            Ok(results)
        }
        .boxed()
    }

    /// AlterPartitionReassignments at the controller (Kafka's `processApiPartitionReassignment`,
    /// phase U): each target is validated against the cluster as read now, and the new full
    /// replica set (RS, adding, removing) written into the topic's assignment znode, fenced
    /// and conditional on its zkVersion. `controller::reconcile` does the rest.
    fn alter_partition_reassignments(
        &self,
        partitions: reassignment::ReassignmentTargets,
        allow_replication_factor_change: bool,
    ) -> BoxFuture<'_, Result<ReassignmentResults, MetadataError>> {
        async move {
            let zk = self.client().await?;
            let fence = self.controller_fence(&zk).await?;
            let state = ClusterState::load(&zk).await.map_err(zk_err)?;
            let (mut results, rewritten) =
                plan_reassignments(&state, partitions, allow_replication_factor_change);
            for (topic, assignment) in rewritten {
                let Some(known) = state.topics.get(&topic) else {
                    continue;
                };
                let written = zk
                    .set_topic_assignment(
                        &topic,
                        &assignment,
                        known.assignment.zk_version,
                        Some(&fence),
                    )
                    .await;
                if let Err(e) = written {
                    let code = match e {
                        ZkError::ControllerMoved { .. } => reassignment::NOT_CONTROLLER,
                        _ => reassignment::UNKNOWN_SERVER_ERROR,
                    };
                    for ((t, _), result) in results.iter_mut() {
                        if *t == topic && result.is_ok() {
                            *result = Err((code, format!("writing the assignment failed: {e}")));
                        }
                    }
                }
            }
            // The controller's pass starts (or completes) what was written.
            self.shared.reload_requested.notify_one();
            Ok(results)
        }
        .boxed()
    }

    /// ListPartitionReassignments at the controller: partitions whose assignment znode lists
    /// adding or removing replicas.
    fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<(String, i32)>>,
    ) -> BoxFuture<'_, Result<Vec<OngoingReassignment>, MetadataError>> {
        async move {
            let zk = self.client().await?;
            self.controller_fence(&zk).await?;
            let state = ClusterState::load(&zk).await.map_err(zk_err)?;
            let wanted: Option<BTreeSet<(String, i32)>> =
                partitions.map(|p| p.into_iter().collect());
            let mut ongoing = Vec::new();
            for (topic, t) in &state.topics {
                for p in t.assignment.value.partitions.keys() {
                    if wanted
                        .as_ref()
                        .is_some_and(|w| !w.contains(&(topic.clone(), *p)))
                    {
                        continue;
                    }
                    let Some(assignment) =
                        cluster_state::replica_assignment(&t.assignment.value, *p)
                    else {
                        continue;
                    };
                    if assignment.is_being_reassigned() {
                        ongoing.push(OngoingReassignment {
                            topic: topic.clone(),
                            partition: *p,
                            assignment,
                        });
                    }
                }
            }
            Ok(ongoing)
        }
        .boxed()
    }

    fn broker_epoch(&self) -> i64 {
        self.shared.broker_epoch.load(Ordering::Acquire)
    }

    /// Asks the session task for a reload and waits (bounded) until one begun after this
    /// call has published its image.
    fn sync(&self) -> BoxFuture<'_, ()> {
        async move {
            let wanted = self.shared.reloads_begun.load(Ordering::Acquire) + 1;
            let mut reloaded = self.shared.reloaded.subscribe();
            self.shared.reload_requested.notify_one();
            let waited = tokio::time::timeout(
                VISIBILITY_TIMEOUT,
                reloaded.wait_for(|done| *done >= wanted),
            )
            .await;
            if !matches!(waited, Ok(Ok(_))) {
                warn!("no metadata reload completed within {VISIBILITY_TIMEOUT:?} of a request for one");
            }
        }
        .boxed()
    }

    /// Marks the broker, then waits for two reloads: the first reconciles with the mark (the
    /// controller runs right after publishing its image), the second shows what it wrote.
    fn controlled_shutdown(
        &self,
        broker: i32,
        broker_epoch: i64,
    ) -> BoxFuture<'_, Result<Vec<(String, i32)>, MetadataError>> {
        async move {
            let image = self.image();
            if image.controller_id != self.shared.broker_id {
                return Err(MetadataError::NotController);
            }
            let epoch = match image.broker_epochs.get(&broker) {
                Some(e) if broker_epoch == -1 || broker_epoch >= *e => *e,
                Some(e) => {
                    return Err(MetadataError::StaleBrokerEpoch(format!(
                        "broker {broker} is at epoch {e}, the request at {broker_epoch}"
                    )))
                }
                None => {
                    return Err(MetadataError::StaleBrokerEpoch(format!(
                        "broker {broker} is not registered"
                    )))
                }
            };
            self.shared
                .shutting_down
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(broker, epoch);
            info!(
                broker,
                broker_epoch = epoch,
                "controlled shutdown: moving leaderships away"
            );
            self.sync().await;
            self.sync().await;
            let image = self.image();
            Ok(image
                .topics
                .values()
                .filter(|t| !image.topics_being_deleted.contains(&t.name))
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.leader == broker && p.replicas.len() > 1)
                        .map(|(i, _)| (t.name.clone(), i as i32))
                })
                .collect())
        }
        .boxed()
    }

    /// Keeps the set (a controller here reads it for its own broker) and, when it grew,
    /// writes a log directory event so that whichever broker is controller asks this one
    /// for its replicas' state (LeaderAndIsr, answered KAFKA_STORAGE_ERROR for these).
    fn report_offline_replicas(&self, offline: BTreeSet<(String, i32)>) -> BoxFuture<'_, ()> {
        async move {
            let grew = {
                let mut known = self
                    .shared
                    .offline_replicas
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let grew = offline.iter().any(|r| !known.contains(r));
                *known = offline;
                grew
            };
            if !grew {
                return;
            }
            let broker = self.shared.broker_id;
            match self
                .call(|zk| async move { zk.announce_log_dir_failure(broker).await })
                .await
            {
                Ok(name) => info!(
                    znode = %name,
                    "log directory failure announced to the controller"
                ),
                // The controller still learns it from its next LeaderAndIsr here.
                Err(e) => warn!(error = %e, "cannot announce the log directory failure"),
            }
            self.shared.reload_requested.notify_one();
        }
        .boxed()
    }

    fn replicas_on_offline_dirs(&self) -> Arc<super::OfflineReplicasByPartition> {
        self.shared
            .offline_replicas_by_partition
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn note_offline_replicas(&self, partitions: Vec<((String, i32), Vec<i32>)>) {
        let mut known = self
            .shared
            .offline_replicas_by_partition
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let changes = partitions
            .iter()
            .any(|(k, offline)| known.get(k).map_or(!offline.is_empty(), |v| v != offline));
        if !changes {
            return;
        }
        let map = Arc::make_mut(&mut known);
        for (k, offline) in partitions {
            if offline.is_empty() {
                map.remove(&k);
            } else {
                map.insert(k, offline);
            }
        }
    }

    fn leave_cluster(&self) -> BoxFuture<'_, ()> {
        async move {
            self.shared.leaving.store(true, Ordering::Release);
            let Ok(zk) = self.client().await else {
                return;
            };
            if let Err(e) = zk.resign_controller().await {
                debug!(error = %e, "resigning as controller failed");
            }
            let path = gregor_zk::paths::broker_id(self.shared.broker_id);
            if let Ok(Some((_, stat))) = zk.get_raw(&path).await {
                if stat.ephemeral_owner == zk.session_id() {
                    match zk.raw().delete(&path, Some(stat.version)).await {
                        Ok(()) => {
                            info!("left the cluster: registration deleted, leaderships move away")
                        }
                        Err(e) => warn!(error = %e, "deleting the registration failed"),
                    }
                }
            }
        }
        .boxed()
    }

    fn shutdown(&self) {
        let _ = self.stop.send(true);
        let done = self
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(done) = done {
            if done.recv_timeout(Duration::from_secs(5)).is_err() {
                warn!("the ZooKeeper session did not close within 5 s");
            }
        }
    }

    /// Writes every topic's znodes first, then waits once for the controller to have created
    /// their partition state: it picks them up together, so 100 topics cost about one
    /// controller round trip instead of 100.
    fn create_topics(
        &self,
        topics: Vec<TopicMetadata>,
    ) -> BoxFuture<'_, Vec<Result<(), MetadataError>>> {
        async move {
            // Written side by side, so ZooKeeper commits them with a few log fsyncs, not one
            // (or more) per topic.
            // (Boxed: otherwise the future is not provably Send.)
            let writes: Vec<BoxFuture<'_, Result<(), MetadataError>>> =
                topics.iter().map(|t| self.write_topic(t).boxed()).collect();
            let mut results: Vec<Result<(), MetadataError>> = futures_util::stream::iter(writes)
                .buffered(TOPICS_WRITTEN_AT_ONCE)
                .collect()
                .await;
            let written: Vec<&TopicMetadata> = topics
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|(t, _)| t)
                .collect();
            if written.is_empty() {
                return results;
            }
            let waited = self
                .wait_until(&format!("{} new topics", written.len()), |image| {
                    written.iter().all(|t| has_state(image, t))
                })
                .await;
            if let Err(e) = waited {
                let reason = e.to_string();
                for r in results.iter_mut().filter(|r| r.is_ok()) {
                    *r = Err(MetadataError::Storage(reason.clone()));
                }
            }
            results
        }
        .boxed()
    }

    fn delete_topic(&self, name: String) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            let Some(id) = self.image().topic(&name).map(|t| t.id) else {
                return Err(MetadataError::UnknownTopic(name));
            };
            let topic = name.as_str();
            self.call(|zk| async move { zk.mark_topic_for_deletion(topic).await })
                .await
                .map_err(zk_err)?;
            self.wait_until(&format!("deletion of topic {name}"), |image| {
                image.topic(&name).is_none_or(|t| t.id != id)
            })
            .await
        }
        .boxed()
    }

    fn add_partitions(
        &self,
        name: String,
        partitions: Vec<PartitionMetadata>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            let mut total = 0;
            let topic = name.as_str();
            let known = self.image().topic(&name).map(|t| t.partitions.len());
            let target = known.map(|n| n + partitions.len());
            for _attempt in 0..5 {
                let current = self
                    .call(|zk| async move { zk.get_topic_assignment(topic).await })
                    .await
                    .map_err(zk_err)?
                    .ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
                let mut assignment = current.value.clone();
                if Some(assignment.partitions.len()) == target {
                    // Applied by an earlier attempt (a lost connection hid the answer).
                    total = assignment.partitions.len();
                    break;
                }
                if Some(assignment.partitions.len()) != known {
                    return Err(MetadataError::Storage(format!(
                        "topic {name} changed while adding partitions; try again"
                    )));
                }
                let first = assignment.partitions.len() as i32;
                for (i, p) in partitions.iter().enumerate() {
                    assignment
                        .partitions
                        .insert(first + i as i32, p.replicas.clone());
                }
                total = assignment.partitions.len();
                let (new, version) = (&assignment, current.zk_version);
                match self
                    .call(|zk| async move { zk.set_topic_assignment(topic, new, version, None).await })
                    .await
                {
                    Ok(_) => break,
                    Err(ZkError::BadVersion { .. }) => {
                        total = 0;
                        continue;
                    }
                    Err(e) => return Err(zk_err(e)),
                }
            }
            if total == 0 {
                return Err(MetadataError::Storage(format!(
                    "topic {name} kept changing while adding partitions"
                )));
            }
            self.wait_until(&format!("{total} partitions of {name}"), |image| {
                image
                    .topic(&name)
                    .is_some_and(|t| all_partitions_have_state(t, total))
            })
            .await
        }
        .boxed()
    }

    fn set_topic_configs(
        &self,
        name: String,
        configs: std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            if self.image().topic(&name).is_none() {
                return Err(MetadataError::UnknownTopic(name));
            }
            let (topic, new) = (name.as_str(), &configs);
            self.call(|zk| async move { zk.set_topic_config(topic, new).await })
                .await
                .map_err(zk_err)?;
            self.wait_until(&format!("configs of {name}"), |image| {
                image.topic(&name).is_some_and(|t| t.configs == configs)
            })
            .await
        }
        .boxed()
    }

    /// A leader's ISR change, as the controller writes it for AlterPartition
    /// (`handlers/alter_partition.rs`): read the state znode, check that it is still the one
    /// the leader saw (leader, leader epoch, zkVersion = partition epoch), and write it back
    /// conditional on that zkVersion, keeping the controller epoch it holds. A change made
    /// meanwhile wins. One attempt: the leader proposes again if it still needs the change.
    fn alter_isr(&self, change: IsrChange) -> BoxFuture<'_, Result<i32, MetadataError>> {
        async move {
            let zk = self.client().await?;
            let (topic, partition) = (change.topic.as_str(), change.partition);
            let current = zk
                .get_partition_state(topic, partition)
                .await
                .map_err(zk_err)?
                .ok_or_else(|| MetadataError::UnknownTopic(topic.to_string()))?;
            let state = &current.value;
            if current.zk_version != change.partition_epoch
                || state.leader != change.leader
                || state.leader_epoch != change.leader_epoch
            {
                return Err(MetadataError::StaleIsrChange(format!(
                    "{topic}-{partition} is at leader {} epoch {} partition epoch {}, the change \
                     was for leader {} epoch {} partition epoch {}",
                    state.leader,
                    state.leader_epoch,
                    current.zk_version,
                    change.leader,
                    change.leader_epoch,
                    change.partition_epoch
                )));
            }
            let new = gregor_zk::PartitionState::new(
                change.leader,
                change.leader_epoch,
                change.isr.clone(),
                state.controller_epoch,
            );
            zk.set_partition_state(topic, partition, &new, current.zk_version, None)
                .await
                .map_err(|e| match e {
                    ZkError::BadVersion { .. } => MetadataError::StaleIsrChange(format!(
                        "{topic}-{partition} changed meanwhile"
                    )),
                    e => zk_err(e),
                })
        }
        .boxed()
    }

    fn set_broker_configs(
        &self,
        entity: crate::config::BrokerEntity,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            let name = entity.zk_name();
            let new = &configs;
            self.call(|zk| {
                let name = name.clone();
                async move { zk.set_broker_config(&name, new).await }
            })
            .await
            .map_err(zk_err)?;
            self.wait_until(&format!("configs of {entity}"), |image| {
                image.dynamic_broker_configs.of(entity) == configs
            })
            .await
        }
        .boxed()
    }

    fn entity_config(
        &self,
        entity: ConfigEntity,
    ) -> BoxFuture<'_, Result<EntityConfig, MetadataError>> {
        async move {
            let path = entity.path();
            self.call(|zk| {
                let path = path.clone();
                async move { zk.get_entity_config_at(&path).await }
            })
            .await
            .map_err(zk_err)
        }
        .boxed()
    }

    fn config_entities(&self) -> BoxFuture<'_, Result<Vec<ConfigEntity>, MetadataError>> {
        async move {
            let paths = self
                .call(|zk| async move { zk.list_quota_entity_paths().await })
                .await
                .map_err(zk_err)?;
            Ok(paths
                .iter()
                .filter_map(|p| ConfigEntity::from_path(p))
                .collect())
        }
        .boxed()
    }

    fn load_acls(&self) -> BoxFuture<'_, Result<AclTable, MetadataError>> {
        async move {
            self.call(|zk| async move { acl_store::load_all(&zk).await })
                .await
                .map_err(zk_err)
        }
        .boxed()
    }

    fn resource_acls(
        &self,
        pattern: ResourcePattern,
    ) -> BoxFuture<'_, Result<BTreeSet<AccessControlEntry>, MetadataError>> {
        async move {
            let zk = self.client().await?;
            Ok(acl_store::read_resource(&zk, &pattern).await?.0)
        }
        .boxed()
    }

    fn update_acls(
        &self,
        pattern: ResourcePattern,
        edit: AclEdit,
    ) -> BoxFuture<'_, Result<AclUpdate, MetadataError>> {
        async move {
            let zk = self.client().await?;
            acl_store::update(&zk, &pattern, &edit).await
        }
        .boxed()
    }

    fn acl_change_signals(&self) -> BoxFuture<'_, Option<tokio::sync::mpsc::Receiver<()>>> {
        async move {
            let zk = self.client().await.ok()?;
            Some(acl_store::change_signals(&zk))
        }
        .boxed()
    }

    fn acl_changes(
        &self,
        cursor: AclChangeCursor,
    ) -> BoxFuture<'_, Result<(AclChangeCursor, Vec<ResourcePattern>), MetadataError>> {
        async move {
            let zk = self.client().await?;
            acl_store::changes_since(&zk, cursor).await.map_err(zk_err)
        }
        .boxed()
    }

    fn set_entity_config(
        &self,
        entity: ConfigEntity,
        configs: EntityConfig,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            let new = &configs;
            let path = entity.path();
            self.call(|zk| {
                let path = path.clone();
                async move { zk.set_entity_config_at(&path, new).await }
            })
            .await
            .map(|_| ())
            .map_err(zk_err)
        }
        .boxed()
    }

    fn update_finalized_feature(
        &self,
        feature: String,
        level: i16,
        validate_only: bool,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            if self.image().controller_id != self.shared.broker_id {
                return Err(MetadataError::NotController);
            }
            let zk = self.client().await?;
            // Kafka's controller: every live broker must support the new level.
            if level > 0 {
                for b in zk.get_all_brokers().await.map_err(zk_err)? {
                    let supported = b.value.features.get(&feature);
                    if !supported.is_some_and(|r| r.min_version <= level && level <= r.max_version)
                    {
                        return Err(MetadataError::InvalidUpdateVersion(format!(
                            "broker {} does not support {feature} at level {level}",
                            b.value.broker_id
                        )));
                    }
                }
            }
            if validate_only {
                return Ok(());
            }
            zk.set_finalized_feature(&feature, level)
                .await
                .map_err(zk_err)
        }
        .boxed()
    }

    fn allocate_producer_ids(&self, count: i64) -> BoxFuture<'_, Result<i64, MetadataError>> {
        async move {
            let broker_id = self.shared.broker_id;
            let block = self
                .call(|zk| async move { zk.allocate_producer_id_block(broker_id, count).await })
                .await
                .map_err(zk_err)?;
            Ok(block.block_start)
        }
        .boxed()
    }
}

enum SessionEnd {
    Stopped,
    Expired,
}

/// Owns the ZooKeeper session for the broker's lifetime: serves it, replaces it after
/// expiry, closes it at shutdown.
async fn run_sessions(
    shared: Arc<Shared>,
    mut zk: ZkClient,
    registration: BrokerRegistration,
    session_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        metrics::zk_session(ZkSessionState::Connected);
        let ended = serve_session(&shared, &zk, &mut stop).await;
        metrics::zk_session(match ended {
            SessionEnd::Stopped => ZkSessionState::Closed,
            SessionEnd::Expired => ZkSessionState::Expired,
        });
        match ended {
            SessionEnd::Stopped => {
                // Resign and leave now rather than when the session times out, so the
                // others take over at once.
                let _ = zk.resign_controller().await;
                let path = gregor_zk::paths::broker_id(shared.broker_id);
                if let Ok(Some((_, stat))) = zk.get_raw(&path).await {
                    if stat.ephemeral_owner == zk.session_id() {
                        let _ = zk.raw().delete(&path, Some(stat.version)).await;
                    }
                }
                shared
                    .client
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                drop(zk);
                info!("left the cluster; ZooKeeper session closed");
                return;
            }
            SessionEnd::Expired if shared.leaving.load(Ordering::Acquire) => {
                info!("ZooKeeper session expired while shutting down; not registering again");
                return;
            }
            SessionEnd::Expired => {
                warn!(
                    session_id = format_args!("0x{:x}", zk.session_id()),
                    "ZooKeeper session expired; building a new session"
                );
                loop {
                    if *stop.borrow() {
                        return;
                    }
                    let renewed = match zk.reconnect().await {
                        Ok(renewed) => renewed,
                        Err(e) => {
                            warn!(error = %e, "cannot reach ZooKeeper; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    let registered = async {
                        renewed.ensure_persistent_paths().await?;
                        register(&renewed, &registration, session_timeout).await
                    }
                    .await;
                    match registered {
                        Ok(epoch) => {
                            info!(
                                broker_id = shared.broker_id,
                                broker_epoch = epoch,
                                "re-registered after session expiry"
                            );
                            shared.broker_epoch.store(epoch, Ordering::Release);
                            zk = renewed;
                            *shared.client.write().unwrap_or_else(|p| p.into_inner()) =
                                Some(zk.clone());
                            break;
                        }
                        Err(e) => {
                            warn!(error = %e, "re-registration failed; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            }
        }
    }
}

/// Serves one session until it expires or the broker stops.
async fn serve_session(
    shared: &Shared,
    zk: &ZkClient,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let mut events = loop {
        match zk.watch_recursive("/").await {
            Ok(events) => break events,
            Err(e) if e.is_session_expired() => return SessionEnd::Expired,
            Err(e) => {
                warn!(error = %e, "cannot watch ZooKeeper; retrying");
                tokio::select! {
                    _ = stop.changed() => return SessionEnd::Stopped,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut session = zk.session_events();
    let mut tick = tokio::time::interval(RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut controller: Option<ControllerEpoch> = None;
    let mut channel: Option<ControllerChannelManager> = None;
    let mut last_rebalance = Instant::now();
    let mut replica_sets_announced = controller::ReplicaSetsAnnounced::new();
    let mut dirty = true;
    let mut rewatch = false;
    loop {
        if *stop.borrow() {
            return SessionEnd::Stopped;
        }
        if rewatch {
            // After a reconnection the client re-sends its watches, but a restarted
            // ZooKeeper server has been seen to deliver no more events for the recursive
            // watch: add it again (a duplicate only costs an extra reload).
            match zk.watch_recursive("/").await {
                Ok(renewed) => {
                    events = renewed;
                    rewatch = false;
                }
                Err(e) if e.is_session_expired() => return SessionEnd::Expired,
                Err(e) => debug!(error = %e, "re-adding the watch failed; retrying"),
            }
        }
        if dirty {
            dirty = false;
            let refreshed = refresh(
                shared,
                zk,
                &mut controller,
                &mut channel,
                &mut last_rebalance,
                &mut replica_sets_announced,
            );
            match refreshed.await {
                Ok(again) => dirty = again,
                Err(e) if e.is_session_expired() => return SessionEnd::Expired,
                Err(e) => {
                    debug!(error = %e, "metadata reload failed; retrying on the next event");
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return SessionEnd::Stopped,
            event = events.recv() => match event {
                None | Some(ZkEvent::Session(SessionEvent::Expired | SessionEvent::Closed | SessionEvent::AuthFailed)) => {
                    return SessionEnd::Expired
                }
                Some(_) => {
                    // Let a burst of writes land, then reload once.
                    tokio::time::sleep(DEBOUNCE).await;
                    while events.try_recv().is_ok() {}
                    dirty = true;
                }
            },
            state = session.recv() => match state {
                None | Some(SessionEvent::Expired | SessionEvent::Closed | SessionEvent::AuthFailed) => {
                    return SessionEnd::Expired
                }
                Some(SessionEvent::Connected) => {
                    metrics::zk_session(ZkSessionState::Connected);
                    dirty = true;
                    rewatch = true;
                }
                Some(SessionEvent::Disconnected) => {
                    metrics::zk_session(ZkSessionState::Connecting);
                    debug!("disconnected from ZooKeeper; the client reconnects within the session")
                }
            },
            _ = tick.tick() => dirty = true,
            _ = shared.reload_requested.notified() => dirty = true,
        }
    }
}

/// Reloads the cluster state, publishes the image and, if this broker is (or becomes)
/// controller, reconciles. Returns true if another pass is wanted at once.
async fn refresh(
    shared: &Shared,
    zk: &ZkClient,
    controller: &mut Option<ControllerEpoch>,
    channel: &mut Option<ControllerChannelManager>,
    last_rebalance: &mut Instant,
    replica_sets_announced: &mut controller::ReplicaSetsAnnounced,
) -> Result<bool, ZkError> {
    let started = Instant::now();
    let number = shared.reloads_begun.fetch_add(1, Ordering::AcqRel) + 1;
    let mut state = ClusterState::load(zk).await?;
    {
        // A broker that left or registered again (a new epoch) is no longer shutting down.
        let mut shutting_down = shared
            .shutting_down
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        shutting_down.retain(|id, epoch| state.brokers.get(id).is_some_and(|b| b.czxid == *epoch));
        state.shutting_down = shutting_down.keys().copied().collect();
    }
    debug!(
        topics = state.topics.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "cluster state reloaded"
    );
    report_dynamic_configs(shared, &state.broker_configs);
    let image = Arc::new(state.to_image(&shared.cluster_id));
    shared.image.send_if_modified(|current| {
        if image_differs(current, &image) {
            *current = image.clone();
            true
        } else {
            false
        }
    });
    shared.reloaded.send_replace(number);
    if state.controller != Some(shared.broker_id) {
        // A later term as controller announces every reassignment in progress again.
        replica_sets_announced.clear();
    }
    if shared.leaving.load(Ordering::Acquire) {
        *channel = None;
        if controller.take().is_some() || state.controller == Some(shared.broker_id) {
            zk.resign_controller().await?;
            info!("resigned as controller: shutting down");
        }
        return Ok(false);
    }
    match state.controller {
        None => {
            *controller = zk.try_elect_controller(shared.broker_id).await?;
            if controller.is_some() {
                // As a Kafka 3.9 controller does on election.
                if let Err(e) = zk.ensure_feature_versioning().await {
                    warn!(error = %e, "cannot write /feature");
                }
            }
            // Reload with ourselves (or the winner) as controller.
            return Ok(true);
        }
        Some(id) if id != shared.broker_id => {
            *channel = None;
            if controller.take().is_some() {
                info!(controller = id, "no longer controller");
            }
            return Ok(false);
        }
        Some(_) => {}
    }
    if controller.is_none() {
        // We are in /controller (e.g. our own election raced a reload): recover the fence.
        *controller = zk.try_elect_controller(shared.broker_id).await?;
    }
    let Some(fence) = *controller else {
        return Ok(false);
    };
    let channel = channel.get_or_insert_with(|| {
        ControllerChannelManager::new(
            shared.broker_id,
            shared.reload_requested.clone(),
            shared.config.inter_broker_listener_name.clone(),
            shared.inter_broker_security.clone(),
        )
    });
    match handle_log_dir_events(zk, &fence, shared.broker_id, channel).await {
        Ok(()) => {}
        Err(ZkError::ControllerMoved { .. }) => {
            warn!(epoch = fence.epoch, "controller epoch moved on; resigning");
            *controller = None;
            return Ok(true);
        }
        Err(e) => return Err(e),
    }
    // Which replicas sit in failed log directories: the other brokers' LeaderAndIsr answers
    // and this broker's own report.
    state.offline_replicas = channel.replicas_on_offline_dirs();
    let own = shared
        .offline_replicas
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !own.is_empty() {
        state.offline_replicas.insert(shared.broker_id, own);
    }
    shared
        .replicas_on_offline_dirs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone_from(&state.offline_replicas);
    let mut by_partition = super::OfflineReplicasByPartition::new();
    for (broker, replicas) in &state.offline_replicas {
        for replica in replicas {
            by_partition
                .entry(replica.clone())
                .or_default()
                .push(*broker);
        }
    }
    *shared
        .offline_replicas_by_partition
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Arc::new(by_partition);
    channel.update(Arc::new(ControllerView::build(
        &state,
        shared.broker_id,
        fence.epoch,
    )));
    let deletable = |topic: &str, replicas: &BTreeMap<i32, Vec<i32>>| {
        channel.stop_replica_done(topic, replicas)
    };
    // Topic configs over the brokers' defaults, dynamic ones included (Kafka's controller
    // reads unclean.leader.election.enable the same way).
    let defaults = shared.config.effective(&state.broker_configs);
    let unclean = |topic: &str| {
        state.topics.get(topic).is_some_and(|t| {
            crate::config::topic_settings(&t.configs, &defaults).unclean_leader_election_enable
        })
    };
    let reconciled = match controller::reconcile(
        zk,
        &fence,
        &state,
        &deletable,
        &unclean,
        replica_sets_announced,
    )
    .await
    {
        // Preferred-leader elections only over a settled state (nothing just written).
        Ok(0) => match shared.leader_rebalance {
            Some((interval, pct)) if last_rebalance.elapsed() >= interval => {
                *last_rebalance = Instant::now();
                controller::rebalance_leaders(zk, &fence, &state, pct).await
            }
            _ => Ok(0),
        },
        other => other,
    };
    match reconciled {
        Ok(_) => Ok(false),
        Err(ZkError::ControllerMoved { .. }) => {
            warn!(epoch = fence.epoch, "controller epoch moved on; resigning");
            *controller = None;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// The assignments an AlterPartitionReassignments request leaves, per topic it changes, and
/// the answer for each partition (`reassignment::plan` against the cluster in `state`).
fn plan_reassignments(
    state: &ClusterState,
    partitions: reassignment::ReassignmentTargets,
    allow_replication_factor_change: bool,
) -> (ReassignmentResults, BTreeMap<String, TopicAssignment>) {
    let live: BTreeSet<i32> = state.brokers.keys().copied().collect();
    let mut results: ReassignmentResults = Vec::with_capacity(partitions.len());
    let mut rewritten: BTreeMap<String, TopicAssignment> = BTreeMap::new();
    for ((topic, p), target) in partitions {
        let known = state
            .topics
            .get(&topic)
            .filter(|_| !state.deleting.contains(&topic));
        let assignment = rewritten.get(&topic).or(known.map(|t| &t.assignment.value));
        let current = assignment.and_then(|a| cluster_state::replica_assignment(a, p));
        let next = reassignment::plan(
            current.as_ref(),
            target.as_deref(),
            &live,
            allow_replication_factor_change,
        );
        let result = match (next, assignment.cloned()) {
            (Ok(Some(next)), Some(mut assignment)) => {
                info!(topic = %topic, partition = p, replicas = ?next.replicas,
                    adding = ?next.adding, removing = ?next.removing, "partition reassignment requested");
                cluster_state::set_replica_assignment(&mut assignment, p, next);
                rewritten.insert(topic.clone(), assignment);
                Ok(())
            }
            (Ok(_), _) => Ok(()),
            (Err(refusal), _) => Err(refusal),
        };
        results.push(((topic, p), result));
    }
    (results, rewritten)
}

/// Kafka's `processLogDirEventNotification`: each pending log directory event names a broker
/// whose directory failed; its sender sends it every partition again, and the answers
/// (KAFKA_STORAGE_ERROR) say which replicas are offline. Each event is deleted, fenced.
/// The controller's own broker needs nothing sent: its report is read directly.
async fn handle_log_dir_events(
    zk: &ZkClient,
    fence: &ControllerEpoch,
    own_id: i32,
    channel: &ControllerChannelManager,
) -> Result<(), ZkError> {
    for name in zk.list_log_dir_events().await? {
        match zk.get_log_dir_event(&name).await {
            Ok(Some(event)) => {
                info!(broker = event.broker, znode = %name,
                    "log directory failure reported: asking the broker for its replicas' state");
                if event.broker != own_id {
                    channel.resend_all(event.broker);
                }
            }
            Ok(None) => continue,
            Err(e) if e.is_session_expired() || e.is_connection_loss() => return Err(e),
            // Unreadable: dropped, as Kafka's controller drops an event it cannot parse.
            Err(e) => {
                warn!(znode = %name, error = %e, "malformed log directory event; deleting it")
            }
        }
        zk.delete_log_dir_event(&name, fence).await?;
    }
    Ok(())
}

/// Logs, once each, the dynamic broker config entries this broker reads but does not act on.
fn report_dynamic_configs(shared: &Shared, configs: &crate::config::DynamicBrokerConfigs) {
    let mut reported = shared
        .reported_configs
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for line in configs.not_acted_on(shared.broker_id) {
        if reported.insert(line.clone()) {
            warn!("dynamic broker config: {line}");
        }
    }
}

/// Kafka state in ZooKeeper that gregor reads nothing from: said once at start, by path, so
/// that nobody believes it is in force (connection-rate quotas, ACLs without an authorizer,
/// delegation tokens, the legacy reassignment and election triggers).
async fn report_unused_znodes(zk: &ZkClient, has_authorizer: bool) {
    let mut unused: Vec<(&str, &str)> = vec![
        ("/config/ips", "connection-rate quotas are not enforced"),
        (
            "/delegation_token/tokens",
            "delegation tokens are not accepted",
        ),
    ];
    if !has_authorizer {
        unused.push((
            "/kafka-acl",
            "ACLs are not enforced: authorizer.class.name is not set",
        ));
    }
    for (path, what) in &unused {
        match zk.get_children(path).await {
            Ok(children) if !children.is_empty() => {
                warn!(
                    path,
                    entries = children.len(),
                    "gregor does not act on this: {what}"
                )
            }
            Ok(_) => {}
            Err(e) => debug!(path, error = %e, "cannot list"),
        }
    }
    for (path, what) in [
        (
            "/admin/reassign_partitions",
            "use the AlterPartitionReassignments API (kafka-reassign-partitions.sh)",
        ),
        (
            "/admin/preferred_replica_election",
            "use the ElectLeaders API (kafka-leader-election.sh)",
        ),
    ] {
        if let Ok(Some(_)) = zk.get_raw(path).await {
            warn!(path, "gregor does not act on this: {what}");
        }
    }
}

/// Images are rebuilt on every reload; only publish (and wake the replica manager) when
/// something clients can see changed.
fn image_differs(a: &MetadataImage, b: &MetadataImage) -> bool {
    a.controller_id != b.controller_id
        || a.brokers != b.brokers
        || a.broker_epochs != b.broker_epochs
        || a.topics_being_deleted != b.topics_being_deleted
        || a.dynamic_broker_configs != b.dynamic_broker_configs
        || a.finalized_features != b.finalized_features
        || a.topics.len() != b.topics.len()
        || a.topics.iter().zip(b.topics.iter()).any(|(x, y)| x != y)
}
