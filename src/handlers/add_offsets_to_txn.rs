//! AddOffsetsToTxn (key 25): a transactional producer that will commit a consumer group's
//! offsets in its transaction (`sendOffsetsToTransaction`) adds the group's
//! `__consumer_offsets` partition to it, so that the commit marker reaches the group
//! coordinator.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::txn_error_for_version;
use crate::broker::Broker;
use crate::group::coordinator::partition_for_group;
use crate::group::OFFSETS_TOPIC;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: AddOffsetsToTxnRequest,
    authz: RequestAuthorizer<'_>,
) -> AddOffsetsToTxnResponse {
    let resp = AddOffsetsToTxnResponse::default();
    // Kafka: WRITE on the transactional id, then READ on the group.
    if !authz.allows(
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        return resp.with_error_code(E::TransactionalIdAuthorizationFailed.code());
    }
    if !authz.allows_group(AclOperation::Read, &req.group_id) {
        return resp.with_error_code(E::GroupAuthorizationFailed.code());
    }
    let image = broker.image();
    let Some(offsets) = image.topic(OFFSETS_TOPIC) else {
        return resp.with_error_code(E::CoordinatorNotAvailable.code());
    };
    let partition = partition_for_group(&req.group_id, offsets.partitions.len() as i32);
    let result = broker
        .txns
        .add_partitions(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            &[(OFFSETS_TOPIC.to_string(), partition)],
            0,
            crate::clock::now_ms(),
        )
        .await;
    match result {
        Ok(()) => resp,
        Err(e) => resp.with_error_code(txn_error_for_version(e, version, 2).code()),
    }
}
