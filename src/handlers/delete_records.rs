//! DeleteRecords (key 21, v0-v2): moves each partition's log start offset up to the
//! requested offset (-1: the high watermark) and deletes the segments wholly below it, as
//! Kafka's `ReplicaManager.deleteRecords`. The answer's low watermark is the new log start
//! offset; an offset above the high watermark is OFFSET_OUT_OF_RANGE, a partition this
//! broker does not host UNKNOWN_TOPIC_OR_PARTITION. With a single replica the deletion is
//! complete when the leader has done it, so `timeout_ms` is never waited on.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: DeleteRecordsRequest,
    authz: RequestAuthorizer<'_>,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            // Kafka: DELETE on the topic.
            if !authz.allows_topic(AclOperation::Delete, &name) {
                partitions.push(result.with_error_code(E::TopicAuthorizationFailed.code()));
                continue;
            }
            let Some(replica) = broker.replicas.partition(&name, p.partition_index) else {
                partitions
                    .push(result.with_error_code(broker.not_leader_code(&name, p.partition_index)));
                continue;
            };
            let offset = p.offset;
            // Renames and file removals: off the async workers.
            let outcome = tokio::task::spawn_blocking(move || replica.delete_records(offset)).await;
            let result = match outcome {
                Ok(Ok(low_watermark)) => {
                    debug!(topic = %name, partition = p.partition_index, offset, low_watermark,
                        "records deleted");
                    result.with_low_watermark(low_watermark)
                }
                Ok(Err(e)) => {
                    debug!(topic = %name, partition = p.partition_index, offset, error = %e,
                        "delete records refused");
                    result.with_error_code(e.error_code())
                }
                Err(e) => {
                    warn!(topic = %name, partition = p.partition_index, error = %e,
                        "delete records task failed");
                    result.with_error_code(E::UnknownServerError.code())
                }
            };
            partitions.push(result);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
