//! UpdateMetadata (key 6): the controller tells every broker the live brokers and the
//! partitions' leaders and ISRs (Kafka's ZooKeeper-mode controller protocol).
//!
//! gregor's metadata image is read from ZooKeeper, where the controller wrote all of it
//! before sending, and follows it through its watch: the request is fenced
//! (`controller_fence`, which also records a newer controller epoch) and answered. Roles do
//! not travel here but in LeaderAndIsr. What ZooKeeper does not hold is kept: each
//! partition's offline replicas, where they name replicas in failed log directories
//! (`MetadataStore::note_offline_replicas`, listed by Metadata).

use gregor_protocol::controller_api::zk_messages::{UpdateMetadataRequest, UpdateMetadataResponse};
use tracing::debug;

use super::controller_fence;
use crate::broker::Broker;

/// Kafka's `LeaderAndIsr.LeaderDuringDelete`.
const LEADER_DURING_DELETE: i32 = -2;

pub async fn handle(broker: &Broker, req: UpdateMetadataRequest) -> UpdateMetadataResponse {
    let fence = controller_fence(
        broker,
        "UpdateMetadata",
        req.controller_id.0,
        req.controller_epoch,
        req.broker_epoch,
    );
    if let Some(code) = fence {
        return UpdateMetadataResponse::default().with_error_code(code);
    }
    debug!(
        controller = req.controller_id.0,
        live_brokers = req.live_brokers.len(),
        "UpdateMetadata"
    );
    // v0-4 list partitions with their topic's name; v5+ group them by topic.
    let grouped = req.topic_states.iter().flat_map(|t| {
        t.partition_states
            .iter()
            .map(move |p| (t.topic_name.0.to_string(), p))
    });
    let ungrouped = req
        .ungrouped_partition_states
        .iter()
        .map(|p| (p.topic_name.0.to_string(), p));
    let offline = grouped
        .chain(ungrouped)
        .map(|(topic, p)| {
            // A topic being deleted (leader -2) keeps nothing.
            let replicas = if p.leader.0 == LEADER_DURING_DELETE {
                Vec::new()
            } else {
                p.offline_replicas.iter().map(|b| b.0).collect()
            };
            ((topic, p.partition_index), replicas)
        })
        .collect();
    broker.metadata.note_offline_replicas(offline);
    UpdateMetadataResponse::default()
}
