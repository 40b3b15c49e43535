//! The group coordinator: which `__consumer_offsets` partitions this broker leads, the groups'
//! timers, and routing each group API to the part that does the work:
//!
//! - `classic_membership.rs`: JoinGroup, SyncGroup, Heartbeat, LeaveGroup on a classic group;
//! - `consumer.rs`: ConsumerGroupHeartbeat on a KIP-848 group;
//! - `offset_metadata_manager.rs`: committed offsets of groups of either kind;
//! - `group_metadata_manager.rs`: appending records to `__consumer_offsets` and replaying a
//!   partition when this broker becomes its leader (`on_replicas_changed`).
//!
//! A group belongs to partition `abs(java_hash(group_id)) % partitions` of `__consumer_offsets`
//! (Kafka's rule, so a Kafka client and a Kafka tool agree with us on who coordinates what).
//! Every change that must survive a restart is appended to that partition before the client
//! is answered.
//!
//! Locks. All group state sits behind one mutex (`inner`); group operations are rare next to
//! produce and fetch. Nothing waits while holding it: JoinGroup and SyncGroup park a oneshot
//! sender in the member and await the receiver outside the lock, and no append to the log
//! happens under it. A change that writes goes through `write`, in three steps under the
//! partition's `writes` mutex: (1) under `inner`, validate and change memory, and build the
//! records; (2) with `inner` released, append them; (3) under `inner` again, apply the result
//! (make committed offsets visible, answer the SyncGroup leader, or report the failure).
//!
//! Why the order stays right: `writes` (one per offsets partition, and a group lives in one
//! partition) is held from step 1 to step 3, so two writes to a partition never interleave:
//! records reach the log in the order their changes were made in memory, and the next write
//! sees the previous one applied. The same holds for the timers (`tick` takes the partition's
//! `writes` before changing its groups). What may run between steps 1 and 3 takes only
//! `inner` and writes nothing: reads (OffsetFetch, Describe, List: committed offsets are not
//! visible before they are stored) and a classic Heartbeat (which only moves a deadline).
//! Lock order: `writes`, then `inner`; never `writes` while holding `inner`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use kafka_protocol::error::ResponseError as E;
use tracing::{info, warn};

use super::classic::{ClassicGroup, GroupState, JoinResult, SyncResult};
use super::classic_membership::{self, JoinOutcome, SyncOutcome};
use super::consumer::{ConsumerGroup, HeartbeatRequest, HeartbeatResult, TopicView};
use super::describe;
use super::group_metadata_manager as store;
use super::offset_metadata_manager::{FetchedOffsets, OffsetMetadataManager};
use super::records::{self, fits_record, group_metadata_key, group_metadata_record, KeyValue};
use crate::clock::{Clock, Now, SystemClock};
use crate::config::GroupConfig;
use crate::metadata::MetadataImage;
use crate::replica::{Partition, ReplicaManager};

pub use super::classic_membership::{JoinRequest, Pending, SyncRequest};
pub use super::describe::{
    ConsumerGroupDescription, ConsumerMemberDescription, DescribedMember, GroupDescription,
    ListedGroup,
};
pub use super::offset_metadata_manager::CommitEntry;

/// The error code for success.
pub const NONE: i16 = 0;

pub use super::records::OFFSETS_TOPIC;

/// Java's `String.hashCode` over UTF-16 code units, as Kafka hashes group ids.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Kafka's `Utils.abs(groupId.hashCode) % partitions`.
pub fn partition_for_group(group_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

fn code(r: Result<(), E>) -> i16 {
    r.map_or_else(|e| e.code(), |()| NONE)
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

/// An offsets partition this broker leads and has loaded.
struct OwnedPartition {
    log: Arc<Partition>,
    /// Held for the whole of a write to this partition (see the module documentation).
    writes: Arc<Mutex<()>>,
}

struct Inner {
    /// Partitions of `__consumer_offsets` (0 while the topic does not exist).
    partition_count: i32,
    owned: HashMap<i32, OwnedPartition>,
    groups: HashMap<String, ClassicGroup>,
    /// KIP-848 groups; a group id is in at most one of the two maps.
    consumer_groups: HashMap<String, ConsumerGroup>,
    /// Committed offsets of both kinds of group.
    offsets: OffsetMetadataManager,
    last_offset_expiry: Instant,
}

impl Inner {
    /// The offsets partition of a group, if this broker coordinates it.
    fn partition_of(&self, group_id: &str) -> Result<i32, E> {
        // No `__consumer_offsets` known here yet: FindCoordinator creates it and names this
        // broker before the new partitions reach the coordinator. NOT_COORDINATOR sends the
        // client back to FindCoordinator, which every client retries quietly (KafkaJS treats
        // COORDINATOR_NOT_AVAILABLE from JoinGroup as fatal and restarts its consumer).
        if self.partition_count == 0 {
            return Err(E::NotCoordinator);
        }
        let p = partition_for_group(group_id, self.partition_count);
        if self.owned.contains_key(&p) {
            Ok(p)
        } else {
            Err(E::NotCoordinator)
        }
    }

    fn still_owns(&self, partition: i32, log: &Arc<Partition>) -> bool {
        self.owned
            .get(&partition)
            .is_some_and(|o| Arc::ptr_eq(&o.log, log))
    }
}

pub struct GroupCoordinator {
    broker_id: i32,
    config: GroupConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    /// Tests: runs between a write's append and its apply, to widen that window.
    #[cfg(test)]
    pub(super) after_append: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl GroupCoordinator {
    pub fn new(broker_id: i32, config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator::with_clock(broker_id, config, Arc::new(SystemClock))
    }

    /// A coordinator reading time from `clock` (a `ManualClock` in tests).
    pub fn with_clock(
        broker_id: i32,
        config: GroupConfig,
        clock: Arc<dyn Clock>,
    ) -> GroupCoordinator {
        let now = clock.now();
        GroupCoordinator {
            broker_id,
            config,
            clock,
            inner: Mutex::new(Inner {
                partition_count: 0,
                owned: HashMap::new(),
                groups: HashMap::new(),
                consumer_groups: HashMap::new(),
                offsets: OffsetMetadataManager::new(),
                last_offset_expiry: now,
            }),
            #[cfg(test)]
            after_append: std::sync::OnceLock::new(),
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
            inner.offsets.clear();
            return;
        };
        let led: HashSet<i32> = topic
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.leader == self.broker_id)
            .map(|(i, _)| i as i32)
            .collect();
        let now = self.clock.read();
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.partition_count = topic.partitions.len() as i32;
        // Partitions no longer led here, or reopened by the replica manager since we loaded
        // them (a new leadership term): forget them (and reload the latter below).
        let lost: Vec<i32> = inner
            .owned
            .iter()
            .filter(|(p, owned)| {
                !led.contains(p)
                    || !replicas
                        .partition(OFFSETS_TOPIC, **p)
                        .is_some_and(|current| Arc::ptr_eq(&current, &owned.log))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in &lost {
            inner.owned.remove(p);
            inner.groups.retain(|_, g| g.partition != *p);
            inner.consumer_groups.retain(|_, g| g.partition != *p);
            info!(
                partition = p,
                "no longer coordinator for this offsets partition"
            );
        }
        inner.offsets.retain_partitions(|p| !lost.contains(&p));
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
            match store::load_partition(&partition, p, now) {
                Ok(loaded) => {
                    let n = loaded.groups.len();
                    for g in loaded.groups {
                        inner.groups.insert(g.group_id.clone(), g);
                    }
                    for (group, topic, tp, value) in loaded.offsets {
                        inner.offsets.load(group, p, (topic, tp), value);
                    }
                    for (producer_id, pending) in loaded.pending_txn {
                        for (group, topic, tp, value) in pending {
                            inner.offsets.load_pending_txn(
                                producer_id,
                                group,
                                p,
                                (topic, tp),
                                value,
                            );
                        }
                    }
                    inner.owned.insert(
                        p,
                        OwnedPartition {
                            log: partition,
                            writes: Arc::new(Mutex::new(())),
                        },
                    );
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

    /// One write to a group's offsets partition: `prepare` (under the lock) changes memory and
    /// returns the records to store, the append runs with the lock released, and `apply`
    /// (under the lock again) gets the outcome. The partition's `writes` mutex is held
    /// throughout, so writes to a partition are appended and applied in the order they were
    /// prepared (see the module documentation).
    fn write<T, R>(
        &self,
        group_id: &str,
        prepare: impl FnOnce(&mut Inner, i32) -> Result<(Vec<KeyValue>, T), E>,
        apply: impl FnOnce(&mut Inner, T, Result<(), E>) -> R,
    ) -> Result<R, E> {
        self.write_as(group_id, None, prepare, apply)
    }

    /// `write`, the records stored as `producer`'s transactional batch when given.
    fn write_as<T, R>(
        &self,
        group_id: &str,
        producer: Option<(i64, i16)>,
        prepare: impl FnOnce(&mut Inner, i32) -> Result<(Vec<KeyValue>, T), E>,
        apply: impl FnOnce(&mut Inner, T, Result<(), E>) -> R,
    ) -> Result<R, E> {
        let (partition, log, writes) = {
            let inner = self.lock();
            let p = inner.partition_of(group_id)?;
            let owned = inner.owned.get(&p).ok_or(E::NotCoordinator)?;
            (p, owned.log.clone(), owned.writes.clone())
        };
        let _turn = writes.lock().unwrap_or_else(|p| p.into_inner());
        let (recs, state) = {
            let mut inner = self.lock();
            // Leadership may have moved while this write waited for its turn.
            if !inner.still_owns(partition, &log) {
                return Err(E::NotCoordinator);
            }
            prepare(&mut inner, partition)?
        };
        let stored = if recs.is_empty() {
            Ok(())
        } else {
            store::append(&log, recs, self.clock.now_ms(), producer).map_err(|e| {
                warn!(partition, error = %e, "cannot store group changes");
                e.response_error()
            })
        };
        #[cfg(test)]
        if let Some(hook) = self.after_append.get() {
            hook();
        }
        let mut inner = self.lock();
        // Leadership lost during the append: the partition's groups are gone from memory.
        let stored = stored.and_then(|()| {
            if inner.still_owns(partition, &log) {
                Ok(())
            } else {
                Err(E::NotCoordinator)
            }
        });
        Ok(apply(&mut inner, state, stored))
    }

    pub fn join(&self, req: JoinRequest) -> Pending<JoinResult> {
        let now = self.clock.read();
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
        let group_id = req.group_id.clone();
        let member_id = req.member_id.clone();
        let joined = self.write(
            &group_id,
            |inner, partition| {
                if inner.consumer_groups.contains_key(&group_id) {
                    return Err(E::InconsistentGroupProtocol);
                }
                let group = inner
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| ClassicGroup::new(group_id.clone(), partition, now.ms));
                let outcome = classic_membership::join(group, req, &self.config, now);
                let recs = outcome
                    .store
                    .iter()
                    .map(|v| group_metadata_record(&group_id, v))
                    .collect();
                Ok((recs, outcome))
            },
            |_, outcome: JoinOutcome, stored| match (stored, outcome.reply) {
                (Err(e), Pending::Ready(r)) if outcome.answer_needs_store => {
                    ready(JoinResult::error(&r.member_id, e))
                }
                (_, reply) => reply,
            },
        );
        joined.unwrap_or_else(|e| ready(JoinResult::error(&member_id, e)))
    }

    pub fn sync(&self, req: SyncRequest) -> Pending<SyncResult> {
        let now = self.clock.read();
        if req.group_id.is_empty() {
            return Pending::Ready(SyncResult::error(E::InvalidGroupId));
        }
        let group_id = req.group_id.clone();
        let synced = self.write(
            &group_id,
            |inner, _| {
                let group = inner.groups.get_mut(&group_id).ok_or(E::UnknownMemberId)?;
                match classic_membership::sync(group, req, now)? {
                    SyncOutcome::Reply(reply) => Ok((Vec::new(), (reply, None))),
                    SyncOutcome::Store {
                        rx,
                        value,
                        generation_id,
                    } => Ok((
                        vec![group_metadata_record(&group_id, &value)],
                        (Pending::Wait(rx), Some(generation_id)),
                    )),
                }
            },
            |inner, (reply, generation), stored| {
                if let Some(generation) = generation {
                    if let Some(group) = inner.groups.get_mut(&group_id) {
                        classic_membership::finish_sync(
                            group,
                            generation,
                            stored,
                            self.clock.read(),
                        );
                    }
                }
                reply
            },
        );
        synced.unwrap_or_else(|e| Pending::Ready(SyncResult::error(e)))
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

    /// A heartbeat only moves the member's deadline: it writes nothing, so it takes `inner`
    /// only and may run while a write to the group's partition is being appended.
    fn heartbeat_error(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> Option<E> {
        let now = self.clock.read();
        if group_id.is_empty() {
            return Some(E::InvalidGroupId);
        }
        let mut inner = self.lock();
        if let Err(e) = inner.partition_of(group_id) {
            return Some(e);
        }
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Some(E::UnknownMemberId);
        };
        classic_membership::heartbeat(group, generation_id, member_id, instance, now)
    }

    /// LeaveGroup: one error per (member id, instance id), or a group-level error.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, E> {
        let now = self.clock.read();
        if group_id.is_empty() {
            return Err(E::InvalidGroupId);
        }
        self.write(
            group_id,
            |inner, _| {
                let group = inner.groups.get_mut(group_id).ok_or(E::UnknownMemberId)?;
                let (results, value) = classic_membership::leave(group, members, now);
                let recs = value
                    .iter()
                    .map(|v| group_metadata_record(group_id, v))
                    .collect();
                Ok((recs, results))
            },
            // A failed store of the now empty group was logged; the members did leave.
            |_, results, _| results.into_iter().map(code).collect(),
        )
    }

    /// Waits until what this coordinator has appended for `group_id` so far is on every ISR
    /// member of its offsets partition (Kafka answers commits and SyncGroup only then, with
    /// `offsets.commit.timeout.ms`). Kafka's mapping of replication failures to group errors:
    /// a lost leadership is NOT_COORDINATOR, anything else COORDINATOR_NOT_AVAILABLE.
    pub async fn wait_until_stored(
        &self,
        group_id: &str,
        timeout: std::time::Duration,
    ) -> Result<(), E> {
        let log = {
            let inner = self.lock();
            let p = inner.partition_of(group_id)?;
            inner.owned.get(&p).ok_or(E::NotCoordinator)?.log.clone()
        };
        let (log_end, leader_term) = log.log_end_in_term();
        log.wait_for_high_watermark(log_end, leader_term, timeout)
            .await
            .map_err(|e| match e {
                crate::replica::PartitionError::NotLeader => E::NotCoordinator,
                _ => E::CoordinatorNotAvailable,
            })
    }

    /// OffsetCommit: validates the member (unless it is a simple, generation -1 commit to a
    /// group without members) and stores the offsets in one batch. One result per entry.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
        entries: &[CommitEntry],
        topic_exists: &dyn Fn(&str, i32) -> bool,
    ) -> Result<Vec<Result<(), E>>, E> {
        let now = self.clock.read();
        if !fits_record(group_id) {
            return Err(E::InvalidGroupId);
        }
        self.write(
            group_id,
            |inner, partition| {
                let simple = generation_id < 0 && member_id.is_empty();
                if let Some(g) = inner.consumer_groups.get(group_id) {
                    if !(simple && g.members.is_empty()) {
                        g.validate_commit(member_id, generation_id)?;
                    }
                } else {
                    validate_classic_commit(
                        inner,
                        partition,
                        group_id,
                        generation_id,
                        member_id,
                        instance,
                        now,
                    )?;
                }
                let mut commit = inner.offsets.prepare_commit(
                    group_id,
                    entries,
                    topic_exists,
                    self.config.offset_metadata_max_bytes,
                    now.ms,
                );
                Ok((std::mem::take(&mut commit.records), (partition, commit)))
            },
            |inner, (partition, commit), stored| match stored {
                Ok(()) => inner.offsets.apply_commit(group_id, partition, commit),
                Err(e) => commit.results.into_iter().map(|r| r.and(Err(e))).collect(),
            },
        )
    }

    /// TxnOffsetCommit: validated as OffsetCommit (the member and generation, when the
    /// request names them), stored as the producer's transactional batch; the offsets
    /// become visible when its transaction commits (`complete_transaction`).
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit_offsets(
        &self,
        group_id: &str,
        producer: (i64, i16),
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
        entries: &[CommitEntry],
        topic_exists: &dyn Fn(&str, i32) -> bool,
    ) -> Result<Vec<Result<(), E>>, E> {
        let now = self.clock.read();
        if !fits_record(group_id) {
            return Err(E::InvalidGroupId);
        }
        self.write_as(
            group_id,
            Some(producer),
            |inner, partition| {
                let simple = generation_id < 0 && member_id.is_empty();
                if !simple {
                    if let Some(g) = inner.consumer_groups.get(group_id) {
                        g.validate_commit(member_id, generation_id)?;
                    } else {
                        validate_classic_commit(
                            inner,
                            partition,
                            group_id,
                            generation_id,
                            member_id,
                            instance,
                            now,
                        )?;
                    }
                }
                let mut commit = inner.offsets.prepare_commit(
                    group_id,
                    entries,
                    topic_exists,
                    self.config.offset_metadata_max_bytes,
                    now.ms,
                );
                Ok((std::mem::take(&mut commit.records), (partition, commit)))
            },
            |inner, (partition, commit), stored| match stored {
                Ok(()) => inner
                    .offsets
                    .add_pending_txn(producer.0, group_id, partition, commit),
                Err(e) => commit.results.into_iter().map(|r| r.and(Err(e))).collect(),
            },
        )
    }

    /// A transaction marker was written to offsets partition `partition`: the producer's
    /// pending transactional offsets there become committed, or are dropped.
    pub fn complete_transaction(&self, partition: i32, producer_id: i64, commit: bool) {
        let mut inner = self.lock();
        if inner.owned.contains_key(&partition) {
            inner.offsets.complete_txn(producer_id, partition, commit);
        }
    }

    /// KIP-447: whether an open transaction holds an offset of the group's partition.
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.lock()
            .offsets
            .has_pending_txn(group_id, topic, partition)
    }

    /// OffsetFetch: the committed offsets of `topics` (all of the group's if None).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<FetchedOffsets, E> {
        let inner = self.lock();
        inner.partition_of(group_id)?;
        Ok(inner.offsets.fetch(group_id, topics))
    }

    /// DeleteGroups: removes empty groups and their offsets (tombstones in the log).
    pub fn delete_groups(&self, group_ids: &[String]) -> Vec<i16> {
        group_ids
            .iter()
            .map(|id| {
                let deleted = self.write(
                    id,
                    |inner, _| {
                        match (inner.consumer_groups.get(id), inner.groups.get(id)) {
                            (Some(g), _) if !g.members.is_empty() => return Err(E::NonEmptyGroup),
                            (Some(_), _) => {}
                            (None, Some(g)) if g.state == GroupState::Dead => {
                                return Err(E::GroupIdNotFound)
                            }
                            (None, Some(g))
                                if g.state != GroupState::Empty || !g.is_empty_of_members() =>
                            {
                                return Err(E::NonEmptyGroup)
                            }
                            (None, Some(_)) => {}
                            (None, None) => return Err(E::GroupIdNotFound),
                        }
                        let mut recs = inner.offsets.group_tombstones(id);
                        recs.push((group_metadata_key(id), None));
                        Ok((recs, ()))
                    },
                    |inner, (), stored| {
                        stored?;
                        inner.groups.remove(id);
                        inner.consumer_groups.remove(id);
                        inner.offsets.remove_group(id);
                        info!(group = %id, "deleted group");
                        Ok(())
                    },
                );
                code(deleted.and_then(|r| r))
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
        self.write(
            group_id,
            |inner, _| {
                let subscribed = subscribed_topics(inner, group_id)?;
                let mut delete = inner.offsets.prepare_delete(group_id, topics, &subscribed);
                Ok((std::mem::take(&mut delete.records), delete))
            },
            |inner, delete, stored| {
                stored?;
                inner.offsets.apply_delete(group_id, &delete);
                Ok(delete
                    .results
                    .into_iter()
                    .map(|(t, parts)| (t, parts.into_iter().map(|(p, r)| (p, code(r))).collect()))
                    .collect())
            },
        )?
    }

    /// Runs the groups' timers (session expiry, join and sync deadlines, KIP-848 deadlines)
    /// and, every `offsets.retention.check.interval.ms`, offset expiry. Called every 100 ms.
    /// One offsets partition at a time, each as a write (its `writes` held, the append
    /// outside `inner`).
    pub fn tick(&self, image: &MetadataImage) {
        let now = self.clock.read();
        let topics = topic_view(image);
        let (work, expire) = {
            let mut inner = self.lock();
            let expire = now.at.saturating_duration_since(inner.last_offset_expiry)
                >= self.config.offsets_retention_check_interval;
            if expire {
                inner.last_offset_expiry = now.at;
            }
            let work: Vec<(i32, Arc<Partition>, Arc<Mutex<()>>)> = inner
                .owned
                .iter()
                .map(|(p, o)| (*p, o.log.clone(), o.writes.clone()))
                .collect();
            (work, expire)
        };
        for (partition, log, writes) in work {
            let _turn = writes.lock().unwrap_or_else(|p| p.into_inner());
            let recs = {
                let mut inner = self.lock();
                if !inner.still_owns(partition, &log) {
                    continue;
                }
                self.tick_partition(&mut inner, partition, now, expire, &topics)
            };
            if recs.is_empty() {
                continue;
            }
            if let Err(e) = store::append(&log, recs, now.ms, None) {
                warn!(partition, error = %e, "cannot store group changes");
            }
        }
    }

    /// The timers of one partition's groups; returns the records to store.
    fn tick_partition(
        &self,
        inner: &mut Inner,
        partition: i32,
        now: Now,
        expire: bool,
        topics: &TopicView,
    ) -> Vec<KeyValue> {
        let mut recs = Vec::new();
        for g in inner.consumer_groups.values_mut() {
            if g.partition == partition {
                g.tick(now, topics);
            }
        }
        for g in inner.groups.values_mut() {
            if g.partition != partition {
                continue;
            }
            if let Some(value) = g.tick(now) {
                recs.push(group_metadata_record(&g.group_id, &value));
            }
        }
        if expire {
            recs.extend(self.expire_offsets(inner, partition, now.ms));
        }
        recs
    }

    /// Kafka's offset retention for one partition's groups (`offsets.retention.minutes` after
    /// the later of the commit and the group becoming empty); then a group left with no
    /// offsets and no members is removed.
    fn expire_offsets(&self, inner: &mut Inner, partition: i32, now_ms: i64) -> Vec<KeyValue> {
        let retention = self.config.offsets_retention.as_millis() as i64;
        let Inner {
            groups,
            consumer_groups,
            offsets,
            ..
        } = inner;
        let empty_since = |id: &str| -> Option<i64> {
            if let Some(g) = groups.get(id) {
                return (g.state == GroupState::Empty && g.is_empty_of_members())
                    .then_some(g.state_timestamp_ms);
            }
            consumer_groups
                .get(id)
                .and_then(|g| g.members.is_empty().then_some(g.state_timestamp_ms))
        };
        let mut out = offsets.expire(partition, now_ms, retention, &empty_since);
        let dead: Vec<String> = groups
            .values()
            .filter(|g| {
                g.partition == partition
                    && g.state == GroupState::Empty
                    && g.is_empty_of_members()
                    && !offsets.has_offsets(&g.group_id)
            })
            .map(|g| g.group_id.clone())
            .collect();
        for id in dead {
            info!(group = %id, "removing group with no members and no offsets");
            out.push((group_metadata_key(&id), None));
            groups.remove(&id);
        }
        consumer_groups.retain(|id, g| {
            g.partition != partition || !g.members.is_empty() || offsets.has_offsets(id)
        });
        out
    }

    /// ConsumerGroupHeartbeat (KIP-848). An empty classic group (one that only has committed
    /// offsets) becomes a consumer group, keeping its offsets, as in Kafka. It stores nothing
    /// (KIP-848 membership is not persisted) but takes its turn like a write, so that it
    /// cannot change a group between another write's steps.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        req: HeartbeatRequest,
        image: &MetadataImage,
    ) -> Result<HeartbeatResult, E> {
        let now = self.clock.read();
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
        let topics = topic_view(image);
        self.write(
            group_id,
            |inner, partition| {
                self.consumer_heartbeat_locked(inner, partition, group_id, req, &topics, now)
                    .map(|r| (Vec::new(), r))
            },
            |_, result, _| result,
        )
    }

    fn consumer_heartbeat_locked(
        &self,
        inner: &mut Inner,
        partition: i32,
        group_id: &str,
        req: HeartbeatRequest,
        topics: &TopicView,
        now: Now,
    ) -> Result<HeartbeatResult, E> {
        if !inner.consumer_groups.contains_key(group_id) {
            if req.member_epoch != 0 {
                return Err(E::UnknownMemberId);
            }
            if let Some(classic) = inner.groups.get(group_id) {
                if !classic.is_empty_of_members() || classic.state != GroupState::Empty {
                    return Err(E::GroupIdNotFound);
                }
                inner.groups.remove(group_id);
                info!(
                    group = group_id,
                    "empty classic group converted to a consumer group"
                );
            }
            let group = ConsumerGroup::new(
                group_id.to_string(),
                partition,
                &self.config.consumer_assignor,
                now.ms,
            );
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
        group.heartbeat(req, topics, self.config.consumer_session_timeout, now)
    }

    /// DescribeGroups, for one group.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let inner = self.lock();
        if let Err(e) = inner.partition_of(group_id) {
            return GroupDescription::error(group_id, e);
        }
        describe::describe_group(
            group_id,
            inner.groups.get(group_id),
            inner.consumer_groups.get(group_id),
        )
    }

    /// ListGroups: the groups this broker coordinates in one of `states` (all if empty).
    pub fn list(&self, states: &[String]) -> Vec<ListedGroup> {
        let inner = self.lock();
        describe::list_groups(
            inner.groups.values(),
            inner.consumer_groups.values(),
            states,
        )
    }

    /// ConsumerGroupDescribe (KIP-848).
    pub fn consumer_describe(&self, group_id: &str) -> ConsumerGroupDescription {
        let inner = self.lock();
        if let Err(e) = inner.partition_of(group_id) {
            return ConsumerGroupDescription::error(group_id, e);
        }
        match inner.consumer_groups.get(group_id) {
            Some(g) => describe::describe_consumer_group(g),
            None => ConsumerGroupDescription::error(group_id, E::GroupIdNotFound),
        }
    }

    /// The committed offsets of the groups this broker coordinates, as (group, topic,
    /// partition, offset): the metrics endpoint's consumer lag. Copied under the lock.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.lock().offsets.all_committed()
    }

    /// Groups this broker coordinates (for tests and logs).
    pub fn group_count(&self) -> usize {
        self.lock().groups.len()
    }
}

/// A classic group's OffsetCommit: a simple (generation -1) commit to an unknown group
/// creates it, Empty; then Kafka's checks (`classic_membership::validate_commit`).
fn validate_classic_commit(
    inner: &mut Inner,
    partition: i32,
    group_id: &str,
    generation_id: i32,
    member_id: &str,
    instance: Option<&str>,
    now: Now,
) -> Result<(), E> {
    if !inner.groups.contains_key(group_id) {
        if generation_id >= 0 {
            return Err(E::IllegalGeneration);
        }
        inner.groups.insert(
            group_id.to_string(),
            ClassicGroup::new(group_id.to_string(), partition, now.ms),
        );
    }
    let Some(group) = inner.groups.get_mut(group_id) else {
        return Err(E::CoordinatorNotAvailable);
    };
    classic_membership::validate_commit(group, generation_id, member_id, instance, now)
}

/// The topics a group still consumes, whose offsets OffsetDelete must keep; a classic group
/// that is not Empty may delete offsets only if it uses the consumer protocol (whose
/// subscriptions are readable).
fn subscribed_topics(inner: &Inner, group_id: &str) -> Result<HashSet<String>, E> {
    match (
        inner.consumer_groups.get(group_id),
        inner.groups.get(group_id),
    ) {
        (Some(g), _) => Ok(g
            .members
            .values()
            .flat_map(|m| m.subscribed_names.iter().cloned())
            .collect()),
        (None, None) => Err(E::GroupIdNotFound),
        (None, Some(group)) => {
            if group.state == GroupState::Dead {
                return Err(E::GroupIdNotFound);
            }
            let consumer = group.protocol_type.as_deref() == Some("consumer");
            if group.state != GroupState::Empty && !consumer {
                return Err(E::NonEmptyGroup);
            }
            if group.state == GroupState::Empty {
                return Ok(HashSet::new());
            }
            let protocol = group.protocol_name.clone().unwrap_or_default();
            Ok(group
                .members
                .values()
                .flat_map(|m| {
                    records::subscribed_topics(&m.metadata_for(&protocol)).unwrap_or_default()
                })
                .collect())
        }
    }
}

#[cfg(test)]
impl GroupCoordinator {
    /// Tests: lead offsets partition `index` (of `count`) backed by `log`, as
    /// `on_replicas_changed` would after loading it.
    pub(super) fn adopt_partition(&self, count: i32, index: i32, log: Arc<Partition>) {
        let mut inner = self.lock();
        inner.partition_count = count;
        inner.owned.insert(
            index,
            OwnedPartition {
                log,
                writes: Arc::new(Mutex::new(())),
            },
        );
    }
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
