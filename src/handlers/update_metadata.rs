//! UpdateMetadata (key 6): the controller tells every broker the live brokers and the
//! partitions' leaders and ISRs (Kafka's ZooKeeper-mode controller protocol).
//!
//! gregor's metadata image is read from ZooKeeper, where the controller wrote all of it
//! before sending, and follows it through its watch: the request is fenced
//! (`controller_fence`, which also records a newer controller epoch) and answered. Roles do
//! not travel here but in LeaderAndIsr.

use gregor_protocol::controller_api::zk_messages::{UpdateMetadataRequest, UpdateMetadataResponse};
use tracing::debug;

use super::controller_fence;
use crate::broker::Broker;

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
    UpdateMetadataResponse::default()
}
