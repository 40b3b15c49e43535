//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, from the partition's
//! leader-epoch cache. Consumers (KIP-320) use it to detect log truncation after a leader
//! change; followers will use it to truncate before fetching.

use gregor_protocol::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use crate::broker::Broker;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

pub fn handle(
    broker: &Broker,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
    authz: RequestAuthorizer<'_>,
) -> OffsetForLeaderEpochResponse {
    // Kafka: CLUSTER_ACTION (a follower), else DESCRIBE on each topic (a consumer, KIP-320).
    let cluster_action = authz.allows_cluster(AclOperation::ClusterAction);
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let allowed = cluster_action || authz.allows_topic(AclOperation::Describe, &name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !allowed {
                        return resp.with_error_code(TOPIC_AUTHORIZATION_FAILED);
                    }
                    let Some(replica) = broker.replicas.partition(&name, p.partition) else {
                        return resp.with_error_code(broker.not_leader_code(&name, p.partition));
                    };
                    if let Err(e) = replica.check_leader_epoch(p.current_leader_epoch) {
                        return resp.with_error_code(e.error_code());
                    }
                    let found = replica.end_offset_for_epoch(p.leader_epoch);
                    resp.with_leader_epoch(found.leader_epoch)
                        .with_end_offset(found.end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
