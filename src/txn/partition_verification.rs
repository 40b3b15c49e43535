//! A partition leader's question to the transaction coordinator before it appends the first
//! batch of a producer's transaction (KIP-890 part 1, Kafka's
//! `transaction.partition.verification.enable`): is this partition in the producer's open
//! transaction? Without it a late or zombie batch could open a transaction no coordinator
//! knows of, and the partition's last stable offset would never move past it (a "hanging"
//! transaction). The coordinator here is asked directly; another broker (gregor or Kafka)
//! with AddPartitionsToTxn v4 `verify_only` on the inter-broker listener.
//!
//! Errors are mapped for the producer as Kafka's `AddPartitionsToTxnManager` does: a
//! coordinator that cannot answer now becomes NOT_ENOUGH_REPLICAS (retried), a partition
//! outside the transaction INVALID_TXN_STATE, PRODUCER_FENCED INVALID_PRODUCER_EPOCH.

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
use super::TransactionCoordinator;
use crate::group::coordinator::partition_for_group;
use crate::inter_broker::{BrokerConnection, InterBrokerSecurity, SOCKET_TIMEOUT};
use crate::metadata::MetadataStore;

/// AddPartitionsToTxn v4: the first batched version, which Kafka 3.6 and later serve.
const VERIFY_VERSION: i16 = 4;
/// How long the coordinator has to answer (Kafka's `request.timeout.ms`).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

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

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `topic`-`partition` is in the open transaction of `transactional_id`'s
    /// producer at `producer_epoch`, as its coordinator says; the error to answer the
    /// producer with if not.
    pub async fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), E> {
        let image = self.metadata.image();
        let coordinator = image.topic(TRANSACTION_STATE_TOPIC).and_then(|t| {
            let p = partition_for_group(transactional_id, t.partitions.len() as i32);
            t.partitions.get(p as usize).map(|p| p.leader)
        });
        let answer = match coordinator {
            None => Err(E::CoordinatorNotAvailable),
            Some(leader) if leader == self.broker_id => self
                .coordinator
                .verify_partitions(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    &[(topic.to_string(), partition)],
                    E::InvalidTxnState,
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
                )
                .await
            }
        };
        match answer {
            Ok(None) => Ok(()),
            Ok(Some(e)) | Err(e) => {
                debug!(transactional_id, producer_id, topic, partition, error = ?e,
                    "transactional batch not verified");
                Err(for_producer(e))
            }
        }
    }

    /// AddPartitionsToTxn v4 `verify_only` to the coordinator on broker `leader`: the
    /// partition's error (None: in the transaction).
    async fn ask(
        &self,
        leader: i32,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
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
                .with_verify_only(true)
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
            conn.call(VERIFY_VERSION, &request, VERIFY_TIMEOUT).await
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

/// Kafka's mapping of a verification's outcome for the producer.
fn for_producer(e: E) -> E {
    match e {
        E::CoordinatorNotAvailable
        | E::NotCoordinator
        | E::CoordinatorLoadInProgress
        | E::ConcurrentTransactions => E::NotEnoughReplicas,
        E::ProducerFenced => E::InvalidProducerEpoch,
        E::TransactionAbortable => E::InvalidTxnState,
        other => other,
    }
}
