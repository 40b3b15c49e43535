//! Creating `__consumer_offsets` on first use, as Kafka does when the first FindCoordinator
//! for a group arrives: `offsets.topic.num.partitions` partitions, compacted, with
//! `offsets.topic.segment.bytes` segments.
//!
//! The broker is reached only through `InternalTopicCreator`, so this module does not know
//! `Broker` or topic administration (`topic_admin.rs` implements the trait).

use std::collections::BTreeMap;
use std::future::Future;

use kafka_protocol::error::ResponseError as E;
use thiserror::Error;
use tracing::{info, warn};

use super::records::OFFSETS_TOPIC;
use crate::config::GroupConfig;

/// An internal topic to create.
pub struct InternalTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Error)]
pub enum CreateTopicError {
    /// Another request created it first.
    #[error("topic already exists")]
    AlreadyExists,
    #[error("{0}")]
    Failed(String),
}

/// The little this module needs from the broker.
pub trait InternalTopicCreator {
    fn topic_exists(&self, name: &str) -> bool;
    /// Brokers alive now (the replication factor is capped to it).
    fn live_brokers(&self) -> usize;
    fn create_internal_topic(
        &self,
        topic: InternalTopic,
    ) -> impl Future<Output = Result<(), CreateTopicError>> + Send;
}

/// Makes sure the offsets topic exists (creating it lets the coordinator load its share).
pub async fn ensure_exists(topics: &impl InternalTopicCreator, cfg: &GroupConfig) -> Result<(), E> {
    if topics.topic_exists(OFFSETS_TOPIC) {
        return Ok(());
    }
    let live = topics.live_brokers().max(1) as i16;
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert(
        "segment.bytes".to_string(),
        cfg.offsets_topic_segment_bytes.to_string(),
    );
    configs.insert("compression.type".to_string(), "producer".to_string());
    let topic = InternalTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: cfg.offsets_topic_partitions,
        replication_factor: cfg.offsets_topic_replication_factor.min(live),
        configs,
    };
    match topics.create_internal_topic(topic).await {
        Ok(()) => {
            info!(
                partitions = cfg.offsets_topic_partitions,
                "created the offsets topic"
            );
            Ok(())
        }
        Err(CreateTopicError::AlreadyExists) => Ok(()),
        Err(e) => {
            warn!(error = %e, "cannot create the offsets topic");
            Err(E::CoordinatorNotAvailable)
        }
    }
}
