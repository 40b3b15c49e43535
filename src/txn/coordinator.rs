//! The transaction coordinator (Kafka's `TransactionCoordinator`): which
//! `__transaction_state` partitions this broker leads, the state of their transactional
//! ids, and the APIs that change it: InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, and the coordinator's own aborts of
//! transactions past their timeout.
//!
//! A transactional id belongs to partition `abs(java_hash(id)) % partitions` of
//! `__transaction_state` (Kafka's rule); its coordinator is that partition's leader, and the
//! partition's leader epoch is the coordinator epoch its markers carry. Every state change
//! is appended to the partition and replicated before it takes effect; a broker that comes
//! to lead the partition replays it and finishes every transaction left in PrepareCommit
//! or PrepareAbort.
//!
//! Locks. All state sits behind one mutex (`inner`), never held across an await: a change
//! marks its id `pending` under the lock (other requests for the id get
//! CONCURRENT_TRANSACTIONS, which clients retry), appends with the lock released, and
//! applies the result under the lock again. Ending a transaction answers the client once
//! PrepareCommit/PrepareAbort is stored; a task then has the markers written
//! (`marker_channel`) and stores CompleteCommit/CompleteAbort.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use tracing::{info, warn};

use super::marker_channel::{TransactionMarkerChannel, TxnMarkers};
use super::records::{TransactionState, TRANSACTION_STATE_TOPIC};
use super::state_manager as store;
use super::transaction_metadata::{TransactionMetadata, NO_EPOCH, TV2};
use super::ProducerIdManager;
use crate::config::TxnConfig;
use crate::group::coordinator::partition_for_group;
use crate::metadata::MetadataImage;
use crate::replica::{Partition, ReplicaManager};

/// Between two tries to store a transaction's completion.
const COMPLETE_RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// What InitProducerId does once it has looked at the id's state.
enum InitStep {
    Store(TransactionMetadata),
    /// An open transaction to abort first (None: already being aborted).
    AbortFirst(Option<TransactionMetadata>),
}

/// A `__transaction_state` partition this broker leads and has loaded.
struct OwnedPartition {
    log: Arc<Partition>,
    /// The partition's leader epoch when it was loaded: the coordinator epoch.
    coordinator_epoch: i32,
}

#[derive(Default)]
struct Inner {
    /// Partitions of `__transaction_state` (0 while the topic does not exist).
    partition_count: i32,
    owned: HashMap<i32, OwnedPartition>,
    txns: HashMap<String, TransactionMetadata>,
    /// The cluster's finalized `transaction.version` (KIP-890): 1 and up store
    /// TransactionLogValue v1; 2 makes the coordinator's own aborts transactions v2 ones.
    transaction_version: i16,
}

/// Where a transactional id's state is written.
#[derive(Clone)]
struct Home {
    partition: i32,
    log: Arc<Partition>,
    coordinator_epoch: i32,
}

impl Inner {
    fn home(&self, transactional_id: &str) -> Result<Home, E> {
        if self.partition_count == 0 {
            return Err(E::NotCoordinator);
        }
        let partition = partition_for_group(transactional_id, self.partition_count);
        let owned = self.owned.get(&partition).ok_or(E::NotCoordinator)?;
        Ok(Home {
            partition,
            log: owned.log.clone(),
            coordinator_epoch: owned.coordinator_epoch,
        })
    }

    fn still_owns(&self, home: &Home) -> bool {
        self.owned
            .get(&home.partition)
            .is_some_and(|o| Arc::ptr_eq(&o.log, &home.log))
    }
}

pub struct TransactionCoordinator {
    broker_id: i32,
    config: TxnConfig,
    producer_ids: Arc<ProducerIdManager>,
    markers: TransactionMarkerChannel,
    inner: Mutex<Inner>,
}

/// Kafka's exhausted epoch: the next bump takes a new producer id.
fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TransactionCoordinator {
    pub fn new(
        broker_id: i32,
        config: TxnConfig,
        producer_ids: Arc<ProducerIdManager>,
        markers: TransactionMarkerChannel,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            broker_id,
            config,
            producer_ids,
            markers,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A new producer id when `needed`.
    async fn new_producer_id_if(&self, needed: bool) -> Result<Option<i64>, E> {
        if !needed {
            return Ok(None);
        }
        self.producer_ids.next_id().await.map(Some).map_err(|e| {
            warn!(error = %e, "cannot allocate a producer id");
            E::CoordinatorNotAvailable
        })
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// InitProducerId with a transactional id: the producer id and the new epoch. An open
    /// transaction of an earlier producer is aborted first (CONCURRENT_TRANSACTIONS until it
    /// is, which clients retry), as Kafka does.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        expected: Option<(i64, i16)>,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<(i64, i16), E> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(E::InvalidTransactionTimeout);
        }
        // A producer id is needed for a new transactional id, or an exhausted epoch.
        let needs_id = {
            let inner = self.lock();
            inner.home(transactional_id)?;
            inner
                .txns
                .get(transactional_id)
                .is_none_or(|m| epoch_exhausted(m.producer_epoch))
        };
        let fresh_id = self.new_producer_id_if(needs_id).await?;
        let (home, step) = {
            let mut inner = self.lock();
            let home = inner.home(transactional_id)?;
            let current = match (inner.txns.get(transactional_id), fresh_id) {
                (Some(m), _) => m.clone(),
                (None, Some(id)) => {
                    // Kafka starts a new id at epoch -1 and bumps it to 0 below.
                    let m = TransactionMetadata {
                        producer_id: id,
                        producer_epoch: -1,
                        timeout_ms,
                        state: TransactionState::Empty,
                        partitions: BTreeSet::new(),
                        start_timestamp_ms: -1,
                        last_update_timestamp_ms: now_ms,
                        pending: false,
                        last_producer_epoch: NO_EPOCH,
                        previous_producer_id: -1,
                        next_producer_id: -1,
                        client_transaction_version: 0,
                    };
                    inner.txns.insert(transactional_id.to_string(), m.clone());
                    m
                }
                // Gone since the first look: its partition moved.
                (None, None) => return Err(E::NotCoordinator),
            };
            current.check_expected_producer(expected)?;
            let step = if current.state == TransactionState::Ongoing && !current.pending {
                // An earlier producer's transaction is open: abort it (fencing that
                // producer) and have this one retry.
                InitStep::AbortFirst(current.fence_and_abort(
                    inner.transaction_version,
                    fresh_id,
                    now_ms,
                ))
            } else {
                InitStep::Store(current.init_producer_id(
                    expected,
                    || fresh_id,
                    timeout_ms,
                    now_ms,
                )?)
            };
            (home, step)
        };
        let next = match step {
            InitStep::Store(next) => next,
            InitStep::AbortFirst(aborting) => {
                if let Some(aborting) = aborting {
                    self.begin_abort(transactional_id, &home, aborting).await;
                }
                return Err(E::ConcurrentTransactions);
            }
        };
        let stored = self.store(transactional_id, &home, next, now_ms).await?;
        Ok((stored.producer_id, stored.producer_epoch))
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the partitions join the open transaction.
    /// `client_transaction_version` is 2 when a partition leader adds them for a producer
    /// using transactions v2 (AddPartitionsToTxn v4+ without verify_only), else 0.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        client_transaction_version: i16,
        now_ms: i64,
    ) -> Result<(), E> {
        let Some((home, next)) = self.transition(transactional_id, |current| {
            current.add_partitions(
                producer_id,
                producer_epoch,
                partitions,
                client_transaction_version,
                now_ms,
            )
        })?
        else {
            return Ok(());
        };
        self.store(transactional_id, &home, next, now_ms).await?;
        Ok(())
    }

    /// AddPartitionsToTxn v4+ with verify_only: whether each partition is in the producer's
    /// open transaction (None) or not (`not_in_transaction`); nothing is stored.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        not_in_transaction: E,
    ) -> Result<Vec<Option<E>>, E> {
        let inner = self.lock();
        inner.home(transactional_id)?;
        inner
            .txns
            .get(transactional_id)
            .ok_or(E::InvalidProducerIdMapping)?
            .verify_partitions(producer_id, producer_epoch, partitions, not_in_transaction)
    }

    /// The id's next state by `change` (None: nothing to store), and where it is stored.
    fn transition(
        &self,
        transactional_id: &str,
        change: impl FnOnce(&TransactionMetadata) -> Result<Option<TransactionMetadata>, E>,
    ) -> Result<Option<(Home, TransactionMetadata)>, E> {
        let inner = self.lock();
        let home = inner.home(transactional_id)?;
        let current = inner
            .txns
            .get(transactional_id)
            .ok_or(E::InvalidProducerIdMapping)?;
        Ok(change(current)?.map(|next| (home, next)))
    }

    /// EndTxn: stores PrepareCommit or PrepareAbort, answers, and has the markers written.
    /// `transactions_v2` (EndTxn v5+): the epoch is bumped by this end, and the answer is
    /// the producer id and epoch the producer goes on with.
    pub async fn end_transaction(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        transactions_v2: bool,
        now_ms: i64,
    ) -> Result<(i64, i16), E> {
        let exhausted = {
            let inner = self.lock();
            inner.home(transactional_id)?;
            inner
                .txns
                .get(transactional_id)
                .is_some_and(|m| epoch_exhausted(m.producer_epoch))
        };
        let new_producer_id = self
            .new_producer_id_if(transactions_v2 && exhausted)
            .await?;
        let mut current_ids = (producer_id, producer_epoch);
        let step = self.transition(transactional_id, |current| {
            current_ids = (current.producer_id, current.producer_epoch);
            if transactions_v2 {
                current.end_transaction_v2(
                    producer_id,
                    producer_epoch,
                    commit,
                    new_producer_id,
                    now_ms,
                )
            } else {
                current.end_transaction(producer_id, producer_epoch, commit, now_ms)
            }
        })?;
        let Some((home, next)) = step else {
            // A retry of an end already completed.
            return Ok(current_ids);
        };
        let prepared = self.store(transactional_id, &home, next, now_ms).await?;
        // What the producer goes on with: the completed state's id and epoch.
        let completed = prepared.complete(now_ms);
        self.spawn_completion(transactional_id.to_string(), home, prepared);
        Ok((completed.producer_id, completed.producer_epoch))
    }

    /// Aborts the transactions open longer than their timeout (Kafka's
    /// `abortTimedOutTransactions`), fencing their producers.
    pub async fn abort_timed_out_transactions(self: &Arc<Self>, now_ms: i64) {
        let (timed_out, transaction_version) = {
            let inner = self.lock();
            let ids: Vec<(String, bool)> = inner
                .txns
                .iter()
                .filter(|(_, m)| m.timed_out(now_ms))
                .map(|(id, m)| (id.clone(), epoch_exhausted(m.producer_epoch)))
                .collect();
            (ids, inner.transaction_version)
        };
        let mut expired: Vec<(String, Home, TransactionMetadata)> = Vec::new();
        for (id, exhausted) in timed_out {
            // A transactions v2 abort of an exhausted epoch hands over to a new producer id.
            let new_producer_id = match self
                .new_producer_id_if(exhausted && transaction_version >= TV2)
                .await
            {
                Ok(new_id) => new_id,
                Err(_) => continue, // tried again at the next check
            };
            let inner = self.lock();
            let Ok(home) = inner.home(&id) else { continue };
            let Some(m) = inner.txns.get(&id).filter(|m| m.timed_out(now_ms)) else {
                continue;
            };
            if let Some(aborting) = m.fence_and_abort(transaction_version, new_producer_id, now_ms)
            {
                expired.push((id, home, aborting));
            }
        }
        for (id, home, aborting) in expired {
            info!(transactional_id = %id, producer_id = aborting.producer_id,
                "aborting a transaction past its timeout");
            self.begin_abort(&id, &home, aborting).await;
        }
    }

    /// Forgets the transactional ids idle longer than `transactional.id.expiration.ms`
    /// with no transaction open (Kafka's `removeExpiredTransactionalIds`): a tombstone in
    /// `__transaction_state`, then the id leaves the cache. A producer that comes back with
    /// the id later gets a new producer id.
    pub async fn remove_expired_transactional_ids(self: &Arc<Self>, now_ms: i64) {
        let expiration_ms = self.config.id_expiration.as_millis() as i64;
        let expired: Vec<(String, Home, TransactionMetadata)> = {
            let mut inner = self.lock();
            let ids: Vec<(String, Home)> = inner
                .txns
                .iter()
                .filter(|(_, m)| m.expired(now_ms, expiration_ms))
                .filter_map(|(id, _)| Some((id.clone(), inner.home(id).ok()?)))
                .collect();
            ids.into_iter()
                .filter_map(|(id, home)| {
                    let m = inner.txns.get_mut(&id)?;
                    m.pending = true;
                    let seen = m.clone();
                    Some((id, home, seen))
                })
                .collect()
        };
        for (id, home, seen) in expired {
            let stored = store::append(&home.log, &id, None, 0, now_ms).await;
            let mut inner = self.lock();
            let owned = inner.still_owns(&home);
            let Some(m) = inner.txns.get_mut(&id) else {
                continue;
            };
            m.pending = false;
            match stored {
                Ok(()) if owned => {
                    info!(transactional_id = %id, producer_id = seen.producer_id,
                        last_update_ms = seen.last_update_timestamp_ms, "transactional id expired");
                    inner.txns.remove(&id);
                }
                Ok(()) => {}
                Err(e) => {
                    warn!(transactional_id = %id, error = ?e, "cannot store the expiry of a transactional id")
                }
            }
        }
    }

    /// Stores a coordinator-initiated PrepareAbort and has the markers written.
    async fn begin_abort(self: &Arc<Self>, id: &str, home: &Home, aborting: TransactionMetadata) {
        let now = crate::clock::now_ms();
        match self.store(id, home, aborting, now).await {
            Ok(prepared) => self.spawn_completion(id.to_string(), home.clone(), prepared),
            Err(e) => {
                warn!(transactional_id = %id, error = ?e, "cannot store the abort of a transaction")
            }
        }
    }

    /// Marks `id` pending, stores `next`, and applies it: the stored state, or the error.
    async fn store(
        &self,
        id: &str,
        home: &Home,
        next: TransactionMetadata,
        now_ms: i64,
    ) -> Result<TransactionMetadata, E> {
        let mut next = next;
        let value_version = {
            let mut inner = self.lock();
            if !inner.still_owns(home) {
                return Err(E::NotCoordinator);
            }
            match inner.txns.get_mut(id) {
                Some(m) if m.pending => return Err(E::ConcurrentTransactions),
                Some(m) => {
                    m.pending = true;
                    // Kafka's transition records the producer id it leaves.
                    next.previous_producer_id = m.producer_id;
                }
                None => return Err(E::InvalidProducerIdMapping),
            }
            // Kafka: TransactionLogValue v1 once `transaction.version` is 1 or more.
            if inner.transaction_version >= 1 {
                1
            } else {
                0
            }
        };
        let stored =
            store::append(&home.log, id, Some(&next.to_log()), value_version, now_ms).await;
        let mut inner = self.lock();
        let owned = inner.still_owns(home);
        let Some(m) = inner.txns.get_mut(id) else {
            return Err(E::NotCoordinator);
        };
        m.pending = false;
        match stored {
            Ok(()) if owned => {
                *m = next.clone();
                Ok(next)
            }
            Ok(()) => Err(E::NotCoordinator),
            Err(e) => Err(e),
        }
    }

    /// Has the markers of a prepared transaction written, then stores its completion.
    fn spawn_completion(self: &Arc<Self>, id: String, home: Home, prepared: TransactionMetadata) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(transactional_id = %id, "no runtime to complete the transaction on");
            return;
        };
        let coordinator = self.clone();
        runtime.spawn(async move { coordinator.complete(id, home, prepared).await });
    }

    async fn complete(self: Arc<Self>, id: String, home: Home, prepared: TransactionMetadata) {
        let markers = TxnMarkers {
            transactional_id: id.clone(),
            producer_id: prepared.producer_id,
            producer_epoch: prepared.producer_epoch,
            coordinator_epoch: home.coordinator_epoch,
            commit: prepared.state == TransactionState::PrepareCommit,
            partitions: prepared.partitions.clone(),
        };
        let written = self
            .markers
            .write(&markers, || self.lock().still_owns(&home))
            .await;
        if !written {
            info!(transactional_id = %id, "no longer coordinator; the new one completes the transaction");
            return;
        }
        loop {
            let now = crate::clock::now_ms();
            match self.store(&id, &home, prepared.complete(now), now).await {
                Ok(_) => return,
                Err(E::NotCoordinator) => return,
                Err(e) => {
                    warn!(transactional_id = %id, error = ?e, "cannot store a transaction's completion; retrying");
                    tokio::time::sleep(COMPLETE_RETRY_BACKOFF).await;
                }
            }
        }
    }

    /// Follows the partitions of `__transaction_state` this broker leads: forgets the ones
    /// lost, loads the ones gained and completes their prepared transactions.
    pub fn on_replicas_changed(self: &Arc<Self>, image: &MetadataImage, replicas: &ReplicaManager) {
        let transaction_version = image.finalized_features.transaction_version();
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else {
            *self.lock() = Inner {
                transaction_version,
                ..Inner::default()
            };
            return;
        };
        let led: HashSet<i32> = topic
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.leader == self.broker_id)
            .map(|(i, _)| i as i32)
            .collect();
        let mut to_complete = Vec::new();
        {
            let mut inner = self.lock();
            let inner = &mut *inner;
            inner.transaction_version = transaction_version;
            inner.partition_count = topic.partitions.len() as i32;
            let count = inner.partition_count;
            let lost: Vec<i32> = inner
                .owned
                .iter()
                .filter(|(p, owned)| {
                    !led.contains(p)
                        || !replicas
                            .partition(TRANSACTION_STATE_TOPIC, **p)
                            .is_some_and(|current| Arc::ptr_eq(&current, &owned.log))
                })
                .map(|(p, _)| *p)
                .collect();
            for p in &lost {
                inner.owned.remove(p);
                info!(
                    partition = p,
                    "no longer transaction coordinator for this partition"
                );
            }
            inner
                .txns
                .retain(|id, _| !lost.contains(&partition_for_group(id, count)));
            let mut to_load: Vec<i32> = led
                .iter()
                .copied()
                .filter(|p| !inner.owned.contains_key(p))
                .collect();
            to_load.sort_unstable();
            for p in to_load {
                let Some(log) = replicas.partition(TRANSACTION_STATE_TOPIC, p) else {
                    continue;
                };
                let loaded = match store::load_partition(&log) {
                    Ok(l) => l,
                    Err(e) => {
                        warn!(partition = p, error = %e, "cannot load transaction state partition");
                        continue;
                    }
                };
                let home = Home {
                    partition: p,
                    log: log.clone(),
                    coordinator_epoch: log.leader_epoch(),
                };
                let n = loaded.len();
                for (id, value) in loaded {
                    let m = TransactionMetadata::from_log(&value);
                    if m.is_preparing() {
                        to_complete.push((id.clone(), home.clone(), m.clone()));
                    }
                    inner.txns.insert(id, m);
                }
                inner.owned.insert(
                    p,
                    OwnedPartition {
                        log,
                        coordinator_epoch: home.coordinator_epoch,
                    },
                );
                info!(
                    partition = p,
                    transactional_ids = n,
                    coordinator_epoch = home.coordinator_epoch,
                    "transaction coordinator for this partition"
                );
            }
        }
        for (id, home, prepared) in to_complete {
            info!(transactional_id = %id, state = prepared.state.name(), "completing a transaction left prepared");
            self.spawn_completion(id, home, prepared);
        }
    }

    /// The transactional ids this broker coordinates, with their state (for
    /// ListTransactions and DescribeTransactions).
    pub fn transactions(&self) -> Vec<(String, TransactionMetadata)> {
        let inner = self.lock();
        inner
            .txns
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect()
    }

    /// One transactional id's state (DescribeTransactions): NOT_COORDINATOR where this
    /// broker does not coordinate it, TRANSACTIONAL_ID_NOT_FOUND where it has no state.
    pub fn describe(&self, transactional_id: &str) -> Result<TransactionMetadata, E> {
        let inner = self.lock();
        inner.home(transactional_id)?;
        inner
            .txns
            .get(transactional_id)
            .cloned()
            .ok_or(E::TransactionalIdNotFound)
    }

    /// Whether this broker coordinates `transactional_id` now.
    pub fn coordinates(&self, transactional_id: &str) -> Result<(), E> {
        self.lock().home(transactional_id).map(|_| ())
    }
}
