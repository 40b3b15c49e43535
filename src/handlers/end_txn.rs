//! EndTxn (key 26): a transactional producer commits or aborts its transaction at the
//! transaction coordinator, which answers once PrepareCommit or PrepareAbort is stored and
//! then has the markers written. v5+ is transactions v2 (KIP-890 part 2): the end bumps the
//! producer epoch, and the answer carries the producer id and epoch to go on with.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::txn_error_for_version;
use crate::broker::Broker;

/// The first version of transactions v2.
const TRANSACTIONS_V2_FROM: i16 = 5;

pub async fn handle(broker: &Broker, version: i16, req: EndTxnRequest) -> EndTxnResponse {
    let result = broker
        .txns
        .end_transaction(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            version >= TRANSACTIONS_V2_FROM,
            crate::clock::now_ms(),
        )
        .await;
    match result {
        // Before v5 the id and epoch are not in the response (their defaults, -1).
        Ok((producer_id, producer_epoch)) if version >= TRANSACTIONS_V2_FROM => {
            EndTxnResponse::default()
                .with_producer_id(producer_id.into())
                .with_producer_epoch(producer_epoch)
        }
        Ok(_) => EndTxnResponse::default(),
        // Kafka's EndTxn v0-1 clients know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
        Err(e) => {
            EndTxnResponse::default().with_error_code(txn_error_for_version(e, version, 2).code())
        }
    }
}

/// What EndTxn answers a producer without WRITE on its transactional id.
pub fn refused() -> EndTxnResponse {
    EndTxnResponse::default().with_error_code(E::TransactionalIdAuthorizationFailed.code())
}
