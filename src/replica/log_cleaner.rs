//! The broker's log cleaner (Kafka's `LogCleaner` + `LogCleanerManager`): a background task
//! that compacts the partitions whose `cleanup.policy` includes `compact`.
//!
//! Each round reads every hosted partition's live settings, computes its dirty ratio from
//! the `cleaner-offset-checkpoint` (first dirty offset per partition, in the log directory,
//! Kafka's format) and cleans the dirtiest log whose ratio reaches `min.cleanable.dirty.ratio`
//! (strictly above it, as Kafka; or whose oldest dirty segment is older than `max.compaction.lag.ms`) with
//! `gregor_log::cleaner` on a blocking thread; rounds repeat until no log qualifies, then the
//! task sleeps `log.cleaner.backoff.ms`. One cleaner thread (`log.cleaner.threads` 0 or 1),
//! its offset map bounded by `log.cleaner.dedupe.buffer.size`; `log.cleaner.enable=false`
//! turns it off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_log::checkpoint::{read_checkpoint, write_checkpoint, Offsets};
use gregor_log::cleaner::{clean, discard_cleaned, CleanParams};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{Partition, PartitionError, ReplicaManager};
use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::scheduler::{FirstRun, Scheduler};

/// Kafka's file name for the first dirty offset of each compacted partition.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// The broker-level cleaner settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable` (and `log.cleaner.threads` > 0)
    pub enabled: bool,
    /// `log.cleaner.backoff.ms`
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`
    pub dedupe_buffer_size: usize,
}

impl CleanerConfig {
    pub fn from_broker(config: &BrokerConfig) -> CleanerConfig {
        CleanerConfig {
            enabled: config.log_cleaner_enable && config.log_cleaner_threads > 0,
            backoff_ms: config.log_cleaner_backoff_ms,
            dedupe_buffer_size: config.log_cleaner_dedupe_buffer_size,
        }
    }
}

/// What one cleaning did, for the log line and the tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanedLog {
    pub topic: String,
    pub partition: i32,
    pub first_dirty_offset: i64,
    pub end_offset: i64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

pub struct LogCleaner {
    config: CleanerConfig,
    checkpoint_path: PathBuf,
    /// First dirty offset per partition (the checkpoint's content), with the topic id it was
    /// recorded for (None: read from the file), so a recreated topic starts dirty.
    first_dirty: Mutex<BTreeMap<(String, i32), DirtyEntry>>,
    /// When a partition's oldest kept tombstone expires (from its last cleaning): the log is
    /// cleaned then even without new dirty data.
    tombstone_expiry: Mutex<BTreeMap<(String, i32), i64>>,
}

/// (topic id it was recorded for, first dirty offset).
type DirtyEntry = (Option<Uuid>, i64);

impl LogCleaner {
    /// Loads `cleaner-offset-checkpoint` from `log_dir` (an unreadable one is ignored: every
    /// log is then dirty from its start, which costs one extra cleaning).
    pub fn new(log_dir: &Path, config: CleanerConfig) -> LogCleaner {
        let checkpoint_path = log_dir.join(CLEANER_OFFSET_CHECKPOINT);
        let first_dirty = read_checkpoint(&checkpoint_path).unwrap_or_else(|e| {
            warn!(error = %e, "ignoring unreadable cleaner checkpoint");
            Offsets::new()
        });
        LogCleaner {
            config,
            checkpoint_path,
            first_dirty: Mutex::new(
                first_dirty
                    .into_iter()
                    .map(|(k, offset)| (k, (None, offset)))
                    .collect(),
            ),
            tombstone_expiry: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn config(&self) -> CleanerConfig {
        self.config
    }

    /// The checkpointed first dirty offset of a partition of topic `topic_id`; an entry left
    /// by a deleted topic of the same name is dropped.
    pub fn first_dirty_offset(&self, topic: &str, partition: i32, topic_id: Uuid) -> Option<i64> {
        let mut map = self.first_dirty.lock().unwrap_or_else(|p| p.into_inner());
        let key = (topic.to_string(), partition);
        match map.get_mut(&key) {
            Some((Some(id), _)) if *id != topic_id => {
                map.remove(&key);
                None
            }
            Some((id, offset)) => {
                *id = Some(topic_id);
                Some(*offset)
            }
            None => None,
        }
    }

    /// One round: cleans the dirtiest eligible log, if any. Blocking.
    pub fn clean_dirtiest(&self, replicas: &ReplicaManager) -> Option<CleanedLog> {
        let now = now_ms();
        let mut best: Option<(f64, Arc<Partition>, i64)> = None;
        for p in replicas.all_partitions() {
            let settings = p.settings();
            if !settings.compacted() {
                continue;
            }
            let view = match p.cleanable_view() {
                Ok(v) => v,
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.index, error = %e, "cannot inspect log for cleaning");
                    continue;
                }
            };
            let checkpoint = self.first_dirty_offset(&p.topic, p.index, p.topic_id);
            let stats = view.dirty_stats(checkpoint, now, settings.min_compaction_lag_ms);
            let tombstones_expired = {
                let map = self
                    .tombstone_expiry
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                map.get(&(p.topic.clone(), p.index))
                    .is_some_and(|t| *t <= now)
            };
            let ratio = stats.ratio();
            let overdue = stats.dirty_bytes > 0
                && stats
                    .oldest_dirty_timestamp
                    .is_some_and(|t| now.saturating_sub(t) > settings.max_compaction_lag_ms);
            // Kafka's rule: strictly above the ratio (1.0 never cleans by ratio).
            let by_ratio = stats.dirty_bytes > 0 && ratio > settings.min_cleanable_dirty_ratio;
            if (by_ratio || overdue || tombstones_expired)
                && best.as_ref().is_none_or(|(r, _, _)| ratio > *r)
            {
                best = Some((ratio, p.clone(), stats.first_dirty_offset));
            }
        }
        let (ratio, p, first_dirty) = best?;
        match self.clean_partition(&p, first_dirty, now) {
            Ok(Some(done)) => {
                info!(topic = %done.topic, partition = done.partition, dirty_ratio = ratio,
                    first_dirty_offset = done.first_dirty_offset, end_offset = done.end_offset,
                    bytes_read = done.bytes_read, bytes_written = done.bytes_written,
                    "log cleaned");
                Some(done)
            }
            Ok(None) => None,
            Err(e) => {
                warn!(topic = %p.topic, partition = p.index, error = %e, "log cleaning failed");
                None
            }
        }
    }

    fn clean_partition(
        &self,
        p: &Partition,
        first_dirty: i64,
        now: i64,
    ) -> Result<Option<CleanedLog>, PartitionError> {
        let settings = p.settings();
        let view = p.cleanable_view()?;
        let params = CleanParams {
            now_ms: now,
            min_compaction_lag_ms: settings.min_compaction_lag_ms,
            delete_retention_ms: settings.delete_retention_ms,
            dedupe_buffer_size: self.config.dedupe_buffer_size,
        };
        let Some(result) = clean(&view, first_dirty, &params)? else {
            return Ok(None);
        };
        let swapped = match p.replace_cleaned(&result) {
            Ok(n) => n,
            Err(e) => {
                discard_cleaned(&result);
                return Err(e);
            }
        };
        let key = (p.topic.clone(), p.index);
        {
            let mut expiry = self
                .tombstone_expiry
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match result.tombstone_expiry_ms {
                Some(t) => expiry.insert(key.clone(), t),
                None => expiry.remove(&key),
            };
        }
        if swapped < result.groups.len() {
            debug!(topic = %p.topic, partition = p.index, "cleaning raced with retention; retrying later");
            return Ok(None);
        }
        {
            let mut map = self.first_dirty.lock().unwrap_or_else(|e| e.into_inner());
            map.insert(
                (p.topic.clone(), p.index),
                (Some(p.topic_id), result.end_offset),
            );
        }
        Ok(Some(CleanedLog {
            topic: p.topic.clone(),
            partition: p.index,
            first_dirty_offset: first_dirty,
            end_offset: result.end_offset,
            bytes_read: result.bytes_read,
            bytes_written: result.bytes_written,
        }))
    }

    /// Writes `cleaner-offset-checkpoint` for the partitions still hosted.
    pub fn write_checkpoint(&self, replicas: &ReplicaManager) -> Result<(), PartitionError> {
        let hosted: std::collections::BTreeSet<(String, i32)> = replicas
            .all_partitions()
            .iter()
            .map(|p| (p.topic.clone(), p.index))
            .collect();
        let entries: Offsets = {
            let mut map = self.first_dirty.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|k, _| hosted.contains(k));
            map.iter()
                .map(|(k, (_, offset))| (k.clone(), *offset))
                .collect()
        };
        Ok(write_checkpoint(&self.checkpoint_path, &entries)?)
    }
}

/// Schedules the cleaner (nothing when `log.cleaner.enable=false`): each run cleans logs
/// until none qualifies, then the task waits `log.cleaner.backoff.ms`.
pub fn schedule(scheduler: &mut Scheduler, replicas: Arc<ReplicaManager>, config: CleanerConfig) {
    if !config.enabled {
        info!("log cleaner disabled");
        return;
    }
    // Its checkpoint covers every directory's partitions and lives in the first online one
    // (Kafka keeps one per directory; it reads them all, so either layout loads there).
    let cleaner = LogCleaner::new(replicas.log_dirs().first_online_path(), config);
    // Kafka's cleaner creates its (empty) checkpoint file at start.
    if !cleaner.checkpoint_path.exists() {
        if let Err(e) = write_checkpoint(&cleaner.checkpoint_path, &Offsets::new()) {
            warn!(error = %e, "creating the cleaner checkpoint failed");
        }
    }
    let backoff = Duration::from_millis(config.backoff_ms.max(10));
    scheduler.schedule_blocking("log cleaner", backoff, FirstRun::Now, move || {
        let mut cleaned = 0;
        while cleaner.clean_dirtiest(&replicas).is_some() {
            cleaned += 1;
        }
        if cleaned > 0 {
            if let Err(e) = cleaner.write_checkpoint(&replicas) {
                warn!(error = %e, "writing the cleaner checkpoint failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_entry_of_a_deleted_topic_does_not_apply_to_its_successor() {
        let dir = tempfile::tempdir().unwrap();
        let mut offsets = Offsets::new();
        offsets.insert(("t".to_string(), 0), 5);
        offsets.insert(("u".to_string(), 1), 9);
        write_checkpoint(&dir.path().join(CLEANER_OFFSET_CHECKPOINT), &offsets).unwrap();
        let config = CleanerConfig::from_broker(&BrokerConfig::default_standalone());
        assert_eq!(
            config,
            CleanerConfig {
                enabled: true,
                backoff_ms: 15_000,
                dedupe_buffer_size: 128 << 20
            }
        );
        let cleaner = LogCleaner::new(dir.path(), config);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(cleaner.first_dirty_offset("t", 0, a), Some(5), "adopted");
        assert_eq!(cleaner.first_dirty_offset("t", 0, a), Some(5));
        assert_eq!(
            cleaner.first_dirty_offset("t", 0, b),
            None,
            "recreated topic"
        );
        assert_eq!(cleaner.first_dirty_offset("t", 0, a), None);
        assert_eq!(cleaner.first_dirty_offset("u", 1, b), Some(9));
        assert_eq!(cleaner.first_dirty_offset("u", 0, b), None);
    }
}
