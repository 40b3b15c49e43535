//! The cluster controller (ZooKeeper mode): one broker, elected through the ephemeral
//! `/controller` created in one multi with the `/controller_epoch` bump, keeps the partition
//! state znodes in line with the live brokers.
//!
//! It is level-triggered: every time the broker's view of ZooKeeper changes (a watch fired),
//! `reconcile` compares the snapshot with what should be and writes the difference. Every
//! write is fenced by `/controller_epoch`'s zkVersion (a deposed controller's writes fail with
//! `ControllerMoved`) and partition state writes are conditional on the state znode's
//! zkVersion (the partition epoch). Brokers learn their role from LeaderAndIsr
//! (`controller_channel`) and from the same znodes through their own watches (see
//! ARCHITECTURE.md, "Cluster mode").
//!
//! What it does, following Kafka's `KafkaController` / `PartitionStateMachine`:
//! - topic ids for assignments written without one (KIP-516);
//! - new partitions: state with leader = first live replica, ISR = live replicas, epoch 0;
//! - leader lost: first live ISR member in assignment order, ISR without the dead,
//!   `leader_epoch + 1`; none left: leader -1 with the last ISR kept (offline partition),
//!   unless the topic allows unclean election (`unclean.leader.election.enable`): then the
//!   first live replica leads with an ISR of itself;
//! - follower lost: removed from the ISR (`leader_epoch + 1`, as Kafka's ZK mode does);
//! - broker in a controlled shutdown (ControlledShutdown): as if lost, except that a
//!   partition no other in-sync replica can lead stays with it;
//! - offline partition whose ISR member returns: it leads again (`leader_epoch + 1`);
//! - topics in `/admin/delete_topics`: their znodes removed once every live broker holding
//!   a replica has answered StopReplica (`controller_channel`; brokers drop their replicas
//!   as soon as the topic is marked);
//! - with `auto.leader.rebalance.enable`, every `leader.imbalance.check.interval.seconds`:
//!   leadership back to the preferred replica (the first in the assignment) when it is live
//!   and in the ISR, for every broker leading less than its share of its preferred
//!   partitions (`rebalance_leaders`, Kafka's `checkAndTriggerAutoLeaderRebalance`).
//!
//! Leaders ask for ISR changes with AlterPartition, written by `ZookeeperMetadata::alter_isr`
//! (conditional); `reconcile`'s own ISR change is removing a dead or stopping broker.

use std::collections::BTreeMap;

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::StreamExt;
use gregor_zk::znode::kafka_uuid_string;
use gregor_zk::{ControllerEpoch, PartitionState, ZkClient, ZkError};
use tracing::{info, warn};

use super::cluster_state::{replica_assignment, set_replica_assignment, topic_id, ClusterState};
use crate::metadata::reassignment::ReplicaAssignment;
use crate::metadata::{ElectionOutcome, ElectionType};

/// What the state of partition `(topic, partition)` should become, if anything changes.
/// A replica counts as live when its broker is and its log directory has not failed
/// (`ClusterState::is_replica_online`). `unclean`: the topic's
/// `unclean.leader.election.enable`.
fn next_state(
    state: &ClusterState,
    (topic, partition): (&str, i32),
    replicas: &[i32],
    current: &PartitionState,
    controller_epoch: i32,
    unclean: bool,
) -> Option<PartitionState> {
    let online = |b: i32| state.is_replica_online(b, topic, partition);
    let live_isr: Vec<i32> = current.isr.iter().copied().filter(|b| online(*b)).collect();
    let leader_live = current.leader >= 0 && online(current.leader);
    let next = if leader_live {
        if live_isr.len() == current.isr.len() {
            return None;
        }
        // A follower died: shrink the ISR.
        PartitionState::new(
            current.leader,
            current.leader_epoch + 1,
            live_isr,
            controller_epoch,
        )
    } else {
        // Offline-partition election: first replica (assignment order) live and in ISR.
        let candidate = replicas.iter().copied().find(|r| live_isr.contains(r));
        // Kafka's unclean election: no live ISR member, so the first live replica leads
        // alone (what only the old ISR held is lost, as the topic's config allows).
        let unclean_candidate = replicas.iter().copied().find(|r| unclean && online(*r));
        match (candidate, unclean_candidate) {
            (Some(leader), _) => {
                PartitionState::new(leader, current.leader_epoch + 1, live_isr, controller_epoch)
            }
            // A leader in a controlled shutdown keeps what no other replica can take (unless
            // its log directory failed: then it cannot serve it either).
            (None, _)
                if current.leader >= 0
                    && state.is_shutting_down(current.leader)
                    && !state.is_on_offline_dir(current.leader, topic, partition) =>
            {
                return None
            }
            (None, Some(leader)) => {
                warn!(leader, isr = ?current.isr, "unclean leader election: no in-sync replica is live");
                PartitionState::new(
                    leader,
                    current.leader_epoch + 1,
                    vec![leader],
                    controller_epoch,
                )
            }
            (None, None) if current.leader == -1 => return None, // still offline
            // No live ISR member: leaderless, keep the ISR (Kafka keeps the last member).
            (None, None) => PartitionState::new(
                -1,
                current.leader_epoch + 1,
                current.isr.clone(),
                controller_epoch,
            ),
        }
    };
    Some(next)
}

/// Partition state writes in flight at once. ZooKeeper commits concurrent writes with one
/// log fsync; one after another, each costs a round trip and an fsync of its own (creating
/// 100 topics of 10 partitions with RF 3 took 22 s).
const PIPELINED_WRITES: usize = 64;

/// Whether a topic being deleted (with its replicas per partition) may lose its znodes now:
/// every live broker holding a replica has answered StopReplica.
pub type Deletable<'a> = dyn Fn(&str, &BTreeMap<i32, Vec<i32>>) -> bool + Sync + 'a;

/// Whether a topic allows unclean leader election (its `unclean.leader.election.enable`,
/// else the brokers' dynamic or static default).
pub type UncleanElection<'a> = dyn Fn(&str) -> bool + Sync + 'a;

/// A state write for one partition: (topic, partition, write).
type PlannedWrite<'a> = (&'a str, i32, StateWrite);

/// A partition state write decided by `reconcile`.
enum StateWrite {
    Create(PartitionState),
    /// The new state, conditional on the znode's current zkVersion.
    Update(PartitionState, i32),
}

/// One pass of the controller over `state`. Returns how many znodes it wrote. Stops at
/// the first `ControllerMoved` (the caller resigns) or session error.
pub async fn reconcile(
    zk: &ZkClient,
    fence: &ControllerEpoch,
    state: &ClusterState,
    deletable: &Deletable<'_>,
    unclean: &UncleanElection<'_>,
    announced: &mut ReplicaSetsAnnounced,
) -> Result<usize, ZkError> {
    let mut writes = 0;
    for name in &state.deleting {
        let ready = state
            .topics
            .get(name)
            .is_none_or(|t| deletable(name, &t.assignment.value.partitions));
        if !ready {
            continue; // StopReplica not answered by every live replica yet
        }
        zk.delete_topic_znodes(name, Some(fence)).await?;
        info!(topic = %name, "controller deleted topic");
        writes += 1;
    }
    announced.retain(|(topic, partition), _| {
        state
            .topics
            .get(topic)
            .is_some_and(|t| t.assignment.value.partitions.contains_key(partition))
    });
    let mut planned: Vec<(&str, i32, StateWrite)> = Vec::new();
    // Replica set steps, with the index of their state write in `planned`.
    let mut steps: Vec<(usize, ReplicaSetStep)> = Vec::new();
    for (name, topic) in &state.topics {
        if state.deleting.contains(name) {
            continue;
        }
        if topic_id(&topic.assignment.value).is_none() {
            let mut assignment = topic.assignment.value.clone();
            assignment.topic_id = Some(kafka_uuid_string(uuid::Uuid::new_v4().as_bytes()));
            assignment.version = gregor_zk::TopicAssignment::VERSION;
            match zk
                .set_topic_assignment(name, &assignment, topic.assignment.zk_version, Some(fence))
                .await
            {
                Ok(_) => info!(topic = %name, "controller assigned a topic id"),
                Err(ZkError::BadVersion { .. }) => {}
                Err(e) => return Err(e),
            }
            writes += 1;
            continue;
        }
        for (partition, replicas) in &topic.assignment.value.partitions {
            match topic.partitions.get(partition).and_then(Option::as_ref) {
                None => {
                    let live: Vec<i32> = replicas
                        .iter()
                        .copied()
                        .filter(|r| state.is_replica_online(*r, name, *partition))
                        .collect();
                    let (leader, isr) = match live.first() {
                        Some(leader) => (*leader, live.clone()),
                        None => (-1, replicas.clone()),
                    };
                    let new = PartitionState::new(leader, 0, isr, fence.epoch);
                    info!(topic = %name, partition, leader, isr = ?new.isr, "controller created partition state");
                    planned.push((name, *partition, StateWrite::Create(new)));
                }
                Some(current) => {
                    let Some(new) = next_state(
                        state,
                        (name, *partition),
                        replicas,
                        &current.value,
                        fence.epoch,
                        unclean(name),
                    ) else {
                        // Leadership settled: a changed replica set (a reassignment) may
                        // take a step.
                        let Some(assignment) =
                            replica_assignment(&topic.assignment.value, *partition)
                        else {
                            continue;
                        };
                        let step = replica_set_step(
                            state,
                            (name, *partition),
                            &assignment,
                            &current.value,
                            fence.epoch,
                            announced,
                        );
                        match step {
                            Some((step, new)) => {
                                steps.push((planned.len(), step));
                                planned.push((
                                    name,
                                    *partition,
                                    StateWrite::Update(new, current.zk_version),
                                ));
                            }
                            None => {
                                announced
                                    .entry((name.clone(), *partition))
                                    .or_insert(assignment.replicas);
                            }
                        }
                        continue;
                    };
                    info!(
                        topic = %name,
                        partition,
                        from_leader = current.value.leader,
                        leader = new.leader,
                        leader_epoch = new.leader_epoch,
                        isr = ?new.isr,
                        "controller changed partition leadership"
                    );
                    planned.push((
                        name,
                        *partition,
                        StateWrite::Update(new, current.zk_version),
                    ));
                }
            }
        }
    }
    let outcomes = write_states(zk, fence, &planned).await?;
    writes += count_writes(&outcomes);
    // Completed reassignments: per topic, RS = TRS in the assignment, once their state
    // (leader in TRS, ISR within TRS) is written (Kafka's steps B3-B6, in that order, so that
    // a controller failing in between finds the reassignment still recorded).
    let mut completed: BTreeMap<&str, Vec<(i32, Vec<i32>)>> = BTreeMap::new();
    for (index, step) in steps {
        let (name, partition, _) = &planned[index];
        if outcomes.get(index) != Some(&Written::Yes) {
            continue;
        }
        match step {
            ReplicaSetStep::Announce(replicas) => {
                info!(topic = %name, partition, replicas = ?replicas,
                    "replica set announced: leader epoch bumped");
                announced.insert((name.to_string(), *partition), replicas);
            }
            ReplicaSetStep::Complete(target) => {
                completed
                    .entry(name)
                    .or_default()
                    .push((*partition, target));
            }
        }
    }
    for (name, partitions) in completed {
        let Some(topic) = state.topics.get(name) else {
            continue;
        };
        let mut assignment = topic.assignment.value.clone();
        for (partition, target) in &partitions {
            set_replica_assignment(
                &mut assignment,
                *partition,
                ReplicaAssignment::settled(target.clone()),
            );
        }
        match zk
            .set_topic_assignment(name, &assignment, topic.assignment.zk_version, Some(fence))
            .await
        {
            Ok(_) => {
                for (partition, target) in partitions {
                    info!(topic = %name, partition, replicas = ?target, "reassignment completed");
                    announced.insert((name.to_string(), partition), target);
                }
            }
            // A new reassignment was written meanwhile: the next pass takes it up.
            Err(ZkError::BadVersion { .. }) => {}
            Err(e) => return Err(e),
        }
        writes += 1;
    }
    Ok(writes)
}

/// Per partition, the replica set (RS) this controller last announced with a leader epoch
/// bump, or found in place: a Kafka broker takes a new replica set from LeaderAndIsr only
/// with a new leader epoch, so a changed RS is announced with one. A new controller starts
/// with none and announces every reassignment in progress once more, as Kafka's resumes
/// them on failover.
pub type ReplicaSetsAnnounced = BTreeMap<(String, i32), Vec<i32>>;

/// A replica set change's next step, decided by `replica_set_step`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ReplicaSetStep {
    /// The leader epoch bumped for this RS (Kafka's phase A for a reassignment: every
    /// replica, the new ones included, hears of it; they start and catch up). A leader or
    /// ISR members outside RS (a cancelled reassignment) leave in the same write.
    Announce(Vec<i32>),
    /// Kafka's phase B: every target replica of a reassignment is in the ISR. The state
    /// written leaves the leader in TRS and the ISR within TRS; then the assignment becomes
    /// TRS (the payload).
    Complete(Vec<i32>),
}

/// What a partition (with replicas `assignment` and state `current`) needs for its replica
/// set, with the state to write for it (Kafka's `onPartitionReassignment`).
fn replica_set_step(
    state: &ClusterState,
    (topic, partition): (&str, i32),
    assignment: &ReplicaAssignment,
    current: &PartitionState,
    controller_epoch: i32,
    announced: &ReplicaSetsAnnounced,
) -> Option<(ReplicaSetStep, PartitionState)> {
    let online = |b: i32| state.is_replica_online(b, topic, partition);
    // Kafka's reassignment election: the leader stays if it is a live replica of `within`,
    // else the first replica of `within` live and in the ISR.
    let leader_within = |within: &[i32]| {
        if within.contains(&current.leader) && online(current.leader) {
            Some(current.leader)
        } else {
            within
                .iter()
                .copied()
                .find(|r| online(*r) && current.isr.contains(r))
        }
    };
    let isr_within = |within: &[i32]| -> Vec<i32> {
        let isr: Vec<i32> = current
            .isr
            .iter()
            .copied()
            .filter(|r| within.contains(r))
            .collect();
        // None of the ISR stays: it is kept, as for any partition left without a leader.
        if isr.is_empty() {
            current.isr.clone()
        } else {
            isr
        }
    };
    let bumped = |leader: i32, isr: Vec<i32>| {
        PartitionState::new(leader, current.leader_epoch + 1, isr, controller_epoch)
    };
    if assignment.is_being_reassigned() && assignment.is_complete(&current.isr) {
        let target = assignment.target();
        let leader = leader_within(&target)?;
        let new = bumped(leader, isr_within(&target));
        return Some((ReplicaSetStep::Complete(target), new));
    }
    let replicas = &assignment.replicas;
    let outside = (current.leader >= 0 && !replicas.contains(&current.leader))
        || current.isr.iter().any(|r| !replicas.contains(r));
    let last = announced.get(&(topic.to_string(), partition));
    let changed = match last {
        Some(last) => last != replicas,
        // First seen in this term: announced again only if being reassigned.
        None => assignment.is_being_reassigned(),
    };
    if !outside && !changed {
        return None;
    }
    let new = bumped(leader_within(replicas).unwrap_or(-1), isr_within(replicas));
    Some((ReplicaSetStep::Announce(replicas.clone()), new))
}

/// Kafka's automatic preferred-leader election: for each broker, the partitions whose
/// preferred replica (first in the assignment) it is, live and in the ISR, but led by
/// another live broker; if they are more than `imbalance_pct` percent of the broker's
/// preferred partitions, each moves back to it (`leader_epoch + 1`, same ISR). Returns the
/// number of partitions moved.
pub async fn rebalance_leaders(
    zk: &ZkClient,
    fence: &ControllerEpoch,
    state: &ClusterState,
    imbalance_pct: i32,
) -> Result<usize, ZkError> {
    let planned = preferred_elections(state, imbalance_pct, fence.epoch);
    for (name, partition, write) in &planned {
        if let StateWrite::Update(new, _) = write {
            info!(topic = %name, partition, leader = new.leader, leader_epoch = new.leader_epoch,
                "controller moved leadership back to the preferred replica");
        }
    }
    Ok(count_writes(&write_states(zk, fence, &planned).await?))
}

/// The preferred-replica elections `rebalance_leaders` makes (see there).
fn preferred_elections(
    state: &ClusterState,
    imbalance_pct: i32,
    controller_epoch: i32,
) -> Vec<PlannedWrite<'_>> {
    use std::collections::BTreeMap;
    // broker -> (preferred partitions, those it could lead but does not)
    let mut per_broker: BTreeMap<i32, (usize, Vec<PlannedWrite>)> = BTreeMap::new();
    for (name, topic) in &state.topics {
        if state.deleting.contains(name) {
            continue;
        }
        for (partition, replicas) in &topic.assignment.value.partitions {
            let Some(&preferred) = replicas.first() else {
                continue;
            };
            let entry = per_broker.entry(preferred).or_default();
            entry.0 += 1;
            let Some(current) = topic.partitions.get(partition).and_then(Option::as_ref) else {
                continue;
            };
            let s = &current.value;
            let online = |b: i32| state.is_replica_online(b, name, *partition);
            let movable = s.leader != preferred
                && s.leader >= 0
                && online(s.leader)
                && online(preferred)
                && s.isr.contains(&preferred);
            if movable {
                let new = PartitionState::new(
                    preferred,
                    s.leader_epoch + 1,
                    s.isr.clone(),
                    controller_epoch,
                );
                entry.1.push((
                    name,
                    *partition,
                    StateWrite::Update(new, current.zk_version),
                ));
            }
        }
    }
    per_broker
        .into_values()
        .filter(|(total, moves)| {
            !moves.is_empty() && moves.len() * 100 > *total * imbalance_pct.max(0) as usize
        })
        .flat_map(|(_, moves)| moves)
        .collect()
}

/// An election on request (ElectLeaders) for one partition: the state to write, with the
/// zkVersion it is conditional on, or why there is none. Preferred: leadership to the
/// first assigned replica if it is live and in the ISR. Unclean: only for a partition with
/// no live leader: the first live ISR member in assignment order, else (Kafka's unclean
/// election) the first live replica, which becomes the whole ISR.
pub fn election_on_request(
    state: &ClusterState,
    topic: &str,
    partition: i32,
    election: ElectionType,
    controller_epoch: i32,
) -> Result<(PartitionState, i32), ElectionOutcome> {
    let t = state
        .topics
        .get(topic)
        .filter(|_| !state.deleting.contains(topic))
        .ok_or(ElectionOutcome::UnknownPartition)?;
    let replicas = t
        .assignment
        .value
        .partitions
        .get(&partition)
        .ok_or(ElectionOutcome::UnknownPartition)?;
    let current = t
        .partitions
        .get(&partition)
        .and_then(Option::as_ref)
        .ok_or(ElectionOutcome::EligibleLeadersNotAvailable)?;
    let s = &current.value;
    let online = |b: i32| state.is_replica_online(b, topic, partition);
    let elect = |leader: i32, isr: Vec<i32>| {
        let new = PartitionState::new(leader, s.leader_epoch + 1, isr, controller_epoch);
        Ok((new, current.zk_version))
    };
    match election {
        ElectionType::Preferred => {
            let preferred = *replicas.first().ok_or(ElectionOutcome::UnknownPartition)?;
            if s.leader == preferred {
                Err(ElectionOutcome::NotNeeded)
            } else if online(preferred) && s.isr.contains(&preferred) {
                elect(preferred, s.isr.clone())
            } else {
                Err(ElectionOutcome::PreferredNotAvailable)
            }
        }
        ElectionType::Unclean => {
            if s.leader >= 0 && online(s.leader) {
                return Err(ElectionOutcome::NotNeeded);
            }
            let live_isr: Vec<i32> = s.isr.iter().copied().filter(|b| online(*b)).collect();
            if let Some(leader) = replicas.iter().copied().find(|r| live_isr.contains(r)) {
                return elect(leader, live_isr);
            }
            match replicas.iter().copied().find(|r| online(*r)) {
                Some(leader) => elect(leader, vec![leader]),
                None => Err(ElectionOutcome::EligibleLeadersNotAvailable),
            }
        }
    }
}

/// What became of one planned state write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    Yes,
    /// The znode changed meanwhile (or was created concurrently): the next snapshot decides.
    ChangedMeanwhile,
    Failed,
}

/// The number of writes done or found overtaken (a pass that did nothing returns 0).
fn count_writes(outcomes: &[Written]) -> usize {
    outcomes.iter().filter(|w| **w != Written::Failed).count()
}

/// Writes partition states side by side, each fenced by the controller epoch and
/// conditional on its own zkVersion. A state that changed meanwhile is left for the next
/// pass. Returns each write's outcome, in the order planned.
async fn write_states(
    zk: &ZkClient,
    fence: &ControllerEpoch,
    planned: &[PlannedWrite<'_>],
) -> Result<Vec<Written>, ZkError> {
    let mut outcomes = Vec::with_capacity(planned.len());
    // Each write is fenced and conditional on its own, so they may run side by side. (Boxed:
    // the unboxed stream's future is not provably Send inside the spawned session task.)
    let writes_in_order: Vec<BoxFuture<'_, _>> = planned
        .iter()
        .map(|(name, partition, write)| {
            async move {
                let result = match write {
                    StateWrite::Create(new) => {
                        zk.create_partition_state(name, *partition, new, Some(fence))
                            .await
                    }
                    StateWrite::Update(new, zk_version) => zk
                        .set_partition_state(name, *partition, new, *zk_version, Some(fence))
                        .await
                        .map(|_| ()),
                };
                (*name, *partition, result)
            }
            .boxed()
        })
        .collect();
    let mut results = futures_util::stream::iter(writes_in_order).buffered(PIPELINED_WRITES);
    while let Some((name, partition, result)) = results.next().await {
        outcomes.push(match result {
            Ok(()) => Written::Yes,
            Err(ZkError::BadVersion { .. }) | Err(ZkError::NodeExists { .. }) => {
                Written::ChangedMeanwhile
            }
            Err(e @ ZkError::ControllerMoved { .. }) => return Err(e),
            Err(e) if e.is_session_expired() => return Err(e),
            Err(e) => {
                warn!(topic = %name, partition, error = %e, "controller write failed");
                Written::Failed
            }
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_zk::{BrokerRegistration, Versioned};

    fn cluster(live: &[i32]) -> ClusterState {
        let mut state = ClusterState::default();
        for id in live {
            state.brokers.insert(
                *id,
                Versioned {
                    value: BrokerRegistration::new(*id, &[], None),
                    zk_version: 0,
                    czxid: 1,
                    ephemeral_owner: 1,
                },
            );
        }
        state
    }

    #[test]
    fn leader_loss_elects_the_next_live_isr_member_and_bumps_the_epoch() {
        let current = PartitionState::new(1, 4, vec![1, 2, 3], 1);
        let next = next_state(&cluster(&[2, 3]), ("t", 0), &[1, 2, 3], &current, 2, false)
            .expect("change");
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr.clone()),
            (2, 5, vec![2, 3])
        );
        assert_eq!(next.controller_epoch, 2);
        // Nothing to do once settled.
        assert!(next_state(&cluster(&[2, 3]), ("t", 0), &[1, 2, 3], &next, 2, false).is_none());
    }

    #[test]
    fn unclean_election_takes_the_first_live_replica_only_when_allowed() {
        // The ISR had shrunk to broker 3, which died; 1 and 2 are live but out of sync.
        let current = PartitionState::new(3, 7, vec![3], 1);
        let clean = next_state(&cluster(&[1, 2]), ("t", 0), &[3, 1, 2], &current, 2, false)
            .expect("offline");
        assert_eq!((clean.leader, clean.isr.clone()), (-1, vec![3]));
        let unclean = next_state(&cluster(&[1, 2]), ("t", 0), &[3, 1, 2], &current, 2, true)
            .expect("elected");
        assert_eq!(
            (unclean.leader, unclean.leader_epoch, unclean.isr.clone()),
            (1, 8, vec![1])
        );
        // An offline partition is elected uncleanly once the config allows it.
        let later =
            next_state(&cluster(&[2]), ("t", 0), &[3, 1, 2], &clean, 2, true).expect("elected");
        assert_eq!((later.leader, later.isr.clone()), (2, vec![2]));
        assert!(next_state(&cluster(&[]), ("t", 0), &[3, 1, 2], &clean, 2, true).is_none());
    }

    #[test]
    fn single_replica_goes_offline_and_comes_back() {
        let current = PartitionState::new(1, 0, vec![1], 1);
        let offline =
            next_state(&cluster(&[2]), ("t", 0), &[1], &current, 1, false).expect("offline");
        assert_eq!(
            (offline.leader, offline.leader_epoch, offline.isr.clone()),
            (-1, 1, vec![1])
        );
        assert!(next_state(&cluster(&[2]), ("t", 0), &[1], &offline, 1, false).is_none());
        let back = next_state(&cluster(&[1, 2]), ("t", 0), &[1], &offline, 1, false).expect("back");
        assert_eq!((back.leader, back.leader_epoch, back.isr), (1, 2, vec![1]));
    }

    /// A topic whose partition `p` is assigned `replicas[p]` and led as `states[p]` says.
    fn with_topic(
        mut state: ClusterState,
        replicas: &[&[i32]],
        states: &[PartitionState],
    ) -> ClusterState {
        use super::super::cluster_state::TopicState;
        let assignment = gregor_zk::TopicAssignment::new(
            replicas
                .iter()
                .enumerate()
                .map(|(p, r)| (p as i32, r.to_vec()))
                .collect(),
        );
        let partitions = states
            .iter()
            .enumerate()
            .map(|(p, s)| {
                let versioned = Versioned {
                    value: s.clone(),
                    zk_version: 3,
                    czxid: 1,
                    ephemeral_owner: 0,
                };
                (p as i32, Some(versioned))
            })
            .collect();
        let topic = TopicState {
            assignment: Versioned {
                value: assignment,
                zk_version: 0,
                czxid: 1,
                ephemeral_owner: 0,
            },
            configs: Default::default(),
            partitions,
        };
        state.topics.insert("t".into(), topic);
        state
    }

    #[test]
    fn leadership_returns_to_the_preferred_replica_once_it_is_in_sync() {
        let replicas: &[&[i32]] = &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 3, 2]];
        // Broker 1 came back: it leads none of its two preferred partitions; it is in the
        // ISR of the first only.
        let states = [
            PartitionState::new(2, 5, vec![2, 3, 1], 1),
            PartitionState::new(2, 0, vec![2, 3, 1], 1),
            PartitionState::new(3, 0, vec![3, 1, 2], 1),
            PartitionState::new(3, 4, vec![3, 2], 1),
        ];
        let state = with_topic(cluster(&[1, 2, 3]), replicas, &states);
        let moves = preferred_elections(&state, 10, 7);
        assert_eq!(moves.len(), 1, "only where broker 1 is in the ISR");
        let (topic, partition, StateWrite::Update(new, zk_version)) = &moves[0] else {
            panic!("an update");
        };
        assert_eq!((*topic, *partition, *zk_version), ("t", 0, 3));
        assert_eq!(
            (new.leader, new.leader_epoch, new.controller_epoch),
            (1, 6, 7)
        );
        assert_eq!(new.isr, vec![2, 3, 1], "the ISR stays");
        // Below the imbalance threshold (1 of 2 preferred partitions = 50%): nothing moves.
        assert!(preferred_elections(&state, 50, 7).is_empty());
        // A preferred replica that is not live is never elected.
        let state = with_topic(cluster(&[2, 3]), replicas, &states);
        assert!(preferred_elections(&state, 10, 7).is_empty());
    }

    #[test]
    fn elections_on_request_follow_kafka() {
        use ElectionOutcome as O;
        let replicas: &[&[i32]] = &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]];
        let states = [
            PartitionState::new(2, 5, vec![2, 3, 1], 1),
            PartitionState::new(2, 0, vec![2, 3], 1),
            PartitionState::new(-1, 3, vec![3], 1),
        ];
        let state = with_topic(cluster(&[1, 2]), replicas, &states);
        let elect = |p, e| election_on_request(&state, "t", p, e, 9);
        let (new, zk_version) = elect(0, ElectionType::Preferred).expect("preferred 1 is in sync");
        assert_eq!(
            (new.leader, new.leader_epoch, new.isr, zk_version),
            (1, 6, vec![2, 3, 1], 3)
        );
        assert_eq!(elect(1, ElectionType::Preferred).unwrap_err(), O::NotNeeded);
        assert_eq!(
            elect(2, ElectionType::Preferred).unwrap_err(),
            O::PreferredNotAvailable
        );
        assert_eq!(
            elect(0, ElectionType::Unclean).unwrap_err(),
            O::NotNeeded,
            "it has a leader"
        );
        // Partition 2's only ISR member (3) is dead: unclean takes the first live replica.
        let (new, _) = elect(2, ElectionType::Unclean).expect("a live replica");
        assert_eq!((new.leader, new.leader_epoch, new.isr), (1, 4, vec![1]));
        assert_eq!(
            elect(7, ElectionType::Preferred).unwrap_err(),
            O::UnknownPartition
        );
        let nobody = with_topic(cluster(&[]), replicas, &states);
        assert_eq!(
            election_on_request(&nobody, "t", 2, ElectionType::Unclean, 9).unwrap_err(),
            O::EligibleLeadersNotAvailable
        );
    }

    #[test]
    fn a_replica_in_a_failed_log_dir_loses_leadership_and_isr_membership_like_a_dead_one() {
        let mut state = cluster(&[1, 2, 3]);
        // Broker 1's replica of t-0 is in a failed directory; its t-1 is fine.
        state
            .offline_replicas
            .insert(1, [("t".to_string(), 0)].into_iter().collect());
        let led = PartitionState::new(1, 4, vec![1, 2, 3], 1);
        let next = next_state(&state, ("t", 0), &[1, 2, 3], &led, 2, false).expect("moves");
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr.clone()),
            (2, 5, vec![2, 3])
        );
        assert!(next_state(&state, ("t", 0), &[1, 2, 3], &next, 2, false).is_none());
        assert!(
            next_state(&state, ("t", 1), &[1, 2, 3], &led, 2, false).is_none(),
            "another partition of the same broker is untouched"
        );
        // A follower there leaves the ISR.
        let followed = PartitionState::new(2, 0, vec![2, 1], 1);
        let next = next_state(&state, ("t", 0), &[2, 1], &followed, 2, false).expect("shrinks");
        assert_eq!((next.leader, next.isr), (2, vec![2]));
        // The only replica: no leader, ISR kept, as for a dead broker.
        let alone = PartitionState::new(1, 0, vec![1], 1);
        let next = next_state(&state, ("t", 0), &[1], &alone, 2, false).expect("offline");
        assert_eq!((next.leader, next.isr), (-1, vec![1]));
        // Even in a controlled shutdown it does not keep the partition.
        state.shutting_down.insert(1);
        assert_eq!(
            next_state(&state, ("t", 0), &[1], &alone, 2, false).map(|n| n.leader),
            Some(-1)
        );
        // Live and (still) in the ISR, it is never elected on request nor as preferred
        // leader.
        state.shutting_down.clear();
        let replicas: &[&[i32]] = &[&[1, 2, 3]];
        let state = with_topic(
            state,
            replicas,
            &[PartitionState::new(2, 5, vec![2, 3, 1], 1)],
        );
        assert_eq!(
            election_on_request(&state, "t", 0, ElectionType::Preferred, 9).unwrap_err(),
            ElectionOutcome::PreferredNotAvailable
        );
        assert!(preferred_elections(&state, 0, 9).is_empty());
    }

    #[test]
    fn a_reassignment_is_announced_once_then_completed_within_its_target() {
        let state = cluster(&[1, 2, 3]);
        let mut announced = ReplicaSetsAnnounced::new();
        // [1, 2] moving to [2, 3]: RS [2, 3, 1], adding 3, removing 1; 1 leads.
        let moving = ReplicaAssignment::settled(vec![1, 2]).reassign_to(&[2, 3]);
        let led = PartitionState::new(1, 4, vec![1, 2], 1);
        let step = |announced: &ReplicaSetsAnnounced, current: &PartitionState| {
            replica_set_step(&state, ("t", 0), &moving, current, 2, announced)
        };
        let (first, new) = step(&announced, &led).expect("announced");
        assert_eq!(first, ReplicaSetStep::Announce(vec![2, 3, 1]));
        assert_eq!(
            (new.leader, new.leader_epoch, new.isr.clone()),
            (1, 5, vec![1, 2])
        );
        announced.insert(("t".into(), 0), vec![2, 3, 1]);
        assert_eq!(step(&announced, &new), None, "waiting for 3 to catch up");
        // 3 joined the ISR: leadership moves into the target, 1 leaves the ISR.
        let caught_up = PartitionState::new(1, 5, vec![1, 2, 3], 1);
        let (done, new) = step(&announced, &caught_up).expect("complete");
        assert_eq!(done, ReplicaSetStep::Complete(vec![2, 3]));
        assert_eq!((new.leader, new.leader_epoch, new.isr), (2, 6, vec![2, 3]));
        // A new controller announces a reassignment in progress once more.
        assert!(matches!(
            step(&ReplicaSetsAnnounced::new(), &led),
            Some((ReplicaSetStep::Announce(_), _))
        ));
        // Cancelled after 3 had joined and led: back to [2, 1], 3 leaves leadership and ISR.
        let cancelled = moving.reassign_to(&moving.origin());
        let led_by_3 = PartitionState::new(3, 7, vec![3, 2, 1], 1);
        let (step, new) = replica_set_step(&state, ("t", 0), &cancelled, &led_by_3, 2, &announced)
            .expect("repaired");
        assert_eq!(step, ReplicaSetStep::Announce(vec![2, 1]));
        assert_eq!((new.leader, new.leader_epoch, new.isr), (2, 8, vec![2, 1]));
        // A settled partition first seen needs nothing.
        let settled = ReplicaAssignment::settled(vec![1, 2]);
        assert_eq!(
            replica_set_step(
                &state,
                ("t", 0),
                &settled,
                &led,
                2,
                &ReplicaSetsAnnounced::new()
            ),
            None
        );
    }

    #[test]
    fn follower_loss_shrinks_the_isr() {
        let current = PartitionState::new(1, 0, vec![1, 2], 1);
        let next =
            next_state(&cluster(&[1]), ("t", 0), &[1, 2], &current, 1, false).expect("shrink");
        assert_eq!((next.leader, next.leader_epoch, next.isr), (1, 1, vec![1]));
    }
}
