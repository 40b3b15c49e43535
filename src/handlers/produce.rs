//! Produce (key 0): validate each partition's record set (one batch, as Kafka requires from
//! v3 on; structure, magic 2, CRC32C, size), check the idempotent producer's epoch and
//! sequence, append, and answer with the base offset. Batches are stored as the client sent them, straight from the request's
//! buffer; only the base offset and leader epoch in each header are written anew.
//!
//! A transactional batch that opens its producer's transaction in a partition is first
//! verified at the transaction coordinator, or from v12 on (transactions v2) added to the
//! transaction there (`txn::partition_verification`, KIP-890).
//!
//! acks=-1 answers once every ISR member has the batch: after all appends the handler
//! waits for each partition's high watermark to pass its batch (Kafka's `DelayedProduce`),
//! up to the request's timeout. The wait is an `.await` on a watch channel: it holds this
//! connection (whose next request is not read meanwhile, as in Kafka) but no thread.

use std::sync::Arc;
use std::time::Duration;

use gregor_log::{parse_record_set, LogError};
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::produce_request::PartitionProduceData;
use gregor_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use gregor_protocol::kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use tracing::debug;

use super::str_bytes;
use crate::broker::Broker;
use crate::metrics;
use crate::replica::{LeaderAppend, Partition, PartitionError};
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;
use crate::txn::partition_verification::TransactionSupportedOperation;

pub enum Outcome {
    Respond(ProduceResponse),
    /// acks=0 and all went well: no response at all.
    Silent,
    /// acks=0 and something failed: Kafka closes the connection so the client notices.
    Close(String),
}

/// An acks=-1 append still waiting for the ISR: where its answer sits in the response.
struct Waiting {
    topic_index: usize,
    partition_index: usize,
    partition: Arc<Partition>,
    appended: LeaderAppend,
}

/// With an authorizer: WRITE on each topic (else TOPIC_AUTHORIZATION_FAILED for its
/// partitions) and, for a transactional producer, WRITE on its transactional id (else every
/// partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED), as Kafka checks them.
pub async fn handle(
    broker: &Broker,
    version: i16,
    req: ProduceRequest,
    authz: RequestAuthorizer<'_>,
) -> Outcome {
    let operation = TransactionSupportedOperation::for_produce(version);
    let acks = req.acks;
    let transactional_id_denied = req
        .transactional_id
        .as_ref()
        .is_some_and(|id| !authz.allows(AclOperation::Write, ResourceType::TransactionalId, id));
    let valid_acks = matches!(acks, -1..=1);
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    let mut failed = None;
    let mut waiting = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (topic_index, topic) in req.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let denied = if transactional_id_denied {
            Some(E::TransactionalIdAuthorizationFailed)
        } else if !authz.allows_topic(AclOperation::Write, &name) {
            Some(E::TopicAuthorizationFailed)
        } else {
            None
        };
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for (partition_index, data) in topic.partition_data.into_iter().enumerate() {
            let index = data.index;
            let resp = if let Some(error) = denied {
                error_response(index, error.code(), None)
            } else if valid_acks {
                let transactional_id = req.transactional_id.as_ref().map(|t| t.0.as_str());
                let (resp, appended) =
                    produce_partition(broker, &name, data, acks, (transactional_id, operation))
                        .await;
                if let (-1, Some((partition, appended))) = (acks, appended) {
                    waiting.push(Waiting {
                        topic_index,
                        partition_index,
                        partition,
                        appended,
                    });
                }
                resp
            } else {
                error_response(index, E::InvalidRequiredAcks.code(), None)
            };
            if resp.error_code != 0 && failed.is_none() {
                failed = Some(format!(
                    "produce to {name}-{index} failed with error {}",
                    resp.error_code
                ));
            }
            partition_responses.push(resp);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    // One deadline for the whole request, as Kafka's timeout_ms.
    let deadline = tokio::time::Instant::now() + timeout;
    for w in waiting {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Err(e) = w.partition.wait_until_replicated(&w.appended, left).await {
            let resp: &mut PartitionProduceResponse =
                &mut responses[w.topic_index].partition_responses[w.partition_index];
            debug!(topic = %w.partition.topic, partition = resp.index, error = %e, "acks=all produce failed");
            *resp = error_response(resp.index, e.error_code(), Some(e.to_string()));
        }
    }
    metrics::response_errors(
        ApiKey::Produce,
        responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code)),
    );
    if acks == 0 {
        return match failed {
            Some(reason) => Outcome::Close(reason),
            None => Outcome::Silent,
        };
    }
    Outcome::Respond(ProduceResponse::default().with_responses(responses))
}

/// Why a partition's batch was not appended.
enum Refused {
    Partition(PartitionError),
    /// A transactional batch without a transactional id (Kafka: TRANSACTIONAL_ID_
    /// AUTHORIZATION_FAILED), or one its coordinator did not verify.
    Transaction(E, String),
}

impl From<PartitionError> for Refused {
    fn from(e: PartitionError) -> Refused {
        Refused::Partition(e)
    }
}

/// Appends one partition's batch; with the partition and the append when it worked.
async fn produce_partition(
    broker: &Broker,
    topic: &str,
    data: PartitionProduceData,
    acks: i16,
    transaction: (Option<&str>, TransactionSupportedOperation),
) -> (
    PartitionProduceResponse,
    Option<(Arc<Partition>, LeaderAppend)>,
) {
    let index = data.index;
    if topic == crate::group::OFFSETS_TOPIC || topic == crate::txn::TRANSACTION_STATE_TOPIC {
        // Kafka: clients may not append to internal topics.
        let message = format!("Cannot append to internal topic {topic}");
        return (
            error_response(index, E::InvalidTopicException.code(), Some(message)),
            None,
        );
    }
    let Some(partition) = broker.replicas.partition(topic, index) else {
        return (
            error_response(index, broker.not_leader_code(topic, index), None),
            None,
        );
    };
    partition.metrics.produce_requests.inc();
    let Some(records) = data.records else {
        let message = Some("null record set".into());
        return (
            error_response(index, E::CorruptMessage.code(), message),
            None,
        );
    };
    let bytes = records.len() as u64;
    let result = parse_record_set(&records, partition.max_message_bytes())
        .and_then(|headers| match headers.len() {
            // Kafka's ProduceRequest.validateRecords (v3+, all we serve).
            1 => Ok(headers),
            n => Err(LogError::InvalidRecord(format!(
                "produce requests must hold exactly one record batch per partition, not {n}"
            ))),
        })
        .map_err(PartitionError::from);
    let result = match result {
        Ok(headers) => {
            append(
                broker,
                &partition,
                (topic, index),
                records,
                headers,
                acks,
                transaction,
            )
            .await
        }
        Err(e) => Err(Refused::Partition(e)),
    };
    match result {
        Ok(appended) => {
            let info = &appended.info;
            // A retried batch answered with its original offsets was counted the first time.
            if !info.duplicate {
                partition.metrics.bytes_in.inc_by(bytes);
                partition
                    .metrics
                    .messages_in
                    .inc_by(u64::try_from(info.record_count).unwrap_or(0));
            }
            let resp = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time)
                .with_log_start_offset(info.log_start_offset);
            (resp, Some((partition, appended)))
        }
        Err(Refused::Partition(e)) => {
            debug!(topic, partition = index, error = %e, "produce refused");
            (
                error_response(index, e.error_code(), Some(e.to_string())),
                None,
            )
        }
        Err(Refused::Transaction(e, message)) => {
            (error_response(index, e.code(), Some(message)), None)
        }
    }
}

/// The append itself. A batch that would open a producer's transaction in this partition
/// is first verified at the transaction's coordinator (KIP-890 part 1, unless
/// `transaction.partition.verification.enable` is off), or added to it (part 2).
async fn append(
    broker: &Broker,
    partition: &Partition,
    (topic, index): (&str, i32),
    records: bytes::Bytes,
    headers: Vec<gregor_log::BatchHeader>,
    acks: i16,
    (transactional_id, operation): (Option<&str>, TransactionSupportedOperation),
) -> Result<LeaderAppend, Refused> {
    let Some(h) = headers.first().filter(|h| h.is_transactional()) else {
        return Ok(partition.append(records, headers, acks)?);
    };
    let (producer_id, producer_epoch) = (h.producer_id, h.producer_epoch);
    let Some(id) = transactional_id else {
        return Err(Refused::Transaction(
            E::TransactionalIdAuthorizationFailed,
            "a transactional batch needs the request's transactional id".into(),
        ));
    };
    if !broker.txn_verifier.needed(operation) {
        return Ok(partition.append(records, headers, acks)?);
    }
    let Some(guard) = partition.begin_transaction_verification(
        producer_id,
        producer_epoch,
        operation.supports_epoch_bump(),
    ) else {
        return Ok(partition.append(records, headers, acks)?);
    };
    let verified = broker
        .txn_verifier
        .add_or_verify(id, producer_id, producer_epoch, (topic, index), operation)
        .await;
    if let Err(e) = verified {
        partition.end_transaction_verification(producer_id, guard);
        let message = format!(
            "the coordinator of {id} did not verify {topic}-{index} in its transaction: {e:?}"
        );
        return Err(Refused::Transaction(e, message));
    }
    Ok(partition.append_verified(records, headers, acks, guard)?)
}

fn error_response(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(str_bytes))
}
