//! AlterConfigs (key 33), the legacy form: the given configs REPLACE all of a topic's
//! overrides (keys not listed return to their defaults), as in Kafka.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::topic_admin::{self, AdminError};

const RESOURCE_TOPIC: i8 = 2;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let base = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        if r.resource_type != RESOURCE_TOPIC {
            responses.push(
                base.with_error_code(E::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(
                    "Only topic configs can be altered; dynamic broker configs are not supported",
                ))),
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
            Some(key) => Err(AdminError::InvalidConfig(format!(
                "Null value not supported for {key}"
            ))),
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
