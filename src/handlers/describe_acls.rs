//! DescribeAcls (key 29): the ACLs a filter selects (`kafka-acls.sh --list`), from this
//! broker's authorizer cache. Needs DESCRIBE on the cluster.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::describe_acls_response::{
    AclDescription, DescribeAclsResource,
};
use gregor_protocol::kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::{str_bytes, Session};
use crate::broker::Broker;
use crate::security::acl::{
    AccessControlEntryFilter, AclBindingFilter, AclOperation, AclPermissionType, PatternType,
    ResourcePatternFilter, ResourceType,
};
use crate::security::authorizer::AclAuthorizer;

pub fn handle(
    broker: &Broker,
    session: &Session,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let error = |code: i16, message: &str| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message)))
    };
    let authorizer = match acl_api_authorizer(
        broker,
        session,
        AclOperation::Describe,
        "No Authorizer is configured on the broker",
    ) {
        Ok(a) => a,
        Err((code, message)) => return error(code, message),
    };
    let filter = match binding_filter(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(message) => return error(E::InvalidRequest.code(), &message),
    };
    let mut by_pattern: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for (pattern, entry) in authorizer.acls(&filter) {
        by_pattern.entry(pattern).or_default().push(
            AclDescription::default()
                .with_principal(str_bytes(entry.principal))
                .with_host(str_bytes(entry.host))
                .with_operation(entry.operation.code())
                .with_permission_type(entry.permission_type.code()),
        );
    }
    DescribeAclsResponse::default().with_resources(
        by_pattern
            .into_iter()
            .map(|(pattern, acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(pattern.resource_type.code())
                    .with_resource_name(str_bytes(pattern.name))
                    .with_pattern_type(pattern.pattern_type.code())
                    .with_acls(acls)
            })
            .collect(),
    )
}

/// What an ACL API works with, or the error it answers first, as Kafka's `AclApis`: the
/// cluster operation it needs (DESCRIBE to look, ALTER to change), then an authorizer at all
/// (SECURITY_DISABLED with Kafka's `no_authorizer` text, which differs per API).
pub(crate) fn acl_api_authorizer<'b>(
    broker: &'b Broker,
    session: &Session,
    operation: AclOperation,
    no_authorizer: &'static str,
) -> Result<&'b AclAuthorizer, (i16, &'static str)> {
    if !session.authorizer(broker).allows_cluster(operation) {
        return Err((
            E::ClusterAuthorizationFailed.code(),
            "Cluster authorization failed.",
        ));
    }
    broker
        .authorizer
        .as_deref()
        .ok_or((E::SecurityDisabled.code(), no_authorizer))
}

/// A DescribeAcls or DeleteAcls filter from its wire fields; unknown codes are refused with
/// the message Kafka's request validation gives.
pub(crate) fn binding_filter(
    resource_type: i8,
    name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission_type: i8,
) -> Result<AclBindingFilter, String> {
    let unknown = |what: &str| format!("Filter contain UNKNOWN elements: {what}");
    Ok(AclBindingFilter {
        pattern: ResourcePatternFilter {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| unknown("resource type"))?,
            pattern_type: PatternType::from_code(pattern_type)
                .ok_or_else(|| unknown("pattern type"))?,
            name: name.map(str::to_string),
        },
        entry: AccessControlEntryFilter {
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: AclOperation::from_code(operation).ok_or_else(|| unknown("operation"))?,
            permission_type: AclPermissionType::from_code(permission_type)
                .ok_or_else(|| unknown("permission type"))?,
        },
    })
}
