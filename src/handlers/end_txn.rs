//! EndTxn (key 26): a transactional producer commits or aborts its transaction at the
//! transaction coordinator, which answers once PrepareCommit or PrepareAbort is stored and
//! then has the markers written.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::txn_error_for_version;
use crate::broker::Broker;

pub async fn handle(broker: &Broker, version: i16, req: EndTxnRequest) -> EndTxnResponse {
    let result = broker
        .txns
        .end_transaction(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            crate::clock::now_ms(),
        )
        .await;
    let code = match result {
        Ok(()) => 0,
        // Kafka's EndTxn v0-1 clients know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
        Err(e) => txn_error_for_version(e, version, 2).code(),
    };
    EndTxnResponse::default().with_error_code(code)
}

/// What EndTxn answers a producer without WRITE on its transactional id.
pub fn refused() -> EndTxnResponse {
    EndTxnResponse::default().with_error_code(E::TransactionalIdAuthorizationFailed.code())
}
