//! OffsetCommit (key 8): stores a group's consumed positions in `__consumer_offsets` and
//! answers once they are on every in-sync replica of the group's offsets partition.

use std::collections::HashSet;
use std::time::Duration;

use gregor_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use gregor_protocol::kafka_protocol::error::ResponseError as E;

use crate::broker::Broker;
use crate::group::coordinator::CommitEntry;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

/// Kafka's `offsets.commit.timeout.ms` default: how long a commit waits for the replicas.
const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: OffsetCommitRequest,
    authz: RequestAuthorizer<'_>,
) -> OffsetCommitResponse {
    // Kafka: READ on the group (else every partition is GROUP_AUTHORIZATION_FAILED) and on
    // each topic (else its partitions are TOPIC_AUTHORIZATION_FAILED, and not committed).
    let group_allowed = authz.allows_group(AclOperation::Read, &req.group_id);
    let denied_topics: HashSet<String> = req
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|t| !authz.allows_topic(AclOperation::Read, t))
        .collect();
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .filter(|t| group_allowed && !denied_topics.contains(t.name.0.as_str()))
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitEntry {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let image = broker.image();
    let exists = |topic: &str, partition: i32| image.has_partition(topic, partition);
    let instance = req.group_instance_id.as_ref().map(|s| s.to_string());
    let results: Vec<Result<(), E>> = if entries.is_empty() {
        Vec::new()
    } else {
        match broker.groups.commit_offsets(
            &req.group_id.0,
            req.generation_id_or_member_epoch,
            &req.member_id,
            instance.as_deref(),
            &entries,
            &exists,
        ) {
            Ok(per_partition) => {
                let stored = if per_partition.iter().any(Result::is_ok) {
                    broker
                        .groups
                        .wait_until_stored(&req.group_id.0, OFFSETS_COMMIT_TIMEOUT)
                        .await
                } else {
                    Ok(())
                };
                match stored {
                    Ok(()) => per_partition,
                    Err(e) => vec![Err(e); entries.len()],
                }
            }
            Err(e) => vec![Err(e); entries.len()],
        }
    };
    // One result per entry, in request order; a missing one would be a coordinator bug and
    // must not read as success.
    let mut results = results.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let denied = if !group_allowed {
                Some(E::GroupAuthorizationFailed)
            } else if denied_topics.contains(t.name.0.as_str()) {
                Some(E::TopicAuthorizationFailed)
            } else {
                None
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = match denied {
                        Some(e) => e.code(),
                        None => results
                            .next()
                            .unwrap_or(Err(E::UnknownServerError))
                            .map_or_else(|e| e.code(), |()| 0),
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
