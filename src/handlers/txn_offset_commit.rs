//! TxnOffsetCommit (key 28): a transactional producer commits a consumer group's offsets in
//! its transaction (`sendOffsetsToTransaction`), at the group coordinator. They are stored
//! as the producer's transactional batch in `__consumer_offsets` and become visible when
//! the transaction's commit marker reaches that partition (dropped on abort).
//!
//! Before that the group's `__consumer_offsets` partition is verified in the producer's
//! transaction at its coordinator (KIP-890 part 1, with
//! `transaction.partition.verification.enable`), or from v5 on (transactions v2, where the
//! producer sends no AddOffsetsToTxn) added to it.

use std::time::Duration;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::broker::Broker;
use crate::group::coordinator::{partition_for_group, CommitEntry};
use crate::group::OFFSETS_TOPIC;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;
use crate::txn::partition_verification::TransactionSupportedOperation;

/// Kafka's `offsets.commit.timeout.ms` default: how long a commit waits for the replicas.
const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: TxnOffsetCommitRequest,
    authz: RequestAuthorizer<'_>,
) -> TxnOffsetCommitResponse {
    // Kafka: WRITE on the transactional id, READ on the group, READ on each topic.
    let refused = if !authz.allows(
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(E::TransactionalIdAuthorizationFailed)
    } else if !authz.allows_group(AclOperation::Read, &req.group_id) {
        Some(E::GroupAuthorizationFailed)
    } else {
        None
    };
    let topic_denied = |t: &str| !authz.allows_topic(AclOperation::Read, t);
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .filter(|t| refused.is_none() && !topic_denied(&t.name))
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitEntry {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let image = broker.image();
    let exists = |topic: &str, partition: i32| image.has_partition(topic, partition);
    let instance = req.group_instance_id.as_ref().map(|s| s.to_string());
    let operation = TransactionSupportedOperation::for_txn_offset_commit(version);
    let in_transaction = if entries.is_empty() || !broker.txn_verifier.needed(operation) {
        Ok(())
    } else {
        offsets_partition_in_transaction(broker, &req, operation).await
    };
    let results: Vec<Result<(), E>> = if entries.is_empty() {
        Vec::new()
    } else if let Err(e) = in_transaction {
        vec![Err(e); entries.len()]
    } else {
        let committed = broker.groups.txn_commit_offsets(
            &req.group_id.0,
            (req.producer_id.0, req.producer_epoch),
            req.generation_id,
            &req.member_id,
            instance.as_deref(),
            &entries,
            &exists,
        );
        match committed {
            Ok(per_partition) => {
                let stored = if per_partition.iter().any(Result::is_ok) {
                    broker
                        .groups
                        .wait_until_stored(&req.group_id.0, OFFSETS_COMMIT_TIMEOUT)
                        .await
                } else {
                    Ok(())
                };
                match stored {
                    Ok(()) => per_partition,
                    Err(e) => vec![Err(e); entries.len()],
                }
            }
            Err(e) => vec![Err(e); entries.len()],
        }
    };
    let mut results = results.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let denied =
                refused.or_else(|| topic_denied(&t.name).then_some(E::TopicAuthorizationFailed));
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = match denied {
                        Some(e) => e.code(),
                        None => results
                            .next()
                            .unwrap_or(Err(E::UnknownServerError))
                            .map_or_else(
                                // v0-2 clients know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
                                |e| super::txn_error_for_version(e, version, 3).code(),
                                |()| 0,
                            ),
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The group's `__consumer_offsets` partition verified in (or added to) the producer's
/// transaction, at its coordinator.
async fn offsets_partition_in_transaction(
    broker: &Broker,
    req: &TxnOffsetCommitRequest,
    operation: TransactionSupportedOperation,
) -> Result<(), E> {
    let image = broker.image();
    let Some(offsets) = image.topic(OFFSETS_TOPIC) else {
        return Err(E::CoordinatorNotAvailable);
    };
    let partition = partition_for_group(&req.group_id, offsets.partitions.len() as i32);
    broker
        .txn_verifier
        .add_or_verify(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            (OFFSETS_TOPIC, partition),
            operation,
        )
        .await
}
