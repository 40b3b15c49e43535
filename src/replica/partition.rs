//! One partition replica: its log, leader epoch, ISR and high watermark, behind one short
//! lock (Kafka's `Partition`).
//!
//! The lock is held only to validate, append and compute read positions; the bytes of a
//! fetch are read from the segment file after it is released, so a long read never blocks
//! appends. Waiting consumers and acks=all producers subscribe to the high watermark, waiting
//! followers to the log end offset, through `watch` channels.
//!
//! As leader it tracks what each follower has shown in its fetches (its log end offset and
//! when it last caught up), moves the high watermark to the smallest log end offset in the
//! ISR, and proposes ISR changes (`IsrChange`), which the replica manager writes to the
//! metadata store and reports back (`complete_isr_change`). As follower it appends the
//! leader's batches unchanged and takes the leader's high watermark.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use gregor_log::cleaner::{CleanResult, CleanableLog};
use gregor_log::{
    AppendInfo, AppendOrigin, EpochEndOffset, FetchSlice, Log, LogConfig, LogError, LogOpenOptions,
};
use thiserror::Error;
use tokio::sync::watch;
use uuid::Uuid;

use super::log_dirs::{is_dir_failure, LogDir};
use crate::config::TopicSettings;
pub use crate::metadata::IsrChange;
use crate::metrics::{self, TopicMetrics};

#[derive(Debug, Error)]
pub enum PartitionError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("ISR has {isr} members, fewer than min.insync.replicas={min}")]
    NotEnoughReplicas { isr: usize, min: i32 },
    #[error(
        "the ISR shrank to {isr} members, fewer than min.insync.replicas={min}, after the append"
    )]
    NotEnoughReplicasAfterAppend { isr: usize, min: i32 },
    #[error("this broker stopped leading the partition after the append")]
    NotLeader,
    #[error("the ISR did not reach the append before the request's timeout")]
    ReplicationTimedOut,
    #[error("broker {0} is not a replica of this partition")]
    UnknownReplica(i32),
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    #[error("clients may not write control batches")]
    ControlBatchFromClient,
    #[error("producer {producer_id}'s transaction ended while its batch was being verified")]
    TransactionNotVerified { producer_id: i64 },
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
    #[error("log directory {} is offline", .0.display())]
    LogDirOffline(std::path::PathBuf),
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
                LogError::Producer(ProducerError::InvalidTxnState { .. }) => {
                    E::InvalidTxnState.code()
                }
                LogError::Producer(ProducerError::TransactionCoordinatorFenced { .. }) => {
                    E::TransactionCoordinatorFenced.code()
                }
                _ => E::KafkaStorageError.code(),
            },
            PartitionError::NotEnoughReplicas { .. } => E::NotEnoughReplicas.code(),
            PartitionError::NotEnoughReplicasAfterAppend { .. } => {
                E::NotEnoughReplicasAfterAppend.code()
            }
            PartitionError::NotLeader | PartitionError::UnknownReplica(_) => {
                E::NotLeaderOrFollower.code()
            }
            PartitionError::ReplicationTimedOut => E::RequestTimedOut.code(),
            PartitionError::FencedLeaderEpoch { .. } => E::FencedLeaderEpoch.code(),
            PartitionError::UnknownLeaderEpoch { .. } => E::UnknownLeaderEpoch.code(),
            PartitionError::ControlBatchFromClient => E::InvalidRecord.code(),
            PartitionError::TransactionNotVerified { .. } => E::InvalidTxnState.code(),
            PartitionError::UnreadablePartitionMetadata { .. }
            | PartitionError::LogDirOffline(_) => E::KafkaStorageError.code(),
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
    /// For a read up to the last stable offset: the aborted transactions in its range,
    /// whose records a read_committed consumer drops.
    pub aborted_transactions: Vec<gregor_log::AbortedTxn>,
}

/// How far a read may go: read_uncommitted consumers stop at the high watermark,
/// read_committed ones at the last stable offset, followers at the log end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBound {
    HighWatermark,
    LastStableOffset,
    LogEnd,
}

/// The partition's leadership as the metadata gives it (Kafka's LeaderAndIsr state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub replicas: Vec<i32>,
    pub partition_epoch: i32,
}

/// What applying a `Leadership` changed for this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// Nothing the fetchers need to know.
    Unchanged,
    /// This broker now leads (at a new epoch).
    BecameLeader,
    /// This broker follows `leader` (-1: no leader) at a new epoch: truncate, then fetch.
    BecameFollower { leader: i32 },
}

/// A leader's view of one follower, from its fetches (Kafka's `Replica` state).
#[derive(Clone, Copy, Debug)]
struct FollowerState {
    log_end_offset: i64,
    /// The last time the follower was known to have had everything the leader had.
    last_caught_up_ms: i64,
    /// The leader's log end offset and the time at the follower's previous fetch.
    last_fetch_leader_log_end: i64,
    last_fetch_ms: i64,
}

/// An acks=-1 append: where it ended and the leadership term it was written in, for
/// `wait_until_replicated`.
#[derive(Clone, Debug)]
pub struct LeaderAppend {
    pub info: AppendInfo,
    pub leader_term: u64,
}

struct PartitionState {
    log: Log,
    leader_epoch: i32,
    high_watermark: i64,
    settings: TopicSettings,
    /// This broker's id (-1 until the first `apply_leadership`: a lone leader).
    local_id: i32,
    leader_id: i32,
    is_leader: bool,
    /// Counts the times this broker became leader (from follower). An append waits for
    /// replication only within its term: a leader that stays leader across epoch bumps
    /// (an ISR shrink by the controller) never truncates, so its appends stay valid; one
    /// that was follower in between may have truncated them.
    leader_term: u64,
    /// The ISR as last applied or written by this leader; empty means this broker alone.
    isr: Vec<i32>,
    replicas: Vec<i32>,
    partition_epoch: i32,
    /// Leader only: each follower's fetch progress.
    followers: HashMap<i32, FollowerState>,
    /// Leader only: the log end offset when this epoch began (a follower joins the ISR
    /// only once it has reached it, as in Kafka).
    leader_epoch_start_offset: i64,
    /// An ISR change is being written; no other is proposed meanwhile.
    isr_change_in_flight: bool,
    /// Leader only: producer id -> the verification under way for the first batch of its
    /// next transaction here (Kafka's `VerificationGuard`). A marker for the producer ends
    /// it, so that a batch verified for a transaction that ended meanwhile is refused.
    verification_guards: HashMap<i64, VerificationGuard>,
}

/// A verification (or, with transactions v2, an addition) under way at the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VerificationGuard {
    id: u64,
    /// The epoch of the batch being verified.
    producer_epoch: i16,
    /// Transactions v2: the marker ending the producer's previous transaction carries this
    /// same (bumped) epoch and does not void the guard (Kafka's `isV2NextTransactionStarted`).
    supports_epoch_bump: bool,
}

impl PartitionState {
    fn isr_len(&self) -> usize {
        self.isr.len().max(1)
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end offset in the ISR; a member
    /// that has not fetched since this broker became leader holds it where it is. Returns
    /// whether it moved.
    fn maybe_increment_high_watermark(&mut self) -> bool {
        if !self.is_leader {
            return false;
        }
        let mut hw = self.log.log_end_offset();
        for member in &self.isr {
            if *member == self.local_id {
                continue;
            }
            let known = self.followers.get(member).map(|f| f.log_end_offset);
            hw = hw.min(known.unwrap_or(self.high_watermark));
        }
        if hw > self.high_watermark {
            self.high_watermark = hw;
            true
        } else {
            false
        }
    }
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    state: Mutex<PartitionState>,
    high_watermark_tx: watch::Sender<i64>,
    /// Wakes followers' long-polling fetches when the log grows.
    log_end_tx: watch::Sender<i64>,
    /// Whether this broker leads the partition (cluster mode; always true standalone).
    /// Only leaders serve clients: see `ReplicaManager::partition`.
    leader: AtomicBool,
    /// Group fsync: held by the one thread fsyncing for everyone; holds the offset below
    /// which the log is known durable.
    flushed: Mutex<i64>,
    /// The log directory holding it: offline after an I/O error on any of its logs.
    log_dir: Arc<LogDir>,
    /// Its topic's counters (bytes and messages in, bytes out), shared by the topic's
    /// partitions.
    pub metrics: Arc<TopicMetrics>,
}

/// One partition's numbers for the metrics endpoint, read under one lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionStats {
    pub size_bytes: u64,
    pub segments: usize,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub is_leader: bool,
    /// Leader: fewer ISR members than assigned replicas (Kafka's `isUnderReplicated`).
    pub under_replicated: bool,
    /// Leader: fewer ISR members than `min.insync.replicas` (Kafka's `isUnderMinIsr`).
    pub under_min_isr: bool,
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
    /// Only when above the first segment's base offset (as Kafka checkpoints it): otherwise
    /// the log starts where its first segment does.
    pub log_start_offset: Option<i64>,
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
        Self::open_with(
            dir,
            LogDir::standalone(dir.parent().unwrap_or(dir)),
            topic,
            index,
            topic_id,
            leader_epoch,
            settings,
            options,
            None,
        )
    }

    /// Opens the partition's log with what the checkpoints and the clean-shutdown marker say
    /// (`Log::open_with`). The high watermark starts at `high_watermark` (from
    /// `replication-offset-checkpoint`; none: the log end offset, what a lone leader has).
    #[allow(clippy::too_many_arguments)]
    pub fn open_with(
        dir: &Path,
        log_dir: Arc<LogDir>,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        leader_epoch: i32,
        settings: TopicSettings,
        options: LogOpenOptions,
        high_watermark: Option<i64>,
    ) -> Result<Partition, PartitionError> {
        let mut log = Log::open_with(dir, log_config(&settings), options)?;
        log.set_deferred_flush(true);
        // The epoch's start offset is recorded by `apply_leadership` if this replica leads:
        // a follower that recorded it would claim its own unreplicated tail for that epoch
        // and never truncate it.
        let leo = log.log_end_offset();
        let high_watermark = high_watermark
            .unwrap_or(leo)
            .clamp(log.log_start_offset(), leo);
        Ok(Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            state: Mutex::new(PartitionState {
                log,
                leader_epoch,
                high_watermark,
                settings,
                local_id: -1,
                leader_id: -1,
                is_leader: true,
                leader_term: 0,
                isr: Vec::new(),
                replicas: Vec::new(),
                partition_epoch: -1,
                followers: HashMap::new(),
                leader_epoch_start_offset: leo,
                isr_change_in_flight: false,
                verification_guards: HashMap::new(),
            }),
            high_watermark_tx: watch::Sender::new(high_watermark),
            log_end_tx: watch::Sender::new(leo),
            leader: AtomicBool::new(true),
            flushed: Mutex::new(0),
            log_dir,
            metrics: metrics::topic(topic),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PartitionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// The log directory holding this partition.
    pub fn log_dir(&self) -> &Arc<LogDir> {
        &self.log_dir
    }

    /// KAFKA_STORAGE_ERROR once the log directory has failed: nothing more is read or
    /// written there.
    fn check_online(&self) -> Result<(), PartitionError> {
        if self.log_dir.is_online() {
            Ok(())
        } else {
            Err(PartitionError::LogDirOffline(self.log_dir.path.clone()))
        }
    }

    /// `storage` for an error met outside the partition (a fetch's read of its file range).
    pub fn storage_error(&self, e: LogError) -> PartitionError {
        self.storage(e)
    }

    /// A log error, seen by the storage failure model: an I/O error (not a full disk) takes
    /// the whole log directory offline; a full disk is reported (`storage_errors`).
    fn storage(&self, e: LogError) -> PartitionError {
        if is_dir_failure(&e) {
            self.log_dir.fail(&e);
        } else {
            super::storage_errors::note_write_failure(&self.log_dir.path, &e);
        }
        PartitionError::Log(e)
    }

    /// Applies the leadership the metadata gives this replica (`local` is this broker), as
    /// Kafka's `Partition.makeLeader` / `makeFollower`. An older leader epoch than the one
    /// applied is ignored, and so is an ISR older than the one this leader wrote itself
    /// (by partition epoch). A new leader records the epoch's start offset in its
    /// leader-epoch cache and forgets its followers' positions (the ISR members count as
    /// caught up now); a lone leader commits its whole log at once.
    pub fn apply_leadership(
        &self,
        local: i32,
        l: &Leadership,
    ) -> Result<RoleChange, PartitionError> {
        let now = crate::clock::now_ms();
        let mut st = self.lock();
        st.local_id = local;
        if l.leader_epoch < st.leader_epoch {
            return Ok(RoleChange::Unchanged);
        }
        let new_epoch = l.leader_epoch > st.leader_epoch;
        let leads = l.leader == local;
        let role_changed = new_epoch || leads != st.is_leader || l.leader != st.leader_id;
        if l.partition_epoch >= st.partition_epoch || new_epoch {
            st.isr = l.isr.clone();
            st.replicas = l.replicas.clone();
            st.partition_epoch = l.partition_epoch;
        }
        st.leader_epoch = l.leader_epoch;
        st.leader_id = l.leader;
        let change = if leads {
            if !st.is_leader {
                st.leader_term += 1;
            }
            if role_changed {
                let leo = st.log.log_end_offset();
                if st.log.latest_epoch().is_none_or(|e| e < l.leader_epoch) {
                    st.log.assign_epoch_start_offset(l.leader_epoch, leo)?;
                }
                st.leader_epoch_start_offset = leo;
                st.followers.clear();
                for member in l.isr.iter().filter(|m| **m != local) {
                    st.followers.insert(
                        *member,
                        FollowerState {
                            log_end_offset: -1,
                            last_caught_up_ms: now,
                            last_fetch_leader_log_end: -1,
                            last_fetch_ms: now,
                        },
                    );
                }
                st.isr_change_in_flight = false;
            }
            st.is_leader = true;
            self.leader.store(true, Ordering::Release);
            // Followers' log end offsets are unknown until they fetch; a lone leader's high
            // watermark is its log end.
            if st.isr.iter().all(|m| *m == local) {
                st.high_watermark = st.high_watermark.max(st.log.log_end_offset());
            }
            if role_changed {
                RoleChange::BecameLeader
            } else {
                RoleChange::Unchanged
            }
        } else {
            st.is_leader = false;
            self.leader.store(false, Ordering::Release);
            st.followers.clear();
            if role_changed {
                RoleChange::BecameFollower { leader: l.leader }
            } else {
                RoleChange::Unchanged
            }
        };
        let hw = st.high_watermark;
        drop(st);
        // Wakes acks=-1 waiters (they re-check leadership) and long polls.
        self.high_watermark_tx.send_replace(hw);
        Ok(change)
    }

    /// The partition's directory.
    pub fn dir(&self) -> std::path::PathBuf {
        self.lock().log.dir().to_path_buf()
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

    /// The numbers the metrics endpoint shows for this partition.
    pub fn stats(&self) -> PartitionStats {
        let st = self.lock();
        let leader = st.is_leader && self.is_leader();
        // Standalone the replica list is empty: this broker alone, never under-replicated.
        let isr = st.isr_len();
        PartitionStats {
            size_bytes: st.log.size_bytes(),
            segments: st.log.segment_count(),
            log_start_offset: st.log.log_start_offset(),
            log_end_offset: st.log.log_end_offset(),
            high_watermark: st.high_watermark,
            is_leader: leader,
            under_replicated: leader && isr < st.replicas.len(),
            under_min_isr: leader && (isr as i64) < i64::from(st.settings.min_insync_replicas),
        }
    }

    /// Bytes in the log's segment files.
    pub fn size_bytes(&self) -> u64 {
        self.lock().log.size_bytes()
    }

    pub fn max_message_bytes(&self) -> u32 {
        self.lock().settings.max_message_bytes.max(0) as u32
    }

    /// Appends a validated record set as leader. `required_acks` = -1 also requires the ISR
    /// to have at least min.insync.replicas members, as Kafka does; the caller then waits
    /// for the ISR to have it (`wait_until_replicated`).
    pub fn append(
        &self,
        records: Bytes,
        headers: Vec<gregor_log::BatchHeader>,
        required_acks: i16,
    ) -> Result<LeaderAppend, PartitionError> {
        // Kafka's LogValidator: only a transaction coordinator writes control batches.
        if headers.iter().any(|h| h.is_control()) {
            return Err(PartitionError::ControlBatchFromClient);
        }
        self.append_as_leader(records, headers, required_acks, AppendOrigin::Client, None)
    }

    /// Starts the verification of a producer's transactional batch at its coordinator,
    /// unless the producer's transaction is already open here at that epoch (None: append
    /// at once). The guard returned goes to `append_verified` once the coordinator agreed.
    /// `supports_epoch_bump`: the producer uses transactions v2 (the coordinator adds the
    /// partition rather than verifying it).
    pub fn begin_transaction_verification(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        supports_epoch_bump: bool,
    ) -> Option<u64> {
        static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);
        let mut st = self.lock();
        if st.log.has_ongoing_transaction(producer_id, producer_epoch) {
            return None;
        }
        let guard = VerificationGuard {
            id: NEXT_GUARD.fetch_add(1, Ordering::Relaxed),
            producer_epoch,
            supports_epoch_bump,
        };
        st.verification_guards.insert(producer_id, guard);
        Some(guard.id)
    }

    /// Drops a verification the coordinator refused.
    pub fn end_transaction_verification(&self, producer_id: i64, guard: u64) {
        let mut st = self.lock();
        if st.verification_guards.get(&producer_id).map(|g| g.id) == Some(guard) {
            st.verification_guards.remove(&producer_id);
        }
    }

    /// `append` of a transactional batch its coordinator verified under `guard`: refused
    /// (INVALID_TXN_STATE) if a marker for the producer was written since.
    pub fn append_verified(
        &self,
        records: Bytes,
        headers: Vec<gregor_log::BatchHeader>,
        required_acks: i16,
        guard: u64,
    ) -> Result<LeaderAppend, PartitionError> {
        if headers.iter().any(|h| h.is_control()) {
            return Err(PartitionError::ControlBatchFromClient);
        }
        self.append_as_leader(
            records,
            headers,
            required_acks,
            AppendOrigin::Client,
            Some(guard),
        )
    }

    /// Appends a coordinator's batch (the group coordinator's transactional offset
    /// commits): the producer epoch is checked, not its sequence numbers.
    pub fn append_from_coordinator(
        &self,
        records: Bytes,
        headers: Vec<gregor_log::BatchHeader>,
    ) -> Result<LeaderAppend, PartitionError> {
        self.append_as_leader(records, headers, -1, AppendOrigin::Coordinator, None)
    }

    /// Appends the marker that ends `producer_id`'s transaction in this partition, as the
    /// coordinator's WriteTxnMarkers asks (acks=-1: the caller waits for the ISR with
    /// `wait_until_replicated`).
    pub fn append_end_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: gregor_log::EndTxnMarker,
    ) -> Result<LeaderAppend, PartitionError> {
        let records = marker.batch(producer_id, producer_epoch, crate::clock::now_ms());
        let headers = gregor_log::parse_record_set(&records, u32::MAX)?;
        self.append_as_leader(records, headers, -1, AppendOrigin::Coordinator, None)
    }

    fn append_as_leader(
        &self,
        records: Bytes,
        mut headers: Vec<gregor_log::BatchHeader>,
        required_acks: i16,
        origin: AppendOrigin,
        verified: Option<u64>,
    ) -> Result<LeaderAppend, PartitionError> {
        let compacted = self.lock().settings.compacted();
        if compacted {
            // Kafka refuses keyless records in a compacted topic (INVALID_RECORD); checked
            // outside the lock since compressed batches are decompressed for it.
            gregor_log::records::check_keys(&records, &headers)?;
        }
        self.check_online()?;
        let mut st = self.lock();
        if !st.is_leader {
            return Err(PartitionError::NotLeader);
        }
        if required_acks == -1 && (st.isr_len() as i32) < st.settings.min_insync_replicas {
            return Err(PartitionError::NotEnoughReplicas {
                isr: st.isr_len(),
                min: st.settings.min_insync_replicas,
            });
        }
        let producer = headers.first().map(|h| (h.producer_id, h.producer_epoch));
        let is_marker = headers.first().is_some_and(|h| h.is_control());
        if let (Some(guard), Some((producer_id, producer_epoch))) = (verified, producer) {
            let open = st.log.has_ongoing_transaction(producer_id, producer_epoch);
            if !open && st.verification_guards.get(&producer_id).map(|g| g.id) != Some(guard) {
                return Err(PartitionError::TransactionNotVerified { producer_id });
            }
        }
        let epoch = st.leader_epoch;
        let leader_term = st.leader_term;
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
        let mut info = st
            .log
            .append_from(&records, &headers, epoch, origin)
            .map_err(|e| self.storage(e))?;
        if log_append_time && !info.duplicate {
            info.log_append_time = now;
        }
        // The transaction is open here now (a verified batch) or ended (a marker): either
        // way a verification under way for the producer is void, except a transactions v2
        // one whose epoch this marker (ending the transaction before) carries.
        if let Some((producer_id, producer_epoch)) =
            producer.filter(|_| verified.is_some() || is_marker)
        {
            let next_transaction_started = is_marker
                && st
                    .verification_guards
                    .get(&producer_id)
                    .is_some_and(|g| g.supports_epoch_bump && g.producer_epoch == producer_epoch);
            if !next_transaction_started {
                st.verification_guards.remove(&producer_id);
            }
        }
        // With the ISR this broker alone, what is in our log is committed at once.
        let hw_moved = st.maybe_increment_high_watermark();
        let (hw, leo) = (st.high_watermark, st.log.log_end_offset());
        let flush_due = st.log.flush_due() && !info.duplicate;
        drop(st);
        if flush_due {
            // `flush.messages` reached: fsync before acknowledging (1 = every append).
            self.flush_to(info.last_offset + 1)?;
        }
        self.log_end_tx.send_replace(leo);
        if hw_moved {
            self.high_watermark_tx.send_replace(hw);
        }
        Ok(LeaderAppend { info, leader_term })
    }

    /// acks=-1: waits until the high watermark passes the append (every ISR member has the
    /// batch), answering as Kafka's `DelayedProduce` (see `wait_for_high_watermark`).
    pub async fn wait_until_replicated(
        &self,
        appended: &LeaderAppend,
        timeout: std::time::Duration,
    ) -> Result<(), PartitionError> {
        let required = appended.info.last_offset + 1;
        self.wait_for_high_watermark(required, appended.leader_term, timeout)
            .await
    }

    /// The log end offset and leadership term now: whoever appended before this call waits
    /// for its records with `wait_for_high_watermark(log end, term, ..)`.
    pub fn log_end_in_term(&self) -> (i64, u64) {
        let st = self.lock();
        (st.log.log_end_offset(), st.leader_term)
    }

    /// Waits until the high watermark reaches `required` while this broker still leads in
    /// `leader_term`: NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
    /// min.insync.replicas meanwhile, NOT_LEADER_OR_FOLLOWER if this broker stopped leading
    /// in between, REQUEST_TIMED_OUT at `timeout`.
    pub async fn wait_for_high_watermark(
        &self,
        required: i64,
        leader_term: u64,
        timeout: std::time::Duration,
    ) -> Result<(), PartitionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.high_watermark_tx.subscribe();
        loop {
            changes.borrow_and_update();
            {
                let st = self.lock();
                if !st.is_leader || st.leader_term != leader_term {
                    return Err(PartitionError::NotLeader);
                }
                if st.high_watermark >= required {
                    let min = st.settings.min_insync_replicas;
                    if (st.isr_len() as i32) < min {
                        return Err(PartitionError::NotEnoughReplicasAfterAppend {
                            isr: st.isr_len(),
                            min,
                        });
                    }
                    return Ok(());
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Err(_) => return Err(PartitionError::ReplicationTimedOut),
                Ok(Err(_)) => return Err(PartitionError::NotLeader),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Leader: records a follower's fetch from `fetch_offset` (its log end offset), as
    /// Kafka's `updateFollowerFetchState`: it caught up if it asked for the leader's log end,
    /// or for at least the log end the leader had at its previous fetch (then it caught up
    /// at that time). The high watermark may move. Returns an ISR expansion to write if the
    /// follower is out of the ISR and has reached the high watermark and this epoch's start.
    pub fn record_follower_fetch(
        &self,
        replica: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<Option<IsrChange>, PartitionError> {
        let mut st = self.lock();
        if !st.is_leader {
            return Err(PartitionError::NotLeader);
        }
        if !st.replicas.contains(&replica) || replica == st.local_id {
            return Err(PartitionError::UnknownReplica(replica));
        }
        let leo = st.log.log_end_offset();
        let previous = st.followers.get(&replica).copied();
        let caught_up_at = if fetch_offset >= leo {
            Some(now_ms)
        } else {
            previous
                .filter(|p| {
                    p.last_fetch_leader_log_end >= 0 && fetch_offset >= p.last_fetch_leader_log_end
                })
                .map(|p| p.last_fetch_ms)
        };
        let last_caught_up_ms = match (caught_up_at, previous) {
            (Some(t), Some(p)) => t.max(p.last_caught_up_ms),
            (Some(t), None) => t,
            (None, Some(p)) => p.last_caught_up_ms,
            (None, None) => 0,
        };
        st.followers.insert(
            replica,
            FollowerState {
                log_end_offset: fetch_offset.min(leo),
                last_caught_up_ms,
                last_fetch_leader_log_end: leo,
                last_fetch_ms: now_ms,
            },
        );
        let hw_moved = st.maybe_increment_high_watermark();
        let expand = !st.isr_change_in_flight
            && !st.isr.is_empty()
            && !st.isr.contains(&replica)
            && fetch_offset >= st.high_watermark
            && fetch_offset >= st.leader_epoch_start_offset;
        let change = expand.then(|| {
            st.isr_change_in_flight = true;
            let mut isr = st.isr.clone();
            isr.push(replica);
            self.isr_change(&st, isr)
        });
        let hw = st.high_watermark;
        drop(st);
        if hw_moved {
            self.high_watermark_tx.send_replace(hw);
        }
        Ok(change)
    }

    fn isr_change(&self, st: &PartitionState, isr: Vec<i32>) -> IsrChange {
        IsrChange {
            topic: self.topic.clone(),
            partition: self.index,
            leader: st.local_id,
            leader_epoch: st.leader_epoch,
            isr,
            partition_epoch: st.partition_epoch,
        }
    }

    /// Leader: the ISR without the followers that have not caught up for `lag_ms` (Kafka's
    /// `maybeShrinkIsr` with `replica.lag.time.max.ms`), if any must go.
    pub fn isr_shrink(&self, now_ms: i64, lag_ms: i64) -> Option<IsrChange> {
        let mut st = self.lock();
        if !st.is_leader || st.isr_change_in_flight || st.isr.len() <= 1 {
            return None;
        }
        let local = st.local_id;
        let lagging = |m: &i32| {
            *m != local
                && st
                    .followers
                    .get(m)
                    .is_none_or(|f| now_ms - f.last_caught_up_ms > lag_ms)
        };
        if !st.isr.iter().any(lagging) {
            return None;
        }
        let isr: Vec<i32> = st.isr.iter().copied().filter(|m| !lagging(m)).collect();
        st.isr_change_in_flight = true;
        Some(self.isr_change(&st, isr))
    }

    /// The outcome of writing `change`: the new partition epoch if it was written (the ISR
    /// takes effect now, and the high watermark may move), `None` if it was refused (the
    /// metadata will bring the state that won).
    pub fn complete_isr_change(&self, change: &IsrChange, written: Option<i32>) {
        let mut st = self.lock();
        st.isr_change_in_flight = false;
        let Some(partition_epoch) = written else {
            return;
        };
        if !st.is_leader || st.leader_epoch != change.leader_epoch {
            return;
        }
        // Kafka's leader marks IsrShrinksPerSec / IsrExpandsPerSec when its change is
        // accepted.
        match change.isr.len().cmp(&st.isr_len()) {
            std::cmp::Ordering::Less => metrics::isr_shrunk(),
            std::cmp::Ordering::Greater => metrics::isr_expanded(),
            std::cmp::Ordering::Equal => {}
        }
        st.isr = change.isr.clone();
        st.partition_epoch = partition_epoch;
        st.maybe_increment_high_watermark();
        let hw = st.high_watermark;
        drop(st);
        // Also wakes acks=-1 waiters to re-check min.insync.replicas.
        self.high_watermark_tx.send_replace(hw);
    }

    /// The ISR as this replica knows it (empty: this broker alone).
    pub fn isr(&self) -> Vec<i32> {
        self.lock().isr.clone()
    }

    /// Follower: appends batches fetched from the leader with the leader's offsets and
    /// epochs, then takes the leader's high watermark (bounded by this log's end) and log
    /// start offset.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        headers: &[gregor_log::BatchHeader],
    ) -> Result<(), PartitionError> {
        self.check_online()?;
        let mut st = self.lock();
        if st.is_leader {
            return Err(PartitionError::NotLeader);
        }
        let info = st
            .log
            .append_as_follower(records, headers)
            .map_err(|e| self.storage(e))?;
        let flush_due = st.log.flush_due();
        let leo = st.log.log_end_offset();
        drop(st);
        if flush_due {
            self.flush_to(info.last_offset + 1)?;
        }
        self.log_end_tx.send_replace(leo);
        Ok(())
    }

    /// Follower: the leader's high watermark and log start offset from a fetch answer.
    pub fn update_from_leader(
        &self,
        leader_high_watermark: i64,
        leader_log_start_offset: i64,
    ) -> Result<(), PartitionError> {
        let (hw, files) = {
            let mut st = self.lock();
            if st.is_leader {
                return Ok(());
            }
            let leo = st.log.log_end_offset();
            st.high_watermark = leader_high_watermark
                .min(leo)
                .max(st.log.log_start_offset());
            let start = leader_log_start_offset.min(st.high_watermark);
            if start > st.log.log_start_offset() {
                st.log.delete_records_before(start)?;
            }
            (st.high_watermark, st.log.take_deleted_files())
        };
        gregor_log::remove_deleted_files(&files);
        self.high_watermark_tx.send_if_modified(|v| {
            let changed = *v != hw;
            *v = hw;
            changed
        });
        Ok(())
    }

    /// Follower: removes everything at and above `offset` (history that diverged from the
    /// leader's). The high watermark follows the log end down if need be.
    pub fn truncate_to(&self, offset: i64) -> Result<bool, PartitionError> {
        self.check_online()?;
        let mut st = self.lock();
        let truncated = st.log.truncate_to(offset).map_err(|e| self.storage(e))?;
        let leo = st.log.log_end_offset();
        st.high_watermark = st.high_watermark.min(leo);
        let hw = st.high_watermark;
        drop(st);
        *self.flushed.lock().unwrap_or_else(|p| p.into_inner()) = 0;
        self.log_end_tx.send_replace(leo);
        self.high_watermark_tx.send_replace(hw);
        Ok(truncated)
    }

    /// Follower: empties the log to start at the leader's log start offset (this log ends
    /// below it: the records in between are gone on the leader).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), PartitionError> {
        self.check_online()?;
        let mut st = self.lock();
        st.log
            .truncate_fully_and_start_at(offset)
            .map_err(|e| self.storage(e))?;
        st.high_watermark = offset;
        drop(st);
        *self.flushed.lock().unwrap_or_else(|p| p.into_inner()) = 0;
        self.log_end_tx.send_replace(offset);
        self.high_watermark_tx.send_replace(offset);
        Ok(())
    }

    /// Follower: forgets leader epochs that hold no record (see `Log::forget_empty_epochs`).
    pub fn forget_empty_epochs(&self) -> Result<(), PartitionError> {
        Ok(self.lock().log.forget_empty_epochs()?)
    }

    /// (log end offset, latest leader epoch in the log) — what a follower asks its leader about.
    pub fn log_end_and_latest_epoch(&self) -> (i64, Option<i32>) {
        let st = self.lock();
        (st.log.log_end_offset(), st.log.latest_epoch())
    }

    /// Group fsync: makes every offset below `target` durable. One thread at a time fsyncs,
    /// outside the partition lock so appends continue; whoever waited meanwhile finds its
    /// data covered by that fsync or runs the next one for everything appended since.
    pub fn flush_to(&self, target: i64) -> Result<(), PartitionError> {
        let mut flushed = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
        if *flushed >= target {
            return Ok(());
        }
        self.check_online()?;
        let job = self.lock().log.begin_flush().map_err(|e| self.storage(e))?;
        job.run().map_err(|e| self.storage(e.into()))?;
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
        self.read_up_to(offset, max_bytes, min_one_batch, ReadBound::HighWatermark)
    }

    /// Reads from `offset` up to `bound`: the high watermark for consumers, the log end for
    /// followers (and the group coordinator's load, as Kafka's).
    pub fn read_up_to(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        bound: ReadBound,
    ) -> Result<PartitionRead, PartitionError> {
        self.check_online()?;
        let mut st = self.lock();
        let high_watermark = st.high_watermark;
        let last_stable_offset = st.log.last_stable_offset(high_watermark);
        let max_offset = match bound {
            ReadBound::HighWatermark => high_watermark,
            ReadBound::LastStableOffset => last_stable_offset,
            ReadBound::LogEnd => i64::MAX,
        };
        let records = st
            .log
            .read(offset, max_bytes, max_offset, min_one_batch)
            .map_err(|e| self.storage(e))?;
        let aborted_transactions = match (bound, &records) {
            (ReadBound::LastStableOffset, Some(_)) => {
                st.log.collect_aborted_txns(offset, last_stable_offset)
            }
            _ => Vec::new(),
        };
        Ok(PartitionRead {
            records,
            high_watermark,
            last_stable_offset,
            log_start_offset: st.log.log_start_offset(),
            aborted_transactions,
        })
    }

    /// Kafka's last stable offset: what read_committed consumers may read up to.
    pub fn last_stable_offset(&self) -> i64 {
        let mut st = self.lock();
        let high_watermark = st.high_watermark;
        st.log.last_stable_offset(high_watermark)
    }

    /// Forgets the log's idle producers (`producer.id.expiration.ms`); returns how many.
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.lock()
            .log
            .remove_expired_producers(now_ms, expiration_ms)
    }

    /// The producers the log has state for (DescribeProducers), as the leader sees them.
    pub fn active_producers(&self) -> Result<Vec<gregor_log::ActiveProducer>, PartitionError> {
        self.check_online()?;
        if !self.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        Ok(self.lock().log.active_producers())
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
        self.check_online()?;
        let st = self.lock();
        let found = st
            .log
            .offset_for_timestamp(timestamp)
            .map_err(|e| self.storage(e))?;
        Ok(found.filter(|(offset, _)| *offset < st.high_watermark))
    }

    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, PartitionError> {
        self.check_online()?;
        let st = self.lock();
        let found = st.log.max_timestamp_offset().map_err(|e| self.storage(e))?;
        Ok(found.filter(|(offset, _)| *offset < st.high_watermark))
    }

    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEndOffset {
        self.lock().log.end_offset_for_epoch(epoch)
    }

    /// A receiver that wakes when the high watermark moves (fetch long polls).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark_tx.subscribe()
    }

    /// A receiver that wakes when the log grows (followers' long polls).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end_tx.subscribe()
    }

    /// Flushes and closes the log (not one in a failed directory: nothing is written there).
    pub fn close(&self) -> Result<(), PartitionError> {
        self.check_online()?;
        self.lock().log.close().map_err(|e| self.storage(e))
    }

    pub fn flush(&self) -> Result<(), PartitionError> {
        self.check_online()?;
        self.lock().log.flush().map_err(|e| self.storage(e))
    }

    /// fsyncs the segments rolled since the last flush (Kafka's flush on roll, done by the
    /// periodic checkpoint) and returns the offsets to checkpoint.
    pub fn checkpoint(&self) -> Result<PartitionCheckpoint, PartitionError> {
        self.check_online()?;
        let mut st = self.lock();
        st.log
            .flush_rolled_segments()
            .map_err(|e| self.storage(e))?;
        Ok(PartitionCheckpoint {
            recovery_point: st.log.recovery_point(),
            high_watermark: st.high_watermark,
            log_start_offset: Some(st.log.log_start_offset())
                .filter(|start| *start > st.log.first_segment_base()),
        })
    }

    /// Retention (`Log::delete_old_segments`) at `now_ms`: segments are renamed to
    /// `.deleted` under the lock and removed after it is released. Returns the number of
    /// segments deleted.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<usize, PartitionError> {
        self.check_online()?;
        let (deleted, files) = {
            let mut st = self.lock();
            let hw = st.high_watermark;
            let deleted = st
                .log
                .delete_old_segments(now_ms, hw)
                .map_err(|e| self.storage(e))?;
            (deleted, st.log.take_deleted_files())
        };
        gregor_log::remove_deleted_files(&files);
        Ok(deleted)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the high watermark) and
    /// deletes the segments wholly below it. An offset above the high watermark (or below
    /// -1) is OFFSET_OUT_OF_RANGE, as in Kafka. Returns the new low watermark.
    pub fn delete_records(&self, offset: i64) -> Result<i64, PartitionError> {
        self.check_online()?;
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
            let low = st
                .log
                .delete_records_before(target)
                .map_err(|e| self.storage(e))?;
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
        self.check_online()?;
        let mut st = self.lock();
        let high_watermark = st.high_watermark;
        st.log
            .cleanable_view(high_watermark)
            .map_err(|e| self.storage(e))
    }

    /// Swaps in a cleaning's segments (`Log::replace_cleaned`); the replaced files are
    /// removed after the lock is released. Returns the groups swapped in.
    pub fn replace_cleaned(&self, result: &CleanResult) -> Result<usize, PartitionError> {
        self.check_online()?;
        let (swapped, files) = {
            let mut st = self.lock();
            let swapped = st
                .log
                .replace_cleaned(result)
                .map_err(|e| self.storage(e))?;
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
        p.append(buf.freeze(), headers, 1).map(|a| a.info)
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
