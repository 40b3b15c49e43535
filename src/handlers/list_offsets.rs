//! ListOffsets (key 2): offsets by timestamp, with Kafka's special timestamps: -1 latest
//! (high watermark, or last stable offset for read_committed), -2 earliest (log start),
//! -3 the record with the largest timestamp (KIP-734), -4 earliest local (= earliest: no
//! tiered storage), -5 latest tiered (none: offset -1).

use gregor_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use gregor_protocol::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use gregor_protocol::kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::replica::{Partition, PartitionError};
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

const LATEST: i64 = -1;
/// ListOffsets v2+: isolation level 1 is read_committed.
const READ_COMMITTED: i8 = 1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// With an authorizer, each topic needs DESCRIBE (else TOPIC_AUTHORIZATION_FAILED).
pub fn handle(
    broker: &Broker,
    version: i16,
    req: ListOffsetsRequest,
    authz: RequestAuthorizer<'_>,
) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let allowed = authz.allows_topic(AclOperation::Describe, &name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if !allowed {
                        return resp
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(replica) = broker.replicas.partition(&name, p.partition_index) else {
                        return resp
                            .with_error_code(broker.not_leader_code(&name, p.partition_index));
                    };
                    let epoch = if version >= 4 {
                        p.current_leader_epoch
                    } else {
                        -1
                    };
                    let read_committed = version >= 2 && req.isolation_level == READ_COMMITTED;
                    match lookup(&replica, epoch, p.timestamp, read_committed) {
                        Ok((offset, timestamp)) => resp
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            // The leader epoch field exists from v4 on.
                            .with_leader_epoch(if version >= 4 && offset >= 0 {
                                replica.leader_epoch()
                            } else {
                                -1
                            }),
                        Err(e) => resp.with_error_code(e.error_code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp) for one partition; (-1, -1) when no record qualifies.
/// Kafka's `fetchOffsetForTimestamp`: read_committed answers stop at the last stable
/// offset, read_uncommitted ones at the high watermark.
fn lookup(
    p: &Partition,
    current_leader_epoch: i32,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64), PartitionError> {
    p.check_leader_epoch(current_leader_epoch)?;
    let (log_start, high_watermark, _) = p.offsets();
    let fetchable = if read_committed {
        p.last_stable_offset()
    } else {
        high_watermark
    };
    let none = (-1, -1);
    let below_fetchable = |found: Option<(i64, i64)>| found.filter(|(o, _)| *o < fetchable);
    Ok(match timestamp {
        LATEST => (fetchable, -1),
        EARLIEST | EARLIEST_LOCAL => (log_start, -1),
        MAX_TIMESTAMP => below_fetchable(p.max_timestamp_offset()?).unwrap_or(none),
        LATEST_TIERED => none,
        ts if ts >= 0 => below_fetchable(p.offset_for_timestamp(ts)?).unwrap_or(none),
        _ => none,
    })
}
