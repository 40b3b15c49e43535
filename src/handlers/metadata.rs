//! Metadata (key 3): brokers, controller, cluster id and, per topic, its id and each
//! partition's leader, leader epoch, replicas and ISR. Unknown topics are created here when
//! `auto.create.topics.enable` and the client allow it, as Kafka does.

use std::sync::Arc;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use tracing::debug;
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::{MetadataImage, TopicMetadata};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::authorizer::RequestAuthorizer;
use crate::topic_admin::{self, AdminError, NewTopic};

/// Answers with the brokers' addresses on `listener`, the listener the request came in on.
///
/// With an authorizer, as Kafka: a topic needs DESCRIBE to be shown (the all-topics list
/// leaves it out; a named one is TOPIC_AUTHORIZATION_FAILED, whether it exists or not), and
/// auto-creating one needs CREATE on the cluster or the topic.
pub async fn handle(
    broker: &Broker,
    version: i16,
    req: MetadataRequest,
    listener: &str,
    authz: RequestAuthorizer<'_>,
) -> MetadataResponse {
    // Kafka: a leader without this listener is LISTENER_NOT_FOUND from v6 on.
    let listener = RequestListener {
        name: listener,
        missing_leader_error: if version >= 6 {
            E::ListenerNotFound
        } else {
            E::LeaderNotAvailable
        },
    };
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let allow_auto_create = version < 4 || req.allow_auto_topic_creation;
    let mut topics = Vec::new();
    match requested {
        None => {
            let image = broker.image();
            topics.extend(
                image
                    .topics
                    .values()
                    .filter(|t| authz.allows_topic(AclOperation::Describe, &t.name))
                    .map(|t| topic_entry(t, &image, broker, &listener)),
            );
        }
        Some(list) => {
            for wanted in list {
                topics.push(match wanted.name {
                    Some(name) if !authz.allows_topic(AclOperation::Describe, &name.0) => {
                        unauthorized(Some(name), Uuid::nil())
                    }
                    Some(name) => {
                        named_topic(broker, name, allow_auto_create, &listener, authz).await
                    }
                    None => topic_by_id(broker, wanted.topic_id, &listener, authz),
                });
            }
        }
    }
    if version < 5 {
        for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            p.offline_replicas.clear();
        }
    }
    let image = broker.image();
    let mut resp = MetadataResponse::default()
        .with_brokers(
            image
                .brokers
                .iter()
                .filter_map(|b| {
                    let at = b.endpoint(listener.name)?;
                    Some(
                        MetadataResponseBroker::default()
                            .with_node_id(b.id.into())
                            .with_host(str_bytes(at.host.clone()))
                            .with_port(i32::from(at.port))
                            .with_rack(b.rack.clone().map(str_bytes)),
                    )
                })
                .collect(),
        )
        .with_cluster_id(Some(str_bytes(image.cluster_id.clone())))
        .with_controller_id(image.controller_id.into())
        .with_topics(topics);
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = if authz.allows_cluster(AclOperation::Describe) {
            authz.authorized_operations(ResourceType::Cluster, CLUSTER_NAME)
        } else {
            0
        };
    }
    if version >= 8 && req.include_topic_authorized_operations {
        for t in resp
            .topics
            .iter_mut()
            .filter(|t| t.error_code != E::TopicAuthorizationFailed.code())
        {
            if let Some(name) = &t.name {
                t.topic_authorized_operations =
                    authz.authorized_operations(ResourceType::Topic, name);
            }
        }
    }
    resp
}

/// A topic the client may not see or create: no id, no partitions.
fn unauthorized(name: Option<TopicName>, id: Uuid) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_topic_id(id)
        .with_error_code(E::TopicAuthorizationFailed.code())
}

/// The listener a Metadata request came in on, and what a leader without it is answered.
struct RequestListener<'a> {
    name: &'a str,
    missing_leader_error: E,
}

async fn named_topic(
    broker: &Broker,
    name: TopicName,
    allow_auto_create: bool,
    listener: &RequestListener<'_>,
    authz: RequestAuthorizer<'_>,
) -> MetadataResponseTopic {
    let name_str = name.0.to_string();
    if let Some(t) = broker.image().topic(&name_str) {
        return topic_entry(t, &broker.image(), broker, listener);
    }
    let error_entry = |code: E| {
        MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_error_code(code.code())
    };
    if topic_admin::validate_topic_name(&name_str).is_err() {
        return error_entry(E::InvalidTopicException);
    }
    if !(allow_auto_create && broker.config.auto_create_topics_enable) {
        return error_entry(E::UnknownTopicOrPartition);
    }
    if !authz.allows_cluster(AclOperation::Create)
        && !authz.allows_topic(AclOperation::Create, &name_str)
    {
        return unauthorized(Some(name), Uuid::nil());
    }
    let new = NewTopic {
        name: name_str.clone(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![],
        configs: Default::default(),
    };
    match topic_admin::create_topic(broker, new, false).await {
        Ok(_) | Err(AdminError::TopicExists(_)) => match broker.image().topic(&name_str) {
            Some(t) => topic_entry(t, &broker.image(), broker, listener),
            None => error_entry(E::LeaderNotAvailable),
        },
        Err(e) => {
            debug!(topic = %name_str, error = %e, "auto-creation failed");
            error_entry(E::UnknownTopicOrPartition).with_error_code(e.error_code())
        }
    }
}

fn topic_by_id(
    broker: &Broker,
    id: Uuid,
    listener: &RequestListener<'_>,
    authz: RequestAuthorizer<'_>,
) -> MetadataResponseTopic {
    let image = broker.image();
    match image.topic_by_id(&id) {
        // Kafka: ids are not secret, the name is.
        Some(t) if !authz.allows_topic(AclOperation::Describe, &t.name) => unauthorized(None, id),
        Some(t) => topic_entry(t, &image, broker, listener),
        None => MetadataResponseTopic::default()
            .with_topic_id(id)
            .with_error_code(E::UnknownTopicId.code()),
    }
}

/// One topic as the image has it. Offline replicas (Kafka's answer from v5 on; `handle`
/// clears them for older versions) are:
/// - the assigned ones not registered;
/// - this broker's own where its log directory has failed;
/// - any other the controller reported in a failed log directory (UpdateMetadata).
///
/// A partition this broker leads from a failed directory has no leader
/// (LEADER_NOT_AVAILABLE), as once Kafka's controller has heard of the failure, so clients
/// wait for a leader instead of producing into a dead directory. A live leader without the
/// request's listener has no leader either, with the listener's error (Kafka's
/// LISTENER_NOT_FOUND from v6 on).
fn topic_entry(
    t: &Arc<TopicMetadata>,
    image: &MetadataImage,
    broker: &Broker,
    listener: &RequestListener<'_>,
) -> MetadataResponseTopic {
    let local = broker.config.broker_id;
    // The usual case, checked once: every directory online.
    let any_offline = broker.replicas.log_dirs().any_offline();
    // Other brokers' replicas in failed directories, as the controller said.
    let offline_elsewhere = broker.metadata.replicas_on_offline_dirs();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.is_internal())
        .with_partitions(
            t.partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let offline_here = any_offline
                        && p.replicas.contains(&local)
                        && broker.replicas.is_offline(&t.name, i as i32);
                    let elsewhere = if offline_elsewhere.is_empty() {
                        None
                    } else {
                        offline_elsewhere.get(&(t.name.clone(), i as i32))
                    };
                    let leader_broker = image.broker(p.leader);
                    let (leader, error) = if offline_here && p.leader == local {
                        (-1, E::LeaderNotAvailable.code())
                    } else if p.leader < 0 {
                        // No leader (cluster mode: its replicas are down): Kafka's answer.
                        (-1, E::LeaderNotAvailable.code())
                    } else if leader_broker.is_some_and(|b| b.endpoint(listener.name).is_none()) {
                        (-1, listener.missing_leader_error.code())
                    } else {
                        (p.leader, 0)
                    };
                    MetadataResponsePartition::default()
                        .with_error_code(error)
                        .with_partition_index(i as i32)
                        .with_leader_id(leader.into())
                        .with_leader_epoch(p.leader_epoch)
                        .with_replica_nodes(p.replicas.iter().map(|r| (*r).into()).collect())
                        .with_isr_nodes(p.isr.iter().map(|r| (*r).into()).collect())
                        .with_offline_replicas(
                            p.replicas
                                .iter()
                                .filter(|r| {
                                    image.broker(**r).is_none()
                                        || (**r == local && offline_here)
                                        || elsewhere.is_some_and(|o| o.contains(r))
                                })
                                .map(|r| (*r).into())
                                .collect(),
                        )
                })
                .collect(),
        )
}
