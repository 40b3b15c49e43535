//! CreateTopics (key 19): validate names, partition counts, replication factors,
//! assignments and configs; create unless validate_only; answer per topic with Kafka's
//! error codes and, from v5, the resulting partitions, replication factor and configs.

use std::collections::{BTreeMap, HashMap};

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::config::describe_topic_configs;
use crate::metadata::TopicMetadata;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;
use crate::topic_admin::{self, AdminError, NewTopic};

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: CreateTopicsRequest,
    authz: RequestAuthorizer<'_>,
) -> CreateTopicsResponse {
    // Kafka: CREATE on the cluster, or on each topic.
    let cluster_create = authz.allows_cluster(AclOperation::Create);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.0.to_string()).or_default() += 1;
    }
    // Each topic is either answered at once (malformed) or goes to `topic_admin` with the
    // others, which creates them together.
    let mut results: Vec<Result<CreatableTopicResult, CreatableTopicResult>> =
        Vec::with_capacity(req.topics.len());
    let mut to_create = Vec::new();
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let base = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            results.push(Err(base
                .with_error_code(E::InvalidRequest.code())
                .with_error_message(Some(str_bytes(format!(
                "Create topics request from client contains multiple entries for the topic {name}"
            ))))));
            continue;
        }
        if !cluster_create && !authz.allows_topic(AclOperation::Create, &name) {
            results.push(Err(base
                .with_error_code(E::TopicAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Authorization failed.")))));
            continue;
        }
        match new_topic(topic) {
            Ok(new) => {
                to_create.push(new);
                results.push(Ok(base));
            }
            Err(message) => results.push(Err(base
                .with_error_code(message.0.code())
                .with_error_message(Some(str_bytes(message.1))))),
        }
    }
    let mut created = topic_admin::create_topics(broker, to_create, req.validate_only)
        .await
        .into_iter();
    let topics = results
        .into_iter()
        .map(|r| match r {
            Err(answered) => answered,
            Ok(base) => match created.next() {
                Some(outcome) => answer(broker, version, req.validate_only, base, outcome),
                None => base.with_error_code(E::UnknownServerError.code()),
            },
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// The request's topic as `topic_admin` takes it, or the error and message to answer with.
fn new_topic(topic: CreatableTopic) -> Result<NewTopic, (E, String)> {
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        match &c.value {
            Some(v) => {
                configs.insert(c.name.to_string(), v.to_string());
            }
            None => {
                return Err((
                    E::InvalidConfig,
                    format!(
                        "Null value not supported for topic configs: {}",
                        c.name.as_str()
                    ),
                ))
            }
        }
    }
    let mut assignments: Vec<(i32, Vec<i32>)> = topic
        .assignments
        .iter()
        .map(|a| {
            (
                a.partition_index,
                a.broker_ids.iter().map(|b| b.0).collect(),
            )
        })
        .collect();
    assignments.sort_by_key(|(p, _)| *p);
    if assignments
        .iter()
        .enumerate()
        .any(|(i, (p, _))| *p != i as i32)
    {
        return Err((
            E::InvalidReplicaAssignment,
            "Partitions should be consecutive and start from 0".into(),
        ));
    }
    Ok(NewTopic {
        name: topic.name.0.to_string(),
        num_partitions: topic.num_partitions,
        replication_factor: topic.replication_factor,
        assignments: assignments.into_iter().map(|(_, r)| r).collect(),
        configs,
    })
}

/// A created (or validated) topic's answer: its id, partition count, replication factor
/// and, from v5, its configs.
fn answer(
    broker: &Broker,
    version: i16,
    validate_only: bool,
    base: CreatableTopicResult,
    outcome: Result<TopicMetadata, AdminError>,
) -> CreatableTopicResult {
    match outcome {
        Ok(created) => {
            let mut result = base
                .with_topic_id(if validate_only {
                    Default::default()
                } else {
                    created.id
                })
                .with_num_partitions(created.partitions.len() as i32)
                .with_replication_factor(
                    created
                        .partitions
                        .first()
                        .map_or(0, |p| p.replicas.len() as i16),
                );
            if version >= 5 {
                let entries =
                    describe_topic_configs(&created.configs, &broker.config, None, false, false);
                result.configs = Some(
                    entries
                        .into_iter()
                        .map(|e| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(e.name))
                                .with_value(e.value.map(str_bytes))
                                .with_read_only(e.read_only)
                                .with_config_source(e.source.code())
                                .with_is_sensitive(e.sensitive)
                        })
                        .collect(),
                );
            }
            result
        }
        Err(e) => base
            .with_error_code(e.error_code())
            .with_error_message(Some(str_bytes(e.to_string()))),
    }
}
