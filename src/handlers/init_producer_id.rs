//! InitProducerId (key 22): an idempotent producer gets a fresh producer id at epoch 0, as
//! Kafka does for requests without a transactional id (it ignores any id/epoch sent). A
//! transactional producer gets its id's producer id and a new epoch from the transaction
//! coordinator, which fences the earlier producer of the id; from v3 it may name its own
//! id and epoch to have that epoch bumped (KIP-360), and is fenced if they are stale.

use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use tracing::warn;

use super::txn_error_for_version;
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => {}
        // Kafka refuses an empty transactional id outright.
        Some("") => return resp.with_error_code(ResponseError::InvalidRequest.code()),
        Some(id) => {
            // v3+ may name the producer's current id and epoch (KIP-360); both or neither.
            let expected = match (req.producer_id.0, req.producer_epoch) {
                (-1, -1) => None,
                (-1, _) | (_, -1) => {
                    return resp.with_error_code(ResponseError::InvalidRequest.code())
                }
                (producer_id, epoch) => Some((producer_id, epoch)),
            };
            let result = broker
                .txns
                .init_producer_id(
                    id,
                    expected,
                    req.transaction_timeout_ms,
                    crate::clock::now_ms(),
                )
                .await;
            return match result {
                Ok((producer_id, epoch)) => resp
                    .with_producer_id(producer_id.into())
                    .with_producer_epoch(epoch),
                Err(e) => resp.with_error_code(txn_error_for_version(e, version, 4).code()),
            };
        }
    }
    match broker.producer_ids.next_id().await {
        Ok(id) => resp.with_producer_id(id.into()).with_producer_epoch(0),
        Err(e) => {
            warn!(error = %e, "cannot allocate a producer id");
            resp.with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}
