//! LeaderAndIsr (key 4): the controller tells a replica's broker who leads the partition, at
//! which leader epoch, with which ISR (Kafka's ZooKeeper-mode controller protocol; a Kafka
//! 3.9 controller sends it to every broker, gregor included).
//!
//! The request is fenced (`controller_fence`); if it names a topic this broker's image does
//! not show yet, the image is brought up to date with ZooKeeper (the controller wrote the
//! topic before sending); the replicas the image assigns here are opened, and each partition
//! state is applied to its replica: an older leader epoch changes nothing, a newer one changes
//! the role at once, before this broker's own reload would have.

use gregor_protocol::controller_api::zk_messages::leader_and_isr_request::LeaderAndIsrPartitionState;
use gregor_protocol::controller_api::zk_messages::leader_and_isr_response::{
    LeaderAndIsrPartitionError, LeaderAndIsrTopicError,
};
use gregor_protocol::controller_api::zk_messages::{
    LeaderAndIsrRequest, LeaderAndIsrResponse, TopicName,
};
use gregor_protocol::controller_api::ZkStrBytes;
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use tracing::{debug, warn};
use uuid::Uuid;

use super::controller_fence;
use crate::broker::Broker;
use crate::replica::manager::LeaderAndIsrOutcome;
use crate::replica::partition::{Leadership, PartitionError};

/// One partition state with its topic's name and id (v5+; nil before).
struct State {
    topic: String,
    topic_id: Uuid,
    state: LeaderAndIsrPartitionState,
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: LeaderAndIsrRequest,
) -> LeaderAndIsrResponse {
    let states: Vec<State> = if version < 2 {
        req.ungrouped_partition_states
            .into_iter()
            .map(|s| State {
                topic: s.topic_name.0.to_string(),
                topic_id: Uuid::nil(),
                state: s,
            })
            .collect()
    } else {
        req.topic_states
            .into_iter()
            .flat_map(|t| {
                let (name, id) = (t.topic_name.0.to_string(), t.topic_id);
                t.partition_states.into_iter().map(move |s| State {
                    topic: name.clone(),
                    topic_id: id,
                    state: s,
                })
            })
            .collect()
    };
    let fence = controller_fence(
        broker,
        "LeaderAndIsr",
        req.controller_id.0,
        req.controller_epoch,
        req.broker_epoch,
    );
    if let Some(code) = fence {
        return response(version, code, states.iter().map(|s| (s, code)).collect());
    }
    let unknown_topic = |image: &crate::metadata::MetadataImage| {
        states.iter().any(|s| {
            image
                .topic(&s.topic)
                .is_none_or(|t| !s.topic_id.is_nil() && t.id != s.topic_id)
        })
    };
    if unknown_topic(&broker.metadata.image()) {
        broker.metadata.sync().await;
    }
    let image = broker.metadata.image();
    // Opening logs and changing roles is file work: off the worker's other tasks.
    let results = crate::blocking::run(|| {
        if let Err(e) = broker.replicas.apply(&image, &broker.config) {
            warn!(error = %e, "opening the replicas of a LeaderAndIsr request failed");
        }
        states
            .iter()
            .map(|s| (s, apply_state(broker, &image, s)))
            .collect::<Vec<_>>()
    });
    response(version, 0, results)
}

/// One partition state applied to its replica here; the error code to answer with.
fn apply_state(broker: &Broker, image: &crate::metadata::MetadataImage, s: &State) -> i16 {
    let st = &s.state;
    let local = broker.config.broker_id;
    let known = image
        .topic(&s.topic)
        .is_some_and(|t| s.topic_id.is_nil() || t.id == s.topic_id);
    let code = if !st.replicas.iter().any(|r| r.0 == local) || !known {
        E::UnknownTopicOrPartition.code()
    } else {
        let leadership = Leadership {
            leader: st.leader.0,
            leader_epoch: st.leader_epoch,
            isr: st.isr.iter().map(|b| b.0).collect(),
            replicas: st.replicas.iter().map(|b| b.0).collect(),
            partition_epoch: st.partition_epoch,
        };
        match broker
            .replicas
            .apply_leader_and_isr(&s.topic, st.partition_index, &leadership)
        {
            LeaderAndIsrOutcome::Applied => 0,
            // Kafka answers an older leader epoch so (and the controller only logs it).
            LeaderAndIsrOutcome::StaleLeaderEpoch => E::StaleControllerEpoch.code(),
            LeaderAndIsrOutcome::NotHosted => E::UnknownTopicOrPartition.code(),
            // Said once already, when the directory failed.
            LeaderAndIsrOutcome::Failed(PartitionError::LogDirOffline(_)) => {
                E::KafkaStorageError.code()
            }
            LeaderAndIsrOutcome::Failed(e) => {
                warn!(topic = %s.topic, partition = st.partition_index, error = %e,
                    "LeaderAndIsr: the replica could not change role");
                E::KafkaStorageError.code()
            }
        }
    };
    debug!(topic = %s.topic, partition = st.partition_index, leader = st.leader.0,
        leader_epoch = st.leader_epoch, error_code = code, "LeaderAndIsr partition state");
    code
}

/// v0-4 answer per partition with the topic's name; v5+ per topic, by id.
fn response(version: i16, error_code: i16, results: Vec<(&State, i16)>) -> LeaderAndIsrResponse {
    let mut resp = LeaderAndIsrResponse::default().with_error_code(error_code);
    if version < 5 {
        // Named from `State`: v2-4 carry the name in the topic state, not the partition's.
        resp.partition_errors = results
            .into_iter()
            .map(|(s, code)| {
                LeaderAndIsrPartitionError::default()
                    .with_topic_name(TopicName(ZkStrBytes::from_string(s.topic.clone())))
                    .with_partition_index(s.state.partition_index)
                    .with_error_code(code)
            })
            .collect();
    } else {
        let mut topics: Vec<LeaderAndIsrTopicError> = Vec::new();
        for (s, code) in results {
            let error = LeaderAndIsrPartitionError::default()
                .with_partition_index(s.state.partition_index)
                .with_error_code(code);
            match topics.iter_mut().find(|t| t.topic_id == s.topic_id) {
                Some(t) => t.partition_errors.push(error),
                None => topics.push(
                    LeaderAndIsrTopicError::default()
                        .with_topic_id(s.topic_id)
                        .with_partition_errors(vec![error]),
                ),
            }
        }
        resp.topics = topics;
    }
    resp
}
