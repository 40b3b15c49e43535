//! Creating `__consumer_offsets` on first use, as Kafka does when the first FindCoordinator
//! for a group arrives: `offsets.topic.num.partitions` partitions, compacted, with
//! `offsets.topic.segment.bytes` segments.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as E;
use tracing::{info, warn};

use super::OFFSETS_TOPIC;
use crate::broker::Broker;
use crate::topic_admin::{self, AdminError, NewTopic};

/// Makes sure the offsets topic exists and this broker's coordinator has loaded its share.
pub async fn ensure_exists(broker: &Broker) -> Result<(), E> {
    if broker.image().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let cfg = broker.groups.config();
    let live = broker.image().brokers.len().max(1) as i16;
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert(
        "segment.bytes".to_string(),
        cfg.offsets_topic_segment_bytes.to_string(),
    );
    configs.insert("compression.type".to_string(), "producer".to_string());
    let topic = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: cfg.offsets_topic_partitions,
        replication_factor: cfg.offsets_topic_replication_factor.min(live),
        assignments: Vec::new(),
        configs,
    };
    match topic_admin::create_topic(broker, topic, false).await {
        Ok(_) => {
            info!(
                partitions = cfg.offsets_topic_partitions,
                "created the offsets topic"
            );
            Ok(())
        }
        // Another request created it first.
        Err(AdminError::TopicExists(_)) => Ok(()),
        Err(e) => {
            warn!(error = %e, "cannot create the offsets topic");
            Err(E::CoordinatorNotAvailable)
        }
    }
}
