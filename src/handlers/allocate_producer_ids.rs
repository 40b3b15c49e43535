//! AllocateProducerIds (key 67, KIP-730): a Kafka 3.x broker (`inter.broker.protocol.version`
//! 3.0 or later) asks its controller for a block of producer ids instead of taking one from
//! `/latest_producer_id_block` itself. Served at the controller only (NOT_CONTROLLER
//! elsewhere) for a live broker at its current epoch: the block comes from the same znode
//! gregor's own brokers take theirs from (`MetadataStore::allocate_producer_ids`), so no id
//! is ever handed out twice, whichever kind of broker asks.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse,
};
use tracing::{info, warn};

use crate::broker::Broker;
use crate::txn::PRODUCER_ID_BLOCK_SIZE;

pub async fn handle(
    broker: &Broker,
    req: AllocateProducerIdsRequest,
) -> AllocateProducerIdsResponse {
    let image = broker.metadata.image();
    let refuse = |code: i16| AllocateProducerIdsResponse::default().with_error_code(code);
    if image.controller_id != broker.config.broker_id {
        return refuse(E::NotController.code());
    }
    match image.broker_epochs.get(&req.broker_id.0) {
        Some(epoch) if *epoch <= req.broker_epoch => {}
        _ => return refuse(E::StaleBrokerEpoch.code()),
    }
    match broker
        .metadata
        .allocate_producer_ids(PRODUCER_ID_BLOCK_SIZE)
        .await
    {
        Ok(start) => {
            info!(
                broker = req.broker_id.0,
                start,
                len = PRODUCER_ID_BLOCK_SIZE,
                "allocated producer ids to a broker"
            );
            AllocateProducerIdsResponse::default()
                .with_producer_id_start(start.into())
                .with_producer_id_len(PRODUCER_ID_BLOCK_SIZE as i32)
        }
        Err(e) => {
            warn!(broker = req.broker_id.0, error = %e, "cannot allocate producer ids");
            refuse(E::UnknownServerError.code())
        }
    }
}
