//! ConsumerGroupDescribe (key 69, KIP-848): epochs, assignor and members of consumer groups,
//! with each member's current and target assignment (what `kafka-consumer-groups.sh
//! --describe` shows for groups of `group.protocol=consumer` clients).

use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use gregor_protocol::kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::group::assignor::TopicAssignment;
use crate::metadata::MetadataImage;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;

/// Kafka's "authorized operations not requested" value.
const NOT_REQUESTED: i32 = i32::MIN;
/// member_type (v1): 1 = a member using the consumer protocol.
const CONSUMER_MEMBER: i8 = 1;

fn assignment(image: &MetadataImage, a: &TopicAssignment) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                let name = image
                    .topic_by_id(id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub fn handle(
    broker: &Broker,
    _version: i16,
    req: ConsumerGroupDescribeRequest,
    authz: RequestAuthorizer<'_>,
) -> ConsumerGroupDescribeResponse {
    let image = broker.image();
    let with_operations = req.include_authorized_operations;
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            // Kafka: DESCRIBE on each group.
            if !authz.allows_group(AclOperation::Describe, &id) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let operations = if with_operations {
                authz.authorized_operations(ResourceType::Group, &id)
            } else {
                NOT_REQUESTED
            };
            let d = broker.groups.consumer_describe(&id.0);
            let members = d
                .members
                .iter()
                .map(|m| {
                    Member::default()
                        .with_member_id(str_bytes(m.member_id.clone()))
                        .with_instance_id(m.instance_id.clone().map(str_bytes))
                        .with_rack_id(m.rack_id.clone().map(str_bytes))
                        .with_member_epoch(m.member_epoch)
                        .with_client_id(str_bytes(m.client_id.clone()))
                        .with_client_host(str_bytes(m.client_host.clone()))
                        .with_subscribed_topic_names(
                            m.subscribed_topic_names
                                .iter()
                                .map(|n| TopicName(str_bytes(n.clone())))
                                .collect(),
                        )
                        .with_subscribed_topic_regex(
                            m.subscribed_topic_regex.clone().map(str_bytes),
                        )
                        .with_assignment(assignment(&image, &m.assignment))
                        .with_target_assignment(assignment(&image, &m.target_assignment))
                        .with_member_type(CONSUMER_MEMBER)
                })
                .collect();
            DescribedGroup::default()
                .with_error_code(d.error)
                .with_error_message(
                    (d.error != 0).then(|| str_bytes(format!("group {}", d.group_id))),
                )
                .with_group_id(id)
                .with_group_state(str_bytes(d.state))
                .with_group_epoch(d.group_epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(str_bytes(d.assignor))
                .with_members(members)
                .with_authorized_operations(operations)
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
