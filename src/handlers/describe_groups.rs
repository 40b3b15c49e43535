//! DescribeGroups (key 15): state, protocol and members of groups (what
//! `kafka-consumer-groups.sh --describe` shows). Member metadata and assignments are shown
//! for Stable groups, as Kafka does.

use gregor_protocol::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use gregor_protocol::kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::str_bytes;
use crate::broker::Broker;

/// Kafka's "authorized operations not requested" value.
const NOT_REQUESTED: i32 = i32::MIN;
const GROUP_ID_NOT_FOUND: i16 = 69;

pub fn handle(broker: &Broker, version: i16, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
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
                .with_authorized_operations(NOT_REQUESTED)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
