//! AlterPartitionReassignments (key 45): moves partitions to new replicas, or cancels a move
//! (`kafka-reassign-partitions.sh --execute / --cancel`, the admin clients'
//! `alterPartitionReassignments`). Only the controller serves it (NOT_CONTROLLER elsewhere;
//! clients send it to the controller that Metadata names). Each target is validated and
//! written by the metadata store (`MetadataStore::alter_partition_reassignments`); the answer
//! says the reassignment began, not that it completed (ListPartitionReassignments shows it
//! until the new replicas are in sync and the old ones gone), as in Kafka.

use gregor_protocol::kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use gregor_protocol::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::reassignment::ReassignmentTargets;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    // v0 has no field: the replication factor may change, as it always could.
    let allow_replication_factor_change = version < 1 || req.allow_replication_factor_change;
    let asked: ReassignmentTargets = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let target = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                ((t.name.0.to_string(), p.partition_index), target)
            })
        })
        .collect();
    let response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_replication_factor_change);
    let results = match broker
        .metadata
        .alter_partition_reassignments(asked, allow_replication_factor_change)
        .await
    {
        Ok(results) => results,
        Err(e) => {
            let code = super::controller_error_code(&e);
            return response
                .with_error_code(code)
                .with_error_message(Some(str_bytes(e.to_string())));
        }
    };
    let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
    for ((topic, partition), result) in results {
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err((code, message)) => (code, Some(str_bytes(message))),
        };
        let answer = ReassignablePartitionResponse::default()
            .with_partition_index(partition)
            .with_error_code(code)
            .with_error_message(message);
        match topics.iter_mut().find(|t| *t.name.0 == *topic) {
            Some(t) => t.partitions.push(answer),
            None => topics.push(
                ReassignableTopicResponse::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(vec![answer]),
            ),
        }
    }
    response.with_responses(topics)
}
