//! DescribeGroups (key 15): state, protocol and members of groups (what
//! `kafka-consumer-groups.sh --describe` shows). Member metadata and assignments are shown
//! for Stable groups, as Kafka does.

use gregor_protocol::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use gregor_protocol::kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;

/// Kafka's "authorized operations not requested" value.
const NOT_REQUESTED: i32 = i32::MIN;
const GROUP_ID_NOT_FOUND: i16 = 69;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;

/// With an authorizer, each group needs DESCRIBE (else GROUP_AUTHORIZATION_FAILED).
pub fn handle(
    broker: &Broker,
    version: i16,
    req: DescribeGroupsRequest,
    authz: RequestAuthorizer<'_>,
) -> DescribeGroupsResponse {
    let with_operations = version >= 3 && req.include_authorized_operations;
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            if !authz.allows_group(AclOperation::Describe, &id) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(GROUP_AUTHORIZATION_FAILED)
                    .with_authorized_operations(NOT_REQUESTED);
            }
            let operations = if with_operations {
                authz.authorized_operations(ResourceType::Group, &id)
            } else {
                NOT_REQUESTED
            };
            let d = broker.groups.describe(&id.0);
            // Before v6 an unknown group is described as Dead without an error.
            let error = if d.error == GROUP_ID_NOT_FOUND && version < 6 {
                0
            } else {
                d.error
            };
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(str_bytes))
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            DescribedGroup::default()
                .with_error_code(error)
                .with_group_id(id)
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(members)
                .with_authorized_operations(operations)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
