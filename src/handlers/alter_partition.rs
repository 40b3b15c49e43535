//! AlterPartition (key 56, KIP-497): a partition leader asks the controller to change the
//! ISR. Served at the controller only (NOT_CONTROLLER elsewhere), as Kafka 3.9's ZooKeeper
//! controller does: the sender must be a live broker at its current epoch, the ISR may name
//! only live brokers, and the change is written to the partition's state znode conditional
//! on the zkVersion the leader saw (its partition epoch), leader and leader epoch
//! (`MetadataStore::alter_isr`). The answer carries the state written, with its new
//! partition epoch; other brokers learn it from their ZooKeeper watches.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::alter_partition_response::{
    PartitionData, TopicData,
};
use gregor_protocol::kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, BrokerId,
};
use tracing::{info, warn};

use crate::broker::Broker;
use crate::metadata::{IsrChange, MetadataError};

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: AlterPartitionRequest,
) -> AlterPartitionResponse {
    let image = broker.metadata.image();
    let sender = req.broker_id.0;
    let refuse = |code: i16| AlterPartitionResponse::default().with_error_code(code);
    if image.controller_id != broker.config.broker_id {
        return refuse(E::NotController.code());
    }
    match image.broker_epochs.get(&sender) {
        Some(epoch) if *epoch <= req.broker_epoch => {}
        _ => {
            warn!(
                broker = sender,
                broker_epoch = req.broker_epoch,
                "AlterPartition from a stale or unknown broker"
            );
            return refuse(E::StaleBrokerEpoch.code());
        }
    }
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = image.topic_by_id(&t.topic_id).cloned();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let isr: Vec<i32> = if version >= 3 {
                p.new_isr_with_epochs
                    .iter()
                    .map(|b| b.broker_id.0)
                    .collect()
            } else {
                p.new_isr.iter().map(|b| b.0).collect()
            };
            let answer = PartitionData::default().with_partition_index(p.partition_index);
            let current = topic.as_ref().and_then(|t| {
                usize::try_from(p.partition_index)
                    .ok()
                    .and_then(|i| t.partitions.get(i))
            });
            let (Some(topic), Some(current)) = (&topic, current) else {
                partitions.push(answer.with_error_code(E::UnknownTopicOrPartition.code()));
                continue;
            };
            let code = if current.leader_epoch > p.leader_epoch {
                Some(E::FencedLeaderEpoch.code())
            } else if current.leader != sender {
                Some(E::NotLeaderOrFollower.code())
            } else if isr.iter().any(|b| !image.broker_epochs.contains_key(b)) {
                Some(E::IneligibleReplica.code())
            } else {
                None
            };
            if let Some(code) = code {
                partitions.push(answer.with_error_code(code));
                continue;
            }
            let change = IsrChange {
                topic: topic.name.clone(),
                partition: p.partition_index,
                leader: sender,
                leader_epoch: p.leader_epoch,
                isr: isr.clone(),
                partition_epoch: p.partition_epoch,
            };
            match broker.metadata.alter_isr(change).await {
                Ok(partition_epoch) => {
                    info!(topic = %topic.name, partition = p.partition_index, leader = sender,
                        isr = ?isr, partition_epoch, "AlterPartition: ISR changed");
                    partitions.push(
                        answer
                            .with_leader_id(BrokerId(sender))
                            .with_leader_epoch(p.leader_epoch)
                            .with_isr(isr.into_iter().map(BrokerId).collect())
                            .with_leader_recovery_state(p.leader_recovery_state)
                            .with_partition_epoch(partition_epoch),
                    )
                }
                Err(e) => {
                    let code = match e {
                        MetadataError::StaleIsrChange(_) => E::InvalidUpdateVersion.code(),
                        MetadataError::UnknownTopic(_) => E::UnknownTopicOrPartition.code(),
                        _ => E::UnknownServerError.code(),
                    };
                    warn!(topic = %topic.name, partition = p.partition_index, error = %e,
                        "AlterPartition refused");
                    partitions.push(answer.with_error_code(code));
                }
            }
        }
        topics.push(
            TopicData::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    AlterPartitionResponse::default().with_topics(topics)
}
