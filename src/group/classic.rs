//! One classic consumer group: members, generation, chosen protocol, leader and assignments,
//! and the state machine Kafka's `GroupMetadata` runs (Empty,
//! PreparingRebalance, CompletingRebalance, Stable, Dead).
//!
//! This module only changes memory: it never writes to disk and never waits. The coordinator
//! (`coordinator.rs`, through `classic_membership.rs`) calls it under its lock, writes the records it asks for to
//! `__consumer_offsets`, and hands members waiting in JoinGroup or SyncGroup their answer
//! through the oneshot senders stored here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use tokio::sync::oneshot;

use super::records::{GroupMetadataValue, MemberMetadataValue};
use crate::clock::Now;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka shows in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a member waiting in JoinGroup is eventually told.
#[derive(Clone, Debug, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub skip_assignment: bool,
    /// Filled for the leader only: (member id, group instance id, metadata).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(member_id: &str, error: E) -> JoinResult {
        JoinResult {
            error: error.code(),
            generation_id: -1,
            member_id: member_id.to_string(),
            ..JoinResult::default()
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: E) -> SyncResult {
        SyncResult {
            error: error.code(),
            ..SyncResult::default()
        }
    }
}

pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<oneshot::Sender<JoinResult>>,
    pub awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    /// Expired (removed) if no heartbeat, join, sync or commit arrives before this.
    pub heartbeat_deadline: Instant,
    /// Order of joining: the longest-standing member becomes leader when one is needed.
    pub join_seq: u64,
    /// Joined in the current rebalance and not yet part of a generation.
    pub is_new: bool,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn touch(&mut self, now: Now) {
        self.heartbeat_deadline = now.at + self.session_timeout;
    }
}

/// The join phase's timer: the initial delay of a group that was empty, or the rebalance
/// timeout after which members that did not rejoin are dropped.
#[derive(Clone, Copy, Debug)]
enum JoinTimer {
    Initial {
        deadline: Instant,
        delay: Duration,
        remaining: Duration,
        new_member_added: bool,
    },
    Rebalance {
        deadline: Instant,
    },
}

pub struct ClassicGroup {
    pub group_id: String,
    /// The `__consumer_offsets` partition that holds this group.
    pub partition: i32,
    pub state: GroupState,
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: HashMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time by which they must join.
    pub pending_members: HashMap<String, Instant>,
    pub static_members: HashMap<String, String>,
    join_timer: Option<JoinTimer>,
    sync_deadline: Option<Instant>,
    next_join_seq: u64,
}

impl ClassicGroup {
    /// A new, Empty group (since `now_ms`).
    pub fn new(group_id: String, partition: i32, now_ms: i64) -> ClassicGroup {
        ClassicGroup {
            group_id,
            partition,
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: HashMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            join_timer: None,
            sync_deadline: None,
            next_join_seq: 0,
        }
    }

    /// Rebuilds a group from its stored metadata (loading `__consumer_offsets`): a group with
    /// members is Stable, as after its last SyncGroup, and its members get a full session
    /// timeout to heartbeat to the new coordinator.
    pub fn restore(&mut self, value: GroupMetadataValue, now: Now) {
        self.protocol_type = Some(value.protocol_type.clone()).filter(|p| !p.is_empty());
        self.protocol_name = value.protocol.clone();
        self.generation_id = value.generation;
        self.leader_id = value.leader.clone();
        self.state_timestamp_ms = value.current_state_timestamp;
        self.members.clear();
        self.static_members.clear();
        for m in value.members {
            let session_timeout = Duration::from_millis(m.session_timeout_ms.max(0) as u64);
            if let Some(instance) = &m.group_instance_id {
                self.static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            let seq = self.next_join_seq;
            self.next_join_seq += 1;
            let protocols = match &value.protocol {
                Some(p) => vec![(p.clone(), m.subscription.clone())],
                None => Vec::new(),
            };
            self.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout,
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocol_type: value.protocol_type.clone(),
                    protocols,
                    assignment: m.assignment,
                    awaiting_join: None,
                    awaiting_sync: None,
                    heartbeat_deadline: now.at + session_timeout,
                    join_seq: seq,
                    is_new: false,
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    pub fn is_empty_of_members(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    /// The protocols every member supports (all of `protocols` if the group has no members).
    fn candidate_protocols(&self) -> Vec<String> {
        let mut iter = self.members.values();
        let Some(first) = iter.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in iter {
            candidates.retain(|c| m.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    /// Kafka's `supportsProtocols`: a new member must share the protocol type and at least one
    /// protocol with every current member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocols.is_empty() || protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    /// Kafka's vote: each member votes for its most preferred protocol among those all support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        // Ties go to the earlier candidate (the first member's preference order).
        let mut best: Option<(String, usize)> = None;
        for (name, count) in votes {
            if best.as_ref().is_none_or(|(_, c)| count > *c) {
                best = Some((name, count));
            }
        }
        best.map(|(n, _)| n)
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    pub fn add_member(&mut self, mut member: Member, now: Now) {
        member.join_seq = self.next_join_seq;
        self.next_join_seq += 1;
        member.is_new = true;
        member.touch(now);
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        if let Some(JoinTimer::Initial {
            new_member_added, ..
        }) = &mut self.join_timer
        {
            *new_member_added = true;
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Updates a known member's protocols and parks its JoinGroup.
    pub fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<(String, Bytes)>,
        session_timeout: Duration,
        rebalance_timeout: Duration,
        waiter: oneshot::Sender<JoinResult>,
        now: Now,
    ) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = protocols;
            m.session_timeout = session_timeout;
            m.rebalance_timeout = rebalance_timeout;
            if let Some(old) = m.awaiting_join.replace(waiter) {
                let _ = old.send(JoinResult::error(member_id, E::RebalanceInProgress));
            }
            m.touch(now);
        }
    }

    pub fn protocols_unchanged(&self, member_id: &str, protocols: &[(String, Bytes)]) -> bool {
        self.members
            .get(member_id)
            .is_some_and(|m| m.same_protocols(protocols))
    }

    /// Starts a rebalance: members must rejoin (their heartbeats answer REBALANCE_IN_PROGRESS).
    pub fn prepare_rebalance(&mut self, now: Now, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::error(E::RebalanceInProgress));
                }
            }
        }
        self.sync_deadline = None;
        let rebalance_timeout = self.max_rebalance_timeout();
        self.join_timer = Some(
            if self.state == GroupState::Empty && !initial_delay.is_zero() {
                let delay = initial_delay.min(rebalance_timeout);
                JoinTimer::Initial {
                    deadline: now.at + delay,
                    delay,
                    remaining: rebalance_timeout.saturating_sub(delay),
                    new_member_added: false,
                }
            } else {
                JoinTimer::Rebalance {
                    deadline: now.at + rebalance_timeout,
                }
            },
        );
        self.transition(GroupState::PreparingRebalance, now.ms);
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Whether the join phase can end now (Kafka's DelayedJoin `tryComplete`).
    pub fn can_complete_join(&self, now: Now) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        match self.join_timer {
            Some(JoinTimer::Initial { .. }) => false,
            Some(JoinTimer::Rebalance { deadline }) => {
                self.all_members_joined() || now.at >= deadline
            }
            None => self.all_members_joined(),
        }
    }

    /// Ends the join phase: drops members that did not rejoin, bumps the generation, picks
    /// the protocol and leader and answers every waiting JoinGroup. Returns the group's
    /// metadata to store when the group became empty (Kafka stores it then too).
    pub fn complete_join(&mut self, now: Now) -> Option<GroupMetadataValue> {
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in absent {
            self.remove_member(&id);
        }
        self.join_timer = None;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty, now.ms);
            return Some(self.metadata_value());
        }
        self.protocol_name = self.select_protocol();
        let leader_present = self
            .leader_id
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l));
        if !leader_present {
            self.leader_id = self
                .members
                .values()
                .min_by_key(|m| m.join_seq)
                .map(|m| m.member_id.clone());
        }
        self.transition(GroupState::CompletingRebalance, now.ms);
        self.sync_deadline = Some(now.at + self.max_rebalance_timeout());
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let leader = self.leader_id.clone().unwrap_or_default();
        let mut all: Vec<&Member> = self.members.values().collect();
        all.sort_by_key(|m| m.join_seq);
        let member_list: Vec<(String, Option<String>, Bytes)> = all
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.group_instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect();
        for m in self.members.values_mut() {
            m.is_new = false;
            m.touch(now);
            if let Some(tx) = m.awaiting_join.take() {
                let is_leader = m.member_id == leader;
                let _ = tx.send(JoinResult {
                    error: 0,
                    generation_id: self.generation_id,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: m.member_id.clone(),
                    skip_assignment: false,
                    members: if is_leader {
                        member_list.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        None
    }

    /// The JoinGroup answer for a member of the current generation that rejoined without
    /// changes (no rebalance needed).
    pub fn current_join_result(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let leader = self.leader_id.clone().unwrap_or_default();
        let members = if member_id == leader {
            let mut all: Vec<&Member> = self.members.values().collect();
            all.sort_by_key(|m| m.join_seq);
            all.iter()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata_for(&protocol),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            skip_assignment,
            members,
        }
    }

    /// Removes a member, answering its parked requests, and keeps the static-member index.
    pub fn remove_member(&mut self, member_id: &str) -> bool {
        self.pending_members.remove(member_id);
        let Some(mut m) = self.members.remove(member_id) else {
            return false;
        };
        if let Some(instance) = &m.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if let Some(tx) = m.awaiting_join.take() {
            let _ = tx.send(JoinResult::error(member_id, E::UnknownMemberId));
        }
        if let Some(tx) = m.awaiting_sync.take() {
            let _ = tx.send(SyncResult::error(E::UnknownMemberId));
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = None;
        }
        true
    }

    /// After a member left or expired: rebalance (Stable, CompletingRebalance) or see
    /// whether the join phase can now end (PreparingRebalance).
    pub fn after_member_removed(&mut self, now: Now) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, Duration::ZERO)
            }
            _ => {}
        }
    }

    /// A static member rejoining with a new member id takes over the old id's place.
    pub fn replace_static_member(&mut self, instance: &str, old_id: &str, new_id: &str) {
        let Some(mut m) = self.members.remove(old_id) else {
            return;
        };
        if let Some(tx) = m.awaiting_join.take() {
            let _ = tx.send(JoinResult::error(old_id, E::FencedInstanceId));
        }
        if let Some(tx) = m.awaiting_sync.take() {
            let _ = tx.send(SyncResult::error(E::FencedInstanceId));
        }
        m.member_id = new_id.to_string();
        self.members.insert(new_id.to_string(), m);
        self.static_members
            .insert(instance.to_string(), new_id.to_string());
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.to_string());
        }
    }

    /// Kafka's static-member fencing: the instance id must map to this member id.
    pub fn is_fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        match instance {
            Some(i) => self.static_members.get(i).is_some_and(|id| id != member_id),
            None => false,
        }
    }

    /// Stores the leader's assignments and moves the group to Stable, answering every member
    /// waiting in SyncGroup.
    pub fn apply_assignments(&mut self, assignments: HashMap<String, Bytes>) {
        for m in self.members.values_mut() {
            m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
        }
    }

    pub fn finish_sync(&mut self, now: Now) {
        self.sync_deadline = None;
        self.transition(GroupState::Stable, now.ms);
        let protocol_type = self.protocol_type.clone();
        let protocol_name = self.protocol_name.clone();
        for m in self.members.values_mut() {
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(SyncResult {
                    error: 0,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: m.assignment.clone(),
                });
            }
        }
    }

    /// The group as Kafka stores it after each rebalance (GroupMetadataValue).
    pub fn metadata_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.join_seq);
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: members
                .into_iter()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Advances the group's timers. Returns group metadata to store if the group changed
    /// in a way Kafka persists (it became empty).
    pub fn tick(&mut self, now: Now) -> Option<GroupMetadataValue> {
        // Members handed an id that never came back.
        self.pending_members
            .retain(|_, deadline| *deadline > now.at);
        // Members whose session expired (parked requests keep a member alive).
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.heartbeat_deadline <= now.at
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.group_id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.after_member_removed(now);
        }
        // A leader that never sent SyncGroup: drop those who did not sync and start over.
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| d <= now.at)
        {
            let unsynced: Vec<String> = self
                .members
                .values()
                .filter(|m| m.awaiting_sync.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for id in &unsynced {
                self.remove_member(id);
            }
            self.prepare_rebalance(now, Duration::ZERO);
        }
        if self.state == GroupState::PreparingRebalance {
            if let Some(JoinTimer::Initial {
                deadline,
                delay,
                remaining,
                new_member_added,
            }) = self.join_timer
            {
                if now.at >= deadline {
                    if new_member_added && !remaining.is_zero() {
                        let next = delay.min(remaining);
                        self.join_timer = Some(JoinTimer::Initial {
                            deadline: now.at + next,
                            delay,
                            remaining: remaining.saturating_sub(delay),
                            new_member_added: false,
                        });
                    } else {
                        // The initial delay is over; from now on the group completes as soon
                        // as every member has joined.
                        self.join_timer = Some(JoinTimer::Rebalance { deadline: now.at });
                    }
                }
            }
            if self.can_complete_join(now) {
                return self.complete_join(now);
            }
        }
        None
    }
}
