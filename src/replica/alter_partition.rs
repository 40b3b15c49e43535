//! A leader's ISR change sent to the controller as AlterPartition (KIP-497), as Kafka's
//! `AlterPartitionManager` does: whoever the controller is (a gregor or a Kafka 3.9 broker),
//! it checks the change against the partition's state and writes it; the answer carries the
//! new partition epoch. One request per change (ISR changes are rare), on its own connection.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::kafka_protocol::error::{ParseResponseErrorCode, ResponseError as E};
use gregor_protocol::kafka_protocol::messages::alter_partition_request::{
    BrokerState, PartitionData, TopicData,
};
use gregor_protocol::kafka_protocol::messages::{AlterPartitionRequest, BrokerId};

use crate::inter_broker::{BrokerConnection, InterBrokerError, InterBrokerSecurity};
use crate::metadata::{IsrChange, MetadataStore};

/// v3: the ISR with each member's broker epoch (KIP-903); Kafka 3.9 and gregor serve it.
const VERSION: i16 = 3;
/// The whole exchange with the controller is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the controller did not write the change.
#[derive(Debug, thiserror::Error)]
pub enum AlterPartitionError {
    #[error("no controller is known")]
    NoController,
    #[error("controller {0}: {1}")]
    Request(i32, InterBrokerError),
    #[error("controller {controller} refused it: {error:?}")]
    Refused { controller: i32, error: Option<E> },
}

/// Sends `change` of the partition `topic_id` to the controller and returns the partition
/// epoch it was written at.
pub async fn send(
    metadata: &Arc<dyn MetadataStore>,
    listener: &str,
    security: &InterBrokerSecurity,
    broker_id: i32,
    topic_id: uuid::Uuid,
    change: &IsrChange,
) -> Result<i32, AlterPartitionError> {
    let image = metadata.image();
    let controller = image.controller_id;
    let endpoint = image
        .broker(controller)
        .and_then(|b| b.address(listener))
        .ok_or(AlterPartitionError::NoController)?;
    let partition = PartitionData::default()
        .with_partition_index(change.partition)
        .with_leader_epoch(change.leader_epoch)
        .with_new_isr_with_epochs(
            change
                .isr
                .iter()
                .map(|b| {
                    BrokerState::default()
                        .with_broker_id(BrokerId(*b))
                        .with_broker_epoch(image.broker_epochs.get(b).copied().unwrap_or(-1))
                })
                .collect(),
        )
        .with_partition_epoch(change.partition_epoch);
    let request = AlterPartitionRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(metadata.broker_epoch())
        .with_topics(vec![TopicData::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![partition])]);
    let failed = |e| AlterPartitionError::Request(controller, e);
    let exchange = async {
        let mut conn = BrokerConnection::connect(
            &endpoint,
            format!("gregor-alter-partition-{broker_id}"),
            TIMEOUT,
            security,
        )
        .await
        .map_err(failed)?;
        conn.call(VERSION, &request, Duration::ZERO)
            .await
            .map_err(failed)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| failed(InterBrokerError::Timeout(TIMEOUT)))??;
    let refused = |code: i16| AlterPartitionError::Refused {
        controller,
        error: code.err(),
    };
    if response.error_code != 0 {
        return Err(refused(response.error_code));
    }
    let answer = response
        .topics
        .iter()
        .filter(|t| t.topic_id == topic_id)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == change.partition)
        .ok_or(AlterPartitionError::Refused {
            controller,
            error: None,
        })?;
    if answer.error_code != 0 {
        return Err(refused(answer.error_code));
    }
    Ok(answer.partition_epoch)
}
