//! WriteTxnMarkers (key 27): a transaction coordinator has this broker, as the leader of
//! each named partition, append the marker that commits or aborts a producer's
//! transaction there. Kafka appends each marker with acks=-1 and answers once the ISR has
//! it (or the wait times out), per partition.

use std::sync::Arc;
use std::time::Duration;

use gregor_log::EndTxnMarker;
use gregor_protocol::kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use gregor_protocol::kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use tracing::debug;

use crate::broker::Broker;
use crate::replica::{LeaderAppend, Partition};

/// How long the ISR has to take a marker: Kafka's default `request.timeout.ms`.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A marker appended, waiting for the ISR: where its answer goes.
struct Waiting {
    producer_id: i64,
    commit: bool,
    marker: usize,
    topic: usize,
    partition: usize,
    replica: Arc<Partition>,
    appended: LeaderAppend,
}

/// Every partition answered `code` (Kafka's error response: CLUSTER_AUTHORIZATION_FAILED
/// without CLUSTER_ACTION).
pub fn refused(req: WriteTxnMarkersRequest, code: i16) -> WriteTxnMarkersResponse {
    let markers = req
        .markers
        .into_iter()
        .map(|m| {
            let topics = m
                .topics
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .into_iter()
                        .map(|index| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}

pub async fn handle(broker: &Broker, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut waiting = Vec::new();
    let mut markers = Vec::with_capacity(req.markers.len());
    for (m, marker) in req.markers.into_iter().enumerate() {
        let end = EndTxnMarker {
            commit: marker.transaction_result,
            coordinator_epoch: marker.coordinator_epoch,
        };
        let producer_id = marker.producer_id.0;
        let mut topics = Vec::with_capacity(marker.topics.len());
        for (t, topic) in marker.topics.into_iter().enumerate() {
            let name = topic.name.0.to_string();
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for (p, index) in topic.partition_indexes.into_iter().enumerate() {
                let code = match broker.replicas.partition(&name, index) {
                    None => broker.not_leader_code(&name, index),
                    Some(replica) => {
                        match replica.append_end_txn_marker(producer_id, marker.producer_epoch, end)
                        {
                            Ok(appended) => {
                                waiting.push(Waiting {
                                    producer_id,
                                    commit: end.commit,
                                    marker: m,
                                    topic: t,
                                    partition: p,
                                    replica,
                                    appended,
                                });
                                0
                            }
                            Err(e) => {
                                debug!(topic = %name, partition = index, producer_id, error = %e,
                                    "transaction marker refused");
                                e.error_code()
                            }
                        }
                    }
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    let deadline = tokio::time::Instant::now() + REPLICATION_TIMEOUT;
    for w in waiting {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let replicated = w.replica.wait_until_replicated(&w.appended, left).await;
        if replicated.is_ok() && w.replica.topic == crate::group::OFFSETS_TOPIC {
            // The group coordinator completes the transaction's offsets.
            broker
                .groups
                .complete_transaction(w.replica.index, w.producer_id, w.commit);
        }
        if let Err(e) = replicated {
            debug!(topic = %w.replica.topic, error = %e, "transaction marker not replicated");
            markers[w.marker].topics[w.topic].partitions[w.partition].error_code = e.error_code();
        }
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
