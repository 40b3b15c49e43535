//! DescribeConfigs (key 32): topic and broker configs with their values, sources (topic
//! override, dynamic broker config, dynamic default, static broker config, default),
//! synonyms and documentation, as Kafka reports them.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use gregor_protocol::kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::config::dynamic::describe_default;
use crate::config::{describe_topic_configs, ConfigEntry};
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

/// Kafka's ConfigResource.Type codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub fn handle(
    broker: &Broker,
    version: i16,
    req: DescribeConfigsRequest,
    authz: RequestAuthorizer<'_>,
) -> DescribeConfigsResponse {
    let synonyms = req.include_synonyms;
    let docs = version >= 3 && req.include_documentation;
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            // Null or empty both mean "all keys", as in Kafka.
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .as_ref()
                .filter(|k| !k.is_empty())
                .map(|k| k.iter().map(|s| s.to_string()).collect());
            let name = r.resource_name.to_string();
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            if let Some((code, message)) = super::config_resource_denied(
                authz,
                AclOperation::DescribeConfigs,
                r.resource_type,
                &name,
            ) {
                return base
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(message)));
            }
            let entries = match r.resource_type {
                RESOURCE_TOPIC => match broker.image().topic(&name) {
                    Some(t) => describe_topic_configs(&t.configs, &broker.effective_config(), keys.as_deref(), synonyms, docs),
                    None => {
                        return base
                            .with_error_code(E::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(format!("Topic {name} does not exist"))))
                    }
                },
                RESOURCE_BROKER => {
                    // "" names the cluster-wide default: the configs stored there.
                    if name.is_empty() {
                        describe_default(
                            &broker.image().dynamic_broker_configs.default,
                            keys.as_deref(),
                            synonyms,
                            docs,
                        )
                    } else if name == broker.config.broker_id.to_string() {
                        broker.effective_config().describe(keys.as_deref(), synonyms, docs)
                    } else {
                        return base
                            .with_error_code(E::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(format!(
                                "Unexpected broker id, expected {} or empty string, but received {name}",
                                broker.config.broker_id
                            ))));
                    }
                }
                other => {
                    return base
                        .with_error_code(E::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "Unsupported resource type {other}"
                        ))))
                }
            };
            base.with_configs(entries.into_iter().map(|e| entry(e, version)).collect())
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(e: ConfigEntry, version: i16) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(e.name))
        .with_value(e.value.map(str_bytes))
        .with_read_only(e.read_only)
        .with_config_source(e.source.code())
        .with_is_sensitive(e.sensitive)
        .with_synonyms(
            e.synonyms
                .into_iter()
                .map(|s| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(s.name))
                        .with_value(s.value.map(str_bytes))
                        .with_source(s.source.code())
                })
                .collect(),
        );
    if version >= 3 {
        out = out
            .with_config_type(e.config_type.code())
            .with_documentation(e.documentation.map(str_bytes));
    }
    out
}
