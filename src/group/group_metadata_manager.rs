//! Storing to and loading from `__consumer_offsets` (the job of Kafka's
//! `GroupMetadataManager`): one batch of records appended to a partition, and the replay of a
//! newly led partition into classic groups and committed offsets.
//!
//! It knows the log (`Partition`) and the record formats; it does not know locks: the
//! coordinator calls `append` with its lock released (see `coordinator.rs`).

use std::collections::HashMap;

use bytes::BytesMut;
use gregor_log::{parse_record_set, LogError};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use thiserror::Error;
use tracing::warn;

use super::classic::ClassicGroup;
use super::records::{
    decode_group_metadata_value, decode_key, decode_offset_commit_value, CoordinatorKey,
    GroupMetadataValue, KeyValue, OffsetCommitValue,
};
use crate::clock::Now;
use crate::replica::{Partition, PartitionError, ReadBound};

/// Why records could not be stored.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot encode the offsets batch: {0}")]
    Encode(String),
    #[error("cannot append to __consumer_offsets: {0}")]
    Append(#[from] PartitionError),
}

impl StoreError {
    /// Kafka's mapping of a failed coordinator write to what the client is told.
    pub fn response_error(&self) -> E {
        match self {
            StoreError::Encode(_) => E::UnknownServerError,
            StoreError::Append(PartitionError::NotEnoughReplicas { .. }) => {
                E::CoordinatorNotAvailable
            }
            StoreError::Append(PartitionError::Log(LogError::BatchTooLarge { .. })) => {
                E::InvalidCommitOffsetSize
            }
            // A TxnOffsetCommit from a fenced producer epoch.
            StoreError::Append(PartitionError::Log(LogError::Producer(
                gregor_log::ProducerError::InvalidProducerEpoch { .. },
            ))) => E::ProducerFenced,
            StoreError::Append(_) => E::NotCoordinator,
        }
    }
}

/// Why a partition could not be replayed.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read __consumer_offsets: {0}")]
    Read(String),
    #[error("cannot decode a __consumer_offsets batch: {0}")]
    Decode(String),
}

/// Appends records to an offsets partition as one batch (so they are stored atomically),
/// stamped `timestamp_ms`. With a `producer` (id, epoch) the batch is that producer's,
/// transactional: a TxnOffsetCommit, which its transaction's marker completes.
pub fn append(
    partition: &Partition,
    recs: Vec<KeyValue>,
    timestamp_ms: i64,
    producer: Option<(i64, i16)>,
) -> Result<(), StoreError> {
    if recs.is_empty() {
        return Ok(());
    }
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = recs
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant;
            // base sequence 0, as Kafka's group coordinator writes it (-1, none, for a
            // producer's batch: the coordinator's sequences are not checked).
            sequence: if producer.is_some() {
                i as i32 - 1
            } else {
                i as i32
            },
            timestamp: timestamp_ms,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| StoreError::Encode(e.to_string()))?;
    let headers =
        parse_record_set(&buf, u32::MAX).map_err(|e| StoreError::Encode(e.to_string()))?;
    match producer {
        Some(_) => partition.append_from_coordinator(buf.freeze(), headers)?,
        None => partition.append(buf.freeze(), headers, -1)?,
    };
    Ok(())
}

/// What one offsets partition holds: its classic groups (including a group known only by its
/// committed offsets, Empty) and every committed offset (group, topic, partition, value).
pub struct Loaded {
    pub groups: Vec<ClassicGroup>,
    pub offsets: Vec<(String, String, i32, OffsetCommitValue)>,
    /// Transactional offset commits whose transaction has not ended: producer id ->
    /// (group, topic, partition, value).
    pub pending_txn: HashMap<i64, Vec<(String, String, i32, OffsetCommitValue)>>,
}

/// Replays one `__consumer_offsets` partition: the last record of each key wins, tombstones
/// delete.
pub fn load_partition(partition: &Partition, index: i32, now: Now) -> Result<Loaded, LoadError> {
    // Kafka's coordinator loads up to the log end: a new leader's high watermark may lag
    // until its followers fetch again.
    let (start, _, log_end) = partition.offsets();
    let mut offset = start;
    let mut offsets: HashMap<(String, String, i32), Option<OffsetCommitValue>> = HashMap::new();
    let mut metadata: HashMap<String, Option<GroupMetadataValue>> = HashMap::new();
    // Transactional offset commits by producer, until their marker (Kafka's replay of
    // TxnOffsetCommit records).
    let mut pending_txn: HashMap<i64, Vec<(String, String, i32, OffsetCommitValue)>> =
        HashMap::new();
    while offset < log_end {
        let read = partition
            .read_up_to(offset, 1 << 20, true, ReadBound::LogEnd)
            .map_err(|e| LoadError::Read(e.to_string()))?;
        let Some(slice) = read.records else {
            break;
        };
        let records = slice.read().map_err(|e| LoadError::Read(e.to_string()))?;
        let headers =
            parse_record_set(&records, u32::MAX).map_err(|e| LoadError::Decode(e.to_string()))?;
        let mut pos = 0usize;
        for h in &headers {
            let len = 12 + h.batch_length.max(0) as usize;
            let end = (pos + len).min(records.len());
            let mut batch = records.slice(pos..end);
            pos = end;
            offset = h.base_offset + h.last_offset_delta as i64 + 1;
            if h.is_control() {
                let Some(marker) = gregor_log::EndTxnMarker::parse(&batch) else {
                    continue;
                };
                for (g, t, p, v) in pending_txn.remove(&h.producer_id).unwrap_or_default() {
                    if marker.commit {
                        offsets.insert((g, t, p), Some(v));
                    }
                }
                continue;
            }
            let set = RecordBatchDecoder::decode(&mut batch)
                .map_err(|e| LoadError::Decode(e.to_string()))?;
            for r in set.records {
                let Some(key) = r.key else { continue };
                match decode_key(&key) {
                    Ok(CoordinatorKey::Offset {
                        group,
                        topic,
                        partition,
                    }) => {
                        let value = match r.value {
                            Some(v) => match decode_offset_commit_value(&v) {
                                Ok(v) => Some(v),
                                Err(e) => {
                                    warn!(error = %e, "skipping unreadable offset commit");
                                    continue;
                                }
                            },
                            None => None,
                        };
                        match (h.is_transactional(), value) {
                            (true, Some(v)) => pending_txn
                                .entry(h.producer_id)
                                .or_default()
                                .push((group, topic, partition, v)),
                            (true, None) => {}
                            (false, value) => {
                                offsets.insert((group, topic, partition), value);
                            }
                        }
                    }
                    Ok(CoordinatorKey::Group { group }) => {
                        let value = match r.value {
                            Some(v) => match decode_group_metadata_value(&v) {
                                Ok(v) => Some(v),
                                Err(e) => {
                                    warn!(error = %e, "skipping unreadable group metadata");
                                    continue;
                                }
                            },
                            None => None,
                        };
                        metadata.insert(group, value);
                    }
                    Ok(CoordinatorKey::Other(_)) => {}
                    Err(e) => warn!(error = %e, "skipping unreadable __consumer_offsets key"),
                }
            }
        }
    }
    let mut groups: HashMap<String, ClassicGroup> = HashMap::new();
    for (group, value) in metadata {
        if let Some(value) = value {
            let mut g = ClassicGroup::new(group.clone(), index, now.ms);
            g.restore(value, now);
            groups.insert(group, g);
        }
    }
    let offsets: Vec<(String, String, i32, OffsetCommitValue)> = offsets
        .into_iter()
        .filter_map(|((g, t, p), v)| Some((g, t, p, v?)))
        .collect();
    for (group, ..) in &offsets {
        groups
            .entry(group.clone())
            .or_insert_with(|| ClassicGroup::new(group.clone(), index, now.ms));
    }
    Ok(Loaded {
        groups: groups.into_values().collect(),
        offsets,
        pending_txn,
    })
}
