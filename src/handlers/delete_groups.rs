//! DeleteGroups (key 42): removes empty groups and their committed offsets.

use gregor_protocol::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use gregor_protocol::kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;

pub fn handle(broker: &Broker, _version: i16, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let errors = broker.groups.delete_groups(&ids);
    let results = req
        .groups_names
        .into_iter()
        .zip(errors)
        .map(|(id, e)| {
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(e)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
