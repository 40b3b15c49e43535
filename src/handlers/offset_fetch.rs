//! OffsetFetch (key 9): a group's committed offsets (-1 where nothing was committed). v8+
//! asks for several groups at once.

use gregor_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use gregor_protocol::kafka_protocol::messages::{
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};

use gregor_protocol::kafka_protocol::error::ResponseError as E;

use super::str_bytes;
use crate::broker::Broker;
use crate::group::records::OffsetCommitValue;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

type Fetched = Vec<(String, Vec<(i32, Option<OffsetCommitValue>)>)>;

/// (offset, leader epoch, metadata) of a partition, with Kafka's "nothing committed" values.
fn fields(v: &Option<OffsetCommitValue>) -> (i64, i32, String) {
    match v {
        Some(v) => (v.offset, v.leader_epoch, v.metadata.clone()),
        None => (-1, -1, String::new()),
    }
}

/// With an authorizer: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED) and on each
/// topic (a named one is TOPIC_AUTHORIZATION_FAILED, an all-topics answer leaves it out).
pub fn handle(
    broker: &Broker,
    version: i16,
    req: OffsetFetchRequest,
    authz: RequestAuthorizer<'_>,
) -> OffsetFetchResponse {
    let group_denied = E::GroupAuthorizationFailed.code();
    // KIP-447 (v7+): a partition whose offset an open transaction holds is unstable.
    let require_stable = version >= 7 && req.require_stable;
    let unstable = |group: &str, topic: &str, partition: i32| {
        require_stable
            && broker
                .groups
                .has_pending_txn_offset(group, topic, partition)
    };
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let all = g.topics.is_none();
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                if !authz.allows_group(AclOperation::Describe, &g.group_id) {
                    return group.with_error_code(group_denied);
                }
                match broker.groups.fetch_offsets(&g.group_id.0, topics) {
                    Ok(fetched) => {
                        let (allowed, denied) = split_by_describe(fetched, all, authz);
                        let mut topics = group_topics(allowed, 0);
                        topics.extend(group_topics(denied, E::TopicAuthorizationFailed.code()));
                        for t in &mut topics {
                            for p in &mut t.partitions {
                                if p.error_code == 0
                                    && unstable(&g.group_id, &t.name, p.partition_index)
                                {
                                    p.error_code = E::UnstableOffsetCommit.code();
                                    p.committed_offset = -1;
                                }
                            }
                        }
                        group.with_topics(topics)
                    }
                    Err(e) => group.with_error_code(e.code()),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let all = req.topics.is_none();
    let requested: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let fetched = if authz.allows_group(AclOperation::Describe, &req.group_id) {
        broker
            .groups
            .fetch_offsets(&req.group_id.0, requested.clone())
    } else {
        Err(E::GroupAuthorizationFailed)
    };
    match fetched {
        Ok(fetched) => {
            let (allowed, denied) = split_by_describe(fetched, all, authz);
            let mut topics = single_topics(allowed, 0);
            topics.extend(single_topics(denied, E::TopicAuthorizationFailed.code()));
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 && unstable(&req.group_id, &t.name, p.partition_index) {
                        p.error_code = E::UnstableOffsetCommit.code();
                        p.committed_offset = -1;
                    }
                }
            }
            OffsetFetchResponse::default().with_topics(topics)
        }
        // v0-1 have no top-level error: every partition carries it.
        Err(e) if version < 2 => {
            let fetched: Fetched = requested
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect()))
                .collect();
            OffsetFetchResponse::default().with_topics(single_topics(fetched, e.code()))
        }
        Err(e) => OffsetFetchResponse::default().with_error_code(e.code()),
    }
}

/// The topics the client may describe, and those it named but may not (their offsets
/// withheld); unnamed ones it may not describe are dropped.
fn split_by_describe(
    fetched: Fetched,
    all: bool,
    authz: RequestAuthorizer<'_>,
) -> (Fetched, Fetched) {
    let (allowed, denied): (Fetched, Fetched) = fetched
        .into_iter()
        .partition(|(topic, _)| authz.allows_topic(AclOperation::Describe, topic));
    if all {
        return (allowed, Vec::new());
    }
    let withheld = denied
        .into_iter()
        .map(|(t, ps)| (t, ps.into_iter().map(|(p, _)| (p, None)).collect()))
        .collect();
    (allowed, withheld)
}

fn single_topics(fetched: Fetched, error: i16) -> Vec<OffsetFetchResponseTopic> {
    fetched
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .iter()
                .map(|(p, v)| {
                    let (offset, epoch, metadata) = fields(v);
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(*p)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(str_bytes(metadata)))
                        .with_error_code(error)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect()
}

fn group_topics(fetched: Fetched, error: i16) -> Vec<OffsetFetchResponseTopics> {
    fetched
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .iter()
                .map(|(p, v)| {
                    let (offset, epoch, metadata) = fields(v);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(*p)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(str_bytes(metadata)))
                        .with_error_code(error)
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect()
}
