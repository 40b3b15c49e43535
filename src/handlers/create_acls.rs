//! CreateAcls (key 30): adds ACLs (`kafka-acls.sh --add`), written to the metadata store
//! (`/kafka-acl/...`, announced to every broker) and put in force here at once. Needs ALTER
//! on the cluster.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::create_acls_request::AclCreation;
use gregor_protocol::kafka_protocol::messages::create_acls_response::AclCreationResult;
use gregor_protocol::kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use tracing::info;

use super::describe_acls::acl_api_authorizer;
use super::{str_bytes, Session};
use crate::broker::Broker;
use crate::security::acl::{
    AccessControlEntry, AclOperation, AclPermissionType, PatternType, ResourcePattern,
    ResourceType, CLUSTER_NAME,
};

pub async fn handle(
    broker: &Broker,
    session: &Session,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let all_fail = |code: i16, message: &str| {
        CreateAclsResponse::default().with_results(
            req.creations
                .iter()
                .map(|_| failure(code, message))
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
    let mut results: Vec<AclCreationResult> =
        vec![AclCreationResult::default(); req.creations.len()];
    let mut by_pattern: BTreeMap<ResourcePattern, Vec<(usize, AccessControlEntry)>> =
        BTreeMap::new();
    for (i, creation) in req.creations.iter().enumerate() {
        match binding(creation) {
            Ok((pattern, entry)) => by_pattern.entry(pattern).or_default().push((i, entry)),
            Err(message) => results[i] = failure(E::InvalidRequest.code(), &message),
        }
    }
    for (pattern, entries) in by_pattern {
        let added: BTreeSet<AccessControlEntry> = entries.iter().map(|(_, e)| e.clone()).collect();
        let edit = Box::new(move |current: &BTreeSet<AccessControlEntry>| {
            current.union(&added).cloned().collect()
        });
        match broker.metadata.update_acls(pattern.clone(), edit).await {
            Ok(update) => {
                info!(resource = %pattern, acls = update.after.len(), principal = %session.principal, "ACLs added");
                authorizer.set_resource(pattern, update.after);
            }
            Err(e) => {
                for (i, _) in &entries {
                    results[*i] = failure(E::UnknownServerError.code(), &e.to_string());
                }
            }
        }
    }
    CreateAclsResponse::default().with_results(results)
}

fn failure(code: i16, message: &str) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(code)
        .with_error_message(Some(str_bytes(message)))
}

/// One creation as a pattern and an entry, checked as Kafka checks it: concrete types only,
/// a principal `Type:name`, the cluster named `kafka-cluster`, no empty name and no `/`.
fn binding(c: &AclCreation) -> Result<(ResourcePattern, AccessControlEntry), String> {
    let resource_type = ResourceType::from_code(c.resource_type)
        .filter(|t| *t != ResourceType::Any)
        .ok_or("Invalid resource type")?;
    let pattern_type = PatternType::from_code(c.resource_pattern_type)
        .filter(|p| matches!(p, PatternType::Literal | PatternType::Prefixed))
        .ok_or("Invalid pattern type: ACLs are created on LITERAL or PREFIXED patterns")?;
    let operation = AclOperation::from_code(c.operation)
        .filter(|o| *o != AclOperation::Any)
        .ok_or("Invalid operation")?;
    let permission_type = AclPermissionType::from_code(c.permission_type)
        .filter(|p| *p != AclPermissionType::Any)
        .ok_or("Invalid permission type")?;
    let name = c.resource_name.to_string();
    if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if name.is_empty() {
        return Err("Invalid empty resource name".into());
    }
    if name.contains('/') {
        return Err(format!(
            "ACL binding contains invalid resource name: {name}"
        ));
    }
    let principal = c.principal.to_string();
    if principal.split_once(':').is_none_or(|(t, _)| t.is_empty()) {
        return Err(format!(
            "expected a string in format principalType:principalName but got {principal}"
        ));
    }
    Ok((
        ResourcePattern {
            resource_type,
            pattern_type,
            name,
        },
        AccessControlEntry {
            principal,
            host: c.host.to_string(),
            operation,
            permission_type,
        },
    ))
}
