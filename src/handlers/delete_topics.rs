//! DeleteTopics (key 20): by name (v1-v5) or by name or topic id (v6).

use std::time::Duration;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use gregor_protocol::kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;
use crate::topic_admin::{self, AdminError};

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: DeleteTopicsRequest,
    authz: RequestAuthorizer<'_>,
) -> DeleteTopicsResponse {
    // (name if given, id if given)
    let targets: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let resolved = match &name {
            Some(n) => Some(n.0.to_string()),
            None => broker.image().topic_by_id(&id).map(|t| t.name.clone()),
        };
        let base = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(id);
        let Some(topic) = resolved else {
            responses.push(base.with_error_code(E::UnknownTopicId.code()));
            continue;
        };
        // Kafka: DELETE on the topic (a topic named by id is not told by name).
        if !authz.allows_topic(AclOperation::Delete, &topic) {
            responses.push(base.with_error_code(E::TopicAuthorizationFailed.code()));
            continue;
        }
        // Kafka answers REQUEST_TIMED_OUT when the deletion is not complete within the
        // request's timeout (a replica's broker is down); the topic stays marked for
        // deletion and goes once that broker returns.
        // A timeout of 0 or less would end the call before the topic is even marked: that
        // one waits as long as the metadata store does (30 s).
        let deleted = match u64::try_from(req.timeout_ms).ok().filter(|ms| *ms > 0) {
            None => topic_admin::delete_topic(broker, &topic).await,
            Some(ms) => tokio::time::timeout(
                Duration::from_millis(ms),
                topic_admin::delete_topic(broker, &topic),
            )
            .await
            .unwrap_or_else(|_| {
                Err(AdminError::Timeout(format!(
                    "Deletion of topic {topic} did not complete within {ms} ms"
                )))
            }),
        };
        responses.push(match deleted {
            Ok(deleted_id) => base
                .with_name(Some(TopicName(str_bytes(topic))))
                .with_topic_id(deleted_id),
            Err(e) => base
                .with_error_code(e.error_code())
                .with_error_message(Some(str_bytes(e.to_string()))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
