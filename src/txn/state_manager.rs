//! Storing to and loading from `__transaction_state` (the job of Kafka's
//! `TransactionStateManager`): one transactional id's new state appended to its partition
//! and replicated before the coordinator acts on it, the replay of a partition this broker
//! comes to lead, and creating the topic on first use.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_log::parse_record_set;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tracing::{info, warn};

use super::records::{
    decode_transaction_log_key, decode_transaction_log_value, encode_transaction_log_value,
    transaction_log_key, TransactionLogValue, TRANSACTION_STATE_TOPIC,
};
use crate::config::TxnConfig;
use crate::group::offsets_topic::{CreateTopicError, InternalTopic, InternalTopicCreator};
use crate::replica::{Partition, PartitionError, ReadBound};

/// How long a state write may wait for the ISR: Kafka's default `request.timeout.ms`.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Kafka's mapping of a failed transaction-log write to what the client is told
/// (`TransactionStateManager.appendTransactionToLog`).
fn write_error(e: &PartitionError) -> E {
    match e {
        PartitionError::NotLeader => E::NotCoordinator,
        PartitionError::NotEnoughReplicas { .. }
        | PartitionError::NotEnoughReplicasAfterAppend { .. }
        | PartitionError::ReplicationTimedOut => E::CoordinatorNotAvailable,
        _ => E::UnknownServerError,
    }
}

/// Appends `transactional_id`'s new state (None: a tombstone, the id expired), in value
/// version `value_version`, and waits until the ISR has it.
pub async fn append(
    partition: &Partition,
    transactional_id: &str,
    value: Option<&TransactionLogValue>,
    value_version: i16,
    timestamp_ms: i64,
) -> Result<(), E> {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: timestamp_ms,
        key: Some(transaction_log_key(transactional_id)),
        value: value.map(|v| encode_transaction_log_value(v, value_version)),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|_| E::UnknownServerError)?;
    let headers = parse_record_set(&buf, u32::MAX).map_err(|_| E::UnknownServerError)?;
    let appended = partition
        .append(buf.freeze(), headers, -1)
        .map_err(|e| write_error(&e))?;
    partition
        .wait_until_replicated(&appended, REPLICATION_TIMEOUT)
        .await
        .map_err(|e| {
            warn!(partition = %partition.topic, error = %e, "transaction state not replicated");
            write_error(&e)
        })
}

/// Replays one `__transaction_state` partition to its log end: the last state of each
/// transactional id (tombstones remove it).
pub fn load_partition(
    partition: &Partition,
) -> Result<HashMap<String, TransactionLogValue>, String> {
    let (start, _, log_end) = partition.offsets();
    let mut offset = start;
    let mut out: HashMap<String, TransactionLogValue> = HashMap::new();
    while offset < log_end {
        let read = partition
            .read_up_to(offset, 1 << 20, true, ReadBound::LogEnd)
            .map_err(|e| e.to_string())?;
        let Some(slice) = read.records else {
            break;
        };
        let records: Bytes = slice.read().map_err(|e| e.to_string())?;
        let headers = parse_record_set(&records, u32::MAX).map_err(|e| e.to_string())?;
        let mut pos = 0usize;
        for h in &headers {
            let end = (pos + h.total_size()).min(records.len());
            let mut batch = records.slice(pos..end);
            pos = end;
            offset = h.last_offset() + 1;
            if h.is_control() {
                continue;
            }
            let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| e.to_string())?;
            for r in set.records {
                let Some(key) = r.key else { continue };
                let id = match decode_transaction_log_key(&key) {
                    Ok(id) => id,
                    Err(e) => {
                        warn!(error = %e, "skipping an unreadable __transaction_state key");
                        continue;
                    }
                };
                match r.value.as_deref().map(decode_transaction_log_value) {
                    None => {
                        out.remove(&id);
                    }
                    Some(Ok(v)) => {
                        out.insert(id, v);
                    }
                    Some(Err(e)) => {
                        warn!(transactional_id = %id, error = %e, "skipping an unreadable transaction state")
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Makes sure `__transaction_state` exists, with Kafka's settings for it.
pub async fn ensure_topic_exists(
    topics: &impl InternalTopicCreator,
    cfg: &TxnConfig,
) -> Result<(), E> {
    if topics.topic_exists(TRANSACTION_STATE_TOPIC) {
        return Ok(());
    }
    let live = topics.live_brokers().max(1) as i16;
    let replication_factor = cfg.state_log_replication_factor.min(live);
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("compression.type".to_string(), "uncompressed".to_string());
    configs.insert(
        "segment.bytes".to_string(),
        cfg.state_log_segment_bytes.to_string(),
    );
    configs.insert(
        "min.insync.replicas".to_string(),
        cfg.state_log_min_isr
            .min(i32::from(replication_factor))
            .to_string(),
    );
    configs.insert(
        "unclean.leader.election.enable".to_string(),
        "false".to_string(),
    );
    let topic = InternalTopic {
        name: TRANSACTION_STATE_TOPIC.to_string(),
        partitions: cfg.state_log_partitions,
        replication_factor,
        configs,
    };
    match topics.create_internal_topic(topic).await {
        Ok(()) => {
            info!(
                partitions = cfg.state_log_partitions,
                "created the transaction state topic"
            );
            Ok(())
        }
        Err(CreateTopicError::AlreadyExists) => Ok(()),
        Err(e) => {
            warn!(error = %e, "cannot create the transaction state topic");
            Err(E::CoordinatorNotAvailable)
        }
    }
}
