//! Partition reassignment (KIP-455) as data: a partition's full replica set while a
//! reassignment is in progress, and the checks AlterPartitionReassignments makes. Kafka's
//! `ReplicaAssignment` and `KafkaController.validateReplicas`; the stores (and, in ZooKeeper
//! mode, the controller's `reconcile`) act on them.
//!
//! While a partition moves from the origin replicas (ORS) to the target replicas (TRS), its
//! assignment lists RS = TRS followed by the origin replicas not in TRS, with AR = RS - ORS
//! (adding) and RR = ORS - TRS (removing); in ZooKeeper these are the assignment znode's
//! `adding_replicas` and `removing_replicas`. The reassignment completes once every target
//! replica is in the ISR: RS becomes TRS.

use std::collections::BTreeSet;

/// Kafka's error codes for a reassignment refused.
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
pub const NOT_CONTROLLER: i16 = 41;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;

/// A partition's replicas, with those being added and removed by a reassignment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaAssignment {
    /// RS: every replica the partition has now, target replicas first.
    pub replicas: Vec<i32>,
    /// AR: replicas joining (in RS, not in the origin set).
    pub adding: Vec<i32>,
    /// RR: replicas leaving (in RS, not in the target set).
    pub removing: Vec<i32>,
}

impl ReplicaAssignment {
    /// A partition with no reassignment in progress.
    pub fn settled(replicas: Vec<i32>) -> Self {
        ReplicaAssignment {
            replicas,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    pub fn is_being_reassigned(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// ORS: the replicas before the reassignment began.
    pub fn origin(&self) -> Vec<i32> {
        without(&self.replicas, &self.adding)
    }

    /// TRS: the replicas once it completes.
    pub fn target(&self) -> Vec<i32> {
        without(&self.replicas, &self.removing)
    }

    /// Kafka's `reassignTo`: a new reassignment to `target` from this partition's origin
    /// replicas (a reassignment in progress is replaced, and one back to the origin
    /// replicas cancels it).
    pub fn reassign_to(&self, target: &[i32]) -> ReplicaAssignment {
        let origin = self.origin();
        let mut replicas: Vec<i32> = Vec::with_capacity(target.len() + origin.len());
        for r in target.iter().chain(origin.iter()) {
            if !replicas.contains(r) {
                replicas.push(*r);
            }
        }
        ReplicaAssignment {
            adding: without(&replicas, &origin),
            removing: without(&origin, target),
            replicas,
        }
    }

    /// Whether the reassignment can complete: every target replica is in the ISR.
    pub fn is_complete(&self, isr: &[i32]) -> bool {
        self.target().iter().all(|r| isr.contains(r))
    }
}

fn without(from: &[i32], remove: &[i32]) -> Vec<i32> {
    from.iter()
        .copied()
        .filter(|r| !remove.contains(r))
        .collect()
}

/// A refused reassignment: Kafka's error code and message.
pub type Refusal = (i16, String);

/// Kafka's `validateReplicas` for a new target: not empty, no duplicates, no negative ids,
/// and every replica it adds is a live broker. With `allow_replication_factor_change` false
/// (AlterPartitionReassignments v1, KIP-860), the target must keep the replication factor.
pub fn validate_target(
    current: &ReplicaAssignment,
    target: &[i32],
    live_brokers: &BTreeSet<i32>,
    allow_replication_factor_change: bool,
) -> Result<(), Refusal> {
    let distinct: BTreeSet<i32> = target.iter().copied().collect();
    if target.is_empty() {
        return Err((
            INVALID_REPLICA_ASSIGNMENT,
            "Empty replica list specified in partition reassignment.".into(),
        ));
    }
    if distinct.len() != target.len() {
        return Err((
            INVALID_REPLICA_ASSIGNMENT,
            format!("Duplicate replica ids in partition reassignment replica list: {target:?}"),
        ));
    }
    if target.iter().any(|r| *r < 0) {
        return Err((
            INVALID_REPLICA_ASSIGNMENT,
            format!("Invalid broker id in replica list: {target:?}"),
        ));
    }
    let adding = current.reassign_to(target).adding;
    if !adding.iter().all(|r| live_brokers.contains(r)) {
        return Err((
            INVALID_REPLICA_ASSIGNMENT,
            format!(
                "Replica assignment has brokers that are not alive. Replica list: {adding:?}, \
                 live broker list: {live_brokers:?}"
            ),
        ));
    }
    let origin = current.origin();
    if !allow_replication_factor_change && !origin.is_empty() && origin.len() != target.len() {
        return Err((
            INVALID_REPLICATION_FACTOR,
            format!(
                "The replication factor is changed from {} to {} but \
                 allowReplicationFactorChange is false",
                origin.len(),
                target.len()
            ),
        ));
    }
    Ok(())
}

/// What AlterPartitionReassignments does to one partition (Kafka's `maybeBuildReassignment`
/// and `maybeTriggerPartitionReassignment`): `target` None cancels the reassignment in
/// progress (the origin replicas become the target). Returns the partition's new replicas,
/// or None if nothing changes. `current` None: no such partition (or its topic is being
/// deleted).
pub fn plan(
    current: Option<&ReplicaAssignment>,
    target: Option<&[i32]>,
    live_brokers: &BTreeSet<i32>,
    allow_replication_factor_change: bool,
) -> Result<Option<ReplicaAssignment>, Refusal> {
    let Some(target) = target else {
        return match current {
            Some(current) if current.is_being_reassigned() => {
                Ok(Some(current.reassign_to(&current.origin())))
            }
            _ => Err((
                NO_REASSIGNMENT_IN_PROGRESS,
                "No partition reassignment is in progress for this partition.".into(),
            )),
        };
    };
    let empty = ReplicaAssignment::default();
    validate_target(
        current.unwrap_or(&empty),
        target,
        live_brokers,
        allow_replication_factor_change,
    )?;
    let Some(current) = current else {
        return Err((
            UNKNOWN_TOPIC_OR_PARTITION,
            "The partition does not exist.".into(),
        ));
    };
    let next = current.reassign_to(target);
    Ok((next != *current).then_some(next))
}

/// One partition's reassignment as ListPartitionReassignments reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub assignment: ReplicaAssignment,
}

/// The partitions of an AlterPartitionReassignments request, each with its target replicas
/// (`None`: cancel).
pub type ReassignmentTargets = Vec<((String, i32), Option<Vec<i32>>)>;

/// The answer for each partition of an AlterPartitionReassignments request.
pub type ReassignmentResults = Vec<((String, i32), Result<(), Refusal>)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_lists_target_then_origin_and_completes_when_the_target_is_in_sync() {
        // Kafka's example: {1,2,3} to {4,5,6}.
        let moving = ReplicaAssignment::settled(vec![1, 2, 3]).reassign_to(&[4, 5, 6]);
        assert_eq!(moving.replicas, vec![4, 5, 6, 1, 2, 3]);
        assert_eq!(moving.adding, vec![4, 5, 6]);
        assert_eq!(moving.removing, vec![1, 2, 3]);
        assert_eq!(moving.origin(), vec![1, 2, 3]);
        assert_eq!(moving.target(), vec![4, 5, 6]);
        assert!(!moving.is_complete(&[1, 2, 3, 4, 5]));
        assert!(moving.is_complete(&[1, 2, 3, 4, 5, 6]));
        // An overlapping target keeps its order; the shared replica is neither added nor
        // removed.
        let overlap = ReplicaAssignment::settled(vec![1, 2, 3]).reassign_to(&[3, 4, 2]);
        assert_eq!(overlap.replicas, vec![3, 4, 2, 1]);
        assert_eq!((overlap.adding, overlap.removing), (vec![4], vec![1]));
    }

    #[test]
    fn a_new_target_replaces_the_reassignment_and_the_origin_cancels_it() {
        let moving = ReplicaAssignment::settled(vec![1, 2]).reassign_to(&[2, 3]);
        assert_eq!(moving.replicas, vec![2, 3, 1]);
        // Replaced: computed from the origin {1,2}, so 3 is no longer added.
        let replaced = moving.reassign_to(&[2, 4]);
        assert_eq!(replaced.replicas, vec![2, 4, 1]);
        assert_eq!(
            (replaced.adding.clone(), replaced.removing),
            (vec![4], vec![1])
        );
        // Cancelled: back to the origin replicas at once (the added one is dropped, as
        // Kafka's controller stops it then and there; the origin order is not restored).
        let cancelled = moving.reassign_to(&moving.origin());
        assert_eq!(cancelled, ReplicaAssignment::settled(vec![2, 1]));
        // The same replicas again: nothing to do.
        let same = ReplicaAssignment::settled(vec![1, 2]).reassign_to(&[1, 2]);
        assert!(!same.is_being_reassigned());
    }

    #[test]
    fn a_request_plans_a_new_assignment_a_cancellation_or_nothing() {
        let live: BTreeSet<i32> = [1, 2, 3].into();
        let settled = ReplicaAssignment::settled(vec![1, 2]);
        let moving = plan(Some(&settled), Some(&[2, 3]), &live, false)
            .expect("valid")
            .expect("a change");
        assert_eq!(
            (moving.replicas.clone(), moving.adding.clone()),
            (vec![2, 3, 1], vec![3])
        );
        assert_eq!(plan(Some(&settled), Some(&[1, 2]), &live, false), Ok(None));
        let cancel = plan(Some(&moving), None, &live, false)
            .expect("valid")
            .expect("a change");
        assert_eq!(cancel, ReplicaAssignment::settled(vec![2, 1]));
        let code = |current: Option<&ReplicaAssignment>, target: Option<&[i32]>| {
            plan(current, target, &live, true).map_err(|(code, _)| code)
        };
        assert_eq!(code(Some(&settled), None), Err(NO_REASSIGNMENT_IN_PROGRESS));
        assert_eq!(code(None, None), Err(NO_REASSIGNMENT_IN_PROGRESS));
        assert_eq!(code(None, Some(&[1])), Err(UNKNOWN_TOPIC_OR_PARTITION));
        assert_eq!(
            code(None, Some(&[9])),
            Err(INVALID_REPLICA_ASSIGNMENT),
            "validated first"
        );
    }

    #[test]
    fn targets_are_validated_as_kafka_does() {
        let current = ReplicaAssignment::settled(vec![1, 2]);
        let live: BTreeSet<i32> = [1, 2, 3].into();
        let code = |target: &[i32], allow| {
            validate_target(&current, target, &live, allow).map_err(|(code, _)| code)
        };
        assert_eq!(code(&[], true), Err(INVALID_REPLICA_ASSIGNMENT));
        assert_eq!(code(&[1, 1], true), Err(INVALID_REPLICA_ASSIGNMENT));
        assert_eq!(code(&[-1, 2], true), Err(INVALID_REPLICA_ASSIGNMENT));
        assert_eq!(
            code(&[2, 4], true),
            Err(INVALID_REPLICA_ASSIGNMENT),
            "4 is not live"
        );
        assert_eq!(code(&[2, 3], false), Ok(()));
        assert_eq!(code(&[1, 2, 3], true), Ok(()));
        assert_eq!(code(&[1, 2, 3], false), Err(INVALID_REPLICATION_FACTOR));
        // A replica already assigned may be kept although its broker is down.
        let live: BTreeSet<i32> = [2, 3].into();
        assert_eq!(validate_target(&current, &[1, 3], &live, true), Ok(()));
    }
}
