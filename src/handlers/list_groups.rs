//! ListGroups (key 16): the groups this broker coordinates, optionally filtered by state
//! (v4+) and type (v5+: "classic" or "consumer").

use gregor_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

/// With an authorizer: every group for DESCRIBE on the cluster, else only the groups the
/// client may describe (Kafka's rule).
pub fn handle(
    broker: &Broker,
    _version: i16,
    req: ListGroupsRequest,
    authz: RequestAuthorizer<'_>,
) -> ListGroupsResponse {
    let all_groups = authz.allows_cluster(AclOperation::Describe);
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|t| t.to_lowercase()).collect();
    let groups = broker
        .groups
        .list(&states)
        .into_iter()
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .filter(|g| all_groups || authz.allows_group(AclOperation::Describe, &g.group_id))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type))
                .with_group_state(str_bytes(g.state))
                .with_group_type(str_bytes(g.group_type))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
