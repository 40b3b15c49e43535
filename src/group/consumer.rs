//! One KIP-848 consumer group (`group.protocol=consumer`): members heartbeat with
//! ConsumerGroupHeartbeat, the coordinator computes the target assignment with a server-side
//! assignor and moves each member towards it in steps that never give a partition to two
//! members at once (Kafka's CurrentAssignmentBuilder):
//!
//! - a member that must give partitions up is first sent its assignment without them and
//!   keeps its epoch (UNREVOKED_PARTITIONS) until a heartbeat shows it no longer owns them;
//! - then it moves to the target epoch and gets the new partitions that nobody else still
//!   holds (UNRELEASED_PARTITIONS until the others have let go, then STABLE).
//!
//! Epochs: the group epoch grows with every membership, subscription or topic change; the
//! assignment epoch is the group epoch the target assignment was computed for; each member's
//! epoch says which target it has reconciled to. A stale epoch is fenced.
//!
//! Memory only, like `classic.rs`; committed offsets live in `offset_metadata_manager.rs`. Membership is not
//! persisted: after a coordinator restart members get UNKNOWN_MEMBER_ID and rejoin.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError as E;
use uuid::Uuid;

use super::assignor::{self, AssignorMember, TopicAssignment};
use crate::clock::Now;

/// Epoch of a member that left (-1) or a static member that left temporarily (-2).
pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    pub subscribed_names: BTreeSet<String>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: TopicAssignment,
    pub pending_revocation: TopicAssignment,
    pub heartbeat_deadline: Instant,
    pub revocation_deadline: Option<Instant>,
}

/// What a heartbeat carries (already decoded by the handler).
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<TopicAssignment>,
    pub client_id: String,
    pub client_host: String,
}

pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    /// Sent when it changed or the request was a full one.
    pub assignment: Option<TopicAssignment>,
}

/// A topic as the assignor needs it: name to (id, partition count).
pub type TopicView = BTreeMap<String, (Uuid, i32)>;

pub struct ConsumerGroup {
    pub group_id: String,
    pub partition: i32,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, TopicAssignment>,
    pub static_members: HashMap<String, String>,
    /// The subscribed topics' (id, partitions) the target was computed with.
    subscribed_topics: BTreeMap<Uuid, i32>,
    pub state_timestamp_ms: i64,
    pub default_assignor: String,
}

fn is_subset(a: &TopicAssignment, b: &TopicAssignment) -> bool {
    a.iter()
        .all(|(t, ps)| b.get(t).is_some_and(|bs| ps.is_subset(bs)))
}

fn intersect(a: &TopicAssignment, b: &TopicAssignment) -> TopicAssignment {
    a.iter()
        .filter_map(|(t, ps)| {
            let common: BTreeSet<i32> = b.get(t)?.intersection(ps).copied().collect();
            (!common.is_empty()).then_some((*t, common))
        })
        .collect()
}

fn minus(a: &TopicAssignment, b: &TopicAssignment) -> TopicAssignment {
    a.iter()
        .filter_map(|(t, ps)| {
            let rest: BTreeSet<i32> = match b.get(t) {
                Some(bs) => ps.difference(bs).copied().collect(),
                None => ps.clone(),
            };
            (!rest.is_empty()).then_some((*t, rest))
        })
        .collect()
}

fn union(a: &TopicAssignment, b: &TopicAssignment) -> TopicAssignment {
    let mut out = a.clone();
    for (t, ps) in b {
        out.entry(*t).or_default().extend(ps.iter().copied());
    }
    out
}

fn overlaps(a: &TopicAssignment, b: &TopicAssignment) -> bool {
    a.iter()
        .any(|(t, ps)| b.get(t).is_some_and(|bs| !ps.is_disjoint(bs)))
}

impl ConsumerGroup {
    /// A new group with no members (since `now_ms`).
    pub fn new(
        group_id: String,
        partition: i32,
        default_assignor: &str,
        now_ms: i64,
    ) -> ConsumerGroup {
        ConsumerGroup {
            group_id,
            partition,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            static_members: HashMap::new(),
            subscribed_topics: BTreeMap::new(),
            state_timestamp_ms: now_ms,
            default_assignor: default_assignor.to_string(),
        }
    }

    /// Kafka's consumer group states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The topic names a member subscribes to, by name or by regex.
    fn member_topics<'a>(m: &ConsumerMember, topics: &'a TopicView) -> Vec<&'a String> {
        let regex = m
            .subscribed_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
        topics
            .keys()
            .filter(|name| {
                m.subscribed_names.contains(*name)
                    || regex.as_ref().is_some_and(|re| re.is_match(name))
            })
            .collect()
    }

    pub fn subscribed_topic_names(&self, topics: &TopicView) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| Self::member_topics(m, topics).into_iter().cloned())
            .collect()
    }

    fn bump(&mut self, now_ms: i64) {
        self.group_epoch += 1;
        self.state_timestamp_ms = now_ms;
    }

    /// Removes a member; the caller then recomputes the target so the others take its
    /// partitions.
    fn remove_member(&mut self, member_id: &str) -> bool {
        let Some(m) = self.members.remove(member_id) else {
            return false;
        };
        if let Some(i) = &m.instance_id {
            if self.static_members.get(i).map(String::as_str) == Some(member_id) {
                self.static_members.remove(i);
            }
        }
        self.target.remove(member_id);
        true
    }

    /// Recomputes the target assignment if the group epoch moved past it, or if subscribed
    /// topics changed (partitions added, topics created or deleted).
    /// `member_changed`: this heartbeat changed the membership or a subscription. The group
    /// epoch moves at most once per heartbeat, as in Kafka.
    fn maybe_update_target(&mut self, topics: &TopicView, member_changed: bool, now_ms: i64) {
        let subscribed: BTreeMap<Uuid, i32> = self
            .subscribed_topic_names(topics)
            .iter()
            .filter_map(|n| topics.get(n).copied())
            .collect();
        if subscribed != self.subscribed_topics || member_changed {
            self.subscribed_topics = subscribed;
            self.bump(now_ms);
        }
        if self.assignment_epoch >= self.group_epoch {
            return;
        }
        let assignor = self
            .members
            .values()
            .find_map(|m| m.server_assignor.clone())
            .filter(|a| assignor::is_supported(a))
            .unwrap_or_else(|| self.default_assignor.clone());
        let subs: Vec<(String, BTreeSet<Uuid>)> = self
            .members
            .values()
            .map(|m| {
                let ids = Self::member_topics(m, topics)
                    .into_iter()
                    .filter_map(|n| topics.get(n).map(|(id, _)| *id))
                    .collect();
                (m.member_id.clone(), ids)
            })
            .collect();
        let empty = TopicAssignment::new();
        let input: Vec<AssignorMember<'_>> = subs
            .iter()
            .map(|(id, s)| AssignorMember {
                member_id: id,
                subscribed: s,
                current: self
                    .target
                    .get(id)
                    .or_else(|| self.members.get(id).map(|m| &m.assigned))
                    .unwrap_or(&empty),
            })
            .collect();
        self.target = assignor::assign(&assignor, &input, &self.subscribed_topics);
        self.assignment_epoch = self.group_epoch;
    }

    /// Partitions held (assigned or still being revoked) by members other than `except`.
    fn held_by_others(&self, except: &str) -> TopicAssignment {
        let mut out = TopicAssignment::new();
        for m in self.members.values().filter(|m| m.member_id != except) {
            out = union(&out, &m.assigned);
            out = union(&out, &m.pending_revocation);
        }
        out
    }

    /// Moves one member towards its target (Kafka's CurrentAssignmentBuilder).
    fn reconcile(&mut self, member_id: &str, owned: Option<&TopicAssignment>, now: Instant) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let others = self.held_by_others(member_id);
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        if m.state == MemberState::UnrevokedPartitions {
            let released = owned.is_some_and(|o| !overlaps(o, &m.pending_revocation));
            if !released {
                return;
            }
            m.pending_revocation.clear();
            m.revocation_deadline = None;
            m.state = MemberState::Stable;
        }
        if m.member_epoch == assignment_epoch && m.state == MemberState::Stable {
            return;
        }
        if m.member_epoch != assignment_epoch {
            let revoke = minus(&m.assigned, &target);
            if !revoke.is_empty() {
                m.assigned = intersect(&m.assigned, &target);
                m.pending_revocation = revoke;
                m.state = MemberState::UnrevokedPartitions;
                m.revocation_deadline = Some(now + m.rebalance_timeout);
                return;
            }
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = assignment_epoch;
        }
        let wanted = minus(&target, &m.assigned);
        let free = minus(&wanted, &others);
        m.assigned = union(&m.assigned, &free);
        m.state = if is_subset(&target, &m.assigned) {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }

    /// One ConsumerGroupHeartbeat.
    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &TopicView,
        session_timeout: Duration,
        now: Now,
    ) -> Result<HeartbeatResult, E> {
        let full =
            req.member_epoch == 0 || req.owned.is_some() || req.subscribed_topic_names.is_some();
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            let id = match (&req.instance_id, self.members.contains_key(&req.member_id)) {
                (_, true) => req.member_id.clone(),
                (Some(i), false) => self
                    .static_members
                    .get(i)
                    .cloned()
                    .ok_or(E::UnknownMemberId)?,
                (None, false) => return Err(E::UnknownMemberId),
            };
            let static_leave = req.member_epoch == STATIC_LEAVE_EPOCH
                && self
                    .members
                    .get(&id)
                    .is_some_and(|m| m.instance_id.is_some());
            if static_leave {
                // A static member going away for a restart keeps its partitions until its
                // session ends or its next incarnation joins: no rebalance.
                if let Some(m) = self.members.get_mut(&id) {
                    if m.member_epoch >= 0 {
                        m.previous_member_epoch = m.member_epoch;
                    }
                    m.member_epoch = STATIC_LEAVE_EPOCH;
                    m.heartbeat_deadline = now.at + session_timeout;
                }
            } else {
                let removed = self.remove_member(&id);
                self.maybe_update_target(topics, removed, now.ms);
            }
            return Ok(HeartbeatResult {
                member_id: id,
                member_epoch: req.member_epoch,
                assignment: None,
            });
        }
        let mut changed = false;
        let member_id = if req.member_epoch == 0 {
            let (id, new_member) = self.join(&req, now.at)?;
            changed = new_member;
            id
        } else {
            let m = self.members.get(&req.member_id).ok_or(E::UnknownMemberId)?;
            if let Some(i) = &req.instance_id {
                if self.static_members.get(i) != Some(&req.member_id) {
                    return Err(E::FencedInstanceId);
                }
            }
            let lenient_previous = req.member_epoch == m.previous_member_epoch
                && req
                    .owned
                    .as_ref()
                    .is_some_and(|o| is_subset(o, &m.assigned));
            if req.member_epoch != m.member_epoch && !lenient_previous {
                return Err(E::FencedMemberEpoch);
            }
            req.member_id.clone()
        };
        // Apply what changed.
        if let Some(m) = self.members.get_mut(&member_id) {
            if let Some(names) = &req.subscribed_topic_names {
                let names: BTreeSet<String> = names.iter().cloned().collect();
                if names != m.subscribed_names {
                    m.subscribed_names = names;
                    changed = true;
                }
            }
            // null = unchanged; an empty string = none (librdkafka sends "" for "no regex").
            if let Some(regex) = &req.subscribed_topic_regex {
                let regex = Some(regex.clone()).filter(|r| !r.is_empty());
                if regex != m.subscribed_regex {
                    m.subscribed_regex = regex;
                    changed = true;
                }
            }
            if let Some(assignor) = &req.server_assignor {
                let assignor = Some(assignor.clone()).filter(|a| !a.is_empty());
                if assignor != m.server_assignor {
                    m.server_assignor = assignor;
                    changed = true;
                }
            }
            if req.rack_id.is_some() {
                m.rack_id = req.rack_id.clone();
            }
            if req.rebalance_timeout_ms > 0 {
                m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms as u64);
            }
            m.heartbeat_deadline = now.at + session_timeout;
        }
        self.maybe_update_target(topics, changed, now.ms);
        let before = self
            .members
            .get(&member_id)
            .map(|m| (m.member_epoch, m.assigned.clone()));
        self.reconcile(&member_id, req.owned.as_ref(), now.at);
        let m = self.members.get(&member_id).ok_or(E::UnknownMemberId)?;
        let moved = before.is_none_or(|(e, a)| e != m.member_epoch || a != m.assigned);
        Ok(HeartbeatResult {
            member_id,
            member_epoch: m.member_epoch,
            assignment: (moved || full).then(|| m.assigned.clone()),
        })
    }

    /// A member joining (epoch 0): new, rejoining after an error, or a static member's new
    /// incarnation taking over its predecessor's place.
    /// Returns the member id and whether the membership changed (false when a static
    /// member's new incarnation simply takes over).
    fn join(&mut self, req: &HeartbeatRequest, now: Instant) -> Result<(String, bool), E> {
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(E::InvalidRequest);
        }
        let member_id = if req.member_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        let mut inherited: Option<ConsumerMember> = None;
        if let Some(instance) = &req.instance_id {
            if let Some(prev_id) = self.static_members.get(instance).cloned() {
                if prev_id != member_id {
                    // (A mapping whose member is gone is simply replaced.)
                    if let Some(prev) = self.members.get(&prev_id) {
                        if prev.member_epoch != STATIC_LEAVE_EPOCH && prev.heartbeat_deadline > now
                        {
                            return Err(E::UnreleasedInstanceId);
                        }
                    }
                    inherited = self.members.remove(&prev_id);
                    if let Some(t) = self.target.remove(&prev_id) {
                        self.target.insert(member_id.clone(), t);
                    }
                }
            }
        }
        // A known member rejoining from scratch has given up everything it had.
        self.remove_member(&member_id);
        let new_member = inherited.is_none();
        let mut m = ConsumerMember {
            member_id: member_id.clone(),
            instance_id: req.instance_id.clone(),
            rack_id: req.rack_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
            subscribed_names: BTreeSet::new(),
            subscribed_regex: None,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: TopicAssignment::new(),
            pending_revocation: TopicAssignment::new(),
            heartbeat_deadline: now,
            revocation_deadline: None,
        };
        if let Some(prev) = inherited {
            {
                // Static membership: same partitions and epoch, no rebalance.
                m.member_epoch = if prev.member_epoch > 0 {
                    prev.member_epoch
                } else {
                    prev.previous_member_epoch.max(0)
                };
                m.previous_member_epoch = m.member_epoch;
                m.state = prev.state;
                m.assigned = prev.assigned;
                m.pending_revocation = prev.pending_revocation;
                m.revocation_deadline = prev.revocation_deadline;
                m.subscribed_names = prev.subscribed_names;
                m.subscribed_regex = prev.subscribed_regex;
                m.server_assignor = prev.server_assignor;
            }
        }
        self.static_members.retain(|_, id| *id != member_id);
        if let Some(instance) = &req.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), m);
        Ok((member_id, new_member))
    }

    /// Session expiry and revocation deadlines. Returns whether anything changed.
    pub fn tick(&mut self, now: Now, topics: &TopicView) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.heartbeat_deadline <= now.at || m.revocation_deadline.is_some_and(|d| d <= now.at)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.group_id, member = %id, "consumer group member expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.maybe_update_target(topics, true, now.ms);
        }
        !expired.is_empty()
    }

    /// OffsetCommit from a member: its current epoch (or the previous one, while its
    /// heartbeat response may still be in flight) is accepted; anything else is stale.
    pub fn validate_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), E> {
        let m = self.members.get(member_id).ok_or(E::UnknownMemberId)?;
        if member_epoch == m.member_epoch || member_epoch == m.previous_member_epoch {
            Ok(())
        } else {
            Err(E::StaleMemberEpoch)
        }
    }
}
