//! OffsetDelete (key 47): removes a group's committed offsets for partitions it does not
//! consume (GROUP_SUBSCRIBED_TO_TOPIC for those it does).

use gregor_protocol::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::broker::Broker;

pub fn handle(broker: &Broker, _version: i16, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    match broker.groups.delete_offsets(&req.group_id.0, &topics) {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(results) => OffsetDeleteResponse::default().with_topics(
            req.topics
                .into_iter()
                .zip(results)
                .map(|(t, (_, parts))| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, e)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(e)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}
