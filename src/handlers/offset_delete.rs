//! OffsetDelete (key 47): removes a group's committed offsets for partitions it does not
//! consume (GROUP_SUBSCRIBED_TO_TOPIC for those it does).

use gregor_protocol::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use gregor_protocol::kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

/// With an authorizer: DELETE on the group (else GROUP_AUTHORIZATION_FAILED) and READ on
/// each topic (else its partitions are TOPIC_AUTHORIZATION_FAILED and kept), as Kafka.
pub fn handle(
    broker: &Broker,
    _version: i16,
    req: OffsetDeleteRequest,
    authz: RequestAuthorizer<'_>,
) -> OffsetDeleteResponse {
    if !authz.allows_group(AclOperation::Delete, &req.group_id) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let readable = |t: &str| authz.allows_topic(AclOperation::Read, t);
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .filter(|t| readable(&t.name))
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    match broker.groups.delete_offsets(&req.group_id.0, &topics) {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(results) => {
            let mut results = results.into_iter();
            OffsetDeleteResponse::default().with_topics(
                req.topics
                    .into_iter()
                    .map(|t| {
                        let parts: Vec<(i32, i16)> = if readable(&t.name) {
                            results.next().map(|(_, parts)| parts).unwrap_or_default()
                        } else {
                            t.partitions
                                .iter()
                                .map(|p| {
                                    (
                                        p.partition_index,
                                        ResponseError::TopicAuthorizationFailed.code(),
                                    )
                                })
                                .collect()
                        };
                        OffsetDeleteResponseTopic::default()
                            .with_name(t.name)
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, e)| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(e)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
        }
    }
}
