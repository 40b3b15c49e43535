//! Log compaction (Kafka's `LogCleaner`, `cleanup.policy=compact`): keeps the newest record
//! of each key, never changes an offset, never touches the active segment.
//!
//! One cleaning of one log, in three steps so the partition lock is held only for the first
//! and the last:
//! 1. `Log::cleanable_view` (under the lock): the closed segments as open files, the active
//!    segment's base, the log start offset and each producer's newest batch.
//! 2. `clean` (no lock; closed segments never change): the dirty section starts at the
//!    cleaner checkpoint (`cleaner-offset-checkpoint`, kept by the broker) and ends at the
//!    first uncleanable offset (the active segment, or the first segment with records newer
//!    than `min.compaction.lag.ms`). An `OffsetMap` of key hash -> newest offset is built
//!    over it in `log.cleaner.dedupe.buffer.size` bytes; when the map fills, the pass ends
//!    at that batch and the next pass starts there (several passes). Then every segment
//!    below the end is rewritten, small neighbours grouped up to `segment.bytes`, into
//!    `<base>.log.cleaned`: a record survives if it is the newest of its key (or past the
//!    end of the map), records without a key are dropped, tombstones are dropped once they
//!    were already in the cleaned section and their segment is older than
//!    `delete.retention.ms`. Transactions as Kafka's cleaner treats them
//!    (`CleanedTransactionMetadata`): cleaning stops at the last stable offset; the batches
//!    of aborted transactions (named by the `.txnindex` files) neither enter the map nor
//!    survive; committed transactional records are compacted like any others; a marker
//!    stays while its transaction has data in the log, and once it covers none it goes like
//!    a tombstone (kept by an earlier cleaning, segment older than `delete.retention.ms`),
//!    its aborted transaction leaving the index with it. Batches keep base offset, last offset delta, producer id,
//!    epoch and base sequence; a producer's newest batch is kept even when empty so its
//!    sequence state survives (Kafka's `RETAIN_EMPTY`); compressed batches are recompressed
//!    with their codec, untouched batches copied as they are.
//! 3. `Log::replace_cleaned` (under the lock): each `.cleaned` file is renamed `.swap`, the
//!    old segments `.deleted`, the `.swap` to `.log` (Kafka's order; `Log::open_with`
//!    finishes or discards an interrupted swap), and its indexes are rebuilt.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::debug;

use crate::batch::{BatchHeader, RECORD_BATCH_OVERHEAD};
use crate::end_txn_marker::EndTxnMarker;
use crate::error::{at, LogError};
use crate::offset_map::{key_hash, OffsetMap};
use crate::records::{parse_records, rebuild_batch, records_section};
use crate::txn_index::AbortedTxn;

/// Suffix of a segment being written by the cleaner (removed on open).
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a finished cleaned segment being swapped in (completed on open).
pub const SWAP_SUFFIX: &str = ".swap";

/// A closed segment as the cleaner sees it.
#[derive(Clone, Debug)]
pub struct SegmentView {
    pub base_offset: i64,
    pub file: Arc<File>,
    pub size: u64,
    /// One past its last offset (the next segment's base offset).
    pub next_offset: i64,
    /// Kafka's `largestTimestamp` (batch timestamps, else file modification time).
    pub largest_timestamp: i64,
}

/// A consistent picture of a log for one cleaning, taken under the partition lock.
#[derive(Clone, Debug)]
pub struct CleanableLog {
    pub dir: PathBuf,
    /// Closed segments, oldest first (never the active one).
    pub segments: Vec<SegmentView>,
    pub active_base_offset: i64,
    pub log_start_offset: i64,
    /// producer id -> last offset of its newest batch in the log.
    pub producer_last_offsets: HashMap<i64, i64>,
    /// Kafka's last stable offset: nothing at or above it is cleaned (a transaction there
    /// may still commit or abort, or its marker may not be replicated yet).
    pub last_stable_offset: i64,
    /// The aborted transactions that begin below the last stable offset (from the
    /// `.txnindex` files).
    pub aborted_txns: Vec<AbortedTxn>,
    /// `segment.bytes`: groups of cleaned segments stay below it.
    pub segment_bytes: u64,
}

/// The topic and broker settings one cleaning runs with.
#[derive(Clone, Copy, Debug)]
pub struct CleanParams {
    pub now_ms: i64,
    /// `min.compaction.lag.ms`
    pub min_compaction_lag_ms: i64,
    /// `delete.retention.ms`
    pub delete_retention_ms: i64,
    /// `log.cleaner.dedupe.buffer.size` (per cleaner thread)
    pub dedupe_buffer_size: usize,
}

/// Kafka's `LogToClean`: how dirty a log is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DirtyStats {
    /// Where the dirty section starts (the checkpoint, at least the log start offset).
    pub first_dirty_offset: i64,
    /// Where the cleanable range ends.
    pub first_uncleanable_offset: i64,
    pub clean_bytes: u64,
    pub dirty_bytes: u64,
    /// Largest timestamp of the oldest dirty segment (for `max.compaction.lag.ms`), if any.
    pub oldest_dirty_timestamp: Option<i64>,
}

impl DirtyStats {
    /// dirty / (clean + dirty); 0 when there is nothing cleanable.
    pub fn ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }
}

/// One group of old segments replaced by one cleaned segment.
#[derive(Clone, Debug)]
pub struct CleanedGroup {
    pub base_offset: i64,
    /// (base offset, size) of the segments it replaces; checked again before the swap.
    pub replaces: Vec<(i64, u64)>,
    pub cleaned_path: PathBuf,
    pub size: u64,
}

/// What one cleaning produced; `Log::replace_cleaned` swaps it in.
#[derive(Clone, Debug, Default)]
pub struct CleanResult {
    pub groups: Vec<CleanedGroup>,
    /// The new first dirty offset (the cleaner checkpoint).
    pub end_offset: i64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
    pub map_entries: usize,
    pub map_memory_bytes: usize,
    /// When the earliest tombstone (or marker without data) kept in the cleaned section may
    /// go (ms since the epoch): a cleaning after it removes it even without new dirty data
    /// (Kafka's delete horizon).
    pub tombstone_expiry_ms: Option<i64>,
    /// The aborted transactions whose markers this cleaning removed: they leave the
    /// `.txnindex` of the cleaned segment.
    pub removed_aborted_txns: Vec<AbortedTxn>,
    /// Batches of aborted transactions removed.
    pub aborted_batches_removed: u64,
}

impl CleanableLog {
    /// Kafka's `firstUncleanableOffset`: the active segment's base, the last stable offset,
    /// or the base of the first dirty segment (from `first_dirty`) holding a record newer
    /// than `min.compaction.lag.ms`, whichever comes first.
    pub fn first_uncleanable_offset(
        &self,
        first_dirty: i64,
        now_ms: i64,
        min_compaction_lag_ms: i64,
    ) -> i64 {
        let bound = self.active_base_offset.min(self.last_stable_offset);
        if min_compaction_lag_ms > 0 {
            for s in self.segments.iter().filter(|s| s.next_offset > first_dirty) {
                if s.largest_timestamp > now_ms.saturating_sub(min_compaction_lag_ms) {
                    return s.base_offset.min(bound);
                }
            }
        }
        bound
    }

    /// Clean and dirty bytes given the checkpointed first dirty offset (None: never cleaned).
    pub fn dirty_stats(
        &self,
        checkpoint: Option<i64>,
        now_ms: i64,
        min_compaction_lag_ms: i64,
    ) -> DirtyStats {
        let first_dirty = checkpoint
            .unwrap_or(self.log_start_offset)
            .max(self.log_start_offset);
        let uncleanable = self.first_uncleanable_offset(first_dirty, now_ms, min_compaction_lag_ms);
        let first_dirty = first_dirty.min(uncleanable);
        let (mut clean, mut dirty, mut oldest) = (0, 0, None);
        for s in &self.segments {
            if s.next_offset <= first_dirty {
                clean += s.size;
            } else if s.base_offset < uncleanable {
                dirty += s.size;
                oldest.get_or_insert(s.largest_timestamp);
            }
        }
        DirtyStats {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: uncleanable,
            clean_bytes: clean,
            dirty_bytes: dirty,
            oldest_dirty_timestamp: oldest,
        }
    }
}

/// A batch read by `BatchReader`: header, whole bytes, position in the segment.
type ReadBatch<'b> = (BatchHeader, &'b [u8], u64);

/// Reads whole batches of a segment file one by one.
struct BatchReader<'a> {
    segment: &'a SegmentView,
    pos: u64,
    buf: Vec<u8>,
}

impl<'a> BatchReader<'a> {
    fn new(segment: &'a SegmentView) -> Self {
        BatchReader {
            segment,
            pos: 0,
            buf: Vec::new(),
        }
    }

    /// The next batch (header, bytes, position), None at the end of the valid data.
    fn next_batch(&mut self) -> Result<Option<ReadBatch<'_>>, LogError> {
        let s = self.segment;
        if self.pos + RECORD_BATCH_OVERHEAD as u64 > s.size {
            return Ok(None);
        }
        let mut head = [0u8; RECORD_BATCH_OVERHEAD];
        s.file
            .read_exact_at(&mut head, self.pos)
            .map_err(LogError::from)?;
        let Some(h) = BatchHeader::parse(&head) else {
            return Ok(None);
        };
        let total = h.total_size();
        if h.batch_length < 0 || self.pos + total as u64 > s.size || total < RECORD_BATCH_OVERHEAD {
            return Ok(None);
        }
        self.buf.resize(total, 0);
        s.file
            .read_exact_at(&mut self.buf, self.pos)
            .map_err(LogError::from)?;
        let at = self.pos;
        self.pos += total as u64;
        Ok(Some((h, &self.buf[..], at)))
    }
}

/// Kafka's `CleanedTransactionMetadata`: walking the batches in offset order, which
/// transactional batches belong to an aborted transaction, and whether each marker still
/// has data of its transaction before it in this walk.
struct TxnTracker {
    /// Aborted transactions not reached yet, by first offset (last first).
    waiting: Vec<AbortedTxn>,
    /// producer id -> its aborted transaction under way, and whether data of it was seen.
    ongoing_aborted: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers whose committed (not aborted) transaction had data in this walk.
    ongoing_committed: HashSet<i64>,
}

impl TxnTracker {
    fn new(aborted: &[AbortedTxn]) -> TxnTracker {
        let mut waiting = aborted.to_vec();
        waiting.sort_by_key(|t| std::cmp::Reverse(t.first_offset));
        TxnTracker {
            waiting,
            ongoing_aborted: HashMap::new(),
            ongoing_committed: HashSet::new(),
        }
    }

    fn reach(&mut self, offset: i64) {
        while self
            .waiting
            .last()
            .is_some_and(|t| t.first_offset <= offset)
        {
            if let Some(t) = self.waiting.pop() {
                self.ongoing_aborted.insert(t.producer_id, (t, false));
            }
        }
    }

    /// A data batch: whether it belongs to an aborted transaction (and must go).
    fn on_data(&mut self, h: &BatchHeader) -> bool {
        self.reach(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&h.producer_id) {
            Some((_, seen)) => {
                *seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(h.producer_id);
                false
            }
        }
    }

    /// A control batch: whether it is a marker with no data of its transaction left in the
    /// log (the data went in an earlier cleaning), so that it may go too. An aborted
    /// transaction's marker that may go is returned with it.
    fn on_marker(&mut self, h: &BatchHeader, batch: &[u8]) -> (bool, Option<AbortedTxn>) {
        self.reach(h.last_offset());
        match EndTxnMarker::parse(batch) {
            Some(m) if !m.commit => match self.ongoing_aborted.remove(&h.producer_id) {
                Some((_, true)) => (false, None),
                Some((txn, false)) => (true, Some(txn)),
                None => (true, None),
            },
            Some(_) => (!self.ongoing_committed.remove(&h.producer_id), None),
            // A control record Kafka does not know: kept.
            None => (false, None),
        }
    }
}

/// Step 1 of a pass: the offset map over [first_dirty, uncleanable), ending early (at a batch
/// boundary) when the map is full. Returns the map and where it ends.
fn build_offset_map(
    log: &CleanableLog,
    first_dirty: i64,
    uncleanable: i64,
    params: &CleanParams,
    result: &mut CleanResult,
) -> Result<(OffsetMap, i64), LogError> {
    let expected: u64 = log
        .segments
        .iter()
        .filter(|s| s.next_offset > first_dirty && s.base_offset < uncleanable)
        .map(|s| (s.next_offset - s.base_offset.max(first_dirty)).max(0) as u64)
        .sum();
    let mut map = OffsetMap::new(params.dedupe_buffer_size, expected as usize);
    let mut txns = TxnTracker::new(&log.aborted_txns);
    for s in &log.segments {
        if s.next_offset <= first_dirty || s.base_offset >= uncleanable {
            continue;
        }
        let mut reader = BatchReader::new(s);
        while let Some((h, bytes, pos)) = reader.next_batch()? {
            if h.last_offset() < first_dirty {
                continue;
            }
            if h.base_offset >= uncleanable {
                break;
            }
            // Markers hold no keys; an aborted record must not hide a committed one.
            if h.is_control() {
                txns.on_marker(&h, bytes);
                continue;
            }
            if txns.on_data(&h) {
                continue;
            }
            if map.room() < h.record_count.max(0) as usize {
                if h.base_offset <= first_dirty {
                    return Err(LogError::Io(std::io::Error::other(format!(
                        "log.cleaner.dedupe.buffer.size too small: a batch of {} records does not fit an offset map of {} bytes",
                        h.record_count,
                        map.memory_bytes()
                    ))));
                }
                return Ok((map, h.base_offset));
            }
            result.bytes_read += bytes.len() as u64;
            let section = records_section(&h, bytes, pos)?;
            for r in parse_records(&h, &section, pos)? {
                if r.offset < first_dirty {
                    continue;
                }
                if let Some(key) = r.key {
                    // Room was checked for the whole batch.
                    map.put(key_hash(key), r.offset);
                }
            }
        }
    }
    Ok((map, uncleanable))
}

/// Kafka's `groupSegmentsBySize`: consecutive segments below `end` whose sizes add up to at
/// most `segment_bytes` and whose offsets fit a 4-byte index delta.
fn group_segments(log: &CleanableLog, end: i64) -> Vec<Vec<&SegmentView>> {
    let mut groups: Vec<Vec<&SegmentView>> = Vec::new();
    let mut size = 0u64;
    for s in log.segments.iter().filter(|s| s.base_offset < end) {
        let fits = groups.last().is_some_and(|g| {
            size + s.size <= log.segment_bytes
                && s.next_offset - 1 - g[0].base_offset <= i64::from(i32::MAX)
        });
        if fits {
            size += s.size;
            if let Some(g) = groups.last_mut() {
                g.push(s);
            }
        } else {
            size = s.size;
            groups.push(vec![s]);
        }
    }
    groups
}

/// The `.cleaned` file name of the segment at `base`.
pub fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!(
        "{}{CLEANED_SUFFIX}",
        crate::segment::log_file_name(base)
    ))
}

/// Steps 1 and 2 of a cleaning (see the module doc): builds the offset map from
/// `first_dirty` on and writes the cleaned segments as `.cleaned` files. None when there is
/// nothing to clean. The caller swaps them in with `Log::replace_cleaned`, or removes them
/// with `discard_cleaned` when it gives up.
pub fn clean(
    log: &CleanableLog,
    first_dirty: i64,
    params: &CleanParams,
) -> Result<Option<CleanResult>, LogError> {
    let first_dirty = first_dirty.max(log.log_start_offset);
    let uncleanable =
        log.first_uncleanable_offset(first_dirty, params.now_ms, params.min_compaction_lag_ms);
    let mut result = CleanResult::default();
    let (map, end) = if first_dirty < uncleanable {
        build_offset_map(log, first_dirty, uncleanable, params, &mut result)?
    } else if log.segments.iter().any(|s| s.base_offset < first_dirty) {
        // Nothing dirty: a pass over the cleaned section only, for expired tombstones.
        (OffsetMap::new(0, 0), first_dirty)
    } else {
        return Ok(None);
    };
    result.end_offset = end;
    result.map_entries = map.len();
    result.map_memory_bytes = map.memory_bytes();
    let tombstone_horizon = params.now_ms.saturating_sub(params.delete_retention_ms);
    let mut txns = TxnTracker::new(&log.aborted_txns);
    for group in group_segments(log, end) {
        let base = group[0].base_offset;
        let path = cleaned_path(&log.dir, base);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(at(&path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut written = 0u64;
        for s in &group {
            let drop_tombstones = s.largest_timestamp < tombstone_horizon;
            let expiry = s
                .largest_timestamp
                .saturating_add(params.delete_retention_ms)
                .saturating_add(1);
            let mut reader = BatchReader::new(s);
            while let Some((h, bytes, pos)) = reader.next_batch()? {
                let producer_keeps = h.has_producer_id()
                    && log.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset());
                if h.base_offset >= end {
                    out.write_all(bytes).map_err(at(&path))?;
                    written += bytes.len() as u64;
                    continue;
                }
                if h.is_control() {
                    let (without_data, aborted) = txns.on_marker(&h, bytes);
                    if without_data && !producer_keeps {
                        // Like a tombstone: once kept by an earlier cleaning and old enough.
                        if h.base_offset < first_dirty && drop_tombstones {
                            result.removed_aborted_txns.extend(aborted);
                            continue;
                        }
                        result.tombstone_expiry_ms =
                            Some(result.tombstone_expiry_ms.map_or(expiry, |e| e.min(expiry)));
                    }
                    out.write_all(bytes).map_err(at(&path))?;
                    written += bytes.len() as u64;
                    continue;
                }
                let section = records_section(&h, bytes, pos)?;
                let records = parse_records(&h, &section, pos)?;
                result.records_read += records.len() as u64;
                if txns.on_data(&h) {
                    // Aborted: gone, but for a producer's newest batch (kept empty).
                    result.aborted_batches_removed += 1;
                    if producer_keeps {
                        let rebuilt = rebuild_batch(&h, &[], pos)?;
                        out.write_all(&rebuilt).map_err(at(&path))?;
                        written += rebuilt.len() as u64;
                    }
                    continue;
                }
                let kept: Vec<_> = records
                    .iter()
                    .filter(|r| {
                        if r.offset >= end {
                            return true;
                        }
                        let Some(key) = r.key else {
                            return false;
                        };
                        if map
                            .get(key_hash(key))
                            .is_some_and(|newest| r.offset < newest)
                        {
                            return false;
                        }
                        // A tombstone goes once consumers had delete.retention.ms to see it:
                        // it was kept by an earlier cleaning and its segment is that old.
                        !(r.value_is_null && r.offset < first_dirty && drop_tombstones)
                    })
                    .cloned()
                    .collect();
                result.records_kept += kept.len() as u64;
                if kept.iter().any(|r| r.value_is_null && r.offset < end) {
                    result.tombstone_expiry_ms =
                        Some(result.tombstone_expiry_ms.map_or(expiry, |e| e.min(expiry)));
                }
                if records.is_empty() && !producer_keeps {
                    // An empty batch kept for a producer that has written since: drop it.
                    continue;
                } else if kept.len() == records.len() {
                    out.write_all(bytes).map_err(at(&path))?;
                    written += bytes.len() as u64;
                } else if !kept.is_empty() || producer_keeps {
                    let rebuilt = rebuild_batch(&h, &kept, pos)?;
                    out.write_all(&rebuilt).map_err(at(&path))?;
                    written += rebuilt.len() as u64;
                }
            }
        }
        let file = out.into_inner().map_err(|e| at(&path)(e.into_error()))?;
        // Kafka keeps the last modification time of the replaced segments, which retention
        // falls back on when batches carry no timestamp.
        if let Some(modified) = group
            .last()
            .and_then(|s| s.file.metadata().and_then(|m| m.modified()).ok())
        {
            file.set_modified(modified).map_err(at(&path))?;
        }
        file.sync_all().map_err(at(&path))?;
        result.bytes_written += written;
        result.groups.push(CleanedGroup {
            base_offset: base,
            replaces: group.iter().map(|s| (s.base_offset, s.size)).collect(),
            cleaned_path: path,
            size: written,
        });
    }
    debug!(dir = %log.dir.display(), first_dirty, end, groups = result.groups.len(),
        "cleaned segments written");
    Ok(Some(result))
}

/// Removes the `.cleaned` files of a cleaning that will not be swapped in.
pub fn discard_cleaned(result: &CleanResult) {
    for g in &result.groups {
        let _ = std::fs::remove_file(&g.cleaned_path);
    }
}
