//! StopReplica (key 5): the controller tells a broker to stop a replica's fetcher and, with
//! `delete`, to delete it (topic deletion, a replica moved away; Kafka's ZooKeeper-mode
//! controller protocol). A Kafka controller completes a topic deletion only once every
//! replica has answered it.
//!
//! After the fence (`controller_fence`) the image is brought up to date, so that a topic
//! marked for deletion is already gone from the replica manager; what is still hosted is
//! stopped and, if asked, deleted. A leader epoch older than the replica's (v3+) is refused
//! for that partition with FENCED_LEADER_EPOCH, as Kafka does.

use gregor_protocol::controller_api::zk_messages::stop_replica_response::StopReplicaPartitionError;
use gregor_protocol::controller_api::zk_messages::{
    StopReplicaRequest, StopReplicaResponse, TopicName,
};
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use tracing::{info, warn};

use super::controller_fence;
use crate::broker::Broker;

/// One partition to stop: topic, index, leader epoch (-1: not checked; -2: deletion), delete.
type Stop = (TopicName, i32, i32, bool);

pub async fn handle(broker: &Broker, version: i16, req: StopReplicaRequest) -> StopReplicaResponse {
    let stops: Vec<Stop> = match version {
        0 => req
            .ungrouped_partitions
            .iter()
            .map(|p| {
                (
                    p.topic_name.clone(),
                    p.partition_index,
                    -1,
                    req.delete_partitions,
                )
            })
            .collect(),
        1 | 2 => req
            .topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| (t.name.clone(), *p, -1, req.delete_partitions))
            })
            .collect(),
        _ => req
            .topic_states
            .iter()
            .flat_map(|t| {
                t.partition_states.iter().map(|p| {
                    (
                        t.topic_name.clone(),
                        p.partition_index,
                        p.leader_epoch,
                        p.delete_partition,
                    )
                })
            })
            .collect(),
    };
    let fence = controller_fence(
        broker,
        "StopReplica",
        req.controller_id.0,
        req.controller_epoch,
        req.broker_epoch,
    );
    if let Some(code) = fence {
        return StopReplicaResponse::default().with_error_code(code);
    }
    broker.metadata.sync().await;
    let image = broker.metadata.image();
    // Closing and deleting logs is file work: off the worker's other tasks.
    let errors =
        crate::blocking::run(|| {
            if let Err(e) = broker.replicas.apply(&image, &broker.config) {
                warn!(error = %e, "applying the image before StopReplica failed");
            }
            stops
            .into_iter()
            .map(|(topic, index, leader_epoch, delete)| {
                let name = topic.0.to_string();
                let current = broker.replicas.hosted(&name, index).map(|p| p.leader_epoch());
                let code = match current {
                    Some(current) if leader_epoch >= 0 && leader_epoch < current => {
                        E::FencedLeaderEpoch.code()
                    }
                    _ => {
                        broker.replicas.stop_replica(&name, index, delete);
                        0
                    }
                };
                info!(topic = %name, partition = index, delete, error_code = code, "StopReplica");
                StopReplicaPartitionError::default()
                    .with_topic_name(topic)
                    .with_partition_index(index)
                    .with_error_code(code)
            })
            .collect()
        });
    StopReplicaResponse::default().with_partition_errors(errors)
}
