//! LogSegment: one `<base offset>.log` file of whole batches, its `.index`, its
//! `.timeindex` and, once a transaction aborts in it, its `.txnindex` (Kafka's file names
//! and formats).
//!
//! Writes go to the end at an explicit position (`pwritev`), reads are positional
//! (`read_exact_at`) on a shared `Arc<File>`, so readers never move a cursor that the
//! writer depends on and can keep reading a segment that has since been deleted. The
//! descriptor comes from the bounded set of open files (`open_files`): a segment not used
//! for a while has none, and gets one again when next read or written.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{error, warn};

use crate::batch::{valid_batch_at, BatchHeader, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD};
use crate::error::{at, LogError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::open_files::SegmentFile;
use crate::txn_index::{txn_index_file_name, AbortedTxn, TransactionIndex};
use crate::LogConfig;

pub fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// The base offset of a segment file named `<20 digits>.log`, None for any other name.
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Kafka's suffix for files of a segment being deleted.
pub const DELETED_SUFFIX: &str = ".deleted";

/// Writes `records` (whole batches described by `headers`) at `pos` with one vectored
/// write, each batch's first 16 bytes replaced by its header's base offset, length and
/// leader epoch: the patch travels as a separate slice, so the records are not copied to
/// apply it.
fn write_batches_at(
    file: &File,
    pos: u64,
    records: &[u8],
    headers: &[BatchHeader],
) -> std::io::Result<()> {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    /// Far below any IOV_MAX (Linux: 1024).
    const MAX_SLICES: usize = 512;
    let prefixes: Vec<[u8; 16]> = headers
        .iter()
        .map(|h| {
            let mut p = [0u8; 16];
            p[0..8].copy_from_slice(&h.base_offset.to_be_bytes());
            p[8..12].copy_from_slice(&h.batch_length.to_be_bytes());
            p[12..16].copy_from_slice(&h.partition_leader_epoch.to_be_bytes());
            p
        })
        .collect();
    let mut slices = Vec::with_capacity(2 * headers.len());
    let mut start = 0usize;
    for (h, prefix) in headers.iter().zip(&prefixes) {
        let end = start + h.total_size();
        let batch = records.get(start + 16..end).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "batch headers describe more bytes than the record set holds",
            )
        })?;
        slices.push(IoSlice::new(prefix));
        slices.push(IoSlice::new(batch));
        start = end;
    }
    let mut offset = pos;
    let mut remaining: &mut [IoSlice<'_>] = &mut slices;
    while !remaining.is_empty() {
        let count = remaining.len().min(MAX_SLICES);
        // SAFETY: IoSlice is ABI-compatible with iovec; the `count` slices point at live
        // memory borrowed for this call.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                remaining.as_ptr().cast::<libc::iovec>(),
                count as libc::c_int,
                offset as libc::off_t,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        offset += n as u64;
        IoSlice::advance_slices(&mut remaining, n as usize);
    }
    Ok(())
}

pub fn index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.index")
}

pub fn time_index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.timeindex")
}

/// The broker's clock in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub struct LogSegment {
    pub base_offset: i64,
    /// The `.log` file (and its path).
    file: Arc<SegmentFile>,
    size: u64,
    /// One past the last offset stored here (= base_offset when empty).
    next_offset: i64,
    index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TransactionIndex,
    bytes_since_last_index_entry: u64,
    /// Kafka's `maxTimestampAndOffsetSoFar`: the largest batch max timestamp in the segment
    /// and the last offset of the (first) batch holding it.
    max_timestamp_so_far: Option<(i64, i64)>,
    /// Broker time (ms) from which `segment.ms` counts: the first append in this process, or
    /// for a segment found on disk its file's creation time (else the time it was opened).
    rolling_base_ms: Option<i64>,
}

impl LogSegment {
    /// Creates a new empty segment in `dir`, its indexes preallocated to
    /// `config.max_index_bytes`.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<LogSegment, LogError> {
        let path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(at(&path))?;
        let index = OffsetIndex::create(
            &dir.join(index_file_name(base_offset)),
            base_offset,
            config.max_index_bytes,
        )?;
        let time_index = TimeIndex::create(
            &dir.join(time_index_file_name(base_offset)),
            base_offset,
            config.max_index_bytes,
        )?;
        let mut txn_index = TransactionIndex::load(&dir.join(txn_index_file_name(base_offset)))?;
        txn_index.reset()?;
        Ok(LogSegment {
            base_offset,
            file: SegmentFile::opened(path, file),
            size: 0,
            next_offset: base_offset,
            index,
            time_index,
            txn_index,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: None,
            rolling_base_ms: None,
        })
    }

    /// Opens an existing segment. `recover` (a directory for damaged bytes) validates every
    /// batch (see `recover`), cutting the file at the first torn or corrupt one and rebuilding
    /// both indexes; the second value is the number of bytes cut. Otherwise the data is trusted: the indexes are loaded (and
    /// rebuilt only if missing or inconsistent) and `next_offset` is taken from `known_next`
    /// (the next segment's base offset) or, for the last segment, found by a header scan from
    /// the last offset index entry.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        recover: Option<&Path>,
        known_next: Option<i64>,
        config: &LogConfig,
    ) -> Result<(LogSegment, u64), LogError> {
        let path = dir.join(log_file_name(base_offset));
        // No descriptor yet: a broker that opens thousands of segments at start reads only
        // the few it must (the last one's tail, or those it recovers).
        let size = std::fs::metadata(&path).map_err(at(&path))?.len();
        let index_path = dir.join(index_file_name(base_offset));
        let time_path = dir.join(time_index_file_name(base_offset));
        let max = config.max_index_bytes;
        let loaded = if recover.is_some() {
            None
        } else {
            match OffsetIndex::load(&index_path, base_offset, size, known_next, max)? {
                Some(index) => TimeIndex::load(&time_path, base_offset, known_next, max)?
                    .map(|time_index| (index, time_index)),
                None => None,
            }
        };
        let index_ok = loaded.is_some();
        let (index, time_index) = match loaded {
            Some(pair) => pair,
            None => (
                OffsetIndex::create(&index_path, base_offset, max)?,
                TimeIndex::create(&time_path, base_offset, max)?,
            ),
        };
        let txn_index = TransactionIndex::load(&dir.join(txn_index_file_name(base_offset)))?;
        let mut segment = LogSegment {
            base_offset,
            file: SegmentFile::closed(path),
            size,
            next_offset: base_offset,
            index,
            time_index,
            txn_index,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: None,
            rolling_base_ms: None,
        };
        if let Some(aside) = recover {
            let cut = segment.recover(config.index_interval_bytes, aside)?;
            segment.init_rolling_base()?;
            return Ok((segment, cut));
        }
        if !index_ok {
            warn!(segment = %segment.path().display(), "offset or time index missing or invalid; rebuilding");
            segment.rebuild_indexes(config)?;
        }
        segment.max_timestamp_so_far = segment.time_index.last_entry();
        segment.next_offset = match known_next {
            Some(n) => n,
            None => segment.scan_next_offset()?,
        };
        if index_ok
            && known_next.is_none()
            && segment
                .time_index
                .last_entry()
                .is_some_and(|(_, o)| o >= segment.next_offset)
        {
            warn!(segment = %segment.path().display(), "time index points past the log end; rebuilding");
            segment.rebuild_indexes(config)?;
            segment.max_timestamp_so_far = segment.time_index.last_entry();
        }
        segment.init_rolling_base()?;
        Ok((segment, 0))
    }

    /// Opens a segment just written by the cleaner (or swapped in by recovery): its data is
    /// trusted (written and fsynced whole) and both indexes are built from it.
    pub fn open_cleaned(
        dir: &Path,
        base_offset: i64,
        next_offset: i64,
        config: &LogConfig,
    ) -> Result<LogSegment, LogError> {
        let path = dir.join(log_file_name(base_offset));
        let size = std::fs::metadata(&path).map_err(at(&path))?.len();
        let index = OffsetIndex::create(&dir.join(index_file_name(base_offset)), base_offset, 0)?;
        let time_index =
            TimeIndex::create(&dir.join(time_index_file_name(base_offset)), base_offset, 0)?;
        let txn_index = TransactionIndex::load(&dir.join(txn_index_file_name(base_offset)))?;
        let mut segment = LogSegment {
            base_offset,
            file: SegmentFile::closed(path),
            size,
            next_offset,
            index,
            time_index,
            txn_index,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: None,
            rolling_base_ms: None,
        };
        segment.rebuild_indexes(config)?;
        segment.max_timestamp_so_far = segment.time_index.last_entry();
        segment.init_rolling_base()?;
        Ok(segment)
    }

    /// A segment found on disk counts `segment.ms` from its file's creation time (its first
    /// append, near enough), or from when it was opened where the file system keeps no
    /// creation time; an empty one from its first append.
    fn init_rolling_base(&mut self) -> Result<(), LogError> {
        if self.size == 0 {
            self.rolling_base_ms = None;
            return Ok(());
        }
        let now = now_ms();
        let created = std::fs::metadata(self.path())
            .map_err(at(self.path()))?
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64);
        self.rolling_base_ms = Some(created.map_or(now, |c| c.min(now)));
        Ok(())
    }

    /// Validates every batch from the start (size, magic, CRC32C, offsets increasing from the
    /// base offset), truncating at the first bad one, and rebuilds both indexes (trimmed, with
    /// the final time index entry, as Kafka's `LogSegment.recover`). Returns the bytes cut.
    /// A tail cut short by a crash is dropped; a damaged batch (whole but invalid) and what
    /// follows it are first copied into `aside`.
    pub fn recover(&mut self, index_interval: u32, aside: &Path) -> Result<u64, LogError> {
        self.reset_indexes()?;
        let mut pos = 0u64;
        let mut next = self.base_offset;
        let mut buf = Vec::new();
        // A batch that is whole in the file but invalid is damage, not a write the crash cut
        // short (that one runs past the end, or its header is not there at all).
        let mut damaged = false;
        while pos < self.size {
            let Some(header) = self.read_header(pos)? else {
                break;
            };
            let total = header.total_size() as u64;
            if header.batch_length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32
                || pos + total > self.size
            {
                break;
            }
            if header.base_offset < next
                || header.last_offset() - self.base_offset > i64::from(i32::MAX)
            {
                damaged = true;
                break;
            }
            buf.resize(total as usize, 0);
            self.handle()?
                .read_exact_at(&mut buf, pos)
                .map_err(at(self.path()))?;
            if valid_batch_at(&buf).is_none() {
                damaged = true;
                break;
            }
            self.maybe_index(&header, pos, total, index_interval)?;
            next = header.last_offset() + 1;
            pos += total;
        }
        let cut = self.size - pos;
        if cut > 0 && damaged {
            // Everything from the damaged batch on is kept, outside the log, for whoever
            // wants to look at it (kafka-dump-log.sh reads it as a segment).
            let kept = aside.join(format!(
                "{}.from-byte-{pos}",
                log_file_name(self.base_offset)
            ));
            std::fs::create_dir_all(aside).map_err(at(aside))?;
            let mut tail = vec![0u8; cut as usize];
            self.handle()?
                .read_exact_at(&mut tail, pos)
                .map_err(at(self.path()))?;
            std::fs::write(&kept, &tail).map_err(at(&kept))?;
            error!(segment = %self.path().display(), byte = pos, offset = next, cut_bytes = cut,
                kept = %kept.display(),
                "damaged record batch found by recovery: the log ends before it; the bytes from it on are kept aside, not served");
        } else if cut > 0 {
            warn!(segment = %self.path().display(), valid_bytes = pos, cut_bytes = cut,
                "truncating torn tail of log segment");
        }
        if cut > 0 {
            let file = self.handle()?;
            file.set_len(pos).map_err(at(self.path()))?;
            file.sync_all().map_err(at(self.path()))?;
            self.size = pos;
        }
        self.next_offset = next;
        // Aborts whose marker was cut go too; the log's replay rewrites the others.
        self.txn_index.truncate_to(next)?;
        self.on_become_inactive()?;
        Ok(cut)
    }

    /// Empty indexes before a rebuild. They are trimmed as soon as rebuilt, so they get no
    /// preallocated room; `make_active` gives the active segment its room.
    fn reset_indexes(&mut self) -> Result<(), LogError> {
        self.index = OffsetIndex::create(self.index.path(), self.base_offset, 0)?;
        self.time_index = TimeIndex::create(self.time_index.path(), self.base_offset, 0)?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_so_far = None;
        Ok(())
    }

    fn rebuild_indexes(&mut self, config: &LogConfig) -> Result<(), LogError> {
        self.reset_indexes()?;
        let mut pos = 0;
        while let Some(header) = self.read_header(pos)? {
            let total = header.total_size() as u64;
            self.maybe_index(&header, pos, total, config.index_interval_bytes)?;
            pos += total;
        }
        self.on_become_inactive()?;
        self.index.flush()?;
        self.time_index.flush()
    }

    /// Cuts the segment before the batch holding `offset` (Kafka's `LogSegment.truncateTo`:
    /// a batch is never split, so the segment may end below `offset`) and rebuilds its
    /// indexes. Returns the bytes cut.
    pub fn truncate_to(&mut self, offset: i64, config: &LogConfig) -> Result<u64, LogError> {
        let Some((pos, _)) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let cut = self.size - pos;
        self.handle()?.set_len(pos).map_err(at(self.path()))?;
        self.size = pos;
        self.rebuild_indexes(config)?;
        self.txn_index.truncate_to(offset)?;
        self.next_offset = self.scan_next_offset()?;
        if self.size == 0 {
            self.rolling_base_ms = None;
        }
        Ok(cut)
    }

    fn scan_next_offset(&self) -> Result<i64, LogError> {
        let mut pos = self.index.lookup(i64::MAX);
        let mut next = self.base_offset;
        while let Some(header) = self.read_header(pos)? {
            next = header.last_offset() + 1;
            pos += header.total_size() as u64;
        }
        Ok(next)
    }

    /// Kafka's `LogSegment.append` indexing: the max timestamp so far follows every batch;
    /// past `interval` bytes since the last entry, the batch gets an offset index entry (its
    /// last offset, its position) and the time index gets the max timestamp so far if it grew.
    fn maybe_index(
        &mut self,
        header: &BatchHeader,
        pos: u64,
        total: u64,
        interval: u32,
    ) -> Result<(), LogError> {
        if self
            .max_timestamp_so_far
            .is_none_or(|(t, _)| header.max_timestamp > t)
        {
            self.max_timestamp_so_far = Some((header.max_timestamp, header.last_offset()));
        }
        if self.bytes_since_last_index_entry >= u64::from(interval) {
            self.index.append(header.last_offset(), pos)?;
            if let Some((t, o)) = self.max_timestamp_so_far {
                self.time_index.maybe_append(t, o);
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += total;
        Ok(())
    }

    /// Kafka's `onBecomeInactiveSegment` (roll) and close: the time index gets the segment's
    /// max timestamp as its final entry, and both indexes are trimmed to their entries.
    pub fn on_become_inactive(&mut self) -> Result<(), LogError> {
        if let Some((t, o)) = self.max_timestamp_so_far {
            self.time_index.maybe_append(t, o);
        }
        self.index.trim()?;
        self.time_index.trim()
    }

    /// Preallocates both indexes again (the segment takes appends).
    pub fn make_active(&mut self, max_index_bytes: u32) -> Result<(), LogError> {
        self.index.preallocate(max_index_bytes)?;
        self.time_index.preallocate(max_index_bytes)
    }

    /// Either index has used up its preallocated room.
    pub fn index_full(&self) -> bool {
        self.index.is_full() || self.time_index.is_full()
    }

    /// When `segment.ms` started counting for this segment (None while empty).
    pub fn rolling_base_ms(&self) -> Option<i64> {
        self.rolling_base_ms
    }

    /// (largest timestamp, last offset of the batch holding it), None without timestamps.
    pub fn max_timestamp_so_far(&self) -> Option<(i64, i64)> {
        self.max_timestamp_so_far
    }

    /// Kafka's `findOffsetByTimestamp` start: the position from which to scan batches for the
    /// first with max timestamp >= `timestamp` and an offset >= `starting_offset`, through the
    /// time index then the offset index.
    pub fn timestamp_search_position(&self, timestamp: i64, starting_offset: i64) -> u64 {
        let (_, offset) = self.time_index.lookup(timestamp);
        self.index.lookup(offset.max(starting_offset))
    }

    /// The header of the batch at `pos`, or None at the end (or a header that does not fit).
    pub fn read_header(&self, pos: u64) -> Result<Option<BatchHeader>, LogError> {
        if pos + RECORD_BATCH_OVERHEAD as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
        self.handle()?
            .read_exact_at(&mut buf, pos)
            .map_err(at(self.path()))?;
        let header = BatchHeader::parse(&buf);
        Ok(header.filter(|h| h.batch_length >= 0 && pos + h.total_size() as u64 <= self.size))
    }

    /// Appends whole batches at the end of the file: `bytes` as the client sent them,
    /// except that each batch's first 16 bytes (base offset, length, leader epoch) are
    /// written from its assigned header in `headers`. `now_ms` starts the `segment.ms`
    /// clock of an empty segment.
    pub fn append(
        &mut self,
        bytes: &[u8],
        headers: &[BatchHeader],
        index_interval: u32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        write_batches_at(self.handle()?.as_ref(), self.size, bytes, headers)
            .map_err(at(self.path()))?;
        if self.rolling_base_ms.is_none() {
            self.rolling_base_ms = Some(now_ms);
        }
        let mut pos = self.size;
        for h in headers {
            let total = h.total_size() as u64;
            self.maybe_index(h, pos, total, index_interval)?;
            pos += total;
            self.next_offset = h.last_offset() + 1;
        }
        self.size = pos;
        Ok(())
    }

    /// Position of the first batch whose last offset is >= `offset`, with its header.
    pub fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let mut pos = self.index.lookup(offset);
        while let Some(header) = self.read_header(pos)? {
            if header.last_offset() >= offset {
                return Ok(Some((pos, header)));
            }
            pos += header.total_size() as u64;
        }
        Ok(None)
    }

    /// Calls `f` with every batch header in order, with its position; stops when `f`
    /// returns false.
    pub fn for_each_header(
        &self,
        from_pos: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<(), LogError> {
        let mut pos = from_pos;
        while let Some(header) = self.read_header(pos)? {
            if !f(pos, &header) {
                break;
            }
            pos += header.total_size() as u64;
        }
        Ok(())
    }

    pub fn read_bytes(&self, pos: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; len];
        self.handle()?
            .read_exact_at(&mut buf, pos)
            .map_err(at(self.path()))?;
        Ok(buf)
    }

    /// The open `.log` file, for reads and fsyncs outside the log's lock.
    pub fn file(&self) -> Result<Arc<File>, LogError> {
        self.handle()
    }

    fn handle(&self) -> Result<Arc<File>, LogError> {
        self.file.open().map_err(at(self.file.path()))
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// fsyncs the segment file and its indexes.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.handle()?.sync_data().map_err(at(self.path()))?;
        self.index.flush()?;
        self.time_index.flush()?;
        self.txn_index.flush()
    }

    /// Records an aborted transaction whose marker is in this segment.
    pub fn append_aborted_txn(&mut self, txn: AbortedTxn) -> Result<(), LogError> {
        self.txn_index.append(txn)
    }

    /// The aborted transactions of this segment's index overlapping [fetch_offset,
    /// upper_bound), onto `out`; true when no later segment can add any.
    pub fn collect_aborted_txns(
        &self,
        fetch_offset: i64,
        upper_bound: i64,
        out: &mut Vec<AbortedTxn>,
    ) -> bool {
        self.txn_index.collect(fetch_offset, upper_bound, out)
    }

    pub fn aborted_txns(&self) -> &[AbortedTxn] {
        self.txn_index.entries()
    }

    /// Hands the buffered index entries to the OS, without fsync.
    pub fn write_out_index(&mut self) -> Result<(), LogError> {
        self.index.write_out()?;
        self.time_index.write_out()
    }

    /// Kafka's `largestTimestamp`: the largest batch timestamp in the segment, or, when no
    /// batch carries one, the segment file's last modification time (ms since the epoch).
    pub fn largest_timestamp(&self) -> Result<i64, LogError> {
        if let Some((t, _)) = self.max_timestamp_so_far.filter(|(t, _)| *t >= 0) {
            return Ok(t);
        }
        let modified = std::fs::metadata(self.path())
            .and_then(|m| m.modified())
            .map_err(at(self.path()))?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64))
    }

    /// Kafka's first deletion step: renames the segment and its indexes to
    /// `<name>.deleted` (a crash after this leaves files that the next open removes) and
    /// returns the new paths, to be removed by the caller. A missing index is skipped.
    pub fn rename_to_deleted(&self) -> Result<Vec<PathBuf>, LogError> {
        let mut renamed = Vec::with_capacity(4);
        for p in self.file_paths() {
            let mut name = p.as_os_str().to_os_string();
            name.push(DELETED_SUFFIX);
            let target = PathBuf::from(name);
            match std::fs::rename(p, &target) {
                Ok(()) => renamed.push(target),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(at(p)(e)),
            }
        }
        Ok(renamed)
    }

    fn file_paths(&self) -> [&Path; 4] {
        [
            self.path(),
            self.index.path(),
            self.time_index.path(),
            self.txn_index.path(),
        ]
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) -> Result<(), LogError> {
        for p in self.file_paths() {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(at(p)(e)),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;
    use crate::parse_record_set;

    #[test]
    fn only_kafka_segment_names_are_segments() {
        assert_eq!(parse_log_file_name(&log_file_name(42)), Some(42));
        assert_eq!(parse_log_file_name("00000000000000000000.log"), Some(0));
        for other in [
            "0.log",
            "-0000000000000000001.log",
            "00000000000000000000.log.tmp",
            "00000000000000000000.index",
            "99999999999999999999.log",
            "leader-epoch-checkpoint",
        ] {
            assert_eq!(parse_log_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_closed_segment_keeps_its_index_and_finds_batches_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            index_interval_bytes: 300,
            ..LogConfig::default()
        };
        let mut seg = LogSegment::create(dir.path(), 50, &config).unwrap();
        let mut next: i64 = 50;
        for i in 0..30 {
            let mut b = batch(2, i).to_vec();
            b[0..8].copy_from_slice(&next.to_be_bytes());
            let h = parse_record_set(&b, 1 << 20).unwrap();
            seg.append(&b, &h, 300, 0).unwrap();
            next += 2;
        }
        seg.on_become_inactive().unwrap();
        seg.flush().unwrap();
        let entries = seg.index.len();
        let time_entries = seg.time_index.len();
        assert_eq!(seg.max_timestamp_so_far(), Some((30, next - 1)));
        assert_eq!(
            seg.time_index.last_entry(),
            Some((30, next - 1)),
            "final entry"
        );
        assert!(entries > 5);
        drop(seg);
        let (seg, _) = LogSegment::open(dir.path(), 50, None, Some(next), &config).unwrap();
        assert_eq!(seg.index.len(), entries, "loaded, not rebuilt");
        assert_eq!(seg.time_index.len(), time_entries);
        assert_eq!(seg.max_timestamp_so_far(), Some((30, next - 1)));
        assert_eq!(seg.next_offset(), next);
        assert!(seg.index.lookup(105) > 0, "lookup starts near the target");
        let (pos, h) = seg.find_batch(105).unwrap().unwrap();
        assert_eq!((h.base_offset, h.last_offset()), (104, 105));
        assert_eq!(pos, 27 * h.total_size() as u64);
        assert!(seg.find_batch(next).unwrap().is_none());
        // Without the next segment's base the end is found from the last index entry.
        let (seg, _) = LogSegment::open(dir.path(), 50, None, None, &config).unwrap();
        assert_eq!(seg.next_offset(), next);
    }
}
