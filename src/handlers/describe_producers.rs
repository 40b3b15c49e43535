//! DescribeProducers (key 61, KIP-664): the producers a partition's leader has state for,
//! with the first offset of each one's open transaction. `kafka-transactions.sh
//! describe-producers` and `find-hanging` read it.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use gregor_protocol::kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse,
};

use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

/// Each topic needs READ (else TOPIC_AUTHORIZATION_FAILED), as in Kafka.
pub fn handle(
    broker: &Broker,
    _version: i16,
    req: DescribeProducersRequest,
    authz: RequestAuthorizer<'_>,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let allowed = authz.allows_topic(AclOperation::Read, &name);
            let partitions = topic
                .partition_indexes
                .into_iter()
                .map(|index| {
                    let resp = PartitionResponse::default().with_partition_index(index);
                    if !allowed {
                        return resp.with_error_code(E::TopicAuthorizationFailed.code());
                    }
                    let Some(replica) = broker.replicas.partition(&name, index) else {
                        return resp.with_error_code(broker.not_leader_code(&name, index));
                    };
                    match replica.active_producers() {
                        Ok(producers) => resp.with_active_producers(
                            producers
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(p.producer_id.into())
                                        .with_producer_epoch(i32::from(p.producer_epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp)
                                        .with_coordinator_epoch(p.coordinator_epoch)
                                        .with_current_txn_start_offset(p.current_txn_start_offset)
                                })
                                .collect(),
                        ),
                        Err(e) => resp.with_error_code(e.error_code()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
