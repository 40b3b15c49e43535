//! AddPartitionsToTxn (key 24), the client form (v0-3): a transactional producer adds the
//! partitions it is about to write to its open transaction, at the transaction
//! coordinator, before producing to them. A partition that does not exist or may not be
//! written fails the request; the others are then OPERATION_NOT_ATTEMPTED, as in Kafka.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
};

use super::txn_error_for_version;
use crate::broker::Broker;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: AddPartitionsToTxnRequest,
    authz: RequestAuthorizer<'_>,
) -> AddPartitionsToTxnResponse {
    let txn_id = req.v3_and_below_transactional_id.to_string();
    let image = broker.image();
    let mut wanted = Vec::new();
    // topic -> (partition, error) for the partitions refused before the coordinator.
    let mut refused: Vec<(String, i32, E)> = Vec::new();
    let txn_denied = !authz.allows(AclOperation::Write, ResourceType::TransactionalId, &txn_id);
    for topic in &req.v3_and_below_topics {
        let name = topic.name.0.to_string();
        for p in &topic.partitions {
            let error = if txn_denied {
                Some(E::TransactionalIdAuthorizationFailed)
            } else if !authz.allows_topic(AclOperation::Write, &name) {
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
    let outcome: Vec<(String, i32, i16)> = if refused.is_empty() {
        let result = broker
            .txns
            .add_partitions(
                &txn_id,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                &wanted,
                crate::clock::now_ms(),
            )
            .await;
        let code = match result {
            Ok(()) => 0,
            Err(e) => txn_error_for_version(e, version, 2).code(),
        };
        wanted.into_iter().map(|(t, p)| (t, p, code)).collect()
    } else {
        refused
            .into_iter()
            .map(|(t, p, e)| (t, p, e.code()))
            .chain(
                wanted
                    .into_iter()
                    .map(|(t, p)| (t, p, E::OperationNotAttempted.code())),
            )
            .collect()
    };
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
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}
