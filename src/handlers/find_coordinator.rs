//! FindCoordinator (key 10): which broker coordinates a consumer group (key type 0) or a
//! transactional id (key type 1): the leader of its partition of `__consumer_offsets` or
//! `__transaction_state`, each created on first use as Kafka does. Other key types (share
//! groups) get INVALID_REQUEST.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use gregor_protocol::kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::group::coordinator::partition_for_group;
use crate::group::{offsets_topic, OFFSETS_TOPIC};
use crate::metadata::ListenerEndpoint;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::RequestAuthorizer;
use crate::txn::{state_manager, TRANSACTION_STATE_TOPIC};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: FindCoordinatorRequest,
    listener: &str,
    authz: RequestAuthorizer<'_>,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if version < 4 {
        vec![req.key.to_string()]
    } else {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    };
    let mut found = Vec::with_capacity(keys.len());
    for key in &keys {
        // Kafka: DESCRIBE on the group or the transactional id.
        let denied = match req.key_type {
            KEY_TYPE_GROUP => (!authz.allows_group(AclOperation::Describe, key))
                .then_some(E::GroupAuthorizationFailed),
            KEY_TYPE_TRANSACTION => {
                (!authz.allows(AclOperation::Describe, ResourceType::TransactionalId, key))
                    .then_some(E::TransactionalIdAuthorizationFailed)
            }
            _ => None,
        };
        found.push(match denied {
            Some(e) => Err(e),
            None => find(broker, req.key_type, key, listener).await,
        });
    }
    if version < 4 {
        let first = found
            .into_iter()
            .next()
            .unwrap_or(Err(E::CoordinatorNotAvailable));
        return match first {
            Ok((id, node)) => FindCoordinatorResponse::default()
                .with_node_id(id.into())
                .with_host(str_bytes(node.host))
                .with_port(node.port as i32),
            Err(e) => FindCoordinatorResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(e.to_string())))
                .with_node_id((-1).into())
                .with_host(str_bytes(""))
                .with_port(-1),
        };
    }
    let coordinators = keys
        .into_iter()
        .zip(found)
        .map(|(key, result)| {
            let c = Coordinator::default().with_key(str_bytes(key));
            match result {
                Ok((id, node)) => c
                    .with_node_id(id.into())
                    .with_host(str_bytes(node.host))
                    .with_port(node.port as i32),
                Err(e) => c
                    .with_node_id((-1).into())
                    .with_host(str_bytes(""))
                    .with_port(-1)
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.to_string()))),
            }
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}

/// The coordinator's address on `listener`.
async fn find(
    broker: &Broker,
    key_type: i8,
    key: &str,
    listener: &str,
) -> Result<(i32, ListenerEndpoint), E> {
    let topic_name = match key_type {
        KEY_TYPE_GROUP => {
            offsets_topic::ensure_exists(broker, broker.groups.config()).await?;
            OFFSETS_TOPIC
        }
        KEY_TYPE_TRANSACTION => {
            state_manager::ensure_topic_exists(broker, broker.txns.config()).await?;
            TRANSACTION_STATE_TOPIC
        }
        _ => return Err(E::InvalidRequest),
    };
    let image = broker.image();
    let topic = image.topic(topic_name).ok_or(E::CoordinatorNotAvailable)?;
    let p = partition_for_group(key, topic.partitions.len() as i32);
    let leader = topic
        .partitions
        .get(p as usize)
        .map(|p| p.leader)
        .ok_or(E::CoordinatorNotAvailable)?;
    let coordinator = image.broker(leader).ok_or(E::CoordinatorNotAvailable)?;
    // Kafka: a coordinator without the client's listener is not available to it.
    coordinator
        .endpoint(listener)
        .map(|e| (leader, e.clone()))
        .ok_or(E::CoordinatorNotAvailable)
}
