//! DeleteAcls (key 31): removes the ACLs each filter matches (`kafka-acls.sh --remove`),
//! answering every ACL removed under the first filter that matched it, as Kafka does. Needs
//! ALTER on the cluster.

use std::collections::BTreeSet;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use gregor_protocol::kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use tracing::info;

use super::describe_acls::{acl_api_authorizer, binding_filter};
use super::{str_bytes, Session};
use crate::broker::Broker;
use crate::security::acl::{AccessControlEntry, AclBindingFilter, AclOperation, ResourcePattern};

pub async fn handle(
    broker: &Broker,
    session: &Session,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let all_fail = |code: i16, message: &str| {
        DeleteAclsResponse::default().with_filter_results(
            req.filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message)))
                })
                .collect(),
        )
    };
    let authorizer = match acl_api_authorizer(
        broker,
        session,
        AclOperation::Alter,
        "No Authorizer is configured.",
    ) {
        Ok(a) => a,
        Err((code, message)) => return all_fail(code, message),
    };
    let mut results: Vec<DeleteAclsFilterResult> =
        vec![DeleteAclsFilterResult::default(); req.filters.len()];
    let mut filters: Vec<(usize, AclBindingFilter)> = Vec::new();
    for (i, f) in req.filters.iter().enumerate() {
        match binding_filter(
            f.resource_type_filter,
            f.resource_name_filter.as_deref(),
            f.pattern_type_filter,
            f.principal_filter.as_deref(),
            f.host_filter.as_deref(),
            f.operation,
            f.permission_type,
        ) {
            Ok(filter) => filters.push((i, filter)),
            Err(message) => {
                results[i] = DeleteAclsFilterResult::default()
                    .with_error_code(E::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(message)))
            }
        }
    }
    // The patterns known here, and those a filter names exactly (which another broker may
    // have created a moment ago).
    let mut patterns: BTreeSet<ResourcePattern> = authorizer.patterns().into_iter().collect();
    for (_, f) in &filters {
        patterns.extend(f.pattern.exact_patterns());
    }
    for pattern in patterns {
        let matching: Vec<&(usize, AclBindingFilter)> = filters
            .iter()
            .filter(|(_, f)| f.pattern.matches(&pattern))
            .collect();
        if matching.is_empty() {
            continue;
        }
        let entry_filters: Vec<_> = matching.iter().map(|(_, f)| f.entry.clone()).collect();
        let edit = Box::new(move |current: &BTreeSet<AccessControlEntry>| {
            current
                .iter()
                .filter(|e| !entry_filters.iter().any(|f| f.matches(e)))
                .cloned()
                .collect()
        });
        match broker.metadata.update_acls(pattern.clone(), edit).await {
            Ok(update) => {
                for removed in update.before.difference(&update.after) {
                    if let Some((i, _)) = matching.iter().find(|(_, f)| f.entry.matches(removed)) {
                        results[*i]
                            .matching_acls
                            .push(matching_acl(&pattern, removed));
                    }
                }
                if update.before != update.after {
                    info!(resource = %pattern, acls = update.after.len(), principal = %session.principal, "ACLs removed");
                }
                authorizer.set_resource(pattern, update.after);
            }
            Err(e) => {
                for (i, _) in &matching {
                    results[*i] = DeleteAclsFilterResult::default()
                        .with_error_code(E::UnknownServerError.code())
                        .with_error_message(Some(str_bytes(e.to_string())));
                }
            }
        }
    }
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching_acl(pattern: &ResourcePattern, entry: &AccessControlEntry) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(pattern.resource_type.code())
        .with_resource_name(str_bytes(pattern.name.clone()))
        .with_pattern_type(pattern.pattern_type.code())
        .with_principal(str_bytes(entry.principal.clone()))
        .with_host(str_bytes(entry.host.clone()))
        .with_operation(entry.operation.code())
        .with_permission_type(entry.permission_type.code())
}
