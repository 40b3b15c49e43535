//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT individual topic
//! configs or dynamic broker configs (what `kafka-configs.sh --alter` and the Admin client
//! send). Changes apply to running partitions at once.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::broker_config_admin::alter_broker_configs;
use crate::config::dynamic::list_default;
use crate::config::{describe_topic_configs, split_list, ConfigType};
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;
use crate::topic_admin::{self, AdminError};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
    authz: RequestAuthorizer<'_>,
) -> IncrementalAlterConfigsResponse {
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
        let name = r.resource_name.to_string();
        let ops = r.configs;
        if r.resource_type == RESOURCE_BROKER {
            let result = match check_ops(&ops) {
                Err(e) => Err(e),
                Ok(()) => {
                    alter_broker_configs(
                        broker,
                        &name,
                        |configs| ops.iter().try_for_each(|op| apply_to_broker(configs, op)),
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
            continue;
        }
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

/// Kafka's checks of a whole request before any change: no key twice, no null value except
/// for DELETE.
fn check_ops(ops: &[AlterableConfig]) -> Result<(), AdminError> {
    let mut seen = std::collections::BTreeSet::new();
    let duplicates: std::collections::BTreeSet<&str> = ops
        .iter()
        .filter(|op| !seen.insert(op.name.as_str()))
        .map(|op| op.name.as_str())
        .collect();
    if !duplicates.is_empty() {
        return Err(AdminError::InvalidRequest(format!(
            "Error due to duplicate config keys : {}",
            duplicates.into_iter().collect::<Vec<_>>().join(",")
        )));
    }
    let nulls: Vec<String> = ops
        .iter()
        .filter(|op| op.value.is_none() && op.config_operation != DELETE)
        .map(|op| format!("{}:{}", op_name(op.config_operation), op.name.as_str()))
        .collect();
    if !nulls.is_empty() {
        return Err(AdminError::InvalidRequest(format!(
            "Null value not supported for : {}",
            nulls.join(",")
        )));
    }
    Ok(())
}

fn op_name(op: i8) -> &'static str {
    match op {
        SET => "SET",
        DELETE => "DELETE",
        APPEND => "APPEND",
        _ => "SUBTRACT",
    }
}

/// One operation on a broker entity's stored dynamic configs. APPEND and SUBTRACT start
/// from the stored value, else the key's default, as Kafka's `prepareIncrementalConfigs`.
fn apply_to_broker(
    configs: &mut std::collections::BTreeMap<String, String>,
    op: &AlterableConfig,
) -> Result<(), AdminError> {
    let key = op.name.to_string();
    let value = op.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
    match op.config_operation {
        SET => {
            configs.insert(key, value);
        }
        DELETE => {
            configs.remove(&key);
        }
        APPEND | SUBTRACT => {
            let verb = if op.config_operation == APPEND {
                "append"
            } else {
                "subtract"
            };
            let default = list_default(&key).ok_or_else(|| {
                AdminError::InvalidRequest(format!(
                    "Config value {verb} is not allowed for config key: {key}"
                ))
            })?;
            let old = configs
                .get(&key)
                .map(String::as_str)
                .or(default)
                .unwrap_or("");
            let mut items = split_list(old);
            let given = split_list(&value);
            if op.config_operation == APPEND {
                items.extend(given);
            } else {
                items.retain(|i| !given.contains(i));
            }
            configs.insert(key, items.join(","));
        }
        other => {
            return Err(AdminError::InvalidRequest(format!(
                "Unknown config operation {other} for {key}"
            )))
        }
    }
    Ok(())
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
                &broker.effective_config(),
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
