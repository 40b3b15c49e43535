//! AlterConfigs (key 33), the legacy form: the given configs REPLACE all of a topic's
//! overrides, or all of a broker entity's dynamic configs (keys not listed return to their
//! defaults), as in Kafka.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::broker_config_admin::alter_broker_configs;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;
use crate::topic_admin::{self, AdminError};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: AlterConfigsRequest,
    authz: RequestAuthorizer<'_>,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let base = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        if let Some((code, message)) = super::config_resource_denied(
            authz,
            AclOperation::AlterConfigs,
            r.resource_type,
            &r.resource_name,
        ) {
            responses.push(
                base.with_error_code(code)
                    .with_error_message(Some(str_bytes(message))),
            );
            continue;
        }
        if r.resource_type != RESOURCE_TOPIC && r.resource_type != RESOURCE_BROKER {
            responses.push(
                base.with_error_code(E::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "AlterConfigs is only supported for topics and brokers, but resource type is {}",
                        r.resource_type
                    )))),
            );
            continue;
        }
        let mut replacement = BTreeMap::new();
        let mut null_value = None;
        for c in &r.configs {
            match &c.value {
                Some(v) => {
                    replacement.insert(c.name.to_string(), v.to_string());
                }
                None => null_value = Some(c.name.to_string()),
            }
        }
        let result = match null_value {
            Some(key) if r.resource_type == RESOURCE_BROKER => Err(AdminError::InvalidRequest(
                format!("Null value not supported for : {key}"),
            )),
            Some(key) => Err(AdminError::InvalidConfig(format!(
                "Null value not supported for {key}"
            ))),
            None if r.resource_type == RESOURCE_BROKER => {
                alter_broker_configs(
                    broker,
                    &r.resource_name,
                    |configs| {
                        *configs = replacement;
                        Ok(())
                    },
                    req.validate_only,
                )
                .await
            }
            None => {
                topic_admin::alter_topic_configs(
                    broker,
                    &r.resource_name,
                    |configs| {
                        *configs = replacement;
                        Ok(())
                    },
                    req.validate_only,
                )
                .await
            }
        };
        responses.push(match result {
            Ok(()) => base,
            Err(e) => base
                .with_error_code(e.error_code())
                .with_error_message(Some(str_bytes(e.to_string()))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}
