//! One partition replica: its log, leader epoch and high watermark, behind one short lock.
//!
//! The lock is held only to validate, append and compute read positions; the bytes of a
//! fetch are read from the segment file after it is released, so a long read never blocks
//! appends. Waiting fetchers subscribe to the high watermark through a `watch` channel.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use gregor_log::cleaner::{CleanResult, CleanableLog};
use gregor_log::{
    AppendInfo, EpochEndOffset, FetchSlice, Log, LogConfig, LogError, LogOpenOptions,
};
use thiserror::Error;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::TopicSettings;

#[derive(Debug, Error)]
pub enum PartitionError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("ISR has {isr} members, fewer than min.insync.replicas={min}")]
    NotEnoughReplicas { isr: usize, min: i32 },
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    #[error("transactional batches are not supported yet")]
    TransactionsUnsupported,
    #[error(
        "cannot read {}: {reason}. It must name the partition's topic id; restore it, or \
         delete it to have this broker adopt the directory's data for topic id {topic_id}",
        path.display()
    )]
    UnreadablePartitionMetadata {
        path: std::path::PathBuf,
        reason: String,
        topic_id: String,
    },
}

impl PartitionError {
    /// The Kafka error code a client gets for this failure.
    pub fn error_code(&self) -> i16 {
        use gregor_log::ProducerError;
        use kafka_protocol::error::ResponseError as E;
        match self {
            PartitionError::Log(e) => match e {
                LogError::CorruptBatch { .. } => E::CorruptMessage.code(),
                LogError::UnsupportedMagic(_) | LogError::InvalidRecord(_) => {
                    E::InvalidRecord.code()
                }
                LogError::BatchTooLarge { .. } => E::MessageTooLarge.code(),
                LogError::OffsetOutOfRange { .. } => E::OffsetOutOfRange.code(),
                LogError::Producer(ProducerError::InvalidProducerEpoch { .. }) => {
                    E::InvalidProducerEpoch.code()
                }
                LogError::Producer(ProducerError::OutOfOrderSequence { .. }) => {
                    E::OutOfOrderSequenceNumber.code()
                }
                _ => E::KafkaStorageError.code(),
            },
            PartitionError::NotEnoughReplicas { .. } => E::NotEnoughReplicas.code(),
            PartitionError::FencedLeaderEpoch { .. } => E::FencedLeaderEpoch.code(),
            PartitionError::UnknownLeaderEpoch { .. } => E::UnknownLeaderEpoch.code(),
            PartitionError::TransactionsUnsupported => E::InvalidTxnState.code(),
            PartitionError::UnreadablePartitionMetadata { .. } => E::KafkaStorageError.code(),
        }
    }
}

/// What a fetch gets back from one partition: where its records are (read them into
/// memory with `FetchSlice::read`, or send them from the file), none if nothing is there.
pub struct PartitionRead {
    pub records: Option<FetchSlice>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

struct PartitionState {
    log: Log,
    leader_epoch: i32,
    high_watermark: i64,
    isr_size: usize,
    settings: TopicSettings,
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    state: Mutex<PartitionState>,
    high_watermark_tx: watch::Sender<i64>,
    /// Whether this broker leads the partition (cluster mode; always true standalone).
    /// Only leaders serve clients: see `ReplicaManager::partition`.
    leader: AtomicBool,
    /// Group fsync: held by the one thread fsyncing for everyone; holds the offset below
    /// which the log is known durable.
    flushed: Mutex<i64>,
}

pub fn log_config(settings: &TopicSettings) -> LogConfig {
    LogConfig {
        segment_bytes: settings.segment_bytes,
        segment_ms: settings.segment_ms,
        max_index_bytes: settings.segment_index_bytes,
        index_interval_bytes: settings.index_interval_bytes,
        flush_interval_messages: settings.flush_messages,
        max_message_bytes: settings.max_message_bytes.max(0) as u32,
        retention_ms: settings.retention_ms,
        retention_bytes: settings.retention_bytes,
        delete_enabled: settings
            .cleanup_policy
            .split(',')
            .any(|p| p.trim() == "delete"),
    }
}

/// The offsets the broker's checkpoint files hold for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionCheckpoint {
    pub recovery_point: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl Partition {
    /// Opens the partition's log recovering only its active segment (see `open_with`).
    pub fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        leader_epoch: i32,
        settings: TopicSettings,
    ) -> Result<Partition, PartitionError> {
        let options = LogOpenOptions {
            recovery_point: Some(i64::MAX),
            ..LogOpenOptions::default()
        };
        Self::open_with(dir, topic, index, topic_id, leader_epoch, settings, options)
    }

    /// Opens the partition's log with what the checkpoints and the clean-shutdown marker say
    /// (`Log::open_with`). The high watermark starts at the log end offset: this broker leads
    /// with an ISR of itself, so everything in its log is committed.
    pub fn open_with(
        dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        leader_epoch: i32,
        settings: TopicSettings,
        options: LogOpenOptions,
    ) -> Result<Partition, PartitionError> {
        let mut log = Log::open_with(dir, log_config(&settings), options)?;
        log.set_deferred_flush(true);
        // Kafka records the start offset of each leader epoch when a replica becomes leader.
        if log.latest_epoch().is_none_or(|e| e < leader_epoch) {
            let leo = log.log_end_offset();
            log.assign_epoch_start_offset(leader_epoch, leo)?;
        }
        let high_watermark = log.log_end_offset();
        Ok(Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            state: Mutex::new(PartitionState {
                log,
                leader_epoch,
                high_watermark,
                isr_size: 1,
                settings,
            }),
            high_watermark_tx: watch::Sender::new(high_watermark),
            leader: AtomicBool::new(true),
            flushed: Mutex::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PartitionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Applies the leadership the metadata gives this replica: leader or follower, and the
    /// partition's leader epoch. A new leader records the epoch's start offset in its
    /// leader-epoch cache, as Kafka's `Partition.makeLeader`.
    pub fn set_leadership(&self, leader: bool, leader_epoch: i32) -> Result<(), PartitionError> {
        let mut st = self.lock();
        if leader_epoch > st.leader_epoch {
            st.leader_epoch = leader_epoch;
            if leader && st.log.latest_epoch().is_none_or(|e| e < leader_epoch) {
                let leo = st.log.log_end_offset();
                st.log.assign_epoch_start_offset(leader_epoch, leo)?;
            }
        }
        self.leader.store(leader, Ordering::Release);
        Ok(())
    }

    pub fn leader_epoch(&self) -> i32 {
        self.lock().leader_epoch
    }

    /// Kafka's check of the epoch a client believes current (-1 = not checked).
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), PartitionError> {
        let current = self.leader_epoch();
        check_epoch(requested, current)
    }

    pub fn set_settings(&self, settings: TopicSettings) {
        let mut st = self.lock();
        st.log.set_config(log_config(&settings));
        st.settings = settings;
    }

    pub fn max_message_bytes(&self) -> u32 {
        self.lock().settings.max_message_bytes.max(0) as u32
    }

    /// Appends a validated record set as leader. `required_acks` = -1 also requires the ISR
    /// to have at least min.insync.replicas members, as Kafka does.
    pub fn append(
        &self,
        records: Bytes,
        mut headers: Vec<gregor_log::BatchHeader>,
        required_acks: i16,
    ) -> Result<AppendInfo, PartitionError> {
        if headers
            .iter()
            .any(|h| h.is_transactional() || h.is_control())
        {
            return Err(PartitionError::TransactionsUnsupported);
        }
        let compacted = self.lock().settings.compacted();
        if compacted {
            // Kafka refuses keyless records in a compacted topic (INVALID_RECORD); checked
            // outside the lock since compressed batches are decompressed for it.
            gregor_log::records::check_keys(&records, &headers)?;
        }
        let mut st = self.lock();
        if required_acks == -1 && (st.isr_size as i32) < st.settings.min_insync_replicas {
            return Err(PartitionError::NotEnoughReplicas {
                isr: st.isr_size,
                min: st.settings.min_insync_replicas,
            });
        }
        let epoch = st.leader_epoch;
        let log_append_time = st.settings.message_timestamp_type == "LogAppendTime";
        let (records, now) = if log_append_time {
            let now = crate::clock::now_ms();
            // Stamping changes the timestamps and CRC: that needs our own copy.
            let mut stamped = BytesMut::from(&records[..]);
            gregor_log::set_log_append_time(&mut stamped, &mut headers, now);
            (stamped.freeze(), now)
        } else {
            (records, -1)
        };
        let mut info = st.log.append(&records, &headers, epoch).inspect_err(|e| {
            super::storage_errors::note_write_failure(st.log.dir(), e);
        })?;
        if log_append_time && !info.duplicate {
            info.log_append_time = now;
        }
        // The ISR is this broker alone: what is in our log is committed.
        st.high_watermark = st.log.log_end_offset();
        let hw = st.high_watermark;
        let flush_due = st.log.flush_due() && !info.duplicate;
        drop(st);
        if flush_due {
            // `flush.messages` reached: fsync before acknowledging (1 = every append).
            self.flush_to(info.last_offset + 1)?;
        }
        self.high_watermark_tx.send_replace(hw);
        Ok(info)
    }

    /// Group fsync: makes every offset below `target` durable. One thread at a time fsyncs,
    /// outside the partition lock so appends continue; whoever waited meanwhile finds its
    /// data covered by that fsync or runs the next one for everything appended since.
    pub fn flush_to(&self, target: i64) -> Result<(), PartitionError> {
        let mut flushed = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
        if *flushed >= target {
            return Ok(());
        }
        let job = self.lock().log.begin_flush()?;
        job.run().map_err(LogError::from)?;
        self.lock().log.complete_flush(&job);
        *flushed = job.upto();
        Ok(())
    }

    /// `flush.ms`: flushes the log if it holds messages appended more than `flush.ms` after
    /// its last flush. Returns whether it flushed.
    pub fn flush_if_stale(&self, now_ms: i64) -> Result<bool, PartitionError> {
        let (target, due) = {
            let st = self.lock();
            let (unflushed, last) = st.log.unflushed();
            let due = unflushed > 0 && now_ms.saturating_sub(last) >= st.settings.flush_ms;
            (st.log.log_end_offset(), due)
        };
        if due {
            self.flush_to(target)?;
        }
        Ok(due)
    }

    /// Reads from `offset` up to the high watermark (or the last stable offset for
    /// read_committed, equal to it while there are no transactions).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<PartitionRead, PartitionError> {
        let st = self.lock();
        let records = st
            .log
            .read(offset, max_bytes, st.high_watermark, min_one_batch)?;
        Ok(PartitionRead {
            records,
            high_watermark: st.high_watermark,
            last_stable_offset: st.high_watermark,
            log_start_offset: st.log.log_start_offset(),
        })
    }

    /// (log start offset, high watermark, log end offset)
    pub fn offsets(&self) -> (i64, i64, i64) {
        let st = self.lock();
        (
            st.log.log_start_offset(),
            st.high_watermark,
            st.log.log_end_offset(),
        )
    }

    /// First record at or after `timestamp` below the high watermark: (offset, timestamp).
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let st = self.lock();
        let found = st.log.offset_for_timestamp(timestamp)?;
        Ok(found.filter(|(offset, _)| *offset < st.high_watermark))
    }

    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, PartitionError> {
        let st = self.lock();
        let found = st.log.max_timestamp_offset()?;
        Ok(found.filter(|(offset, _)| *offset < st.high_watermark))
    }

    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEndOffset {
        self.lock().log.end_offset_for_epoch(epoch)
    }

    /// A receiver that wakes when the high watermark moves (fetch long polls).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark_tx.subscribe()
    }

    pub fn close(&self) -> Result<(), PartitionError> {
        Ok(self.lock().log.close()?)
    }

    pub fn flush(&self) -> Result<(), PartitionError> {
        Ok(self.lock().log.flush()?)
    }

    /// fsyncs the segments rolled since the last flush (Kafka's flush on roll, done by the
    /// periodic checkpoint) and returns the offsets to checkpoint.
    pub fn checkpoint(&self) -> Result<PartitionCheckpoint, PartitionError> {
        let mut st = self.lock();
        st.log.flush_rolled_segments()?;
        Ok(PartitionCheckpoint {
            recovery_point: st.log.recovery_point(),
            high_watermark: st.high_watermark,
            log_start_offset: st.log.log_start_offset(),
        })
    }

    /// Retention (`Log::delete_old_segments`) at `now_ms`: segments are renamed to
    /// `.deleted` under the lock and removed after it is released. Returns the number of
    /// segments deleted.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<usize, PartitionError> {
        let (deleted, files) = {
            let mut st = self.lock();
            let hw = st.high_watermark;
            let deleted = st.log.delete_old_segments(now_ms, hw)?;
            (deleted, st.log.take_deleted_files())
        };
        gregor_log::remove_deleted_files(&files);
        Ok(deleted)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the high watermark) and
    /// deletes the segments wholly below it. An offset above the high watermark (or below
    /// -1) is OFFSET_OUT_OF_RANGE, as in Kafka. Returns the new low watermark.
    pub fn delete_records(&self, offset: i64) -> Result<i64, PartitionError> {
        let (low_watermark, files) = {
            let mut st = self.lock();
            let hw = st.high_watermark;
            let target = if offset == -1 { hw } else { offset };
            if target < 0 || target > hw {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: st.log.log_start_offset(),
                    log_end: hw,
                }
                .into());
            }
            let low = st.log.delete_records_before(target)?;
            (low, st.log.take_deleted_files())
        };
        gregor_log::remove_deleted_files(&files);
        Ok(low_watermark)
    }

    /// The topic's current settings (live: AlterConfigs changes them).
    pub fn settings(&self) -> TopicSettings {
        self.lock().settings.clone()
    }

    /// What the cleaner needs of this log (`Log::cleanable_view`), under the lock briefly.
    pub fn cleanable_view(&self) -> Result<CleanableLog, PartitionError> {
        Ok(self.lock().log.cleanable_view()?)
    }

    /// Swaps in a cleaning's segments (`Log::replace_cleaned`); the replaced files are
    /// removed after the lock is released. Returns the groups swapped in.
    pub fn replace_cleaned(&self, result: &CleanResult) -> Result<usize, PartitionError> {
        let (swapped, files) = {
            let mut st = self.lock();
            let swapped = st.log.replace_cleaned(result)?;
            (swapped, st.log.take_deleted_files())
        };
        gregor_log::remove_deleted_files(&files);
        Ok(swapped)
    }

    /// Deletes the log directory. The partition must already be out of the manager.
    pub fn delete(self) -> Result<(), PartitionError> {
        let state = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(state.log.delete()?)
    }
}

fn check_epoch(requested: i32, current: i32) -> Result<(), PartitionError> {
    if requested == -1 || requested == current {
        Ok(())
    } else if requested < current {
        Err(PartitionError::FencedLeaderEpoch { requested, current })
    } else {
        Err(PartitionError::UnknownLeaderEpoch { requested, current })
    }
}

/// A shared handle, as stored in the manager.
pub type PartitionRef = Arc<Partition>;

#[cfg(test)]
mod tests {
    use super::*;

    fn open_partition(dir: &Path, f: impl FnOnce(&mut TopicSettings)) -> Partition {
        let mut settings = crate::config::topic_settings(
            &std::collections::BTreeMap::new(),
            &crate::config::BrokerConfig::default_standalone(),
        );
        f(&mut settings);
        Partition::open(dir, "t", 0, Uuid::new_v4(), 0, settings).unwrap()
    }

    fn produce(p: &Partition, key: Option<&str>) -> Result<AppendInfo, PartitionError> {
        use kafka_protocol::records::*;
        let rec = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: key.map(|k| Bytes::from(k.to_string())),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            [&rec],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::Snappy,
            },
        )
        .unwrap();
        let headers = gregor_log::parse_record_set(&buf, 1 << 20).unwrap();
        p.append(buf.freeze(), headers, 1)
    }

    #[test]
    fn flush_messages_one_makes_every_ack_durable_with_concurrent_producers() {
        let dir = tempfile::tempdir().unwrap();
        let p = Arc::new(open_partition(dir.path(), |s| s.flush_messages = 1));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let info = produce(&p, Some("k")).unwrap();
                        // Acknowledged means fsynced: the recovery point covers it.
                        let rp = p.lock().log.recovery_point();
                        assert!(rp > info.last_offset, "rp {rp} offset {}", info.last_offset);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(p.offsets().2, 400);
        assert_eq!(p.lock().log.recovery_point(), 400);
    }

    #[test]
    fn flush_ms_flushes_stale_logs_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = open_partition(dir.path(), |s| s.flush_ms = 60_000);
        for _ in 0..3 {
            produce(&p, Some("k")).unwrap();
        }
        assert_eq!(p.lock().log.recovery_point(), 0, "no flush policy hit yet");
        let now = gregor_log_now();
        assert!(!p.flush_if_stale(now).unwrap(), "younger than flush.ms");
        assert!(p.flush_if_stale(now + 61_000).unwrap());
        assert_eq!(p.lock().log.recovery_point(), 3);
        assert!(
            !p.flush_if_stale(now + 200_000).unwrap(),
            "nothing unflushed"
        );
    }

    fn gregor_log_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    #[test]
    fn compacted_topics_refuse_records_without_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = open_partition(dir.path(), |s| s.cleanup_policy = "compact".into());
        let err = produce(&p, None).unwrap_err();
        assert_eq!(err.error_code(), 87, "INVALID_RECORD");
        assert_eq!(produce(&p, Some("k")).unwrap().first_offset, 0);
        let q = open_partition(&dir.path().join("other"), |_| {});
        assert_eq!(
            produce(&q, None).unwrap().first_offset,
            0,
            "delete policy takes it"
        );
    }

    #[test]
    fn epoch_checks_follow_kafka() {
        assert!(check_epoch(-1, 4).is_ok());
        assert!(check_epoch(4, 4).is_ok());
        assert!(matches!(
            check_epoch(3, 4),
            Err(PartitionError::FencedLeaderEpoch { .. })
        ));
        assert!(matches!(
            check_epoch(5, 4),
            Err(PartitionError::UnknownLeaderEpoch { .. })
        ));
    }
}
