//! The set of partition replicas this broker hosts, kept in step with the metadata image.
//!
//! Each partition lives in `<log dir>/<topic>-<partition>` with a `partition.metadata` file
//! holding the topic id, as in Kafka: a directory left behind by a deleted topic of the same
//! name is recognised by its id and moved aside instead of being served as the new topic.
//! Which of `log.dirs` holds it, and which have failed, is `log_dirs`' business.
//!
//! Crash recovery state, as Kafka's `LogManager`, per log directory: at start the manager
//! notes whether the previous run left the clean-shutdown marker (`.kafka_cleanshutdown`) and
//! reads the `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` files; each
//! log is opened with its directory's (clean: nothing is validated; else from its recovery
//! point on). `write_checkpoints` (every `CHECKPOINT_INTERVAL` from the binary, and at
//! shutdown) fsyncs rolled segments and writes, in each online directory, those two files and
//! `replication-offset-checkpoint` for the partitions it holds.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gregor_log::checkpoint::{
    read_checkpoint, write_checkpoint, Offsets, LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT, REPLICATION_OFFSET_CHECKPOINT,
};
use gregor_log::LogOpenOptions;

use tracing::{info, warn};
use uuid::Uuid;

use super::log_dirs::{is_dir_failure, LogDir, LogDirs};
use super::partition::{IsrChange, Leadership, Partition, PartitionError, RoleChange};
use super::replica_fetcher::{FetcherSettings, ReplicaFetcherManager};
use super::replication_quota::ReplicationQuota;
use crate::config::{topic_settings, BrokerConfig, TopicSettings};
use crate::inter_broker::InterBrokerSecurity;
use crate::metadata::{
    kafka_uuid_string, parse_kafka_uuid, MetadataImage, MetadataStore, TopicMetadata,
};

/// The replicas of one topic on this broker, indexed by partition number.
pub struct TopicReplicas {
    pub id: Uuid,
    pub partitions: Vec<Option<Arc<Partition>>>,
    /// The topic's metadata as last applied: `apply` passes over a topic that has not
    /// changed since (with 10,000 partitions, redoing them all made every topic creation
    /// cost a pass over every partition).
    applied: Arc<TopicMetadata>,
}

/// Written to each log directory after a graceful shutdown that closed every log in it,
/// removed at start (Kafka's name).
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// How often the checkpoint files are written: Kafka's
/// `log.flush.offset.checkpoint.interval.ms` default.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// What the previous run left: the marker and the checkpoints read at start.
/// What the previous run left for each log's first open in this one. The checkpoints'
/// entries are taken by that first open: a log closed and opened again later (a replica
/// removed and re-added) was closed by this process, and the start's offsets no longer
/// describe it.
struct StartupState {
    recovery_points: Mutex<Offsets>,
    log_start_offsets: Mutex<Offsets>,
    high_watermarks: Mutex<Offsets>,
}

pub struct ReplicaManager {
    broker_id: i32,
    /// The listener other brokers are reached on.
    inter_broker_listener: String,
    /// TLS and SASL towards the other brokers (AlterPartition, ControlledShutdown).
    pub inter_broker_security: InterBrokerSecurity,
    log_dirs: LogDirs,
    topics: RwLock<HashMap<String, Arc<TopicReplicas>>>,
    startup: StartupState,
    /// Serialises checkpoint writers (the periodic task and shutdown).
    checkpoint_lock: Mutex<()>,
    /// Serialises `apply`, the only writer of `topics`.
    apply_lock: Mutex<()>,
    /// The effective broker configuration (static plus dynamic) the hosted topics' settings
    /// were last computed from; locked only inside `apply_lock`.
    applied_config: Mutex<Option<BrokerConfig>>,
    /// Followers' fetches from their leaders.
    fetchers: ReplicaFetcherManager,
    /// `leader.replication.throttled.rate`: what this broker as leader sends the replicas
    /// the topics throttle (`leader_throttled`).
    leader_quota: ReplicationQuota,
    /// The image (controller, endpoints, epochs) that ISR changes are sent by.
    metadata: Arc<dyn MetadataStore>,
    /// The newest controller epoch a controller request came with.
    controller_epoch: AtomicI32,
}

/// What became of one partition state of a LeaderAndIsr request.
#[derive(Debug)]
pub enum LeaderAndIsrOutcome {
    Applied,
    /// This replica already serves a newer leader epoch.
    StaleLeaderEpoch,
    /// No replica of it here (the topic is not in this broker's image).
    NotHosted,
    Failed(PartitionError),
}

impl ReplicaManager {
    /// Reads the checkpoint files of every online log directory (`LogDirs::open` read the
    /// clean-shutdown markers, before `remove_clean_shutdown_markers`). A malformed
    /// checkpoint is ignored with a warning: recovery then validates the whole log, as Kafka
    /// with no recovery point. A partition directory is in one log directory only, so the
    /// files' entries never collide.
    pub fn new(
        broker_id: i32,
        log_dirs: LogDirs,
        fetcher: FetcherSettings,
        metadata: Arc<dyn MetadataStore>,
    ) -> Self {
        let (mut recovery_points, mut log_start_offsets, mut high_watermarks) =
            (Offsets::new(), Offsets::new(), Offsets::new());
        for dir in log_dirs.all().iter().filter(|d| d.is_online()) {
            let read = |name: &str| match read_checkpoint(&dir.path.join(name)) {
                Ok(offsets) => offsets,
                Err(e) => {
                    warn!(error = %e, "ignoring unreadable checkpoint file");
                    Offsets::new()
                }
            };
            let points = read(RECOVERY_POINT_CHECKPOINT);
            info!(log_dir = %dir.path.display(), clean_shutdown = dir.clean_shutdown,
                recovery_points = points.len(), "log recovery state loaded");
            recovery_points.extend(points);
            log_start_offsets.extend(read(LOG_START_OFFSET_CHECKPOINT));
            high_watermarks.extend(read(REPLICATION_OFFSET_CHECKPOINT));
        }
        let startup = StartupState {
            recovery_points: Mutex::new(recovery_points),
            log_start_offsets: Mutex::new(log_start_offsets),
            high_watermarks: Mutex::new(high_watermarks),
        };
        ReplicaManager {
            broker_id,
            inter_broker_listener: fetcher.listener.clone(),
            inter_broker_security: fetcher.security.clone(),
            log_dirs,
            topics: RwLock::new(HashMap::new()),
            startup,
            checkpoint_lock: Mutex::new(()),
            apply_lock: Mutex::new(()),
            applied_config: Mutex::new(None),
            fetchers: ReplicaFetcherManager::new(fetcher),
            leader_quota: ReplicationQuota::default(),
            metadata,
            controller_epoch: AtomicI32::new(-1),
        }
    }

    /// Removes each online directory's clean-shutdown marker once the logs are open (from
    /// now on the data changes, so the marker goes until the next graceful shutdown writes
    /// it), and fsyncs the directory: a marker brought back by a power loss would let the
    /// next start skip recovery of logs written after this point.
    pub fn remove_clean_shutdown_markers(&self) -> Result<(), PartitionError> {
        for dir in self.log_dirs.all().iter().filter(|d| d.is_online()) {
            let marker = dir.path.join(CLEAN_SHUTDOWN_FILE);
            if std::fs::remove_file(&marker).is_ok() {
                gregor_log::durable::sync_dir(&dir.path)
                    .map_err(|e| PartitionError::Log(e.into()))?;
            } else {
                info!(log_dir = %dir.path.display(), "no clean-shutdown marker: the previous run did not stop cleanly (or this is the first)");
            }
        }
        Ok(())
    }

    /// What the start's checkpoints say of one log: how to open it, and its high watermark.
    fn open_options(
        &self,
        topic: &str,
        index: i32,
        log_dir: &LogDir,
    ) -> (LogOpenOptions, Option<i64>) {
        let key = (topic.to_string(), index);
        let take = |offsets: &Mutex<Offsets>| {
            offsets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key)
        };
        let options = LogOpenOptions {
            recovery_point: take(&self.startup.recovery_points),
            clean_shutdown: log_dir.clean_shutdown,
            log_start_offset: take(&self.startup.log_start_offsets),
        };
        (options, take(&self.startup.high_watermarks))
    }

    /// The partition if this broker hosts it *and leads it*: the only replicas that serve
    /// produce, fetch and offset requests (`None` otherwise, which handlers answer with
    /// NOT_LEADER_OR_FOLLOWER when the partition exists elsewhere).
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.hosted(topic, index).filter(|p| p.is_leader())
    }

    /// The partition if this broker hosts a replica of it, leader or follower.
    pub fn hosted(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        let replicas = topics.get(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| replicas.partitions.get(i))
            .and_then(|p| p.clone())
    }

    /// Opens the replicas the image assigns to this broker, drops those of deleted topics,
    /// and tells each hosted replica whether this broker leads it (and the leader epoch).
    /// Idempotent: called after every metadata change and at start-up. This is the one place
    /// where hosted partitions are opened, closed and change role: hook leadership changes
    /// (e.g. of `__consumer_offsets`) here.
    ///
    /// Files are opened and deleted with no lock held on the topic map: every produce and
    /// fetch looks its partition up there, and creating 100 topics once held it for a second.
    /// The map is only locked to swap a topic's entry.
    ///
    /// `config` is the static configuration; the image's dynamic broker configs go on top,
    /// and when the result changes every hosted topic takes its new settings.
    pub fn apply(
        &self,
        image: &MetadataImage,
        config: &BrokerConfig,
    ) -> Result<(), PartitionError> {
        // One apply at a time: each reads the map, works unlocked, then writes its result.
        let _applying = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        let config = &config.effective(&image.dynamic_broker_configs);
        let config_changed = {
            let mut applied = self
                .applied_config
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let changed = applied.as_ref() != Some(config);
            if changed {
                *applied = Some(config.clone());
            }
            changed
        };
        self.leader_quota
            .set_bound(config.leader_replication_throttled_rate);
        self.fetchers
            .set_throttle(config.follower_replication_throttled_rate);
        self.fetchers.set_endpoints(
            image
                .brokers
                .iter()
                .filter_map(|b| Some((b.id, b.address(&self.inter_broker_listener)?)))
                .collect(),
        );
        // Topics gone from the image (or recreated under a new id): close and delete.
        let gone: Vec<String> = self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(name, r)| {
                image.topic(name).is_none_or(|t| t.id != r.id)
                    || image.topics_being_deleted.contains(*name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            let removed = self
                .topics
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
            if let Some(replicas) = removed {
                info!(topic = %name, "deleting topic replicas");
                // Hand over our own references (not clones), so that a partition no
                // request holds is deleted now.
                let partitions = match Arc::try_unwrap(replicas) {
                    Ok(r) => r.partitions,
                    Err(shared) => shared.partitions.clone(),
                };
                for p in partitions.into_iter().flatten() {
                    self.fetchers.unfollow(&p.topic, p.index);
                    delete_partition(&self.log_dirs, p);
                }
                crate::metrics::forget_topic(&name);
            }
        }
        for (name, topic) in &image.topics {
            if image.topics_being_deleted.contains(name) {
                continue;
            }
            let existing = self
                .topics
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)
                .cloned();
            // `applied` includes the topic id: a recreated topic never compares equal.
            let unchanged = existing
                .as_ref()
                .is_some_and(|r| Arc::ptr_eq(&r.applied, topic) || *r.applied == **topic);
            if unchanged && !config_changed {
                continue;
            }
            let replicas = self.open_topic(name, topic, existing.as_deref(), config)?;
            self.topics
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), Arc::new(replicas));
        }
        Ok(())
    }

    /// A topic's replicas on this broker as `topic` describes them: those already open
    /// (in `existing`) take their new settings and role, the others are opened.
    fn open_topic(
        &self,
        name: &str,
        topic: &Arc<TopicMetadata>,
        existing: Option<&TopicReplicas>,
        config: &BrokerConfig,
    ) -> Result<TopicReplicas, PartitionError> {
        let settings = topic_settings(&topic.configs, config);
        let mut partitions: Vec<Option<Arc<Partition>>> = existing
            .filter(|r| r.id == topic.id)
            .map(|r| r.partitions.clone())
            .unwrap_or_default();
        // Directories this call creates: if a later partition fails to open, they are
        // removed again (they hold nothing yet), so that a failed creation leaves no trace.
        let mut created: Vec<PathBuf> = Vec::new();
        let opened = self.open_partitions(name, topic, &settings, &mut partitions, &mut created);
        if let Err(e) = opened {
            for dir in created {
                if let Err(r) = std::fs::remove_dir_all(&dir) {
                    warn!(dir = %dir.display(), error = %r, "removing a log directory of a failed open failed");
                }
            }
            return Err(e);
        }
        Ok(TopicReplicas {
            id: topic.id,
            partitions,
            applied: topic.clone(),
        })
    }

    /// Opens the replicas of `topic` that this broker hosts and `partitions` lacks.
    fn open_partitions(
        &self,
        name: &str,
        topic: &Arc<TopicMetadata>,
        settings: &TopicSettings,
        partitions: &mut Vec<Option<Arc<Partition>>>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), PartitionError> {
        for (index, meta) in topic.partitions.iter().enumerate() {
            if partitions.len() <= index {
                partitions.resize(index + 1, None);
            }
            if !meta.replicas.contains(&self.broker_id) {
                // Reassigned away: the controller's StopReplica would say the same (its own
                // broker is sent none). The new replicas are in sync by now: the controller
                // writes the new assignment only once every one of them is in the ISR.
                if let Some(p) = partitions[index].take() {
                    info!(topic = %name, partition = index, replicas = ?meta.replicas,
                        "replica reassigned away: deleting it");
                    self.fetchers.unfollow(&p.topic, p.index);
                    delete_partition(&self.log_dirs, p);
                }
                continue;
            }
            if meta.leader_epoch < 0 {
                continue; // cluster mode: the controller has not created its state yet
            }
            let leadership = Leadership {
                leader: meta.leader,
                leader_epoch: meta.leader_epoch,
                isr: meta.isr.clone(),
                replicas: meta.replicas.clone(),
                partition_epoch: meta.partition_epoch,
            };
            let p = match &partitions[index] {
                Some(p) => {
                    p.set_settings(settings.clone());
                    p.clone()
                }
                None => {
                    let dir_name = format!("{name}-{index}");
                    // Not opened while its data is in a failed directory, or may be in one
                    // that could not be read at start: offline until a restart finds the
                    // directory repaired (`is_offline` says so to Metadata).
                    let log_dir = match self.log_dirs.place(&dir_name) {
                        Ok(log_dir) if log_dir.is_online() => log_dir,
                        Ok(_) => continue,
                        Err(reason) => {
                            warn!(topic = %name, partition = index, %reason,
                                "replica left offline");
                            continue;
                        }
                    };
                    let dir = log_dir.path.join(&dir_name);
                    if claim_partition_dir(&dir, topic.id)? {
                        created.push(dir.clone());
                    }
                    let (options, high_watermark) = self.open_options(name, index as i32, &log_dir);
                    let p = Arc::new(Partition::open_with(
                        &dir,
                        log_dir,
                        name,
                        index as i32,
                        topic.id,
                        meta.leader_epoch,
                        settings.clone(),
                        options,
                        high_watermark,
                    )?);
                    partitions[index] = Some(p.clone());
                    p
                }
            };
            self.change_role(&p, &leadership)?;
        }
        Ok(())
    }

    /// Gives a hosted replica the leadership it is told of (from the image or from the
    /// controller's LeaderAndIsr; an older leader epoch changes nothing) and starts or stops
    /// its fetcher accordingly.
    fn change_role(
        &self,
        p: &Arc<Partition>,
        leadership: &Leadership,
    ) -> Result<RoleChange, PartitionError> {
        let change = p.apply_leadership(self.broker_id, leadership)?;
        if change != RoleChange::Unchanged {
            info!(topic = %p.topic, partition = p.index, leader = leadership.leader,
                leader_epoch = leadership.leader_epoch, isr = ?leadership.isr, "replica role changed");
        }
        match change {
            RoleChange::Unchanged => {}
            RoleChange::BecameLeader | RoleChange::BecameFollower { leader: -1 } => {
                self.fetchers.unfollow(&p.topic, p.index)
            }
            RoleChange::BecameFollower { leader } => {
                self.fetchers
                    .follow(p.clone(), leader, leadership.leader_epoch)
            }
        }
        Ok(change)
    }

    /// Whether `follower`'s fetch of `p` from this broker as leader counts against
    /// `leader.replication.throttled.rate` (Kafka's `shouldLeaderThrottle`): a throttle is set,
    /// the topic's `leader.replication.throttled.replicas` names this broker's replica, and
    /// the follower is out of the ISR (a reassignment's new replica catching up).
    pub fn leader_throttled(&self, p: &Partition, follower: i32) -> bool {
        self.leader_quota.is_bounded()
            && !p.isr().contains(&follower)
            && p.settings()
                .leader_replication_throttled_replicas
                .includes(p.index, self.broker_id)
    }

    /// The leader's replication throttle (see `leader_throttled`).
    pub fn leader_quota(&self) -> &ReplicationQuota {
        &self.leader_quota
    }

    /// Kafka's controller epoch check: a request from a controller older than the newest
    /// one heard from is stale (false); a newer one is remembered.
    pub fn accept_controller_epoch(&self, epoch: i32) -> bool {
        self.controller_epoch.fetch_max(epoch, Ordering::AcqRel) <= epoch
    }

    /// One partition state of a LeaderAndIsr request, applied to the hosted replica (opened
    /// beforehand by `apply` from an image that shows the topic).
    pub fn apply_leader_and_isr(
        &self,
        topic: &str,
        index: i32,
        leadership: &Leadership,
    ) -> LeaderAndIsrOutcome {
        // Role changes one at a time, with the image's: the fetcher calls of two changes
        // must not interleave (a follow after the newer change's unfollow).
        let _applying = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        // A replica in a failed log directory answers KAFKA_STORAGE_ERROR, as Kafka's does:
        // that is how a controller learns it is offline.
        let Some(p) = self.hosted(topic, index) else {
            if self.log_dirs.is_offline(&format!("{topic}-{index}")) {
                return LeaderAndIsrOutcome::Failed(PartitionError::LogDirOffline(PathBuf::new()));
            }
            return LeaderAndIsrOutcome::NotHosted;
        };
        if !p.log_dir().is_online() {
            let dir = p.log_dir().path.clone();
            return LeaderAndIsrOutcome::Failed(PartitionError::LogDirOffline(dir));
        }
        if leadership.leader_epoch < p.leader_epoch() {
            return LeaderAndIsrOutcome::StaleLeaderEpoch;
        }
        match self.change_role(&p, leadership) {
            Ok(_) => LeaderAndIsrOutcome::Applied,
            Err(e) => LeaderAndIsrOutcome::Failed(e),
        }
    }

    /// StopReplica for one partition: its fetcher stops; with `delete`, the replica is
    /// closed and its directory deleted (a partition not hosted has nothing to stop).
    pub fn stop_replica(&self, topic: &str, index: i32, delete: bool) {
        self.fetchers.unfollow(topic, index);
        if !delete {
            return;
        }
        let _applying = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let slot = usize::try_from(index).ok();
        let open = topics.get(topic).cloned().and_then(|replicas| {
            let p = slot.and_then(|i| replicas.partitions.get(i).cloned().flatten())?;
            Some((replicas, p))
        });
        let Some((replicas, p)) = open else {
            drop(topics);
            // Not open here (e.g. a broker that was down when the topic was marked for
            // deletion does not open it at start): its directory goes all the same.
            self.delete_unopened_replica(topic, index);
            return;
        };
        let mut partitions = replicas.partitions.clone();
        if let Some(i) = slot {
            partitions[i] = None;
        }
        topics.insert(
            topic.to_string(),
            Arc::new(TopicReplicas {
                id: replicas.id,
                partitions,
                applied: replicas.applied.clone(),
            }),
        );
        drop(topics);
        info!(
            topic,
            partition = index,
            "StopReplica: deleting the replica"
        );
        delete_partition(&self.log_dirs, p);
    }

    /// Removes the directory of a replica this broker has not opened, if there is one.
    fn delete_unopened_replica(&self, topic: &str, index: i32) {
        let name = format!("{topic}-{index}");
        let Some(dir) = self.log_dirs.existing(&name) else {
            return;
        };
        self.log_dirs.forget(&name);
        info!(
            topic,
            partition = index,
            "StopReplica: deleting the replica's directory"
        );
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            warn!(dir = %dir.display(), error = %e, "deleting a replica directory failed");
        }
    }

    /// Sends a leader's ISR change to the controller (AlterPartition) in the background and
    /// tells the partition the outcome.
    pub fn alter_isr(&self, partition: Arc<Partition>, change: IsrChange) {
        let metadata = self.metadata.clone();
        let broker_id = self.broker_id;
        let listener = self.inter_broker_listener.clone();
        let security = self.inter_broker_security.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            partition.complete_isr_change(&change, None);
            return;
        };
        runtime.spawn(async move {
            let sent = super::alter_partition::send(
                &metadata,
                &listener,
                &security,
                broker_id,
                partition.topic_id,
                &change,
            );
            let written = match sent.await {
                Ok(epoch) => {
                    info!(topic = %change.topic, partition = change.partition, isr = ?change.isr,
                        partition_epoch = epoch, "ISR changed");
                    Some(epoch)
                }
                Err(e) => {
                    warn!(topic = %change.topic, partition = change.partition, isr = ?change.isr,
                        error = %e, "ISR change not written");
                    None
                }
            };
            partition.complete_isr_change(&change, written);
        });
    }

    /// Kafka's `maybeShrinkIsr` over every partition led here: followers that have not
    /// caught up for `lag_ms` leave the ISR. Called every `lag_ms / 2`.
    pub fn shrink_isrs(&self, lag_ms: i64) {
        let now = crate::clock::now_ms();
        for p in self.all_partitions() {
            if let Some(change) = p.isr_shrink(now, lag_ms) {
                info!(topic = %p.topic, partition = p.index, isr = ?change.isr,
                    "followers fell behind for replica.lag.time.max.ms: shrinking the ISR");
                self.alter_isr(p, change);
            }
        }
    }

    /// Flushes and closes every log, writes the checkpoints (graceful shutdown; the recovery
    /// points are then the log end offsets), and writes the clean-shutdown marker in each
    /// online directory where all of that succeeded. True if it did in every directory.
    pub fn shutdown(&self) -> bool {
        self.fetchers.shutdown();
        let partitions = self.all_partitions();
        let failed = close_all(&partitions);
        let checkpointed = self.write_checkpoints();
        let mut all_clean = true;
        for dir in self.log_dirs.all() {
            let clean =
                dir.is_online() && checkpointed.contains(&dir.path) && !failed.contains(&dir.path);
            let marked = clean
                && gregor_log::checkpoint::write_file_atomically(
                    &dir.path.join(CLEAN_SHUTDOWN_FILE),
                    b"",
                )
                .inspect_err(|e| warn!(log_dir = %dir.path.display(), error = %e, "writing the clean-shutdown marker failed"))
                .is_ok();
            if !marked {
                warn!(log_dir = %dir.path.display(), "no clean-shutdown marker: the next start validates its logs");
                all_clean = false;
            }
        }
        all_clean
    }

    /// Every hosted partition.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        topics
            .values()
            .flat_map(|r| r.partitions.iter().flatten().cloned())
            .collect()
    }

    /// The log directories.
    pub fn log_dirs(&self) -> &LogDirs {
        &self.log_dirs
    }

    /// Whether this broker's replica of the partition is offline: its log directory failed.
    pub fn is_offline(&self, topic: &str, index: i32) -> bool {
        match self.hosted(topic, index) {
            Some(p) => !p.log_dir().is_online(),
            None => self.log_dirs.is_offline(&format!("{topic}-{index}")),
        }
    }

    /// This broker's replicas in `image` whose log directory has failed (or may be the one
    /// unreadable since start): what the controller must not elect or keep in an ISR.
    pub fn offline_replicas(&self, image: &MetadataImage) -> BTreeSet<(String, i32)> {
        if !self.log_dirs.any_offline() {
            return BTreeSet::new();
        }
        let mut offline = BTreeSet::new();
        for t in image.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if p.replicas.contains(&self.broker_id) && self.is_offline(&t.name, i as i32) {
                    offline.insert((t.name.clone(), i as i32));
                }
            }
        }
        offline
    }

    /// Retention on every hosted partition (Kafka's `cleanupLogs`, every
    /// `log.retention.check.interval.ms`). Blocking: call from a blocking thread. Returns the
    /// number of segments deleted.
    /// Kafka's producer id expiration: every log forgets the producers idle for
    /// `producer.id.expiration.ms` with no transaction open. Returns how many went.
    pub fn remove_expired_producers(&self, expiration_ms: i64) -> usize {
        let now_ms = crate::clock::now_ms();
        let total: usize = self
            .all_partitions()
            .iter()
            .map(|p| p.remove_expired_producers(now_ms, expiration_ms))
            .sum();
        if total > 0 {
            info!(producers = total, "expired idle producer ids");
        }
        total
    }

    pub fn delete_old_segments(&self) -> usize {
        let partitions = self.all_partitions();
        let now_ms = crate::clock::now_ms();
        let mut total = 0;
        for p in partitions {
            match p.delete_old_segments(now_ms) {
                Ok(n) => total += n,
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.index, error = %e, "log retention failed")
                }
            }
        }
        if total > 0 {
            info!(segments = total, "log retention deleted segments");
        }
        total
    }

    /// fsyncs every log's rolled segments, then writes `recovery-point-offset-checkpoint`,
    /// `replication-offset-checkpoint` and `log-start-offset-checkpoint` in each online log
    /// directory, for the partitions it holds. Returns the directories written (one whose
    /// files cannot be written fails, as in Kafka). Blocking: call from a blocking thread.
    pub fn write_checkpoints(&self) -> Vec<PathBuf> {
        let _guard = self
            .checkpoint_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let partitions = self.all_partitions();
        type DirOffsets = (Arc<LogDir>, Offsets, Offsets, Offsets);
        let mut per_dir: HashMap<PathBuf, DirOffsets> = self
            .log_dirs
            .all()
            .iter()
            .filter(|d| d.is_online())
            .map(|d| {
                (
                    d.path.clone(),
                    (d.clone(), Offsets::new(), Offsets::new(), Offsets::new()),
                )
            })
            .collect();
        for p in partitions {
            let Some((_, recovery, hw, start)) = per_dir.get_mut(&p.log_dir().path) else {
                continue; // its directory is offline
            };
            let c = match p.checkpoint() {
                Ok(c) => c,
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.index, error = %e, "flushing log for checkpoint failed");
                    continue;
                }
            };
            let key = (p.topic.clone(), p.index);
            recovery.insert(key.clone(), c.recovery_point);
            hw.insert(key.clone(), c.high_watermark);
            if let Some(log_start_offset) = c.log_start_offset {
                start.insert(key, log_start_offset);
            }
        }
        let mut written = Vec::new();
        for (dir, (log_dir, recovery, hw, start)) in per_dir {
            // Skipped if a log's flush above took the directory offline meanwhile.
            if !log_dir.is_online() {
                continue;
            }
            let result = write_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT), &recovery)
                .and_then(|()| write_checkpoint(&dir.join(REPLICATION_OFFSET_CHECKPOINT), &hw))
                .and_then(|()| write_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT), &start));
            match result {
                Ok(()) => written.push(dir),
                // As Kafka: a checkpoint that cannot be written fails its directory.
                Err(e) if is_dir_failure(&e) => {
                    log_dir.fail(&e);
                }
                Err(e) => {
                    warn!(log_dir = %dir.display(), error = %e, "writing checkpoint files failed")
                }
            }
        }
        written
    }
}

fn delete_partition(log_dirs: &LogDirs, p: Arc<Partition>) {
    let (topic, index) = (p.topic.clone(), p.index);
    log_dirs.forget(&format!("{topic}-{index}"));
    match Arc::try_unwrap(p) {
        Ok(p) => {
            if let Err(e) = p.delete() {
                warn!(%topic, partition = index, error = %e, "deleting log failed");
            }
        }
        // A request still holds it (a follower's or a consumer's long poll, always there
        // in a replicated cluster). Its directory is renamed aside, so that a topic of the
        // same name created next gets a fresh one, and removed now: the holder keeps reading
        // the unlinked files through its descriptors until it lets go (Kafka renames to
        // `-delete` and removes later as well).
        Err(p) => {
            let _ = p.close();
            let dir = p.dir();
            let doomed = dir.with_file_name(format!(
                "{topic}-{index}.{}-delete",
                Uuid::new_v4().simple()
            ));
            let removed =
                std::fs::rename(&dir, &doomed).and_then(|()| std::fs::remove_dir_all(&doomed));
            if let Err(e) = removed {
                warn!(%topic, partition = index, dir = %dir.display(), error = %e,
                    "removing the directory of a deleted partition in use failed");
            }
        }
    }
}

const PARTITION_METADATA: &str = "partition.metadata";

/// Makes `dir` the home of topic `id` (Kafka's `PartitionMetadataFile`), and says whether it
/// had to create the directory: creates it with a
/// `partition.metadata` naming the topic id; keeps it when its file names `id` (whatever its
/// whitespace: Kafka writes no final newline); renames it aside when the file names another
/// id (a deleted topic of the same name). A file that cannot be read as a topic id is an
/// error, never a reason to move data aside: the directory may hold this very topic.
fn claim_partition_dir(dir: &Path, id: Uuid) -> Result<bool, PartitionError> {
    let io = |e: std::io::Error| PartitionError::Log(e.into());
    let file = dir.join(PARTITION_METADATA);
    match std::fs::read(&file) {
        Ok(bytes) => match parse_partition_metadata(&bytes) {
            Ok(found) if found == id => return Ok(false),
            Ok(found) => {
                let aside = dir.with_file_name(format!(
                    "{}.{}-stray",
                    dir.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("partition"),
                    Uuid::new_v4().simple()
                ));
                warn!(dir = %dir.display(), found = %kafka_uuid_string(found.as_bytes()),
                    expected = %kafka_uuid_string(id.as_bytes()), aside = %aside.display(),
                    "log directory belongs to another topic id; moving it aside");
                std::fs::rename(dir, &aside).map_err(io)?;
            }
            Err(reason) => {
                return Err(PartitionError::UnreadablePartitionMetadata {
                    path: file,
                    reason,
                    topic_id: kafka_uuid_string(id.as_bytes()),
                })
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let existed = dir.is_dir();
    // The partition directory's own entry in the log directory must survive a power loss.
    gregor_log::durable::create_dir_all(dir).map_err(io)?;
    let text = format!("version: 0\ntopic_id: {}", kafka_uuid_string(id.as_bytes()));
    gregor_log::checkpoint::write_file_atomically(&file, text.as_bytes())?;
    Ok(!existed)
}

/// The topic id in a `partition.metadata` file: `version: 0` then `topic_id: <id>`, each on
/// its own line.
fn parse_partition_metadata(bytes: &[u8]) -> Result<Uuid, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let field = |line: Option<&str>, key: &str| -> Result<String, String> {
        let line = line.ok_or_else(|| format!("no `{key}` line"))?;
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("`{line}` is not `{key}: <value>`"))?;
        if k.trim() != key {
            return Err(format!("expected `{key}`, found `{}`", k.trim()));
        }
        Ok(v.trim().to_string())
    };
    let version = field(lines.next(), "version")?;
    if version != "0" {
        return Err(format!("unknown version {version}"));
    }
    let id = field(lines.next(), "topic_id")?;
    let bytes = parse_kafka_uuid(&id).ok_or_else(|| format!("`{id}` is not a Kafka topic id"))?;
    Ok(Uuid::from_bytes(bytes))
}

/// Closes logs on several threads: every close ends in fsyncs, which the disk (and ext4's
/// journal, which commits concurrent fsyncs together) serves better side by side than one
/// after another. 10,000 partitions took 3.4 s to close one at a time.
/// Closes the logs on a few threads; false if any failed to close.
/// Closes every partition's log on a few threads; returns the directories of those whose
/// close failed.
fn close_all(partitions: &[Arc<Partition>]) -> Vec<PathBuf> {
    const CLOSE_THREADS: usize = 8;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..CLOSE_THREADS.min(partitions.len()) {
            scope.spawn(|| {
                while let Some(p) =
                    partitions.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    if let Err(e) = p.close() {
                        warn!(topic = %p.topic, partition = p.index, error = %e, "closing log failed");
                        failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(p.log_dir().path.clone());
                    }
                }
            });
        }
    });
    failed.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_string_matches_kafka() {
        // Kafka's Uuid.toString of 00000000-0000-0001-0000-000000000001 is "AAAAAAAAAAEAAAAAAAAAAQ".
        let id = Uuid::from_u64_pair(1, 1);
        assert_eq!(kafka_uuid_string(id.as_bytes()), "AAAAAAAAAAEAAAAAAAAAAQ");
        assert_eq!(
            kafka_uuid_string(Uuid::nil().as_bytes()),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
    }

    #[test]
    fn a_directory_of_another_topic_id_is_moved_aside() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("orders-0");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        claim_partition_dir(&dir, a).unwrap();
        std::fs::write(dir.join("00000000000000000000.log"), b"old").unwrap();
        claim_partition_dir(&dir, a).unwrap();
        assert!(dir.join("00000000000000000000.log").exists());
        claim_partition_dir(&dir, b).unwrap();
        assert!(!dir.join("00000000000000000000.log").exists());
        let strays = std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with("-stray")
            })
            .count();
        assert_eq!(strays, 1);
    }

    #[test]
    fn partition_metadata_is_parsed_not_compared() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("orders-0");
        let id = Uuid::from_u64_pair(1, 1);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("00000000000000000000.log"), b"data").unwrap();
        // Kafka's own file (no final newline), gregor's older one, extra blank lines and
        // spaces: all name the same topic id, and the data stays.
        for text in [
            "version: 0\ntopic_id: AAAAAAAAAAEAAAAAAAAAAQ",
            "version: 0\ntopic_id: AAAAAAAAAAEAAAAAAAAAAQ\n",
            "version: 0\n\ntopic_id:  AAAAAAAAAAEAAAAAAAAAAQ \n\n",
        ] {
            std::fs::write(dir.join(PARTITION_METADATA), text).unwrap();
            claim_partition_dir(&dir, id).unwrap();
            assert!(dir.join("00000000000000000000.log").exists(), "{text:?}");
        }
        // Damaged files: an error naming the file, and nothing moved or rewritten.
        for text in [
            "",
            "version: 0\n",
            "garbage",
            "version: 1\ntopic_id: AAAAAAAAAAEAAAAAAAAAAQ",
            "version: 0\ntopic_id: short",
        ] {
            std::fs::write(dir.join(PARTITION_METADATA), text).unwrap();
            let err = claim_partition_dir(&dir, id).unwrap_err();
            assert!(err.to_string().contains("partition.metadata"), "{err}");
            assert!(dir.join("00000000000000000000.log").exists(), "{text:?}");
            assert_eq!(
                std::fs::read_to_string(dir.join(PARTITION_METADATA)).unwrap(),
                text
            );
        }
        // A missing file is written as Kafka writes it, and the data is adopted.
        std::fs::remove_file(dir.join(PARTITION_METADATA)).unwrap();
        claim_partition_dir(&dir, id).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(PARTITION_METADATA)).unwrap(),
            "version: 0\ntopic_id: AAAAAAAAAAEAAAAAAAAAAQ"
        );
        assert!(dir.join("00000000000000000000.log").exists());
    }
}
