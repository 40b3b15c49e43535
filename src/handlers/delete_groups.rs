//! DeleteGroups (key 42): removes empty groups and their committed offsets.

use gregor_protocol::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use gregor_protocol::kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use gregor_protocol::kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

/// With an authorizer, each group needs DELETE (else GROUP_AUTHORIZATION_FAILED).
pub fn handle(
    broker: &Broker,
    _version: i16,
    req: DeleteGroupsRequest,
    authz: RequestAuthorizer<'_>,
) -> DeleteGroupsResponse {
    let (allowed, denied): (Vec<String>, Vec<String>) = req
        .groups_names
        .iter()
        .map(|g| g.0.to_string())
        .partition(|g| authz.allows_group(AclOperation::Delete, g));
    let mut errors = broker.groups.delete_groups(&allowed).into_iter();
    let results = req
        .groups_names
        .into_iter()
        .map(|id| {
            let e = if denied.iter().any(|d| *d == *id.0) {
                ResponseError::GroupAuthorizationFailed.code()
            } else {
                errors
                    .next()
                    .unwrap_or(ResponseError::UnknownServerError.code())
            };
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(e)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
