//! Log: one partition's sequence of segments, the only way the broker touches its data.
//!
//! Appends assign dense offsets by rewriting each batch header's base offset (and leader
//! epoch) and go to the active (last) segment, rolling at `segment.bytes`, at `segment.ms`
//! and when either index is full. Reads locate the segment by base offset, the batch through
//! the sparse index, and hand back a file range to read outside the caller's lock; timestamp
//! lookups go through the time index.
//!
//! Opening follows Kafka's `LogLoader`: after a clean shutdown everything on disk is trusted
//! (indexes are loaded, only the active segment's tail after its last index entry is read to
//! find the log end offset); otherwise every segment from the one holding the recovery point
//! (the offset up to which data was fsynced) is validated batch by batch and cut at the first
//! bad batch, and the segments after a cut are dropped. The recovery point moves to the log
//! end offset on `flush` and to the active segment's base on `flush_rolled_segments`.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::{debug, error, info, warn};

use crate::batch::BatchHeader;
use crate::cleaner::{CleanResult, CleanableLog, SegmentView, CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::end_txn_marker::EndTxnMarker;
use crate::epoch_cache::{EpochEndOffset, LeaderEpochFileCache};
use crate::error::{at, LogError};
use crate::producer_state::{
    AppendOrigin, CompletedTxn, ProducerEntry, ProducerError, ProducerStateManager, SequenceCheck,
};
use crate::segment::{log_file_name, now_ms, parse_log_file_name, LogSegment, DELETED_SUFFIX};
use crate::txn_index::AbortedTxn;
use crate::LogConfig;

/// The directory (in the partition's) where recovery keeps damaged bytes and the segments
/// after them, suffixed with the time it did: never read back as part of the log.
pub const RECOVERY_ASIDE_PREFIX: &str = "recovery-aside-";

/// Moves the files of the segments starting at `bases` from `dir` into `aside`.
fn move_segments_aside(dir: &Path, bases: &[i64], aside: &Path) -> Result<(), LogError> {
    std::fs::create_dir_all(aside).map_err(at(aside))?;
    for base in bases {
        for name in [
            log_file_name(*base),
            crate::segment::index_file_name(*base),
            crate::segment::time_index_file_name(*base),
        ] {
            let (from, to) = (dir.join(&name), aside.join(&name));
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(at(&from)(e)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// -1: batches keep their CreateTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// A retried idempotent batch: nothing was written, the offsets are the original ones.
    pub duplicate: bool,
    pub record_count: i64,
}

/// A byte range of a segment file, to be read without holding the partition lock.
/// Segments are append-only, so the range stays valid; the `Arc<File>` keeps a deleted
/// segment readable.
#[derive(Clone, Debug)]
pub struct FetchSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

impl FetchSlice {
    /// Reads the range with pread straight into fresh memory: zero-filling a buffer that the
    /// read overwrites anyway cost as much as a tenth of the broker's CPU under consumers.
    pub fn read(&self) -> std::io::Result<Bytes> {
        use std::os::fd::AsRawFd;
        let mut buf = BytesMut::with_capacity(self.len);
        let fd = self.file.as_raw_fd();
        while buf.len() < self.len {
            let filled = buf.len();
            let spare = buf.spare_capacity_mut();
            let want = self.len - filled;
            // SAFETY: `spare` is writable memory of at least `want` bytes owned by `buf`;
            // pread writes at most `want` bytes into it and reports how many it wrote.
            let n = unsafe {
                libc::pread(
                    fd,
                    spare.as_mut_ptr().cast(),
                    want,
                    (self.position + filled as u64) as libc::off_t,
                )
            };
            match n {
                n if n > 0 => {
                    // SAFETY: pread initialised the first `n` (<= want) spare bytes.
                    unsafe { buf.set_len(filled + n as usize) }
                }
                0 => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "segment shorter than the fetch range",
                    ))
                }
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(buf.freeze())
    }
}

/// An fsync of the active segment's data taken out of the log's lock (`Log::begin_flush`).
#[derive(Clone, Debug)]
pub struct FlushJob {
    file: Option<Arc<File>>,
    upto: i64,
}

impl FlushJob {
    /// fdatasyncs the segment file.
    pub fn run(&self) -> std::io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// The log end offset when the job was made: everything below it is durable after `run`.
    pub fn upto(&self) -> i64 {
        self.upto
    }
}

/// What the broker knows about a log from its checkpoint files and the clean-shutdown marker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogOpenOptions {
    /// From `recovery-point-offset-checkpoint`: data below it was fsynced. None = unknown:
    /// after an unclean shutdown every segment is validated (Kafka's default of 0).
    pub recovery_point: Option<i64>,
    /// `.kafka_cleanshutdown` was present: trust the files, validate nothing.
    pub clean_shutdown: bool,
    /// From `log-start-offset-checkpoint`: the log start offset, if it is above the first
    /// segment's base offset.
    pub log_start_offset: Option<i64>,
}

pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    /// Everything below this offset is on disk (fsynced): Kafka's recovery point.
    recovery_point: i64,
    producers: ProducerStateManager,
    epochs: LeaderEpochFileCache,
    unflushed_messages: u64,
    /// The broker does the fsync of the flush policy itself, outside its lock, so that
    /// concurrent appends share one fsync (`begin_flush` / `complete_flush`); `append` then
    /// only reports `flush_due`.
    defer_flush: bool,
    /// When the log was last flushed (ms since the epoch), for `flush.ms`.
    last_flush_ms: i64,
    /// Files renamed to `.deleted` (and stale producer snapshots) waiting to be removed by
    /// whoever calls `take_deleted_files`, outside the partition lock.
    pending_deletes: Vec<PathBuf>,
    /// A segment file was created since the directory was last fsynced.
    dir_unsynced: bool,
}

impl Log {
    /// Opens (creating if needed) the partition directory `dir` as after an unclean shutdown
    /// whose recovery point is in the active segment: the active segment is validated by a CRC
    /// scan (cutting a torn or corrupt tail), the others are trusted, any missing or invalid
    /// index is rebuilt; then the leader epochs and the producer state (newest snapshot plus a
    /// replay of the batches after it) are loaded. See `open_with` for Kafka's full rules.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log, LogError> {
        Self::open_with(
            dir,
            config,
            LogOpenOptions {
                recovery_point: Some(i64::MAX),
                clean_shutdown: false,
                log_start_offset: None,
            },
        )
    }

    /// Opens `dir` with what the checkpoints and the clean-shutdown marker say (Kafka's
    /// `LogLoader`). Clean shutdown: no segment is validated. Otherwise every segment from the
    /// one holding `recovery_point` to the end is validated batch by batch (size, magic,
    /// CRC32C, offsets increasing) and cut at the first bad batch; the segments after a cut
    /// are moved aside (`RECOVERY_ASIDE_PREFIX`), and so are segment files that start beyond
    /// the log end of a clean shutdown. Missing or inconsistent indexes (offset and time) are rebuilt from their
    /// segment. The recovery point is the log end offset afterwards, as in Kafka.
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        options: LogOpenOptions,
    ) -> Result<Log, LogError> {
        crate::durable::create_dir_all(dir).map_err(at(dir))?;
        complete_interrupted_swaps(dir)?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(at(dir))? {
            let name = entry.map_err(at(dir))?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(DELETED_SUFFIX) {
                // A deletion interrupted by a crash: Kafka removes these files on load.
                let path = dir.join(name.as_ref());
                debug!(path = %path.display(), "removing leftover deleted file");
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(at(&path)(e)),
                    _ => {}
                }
                continue;
            }
            if let Some(base) = parse_log_file_name(&name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        // Where recovery keeps what it takes out of the log (created only if it does).
        let aside = dir.join(format!("{RECOVERY_ASIDE_PREFIX}{}", now_ms()));
        // After a clean shutdown the recovery point is the log end offset: a segment that
        // starts beyond it was not written by this log and must not stretch it.
        if let (true, Some(rp)) = (options.clean_shutdown, options.recovery_point) {
            let first_stray = bases.partition_point(|b| *b <= rp);
            if first_stray < bases.len() {
                let strays = bases.split_off(first_stray);
                move_segments_aside(dir, &strays, &aside)?;
                error!(dir = %dir.display(), log_end_offset = rp, segments = strays.len(),
                    first_base_offset = strays[0], aside = %aside.display(),
                    "segment files beyond the log end of a clean shutdown are not part of the log: kept aside");
            }
        }
        // The first segment to validate: the one holding the recovery point.
        let recover_from = if options.clean_shutdown {
            None
        } else {
            let rp = options.recovery_point.unwrap_or(i64::MIN);
            bases
                .iter()
                .rev()
                .find(|b| **b <= rp)
                .or(bases.first())
                .copied()
        };
        let mut segments = BTreeMap::new();
        let mut validated = 0usize;
        for (i, base) in bases.iter().enumerate() {
            let next = bases.get(i + 1).copied();
            let recover = recover_from.is_some_and(|from| *base >= from);
            let (segment, cut) = LogSegment::open(
                dir,
                *base,
                recover.then_some(aside.as_path()),
                next,
                &config,
            )?;
            validated += usize::from(recover);
            let overlaps = next.is_some_and(|n| segment.next_offset() > n);
            segments.insert(*base, segment);
            if recover && (cut > 0 || overlaps) && next.is_some() {
                // A segment cut by recovery ends the log (as in Kafka), but the later segments
                // are kept aside rather than deleted (Kafka deletes them): they may hold the
                // only copy of acknowledged records.
                let later = &bases[i + 1..];
                move_segments_aside(dir, later, &aside)?;
                error!(dir = %dir.display(), segments = later.len(), first_base_offset = later[0],
                    aside = %aside.display(),
                    "segments after a damaged or overlapping one are not served: kept aside (read them with kafka-dump-log.sh)");
                break;
            }
        }
        let created_first = segments.is_empty();
        if created_first {
            segments.insert(0, LogSegment::create(dir, 0, &config)?);
        }
        // Closed segments' indexes hold exactly their entries (a preallocated tail left by a
        // crash is cut; no I/O when there is none); the active one gets its room back.
        let count = segments.len();
        for (i, segment) in segments.values_mut().enumerate() {
            if i + 1 == count {
                segment.make_active(config.max_index_bytes)?;
            } else {
                segment.on_become_inactive()?;
            }
        }
        let first_base = *segments.keys().next().unwrap_or(&0);
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: first_base,
            recovery_point: 0,
            producers: ProducerStateManager::default(),
            epochs: LeaderEpochFileCache::load(dir),
            unflushed_messages: 0,
            defer_flush: false,
            last_flush_ms: now_ms(),
            pending_deletes: Vec::new(),
            dir_unsynced: created_first,
        };
        let leo = log.log_end_offset();
        if let Some(start) = options.log_start_offset {
            log.log_start_offset = start.clamp(first_base, leo.max(first_base));
        }
        log.recovery_point = leo;
        log.epochs.truncate_from_end(leo)?;
        log.load_producer_state()?;
        debug!(dir = %dir.display(), segments = log.segments.len(), validated_segments = validated,
            clean_shutdown = options.clean_shutdown, log_end_offset = leo, "opened log");
        Ok(log)
    }

    /// Newest snapshot, then every batch after it replayed from the log.
    fn load_producer_state(&mut self) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let (state, from) = match ProducerStateManager::load_latest(&self.dir, leo)? {
            Some((s, offset)) => (s, offset),
            None => (ProducerStateManager::default(), self.log_start_offset),
        };
        self.producers = state;
        let mut replayed = 0u64;
        for segment in self.segments.values_mut() {
            if segment.next_offset() <= from {
                continue;
            }
            let start = match segment.find_batch(from)? {
                Some((pos, _)) => pos,
                None => continue,
            };
            let producers = &mut self.producers;
            let mut aborted = Vec::new();
            let mut failed = None;
            segment.for_each_header(start, |pos, h| {
                if h.last_offset() < from {
                    return true;
                }
                let marker = if h.is_control() {
                    match segment.read_bytes(pos, h.total_size()) {
                        Ok(bytes) => EndTxnMarker::parse(&bytes),
                        Err(e) => {
                            failed = Some(e);
                            return false;
                        }
                    }
                } else {
                    None
                };
                if let Some(c) = producers.replay(h, marker).filter(|c| c.aborted) {
                    aborted.push(aborted_txn(producers, &c));
                }
                replayed += 1;
                true
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            // Entries the index has already are skipped (`TransactionIndex::append`).
            for txn in aborted {
                segment.append_aborted_txn(txn)?;
            }
        }
        if replayed > 0 {
            info!(dir = %self.dir.display(), from_offset = from, batches = replayed,
                "rebuilt producer state from the log");
        }
        Ok(())
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// New topic settings; they apply from the next append (and roll).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The base offset of the oldest segment (the log end offset if there is none).
    pub fn first_segment_base(&self) -> i64 {
        self.segments
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.log_end_offset())
    }

    /// Kafka's recovery point: every offset below it is fsynced (checkpointed by the broker
    /// in `recovery-point-offset-checkpoint`).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.active().map_or(0, |s| s.next_offset())
    }

    /// Bytes in all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }

    /// The number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active(&self) -> Option<&LogSegment> {
        self.segments.values().next_back()
    }

    /// Appends a validated record set (headers from `parse_record_set` on these bytes).
    ///
    /// Producer checks come first and nothing is written unless every batch passes; a
    /// single batch that repeats one of its producer's last 5 is answered with its original
    /// offsets (`duplicate`). Then each header gets its base offset and `leader_epoch`
    /// (neither covered by the CRC), the whole set goes to the active segment in one write
    /// (rolling first if it would overflow `segment_bytes`) with those two fields patched
    /// on the way, and the producer state, the leader epoch cache and the flush policy are
    /// updated. `records` itself is not changed (nor copied).
    pub fn append(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        self.append_from(records, headers, leader_epoch, AppendOrigin::Client)
    }

    /// `append` for a writer whose sequence numbers are not checked (a coordinator's
    /// transactional batches, Kafka's `AppendOrigin.COORDINATOR`).
    pub fn append_from(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        leader_epoch: i32,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, LogError> {
        check_headers_cover(records, headers)?;
        // Producer checks first: nothing is written unless every batch passes. `pending`
        // holds each producer's state as updated by the earlier batches of this append.
        let first_offset = self.log_end_offset();
        let mut pending: BTreeMap<i64, ProducerEntry> = BTreeMap::new();
        let markers = markers_of(records, headers);
        let mut next = first_offset;
        for (h, marker) in headers.iter().zip(&markers) {
            if h.has_producer_id() {
                match self.producers.check(h, *marker, origin, &pending)? {
                    SequenceCheck::Append => {}
                    SequenceCheck::Duplicate {
                        first_offset,
                        last_offset,
                        max_timestamp,
                    } => {
                        if headers.len() == 1 {
                            debug!(producer_id = h.producer_id, first_offset, "duplicate batch");
                            return Ok(AppendInfo {
                                first_offset,
                                last_offset,
                                max_timestamp,
                                log_append_time: -1,
                                log_start_offset: self.log_start_offset,
                                duplicate: true,
                                record_count: i64::from(h.record_count),
                            });
                        }
                        // A retry mixed with new batches: Kafka's clients never send this.
                        return Err(ProducerError::OutOfOrderSequence {
                            producer_id: h.producer_id,
                            found: h.base_sequence,
                            expected: -1,
                        }
                        .into());
                    }
                }
                let entry = self.producers.updated_entry(h, next, *marker, &pending);
                pending.insert(h.producer_id, entry);
            }
            next += i64::from(h.last_offset_delta) + 1;
        }
        // Assign offsets and the leader epoch (outside the CRC); the segment writes them.
        let mut offset = first_offset;
        let mut max_timestamp = -1;
        let mut record_count = 0i64;
        let mut assigned = Vec::with_capacity(headers.len());
        for h in headers {
            let mut a = *h;
            a.base_offset = offset;
            a.partition_leader_epoch = leader_epoch;
            max_timestamp = max_timestamp.max(h.max_timestamp);
            record_count += i64::from(h.record_count);
            offset = a.last_offset() + 1;
            assigned.push(a);
        }
        self.write_to_active(records, &assigned, next - 1)?;
        for (h, marker) in assigned.iter().zip(&markers) {
            self.take_in_producer_batch(h, *marker)?;
        }
        if leader_epoch >= 0 && self.epochs.latest_epoch().is_none_or(|e| e < leader_epoch) {
            self.epochs.assign(leader_epoch, first_offset)?;
        }
        self.unflushed_messages += record_count.max(1) as u64;
        if self.unflushed_messages >= self.config.flush_interval_messages && !self.defer_flush {
            self.flush()?;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset: next - 1,
            max_timestamp,
            log_append_time: -1,
            log_start_offset: self.log_start_offset,
            duplicate: false,
            record_count,
        })
    }

    /// Appends batches as a follower (Kafka's `appendAsFollower`): the leader's base offsets
    /// and partition leader epochs are kept, nothing is checked against the producer state
    /// (the leader did that), and the producer state and leader-epoch cache follow the
    /// batches as recovery's replay would. The first batch must start at or after the log
    /// end offset (a compacted leader may skip offsets), each later one after its predecessor.
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
    ) -> Result<AppendInfo, LogError> {
        check_headers_cover(records, headers)?;
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(LogError::CorruptBatch {
                position: 0,
                reason: "no batches to append".into(),
            });
        };
        let log_end = self.log_end_offset();
        let mut next = log_end;
        for h in headers {
            if h.base_offset < next || h.last_offset_delta < 0 {
                return Err(LogError::UnexpectedAppendOffset {
                    first_offset: h.base_offset,
                    log_end: next,
                });
            }
            next = h.last_offset() + 1;
        }
        self.write_to_active(records, headers, last.last_offset())?;
        let mut max_timestamp = -1;
        let mut record_count = 0i64;
        for (h, marker) in headers.iter().zip(markers_of(records, headers)) {
            self.take_in_producer_batch(h, marker)?;
            let epoch = h.partition_leader_epoch;
            if epoch >= 0 && self.epochs.latest_epoch().is_none_or(|e| e < epoch) {
                self.epochs.assign(epoch, h.base_offset)?;
            }
            max_timestamp = max_timestamp.max(h.max_timestamp);
            record_count += i64::from(h.record_count);
        }
        self.unflushed_messages += record_count.max(1) as u64;
        if self.unflushed_messages >= self.config.flush_interval_messages && !self.defer_flush {
            self.flush()?;
        }
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset(),
            max_timestamp,
            log_append_time: -1,
            log_start_offset: self.log_start_offset,
            duplicate: false,
            record_count,
        })
    }

    /// The producer state follows a batch just written to the active segment; an abort
    /// marker that ends a transaction here goes into the segment's transaction index.
    fn take_in_producer_batch(
        &mut self,
        h: &BatchHeader,
        marker: Option<EndTxnMarker>,
    ) -> Result<(), LogError> {
        let Some(completed) = self.producers.replay(h, marker).filter(|c| c.aborted) else {
            return Ok(());
        };
        let txn = aborted_txn(&self.producers, &completed);
        match self.segments.values_mut().next_back() {
            Some(active) => active.append_aborted_txn(txn),
            None => Ok(()),
        }
    }

    /// Kafka's last stable offset: below `high_watermark`, and below the first offset of
    /// any transaction still open or ended by a marker the high watermark has not passed.
    /// A read_committed consumer reads up to it.
    pub fn last_stable_offset(&mut self, high_watermark: i64) -> i64 {
        self.producers
            .first_unstable_offset(high_watermark)
            .map_or(high_watermark, |o| o.min(high_watermark))
    }

    /// Whether `producer_id` at `producer_epoch` has a transaction open in this log (its
    /// next transactional batch needs no verification at the coordinator).
    pub fn has_ongoing_transaction(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.producers
            .entry(producer_id)
            .is_some_and(|e| e.epoch == producer_epoch && e.current_txn_first_offset.is_some())
    }

    /// Forgets idle producers (`producer.id.expiration.ms`); returns how many.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.remove_expired(now_ms, expiration_ms)
    }

    /// The producers this log has state for (DescribeProducers).
    pub fn active_producers(&self) -> Vec<crate::producer_state::ActiveProducer> {
        self.producers.active_producers()
    }

    /// The aborted transactions a read_committed fetch of [start_offset, upper_bound) must
    /// name (Kafka's `collectAbortedTransactions`): from the segment holding `start_offset`
    /// on, until an entry shows that no later segment can add one.
    pub fn collect_aborted_txns(&self, start_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        let from = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let mut out = Vec::new();
        for segment in self.segments.range(from..).map(|(_, s)| s) {
            if segment.collect_aborted_txns(start_offset, upper_bound, &mut out) {
                break;
            }
        }
        out
    }

    /// Removes everything at and above `offset` (Kafka's `Log.truncateTo`, used by a follower
    /// whose history diverged from its new leader's): later segments are deleted, the one
    /// holding `offset` is cut before the batch holding it, and the leader-epoch cache, the
    /// producer state and the recovery point follow. Below the log start offset the log is
    /// emptied and starts at `offset`. Returns whether anything was removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<bool, LogError> {
        if offset >= self.log_end_offset() {
            return Ok(false);
        }
        let keep = self
            .segments
            .range(..=offset)
            .next_back()
            .map(|(b, _)| *b)
            .filter(|_| offset >= self.log_start_offset);
        let removed: Vec<i64> = self
            .segments
            .keys()
            .copied()
            .filter(|b| keep.is_none_or(|k| *b > k))
            .collect();
        for base in removed {
            if let Some(segment) = self.segments.remove(&base) {
                // Open fetches keep reading the unlinked file through their `Arc<File>`.
                segment.delete_files()?;
            }
        }
        match keep {
            Some(base) => {
                let config = self.config.clone();
                if let Some(segment) = self.segments.get_mut(&base) {
                    segment.truncate_to(offset, &config)?;
                }
            }
            None => {
                self.segments
                    .insert(offset, LogSegment::create(&self.dir, offset, &self.config)?);
                self.dir_unsynced = true;
                self.log_start_offset = offset;
            }
        }
        let max_index_bytes = self.config.max_index_bytes;
        if let Some(active) = self.segments.values_mut().next_back() {
            active.make_active(max_index_bytes)?;
        }
        let leo = self.log_end_offset();
        self.recovery_point = self.recovery_point.min(leo);
        self.log_start_offset = self.log_start_offset.min(leo);
        self.epochs.truncate_from_end(leo)?;
        self.load_producer_state()?;
        info!(dir = %self.dir.display(), requested = offset, log_end_offset = leo, "truncated log");
        Ok(true)
    }

    /// Forgets the leader epochs that start at or after the log end offset: epochs this
    /// replica began as leader without writing a record in them. A follower drops them when
    /// its leader does not know them, so that it asks about the epoch its records are in.
    pub fn forget_empty_epochs(&mut self) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        self.epochs.remove_from(leo)
    }

    /// Empties the log and starts it at `offset` (Kafka's `truncateFullyAndStartAt`): a
    /// follower whose log ends below its leader's log start offset cannot catch up record by
    /// record. The leader-epoch cache keeps only the epoch in force at `offset`; the producer
    /// state starts empty.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        for (_, segment) in std::mem::take(&mut self.segments) {
            segment.delete_files()?;
        }
        for snapshot in crate::producer_state::snapshots_below(&self.dir, i64::MAX)? {
            std::fs::remove_file(&snapshot).map_err(at(&snapshot))?;
        }
        self.segments
            .insert(offset, LogSegment::create(&self.dir, offset, &self.config)?);
        self.dir_unsynced = true;
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.epochs.truncate_from_end(offset)?;
        self.epochs.truncate_from_start(offset)?;
        self.producers = ProducerStateManager::default();
        info!(dir = %self.dir.display(), log_start_offset = offset, "emptied log to start at a new offset");
        Ok(())
    }

    /// Writes batches whose headers carry their final base offsets and epochs to the active
    /// segment, rolling first if they would not fit (`maybe_roll`); `last_offset` is the
    /// last offset they hold.
    fn write_to_active(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        last_offset: i64,
    ) -> Result<(), LogError> {
        let now = now_ms();
        self.maybe_roll(records.len() as u64, last_offset, now)?;
        let interval = self.config.index_interval_bytes;
        let active = self
            .segments
            .values_mut()
            .next_back()
            .ok_or_else(|| LogError::Io(std::io::Error::other("log has no segment")))?;
        active.append(records, headers, interval, now)
    }

    /// Kafka's `shouldRoll`: a non-empty active segment rolls before an append of `incoming`
    /// bytes if they would overflow `segment.bytes` (or positions/offsets the 4-byte index
    /// fields cannot hold), if either index is full, or if `segment.ms` has passed since its
    /// first append (`now_ms` is the broker's clock).
    fn maybe_roll(&mut self, incoming: u64, last_offset: i64, now_ms: i64) -> Result<(), LogError> {
        let Some(active) = self.active() else {
            return Ok(());
        };
        let size_after = active.size() + incoming;
        let by_size = size_after > self.config.segment_bytes
            || size_after > u64::from(u32::MAX)
            || last_offset - active.base_offset > i64::from(i32::MAX);
        let by_age = active
            .rolling_base_ms()
            .is_some_and(|t| now_ms.saturating_sub(t) > self.config.segment_ms);
        let by_index = active.index_full();
        if active.is_empty() || !(by_size || by_age || by_index) {
            return Ok(());
        }
        let base = active.next_offset();
        debug!(dir = %self.dir.display(), base_offset = base, by_size, by_age, by_index, "rolling");
        if let Some(active) = self.segments.values_mut().next_back() {
            active.on_become_inactive()?;
        }
        // With a flush policy, the closing segment's unflushed tail is synced now (later
        // flushes touch only the new active segment). Without one (the OS decides, Kafka's
        // default) the indexes are only written out: an fsync of a whole segment would stall
        // this partition's appends; the broker calls `flush_rolled_segments` in the background
        // (Kafka schedules the same flush on roll).
        if !self.config.leaves_flushing_to_os() {
            self.flush_below(base)?;
        }
        self.producers.write_snapshot(&self.dir, base)?;
        let segment = LogSegment::create(&self.dir, base, &self.config)?;
        self.dir_unsynced = true;
        debug!(dir = %self.dir.display(), base_offset = base, "rolled new segment");
        self.segments.insert(base, segment);
        Ok(())
    }

    /// Kafka's read: from the batch holding `start_offset` (found through the segment's
    /// offset index), up to the start of the batch holding `max_offset` (or the end of that
    /// segment), at most `max_bytes` unless `min_one_batch` and the first batch is larger.
    /// One segment per call; the slice may end inside a batch. None when there is nothing
    /// to read; `OffsetOutOfRange` outside [log start offset, log end offset].
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<FetchSlice>, LogError> {
        let leo = self.log_end_offset();
        if start_offset < self.log_start_offset || start_offset > leo {
            return Err(LogError::OffsetOutOfRange {
                offset: start_offset,
                log_start: self.log_start_offset,
                log_end: leo,
            });
        }
        if start_offset >= max_offset || start_offset == leo {
            return Ok(None);
        }
        let floor = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map(|(b, _)| *b);
        let from = floor.unwrap_or(self.log_start_offset);
        for segment in self.segments.range(from..).map(|(_, s)| s) {
            let Some((pos, first)) = segment.find_batch(start_offset)? else {
                // Past the end of this segment's data: the next segment holds it.
                continue;
            };
            // Kafka's translateOffset(max_offset): the batch holding max_offset is excluded
            // whole, so nothing at or above max_offset (the high watermark) is exposed.
            let end = if max_offset >= segment.next_offset() {
                segment.size()
            } else {
                match segment.find_batch(max_offset)? {
                    Some((p, _)) => p,
                    None => segment.size(),
                }
            };
            let available = end.saturating_sub(pos) as usize;
            let wanted = if min_one_batch {
                max_bytes.max(first.total_size())
            } else {
                max_bytes
            };
            let len = available.min(wanted);
            if len == 0 {
                return Ok(None);
            }
            return Ok(Some(FetchSlice {
                file: segment.file()?,
                position: pos,
                len,
            }));
        }
        Ok(None)
    }

    /// (offset, timestamp) of each record of the batch at `pos` (decompressed if need be).
    fn record_timestamps(
        segment: &LogSegment,
        pos: u64,
        h: &BatchHeader,
    ) -> Result<Vec<(i64, i64)>, LogError> {
        if h.timestamp_type_log_append() {
            // LogAppendTime: every record carries the batch's timestamp.
            return Ok((h.base_offset..=h.last_offset())
                .map(|o| (o, h.max_timestamp))
                .collect());
        }
        let bytes = segment.read_bytes(pos, h.total_size())?;
        let mut buf = Bytes::from(bytes);
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).map_err(|e| {
            LogError::CorruptBatch {
                position: pos as usize,
                reason: format!("cannot decode records: {e}"),
            }
        })?;
        Ok(set
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp))
            .collect())
    }

    /// ListOffsets by timestamp: the first record with timestamp >= `ts` at or above the log
    /// start offset, as (offset, timestamp). Kafka's `fetchOffsetByTimestamp`: the first
    /// segment whose largest timestamp is >= `ts`, then through its time index and offset index
    /// to a batch position, batches by their max timestamp from there, then the records of
    /// the batch found (decompressed if need be).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let start = self.log_start_offset;
        for segment in self.segments.values() {
            if segment.next_offset() <= start
                || segment.max_timestamp_so_far().is_none_or(|(t, _)| t < ts)
            {
                continue;
            }
            let mut pos = segment.timestamp_search_position(ts, start);
            while let Some(h) = segment.read_header(pos)? {
                if h.max_timestamp >= ts && h.last_offset() >= start {
                    let found = Self::record_timestamps(segment, pos, &h)?
                        .into_iter()
                        .find(|&(o, t)| t >= ts && o >= start);
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                pos += h.total_size() as u64;
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (KIP-734): the record with the largest timestamp, the
    /// earliest if several, as (offset, timestamp). The segment comes from each segment's
    /// max timestamp so far (its time index's last entry), the batch from the offset stored
    /// with it; only that batch's records are read.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<(&LogSegment, i64, i64)> = None;
        for segment in self.segments.values() {
            if let Some((t, o)) = segment.max_timestamp_so_far() {
                if best.is_none_or(|(_, bt, _)| t > bt) {
                    best = Some((segment, t, o));
                }
            }
        }
        let Some((segment, _, offset)) = best else {
            return Ok(None);
        };
        let Some((pos, h)) = segment.find_batch(offset)? else {
            return Ok(None);
        };
        let records = Self::record_timestamps(segment, pos, &h)?;
        let max = records.iter().map(|&(_, t)| t).max();
        // The header's max timestamp is the client's word; trust the records.
        Ok(max.and_then(|m| records.into_iter().find(|&(_, t)| t == m)))
    }

    /// Records that `leader_epoch` starts at `start_offset` (Kafka's `LeaderEpochFileCache.assign`).
    pub fn assign_epoch_start_offset(
        &mut self,
        leader_epoch: i32,
        start_offset: i64,
    ) -> Result<(), LogError> {
        self.epochs.assign(leader_epoch, start_offset)
    }

    /// The newest leader epoch known, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// OffsetForLeaderEpoch: Kafka's `LeaderEpochFileCache.endOffsetFor`; (-1, -1) if unknown.
    pub fn end_offset_for_epoch(&self, requested_epoch: i32) -> EpochEndOffset {
        self.epochs
            .end_offset_for(requested_epoch, self.log_end_offset())
    }

    /// fsyncs every segment (and its indexes) holding data at or above the recovery point and
    /// below `upto`; the recovery point moves to `upto` (at most the log end offset).
    fn flush_below(&mut self, upto: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let target = upto.min(leo);
        if target <= self.recovery_point {
            return Ok(());
        }
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for segment in self.segments.range_mut(from..).map(|(_, s)| s) {
            if segment.base_offset >= target {
                break;
            }
            if segment.next_offset() > self.recovery_point {
                segment.flush()?;
            }
        }
        self.sync_dir_if_unsynced()?;
        self.recovery_point = target;
        Ok(())
    }

    /// A segment file created since the last flush is only an entry in the partition
    /// directory: its data is not reachable after a power loss until the directory is
    /// fsynced too (Kafka's `LocalLog.flush` flushes the directory for new segments).
    fn sync_dir_if_unsynced(&mut self) -> Result<(), LogError> {
        if self.dir_unsynced {
            sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// fsyncs everything not yet on disk; the recovery point becomes the log end offset.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.flush_below(i64::MAX)?;
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms();
        Ok(())
    }

    /// Group fsync: with `true`, `append` leaves the fsync that `flush.messages` asks for
    /// to the caller (`flush_due`, then `begin_flush`, the returned job's `run` outside the
    /// lock, `complete_flush`), so appends of other producers proceed during the fsync and
    /// the next fsync covers all of them.
    pub fn set_deferred_flush(&mut self, deferred: bool) {
        self.defer_flush = deferred;
    }

    /// `flush.messages` messages were appended since the last flush.
    pub fn flush_due(&self) -> bool {
        self.unflushed_messages >= self.config.flush_interval_messages
    }

    /// Messages appended since the last flush, and when that flush was (ms since the epoch).
    pub fn unflushed(&self) -> (u64, i64) {
        (self.unflushed_messages, self.last_flush_ms)
    }

    /// First half of a group fsync: rolled segments not yet flushed are flushed now (rare:
    /// only after a roll); the returned job fsyncs the active segment's data up to the
    /// current log end offset without the log.
    pub fn begin_flush(&mut self) -> Result<FlushJob, LogError> {
        let active_base = self.active().map_or(0, |s| s.base_offset);
        self.flush_below(active_base)?;
        self.sync_dir_if_unsynced()?;
        self.unflushed_messages = 0;
        Ok(FlushJob {
            file: self.active().map(|s| s.file()).transpose()?,
            upto: self.log_end_offset(),
        })
    }

    /// Second half of a group fsync: everything below `job.upto` is on disk.
    pub fn complete_flush(&mut self, job: &FlushJob) {
        let target = job.upto.min(self.log_end_offset());
        if target > self.recovery_point {
            self.recovery_point = target;
        }
        self.last_flush_ms = now_ms();
    }

    /// fsyncs the segments rolled since the last flush (not the active one): Kafka's flush
    /// scheduled on roll. The recovery point becomes the active segment's base offset. The
    /// broker calls this in the background before writing its recovery point checkpoint.
    pub fn flush_rolled_segments(&mut self) -> Result<(), LogError> {
        let active_base = self.active().map_or(0, |s| s.base_offset);
        self.flush_below(active_base)
    }

    /// Clean close: flush everything, give the active segment's time index its final entry
    /// and trim both indexes (as Kafka's `LogSegment.close`), and snapshot the producer state
    /// at the log end offset. The log stays usable (appends extend the trimmed files).
    pub fn close(&mut self) -> Result<(), LogError> {
        self.flush()?;
        if let Some(active) = self.segments.values_mut().next_back() {
            active.on_become_inactive()?;
            active.flush()?;
        }
        let leo = self.log_end_offset();
        // A snapshot at the log end already holds this state (nothing was appended since);
        // an empty log has no state to keep (Kafka writes none either).
        if leo == 0 || crate::producer_state::has_snapshot_at(&self.dir, leo) {
            return Ok(());
        }
        self.producers.write_snapshot(&self.dir, leo)
    }

    /// Kafka's `deleteOldSegments`: with `delete_enabled`, the oldest segments whose largest
    /// timestamp is more than `retention_ms` before `now_ms`, then the oldest segments while
    /// the log stays at least `retention_bytes` big without them; whatever the policy, the
    /// segments wholly below the log start offset. Each pass deletes a prefix of the log and
    /// only segments wholly below `high_watermark`. An expired (or oversized) non-empty
    /// active segment is rolled first, so the log always keeps an active segment. Returns
    /// the number of segments deleted; their files are renamed to `.deleted` and listed for
    /// `take_deleted_files`.
    pub fn delete_old_segments(
        &mut self,
        now_ms: i64,
        high_watermark: i64,
    ) -> Result<usize, LogError> {
        let mut deleted = 0;
        if self.config.delete_enabled {
            let retention_ms = self.config.retention_ms;
            if retention_ms >= 0 {
                let mut expired = Vec::new();
                for segment in self.segments.values() {
                    if now_ms.saturating_sub(segment.largest_timestamp()?) > retention_ms {
                        expired.push(segment.base_offset);
                    } else {
                        break;
                    }
                }
                deleted += self.delete_prefix(&expired, high_watermark, "retention.ms")?;
            }
            let retention_bytes = self.config.retention_bytes;
            if retention_bytes >= 0 {
                let mut excess = self.size_bytes() as i64 - retention_bytes;
                let mut oversize = Vec::new();
                for segment in self.segments.values() {
                    let size = segment.size() as i64;
                    if excess - size < 0 {
                        break;
                    }
                    excess -= size;
                    oversize.push(segment.base_offset);
                }
                deleted += self.delete_prefix(&oversize, high_watermark, "retention.bytes")?;
            }
        }
        deleted += self.delete_below_log_start()?;
        Ok(deleted)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (never down; the caller
    /// checks `offset` against the high watermark) and deletes the segments wholly below
    /// it. The start offset may fall inside a batch: reads below it fail with
    /// `OffsetOutOfRange`, a read at it returns the batch holding it. Returns the log start
    /// offset afterwards (the low watermark).
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let leo = self.log_end_offset();
        if offset > leo || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: leo,
            });
        }
        if offset > self.log_start_offset {
            info!(dir = %self.dir.display(), from = self.log_start_offset, to = offset,
                "log start offset moved by DeleteRecords");
            self.log_start_offset = offset;
        }
        self.delete_below_log_start()?;
        // After the segments: on a full disk, deleting them is what makes room. The cache
        // is right in memory even if its file cannot be rewritten now; the file, which then
        // still lists epochs below the log start (harmless), is rewritten at the next change.
        if let Err(e) = self.epochs.truncate_from_start(self.log_start_offset) {
            warn!(dir = %self.dir.display(), error = %e, "rewriting the leader-epoch checkpoint failed");
        }
        Ok(self.log_start_offset)
    }

    /// The files renamed to `.deleted` (and the dropped producer snapshots) since the last
    /// call. Remove them with `remove_deleted_files`, outside any lock: a reader still holding
    /// a segment's `FetchSlice` keeps reading from its open file.
    pub fn take_deleted_files(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.pending_deletes)
    }

    /// Segments whose successor starts at or below the log start offset (never the active).
    fn delete_below_log_start(&mut self) -> Result<usize, LogError> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let below: Vec<i64> = bases
            .windows(2)
            .take_while(|w| w[1] <= self.log_start_offset)
            .map(|w| w[0])
            .collect();
        self.delete_prefix(&below, i64::MAX, "log start offset")
    }

    /// Deletes the segments of `bases` (a prefix of the log, oldest first) that lie wholly
    /// below `high_watermark`, rolling first when that would take the active segment, then
    /// moves the log start offset to the new first segment and drops producer snapshots
    /// below it.
    fn delete_prefix(
        &mut self,
        bases: &[i64],
        high_watermark: i64,
        reason: &str,
    ) -> Result<usize, LogError> {
        let leo = self.log_end_offset();
        let mut chosen = Vec::new();
        for base in bases {
            let Some(segment) = self.segments.get(base) else {
                break;
            };
            let upper = self
                .segments
                .range(base + 1..)
                .next()
                .map_or(leo, |(b, _)| *b);
            let is_last_and_empty = upper == leo && segment.is_empty();
            if high_watermark < upper || is_last_and_empty {
                break;
            }
            chosen.push(*base);
        }
        if chosen.is_empty() {
            return Ok(0);
        }
        if chosen.len() == self.segments.len() {
            // Kafka: never leave the log without a segment; roll so the new empty active
            // segment (at the log end offset) stays.
            self.roll_now()?;
        }
        for base in &chosen {
            if let Some(segment) = self.segments.remove(base) {
                info!(dir = %self.dir.display(), base_offset = base, size = segment.size(),
                    next_offset = segment.next_offset(), reason, "deleting segment");
                let renamed = segment.rename_to_deleted()?;
                self.pending_deletes.extend(renamed);
            }
        }
        let first = *self.segments.keys().next().unwrap_or(&leo);
        if first > self.log_start_offset {
            self.log_start_offset = first;
            self.epochs.truncate_from_start(first)?;
        }
        self.recovery_point = self.recovery_point.max(first);
        let stale = crate::producer_state::snapshots_below(&self.dir, first)?;
        self.pending_deletes.extend(stale);
        Ok(chosen.len())
    }

    /// Rolls the (non-empty) active segment unconditionally.
    fn roll_now(&mut self) -> Result<(), LogError> {
        let Some(active) = self.segments.values_mut().next_back() else {
            return Ok(());
        };
        if active.is_empty() {
            return Ok(());
        }
        let base = active.next_offset();
        active.on_become_inactive()?;
        if !self.config.leaves_flushing_to_os() {
            self.flush_below(base)?;
        }
        self.producers.write_snapshot(&self.dir, base)?;
        let segment = LogSegment::create(&self.dir, base, &self.config)?;
        self.dir_unsynced = true;
        debug!(dir = %self.dir.display(), base_offset = base, "rolled new segment for retention");
        self.segments.insert(base, segment);
        Ok(())
    }

    /// The closed segments and what the cleaner must know, for one cleaning outside the
    /// lock (see `cleaner`).
    pub fn cleanable_view(&mut self, high_watermark: i64) -> Result<CleanableLog, LogError> {
        let active_base = self.active().map_or(0, |s| s.base_offset);
        let last_stable_offset = self.last_stable_offset(high_watermark);
        let aborted_txns = self.collect_aborted_txns(self.log_start_offset, last_stable_offset);
        let mut segments = Vec::new();
        for s in self.segments.values() {
            if s.base_offset >= active_base {
                break;
            }
            segments.push(SegmentView {
                base_offset: s.base_offset,
                // Opened now, so that the cleaner reads it even if retention deletes it
                // meanwhile (a short excess over the open-file set's capacity).
                file: s.file()?,
                size: s.size(),
                next_offset: s.next_offset(),
                largest_timestamp: s.largest_timestamp()?,
            });
        }
        Ok(CleanableLog {
            dir: self.dir.clone(),
            segments,
            active_base_offset: active_base,
            log_start_offset: self.log_start_offset,
            producer_last_offsets: self.producers.last_batch_offsets(),
            last_stable_offset,
            aborted_txns,
            segment_bytes: self.config.segment_bytes,
        })
    }

    /// Swaps in the segments written by `cleaner::clean` (Kafka's `replaceSegments`): for
    /// each group, `.cleaned` -> `.swap`, the old segments -> `.deleted` (listed for
    /// `take_deleted_files`), `.swap` -> `.log`, indexes rebuilt. A group whose old segments
    /// changed meanwhile (retention deleted one) is discarded. Returns the groups swapped.
    pub fn replace_cleaned(&mut self, result: &CleanResult) -> Result<usize, LogError> {
        let active_base = self.active().map_or(0, |s| s.base_offset);
        let mut swapped = 0;
        for group in &result.groups {
            let intact = group.replaces.iter().all(|(base, size)| {
                *base < active_base && self.segments.get(base).is_some_and(|s| s.size() == *size)
            });
            let last_old = group.replaces.last().map_or(group.base_offset, |(b, _)| *b);
            let next = self.segments.range(last_old + 1..).next().map(|(b, _)| *b);
            let Some(next) = next.filter(|_| intact) else {
                debug!(dir = %self.dir.display(), base_offset = group.base_offset,
                    "segments changed during cleaning; discarding the cleaned segment");
                let _ = std::fs::remove_file(&group.cleaned_path);
                continue;
            };
            let swap = self
                .dir
                .join(format!("{}{SWAP_SUFFIX}", log_file_name(group.base_offset)));
            std::fs::rename(&group.cleaned_path, &swap).map_err(at(&swap))?;
            sync_dir(&self.dir)?;
            // The aborted transactions of the old segments stay in the new one's index but
            // for those whose markers the cleaner removed.
            let mut aborted = Vec::new();
            for (base, _) in &group.replaces {
                if let Some(old) = self.segments.remove(base) {
                    aborted.extend(
                        old.aborted_txns()
                            .iter()
                            .filter(|t| !result.removed_aborted_txns.contains(t))
                            .copied(),
                    );
                    let renamed = old.rename_to_deleted()?;
                    self.pending_deletes.extend(renamed);
                }
            }
            let target = self.dir.join(log_file_name(group.base_offset));
            std::fs::rename(&swap, &target).map_err(at(&target))?;
            sync_dir(&self.dir)?;
            let mut segment =
                LogSegment::open_cleaned(&self.dir, group.base_offset, next, &self.config)?;
            for txn in aborted {
                segment.append_aborted_txn(txn)?;
            }
            self.segments.insert(group.base_offset, segment);
            swapped += 1;
        }
        Ok(swapped)
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(self) -> Result<(), LogError> {
        for s in self.segments.values() {
            s.delete_files()?;
        }
        std::fs::remove_dir_all(&self.dir).map_err(at(&self.dir))
    }
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    crate::durable::sync_dir(dir).map_err(at(dir))
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(at(path)(e)),
        _ => Ok(()),
    }
}

/// Kafka's handling of the cleaner's files on load: a `.cleaned` file is an unfinished
/// cleaning and is removed; a `.swap` file is a finished one whose swap was interrupted: the
/// segments it replaces (those at or above its base offset and below its next offset) are
/// removed and it becomes the segment; its indexes are rebuilt on open.
fn complete_interrupted_swaps(dir: &Path) -> Result<(), LogError> {
    let mut swaps = Vec::new();
    let mut segment_bases = Vec::new();
    // Whether an entry changed: only then is the directory fsynced (a start that opens
    // thousands of logs must not fsync each of them for nothing).
    let mut changed = false;
    for entry in std::fs::read_dir(dir).map_err(at(dir))? {
        let name = entry.map_err(at(dir))?.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(CLEANED_SUFFIX) {
            let path = dir.join(name.as_ref());
            debug!(path = %path.display(), "removing unfinished cleaned segment");
            remove_if_present(&path)?;
            changed = true;
        } else if let Some(log_name) = name.strip_suffix(SWAP_SUFFIX) {
            if let Some(base) = parse_log_file_name(log_name) {
                swaps.push(base);
            }
        } else if let Some(base) = parse_log_file_name(&name) {
            segment_bases.push(base);
        }
    }
    swaps.sort_unstable();
    for base in swaps {
        let swap = dir.join(format!("{}{SWAP_SUFFIX}", log_file_name(base)));
        // Its next offset, from the batch headers (recovery validates the batches later).
        let file = File::open(&swap).map_err(at(&swap))?;
        let len = file.metadata().map_err(at(&swap))?.len();
        let mut pos = 0u64;
        let mut next = base + 1;
        let mut head = [0u8; crate::batch::RECORD_BATCH_OVERHEAD];
        while pos + head.len() as u64 <= len && file.read_exact_at(&mut head, pos).is_ok() {
            let Some(h) = BatchHeader::parse(&head) else {
                break;
            };
            if h.batch_length < 0 || pos + h.total_size() as u64 > len {
                break;
            }
            next = h.last_offset() + 1;
            pos += h.total_size() as u64;
        }
        warn!(dir = %dir.display(), base_offset = base, next_offset = next,
            "completing a compaction swap interrupted by a crash");
        for old in segment_bases.iter().filter(|b| **b >= base && **b < next) {
            for name in [
                log_file_name(*old),
                crate::segment::index_file_name(*old),
                crate::segment::time_index_file_name(*old),
            ] {
                remove_if_present(&dir.join(name))?;
            }
        }
        for name in [
            crate::segment::index_file_name(base),
            crate::segment::time_index_file_name(base),
        ] {
            remove_if_present(&dir.join(name))?;
        }
        let target = dir.join(log_file_name(base));
        std::fs::rename(&swap, &target).map_err(at(&target))?;
        changed = true;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// An append's headers must describe the record set exactly (at least one batch).
fn check_headers_cover(records: &[u8], headers: &[BatchHeader]) -> Result<(), LogError> {
    let expected_len: usize = headers.iter().map(|h| h.total_size()).sum();
    if headers.is_empty() || expected_len != records.len() {
        return Err(LogError::CorruptBatch {
            position: 0,
            reason: format!(
                "{} headers describe {expected_len} bytes but the record set has {}",
                headers.len(),
                records.len()
            ),
        });
    }
    Ok(())
}

/// Removes files listed by `Log::take_deleted_files` (Kafka's asynchronous delete step; the
/// broker calls it right after releasing the partition lock). A file already gone is fine;
/// a file that cannot be removed is logged and left for the next open to remove.
/// What each control batch of `records` says (None for data batches and other controls).
fn markers_of(records: &[u8], headers: &[BatchHeader]) -> Vec<Option<EndTxnMarker>> {
    let mut pos = 0usize;
    headers
        .iter()
        .map(|h| {
            let at = pos;
            pos += h.total_size();
            if h.is_control() {
                records.get(at..pos).and_then(EndTxnMarker::parse)
            } else {
                None
            }
        })
        .collect()
}

/// The index entry of an aborted transaction, as the producer state stands after it.
fn aborted_txn(producers: &ProducerStateManager, completed: &CompletedTxn) -> AbortedTxn {
    AbortedTxn {
        producer_id: completed.producer_id,
        first_offset: completed.first_offset,
        last_offset: completed.last_offset,
        last_stable_offset: producers.last_stable_offset_after(completed),
    }
}

pub fn remove_deleted_files(paths: &[PathBuf]) {
    for path in paths {
        match std::fs::remove_file(path) {
            Ok(()) => debug!(path = %path.display(), "removed deleted file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(path = %path.display(), error = %e, "cannot remove deleted file"),
        }
    }
}
