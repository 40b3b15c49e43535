//! LogSegment: one `<base offset>.log` file of whole batches and its `.index`.
//!
//! Writes go to the end at an explicit position (`write_all_at`), reads are positional
//! (`read_exact_at`) on a shared `Arc<File>`, so readers never move a cursor that the
//! writer depends on and can keep reading a segment that has since been deleted.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::batch::{valid_batch_at, BatchHeader, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD};
use crate::error::{at, LogError};
use crate::index::OffsetIndex;

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

pub fn index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.index")
}

pub struct LogSegment {
    pub base_offset: i64,
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    /// One past the last offset stored here (= base_offset when empty).
    next_offset: i64,
    index: OffsetIndex,
    bytes_since_last_index_entry: u64,
}

impl LogSegment {
    /// Creates a new empty segment in `dir`.
    pub fn create(dir: &Path, base_offset: i64) -> Result<LogSegment, LogError> {
        let path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(at(&path))?;
        let index = OffsetIndex::create(&dir.join(index_file_name(base_offset)), base_offset)?;
        Ok(LogSegment {
            base_offset,
            path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            index,
            bytes_since_last_index_entry: 0,
        })
    }

    /// Opens an existing segment. `recover` scans and validates every batch, cutting the
    /// file at the first torn or corrupt one and rebuilding the index; otherwise the index is
    /// loaded (or rebuilt if missing or bad) and `next_offset` is taken from `known_next`
    /// (the next segment's base offset) or, for the last segment, found by a header scan.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        recover: bool,
        known_next: Option<i64>,
        index_interval: u32,
    ) -> Result<LogSegment, LogError> {
        let path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(at(&path))?;
        let size = file.metadata().map_err(at(&path))?.len();
        let index_path = dir.join(index_file_name(base_offset));
        // The active segment's index is rebuilt by its recovery scan; a closed segment's
        // is loaded, and rebuilt only if it is missing or inconsistent.
        let loaded = if recover {
            None
        } else {
            OffsetIndex::load(&index_path, base_offset, size)?
        };
        let index_ok = loaded.is_some();
        let index = match loaded {
            Some(index) => index,
            None => OffsetIndex::create(&index_path, base_offset)?,
        };
        let mut segment = LogSegment {
            base_offset,
            path,
            file: Arc::new(file),
            size,
            next_offset: base_offset,
            index,
            bytes_since_last_index_entry: 0,
        };
        if recover {
            segment.recover(index_interval)?;
            return Ok(segment);
        }
        if !index_ok {
            warn!(segment = %segment.path.display(), "offset index missing or invalid; rebuilding");
            segment.rebuild_index(index_interval)?;
        }
        segment.next_offset = match known_next {
            Some(n) => n,
            None => segment.scan_next_offset()?,
        };
        Ok(segment)
    }

    /// Validates every batch from the start, truncating at the first bad one, and
    /// rebuilds the index. Returns the number of bytes cut.
    pub fn recover(&mut self, index_interval: u32) -> Result<u64, LogError> {
        self.index = OffsetIndex::create(self.index.path(), self.base_offset)?;
        self.bytes_since_last_index_entry = 0;
        let mut pos = 0u64;
        let mut next = self.base_offset;
        let mut buf = Vec::new();
        while pos < self.size {
            let Some(header) = self.read_header(pos)? else {
                break;
            };
            let total = header.total_size() as u64;
            if header.batch_length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32
                || pos + total > self.size
                || header.base_offset < next
            {
                break;
            }
            buf.resize(total as usize, 0);
            self.file
                .read_exact_at(&mut buf, pos)
                .map_err(at(&self.path))?;
            if valid_batch_at(&buf).is_none() {
                break;
            }
            self.maybe_index(&header, pos, total, index_interval)?;
            next = header.last_offset() + 1;
            pos += total;
        }
        let cut = self.size - pos;
        if cut > 0 {
            warn!(segment = %self.path.display(), valid_bytes = pos, cut_bytes = cut,
                "truncating torn or corrupt tail of log segment");
            self.file.set_len(pos).map_err(at(&self.path))?;
            self.file.sync_all().map_err(at(&self.path))?;
            self.size = pos;
        }
        self.next_offset = next;
        Ok(cut)
    }

    fn rebuild_index(&mut self, index_interval: u32) -> Result<(), LogError> {
        self.index = OffsetIndex::create(self.index.path(), self.base_offset)?;
        self.bytes_since_last_index_entry = 0;
        let mut pos = 0;
        while let Some(header) = self.read_header(pos)? {
            let total = header.total_size() as u64;
            self.maybe_index(&header, pos, total, index_interval)?;
            pos += total;
        }
        self.index.flush()
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

    fn maybe_index(
        &mut self,
        header: &BatchHeader,
        pos: u64,
        total: u64,
        interval: u32,
    ) -> Result<(), LogError> {
        if self.bytes_since_last_index_entry >= u64::from(interval) {
            self.index.append(header.last_offset(), pos)?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += total;
        Ok(())
    }

    /// The header of the batch at `pos`, or None at the end (or a header that does not fit).
    pub fn read_header(&self, pos: u64) -> Result<Option<BatchHeader>, LogError> {
        if pos + RECORD_BATCH_OVERHEAD as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(at(&self.path))?;
        let header = BatchHeader::parse(&buf);
        Ok(header.filter(|h| h.batch_length >= 0 && pos + h.total_size() as u64 <= self.size))
    }

    /// Appends whole batches (offsets already assigned) at the end of the file.
    pub fn append(
        &mut self,
        bytes: &[u8],
        headers: &[BatchHeader],
        index_interval: u32,
    ) -> Result<(), LogError> {
        self.file
            .write_all_at(bytes, self.size)
            .map_err(at(&self.path))?;
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
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(at(&self.path))?;
        Ok(buf)
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
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

    pub fn flush(&mut self) -> Result<(), LogError> {
        self.file.sync_data().map_err(at(&self.path))?;
        self.index.flush()
    }

    /// Hands the buffered index entries to the OS, without fsync.
    pub fn write_out_index(&mut self) -> Result<(), LogError> {
        self.index.write_out()
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) -> Result<(), LogError> {
        for p in [self.path.as_path(), self.index.path()] {
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
        let mut seg = LogSegment::create(dir.path(), 50).unwrap();
        let mut next: i64 = 50;
        for i in 0..30 {
            let mut b = batch(2, i).to_vec();
            b[0..8].copy_from_slice(&next.to_be_bytes());
            let h = parse_record_set(&b, 1 << 20).unwrap();
            seg.append(&b, &h, 300).unwrap();
            next += 2;
        }
        seg.flush().unwrap();
        let entries = seg.index.len();
        assert!(entries > 5);
        drop(seg);
        let seg = LogSegment::open(dir.path(), 50, false, Some(next), 300).unwrap();
        assert_eq!(seg.index.len(), entries, "loaded, not rebuilt");
        assert_eq!(seg.next_offset(), next);
        assert!(seg.index.lookup(105) > 0, "lookup starts near the target");
        let (pos, h) = seg.find_batch(105).unwrap().unwrap();
        assert_eq!((h.base_offset, h.last_offset()), (104, 105));
        assert_eq!(pos, 27 * h.total_size() as u64);
        assert!(seg.find_batch(next).unwrap().is_none());
        // Without the next segment's base the end is found from the last index entry.
        let seg = LogSegment::open(dir.path(), 50, false, None, 300).unwrap();
        assert_eq!(seg.next_offset(), next);
    }
}
