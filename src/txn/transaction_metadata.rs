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
    /// The producer id before the last stored change (-1: none); with transactions v2 a
    /// producer retrying the EndTxn that moved it to a new producer id names this one.
    pub previous_producer_id: i64,
    /// With transactions v2, the producer id a transaction ending with an exhausted epoch
    /// hands over to on completion (-1: none).
    pub next_producer_id: i64,
    /// The transaction version of the requests that made this state: 2 when the producer
    /// uses transactions v2 (KIP-890 part 2: every EndTxn bumps the epoch), else 0.
    pub client_transaction_version: i16,
}

/// The transaction version whose transactions bump the producer epoch at every end.
pub const TV2: i16 = 2;

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
            previous_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            client_transaction_version: v.client_transaction_version,
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
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            client_transaction_version: self.client_transaction_version,
        }
    }

    fn uses_epoch_bump(&self) -> bool {
        self.client_transaction_version >= TV2
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
    /// a producer of an idempotent id turned transactional), else it is a zombie. With
    /// transactions v2 it may also be the producer id just left behind by an exhausted
    /// epoch, whose answer the producer never got.
    pub fn check_expected_producer(&self, expected: Option<(i64, i16)>) -> Result<(), E> {
        match expected {
            Some((producer_id, epoch))
                if self.producer_epoch != NO_EPOCH
                    && producer_id != self.producer_id
                    && !(producer_id == self.previous_producer_id && epoch >= MAX_EPOCH - 1) =>
            {
                Err(E::ProducerFenced)
            }
            _ => Ok(()),
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn's offsets partition): the transaction is
    /// Ongoing with these partitions. None: nothing to store (all already in it).
    /// `client_transaction_version` is 2 when a partition leader adds them for a producer
    /// using transactions v2, else 0.
    pub fn add_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        client_transaction_version: i16,
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, E> {
        // First, as in Kafka (whose completion is pending while the markers are written): a
        // transactions v2 producer may already use the epoch, or after an exhausted epoch
        // the producer id, that the completion under way gives it.
        if self.pending || self.is_preparing() || self.state == TransactionState::PrepareEpochFence
        {
            return Err(E::ConcurrentTransactions);
        }
        self.check_producer(producer_id, producer_epoch)?;
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
        next.client_transaction_version = client_transaction_version;
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
                next.client_transaction_version = 0;
                Ok(Some(next))
            }
            (S::CompleteCommit, true) | (S::CompleteAbort, false) => Ok(None),
            (S::PrepareCommit, true) | (S::PrepareAbort, false) => Err(E::ConcurrentTransactions),
            _ => Err(E::InvalidTxnState),
        }
    }

    /// EndTxn v5+ (transactions v2, KIP-890 part 2), Kafka's rules: every end bumps the
    /// epoch, so the request's epoch is the current one for an open transaction, and one
    /// less (or, across an exhausted epoch, the previous producer id at `MAX - 1`) for a
    /// retry of an end already stored. An abort may also come with no transaction open (the
    /// producer does not know whether its first batch reached a leader). Ok(None): a retry
    /// of an end already completed; the caller answers with the current id and epoch.
    /// `new_producer_id` is the id an exhausted epoch moves to (needed when
    /// `needs_new_producer_id`).
    pub fn end_transaction_v2(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        new_producer_id: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, E> {
        use TransactionState as S;
        if self.pending {
            return Err(E::ConcurrentTransactions);
        }
        let retry_on_overflow = self.previous_producer_id == producer_id
            && producer_epoch == MAX_EPOCH - 1
            && self.producer_epoch == 0;
        let retry_on_bump = i32::from(self.producer_epoch) == i32::from(producer_epoch) + 1;
        let valid_epoch = match self.state {
            S::Ongoing | S::Empty | S::Dead | S::PrepareEpochFence => {
                producer_epoch == self.producer_epoch
            }
            S::PrepareCommit | S::PrepareAbort => retry_on_bump,
            S::CompleteCommit | S::CompleteAbort => {
                retry_on_bump || retry_on_overflow || producer_epoch == self.producer_epoch
            }
        };
        if self.producer_id != producer_id && !retry_on_overflow {
            return Err(E::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(E::ProducerFenced);
        }
        let retry = retry_on_bump || retry_on_overflow;
        let prepare = |state: S, nothing_added: bool| {
            self.prepare_end_v2(state, nothing_added, new_producer_id, now_ms)
        };
        match (self.state, commit) {
            (S::Ongoing, true) => prepare(S::PrepareCommit, false),
            (S::Ongoing, false) => prepare(S::PrepareAbort, false),
            (S::CompleteCommit, true) | (S::CompleteAbort, false) if retry => Ok(None),
            (S::CompleteCommit, false) if retry => Err(E::InvalidTxnState),
            (S::CompleteCommit | S::CompleteAbort | S::Empty, false) => {
                prepare(S::PrepareAbort, true)
            }
            (S::PrepareCommit, true) | (S::PrepareAbort, false) => Err(E::ConcurrentTransactions),
            _ => Err(E::InvalidTxnState),
        }
    }

    /// Kafka's `prepareAbortOrCommit` for transactions v2: the epoch is bumped (a new
    /// producer id is taken on completion once it is exhausted) and the markers carry it.
    fn prepare_end_v2(
        &self,
        state: TransactionState,
        nothing_added: bool,
        new_producer_id: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, E> {
        let mut next = self.clone();
        next.next_producer_id = if self.producer_epoch >= MAX_EPOCH - 1 {
            new_producer_id.ok_or(E::CoordinatorNotAvailable)?
        } else {
            -1
        };
        // An epoch already at the maximum (only by a fence) is not bumped past it.
        if self.producer_epoch < MAX_EPOCH {
            next.producer_epoch = self.producer_epoch + 1;
        }
        next.last_producer_epoch = self.producer_epoch;
        next.state = state;
        if nothing_added {
            // Aborting with no partition added: the transaction starts and ends now.
            next.start_timestamp_ms = now_ms;
            next.partitions.clear();
        }
        next.last_update_timestamp_ms = now_ms;
        next.client_transaction_version = TV2;
        Ok(Some(next))
    }

    /// The coordinator aborts a transaction itself (its timeout passed, or a new producer
    /// with the same transactional id arrived): the epoch is bumped so that the old
    /// producer is fenced, and the markers carry the new epoch. `transaction_version` is
    /// the cluster's: at 2, as Kafka's coordinator does, the abort is a transactions v2 one,
    /// so that the producer may still end it (EndTxn with the epoch before) and go on.
    pub fn fence_and_abort(
        &self,
        transaction_version: i16,
        new_producer_id: Option<i64>,
        now_ms: i64,
    ) -> Option<TransactionMetadata> {
        if self.pending || self.state != TransactionState::Ongoing {
            return None;
        }
        if transaction_version >= TV2 {
            return self
                .prepare_end_v2(
                    TransactionState::PrepareAbort,
                    false,
                    new_producer_id,
                    now_ms,
                )
                .ok()
                .flatten();
        }
        let mut next = self.clone();
        if self.producer_epoch < MAX_EPOCH {
            next.producer_epoch = self.producer_epoch + 1;
        }
        // The fenced producer's epoch is not one a retry may come back with.
        next.last_producer_epoch = NO_EPOCH;
        next.state = TransactionState::PrepareAbort;
        next.last_update_timestamp_ms = now_ms;
        next.client_transaction_version = 0;
        Some(next)
    }

    /// After the markers: CompleteCommit or CompleteAbort, no partitions. With
    /// transactions v2 an exhausted epoch hands over to the next producer id, at epoch 0.
    pub fn complete(&self, now_ms: i64) -> TransactionMetadata {
        let mut next = self.clone();
        next.state = if self.state == TransactionState::PrepareCommit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        if self.uses_epoch_bump() && self.next_producer_id != -1 {
            next.producer_id = self.next_producer_id;
            next.producer_epoch = 0;
        }
        next.next_producer_id = -1;
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
            previous_producer_id: -1,
            next_producer_id: -1,
            client_transaction_version: 0,
        }
    }

    fn tp(t: &str, p: i32) -> (String, i32) {
        (t.to_string(), p)
    }

    #[test]
    fn verification_names_the_partitions_outside_the_transaction() {
        let open = fresh()
            .add_partitions(5, 0, &[tp("a", 0)], 0, 100)
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
            .add_partitions(5, 0, &[tp("a", 0)], 0, 1_000)
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
        let m = m
            .add_partitions(5, 0, &[tp("a", 0)], 0, 100)
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.state, m.start_timestamp_ms),
            (TransactionState::Ongoing, 100)
        );
        assert_eq!(m.add_partitions(5, 0, &[tp("a", 0)], 0, 150), Ok(None));
        let m = m
            .add_partitions(5, 0, &[tp("b", 1)], 0, 200)
            .unwrap()
            .unwrap();
        assert_eq!(m.start_timestamp_ms, 100, "still the same transaction");
        assert_eq!(TransactionMetadata::from_log(&m.to_log()), m);
        let prepared = m.end_transaction(5, 0, true, 300).unwrap().unwrap();
        assert_eq!(prepared.state, TransactionState::PrepareCommit);
        assert_eq!(
            prepared.end_transaction(5, 0, true, 301),
            Err(E::ConcurrentTransactions)
        );
        assert_eq!(
            prepared.add_partitions(5, 0, &[tp("a", 0)], 0, 301),
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
            .add_partitions(5, 0, &[tp("a", 0)], 0, 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            m.add_partitions(6, 0, &[tp("a", 0)], 0, 2),
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
        let fenced = m.fence_and_abort(0, None, 3).unwrap();
        assert_eq!(
            (fenced.state, fenced.producer_epoch),
            (TransactionState::PrepareAbort, 1)
        );
        assert_eq!(
            fenced.end_transaction(5, 0, true, 4),
            Err(E::ProducerFenced)
        );
        assert!(fenced.fence_and_abort(0, None, 4).is_none());
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

    #[test]
    fn transactions_v2_bump_the_epoch_at_every_end_and_know_a_retry() {
        let open = fresh()
            .add_partitions(5, 0, &[tp("a", 0)], TV2, 100)
            .unwrap()
            .unwrap();
        let prepared = open
            .end_transaction_v2(5, 0, true, None, 200)
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                prepared.state,
                prepared.producer_epoch,
                prepared.last_producer_epoch
            ),
            (TransactionState::PrepareCommit, 1, 0),
            "the markers carry the bumped epoch"
        );
        // A retry while the markers are written, then after they are.
        assert_eq!(
            prepared.end_transaction_v2(5, 0, true, None, 201),
            Err(E::ConcurrentTransactions)
        );
        let done = prepared.complete(300);
        assert_eq!((done.producer_id, done.producer_epoch), (5, 1));
        assert_eq!(done.end_transaction_v2(5, 0, true, None, 301), Ok(None));
        assert_eq!(
            done.end_transaction_v2(5, 0, false, None, 301),
            Err(E::InvalidTxnState),
            "an abort retried after the commit"
        );
        // The next transaction is at epoch 1; an epoch from before that is a zombie.
        assert_eq!(
            done.add_partitions(5, 0, &[tp("a", 0)], TV2, 302),
            Err(E::ProducerFenced)
        );
        // An abort with nothing added (the producer's first batch may not have arrived).
        let aborting = done
            .end_transaction_v2(5, 1, false, None, 400)
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                aborting.state,
                aborting.producer_epoch,
                aborting.start_timestamp_ms
            ),
            (TransactionState::PrepareAbort, 2, 400)
        );
        assert!(aborting.partitions.is_empty());
        assert_eq!(
            fresh().end_transaction_v2(5, 0, true, None, 1),
            Err(E::InvalidTxnState),
            "a commit with nothing open"
        );
        assert_eq!(
            done.end_transaction_v2(5, 3, true, None, 1),
            Err(E::ProducerFenced)
        );
    }

    #[test]
    fn an_exhausted_epoch_ends_its_v2_transaction_on_a_new_producer_id() {
        let open = TransactionMetadata {
            producer_epoch: MAX_EPOCH - 1,
            ..fresh()
        }
        .add_partitions(5, MAX_EPOCH - 1, &[tp("a", 0)], TV2, 1)
        .unwrap()
        .unwrap();
        assert_eq!(
            open.end_transaction_v2(5, MAX_EPOCH - 1, true, None, 2),
            Err(E::CoordinatorNotAvailable),
            "no new producer id at hand"
        );
        let prepared = open
            .end_transaction_v2(5, MAX_EPOCH - 1, true, Some(9), 2)
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                prepared.producer_id,
                prepared.producer_epoch,
                prepared.next_producer_id
            ),
            (5, MAX_EPOCH, 9),
            "the markers go out as the old producer at the last epoch"
        );
        let done = TransactionMetadata {
            previous_producer_id: 5,
            ..prepared.complete(3)
        };
        assert_eq!(
            (done.producer_id, done.producer_epoch, done.next_producer_id),
            (9, 0, -1)
        );
        // While the markers are written, the producer's next transaction (already on the
        // new producer id) is told to wait, not that the id is unknown.
        assert_eq!(
            prepared.add_partitions(9, 0, &[tp("a", 0)], TV2, 2),
            Err(E::ConcurrentTransactions)
        );
        assert!(done.add_partitions(9, 0, &[tp("a", 0)], TV2, 4).is_ok());
        // The producer retries as the old producer at the epoch before.
        assert_eq!(
            done.end_transaction_v2(5, MAX_EPOCH - 1, true, None, 4),
            Ok(None)
        );
        // And InitProducerId naming the old producer is not a zombie.
        assert_eq!(
            done.check_expected_producer(Some((5, MAX_EPOCH - 1))),
            Ok(())
        );
    }
}
