//! ControlledShutdown (key 7): a broker about to stop asks the controller to move its
//! leaderships away first (Kafka's ZooKeeper-mode controller protocol; a Kafka 3.9 broker
//! sends it on SIGTERM, and so does gregor). Served at the controller only (NOT_CONTROLLER
//! elsewhere): `MetadataStore::controlled_shutdown` marks the broker as shutting down, so
//! that the controller elects other leaders for the partitions it leads and takes it out of
//! the ISRs it follows in, and answers with the partitions it still leads (none once every
//! one of them had another in-sync replica; the broker asks again until then).

use gregor_protocol::controller_api::zk_messages::controlled_shutdown_response::RemainingPartition;
use gregor_protocol::controller_api::zk_messages::{
    ControlledShutdownRequest, ControlledShutdownResponse, TopicName,
};
use gregor_protocol::controller_api::ZkStrBytes;
use tracing::{info, warn};

use crate::broker::Broker;

pub async fn handle(broker: &Broker, req: ControlledShutdownRequest) -> ControlledShutdownResponse {
    let id = req.broker_id.0;
    match broker
        .metadata
        .controlled_shutdown(id, req.broker_epoch)
        .await
    {
        Ok(remaining) => {
            info!(
                broker = id,
                remaining = remaining.len(),
                "ControlledShutdown"
            );
            ControlledShutdownResponse::default().with_remaining_partitions(
                remaining
                    .into_iter()
                    .map(|(topic, partition)| {
                        RemainingPartition::default()
                            .with_topic_name(TopicName(ZkStrBytes::from_string(topic)))
                            .with_partition_index(partition)
                    })
                    .collect(),
            )
        }
        Err(e) => {
            let code = super::controller_error_code(&e);
            warn!(broker = id, broker_epoch = req.broker_epoch, error = %e, "ControlledShutdown refused");
            ControlledShutdownResponse::default().with_error_code(code)
        }
    }
}
