//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT individual topic
//! configs (what `kafka-configs.sh --alter` and the Admin client send). Changes apply to
//! running partitions at once. Dynamic broker configs are not supported.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::config::{describe_topic_configs, ConfigType};
use crate::topic_admin::{self, AdminError};

const RESOURCE_TOPIC: i8 = 2;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
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
        let name = r.resource_name.to_string();
        let ops = r.configs;
        let result = topic_admin::alter_topic_configs(
            broker,
            &name,
            |configs| {
                for op in &ops {
                    apply(broker, configs, op)?;
                }
                Ok(())
            },
            req.validate_only,
        )
        .await;
        responses.push(match result {
            Ok(()) => base,
            Err(e) => base
                .with_error_code(e.error_code())
                .with_error_message(Some(str_bytes(e.to_string()))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn apply(
    broker: &Broker,
    configs: &mut std::collections::BTreeMap<String, String>,
    op: &AlterableConfig,
) -> Result<(), AdminError> {
    let key = op.name.to_string();
    let value = op.value.as_ref().map(|v| v.to_string());
    match op.config_operation {
        SET => {
            let v = value.ok_or_else(|| {
                AdminError::InvalidConfig(format!("Null value not supported for {key}"))
            })?;
            configs.insert(key, v);
        }
        DELETE => {
            configs.remove(&key);
        }
        APPEND | SUBTRACT => {
            // Only list-typed configs (e.g. cleanup.policy) can be appended to or subtracted from.
            let current = describe_topic_configs(
                configs,
                &broker.config,
                Some(std::slice::from_ref(&key)),
                false,
                false,
            );
            let entry = current.first().ok_or_else(|| {
                AdminError::InvalidConfig(format!("Unknown topic config name: {key}"))
            })?;
            if entry.config_type != ConfigType::List {
                return Err(AdminError::InvalidConfig(format!(
                    "Config {key} is not a list; APPEND and SUBTRACT do not apply"
                )));
            }
            let mut items: Vec<String> = entry
                .value
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let given: Vec<String> = value
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if op.config_operation == APPEND {
                for g in given {
                    if !items.contains(&g) {
                        items.push(g);
                    }
                }
            } else {
                items.retain(|i| !given.contains(i));
            }
            configs.insert(key, items.join(","));
        }
        other => {
            return Err(AdminError::InvalidConfig(format!(
                "Unknown config operation {other} for {key}"
            )))
        }
    }
    Ok(())
}
