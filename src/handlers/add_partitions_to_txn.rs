//! AddPartitionsToTxn (key 24), in its two forms:
//! - v0-3, from a transactional producer: it adds the partitions it is about to write to
//!   its open transaction, at the transaction coordinator, before producing to them;
//! - v4-5, from a partition leader (KIP-890): a batch of transactions, each either only
//!   verified (is the partition in the producer's open transaction? asked before a
//!   transactional batch is appended, Kafka 3.6+'s `transaction.partition.verification.
//!   enable`) or added (transactions v2: the producer's Produce v12+ or TxnOffsetCommit v5+
//!   adds the partition implicitly). Needs CLUSTER_ACTION.
//!
//! A partition that does not exist (or, from a client, may not be written) fails its
//! transaction; the transaction's other partitions are then OPERATION_NOT_ATTEMPTED, as in
//! Kafka.

use futures_util::future::join_all;
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use gregor_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
};

use super::txn_error_for_version;
use crate::broker::Broker;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;
use crate::txn::TV2;

/// The first version in the brokers' batched form.
const BATCHED_FROM: i16 = 4;
/// The first version whose senders know TRANSACTION_ABORTABLE (earlier ones get
/// INVALID_TXN_STATE for a partition outside the transaction).
const ABORTABLE_FROM: i16 = 5;

/// One transaction of the request, in either form.
struct TxnPartitions<'a> {
    transactional_id: &'a str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &'a [AddPartitionsToTxnTopic],
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: AddPartitionsToTxnRequest,
    authz: RequestAuthorizer<'_>,
) -> AddPartitionsToTxnResponse {
    let resp = AddPartitionsToTxnResponse::default();
    if version < BATCHED_FROM {
        let txn = TxnPartitions {
            transactional_id: &req.v3_and_below_transactional_id,
            producer_id: req.v3_and_below_producer_id.0,
            producer_epoch: req.v3_and_below_producer_epoch,
            verify_only: false,
            topics: &req.v3_and_below_topics,
        };
        let outcome = one_transaction(broker, version, txn, Some(authz)).await;
        return resp.with_results_by_topic_v3_and_below(by_topic(outcome));
    }
    // Only brokers send the batched form.
    if !authz.allows_cluster(AclOperation::ClusterAction) {
        return resp.with_error_code(E::ClusterAuthorizationFailed.code());
    }
    let results = join_all(req.transactions.iter().map(|t| async move {
        let txn = TxnPartitions {
            transactional_id: &t.transactional_id,
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            verify_only: t.verify_only,
            topics: &t.topics,
        };
        let outcome = one_transaction(broker, version, txn, None).await;
        AddPartitionsToTxnResult::default()
            .with_transactional_id(t.transactional_id.clone())
            .with_topic_results(by_topic(outcome))
    }))
    .await;
    resp.with_results_by_transaction(results)
}

/// Each partition of one transaction with its error code. `client` is the authorizer of a
/// producer's request (v0-3), which must be allowed to write the id and the topics.
async fn one_transaction(
    broker: &Broker,
    version: i16,
    txn: TxnPartitions<'_>,
    client: Option<RequestAuthorizer<'_>>,
) -> Vec<(String, i32, i16)> {
    let image = broker.image();
    let id = txn.transactional_id;
    let mut wanted = Vec::new();
    let mut refused: Vec<(String, i32, E)> = Vec::new();
    let id_denied = client
        .is_some_and(|authz| !authz.allows(AclOperation::Write, ResourceType::TransactionalId, id));
    for topic in txn.topics {
        let name = topic.name.0.to_string();
        for p in &topic.partitions {
            let error = if id_denied {
                Some(E::TransactionalIdAuthorizationFailed)
            } else if client.is_some_and(|authz| !authz.allows_topic(AclOperation::Write, &name)) {
                Some(E::TopicAuthorizationFailed)
            } else if !image.has_partition(&name, *p) {
                Some(E::UnknownTopicOrPartition)
            } else {
                None
            };
            match error {
                Some(e) => refused.push((name.clone(), *p, e)),
                None => wanted.push((name.clone(), *p)),
            }
        }
    }
    if !refused.is_empty() {
        return refused
            .into_iter()
            .map(|(t, p, e)| (t, p, e.code()))
            .chain(
                wanted
                    .into_iter()
                    .map(|(t, p)| (t, p, E::OperationNotAttempted.code())),
            )
            .collect();
    }
    if txn.verify_only {
        let not_in_transaction = if version >= ABORTABLE_FROM {
            E::TransactionAbortable
        } else {
            E::InvalidTxnState
        };
        let verified = broker.txns.verify_partitions(
            id,
            txn.producer_id,
            txn.producer_epoch,
            &wanted,
            not_in_transaction,
        );
        return match verified {
            Ok(errors) => wanted
                .into_iter()
                .zip(errors)
                .map(|((t, p), e)| (t, p, e.map_or(0, |e| e.code())))
                .collect(),
            Err(e) => wanted.into_iter().map(|(t, p)| (t, p, e.code())).collect(),
        };
    }
    // Kafka: a partition leader adding (not verifying) does so for a producer using
    // transactions v2 (Produce v12+, TxnOffsetCommit v5+).
    let client_transaction_version = if version >= BATCHED_FROM { TV2 } else { 0 };
    let result = broker
        .txns
        .add_partitions(
            id,
            txn.producer_id,
            txn.producer_epoch,
            &wanted,
            client_transaction_version,
            crate::clock::now_ms(),
        )
        .await;
    let code = match result {
        Ok(()) => 0,
        Err(e) => txn_error_for_version(e, version, 2).code(),
    };
    wanted.into_iter().map(|(t, p)| (t, p, code)).collect()
}

/// (topic, partition, error code) grouped by topic, in the order first seen.
fn by_topic(outcome: Vec<(String, i32, i16)>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (t, p, code) in outcome {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(p)
            .with_partition_error_code(code);
        match topics.iter_mut().find(|r| r.name.0.as_str() == t) {
            Some(r) => r.results_by_partition.push(result),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(super::topic_name(t))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    topics
}
