//! OffsetFetch (key 9): a group's committed offsets (-1 where nothing was committed). v8+
//! asks for several groups at once.

use gregor_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use gregor_protocol::kafka_protocol::messages::{
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::group::records::OffsetCommitValue;

type Fetched = Vec<(String, Vec<(i32, Option<OffsetCommitValue>)>)>;

/// (offset, leader epoch, metadata) of a partition, with Kafka's "nothing committed" values.
fn fields(v: &Option<OffsetCommitValue>) -> (i64, i32, String) {
    match v {
        Some(v) => (v.offset, v.leader_epoch, v.metadata.clone()),
        None => (-1, -1, String::new()),
    }
}

pub fn handle(broker: &Broker, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match broker.groups.fetch_offsets(&g.group_id.0, topics) {
                    Ok(fetched) => group.with_topics(group_topics(fetched)),
                    Err(e) => group.with_error_code(e.code()),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    match broker
        .groups
        .fetch_offsets(&req.group_id.0, requested.clone())
    {
        Ok(fetched) => OffsetFetchResponse::default().with_topics(single_topics(fetched, 0)),
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

fn group_topics(fetched: Fetched) -> Vec<OffsetFetchResponseTopics> {
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
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect()
}
