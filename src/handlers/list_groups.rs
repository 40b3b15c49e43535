//! ListGroups (key 16): the groups this broker coordinates, optionally filtered by state
//! (v4+) and type (v5+; every gregor group is "classic").

use gregor_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::broker::Broker;

pub fn handle(broker: &Broker, _version: i16, req: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let classic_wanted = req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    let groups = if classic_wanted {
        broker
            .groups
            .list(&states)
            .into_iter()
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(str_bytes(g.group_id)))
                    .with_protocol_type(str_bytes(g.protocol_type))
                    .with_group_state(str_bytes(g.state))
                    .with_group_type(str_bytes("classic"))
            })
            .collect()
    } else {
        Vec::new()
    };
    ListGroupsResponse::default().with_groups(groups)
}
