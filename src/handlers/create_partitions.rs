//! CreatePartitions (key 37): grow a topic's partition count, optionally with explicit
//! replica assignments for the new partitions.

use std::collections::HashSet;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use gregor_protocol::kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;
use crate::topic_admin;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: CreatePartitionsRequest,
    authz: RequestAuthorizer<'_>,
) -> CreatePartitionsResponse {
    let mut names = HashSet::new();
    let duplicates: HashSet<String> = req
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|n| !names.insert(n.clone()))
        .collect();
    // Kafka refuses the whole request when it would add more than its per-request limit.
    let image = broker.image();
    let added: i64 = req
        .topics
        .iter()
        .filter_map(|t| {
            let current = image.topic(&t.name.0)?.partitions.len() as i64;
            Some((i64::from(t.count) - current).max(0))
        })
        .sum();
    if added > topic_admin::MAX_PARTITIONS_PER_REQUEST {
        let e = topic_admin::excessive_partitions();
        let results = req
            .topics
            .into_iter()
            .map(|t| {
                CreatePartitionsTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(e.error_code())
                    .with_error_message(Some(str_bytes(e.to_string())))
            })
            .collect();
        return CreatePartitionsResponse::default().with_results(results);
    }
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let base = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        // Kafka: ALTER on the topic.
        if !authz.allows_topic(AclOperation::Alter, &name) {
            results.push(
                base.with_error_code(E::TopicAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes("Authorization failed."))),
            );
            continue;
        }
        if duplicates.contains(&name) {
            results.push(
                base.with_error_code(E::InvalidRequest.code())
                    .with_error_message(Some(str_bytes("Duplicate topic in request."))),
            );
            continue;
        }
        let assignments = topic.assignments.map(|a| {
            a.into_iter()
                .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        results.push(
            match topic_admin::create_partitions(
                broker,
                &name,
                topic.count,
                assignments,
                req.validate_only,
            )
            .await
            {
                Ok(()) => base,
                Err(e) => base
                    .with_error_code(e.error_code())
                    .with_error_message(Some(str_bytes(e.to_string()))),
            },
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}
