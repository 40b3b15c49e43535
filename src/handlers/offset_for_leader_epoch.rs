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

pub fn handle(
    broker: &Broker,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
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
