//! ListPartitionReassignments (key 46): the reassignments in progress, with each partition's
//! full replica set and the replicas being added and removed
//! (`kafka-reassign-partitions.sh --list / --verify`). Only the controller serves it
//! (NOT_CONTROLLER elsewhere); a partition asked for that is not being reassigned (or does
//! not exist) is left out, as Kafka does.

use gregor_protocol::kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use gregor_protocol::kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use super::str_bytes;
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let wanted: Option<Vec<(String, i32)>> = req.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| (t.name.0.to_string(), *p))
            })
            .collect()
    });
    let ongoing = match broker.metadata.list_partition_reassignments(wanted).await {
        Ok(ongoing) => ongoing,
        Err(e) => {
            let code = super::controller_error_code(&e);
            return ListPartitionReassignmentsResponse::default()
                .with_error_code(code)
                .with_error_message(Some(str_bytes(e.to_string())));
        }
    };
    let ids = |brokers: &[i32]| brokers.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for o in ongoing {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(o.partition)
            .with_replicas(ids(&o.assignment.replicas))
            .with_adding_replicas(ids(&o.assignment.adding))
            .with_removing_replicas(ids(&o.assignment.removing));
        match topics.iter_mut().find(|t| *t.name.0 == *o.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(o.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
