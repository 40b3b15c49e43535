//! A partition leader's call to the transaction coordinator before it appends the first
//! batch of a producer's transaction:
//! - transactions v1 (KIP-890 part 1, Kafka's `transaction.partition.verification.enable`):
//!   is this partition in the producer's open transaction? Without it a late or zombie
//!   batch could open a transaction no coordinator knows of, and the partition's last
//!   stable offset would never move past it (a "hanging" transaction);
//! - transactions v2 (KIP-890 part 2; Produce v12+, TxnOffsetCommit v5+): the producer
//!   sends no AddPartitionsToTxn, and the leader adds the partition to its transaction.
//!
//! The coordinator here is called directly; another broker (gregor or Kafka) with
//! AddPartitionsToTxn v4+ on the inter-broker listener (`verify_only` for v1).
//!
//! Errors are mapped for the producer as Kafka's `AddPartitionsToTxnManager` and
//! `ReplicaManager` do: a coordinator that cannot answer now becomes NOT_ENOUGH_REPLICAS
//! (retried), PRODUCER_FENCED INVALID_PRODUCER_EPOCH, and a partition outside the
//! transaction TRANSACTION_ABORTABLE, or INVALID_TXN_STATE for clients that predate it.
//! An addition meeting CONCURRENT_TRANSACTIONS (the previous transaction's markers are
//! still being written) is retried here for a while, then answered as such.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::records::TRANSACTION_STATE_TOPIC;
use super::transaction_metadata::TV2;
use super::TransactionCoordinator;
use crate::group::coordinator::partition_for_group;
use crate::inter_broker::{BrokerConnection, InterBrokerSecurity, SOCKET_TIMEOUT};
use crate::metadata::MetadataStore;

/// AddPartitionsToTxn v4: the first batched version, which Kafka 3.6 and later serve.
const VERIFY_VERSION: i16 = 4;
/// AddPartitionsToTxn v5: the version an addition is sent at (its answer may say
/// TRANSACTION_ABORTABLE), as Kafka 4 sends it.
const ADD_VERSION: i16 = 5;
/// How long the coordinator has to answer (Kafka's `request.timeout.ms`).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two tries of an addition that met CONCURRENT_TRANSACTIONS, and how long to keep
/// trying (Kafka's `add.partitions.to.txn.retry.backoff.ms` and `.max.ms` defaults).
const ADD_RETRY_BACKOFF: Duration = Duration::from_millis(20);
const ADD_RETRY_MAX: Duration = Duration::from_millis(100);

/// What the producer's request version lets the leader do and answer (Kafka's
/// `TransactionSupportedOperation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionSupportedOperation {
    /// Produce v0-10, TxnOffsetCommit v0-3: verify; the client does not know
    /// TRANSACTION_ABORTABLE.
    DefaultError,
    /// Produce v11, TxnOffsetCommit v4: verify.
    GenericErrorSupported,
    /// Produce v12+, TxnOffsetCommit v5+ (transactions v2): add the partition.
    AddPartition,
}

impl TransactionSupportedOperation {
    pub fn for_produce(version: i16) -> Self {
        match version {
            12.. => Self::AddPartition,
            11 => Self::GenericErrorSupported,
            _ => Self::DefaultError,
        }
    }

    pub fn for_txn_offset_commit(version: i16) -> Self {
        match version {
            5.. => Self::AddPartition,
            4 => Self::GenericErrorSupported,
            _ => Self::DefaultError,
        }
    }

    /// The producer uses transactions v2: the partition is added, not verified.
    pub fn supports_epoch_bump(self) -> bool {
        self == Self::AddPartition
    }
}

pub struct TransactionVerifier {
    broker_id: i32,
    /// `transaction.partition.verification.enable`.
    enabled: bool,
    metadata: Arc<dyn MetadataStore>,
    coordinator: Arc<TransactionCoordinator>,
    inter_broker_listener: String,
    security: InterBrokerSecurity,
}

impl TransactionVerifier {
    pub fn new(
        broker_id: i32,
        enabled: bool,
        metadata: Arc<dyn MetadataStore>,
        coordinator: Arc<TransactionCoordinator>,
        inter_broker_listener: String,
        security: InterBrokerSecurity,
    ) -> TransactionVerifier {
        TransactionVerifier {
            broker_id,
            enabled,
            metadata,
            coordinator,
            inter_broker_listener,
            security,
        }
    }

    /// Whether the leader must call the coordinator for this operation: always for an
    /// addition, for a verification only if `transaction.partition.verification.enable`.
    pub fn needed(&self, operation: TransactionSupportedOperation) -> bool {
        self.enabled || operation.supports_epoch_bump()
    }

    /// Verifies (transactions v1) or adds (v2) `topic`-`partition` in the open transaction
    /// of `transactional_id`'s producer at `producer_epoch`, at its coordinator; the error
    /// to answer the producer with if that fails.
    pub async fn add_or_verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        (topic, partition): (&str, i32),
        operation: TransactionSupportedOperation,
    ) -> Result<(), E> {
        let add = operation.supports_epoch_bump();
        let started = tokio::time::Instant::now();
        let answer = loop {
            let answer = self
                .call_coordinator(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    topic,
                    partition,
                    add,
                )
                .await;
            let concurrent = matches!(
                answer,
                Ok(Some(E::ConcurrentTransactions)) | Err(E::ConcurrentTransactions)
            );
            if add && concurrent && started.elapsed() + ADD_RETRY_BACKOFF <= ADD_RETRY_MAX {
                tokio::time::sleep(ADD_RETRY_BACKOFF).await;
                continue;
            }
            break answer;
        };
        match answer {
            Ok(None) => Ok(()),
            Ok(Some(e)) | Err(e) => {
                debug!(transactional_id, producer_id, topic, partition, add, error = ?e,
                    "transactional batch not verified");
                Err(for_producer(e, operation))
            }
        }
    }

    /// One call: the partition's error (None: in the transaction now).
    async fn call_coordinator(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
        add: bool,
    ) -> Result<Option<E>, E> {
        let image = self.metadata.image();
        let coordinator = image.topic(TRANSACTION_STATE_TOPIC).and_then(|t| {
            let p = partition_for_group(transactional_id, t.partitions.len() as i32);
            t.partitions.get(p as usize).map(|p| p.leader)
        });
        let asked = [(topic.to_string(), partition)];
        match coordinator {
            None => Err(E::CoordinatorNotAvailable),
            Some(leader) if leader == self.broker_id && add => self
                .coordinator
                .add_partitions(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    &asked,
                    TV2,
                    crate::clock::now_ms(),
                )
                .await
                .map(|()| None),
            Some(leader) if leader == self.broker_id => self
                .coordinator
                .verify_partitions(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    &asked,
                    E::TransactionAbortable,
                )
                .map(|errors| errors.into_iter().flatten().next()),
            Some(leader) => {
                self.ask(
                    leader,
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    topic,
                    partition,
                    add,
                )
                .await
            }
        }
    }

    /// AddPartitionsToTxn to the coordinator on broker `leader` (v4 `verify_only`, or v5
    /// adding): the partition's error (None: in the transaction).
    #[allow(clippy::too_many_arguments)]
    async fn ask(
        &self,
        leader: i32,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
        add: bool,
    ) -> Result<Option<E>, E> {
        let endpoint = self
            .metadata
            .image()
            .broker(leader)
            .and_then(|b| b.address(&self.inter_broker_listener))
            .ok_or(E::CoordinatorNotAvailable)?;
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    transactional_id.to_string(),
                )))
                .with_producer_id(producer_id.into())
                .with_producer_epoch(producer_epoch)
                .with_verify_only(!add)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![partition])]),
        ]);
        let exchange = async {
            let mut conn = BrokerConnection::connect(
                &endpoint,
                format!("gregor-txn-verification-{}", self.broker_id),
                SOCKET_TIMEOUT,
                &self.security,
            )
            .await?;
            let version = if add { ADD_VERSION } else { VERIFY_VERSION };
            conn.call(version, &request, VERIFY_TIMEOUT).await
        };
        let resp = exchange.await.map_err(|e| {
            debug!(leader, error = %e, "AddPartitionsToTxn (verify) failed");
            E::CoordinatorNotAvailable
        })?;
        if resp.error_code != 0 {
            return Err(error_of(resp.error_code));
        }
        let code = resp
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .find(|p| p.partition_index == partition)
            .map(|p| p.partition_error_code)
            .ok_or(E::UnknownServerError)?;
        Ok((code != 0).then(|| error_of(code)))
    }
}

fn error_of(code: i16) -> E {
    E::try_from_code(code).unwrap_or(E::UnknownServerError)
}

/// Kafka's mapping of a verification's (or addition's) outcome for the producer.
fn for_producer(e: E, operation: TransactionSupportedOperation) -> E {
    match e {
        E::CoordinatorNotAvailable
        | E::NotCoordinator
        | E::CoordinatorLoadInProgress
        | E::NetworkException => E::NotEnoughReplicas,
        // Common while the previous transaction's markers are written: kept for v2
        // producers, who retry it.
        E::ConcurrentTransactions if operation.supports_epoch_bump() => e,
        E::ConcurrentTransactions => E::NotEnoughReplicas,
        E::ProducerFenced => E::InvalidProducerEpoch,
        E::TransactionAbortable if operation == TransactionSupportedOperation::DefaultError => {
            E::InvalidTxnState
        }
        other => other,
    }
}
