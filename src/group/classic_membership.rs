//! The classic protocol's membership APIs (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) on one
//! `ClassicGroup`, as Kafka's `GroupCoordinator` ran them. JoinGroup takes one of three
//! paths: a new member (no member id), a static member coming back with a new incarnation
//! (no member id, a known `group.instance.id`) and a known member rejoining.
//!
//! Memory only: an operation returns the group metadata to store, if any, and the coordinator
//! appends it (with its lock released) and then completes the operation (`finish_sync`).
//! Time comes in as `now`.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use tokio::sync::oneshot;
use tracing::info;

use super::classic::{ClassicGroup, GroupState, JoinResult, Member, SyncResult};
use super::records::GroupMetadataValue;
use crate::clock::Now;
use crate::config::GroupConfig;

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

pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: HashMap<String, Bytes>,
}

/// An answer now, or a receiver the handler awaits outside the coordinator's lock.
pub enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

/// What a JoinGroup did: the answer, the group metadata to store and whether a failed store
/// replaces the answer (a static member's rejoin is answered only once stored).
pub struct JoinOutcome {
    pub reply: Pending<JoinResult>,
    pub store: Option<GroupMetadataValue>,
    pub answer_needs_store: bool,
}

impl JoinOutcome {
    fn ready(result: JoinResult) -> JoinOutcome {
        JoinOutcome {
            reply: Pending::Ready(result),
            store: None,
            answer_needs_store: false,
        }
    }

    fn wait(rx: oneshot::Receiver<JoinResult>, store: Option<GroupMetadataValue>) -> JoinOutcome {
        JoinOutcome {
            reply: Pending::Wait(rx),
            store,
            answer_needs_store: false,
        }
    }
}

/// Session and rebalance timeouts of a request.
struct Timeouts {
    session: Duration,
    rebalance: Duration,
}

/// JoinGroup on a group the coordinator found or created (it checked the group id, the
/// session timeout range and that it coordinates the group).
pub fn join(
    group: &mut ClassicGroup,
    req: JoinRequest,
    cfg: &GroupConfig,
    now: Now,
) -> JoinOutcome {
    if group.state == GroupState::Dead {
        return JoinOutcome::ready(JoinResult::error(
            &req.member_id,
            E::CoordinatorNotAvailable,
        ));
    }
    if !group.supports_protocols(&req.protocol_type, &req.protocols) {
        return JoinOutcome::ready(JoinResult::error(
            &req.member_id,
            E::InconsistentGroupProtocol,
        ));
    }
    let timeouts = Timeouts {
        session: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
        rebalance: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
    };
    if !req.member_id.is_empty() {
        return join_known_member(group, req, timeouts, cfg, now);
    }
    let old_static_id = req
        .group_instance_id
        .as_ref()
        .and_then(|i| group.static_members.get(i).cloned());
    match old_static_id {
        Some(old_id) => join_static_member(group, req, old_id, timeouts, cfg, now),
        None => join_new_member(group, req, cfg, now),
    }
}

/// A member without an id: a dynamic member at v4+ is first handed an id to come back with
/// (MEMBER_ID_REQUIRED); otherwise it joins and a rebalance is prepared.
fn join_new_member(
    group: &mut ClassicGroup,
    req: JoinRequest,
    cfg: &GroupConfig,
    now: Now,
) -> JoinOutcome {
    if group.members.len() + group.pending_members.len() >= cfg.max_size {
        return JoinOutcome::ready(JoinResult::error("", E::GroupMaxSizeReached));
    }
    let prefix = req
        .group_instance_id
        .clone()
        .unwrap_or_else(|| req.client_id.clone());
    let member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
    if req.group_instance_id.is_none() && req.require_known_member_id {
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        group
            .pending_members
            .insert(member_id.clone(), now.at + session);
        return JoinOutcome::ready(JoinResult::error(&member_id, E::MemberIdRequired));
    }
    add_member_and_rebalance(group, &req, member_id, cfg, now)
}

/// A static member (`group.instance.id`) coming back with a new incarnation: it takes over
/// its old id's place. With the same subscription in a Stable group it keeps its assignment
/// without a rebalance.
fn join_static_member(
    group: &mut ClassicGroup,
    req: JoinRequest,
    old_id: String,
    t: Timeouts,
    cfg: &GroupConfig,
    now: Now,
) -> JoinOutcome {
    let instance = req.group_instance_id.clone().unwrap_or_default();
    let new_id = format!("{instance}-{}", uuid::Uuid::new_v4());
    info!(group = %req.group_id, instance = %instance, old = %old_id, new = %new_id,
        "static member rejoined with a new member id");
    group.replace_static_member(&instance, &old_id, &new_id);
    if group.state == GroupState::Stable && group.protocols_unchanged(&new_id, &req.protocols) {
        if let Some(m) = group.members.get_mut(&new_id) {
            m.touch(now);
            m.session_timeout = t.session;
            m.rebalance_timeout = t.rebalance;
        }
        let is_leader = group.leader_id.as_deref() == Some(new_id.as_str());
        let skip = is_leader && req.supports_skip_assignment;
        let mut result = group.current_join_result(&new_id, skip);
        if is_leader && !skip {
            // Kafka's answer to a static leader that cannot skip the assignment
            // (JoinGroup < v9): the OLD leader id, so the client sees it is not the leader
            // and just syncs to get its assignment back.
            result.leader = old_id;
            result.members.clear();
        }
        return JoinOutcome {
            reply: Pending::Ready(result),
            store: Some(group.metadata_value()),
            answer_needs_store: true,
        };
    }
    let (tx, rx) = oneshot::channel();
    group.update_member(&new_id, req.protocols, t.session, t.rebalance, tx, now);
    if group.state != GroupState::PreparingRebalance {
        group.prepare_rebalance(now, cfg.initial_rebalance_delay);
    }
    JoinOutcome::wait(rx, try_complete_join(group, now))
}

/// A member that already has an id: one handed out with MEMBER_ID_REQUIRED joins now; a
/// current member rejoins (a rebalance, unless nothing changed and it is not the leader of a
/// Stable group).
fn join_known_member(
    group: &mut ClassicGroup,
    req: JoinRequest,
    t: Timeouts,
    cfg: &GroupConfig,
    now: Now,
) -> JoinOutcome {
    let member_id = req.member_id.clone();
    if group.pending_members.remove(&member_id).is_some() {
        return add_member_and_rebalance(group, &req, member_id, cfg, now);
    }
    if group.is_fenced(&member_id, req.group_instance_id.as_deref()) {
        return JoinOutcome::ready(JoinResult::error(&member_id, E::FencedInstanceId));
    }
    if !group.members.contains_key(&member_id) {
        return JoinOutcome::ready(JoinResult::error(&member_id, E::UnknownMemberId));
    }
    let (tx, rx) = oneshot::channel();
    match group.state {
        GroupState::PreparingRebalance => {
            group.update_member(&member_id, req.protocols, t.session, t.rebalance, tx, now);
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
                return JoinOutcome::ready(group.current_join_result(&member_id, false));
            }
            group.update_member(&member_id, req.protocols, t.session, t.rebalance, tx, now);
            group.prepare_rebalance(now, Duration::ZERO);
        }
        GroupState::Empty | GroupState::Dead => {
            return JoinOutcome::ready(JoinResult::error(&member_id, E::UnknownMemberId));
        }
    }
    JoinOutcome::wait(rx, try_complete_join(group, now))
}

fn new_member(
    req: &JoinRequest,
    member_id: String,
    waiter: oneshot::Sender<JoinResult>,
    now: Now,
) -> Member {
    Member {
        member_id,
        group_instance_id: req.group_instance_id.clone(),
        client_id: req.client_id.clone(),
        client_host: req.client_host.clone(),
        session_timeout: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
        rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
        protocol_type: req.protocol_type.clone(),
        protocols: req.protocols.clone(),
        assignment: Bytes::new(),
        awaiting_join: Some(waiter),
        awaiting_sync: None,
        heartbeat_deadline: now.at,
        join_seq: 0,
        is_new: true,
    }
}

/// Adds a member and prepares a rebalance (a group that was empty first waits
/// `group.initial.rebalance.delay.ms` for more members).
fn add_member_and_rebalance(
    group: &mut ClassicGroup,
    req: &JoinRequest,
    member_id: String,
    cfg: &GroupConfig,
    now: Now,
) -> JoinOutcome {
    let (tx, rx) = oneshot::channel();
    let was_empty = group.state == GroupState::Empty;
    group.add_member(new_member(req, member_id, tx, now), now);
    match group.state {
        GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance => {
            let delay = if was_empty {
                cfg.initial_rebalance_delay
            } else {
                Duration::ZERO
            };
            group.prepare_rebalance(now, delay);
        }
        _ => {}
    }
    JoinOutcome::wait(rx, try_complete_join(group, now))
}

/// Ends the join phase if it can; returns the group's metadata to store if it became empty.
pub fn try_complete_join(group: &mut ClassicGroup, now: Now) -> Option<GroupMetadataValue> {
    if group.can_complete_join(now) {
        group.complete_join(now)
    } else {
        None
    }
}

/// What a SyncGroup did: answered, or (the leader's) an assignment to store first.
pub enum SyncOutcome {
    Reply(Pending<SyncResult>),
    /// Store `value`, then `finish_sync` with the result; the leader waits on `rx`.
    Store {
        rx: oneshot::Receiver<SyncResult>,
        value: GroupMetadataValue,
        generation_id: i32,
    },
}

/// SyncGroup: members wait for the leader's assignment, which is stored before anyone gets it.
pub fn sync(group: &mut ClassicGroup, req: SyncRequest, now: Now) -> Result<SyncOutcome, E> {
    if !group.members.contains_key(&req.member_id) {
        return Err(E::UnknownMemberId);
    }
    if group.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
        return Err(E::FencedInstanceId);
    }
    if req.generation_id != group.generation_id {
        return Err(E::IllegalGeneration);
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
        return Err(E::InconsistentGroupProtocol);
    }
    match group.state {
        GroupState::Empty | GroupState::Dead => Err(E::UnknownMemberId),
        GroupState::PreparingRebalance => Err(E::RebalanceInProgress),
        GroupState::Stable => {
            let assignment = group
                .members
                .get_mut(&req.member_id)
                .map(|m| {
                    m.touch(now);
                    m.assignment.clone()
                })
                .unwrap_or_default();
            Ok(SyncOutcome::Reply(Pending::Ready(SyncResult {
                error: 0,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                assignment,
            })))
        }
        GroupState::CompletingRebalance => {
            let (tx, rx) = oneshot::channel();
            if let Some(m) = group.members.get_mut(&req.member_id) {
                m.touch(now);
                if let Some(old) = m.awaiting_sync.replace(tx) {
                    let _ = old.send(SyncResult::error(E::RebalanceInProgress));
                }
            }
            if group.leader_id.as_deref() != Some(req.member_id.as_str()) {
                return Ok(SyncOutcome::Reply(Pending::Wait(rx)));
            }
            group.apply_assignments(req.assignments);
            Ok(SyncOutcome::Store {
                rx,
                value: group.metadata_value(),
                generation_id: group.generation_id,
            })
        }
    }
}

/// Completes the leader's SyncGroup once its assignment is stored (or not): Stable and every
/// waiting member answered, or everyone told the error and a new rebalance. Nothing happens
/// if the group moved on to another generation meanwhile.
pub fn finish_sync(group: &mut ClassicGroup, generation_id: i32, stored: Result<(), E>, now: Now) {
    if group.generation_id != generation_id || group.state != GroupState::CompletingRebalance {
        return;
    }
    match stored {
        Ok(()) => group.finish_sync(now),
        Err(e) => {
            for m in group.members.values_mut() {
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::error(e));
                }
            }
            group.prepare_rebalance(now, Duration::ZERO);
        }
    }
}

/// Heartbeat: None if the member is in good standing.
pub fn heartbeat(
    group: &mut ClassicGroup,
    generation_id: i32,
    member_id: &str,
    instance: Option<&str>,
    now: Now,
) -> Option<E> {
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

/// LeaveGroup: one result per (member id, instance id), and the group metadata to store if
/// the group became empty.
pub fn leave(
    group: &mut ClassicGroup,
    members: &[(String, Option<String>)],
    now: Now,
) -> (Vec<Result<(), E>>, Option<GroupMetadataValue>) {
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
                if group.pending_members.remove(&id).is_none() {
                    info!(group = %group.group_id, member = %id, "member left the group");
                    group.remove_member(&id);
                    removed_any = true;
                }
                results.push(Ok(()));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let store = if removed_any {
        group.after_member_removed(now);
        try_complete_join(group, now)
    } else {
        None
    };
    (results, store)
}

/// Kafka's checks of an OffsetCommit to a classic group: a simple commit (generation -1, no
/// member id) only to an Empty group; a member's commit from a current member of the current
/// generation, not during CompletingRebalance.
pub fn validate_commit(
    group: &mut ClassicGroup,
    generation_id: i32,
    member_id: &str,
    instance: Option<&str>,
    now: Now,
) -> Result<(), E> {
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
