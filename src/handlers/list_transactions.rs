//! ListTransactions (key 66, KIP-664): the transactional ids this broker coordinates,
//! filtered by state, producer id, how long the transaction has run (v1, KIP-994) and a
//! regular expression the whole id must match (v2, KIP-1152). The admin client asks every
//! broker and joins the answers; `kafka-transactions.sh list` prints them.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::list_transactions_response::TransactionState;
use gregor_protocol::kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, TransactionalId,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;
use crate::txn::TransactionState as State;

/// Every state a filter may name (Kafka's TransactionState names).
const STATES: [State; 8] = [
    State::Empty,
    State::Ongoing,
    State::PrepareCommit,
    State::PrepareAbort,
    State::CompleteCommit,
    State::CompleteAbort,
    State::Dead,
    State::PrepareEpochFence,
];

/// Only the ids the client may DESCRIBE are listed, as in Kafka.
pub fn handle(
    broker: &Broker,
    version: i16,
    req: ListTransactionsRequest,
    authz: RequestAuthorizer<'_>,
) -> ListTransactionsResponse {
    let resp = ListTransactionsResponse::default();
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        Some(p) if version >= 2 => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(re) => Some(re),
            Err(_) => return resp.with_error_code(E::InvalidRegularExpression.code()),
        },
        _ => None,
    };
    let (known, unknown): (Vec<_>, Vec<_>) = req
        .state_filters
        .iter()
        .partition(|f| STATES.iter().any(|s| s.name() == f.as_str()));
    // A filter of only unknown states matches nothing (Kafka's rule).
    let nothing = known.is_empty() && !unknown.is_empty();
    let now_ms = crate::clock::now_ms();
    let duration_ms = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let mut listed: Vec<TransactionState> = broker
        .txns
        .transactions()
        .into_iter()
        .filter(|_| !nothing)
        // Dead: an id being expired and removed (Kafka leaves it out too).
        .filter(|(_, m)| m.state != State::Dead)
        .filter(|(_, m)| known.is_empty() || known.iter().any(|f| f.as_str() == m.state.name()))
        .filter(|(_, m)| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
        })
        .filter(|(_, m)| duration_ms < 0 || now_ms - m.start_timestamp_ms > duration_ms)
        .filter(|(id, _)| pattern.as_ref().is_none_or(|re| re.is_match(id)))
        .filter(|(id, _)| authz.allows(AclOperation::Describe, ResourceType::TransactionalId, id))
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(id)))
                .with_producer_id(m.producer_id.into())
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    resp.with_unknown_state_filters(unknown.into_iter().cloned().collect())
        .with_transaction_states(listed)
}
