//! InitProducerId (key 22): hands an idempotent producer a fresh producer id at epoch 0,
//! as Kafka does for requests without a transactional id (it ignores any id/epoch sent).
//! Transactional ids need the transaction coordinator, which does not exist yet.

use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use tracing::warn;

use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => {}
        // Kafka refuses an empty transactional id outright.
        Some("") => return resp.with_error_code(ResponseError::InvalidRequest.code()),
        Some(_) => return resp.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
    match broker.producer_ids.next_id().await {
        Ok(id) => resp.with_producer_id(id.into()).with_producer_epoch(0),
        Err(e) => {
            warn!(error = %e, "cannot allocate a producer id");
            resp.with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}
