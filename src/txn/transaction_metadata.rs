//! One transactional id's state at its coordinator (Kafka's `TransactionMetadata`) and the
//! transitions the coordinator's APIs make, as pure functions: each returns the state to
//! write to `__transaction_state`, or the error the client gets. The coordinator marks the
//! id `pending` while that write is under way and applies the state once it is stored.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;

use super::records::{TransactionLogValue, TransactionState};

/// Kafka's `Short.MaxValue`: an epoch that cannot be bumped again gets a new producer id.
const MAX_EPOCH: i16 = i16::MAX;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_EPOCH: i16 = -1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TransactionState,
    /// The partitions of the open (or ending) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
    /// A state change is being stored: other requests get CONCURRENT_TRANSACTIONS.
    pub pending: bool,
    /// The epoch before InitProducerId last bumped it (-1: none), so that a producer
    /// retrying that InitProducerId gets the bumped epoch again (KIP-360). Kept in memory
    /// only, as TransactionLogValue v0 has no field for it.
    pub last_producer_epoch: i16,
}

impl TransactionMetadata {
    pub fn from_log(v: &TransactionLogValue) -> TransactionMetadata {
        TransactionMetadata {
            producer_id: v.producer_id,
            producer_epoch: v.producer_epoch,
            timeout_ms: v.transaction_timeout_ms,
            state: v.state,
            partitions: v
                .partitions
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .collect(),
            start_timestamp_ms: v.start_timestamp_ms,
            last_update_timestamp_ms: v.last_update_timestamp_ms,
            pending: false,
            last_producer_epoch: NO_EPOCH,
        }
    }

    pub fn to_log(&self) -> TransactionLogValue {
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &self.partitions {
            partitions.entry(t.clone()).or_default().push(*p);
        }
        TransactionLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_timestamp_ms: self.last_update_timestamp_ms,
            start_timestamp_ms: self.start_timestamp_ms,
        }
    }

    /// A transaction that markers must finish (after a restart or a failover).
    pub fn is_preparing(&self) -> bool {
        matches!(
            self.state,
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        )
    }

    /// Kafka's producer checks before a transactional request: the id must map to the
    /// producer, the epoch must be the current one, and no state change may be under way.
    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), E> {
        if self.producer_id != producer_id {
            return Err(E::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(E::ProducerFenced);
        }
        if self.pending {
            return Err(E::ConcurrentTransactions);
        }
        Ok(())
    }

    /// InitProducerId for an id already known: a new epoch (a new producer id once the
    /// epoch is exhausted) and an Empty state. Ongoing transactions must be aborted first
    /// (`fence_and_abort`); Prepare* ones must finish.
    ///
    /// `expected` is the producer id and epoch an InitProducerId v3+ names (KIP-360: a
    /// producer bumping its own epoch): the epoch is bumped only from the current one, a
    /// retry from the epoch before gets the current one again, anything else is fenced.
    pub fn init_producer_id(
        &self,
        expected: Option<(i64, i16)>,
        new_producer_id: impl FnOnce() -> Option<i64>,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<TransactionMetadata, E> {
        if self.pending {
            return Err(E::ConcurrentTransactions);
        }
        self.check_expected_producer(expected)?;
        if self.is_preparing() {
            return Err(E::ConcurrentTransactions);
        }
        let expected_epoch = expected.map(|(_, epoch)| epoch).unwrap_or(NO_EPOCH);
        // No epoch to compare with (none expected, or a new id): bump.
        let from_current = expected_epoch == NO_EPOCH
            || self.producer_epoch == NO_EPOCH
            || expected_epoch == self.producer_epoch;
        let mut next = self.clone();
        if self.producer_epoch >= MAX_EPOCH - 1 && from_current {
            next.producer_id = new_producer_id().ok_or(E::CoordinatorNotAvailable)?;
            next.producer_epoch = 0;
            next.last_producer_epoch = NO_EPOCH;
        } else if from_current {
            next.producer_epoch = self.producer_epoch + 1;
            next.last_producer_epoch = self.producer_epoch;
        } else if expected_epoch != self.last_producer_epoch {
            return Err(E::ProducerFenced);
        }
        next.timeout_ms = timeout_ms;
        next.state = TransactionState::Empty;
        next.partitions.clear();
        next.start_timestamp_ms = -1;
        next.last_update_timestamp_ms = now_ms;
        Ok(next)
    }

    /// The producer an InitProducerId v3+ names must be this id's (or the id must be new:
    /// a producer of an idempotent id turned transactional), else it is a zombie.
    pub fn check_expected_producer(&self, expected: Option<(i64, i16)>) -> Result<(), E> {
        match expected {
            Some((producer_id, _))
                if self.producer_epoch != NO_EPOCH && producer_id != self.producer_id =>
            {
                Err(E::ProducerFenced)
            }
            _ => Ok(()),
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn's offsets partition): the transaction is
    /// Ongoing with these partitions. None: nothing to store (all already in it).
    pub fn add_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, E> {
        self.check_producer(producer_id, producer_epoch)?;
        if self.is_preparing() || self.state == TransactionState::PrepareEpochFence {
            return Err(E::ConcurrentTransactions);
        }
        if self.state == TransactionState::Ongoing
            && partitions.iter().all(|p| self.partitions.contains(p))
        {
            return Ok(None);
        }
        let mut next = self.clone();
        if self.state != TransactionState::Ongoing {
            next.start_timestamp_ms = now_ms;
            next.partitions.clear();
        }
        next.state = TransactionState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_timestamp_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn: Ongoing becomes PrepareCommit or PrepareAbort. Ok(None): the same end was
    /// asked again after it completed (a retry), nothing to do.
    pub fn end_transaction(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, E> {
        self.check_producer(producer_id, producer_epoch)?;
        use TransactionState as S;
        match (self.state, commit) {
            (S::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    S::PrepareCommit
                } else {
                    S::PrepareAbort
                };
                next.last_update_timestamp_ms = now_ms;
                Ok(Some(next))
            }
            (S::CompleteCommit, true) | (S::CompleteAbort, false) => Ok(None),
            (S::PrepareCommit, true) | (S::PrepareAbort, false) => Err(E::ConcurrentTransactions),
            _ => Err(E::InvalidTxnState),
        }
    }

    /// The coordinator aborts a transaction itself (its timeout passed, or a new producer
    /// with the same transactional id arrived): the epoch is bumped so that the old
    /// producer is fenced, and the markers carry the new epoch.
    pub fn fence_and_abort(&self, now_ms: i64) -> Option<TransactionMetadata> {
        if self.pending || self.state != TransactionState::Ongoing {
            return None;
        }
        let mut next = self.clone();
        if self.producer_epoch < MAX_EPOCH {
            next.producer_epoch = self.producer_epoch + 1;
        }
        // The fenced producer's epoch is not one a retry may come back with.
        next.last_producer_epoch = NO_EPOCH;
        next.state = TransactionState::PrepareAbort;
        next.last_update_timestamp_ms = now_ms;
        Some(next)
    }

    /// After the markers: CompleteCommit or CompleteAbort, no partitions.
    pub fn complete(&self, now_ms: i64) -> TransactionMetadata {
        let mut next = self.clone();
        next.state = if self.state == TransactionState::PrepareCommit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        next.partitions.clear();
        next.last_update_timestamp_ms = now_ms;
        next.pending = false;
        next
    }

    /// A partition leader's question before it appends a transactional batch (AddPartitionsToTxn
    /// v4+ with verify_only, KIP-890): is each partition in this producer's open transaction?
    /// Kafka's `handleVerifyPartitionsInTransaction`: a pending change is not waited for
    /// (the append is checked again in the log); a partition not in the transaction gets
    /// `not_in_transaction`.
    pub fn verify_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        not_in_transaction: E,
    ) -> Result<Vec<Option<E>>, E> {
        if self.producer_id != producer_id {
            return Err(E::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(E::ProducerFenced);
        }
        if self.is_preparing() {
            return Err(E::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|p| (!self.partitions.contains(p)).then_some(not_in_transaction))
            .collect())
    }

    /// Whether the id may be forgotten: no transaction open or ending, nothing in flight,
    /// and no change for `expiration_ms` (Kafka's rule for `transactional.id.expiration.ms`).
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        !self.pending
            && matches!(
                self.state,
                TransactionState::Empty
                    | TransactionState::CompleteCommit
                    | TransactionState::CompleteAbort
            )
            && self.last_update_timestamp_ms <= now_ms - expiration_ms
    }

    /// Kafka's expiry of an open transaction: past its timeout since it started.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TransactionState::Ongoing
            && !self.pending
            && now_ms
                > self
                    .start_timestamp_ms
                    .saturating_add(i64::from(self.timeout_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> TransactionMetadata {
        TransactionMetadata {
            producer_id: 5,
            producer_epoch: 0,
            timeout_ms: 1000,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: 0,
            pending: false,
            last_producer_epoch: NO_EPOCH,
        }
    }

    fn tp(t: &str, p: i32) -> (String, i32) {
        (t.to_string(), p)
    }

    #[test]
    fn verification_names_the_partitions_outside_the_transaction() {
        let open = fresh()
            .add_partitions(5, 0, &[tp("a", 0)], 100)
            .unwrap()
            .unwrap();
        let asked = [tp("a", 0), tp("a", 1)];
        assert_eq!(
            open.verify_partitions(5, 0, &asked, E::TransactionAbortable),
            Ok(vec![None, Some(E::TransactionAbortable)])
        );
        assert_eq!(
            open.verify_partitions(6, 0, &asked, E::InvalidTxnState),
            Err(E::InvalidProducerIdMapping)
        );
        assert_eq!(
            open.verify_partitions(5, 1, &asked, E::InvalidTxnState),
            Err(E::ProducerFenced)
        );
        let prepared = open.end_transaction(5, 0, true, 200).unwrap().unwrap();
        assert_eq!(
            prepared.verify_partitions(5, 0, &asked, E::InvalidTxnState),
            Err(E::ConcurrentTransactions)
        );
    }

    #[test]
    fn only_an_idle_id_without_a_transaction_expires() {
        let idle = TransactionMetadata {
            last_update_timestamp_ms: 1_000,
            ..fresh()
        };
        assert!(
            idle.expired(11_000, 10_000),
            "idle for exactly the expiration"
        );
        assert!(!idle.expired(10_999, 10_000), "not yet");
        let open = idle
            .add_partitions(5, 0, &[tp("a", 0)], 1_000)
            .unwrap()
            .unwrap();
        assert!(
            !open.expired(1_000_000, 10_000),
            "an open transaction never expires"
        );
        let prepared = open.end_transaction(5, 0, true, 1_000).unwrap().unwrap();
        assert!(
            !prepared.expired(1_000_000, 10_000),
            "nor one being committed"
        );
        let done = prepared.complete(1_000);
        assert!(done.expired(11_000, 10_000), "a completed one does");
        let in_flight = TransactionMetadata {
            pending: true,
            ..done
        };
        assert!(
            !in_flight.expired(11_000, 10_000),
            "not while a change is being stored"
        );
    }

    #[test]
    fn a_transaction_goes_ongoing_prepare_complete_and_the_log_value_round_trips() {
        let m = fresh();
        let m = m.add_partitions(5, 0, &[tp("a", 0)], 100).unwrap().unwrap();
        assert_eq!(
            (m.state, m.start_timestamp_ms),
            (TransactionState::Ongoing, 100)
        );
        assert_eq!(m.add_partitions(5, 0, &[tp("a", 0)], 150), Ok(None));
        let m = m.add_partitions(5, 0, &[tp("b", 1)], 200).unwrap().unwrap();
        assert_eq!(m.start_timestamp_ms, 100, "still the same transaction");
        assert_eq!(TransactionMetadata::from_log(&m.to_log()), m);
        let prepared = m.end_transaction(5, 0, true, 300).unwrap().unwrap();
        assert_eq!(prepared.state, TransactionState::PrepareCommit);
        assert_eq!(
            prepared.end_transaction(5, 0, true, 301),
            Err(E::ConcurrentTransactions)
        );
        assert_eq!(
            prepared.add_partitions(5, 0, &[tp("a", 0)], 301),
            Err(E::ConcurrentTransactions)
        );
        let done = prepared.complete(400);
        assert_eq!(done.state, TransactionState::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert_eq!(
            done.end_transaction(5, 0, true, 401),
            Ok(None),
            "a retried commit"
        );
        assert_eq!(
            done.end_transaction(5, 0, false, 401),
            Err(E::InvalidTxnState)
        );
    }

    #[test]
    fn producers_are_checked_and_fenced() {
        let m = fresh()
            .add_partitions(5, 0, &[tp("a", 0)], 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            m.add_partitions(6, 0, &[tp("a", 0)], 2),
            Err(E::InvalidProducerIdMapping)
        );
        assert_eq!(m.end_transaction(5, 1, true, 2), Err(E::ProducerFenced));
        assert_eq!(
            m.init_producer_id(None, || None, 1000, 2),
            Ok(TransactionMetadata {
                producer_epoch: 1,
                last_producer_epoch: 0,
                state: TransactionState::Empty,
                partitions: BTreeSet::new(),
                start_timestamp_ms: -1,
                last_update_timestamp_ms: 2,
                ..m.clone()
            })
        );
        let fenced = m.fence_and_abort(3).unwrap();
        assert_eq!(
            (fenced.state, fenced.producer_epoch),
            (TransactionState::PrepareAbort, 1)
        );
        assert_eq!(
            fenced.end_transaction(5, 0, true, 4),
            Err(E::ProducerFenced)
        );
        assert!(fenced.fence_and_abort(4).is_none());
        assert!(!m.timed_out(1001) && m.timed_out(1002));
    }

    #[test]
    fn an_exhausted_epoch_takes_a_new_producer_id() {
        let m = TransactionMetadata {
            producer_epoch: MAX_EPOCH - 1,
            ..fresh()
        };
        let next = m.init_producer_id(None, || Some(77), 500, 1).unwrap();
        assert_eq!(
            (next.producer_id, next.producer_epoch, next.timeout_ms),
            (77, 0, 500)
        );
    }

    #[test]
    fn a_producer_bumps_its_own_epoch_and_a_retry_gets_the_same_one() {
        let m = fresh(); // producer 5, epoch 0
        let bumped = m.init_producer_id(Some((5, 0)), || None, 1000, 1).unwrap();
        assert_eq!((bumped.producer_epoch, bumped.last_producer_epoch), (1, 0));
        // The answer was lost; the producer asks again from epoch 0.
        let retried = bumped
            .init_producer_id(Some((5, 0)), || None, 1000, 2)
            .unwrap();
        assert_eq!(retried.producer_epoch, 1, "not bumped twice");
        // Another producer id, or an epoch from neither now nor just before: a zombie.
        assert_eq!(
            bumped.init_producer_id(Some((6, 1)), || None, 1000, 2),
            Err(E::ProducerFenced)
        );
        let twice = bumped
            .init_producer_id(Some((5, 1)), || None, 1000, 3)
            .unwrap();
        assert_eq!(
            twice.init_producer_id(Some((5, 0)), || None, 1000, 4),
            Err(E::ProducerFenced)
        );
        // A new id (epoch -1) accepts the idempotent producer it was before.
        let new = TransactionMetadata {
            producer_epoch: NO_EPOCH,
            ..fresh()
        };
        assert_eq!(
            new.init_producer_id(Some((1234, 3)), || None, 1000, 1)
                .map(|n| n.producer_epoch),
            Ok(0)
        );
    }
}
