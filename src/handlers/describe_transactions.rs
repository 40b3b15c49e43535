//! DescribeTransactions (key 65, KIP-664): the state of transactional ids at their
//! coordinator: state, timeout, start time, producer id and epoch, and the partitions of
//! the open transaction. `kafka-transactions.sh describe` and `find-hanging` read it.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState,
};
use gregor_protocol::kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse,
};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;

/// Each id needs DESCRIBE (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED); the partitions of
/// topics the client may not describe are left out, as Kafka does.
pub fn handle(
    broker: &Broker,
    _version: i16,
    req: DescribeTransactionsRequest,
    authz: RequestAuthorizer<'_>,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let resp = TransactionState::default().with_transactional_id(id.clone());
            if !authz.allows(AclOperation::Describe, ResourceType::TransactionalId, &id) {
                return resp.with_error_code(E::TransactionalIdAuthorizationFailed.code());
            }
            let m = match broker.txns.describe(&id) {
                Ok(m) => m,
                Err(e) => return resp.with_error_code(e.code()),
            };
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in &m.partitions {
                if authz.allows_topic(AclOperation::Describe, topic) {
                    topics.entry(topic).or_default().push(*partition);
                }
            }
            resp.with_transaction_state(str_bytes(m.state.name()))
                .with_transaction_timeout_ms(m.timeout_ms)
                .with_transaction_start_time_ms(m.start_timestamp_ms)
                .with_producer_id(m.producer_id.into())
                .with_producer_epoch(m.producer_epoch)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            TopicData::default()
                                .with_topic(topic_name(topic))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
