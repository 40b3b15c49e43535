//! The controller's requests to the other brokers (Kafka's `ControllerChannelManager`):
//! UpdateMetadata, LeaderAndIsr and StopReplica, so that Kafka 3.9 brokers, which learn
//! everything from their controller, can share a cluster with a gregor controller, and
//! gregor brokers learn their roles at once rather than at their next reload.
//!
//! Level-triggered like the rest of the controller: after every reload the controller hands
//! the channel a `ControllerView` (live brokers, every partition's state, topics being
//! deleted). One task per live broker (restarted when its broker epoch changes) compares the
//! view with what that broker has acknowledged and sends the difference, in Kafka's order:
//! UpdateMetadata (everything at first contact, then the partitions that changed; the live
//! brokers every time), LeaderAndIsr for the partitions the broker holds a replica of (with a
//! reassignment's adding and removing replicas), StopReplica with delete for the replicas of
//! topics being deleted, and StopReplica with delete for the replicas a new replica set
//! leaves out (a reassignment completed or cancelled). A failed exchange is
//! retried with the newest view after a pause; every request is fenced with the controller
//! epoch and the broker's epoch.
//!
//! LeaderAndIsr answers also say which replicas sit in a failed log directory
//! (KAFKA_STORAGE_ERROR): the channel keeps them per broker (`replicas_on_offline_dirs`, Kafka's
//! `replicasOnOfflineDirs`) for `reconcile`, which treats them as not live. A broker announces
//! a failure with a log directory event; the controller then has its sender send everything
//! again (`resend_all`), as Kafka's controller sends LeaderAndIsr for every replica there.
//!
//! Topic deletion waits for it: `reconcile` removes a topic's znodes only once every live
//! broker holding one of its replicas has answered StopReplica (`stop_replica_done`), as
//! Kafka's TopicDeletionManager does for live brokers. (Kafka also waits for dead ones; a
//! broker that is down during a deletion keeps its stray replica here.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_protocol::controller_api::zk_messages::leader_and_isr_request::{
    LeaderAndIsrLiveLeader, LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
};
use gregor_protocol::controller_api::zk_messages::stop_replica_request::{
    StopReplicaPartitionState, StopReplicaTopicState,
};
use gregor_protocol::controller_api::zk_messages::update_metadata_request::{
    UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataPartitionState,
    UpdateMetadataTopicState,
};
use gregor_protocol::controller_api::zk_messages::{
    BrokerId, LeaderAndIsrRequest, StopReplicaRequest, TopicName, UpdateMetadataRequest,
};
use gregor_protocol::controller_api::ZkStrBytes;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::cluster_state::{topic_id, ClusterState};
use crate::inter_broker::{
    BrokerConnection, InterBrokerError, InterBrokerSecurity, SOCKET_TIMEOUT,
};

/// The versions `inter.broker.protocol.version=3.9` implies.
const LEADER_AND_ISR_VERSION: i16 = 7;
const UPDATE_METADATA_VERSION: i16 = 8;
const STOP_REPLICA_VERSION: i16 = 4;
/// Between failed exchanges with one broker (Kafka's RequestSendThread waits 100 ms too).
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Kafka's `LeaderAndIsr.LeaderDuringDelete`: the leader sent for a topic being deleted.
const LEADER_DURING_DELETE: i32 = -2;
/// Kafka's `LeaderAndIsr.EpochDuringDelete`: StopReplica's leader epoch for a deletion.
const EPOCH_DURING_DELETE: i32 = -2;
/// A LeaderAndIsr partition error: the replica's log directory has failed.
const KAFKA_STORAGE_ERROR: i16 = 56;

/// A live broker as the controller's requests describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveBroker {
    pub id: i32,
    pub epoch: i64,
    pub rack: Option<String>,
    /// (listener name, security protocol id, host, port), in listener order.
    pub endpoints: Vec<(String, i16, String, i32)>,
}

/// One partition's state as the controller sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionView {
    pub topic_id: Uuid,
    pub controller_epoch: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    /// Replicas not registered or in a failed log directory (UpdateMetadata's).
    pub offline_replicas: Vec<i32>,
    /// A reassignment in progress: the replicas it adds and removes (LeaderAndIsr's).
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
}

/// What every broker should know, built from one reload.
#[derive(Clone, Debug, Default)]
pub struct ControllerView {
    pub controller_id: i32,
    pub controller_epoch: i32,
    pub brokers: Vec<LiveBroker>,
    /// Partitions with a state, of topics not being deleted.
    pub partitions: BTreeMap<(String, i32), PartitionView>,
    /// Topics being deleted: each partition's replicas.
    pub deleting: BTreeMap<String, (Uuid, BTreeMap<i32, Vec<i32>>)>,
}

fn security_protocol_id(name: &str) -> i16 {
    match name {
        "SSL" => 1,
        "SASL_PLAINTEXT" => 2,
        "SASL_SSL" => 3,
        _ => 0,
    }
}

impl ControllerView {
    pub fn build(state: &ClusterState, controller_id: i32, controller_epoch: i32) -> Self {
        let brokers = state
            .brokers
            .values()
            .map(|b| {
                let path = gregor_zk::paths::broker_id(b.value.broker_id);
                LiveBroker {
                    id: b.value.broker_id,
                    epoch: b.czxid,
                    rack: b.value.rack.clone(),
                    endpoints: b
                        .value
                        .parsed_endpoints(&path)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| {
                            let protocol = security_protocol_id(&e.security_protocol);
                            (e.listener_name, protocol, e.host, e.port)
                        })
                        .collect(),
                }
            })
            .collect();
        let mut partitions = BTreeMap::new();
        let mut deleting = BTreeMap::new();
        for (name, topic) in &state.topics {
            let Some(id) = topic_id(&topic.assignment.value) else {
                continue;
            };
            if state.deleting.contains(name) {
                deleting.insert(
                    name.clone(),
                    (id, topic.assignment.value.partitions.clone()),
                );
                continue;
            }
            let assignment = &topic.assignment.value;
            for (p, replicas) in &assignment.partitions {
                let Some(s) = topic.partitions.get(p).and_then(Option::as_ref) else {
                    continue;
                };
                let listed =
                    |lists: &BTreeMap<i32, Vec<i32>>| lists.get(p).cloned().unwrap_or_default();
                partitions.insert(
                    (name.clone(), *p),
                    PartitionView {
                        topic_id: id,
                        controller_epoch: s.value.controller_epoch,
                        leader: s.value.leader,
                        leader_epoch: s.value.leader_epoch,
                        isr: s.value.isr.clone(),
                        partition_epoch: s.zk_version,
                        replicas: replicas.clone(),
                        offline_replicas: replicas
                            .iter()
                            .copied()
                            .filter(|r| {
                                !state.brokers.contains_key(r)
                                    || state.is_on_offline_dir(*r, name, *p)
                            })
                            .collect(),
                        adding_replicas: listed(&assignment.adding_replicas),
                        removing_replicas: listed(&assignment.removing_replicas),
                    },
                );
            }
        }
        ControllerView {
            controller_id,
            controller_epoch,
            brokers,
            partitions,
            deleting,
        }
    }
}

struct BrokerSender {
    epoch: i64,
    view: watch::Sender<Arc<ControllerView>>,
    /// Forget what the broker acknowledged and send it everything again.
    resend: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Per broker, its replicas that answered LeaderAndIsr with KAFKA_STORAGE_ERROR.
pub type ReplicasOnOfflineDirs = BTreeMap<i32, BTreeSet<(String, i32)>>;

/// The controller's senders, one per live broker other than itself. Owned by the session
/// task while it is the controller; dropped (tasks stopped) when it no longer is.
pub struct ControllerChannelManager {
    controller_id: i32,
    senders: HashMap<i32, BrokerSender>,
    /// Per broker, the topics whose replicas there it has confirmed deleted.
    stopped: Arc<Mutex<HashMap<i32, BTreeSet<String>>>>,
    /// Per broker, its replicas in failed log directories, as its last answers said.
    offline: Arc<Mutex<ReplicasOnOfflineDirs>>,
    /// Asks the controller for another pass (a deletion may now complete).
    reconcile_again: Arc<Notify>,
    /// The listener brokers are reached on (`inter.broker.listener.name`), and its security.
    listener: Arc<str>,
    security: InterBrokerSecurity,
}

impl ControllerChannelManager {
    pub fn new(
        controller_id: i32,
        reconcile_again: Arc<Notify>,
        listener: String,
        security: InterBrokerSecurity,
    ) -> Self {
        ControllerChannelManager {
            controller_id,
            listener: listener.into(),
            security,
            senders: HashMap::new(),
            stopped: Arc::new(Mutex::new(HashMap::new())),
            offline: Arc::new(Mutex::new(BTreeMap::new())),
            reconcile_again,
        }
    }

    /// Hands every live broker's sender the new view; starts senders for new brokers (or new
    /// epochs: a restarted broker knows nothing) and stops those of brokers gone.
    pub fn update(&mut self, view: Arc<ControllerView>) {
        let live: HashMap<i32, i64> = view
            .brokers
            .iter()
            .filter(|b| b.id != self.controller_id)
            .map(|b| (b.id, b.epoch))
            .collect();
        self.senders.retain(|id, s| {
            let keep = live.get(id) == Some(&s.epoch);
            if !keep {
                s.task.abort();
            }
            keep
        });
        self.stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| live.contains_key(id));
        // A broker gone or restarted starts with every directory it can open (Kafka's
        // controller forgets its offline replicas on broker startup); its answers tell again.
        self.offline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| self.senders.contains_key(id));
        for (id, epoch) in live {
            match self.senders.get(&id) {
                Some(s) => {
                    s.view.send_replace(view.clone());
                }
                None => {
                    let (tx, rx) = watch::channel(view.clone());
                    let resend = Arc::new(AtomicBool::new(false));
                    let task = tokio::spawn(run_sender(
                        Sender {
                            controller_id: self.controller_id,
                            broker: id,
                            broker_epoch: epoch,
                            resend: resend.clone(),
                            stopped: self.stopped.clone(),
                            offline: self.offline.clone(),
                            reconcile_again: self.reconcile_again.clone(),
                            listener: self.listener.clone(),
                            security: self.security.clone(),
                        },
                        rx,
                    ));
                    self.senders.insert(
                        id,
                        BrokerSender {
                            epoch,
                            view: tx,
                            resend,
                            task,
                        },
                    );
                }
            }
        }
    }

    /// Has `broker`'s sender send it everything again (UpdateMetadata and LeaderAndIsr for
    /// every partition): after a log directory event, its answers say which replicas failed.
    pub fn resend_all(&self, broker: i32) {
        if let Some(s) = self.senders.get(&broker) {
            s.resend.store(true, Ordering::Release);
            s.view.send_modify(|_| {});
        }
    }

    /// Per broker other than the controller, its replicas in failed log directories.
    pub fn replicas_on_offline_dirs(&self) -> ReplicasOnOfflineDirs {
        self.offline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True once every broker other than the controller that holds a replica of `topic`
    /// (being deleted, with `replicas` per partition) has answered StopReplica. As in Kafka,
    /// a replica on a broker that is down keeps the deletion pending until it returns and
    /// answers (its files would otherwise outlive the topic).
    pub fn stop_replica_done(&self, topic: &str, replicas: &BTreeMap<i32, Vec<i32>>) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let holders: BTreeSet<i32> = replicas.values().flatten().copied().collect();
        holders
            .into_iter()
            .filter(|b| *b != self.controller_id)
            .all(|b| {
                self.senders.contains_key(&b) && stopped.get(&b).is_some_and(|t| t.contains(topic))
            })
    }
}

impl Drop for ControllerChannelManager {
    fn drop(&mut self) {
        for s in self.senders.values() {
            s.task.abort();
        }
    }
}

/// What one broker has acknowledged.
#[derive(Default)]
struct Acknowledged {
    brokers: Vec<LiveBroker>,
    partitions: BTreeMap<(String, i32), PartitionView>,
    /// Topics announced as being deleted (UpdateMetadata with LEADER_DURING_DELETE).
    deleting_announced: BTreeSet<String>,
    stopped: BTreeSet<String>,
    /// Replicas whose last LeaderAndIsr answer was KAFKA_STORAGE_ERROR.
    offline: BTreeSet<(String, i32)>,
    /// Replicas here that a reassignment removed (or a cancelled one no longer adds), with
    /// the partition's leader epoch: StopReplica with delete until answered.
    removed: BTreeMap<(String, i32), i32>,
}

/// One broker's sender: who it is and what it reports back to the controller.
struct Sender {
    controller_id: i32,
    broker: i32,
    broker_epoch: i64,
    resend: Arc<AtomicBool>,
    stopped: Arc<Mutex<HashMap<i32, BTreeSet<String>>>>,
    offline: Arc<Mutex<ReplicasOnOfflineDirs>>,
    reconcile_again: Arc<Notify>,
    listener: Arc<str>,
    security: InterBrokerSecurity,
}

async fn run_sender(sender: Sender, mut views: watch::Receiver<Arc<ControllerView>>) {
    let broker = sender.broker;
    let mut acked = Acknowledged::default();
    let mut conn: Option<BrokerConnection> = None;
    let mut failures = 0u32;
    loop {
        let view = views.borrow_and_update().clone();
        if sender.resend.swap(false, Ordering::AcqRel) {
            acked.brokers.clear();
            acked.partitions.clear();
        }
        match sync_broker(
            sender.controller_id,
            broker,
            sender.broker_epoch,
            &view,
            (&sender.listener, &sender.security),
            &mut conn,
            &mut acked,
        )
        .await
        {
            Ok(()) => {
                if failures > 0 {
                    info!(broker, "controller requests reach the broker again");
                }
                failures = 0;
                let previous = sender
                    .stopped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(broker, acked.stopped.clone());
                let newly_stopped = acked
                    .stopped
                    .iter()
                    .any(|t| previous.as_ref().is_none_or(|p| !p.contains(t)));
                let offline_changed = {
                    let mut offline = sender.offline.lock().unwrap_or_else(|p| p.into_inner());
                    let known = offline.get(&broker).cloned().unwrap_or_default();
                    if known != acked.offline {
                        info!(broker, replicas = acked.offline.len(),
                            "replicas in failed log directories, as the broker answered LeaderAndIsr");
                        if acked.offline.is_empty() {
                            offline.remove(&broker);
                        } else {
                            offline.insert(broker, acked.offline.clone());
                        }
                    }
                    known != acked.offline
                };
                if newly_stopped || offline_changed {
                    sender.reconcile_again.notify_one();
                }
                if views.changed().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                conn = None;
                failures += 1;
                // Said once per outage, then quietly retried (Kafka floods its log here).
                if failures == 1 {
                    warn!(broker, error = %e, "controller request failed; retrying");
                } else {
                    debug!(broker, error = %e, failures, "controller request failed again");
                }
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// Why an exchange with a broker failed.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("{0}")]
    Connection(#[from] InterBrokerError),
    #[error("{request} answered error code {code}")]
    Refused { request: &'static str, code: i16 },
}

fn name(topic: &str) -> TopicName {
    TopicName(ZkStrBytes::from_string(topic.to_string()))
}

fn ids(brokers: &[i32]) -> Vec<BrokerId> {
    brokers.iter().copied().map(BrokerId).collect()
}

/// Brings one broker up to `view`: whatever it has not acknowledged.
async fn sync_broker(
    controller_id: i32,
    broker: i32,
    broker_epoch: i64,
    view: &ControllerView,
    (listener, security): (&str, &InterBrokerSecurity),
    conn: &mut Option<BrokerConnection>,
    acked: &mut Acknowledged,
) -> Result<(), SendError> {
    let changed: Vec<(&(String, i32), &PartitionView)> = view
        .partitions
        .iter()
        .filter(|(k, v)| acked.partitions.get(*k) != Some(*v))
        .collect();
    let newly_deleting: Vec<&String> = view
        .deleting
        .keys()
        .filter(|t| !acked.deleting_announced.contains(*t))
        .collect();
    let to_stop: Vec<&String> = view
        .deleting
        .iter()
        .filter(|(t, (_, parts))| {
            !acked.stopped.contains(*t) && parts.values().any(|r| r.contains(&broker))
        })
        .map(|(t, _)| t)
        .collect();
    // Replicas here that the new replica sets leave out (a reassignment completed or
    // cancelled): deleted with StopReplica once the others have their LeaderAndIsr.
    for ((k, v), before) in changed
        .iter()
        .filter_map(|(k, v)| Some(((*k, *v), acked.partitions.get(*k)?)))
    {
        if before.replicas.contains(&broker) && !v.replicas.contains(&broker) {
            acked.removed.insert(k.clone(), v.leader_epoch);
        }
    }
    acked.removed.retain(|k, _| {
        view.partitions
            .get(k)
            .is_some_and(|v| !v.replicas.contains(&broker))
    });
    let brokers_changed = acked.brokers != view.brokers;
    if changed.is_empty()
        && newly_deleting.is_empty()
        && to_stop.is_empty()
        && acked.removed.is_empty()
        && !brokers_changed
    {
        return Ok(());
    }
    if conn.is_none() {
        let b = view
            .brokers
            .iter()
            .find(|b| b.id == broker)
            .ok_or(InterBrokerError::NoEndpoint(broker))?;
        // The inter-broker listener, as Kafka's controller picks it (not the first one: it
        // may be a client listener with other security).
        let (_, _, host, port) = b
            .endpoints
            .iter()
            .find(|(name, ..)| name == listener)
            .ok_or(InterBrokerError::NoEndpoint(broker))?;
        let endpoint = (host.clone(), u16::try_from(*port).unwrap_or(0));
        *conn = Some(
            BrokerConnection::connect(
                &endpoint,
                format!("gregor-controller-{controller_id}"),
                SOCKET_TIMEOUT,
                security,
            )
            .await?,
        );
    }
    let Some(c) = conn.as_mut() else {
        return Err(InterBrokerError::NoEndpoint(broker).into());
    };

    // 1. UpdateMetadata: the live brokers, the partitions that changed, and the partitions
    //    of topics now being deleted (leader -2: brokers drop them from their metadata).
    let mut topics: BTreeMap<&str, UpdateMetadataTopicState> = BTreeMap::new();
    for ((t, p), v) in &changed {
        topics
            .entry(t.as_str())
            .or_insert_with(|| {
                UpdateMetadataTopicState::default()
                    .with_topic_name(name(t))
                    .with_topic_id(v.topic_id)
            })
            .partition_states
            .push(
                UpdateMetadataPartitionState::default()
                    .with_topic_name(name(t))
                    .with_partition_index(*p)
                    .with_controller_epoch(v.controller_epoch)
                    .with_leader(BrokerId(v.leader))
                    .with_leader_epoch(v.leader_epoch)
                    .with_isr(ids(&v.isr))
                    .with_zk_version(v.partition_epoch)
                    .with_replicas(ids(&v.replicas))
                    .with_offline_replicas(ids(&v.offline_replicas)),
            );
    }
    for t in &newly_deleting {
        let (id, parts) = &view.deleting[*t];
        let state = topics.entry(t.as_str()).or_insert_with(|| {
            UpdateMetadataTopicState::default()
                .with_topic_name(name(t))
                .with_topic_id(*id)
        });
        for (p, replicas) in parts {
            state.partition_states.push(
                UpdateMetadataPartitionState::default()
                    .with_topic_name(name(t))
                    .with_partition_index(*p)
                    .with_controller_epoch(view.controller_epoch)
                    .with_leader(BrokerId(LEADER_DURING_DELETE))
                    .with_replicas(ids(replicas)),
            );
        }
    }
    let live_brokers = view
        .brokers
        .iter()
        .map(|b| {
            UpdateMetadataBroker::default()
                .with_id(BrokerId(b.id))
                .with_rack(b.rack.clone().map(ZkStrBytes::from_string))
                .with_endpoints(
                    b.endpoints
                        .iter()
                        .map(|(listener, protocol, host, port)| {
                            UpdateMetadataEndpoint::default()
                                .with_port(*port)
                                .with_host(ZkStrBytes::from_string(host.clone()))
                                .with_listener(ZkStrBytes::from_string(listener.clone()))
                                .with_security_protocol(*protocol)
                        })
                        .collect(),
                )
        })
        .collect();
    let update = UpdateMetadataRequest::default()
        .with_controller_id(BrokerId(controller_id))
        .with_controller_epoch(view.controller_epoch)
        .with_broker_epoch(broker_epoch)
        .with_topic_states(topics.into_values().collect())
        .with_live_brokers(live_brokers);
    let answer = c
        .call_controller_api(UPDATE_METADATA_VERSION, &update, Duration::ZERO)
        .await?;
    if answer.error_code != 0 {
        return Err(SendError::Refused {
            request: "UpdateMetadata",
            code: answer.error_code,
        });
    }
    acked.brokers = view.brokers.clone();
    acked
        .deleting_announced
        .extend(newly_deleting.iter().map(|t| (*t).clone()));

    // 2. LeaderAndIsr for the changed partitions this broker holds a replica of.
    let mut lisr_topics: BTreeMap<&str, LeaderAndIsrTopicState> = BTreeMap::new();
    let mut leaders: BTreeSet<i32> = BTreeSet::new();
    for ((t, p), v) in changed.iter().filter(|(_, v)| v.replicas.contains(&broker)) {
        leaders.insert(v.leader);
        lisr_topics
            .entry(t.as_str())
            .or_insert_with(|| {
                LeaderAndIsrTopicState::default()
                    .with_topic_name(name(t))
                    .with_topic_id(v.topic_id)
            })
            .partition_states
            .push(
                LeaderAndIsrPartitionState::default()
                    .with_topic_name(name(t))
                    .with_partition_index(*p)
                    .with_controller_epoch(v.controller_epoch)
                    .with_leader(BrokerId(v.leader))
                    .with_leader_epoch(v.leader_epoch)
                    .with_isr(ids(&v.isr))
                    .with_partition_epoch(v.partition_epoch)
                    .with_replicas(ids(&v.replicas))
                    .with_adding_replicas(ids(&v.adding_replicas))
                    .with_removing_replicas(ids(&v.removing_replicas))
                    // A replica a reassignment adds may be created in any good log
                    // directory (Kafka's isNew).
                    .with_is_new(v.adding_replicas.contains(&broker)),
            );
    }
    if !lisr_topics.is_empty() {
        let live_leaders = view
            .brokers
            .iter()
            .filter(|b| leaders.contains(&b.id))
            .filter_map(|b| {
                let (_, _, host, port) = b.endpoints.first()?;
                Some(
                    LeaderAndIsrLiveLeader::default()
                        .with_broker_id(BrokerId(b.id))
                        .with_host_name(ZkStrBytes::from_string(host.clone()))
                        .with_port(*port),
                )
            })
            .collect();
        let request = LeaderAndIsrRequest::default()
            .with_controller_id(BrokerId(controller_id))
            .with_controller_epoch(view.controller_epoch)
            .with_broker_epoch(broker_epoch)
            .with_topic_states(lisr_topics.into_values().collect())
            .with_live_leaders(live_leaders);
        let answer = c
            .call_controller_api(LEADER_AND_ISR_VERSION, &request, Duration::ZERO)
            .await?;
        if answer.error_code != 0 {
            return Err(SendError::Refused {
                request: "LeaderAndIsr",
                code: answer.error_code,
            });
        }
        let names: HashMap<Uuid, &str> = changed
            .iter()
            .map(|((t, _), v)| (v.topic_id, t.as_str()))
            .collect();
        for t in &answer.topics {
            let Some(topic) = names.get(&t.topic_id) else {
                continue;
            };
            for e in &t.partition_errors {
                let replica = (topic.to_string(), e.partition_index);
                if e.error_code == KAFKA_STORAGE_ERROR {
                    acked.offline.insert(replica);
                } else {
                    acked.offline.remove(&replica);
                    if e.error_code != 0 {
                        debug!(
                            broker,
                            topic,
                            partition = e.partition_index,
                            error_code = e.error_code,
                            "LeaderAndIsr partition answered with an error"
                        );
                    }
                }
            }
        }
    }
    for (k, v) in changed {
        acked.partitions.insert(k.clone(), v.clone());
    }
    acked
        .partitions
        .retain(|k, _| view.partitions.contains_key(k));
    acked.offline.retain(|k| view.partitions.contains_key(k));

    // 3. StopReplica with delete for the replicas here of topics being deleted.
    if !to_stop.is_empty() {
        let topic_states = to_stop
            .iter()
            .map(|t| {
                let (_, parts) = &view.deleting[*t];
                StopReplicaTopicState::default()
                    .with_topic_name(name(t))
                    .with_partition_states(
                        parts
                            .iter()
                            .filter(|(_, r)| r.contains(&broker))
                            .map(|(p, _)| {
                                StopReplicaPartitionState::default()
                                    .with_partition_index(*p)
                                    .with_leader_epoch(EPOCH_DURING_DELETE)
                                    .with_delete_partition(true)
                            })
                            .collect(),
                    )
            })
            .collect();
        let fence = (controller_id, view.controller_epoch, broker_epoch);
        stop_and_delete(c, fence, topic_states).await?;
        acked.stopped.extend(to_stop.into_iter().cloned());
    }
    // 4. StopReplica with delete for the replicas here a reassignment removed, at the
    //    partition's current leader epoch (newer than the replica's own).
    if !acked.removed.is_empty() {
        let mut by_topic: BTreeMap<&str, Vec<StopReplicaPartitionState>> = BTreeMap::new();
        for ((t, p), leader_epoch) in &acked.removed {
            by_topic.entry(t.as_str()).or_default().push(
                StopReplicaPartitionState::default()
                    .with_partition_index(*p)
                    .with_leader_epoch(*leader_epoch)
                    .with_delete_partition(true),
            );
        }
        let topic_states = by_topic
            .into_iter()
            .map(|(t, partitions)| {
                StopReplicaTopicState::default()
                    .with_topic_name(name(t))
                    .with_partition_states(partitions)
            })
            .collect();
        let fence = (controller_id, view.controller_epoch, broker_epoch);
        stop_and_delete(c, fence, topic_states).await?;
        info!(
            broker,
            replicas = acked.removed.len(),
            "StopReplica sent for replicas reassigned away"
        );
        acked.removed.clear();
    }
    acked.stopped.retain(|t| view.deleting.contains_key(t));
    acked
        .deleting_announced
        .retain(|t| view.deleting.contains_key(t));
    Ok(())
}

/// Sends one StopReplica (with the delete flags of `topics`), fenced by (controller id,
/// controller epoch, broker epoch); a top-level error fails the exchange.
async fn stop_and_delete(
    c: &mut BrokerConnection,
    (controller_id, controller_epoch, broker_epoch): (i32, i32, i64),
    topics: Vec<StopReplicaTopicState>,
) -> Result<(), SendError> {
    let request = StopReplicaRequest::default()
        .with_controller_id(BrokerId(controller_id))
        .with_controller_epoch(controller_epoch)
        .with_broker_epoch(broker_epoch)
        .with_topic_states(topics);
    let answer = c
        .call_controller_api(STOP_REPLICA_VERSION, &request, Duration::ZERO)
        .await?;
    if answer.error_code != 0 {
        return Err(SendError::Refused {
            request: "StopReplica",
            code: answer.error_code,
        });
    }
    Ok(())
}
