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
use super::transaction_metadata::{TransactionMetadata, NO_EPOCH};
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
    markers: TransactionMarkerChannel,
    inner: Mutex<Inner>,
}

impl TransactionCoordinator {
    pub fn new(
        broker_id: i32,
        config: TxnConfig,
        markers: TransactionMarkerChannel,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            broker_id,
            config,
            markers,
            inner: Mutex::new(Inner::default()),
        }
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
        producer_ids: &ProducerIdManager,
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
                .is_none_or(|m| m.producer_epoch >= i16::MAX - 1)
        };
        let fresh_id = if needs_id {
            Some(producer_ids.next_id().await.map_err(|e| {
                warn!(error = %e, "cannot allocate a producer id");
                E::CoordinatorNotAvailable
            })?)
        } else {
            None
        };
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
                InitStep::AbortFirst(current.fence_and_abort(now_ms))
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
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<(), E> {
        let Some((home, next)) = self.transition(transactional_id, |current| {
            current.add_partitions(producer_id, producer_epoch, partitions, now_ms)
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
    pub async fn end_transaction(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<(), E> {
        let Some((home, next)) = self.transition(transactional_id, |current| {
            current.end_transaction(producer_id, producer_epoch, commit, now_ms)
        })?
        else {
            return Ok(());
        };
        let prepared = self.store(transactional_id, &home, next, now_ms).await?;
        self.spawn_completion(transactional_id.to_string(), home, prepared);
        Ok(())
    }

    /// Aborts the transactions open longer than their timeout (Kafka's
    /// `abortTimedOutTransactions`), fencing their producers.
    pub async fn abort_timed_out_transactions(self: &Arc<Self>, now_ms: i64) {
        let expired: Vec<(String, Home, TransactionMetadata)> = {
            let inner = self.lock();
            inner
                .txns
                .iter()
                .filter(|(_, m)| m.timed_out(now_ms))
                .filter_map(|(id, m)| {
                    let home = inner.home(id).ok()?;
                    Some((id.clone(), home, m.fence_and_abort(now_ms)?))
                })
                .collect()
        };
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
            let stored = store::append(&home.log, &id, None, now_ms).await;
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
        {
            let mut inner = self.lock();
            if !inner.still_owns(home) {
                return Err(E::NotCoordinator);
            }
            match inner.txns.get_mut(id) {
                Some(m) if m.pending => return Err(E::ConcurrentTransactions),
                Some(m) => m.pending = true,
                None => return Err(E::InvalidProducerIdMapping),
            }
        }
        let stored = store::append(&home.log, id, Some(&next.to_log()), now_ms).await;
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
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else {
            *self.lock() = Inner::default();
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
