//! The group coordinator: the consumer groups (classic and KIP-848) and committed offsets of
//! the `__consumer_offsets` partitions this broker leads.
//!
//! A group belongs to partition `abs(java_hash(group_id)) % partitions` of `__consumer_offsets`
//! (Kafka's rule, so a Kafka client and a Kafka tool agree with us on who coordinates what).
//! When this broker becomes leader of such a partition (`on_replicas_changed`) it replays the
//! partition's records (offset commits and group metadata, in Kafka's formats) into memory;
//! when it stops leading it forgets those groups. Every change that must survive a restart
//! is appended to the partition before the client is answered.
//!
//! All state sits behind one mutex: group operations are rare next to produce and fetch, and
//! one lock makes every transition atomic. Nothing waits while holding it; JoinGroup and
//! SyncGroup park a oneshot sender in the member and await the receiver outside the lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_log::parse_record_set;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::assignor::TopicAssignment;
use super::classic::{ClassicGroup, GroupState, JoinResult, Member, SyncResult};
use super::consumer::{ConsumerGroup, HeartbeatRequest, HeartbeatResult, TopicView};
use super::records::{
    self, decode_group_metadata_value, decode_key, decode_offset_commit_value,
    encode_group_metadata_value, encode_offset_commit_value, group_metadata_key, offset_commit_key,
    CoordinatorKey, GroupMetadataValue, OffsetCommitValue,
};
use crate::clock::now_ms;
use crate::config::GroupConfig;
use crate::metadata::MetadataImage;
use crate::replica::{Partition, ReplicaManager};

/// The error code for success.
pub const NONE: i16 = 0;

/// Kafka's name for the offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode` over UTF-16 code units, as Kafka hashes group ids.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Strings in `__consumer_offsets` records carry an int16 length: longer ones cannot be stored.
fn fits_record(s: &str) -> bool {
    s.len() <= i16::MAX as usize
}

/// Kafka's `Utils.abs(groupId.hashCode) % partitions`.
pub fn partition_for_group(group_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// One member's JoinGroup, as the handler decoded it.
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and an id (KIP-394).
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a static leader that rejoins may be told to skip the assignment.
    pub supports_skip_assignment: bool,
}

pub enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: HashMap<String, Bytes>,
}

/// One partition's offset in an OffsetCommit.
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A group as DescribeGroups shows it.
pub struct GroupDescription {
    pub error: i16,
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<DescribedMember>,
}

pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

/// A KIP-848 group as ConsumerGroupDescribe shows it.
pub struct ConsumerGroupDescription {
    pub error: i16,
    pub group_id: String,
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: TopicAssignment,
    pub target_assignment: TopicAssignment,
}

/// The topics a KIP-848 assignor may hand out: every non-internal topic by name.
pub fn topic_view(image: &MetadataImage) -> TopicView {
    image
        .topics
        .values()
        .filter(|t| !t.is_internal())
        .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
        .collect()
}

struct Inner {
    /// Partitions of `__consumer_offsets` (0 while the topic does not exist).
    partition_count: i32,
    /// The partitions this broker leads and has loaded.
    owned: HashMap<i32, Arc<Partition>>,
    groups: HashMap<String, ClassicGroup>,
    /// KIP-848 groups; a group id is in at most one of the two maps.
    consumer_groups: HashMap<String, ConsumerGroup>,
    last_offset_expiry: Instant,
}

impl Inner {
    /// The committed offsets of a group of either kind.
    fn offsets_mut(
        &mut self,
        group_id: &str,
    ) -> Option<&mut BTreeMap<(String, i32), OffsetCommitValue>> {
        match self.groups.get_mut(group_id) {
            Some(g) => Some(&mut g.offsets),
            None => self
                .consumer_groups
                .get_mut(group_id)
                .map(|g| &mut g.offsets),
        }
    }
}

pub struct GroupCoordinator {
    broker_id: i32,
    config: GroupConfig,
    inner: Mutex<Inner>,
}

type Rec = (Bytes, Option<Bytes>);

impl GroupCoordinator {
    pub fn new(broker_id: i32, config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator {
            broker_id,
            config,
            inner: Mutex::new(Inner {
                partition_count: 0,
                owned: HashMap::new(),
                groups: HashMap::new(),
                consumer_groups: HashMap::new(),
                last_offset_expiry: Instant::now(),
            }),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows leadership of `__consumer_offsets`: loads the partitions this broker now
    /// leads, forgets the groups of those it no longer leads.
    pub fn on_replicas_changed(&self, image: &MetadataImage, replicas: &ReplicaManager) {
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            let mut inner = self.lock();
            inner.partition_count = 0;
            inner.owned.clear();
            inner.groups.clear();
            inner.consumer_groups.clear();
            return;
        };
        let led: HashSet<i32> = topic
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.leader == self.broker_id)
            .map(|(i, _)| i as i32)
            .collect();
        let mut inner = self.lock();
        inner.partition_count = topic.partitions.len() as i32;
        // Partitions no longer led here, or reopened by the replica manager since we loaded
        // them (a new leadership term): forget them (and reload the latter below).
        let lost: Vec<i32> = inner
            .owned
            .iter()
            .filter(|(p, part)| {
                !led.contains(p)
                    || !replicas
                        .partition(OFFSETS_TOPIC, **p)
                        .is_some_and(|current| Arc::ptr_eq(&current, part))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in lost {
            inner.owned.remove(&p);
            inner.groups.retain(|_, g| g.partition != p);
            inner.consumer_groups.retain(|_, g| g.partition != p);
            info!(
                partition = p,
                "no longer coordinator for this offsets partition"
            );
        }
        let mut to_load: Vec<i32> = led
            .iter()
            .copied()
            .filter(|p| !inner.owned.contains_key(p))
            .collect();
        to_load.sort_unstable();
        for p in to_load {
            let Some(partition) = replicas.partition(OFFSETS_TOPIC, p) else {
                continue;
            };
            match load_partition(&partition, p) {
                Ok(groups) => {
                    let n = groups.len();
                    for g in groups {
                        inner.groups.insert(g.group_id.clone(), g);
                    }
                    inner.owned.insert(p, partition);
                    if n > 0 {
                        info!(
                            partition = p,
                            groups = n,
                            "loaded groups from __consumer_offsets"
                        );
                    }
                }
                Err(e) => warn!(partition = p, error = %e, "cannot load offsets partition"),
            }
        }
    }

    /// The offsets partition of a group, if this broker coordinates it.
    fn coordinator_partition(&self, inner: &Inner, group_id: &str) -> Result<i32, E> {
        if inner.partition_count == 0 {
            return Err(E::CoordinatorNotAvailable);
        }
        let p = partition_for_group(group_id, inner.partition_count);
        if inner.owned.contains_key(&p) {
            Ok(p)
        } else {
            Err(E::NotCoordinator)
        }
    }

    /// Appends records to the group's offsets partition (one batch, so it is atomic).
    fn store(inner: &Inner, partition: i32, recs: Vec<Rec>) -> Result<(), E> {
        if recs.is_empty() {
            return Ok(());
        }
        let Some(p) = inner.owned.get(&partition) else {
            return Err(E::NotCoordinator);
        };
        let ts = now_ms();
        let records: Vec<Record> = recs
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder keeps records in one batch while offset - sequence is constant.
                sequence: i as i32 - 1,
                timestamp: ts,
                key: Some(key),
                value,
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| {
            warn!(error = %e, "cannot encode offsets batch");
            E::UnknownServerError
        })?;
        let headers = parse_record_set(&buf, u32::MAX).map_err(|e| {
            warn!(error = %e, "offsets batch does not parse");
            E::UnknownServerError
        })?;
        match p.append(buf.freeze(), headers, -1) {
            Ok(_) => Ok(()),
            Err(e) => {
                warn!(partition, error = %e, "cannot append to __consumer_offsets");
                // Kafka's mapping of storage failures for the coordinator's writes.
                Err(match e.error_code() {
                    19 | 20 => E::CoordinatorNotAvailable,
                    10 => E::InvalidCommitOffsetSize,
                    _ => E::NotCoordinator,
                })
            }
        }
    }

    pub fn join(&self, req: JoinRequest) -> Pending<JoinResult> {
        let now = Instant::now();
        let ready = |r: JoinResult| Pending::Ready(r);
        if req.group_id.is_empty() || !fits_record(&req.group_id) {
            return ready(JoinResult::error(&req.member_id, E::InvalidGroupId));
        }
        if req
            .group_instance_id
            .as_deref()
            .is_some_and(|i| !fits_record(i))
        {
            return ready(JoinResult::error(&req.member_id, E::InvalidRequest));
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return ready(JoinResult::error(&req.member_id, E::InvalidSessionTimeout));
        }
        let mut inner = self.lock();
        let partition = match self.coordinator_partition(&inner, &req.group_id) {
            Ok(p) => p,
            Err(e) => return ready(JoinResult::error(&req.member_id, e)),
        };
        if inner.consumer_groups.contains_key(&req.group_id) {
            return ready(JoinResult::error(
                &req.member_id,
                E::InconsistentGroupProtocol,
            ));
        }
        let initial_delay = self.config.initial_rebalance_delay;
        let max_size = self.config.max_size;
        let inner = &mut *inner;
        let group = inner
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| ClassicGroup::new(req.group_id.clone(), partition));
        if group.state == GroupState::Dead {
            return ready(JoinResult::error(
                &req.member_id,
                E::CoordinatorNotAvailable,
            ));
        }
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return ready(JoinResult::error(
                &req.member_id,
                E::InconsistentGroupProtocol,
            ));
        }
        let session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        let rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        let (tx, rx) = oneshot::channel();

        if req.member_id.is_empty() {
            // A static member coming back with a new incarnation.
            if let Some(instance) = &req.group_instance_id {
                if let Some(old_id) = group.static_members.get(instance).cloned() {
                    let new_id = format!("{instance}-{}", uuid::Uuid::new_v4());
                    info!(group = %req.group_id, instance = %instance, old = %old_id, new = %new_id,
                        "static member rejoined with a new member id");
                    group.replace_static_member(instance, &old_id, &new_id);
                    if group.state == GroupState::Stable
                        && group.protocols_unchanged(&new_id, &req.protocols)
                    {
                        // Same subscription: no rebalance, the member keeps its assignment.
                        if let Some(m) = group.members.get_mut(&new_id) {
                            m.touch(now);
                            m.session_timeout = session_timeout;
                            m.rebalance_timeout = rebalance_timeout;
                        }
                        let value = group.metadata_value();
                        let is_leader = group.leader_id.as_deref() == Some(new_id.as_str());
                        let skip = is_leader && req.supports_skip_assignment;
                        let mut result = group.current_join_result(&new_id, skip);
                        if is_leader && !skip {
                            // Kafka's answer to a static leader that cannot skip the assignment
                            // (JoinGroup < v9): the OLD leader id, so the client sees it is not
                            // the leader and just syncs to get its assignment back.
                            result.leader = old_id.clone();
                            result.members.clear();
                        }
                        let recs = vec![(
                            group_metadata_key(&group.group_id),
                            Some(encode_group_metadata_value(&value)),
                        )];
                        if let Err(e) = Self::store(inner, partition, recs) {
                            return ready(JoinResult::error(&new_id, e));
                        }
                        return ready(result);
                    }
                    group.update_member(
                        &new_id,
                        req.protocols,
                        session_timeout,
                        rebalance_timeout,
                        tx,
                        now,
                    );
                    if group.state != GroupState::PreparingRebalance {
                        group.prepare_rebalance(now, initial_delay);
                    }
                    self.try_complete_join(inner, &req.group_id, now);
                    return Pending::Wait(rx);
                }
            }
            if group.members.len() + group.pending_members.len() >= max_size {
                return ready(JoinResult::error("", E::GroupMaxSizeReached));
            }
            let prefix = req
                .group_instance_id
                .clone()
                .unwrap_or_else(|| req.client_id.clone());
            let member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            if req.group_instance_id.is_none() && req.require_known_member_id {
                group
                    .pending_members
                    .insert(member_id.clone(), now + session_timeout);
                return ready(JoinResult::error(&member_id, E::MemberIdRequired));
            }
            self.add_member_and_rebalance(inner, &req, member_id, tx, now);
            return Pending::Wait(rx);
        }

        // A member that already has an id.
        let member_id = req.member_id.clone();
        if group.pending_members.remove(&member_id).is_some() {
            self.add_member_and_rebalance(inner, &req, member_id, tx, now);
            return Pending::Wait(rx);
        }
        if group.is_fenced(&member_id, req.group_instance_id.as_deref()) {
            return ready(JoinResult::error(&member_id, E::FencedInstanceId));
        }
        if !group.members.contains_key(&member_id) {
            return ready(JoinResult::error(&member_id, E::UnknownMemberId));
        }
        match group.state {
            GroupState::PreparingRebalance => {
                group.update_member(
                    &member_id,
                    req.protocols,
                    session_timeout,
                    rebalance_timeout,
                    tx,
                    now,
                );
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let is_leader = group.leader_id.as_deref() == Some(member_id.as_str());
                let unchanged = group.protocols_unchanged(&member_id, &req.protocols);
                let stays = if group.state == GroupState::Stable {
                    unchanged && !is_leader
                } else {
                    unchanged
                };
                if stays {
                    if let Some(m) = group.members.get_mut(&member_id) {
                        m.touch(now);
                    }
                    return ready(group.current_join_result(&member_id, false));
                }
                group.update_member(
                    &member_id,
                    req.protocols,
                    session_timeout,
                    rebalance_timeout,
                    tx,
                    now,
                );
                group.prepare_rebalance(now, Duration::ZERO);
            }
            GroupState::Empty | GroupState::Dead => {
                return ready(JoinResult::error(&member_id, E::UnknownMemberId));
            }
        }
        self.try_complete_join(inner, &req.group_id, now);
        Pending::Wait(rx)
    }

    fn add_member_and_rebalance(
        &self,
        inner: &mut Inner,
        req: &JoinRequest,
        member_id: String,
        waiter: oneshot::Sender<JoinResult>,
        now: Instant,
    ) {
        let Some(group) = inner.groups.get_mut(&req.group_id) else {
            return;
        };
        let member = Member {
            member_id,
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout: Duration::from_millis(req.session_timeout_ms as u64),
            rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(waiter),
            awaiting_sync: None,
            heartbeat_deadline: now,
            join_seq: 0,
            is_new: true,
        };
        let was_empty = group.state == GroupState::Empty;
        group.add_member(member, now);
        match group.state {
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance => {
                let delay = if was_empty {
                    self.config.initial_rebalance_delay
                } else {
                    Duration::ZERO
                };
                group.prepare_rebalance(now, delay);
            }
            _ => {}
        }
        self.try_complete_join(inner, &req.group_id, now);
    }

    /// Ends the join phase if it can; stores the group if it became empty.
    fn try_complete_join(&self, inner: &mut Inner, group_id: &str, now: Instant) {
        let Some(group) = inner.groups.get_mut(group_id) else {
            return;
        };
        if group.can_complete_join(now) {
            if let Some(value) = group.complete_join(now) {
                let partition = group.partition;
                let recs = vec![(
                    group_metadata_key(group_id),
                    Some(encode_group_metadata_value(&value)),
                )];
                if let Err(e) = Self::store(inner, partition, recs) {
                    warn!(group = group_id, error = ?e, "cannot store empty group");
                }
            }
        }
    }

    pub fn sync(&self, req: SyncRequest) -> Pending<SyncResult> {
        let now = Instant::now();
        let ready = |e: E| Pending::Ready(SyncResult::error(e));
        if req.group_id.is_empty() {
            return ready(E::InvalidGroupId);
        }
        let mut inner = self.lock();
        let partition = match self.coordinator_partition(&inner, &req.group_id) {
            Ok(p) => p,
            Err(e) => return ready(e),
        };
        let inner = &mut *inner;
        let Some(group) = inner.groups.get_mut(&req.group_id) else {
            return ready(E::UnknownMemberId);
        };
        if !group.members.contains_key(&req.member_id) {
            return ready(E::UnknownMemberId);
        }
        if group.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return ready(E::FencedInstanceId);
        }
        if req.generation_id != group.generation_id {
            return ready(E::IllegalGeneration);
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|p| Some(p) != group.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != group.protocol_name.as_ref())
        {
            return ready(E::InconsistentGroupProtocol);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => ready(E::UnknownMemberId),
            GroupState::PreparingRebalance => ready(E::RebalanceInProgress),
            GroupState::Stable => {
                let m = group.members.get_mut(&req.member_id);
                let assignment = m
                    .map(|m| {
                        m.touch(now);
                        m.assignment.clone()
                    })
                    .unwrap_or_default();
                Pending::Ready(SyncResult {
                    error: 0,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment,
                })
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.members.get_mut(&req.member_id) {
                    m.touch(now);
                    if let Some(old) = m.awaiting_sync.replace(tx) {
                        let _ = old.send(SyncResult::error(E::RebalanceInProgress));
                    }
                }
                if group.leader_id.as_deref() == Some(req.member_id.as_str()) {
                    group.apply_assignments(req.assignments);
                    let value = group.metadata_value();
                    let recs = vec![(
                        group_metadata_key(&req.group_id),
                        Some(encode_group_metadata_value(&value)),
                    )];
                    match Self::store(inner, partition, recs) {
                        Ok(()) => {
                            if let Some(group) = inner.groups.get_mut(&req.group_id) {
                                group.finish_sync();
                            }
                        }
                        Err(e) => {
                            if let Some(group) = inner.groups.get_mut(&req.group_id) {
                                for m in group.members.values_mut() {
                                    if let Some(tx) = m.awaiting_sync.take() {
                                        let _ = tx.send(SyncResult::error(e));
                                    }
                                }
                                group.prepare_rebalance(now, Duration::ZERO);
                            }
                        }
                    }
                }
                Pending::Wait(rx)
            }
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> i16 {
        self.heartbeat_error(group_id, generation_id, member_id, instance)
            .map_or(NONE, |e| e.code())
    }

    fn heartbeat_error(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> Option<E> {
        let now = Instant::now();
        if group_id.is_empty() {
            return Some(E::InvalidGroupId);
        }
        let mut inner = self.lock();
        if let Err(e) = self.coordinator_partition(&inner, group_id) {
            return Some(e);
        }
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Some(E::UnknownMemberId);
        };
        if group.is_fenced(member_id, instance) {
            return Some(E::FencedInstanceId);
        }
        if !group.members.contains_key(member_id) {
            return Some(E::UnknownMemberId);
        }
        if generation_id != group.generation_id {
            return Some(E::IllegalGeneration);
        }
        let state = group.state;
        if let Some(m) = group.members.get_mut(member_id) {
            m.touch(now);
        }
        match state {
            GroupState::Empty | GroupState::Dead => Some(E::UnknownMemberId),
            GroupState::PreparingRebalance => Some(E::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => None,
        }
    }

    /// LeaveGroup: one error per (member id, instance id), or a group-level error.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, E> {
        let now = Instant::now();
        if group_id.is_empty() {
            return Err(E::InvalidGroupId);
        }
        let mut inner = self.lock();
        self.coordinator_partition(&inner, group_id)?;
        let inner = &mut *inner;
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Err(E::UnknownMemberId);
        };
        let mut results = Vec::with_capacity(members.len());
        let mut removed_any = false;
        for (member_id, instance) in members {
            let target = match instance {
                Some(i) => match group.static_members.get(i) {
                    Some(id) if member_id.is_empty() || id == member_id => Ok(id.clone()),
                    Some(_) => Err(E::FencedInstanceId),
                    None => Err(E::UnknownMemberId),
                },
                None => {
                    if group.members.contains_key(member_id)
                        || group.pending_members.contains_key(member_id)
                    {
                        Ok(member_id.clone())
                    } else {
                        Err(E::UnknownMemberId)
                    }
                }
            };
            match target {
                Ok(id) => {
                    if group.pending_members.remove(&id).is_some() {
                        results.push(NONE);
                        continue;
                    }
                    info!(group = group_id, member = %id, "member left the group");
                    group.remove_member(&id);
                    removed_any = true;
                    results.push(NONE);
                }
                Err(e) => results.push(e.code()),
            }
        }
        if removed_any {
            group.after_member_removed(now);
            self.try_complete_join(inner, group_id, now);
        }
        Ok(results)
    }

    /// OffsetCommit: validates the member (unless it is a simple, generation -1 commit to a
    /// group without members) and stores the offsets in one batch.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
        entries: &[CommitEntry],
        topic_exists: &dyn Fn(&str, i32) -> bool,
    ) -> Result<Vec<i16>, E> {
        let now = Instant::now();
        if !fits_record(group_id) {
            return Err(E::InvalidGroupId);
        }
        let mut inner = self.lock();
        let partition = self.coordinator_partition(&inner, group_id)?;
        let inner = &mut *inner;
        let simple = generation_id < 0 && member_id.is_empty();
        if let Some(g) = inner.consumer_groups.get(group_id) {
            if !(simple && g.members.is_empty()) {
                g.validate_commit(member_id, generation_id)?;
            }
        } else {
            self.validate_classic_commit(
                inner,
                partition,
                group_id,
                generation_id,
                member_id,
                instance,
                now,
            )?;
        }
        let (results, recs, accepted) = self.commit_records(group_id, entries, topic_exists);
        match Self::store(inner, partition, recs) {
            Ok(()) => {
                if let Some(offsets) = inner.offsets_mut(group_id) {
                    offsets.extend(accepted);
                }
                Ok(results)
            }
            Err(err) => Ok(results
                .into_iter()
                .map(|r| if r == NONE { err.code() } else { r })
                .collect()),
        }
    }

    /// Kafka's checks of a classic group's OffsetCommit; a simple (generation -1) commit to an
    /// unknown group creates it, Empty.
    #[allow(clippy::too_many_arguments)]
    fn validate_classic_commit(
        &self,
        inner: &mut Inner,
        partition: i32,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
        now: Instant,
    ) -> Result<(), E> {
        if !inner.groups.contains_key(group_id) {
            if generation_id >= 0 {
                return Err(E::IllegalGeneration);
            }
            inner.groups.insert(
                group_id.to_string(),
                ClassicGroup::new(group_id.to_string(), partition),
            );
        }
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Err(E::CoordinatorNotAvailable);
        };
        let simple = generation_id < 0 && member_id.is_empty();
        if group.state == GroupState::Dead {
            return Err(E::CoordinatorNotAvailable);
        }
        if simple {
            if group.state != GroupState::Empty {
                return Err(E::UnknownMemberId);
            }
        } else {
            if group.is_fenced(member_id, instance) {
                return Err(E::FencedInstanceId);
            }
            if group.state == GroupState::CompletingRebalance {
                return Err(E::RebalanceInProgress);
            }
            if !group.members.contains_key(member_id) {
                return Err(E::UnknownMemberId);
            }
            if generation_id != group.generation_id {
                return Err(E::IllegalGeneration);
            }
            if let Some(m) = group.members.get_mut(member_id) {
                m.touch(now);
            }
        }
        Ok(())
    }

    /// Validates each entry of an OffsetCommit and builds its record.
    #[allow(clippy::type_complexity)]
    fn commit_records(
        &self,
        group_id: &str,
        entries: &[CommitEntry],
        topic_exists: &dyn Fn(&str, i32) -> bool,
    ) -> (Vec<i16>, Vec<Rec>, Vec<((String, i32), OffsetCommitValue)>) {
        let ts = now_ms();
        let mut results = Vec::with_capacity(entries.len());
        let mut recs = Vec::new();
        let mut accepted = Vec::new();
        for e in entries {
            let meta = e.metadata.clone().unwrap_or_default();
            if !topic_exists(&e.topic, e.partition) {
                results.push(E::UnknownTopicOrPartition.code());
            } else if meta.len() > self.config.offset_metadata_max_bytes || !fits_record(&meta) {
                results.push(E::OffsetMetadataTooLarge.code());
            } else {
                let value = OffsetCommitValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: meta,
                    commit_timestamp: ts,
                    expire_timestamp: -1,
                };
                recs.push((
                    offset_commit_key(group_id, &e.topic, e.partition),
                    Some(encode_offset_commit_value(&value)),
                ));
                accepted.push(((e.topic.clone(), e.partition), value));
                results.push(NONE);
            }
        }
        (results, recs, accepted)
    }

    /// OffsetFetch: the committed offsets of `topics` (all of the group's if None).
    #[allow(clippy::type_complexity)]
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<(String, Vec<(i32, Option<OffsetCommitValue>)>)>, E> {
        let inner = self.lock();
        self.coordinator_partition(&inner, group_id)?;
        let offsets = inner
            .groups
            .get(group_id)
            .map(|g| &g.offsets)
            .or_else(|| inner.consumer_groups.get(group_id).map(|g| &g.offsets));
        let out = match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, parts)| {
                    let parts = parts
                        .into_iter()
                        .map(|p| {
                            let v = offsets.and_then(|o| o.get(&(topic.clone(), p)).cloned());
                            (p, v)
                        })
                        .collect();
                    (topic, parts)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetCommitValue>)>> =
                    BTreeMap::new();
                if let Some(o) = offsets {
                    for ((t, p), v) in o {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push((*p, Some(v.clone())));
                    }
                }
                by_topic.into_iter().collect()
            }
        };
        Ok(out)
    }

    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let inner = self.lock();
        let mut d = GroupDescription {
            error: 0,
            group_id: group_id.to_string(),
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        if let Err(e) = self.coordinator_partition(&inner, group_id) {
            d.error = e.code();
            return d;
        }
        if let Some(g) = inner.consumer_groups.get(group_id) {
            d.state = g.state_name();
            d.protocol_type = "consumer".to_string();
            d.members = g
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: Bytes::new(),
                    assignment: Bytes::new(),
                })
                .collect();
            return d;
        }
        let Some(g) = inner.groups.get(group_id) else {
            d.error = E::GroupIdNotFound.code();
            return d;
        };
        d.state = g.state.name();
        d.protocol_type = g.protocol_type.clone().unwrap_or_default();
        let stable = g.state == GroupState::Stable;
        if stable {
            d.protocol = g.protocol_name.clone().unwrap_or_default();
        }
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let mut members: Vec<&Member> = g.members.values().collect();
        members.sort_by_key(|m| m.join_seq);
        d.members = members
            .into_iter()
            .map(|m| DescribedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        d
    }

    pub fn list(&self, states: &[String]) -> Vec<ListedGroup> {
        let inner = self.lock();
        let mut out: Vec<ListedGroup> = inner
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: "classic",
            })
            .collect();
        out.extend(
            inner
                .consumer_groups
                .values()
                .filter(|g| {
                    states.is_empty()
                        || states
                            .iter()
                            .any(|s| s.eq_ignore_ascii_case(g.state_name()))
                })
                .map(|g| ListedGroup {
                    group_id: g.group_id.clone(),
                    protocol_type: "consumer".to_string(),
                    state: g.state_name(),
                    group_type: "consumer",
                }),
        );
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DeleteGroups: removes empty groups and their offsets (tombstones in the log).
    pub fn delete_groups(&self, group_ids: &[String]) -> Vec<i16> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        group_ids
            .iter()
            .map(|id| {
                let partition = match self.coordinator_partition(inner, id) {
                    Ok(p) => p,
                    Err(e) => return e.code(),
                };
                let offsets = match (inner.consumer_groups.get(id), inner.groups.get(id)) {
                    (Some(g), _) if !g.members.is_empty() => return E::NonEmptyGroup.code(),
                    (Some(g), _) => &g.offsets,
                    (None, Some(g)) if g.state == GroupState::Dead => {
                        return E::GroupIdNotFound.code()
                    }
                    (None, Some(g)) if g.state != GroupState::Empty || !g.is_empty_of_members() => {
                        return E::NonEmptyGroup.code()
                    }
                    (None, Some(g)) => &g.offsets,
                    (None, None) => return E::GroupIdNotFound.code(),
                };
                let mut recs: Vec<Rec> = offsets
                    .keys()
                    .map(|(t, p)| (offset_commit_key(id, t, *p), None))
                    .collect();
                recs.push((group_metadata_key(id), None));
                match Self::store(inner, partition, recs) {
                    Ok(()) => {
                        inner.groups.remove(id);
                        inner.consumer_groups.remove(id);
                        info!(group = %id, "deleted group");
                        NONE
                    }
                    Err(e) => e.code(),
                }
            })
            .collect()
    }

    /// OffsetDelete: removes committed offsets of partitions the group does not consume.
    #[allow(clippy::type_complexity)]
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Vec<(String, Vec<(i32, i16)>)>, E> {
        let mut inner = self.lock();
        let partition = self.coordinator_partition(&inner, group_id)?;
        let inner = &mut *inner;
        let (subscribed, offsets): (HashSet<String>, _) = match (
            inner.consumer_groups.get(group_id),
            inner.groups.get(group_id),
        ) {
            (Some(g), _) => (
                g.members
                    .values()
                    .flat_map(|m| m.subscribed_names.iter().cloned())
                    .collect(),
                &g.offsets,
            ),
            (None, None) => return Err(E::GroupIdNotFound),
            (None, Some(group)) => {
                if group.state == GroupState::Dead {
                    return Err(E::GroupIdNotFound);
                }
                let consumer = group.protocol_type.as_deref() == Some("consumer");
                if group.state != GroupState::Empty && !consumer {
                    return Err(E::NonEmptyGroup);
                }
                let subscribed = if group.state == GroupState::Empty {
                    HashSet::new()
                } else {
                    let protocol = group.protocol_name.clone().unwrap_or_default();
                    group
                        .members
                        .values()
                        .flat_map(|m| {
                            records::subscribed_topics(&m.metadata_for(&protocol))
                                .unwrap_or_default()
                        })
                        .collect()
                };
                (subscribed, &group.offsets)
            }
        };
        let mut recs = Vec::new();
        let mut removed = Vec::new();
        let out: Vec<(String, Vec<(i32, i16)>)> = topics
            .iter()
            .map(|(t, parts)| {
                let results = parts
                    .iter()
                    .map(|p| {
                        if subscribed.contains(t) {
                            (*p, E::GroupSubscribedToTopic.code())
                        } else {
                            if offsets.contains_key(&(t.clone(), *p)) {
                                recs.push((offset_commit_key(group_id, t, *p), None));
                                removed.push((t.clone(), *p));
                            }
                            (*p, NONE)
                        }
                    })
                    .collect();
                (t.clone(), results)
            })
            .collect();
        Self::store(inner, partition, recs)?;
        if let Some(offsets) = inner.offsets_mut(group_id) {
            for k in removed {
                offsets.remove(&k);
            }
        }
        Ok(out)
    }

    /// Runs the groups' timers (session expiry, join and sync deadlines) and, every
    /// `offsets.retention.check.interval.ms`, offset expiry. Called every 100 ms.
    pub fn tick(&self, image: &MetadataImage) {
        let now = Instant::now();
        let topics = topic_view(image);
        let mut inner = self.lock();
        let inner = &mut *inner;
        for g in inner.consumer_groups.values_mut() {
            g.tick(now, &topics);
        }
        let mut to_store: Vec<(i32, Rec)> = Vec::new();
        for g in inner.groups.values_mut() {
            if let Some(value) = g.tick(now) {
                to_store.push((
                    g.partition,
                    (
                        group_metadata_key(&g.group_id),
                        Some(encode_group_metadata_value(&value)),
                    ),
                ));
            }
        }
        if now.duration_since(inner.last_offset_expiry)
            >= self.config.offsets_retention_check_interval
        {
            inner.last_offset_expiry = now;
            to_store.extend(self.expire_offsets(inner));
        }
        let mut by_partition: HashMap<i32, Vec<Rec>> = HashMap::new();
        for (p, r) in to_store {
            by_partition.entry(p).or_default().push(r);
        }
        for (p, recs) in by_partition {
            if let Err(e) = Self::store(inner, p, recs) {
                warn!(partition = p, error = ?e, "cannot store group changes");
            }
        }
    }

    /// Kafka's offset retention: an empty group's offsets expire `offsets.retention.minutes`
    /// after the later of their commit and the group becoming empty; a group left with no
    /// offsets and no members is removed.
    fn expire_offsets(&self, inner: &mut Inner) -> Vec<(i32, Rec)> {
        let now = now_ms();
        let retention = self.config.offsets_retention.as_millis() as i64;
        let mut out = Vec::new();
        let mut dead = Vec::new();
        // An offset expires at its explicit expire timestamp (OffsetCommit v1's retention), else
        // `retention` after the later of its commit and the group becoming empty.
        let mut expire =
            |group_id: &str,
             partition: i32,
             since: i64,
             offsets: &mut BTreeMap<(String, i32), OffsetCommitValue>| {
                offsets.retain(|(t, p), v| {
                    let expired = if v.expire_timestamp > 0 {
                        v.expire_timestamp <= now
                    } else {
                        v.commit_timestamp.max(since) + retention <= now
                    };
                    if expired {
                        out.push((partition, (offset_commit_key(group_id, t, *p), None)));
                    }
                    !expired
                });
            };
        for g in inner.groups.values_mut() {
            if g.state != GroupState::Empty || !g.is_empty_of_members() {
                continue;
            }
            expire(
                &g.group_id,
                g.partition,
                g.state_timestamp_ms,
                &mut g.offsets,
            );
        }
        for g in inner.consumer_groups.values_mut() {
            if g.members.is_empty() {
                expire(
                    &g.group_id,
                    g.partition,
                    g.state_timestamp_ms,
                    &mut g.offsets,
                );
            }
        }
        for g in inner.groups.values() {
            if g.state == GroupState::Empty && g.is_empty_of_members() && g.offsets.is_empty() {
                out.push((g.partition, (group_metadata_key(&g.group_id), None)));
                dead.push(g.group_id.clone());
            }
        }
        for id in dead {
            info!(group = %id, "removing group with no members and no offsets");
            inner.groups.remove(&id);
        }
        inner
            .consumer_groups
            .retain(|_, g| !g.members.is_empty() || !g.offsets.is_empty());
        out
    }

    /// ConsumerGroupHeartbeat (KIP-848). An empty classic group (one that only has committed
    /// offsets) becomes a consumer group, keeping its offsets, as in Kafka.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        req: HeartbeatRequest,
        image: &MetadataImage,
    ) -> Result<HeartbeatResult, E> {
        let now = Instant::now();
        if group_id.is_empty() {
            return Err(E::InvalidRequest);
        }
        if req.member_epoch > 0 && req.member_id.is_empty() {
            return Err(E::InvalidRequest);
        }
        if let Some(a) = &req.server_assignor {
            if !a.is_empty() && !super::assignor::is_supported(a) {
                return Err(E::UnsupportedAssignor);
            }
        }
        let mut inner = self.lock();
        let partition = self.coordinator_partition(&inner, group_id)?;
        let inner = &mut *inner;
        if !inner.consumer_groups.contains_key(group_id) {
            if req.member_epoch != 0 {
                return Err(E::UnknownMemberId);
            }
            let mut group = ConsumerGroup::new(
                group_id.to_string(),
                partition,
                &self.config.consumer_assignor,
            );
            if let Some(classic) = inner.groups.get(group_id) {
                if !classic.is_empty_of_members() || classic.state != GroupState::Empty {
                    return Err(E::GroupIdNotFound);
                }
                group.offsets = classic.offsets.clone();
                inner.groups.remove(group_id);
                info!(
                    group = group_id,
                    "empty classic group converted to a consumer group"
                );
            }
            inner.consumer_groups.insert(group_id.to_string(), group);
        }
        let Some(group) = inner.consumer_groups.get_mut(group_id) else {
            return Err(E::CoordinatorNotAvailable);
        };
        if req.member_epoch == 0
            && !group.members.contains_key(&req.member_id)
            && group.members.len() >= self.config.consumer_max_size
        {
            return Err(E::GroupMaxSizeReached);
        }
        group.heartbeat(
            req,
            &topic_view(image),
            self.config.consumer_session_timeout,
            now,
        )
    }

    /// ConsumerGroupDescribe (KIP-848).
    pub fn consumer_describe(&self, group_id: &str) -> ConsumerGroupDescription {
        let inner = self.lock();
        let mut d = ConsumerGroupDescription {
            error: 0,
            group_id: group_id.to_string(),
            state: "Dead",
            group_epoch: -1,
            assignment_epoch: -1,
            assignor: String::new(),
            members: Vec::new(),
        };
        if let Err(e) = self.coordinator_partition(&inner, group_id) {
            d.error = e.code();
            return d;
        }
        let Some(g) = inner.consumer_groups.get(group_id) else {
            d.error = E::GroupIdNotFound.code();
            return d;
        };
        d.state = g.state_name();
        d.group_epoch = g.group_epoch;
        d.assignment_epoch = g.assignment_epoch;
        d.assignor = g
            .members
            .values()
            .find_map(|m| m.server_assignor.clone())
            .unwrap_or_else(|| g.default_assignor.clone());
        d.members = g
            .members
            .values()
            .map(|m| ConsumerMemberDescription {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.member_epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_names.iter().cloned().collect(),
                subscribed_topic_regex: m.subscribed_regex.clone(),
                assignment: m.assigned.clone(),
                target_assignment: g.target.get(&m.member_id).cloned().unwrap_or_default(),
            })
            .collect();
        d
    }

    /// Groups this broker coordinates (for tests and logs).
    pub fn group_count(&self) -> usize {
        self.lock().groups.len()
    }
}

/// Replays one `__consumer_offsets` partition into groups.
fn load_partition(partition: &Partition, index: i32) -> Result<Vec<ClassicGroup>, String> {
    let (start, high_watermark, _) = partition.offsets();
    let mut offset = start;
    let mut offsets: HashMap<(String, String, i32), Option<OffsetCommitValue>> = HashMap::new();
    let mut metadata: HashMap<String, Option<GroupMetadataValue>> = HashMap::new();
    while offset < high_watermark {
        let read = partition
            .read(offset, 1 << 20, true)
            .map_err(|e| e.to_string())?;
        let Some(slice) = read.records else {
            break;
        };
        let records = slice.read().map_err(|e| e.to_string())?;
        let headers = parse_record_set(&records, u32::MAX).map_err(|e| e.to_string())?;
        let mut pos = 0usize;
        for h in &headers {
            let len = 12 + h.batch_length.max(0) as usize;
            let end = (pos + len).min(records.len());
            let mut batch = records.slice(pos..end);
            pos = end;
            offset = h.base_offset + h.last_offset_delta as i64 + 1;
            if h.is_control() {
                continue;
            }
            let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| e.to_string())?;
            for r in set.records {
                let Some(key) = r.key else { continue };
                match decode_key(&key) {
                    Ok(CoordinatorKey::Offset {
                        group,
                        topic,
                        partition,
                    }) => {
                        let value = match r.value {
                            Some(v) => match decode_offset_commit_value(&v) {
                                Ok(v) => Some(v),
                                Err(e) => {
                                    warn!(error = %e, "skipping unreadable offset commit");
                                    continue;
                                }
                            },
                            None => None,
                        };
                        offsets.insert((group, topic, partition), value);
                    }
                    Ok(CoordinatorKey::Group { group }) => {
                        let value = match r.value {
                            Some(v) => match decode_group_metadata_value(&v) {
                                Ok(v) => Some(v),
                                Err(e) => {
                                    warn!(error = %e, "skipping unreadable group metadata");
                                    continue;
                                }
                            },
                            None => None,
                        };
                        metadata.insert(group, value);
                    }
                    Ok(CoordinatorKey::Other(_)) => {}
                    Err(e) => warn!(error = %e, "skipping unreadable __consumer_offsets key"),
                }
            }
        }
    }
    let now = Instant::now();
    let mut groups: HashMap<String, ClassicGroup> = HashMap::new();
    for (group, value) in metadata {
        if let Some(value) = value {
            let mut g = ClassicGroup::new(group.clone(), index);
            g.restore(value, now);
            groups.insert(group, g);
        }
    }
    for ((group, topic, p), value) in offsets {
        if let Some(value) = value {
            groups
                .entry(group.clone())
                .or_insert_with(|| ClassicGroup::new(group, index))
                .offsets
                .insert((topic, p), value);
        }
    }
    Ok(groups.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_partition_matches_kafka() {
        // Values of Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("test"), 3556498);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
        // Wrapping arithmetic as Java's int.
        let long = "consumer-group-with-a-long-name";
        let expected = long
            .bytes()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
        assert_eq!(java_string_hash(long), expected);
        assert!((0..50).contains(&partition_for_group(long, 50)));
    }
}
