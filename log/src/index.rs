//! Kafka's two per-segment indexes, in Kafka's on-disk format (big-endian):
//!
//! - `OffsetIndex` (`.index`): 8-byte entries, 4-byte offset relative to the segment's base
//!   offset + 4-byte byte position of the batch whose *last* offset that is; one entry per
//!   `index.interval.bytes` of log. A lookup finds the last entry at or before an offset; the
//!   segment then scans a few batch headers from there.
//! - `TimeIndex` (`.timeindex`): 12-byte entries, 8-byte timestamp + 4-byte relative offset:
//!   the largest timestamp seen so far in the segment and the last offset of the batch that
//!   holds it. Added with the offset entries when the timestamp grew; timestamps strictly
//!   increase, offsets never decrease.
//!
//! As in Kafka, a new index file is preallocated to `segment.index.bytes` (rounded down to a
//! whole entry) and trimmed to its entries on roll and on close; an index is "full" when its
//! preallocated room is used up, which makes the log roll. A file left untrimmed by a crash has
//! a zero-filled tail: on load an all-zero entry after the first ends the data (Kafka's rule).
//!
//! Entries are kept in memory and written positionally through a small buffer (handed to the
//! OS on flush, roll and close); no memory mapping. Loading checks every entry; a missing or
//! inconsistent file is reported as `None` and the segment rebuilds it from the log.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{at, LogError};

pub const ENTRY_SIZE: usize = 8;
pub const TIME_ENTRY_SIZE: usize = 12;

/// An index file: `written` entries on disk, `pending` bytes still to write after them.
/// The file is opened only to write (flush, roll, close), never kept open: a broker with
/// thousands of partitions then holds one descriptor per segment (its `.log`), as Kafka.
struct IndexFile {
    path: PathBuf,
    entry_size: usize,
    written: usize,
    pending: Vec<u8>,
    /// The file's length as last set or found (to skip needless truncations).
    len_on_disk: u64,
}

impl IndexFile {
    /// Creates (truncating) the file, preallocated to `max_bytes` rounded down to an entry.
    fn create(path: &Path, entry_size: usize, max_bytes: u32) -> Result<IndexFile, LogError> {
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(at(path))?;
        let mut f = IndexFile {
            path: path.to_path_buf(),
            entry_size,
            written: 0,
            pending: Vec::new(),
            len_on_disk: 0,
        };
        f.preallocate(max_bytes)?;
        Ok(f)
    }

    /// Opens an existing file whose first `entries` entries are valid.
    fn open(path: &Path, entry_size: usize, entries: usize) -> Result<IndexFile, LogError> {
        let len_on_disk = std::fs::metadata(path).map_err(at(path))?.len();
        Ok(IndexFile {
            path: path.to_path_buf(),
            entry_size,
            written: entries,
            pending: Vec::new(),
            len_on_disk,
        })
    }

    fn writable(&self) -> Result<File, LogError> {
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(at(&self.path))
    }

    fn preallocate(&mut self, max_bytes: u32) -> Result<(), LogError> {
        let len = ((max_bytes as usize / self.entry_size) * self.entry_size) as u64;
        let used = ((self.written * self.entry_size) + self.pending.len()) as u64;
        if len > used && len != self.len_on_disk {
            self.writable()?.set_len(len).map_err(at(&self.path))?;
            self.len_on_disk = len;
        }
        Ok(())
    }

    fn push(&mut self, entry: &[u8]) {
        self.pending.extend_from_slice(entry);
    }

    fn write_out(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let at_pos = (self.written * self.entry_size) as u64;
        self.writable()?
            .write_all_at(&self.pending, at_pos)
            .map_err(at(&self.path))?;
        self.written += self.pending.len() / self.entry_size;
        self.pending.clear();
        self.len_on_disk = self
            .len_on_disk
            .max((self.written * self.entry_size) as u64);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.write_out()?;
        self.writable()?.sync_data().map_err(at(&self.path))
    }

    /// Writes out and cuts the preallocated tail: the file holds exactly its entries.
    fn trim(&mut self) -> Result<(), LogError> {
        self.write_out()?;
        let len = (self.written * self.entry_size) as u64;
        if len != self.len_on_disk {
            self.writable()?.set_len(len).map_err(at(&self.path))?;
            self.len_on_disk = len;
        }
        Ok(())
    }
}

/// Reads an index file; None if missing or not a whole number of entries.
fn read_entries(path: &Path, entry_size: usize) -> Result<Option<Vec<u8>>, LogError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(path)(e)),
    };
    if bytes.len() % entry_size != 0 {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The bytes from `from` on are all zero (an untrimmed, preallocated tail).
fn zero_tail(bytes: &[u8], from: usize) -> bool {
    bytes.get(from..).is_some_and(|t| t.iter().all(|&b| b == 0))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    i64::from_be_bytes(x)
}

pub struct OffsetIndex {
    base_offset: i64,
    /// (relative offset, position), both increasing.
    entries: Vec<(u32, u32)>,
    max_entries: usize,
    file: IndexFile,
}

impl OffsetIndex {
    /// Creates an empty index file (truncating any existing one), preallocated to
    /// `max_index_bytes`.
    pub fn create(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
    ) -> Result<OffsetIndex, LogError> {
        Ok(OffsetIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: max_index_bytes as usize / ENTRY_SIZE,
            file: IndexFile::create(path, ENTRY_SIZE, max_index_bytes)?,
        })
    }

    /// Loads an index, or None if it is missing or inconsistent with a segment of
    /// `segment_size` bytes whose offsets end before `next_offset` when that is known (then
    /// the caller rebuilds it). A zero-filled tail (preallocated, not trimmed) is ignored.
    pub fn load(
        path: &Path,
        base_offset: i64,
        segment_size: u64,
        next_offset: Option<i64>,
        max_index_bytes: u32,
    ) -> Result<Option<OffsetIndex>, LogError> {
        let Some(bytes) = read_entries(path, ENTRY_SIZE)? else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let rel = be_u32(&chunk[0..4]);
            let pos = be_u32(&chunk[4..8]);
            // Kafka's rule: an entry at the base offset after the first starts the
            // preallocated space, which must be all zeros.
            if rel == 0 && !entries.is_empty() {
                if !zero_tail(&bytes, entries.len() * ENTRY_SIZE) {
                    return Ok(None);
                }
                break;
            }
            if let Some(&(last_rel, last_pos)) = entries.last() {
                if rel <= last_rel || pos <= last_pos {
                    return Ok(None);
                }
            }
            if u64::from(pos) >= segment_size.max(1) {
                return Ok(None);
            }
            if next_offset.is_some_and(|n| base_offset + i64::from(rel) >= n) {
                return Ok(None);
            }
            entries.push((rel, pos));
        }
        let file = IndexFile::open(path, ENTRY_SIZE, entries.len())?;
        Ok(Some(OffsetIndex {
            base_offset,
            entries,
            max_entries: max_index_bytes as usize / ENTRY_SIZE,
            file,
        }))
    }

    /// Records that the batch starting at `position` ends at `offset` (its last offset).
    pub fn append(&mut self, offset: i64, position: u64) -> Result<(), LogError> {
        let rel = (offset - self.base_offset) as u32;
        let pos = position as u32;
        if let Some(&(last_rel, last_pos)) = self.entries.last() {
            if rel <= last_rel || pos <= last_pos {
                return Ok(());
            }
        }
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&pos.to_be_bytes());
        self.file.push(&entry);
        self.entries.push((rel, pos));
        Ok(())
    }

    /// Position of the last indexed batch whose offset is <= `offset` (0 if none).
    pub fn lookup(&self, offset: i64) -> u64 {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return 0;
        }
        let idx = self.entries.partition_point(|&(r, _)| i64::from(r) <= rel);
        if idx == 0 {
            0
        } else {
            u64::from(self.entries[idx - 1].1)
        }
    }

    /// The last entry as (absolute offset, position).
    pub fn last_entry(&self) -> Option<(i64, u64)> {
        self.entries
            .last()
            .map(|&(r, p)| (self.base_offset + i64::from(r), u64::from(p)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// No preallocated room left: the segment must roll before the next append.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Hands the buffered entries to the OS (no fsync).
    pub fn write_out(&mut self) -> Result<(), LogError> {
        self.file.write_out()
    }

    /// Writes out the buffered entries and fsyncs the file.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.file.flush()
    }

    /// Cuts the file to its entries (roll, close).
    pub fn trim(&mut self) -> Result<(), LogError> {
        self.file.trim()
    }

    /// Extends the file to `max_index_bytes` again (a segment that becomes active on open).
    pub fn preallocate(&mut self, max_index_bytes: u32) -> Result<(), LogError> {
        self.file.write_out()?;
        self.max_entries = max_index_bytes as usize / ENTRY_SIZE;
        self.file.preallocate(max_index_bytes)
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

pub struct TimeIndex {
    base_offset: i64,
    /// (timestamp, relative offset): timestamps increasing, offsets non-decreasing.
    entries: Vec<(i64, u32)>,
    max_entries: usize,
    file: IndexFile,
}

impl TimeIndex {
    pub fn create(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
    ) -> Result<TimeIndex, LogError> {
        Ok(TimeIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: max_index_bytes as usize / TIME_ENTRY_SIZE,
            file: IndexFile::create(path, TIME_ENTRY_SIZE, max_index_bytes)?,
        })
    }

    /// Loads a time index, or None if missing or inconsistent (offsets outside
    /// [base, next_offset) when that is known, timestamps not increasing, offsets decreasing).
    pub fn load(
        path: &Path,
        base_offset: i64,
        next_offset: Option<i64>,
        max_index_bytes: u32,
    ) -> Result<Option<TimeIndex>, LogError> {
        let Some(bytes) = read_entries(path, TIME_ENTRY_SIZE)? else {
            return Ok(None);
        };
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(bytes.len() / TIME_ENTRY_SIZE);
        for chunk in bytes.chunks_exact(TIME_ENTRY_SIZE) {
            let ts = be_i64(&chunk[0..8]);
            let rel = be_u32(&chunk[8..12]);
            // Kafka's rule: an entry at the base offset after the first starts the
            // preallocated space, which must be all zeros.
            if rel == 0 && !entries.is_empty() {
                if !zero_tail(&bytes, entries.len() * TIME_ENTRY_SIZE) {
                    return Ok(None);
                }
                break;
            }
            if ts < 0 {
                return Ok(None);
            }
            if let Some(&(last_ts, last_rel)) = entries.last() {
                if ts <= last_ts || rel < last_rel {
                    return Ok(None);
                }
            }
            if next_offset.is_some_and(|n| base_offset + i64::from(rel) >= n) {
                return Ok(None);
            }
            entries.push((ts, rel));
        }
        let file = IndexFile::open(path, TIME_ENTRY_SIZE, entries.len())?;
        Ok(Some(TimeIndex {
            base_offset,
            entries,
            max_entries: max_index_bytes as usize / TIME_ENTRY_SIZE,
            file,
        }))
    }

    /// Kafka's `maybeAppend`: records (timestamp, offset) if the timestamp is larger than the
    /// last entry's (and the offset not smaller). Returns whether an entry was added.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> bool {
        let rel = offset - self.base_offset;
        if timestamp < 0 || !(0..=i64::from(u32::MAX)).contains(&rel) {
            return false;
        }
        let rel = rel as u32;
        if let Some(&(last_ts, last_rel)) = self.entries.last() {
            if timestamp <= last_ts || rel < last_rel {
                return false;
            }
        }
        let mut entry = [0u8; TIME_ENTRY_SIZE];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.push(&entry);
        self.entries.push((timestamp, rel));
        true
    }

    /// Kafka's `lookup`: the last entry with timestamp <= `timestamp`, as (timestamp,
    /// absolute offset); (-1, base offset) if there is none.
    pub fn lookup(&self, timestamp: i64) -> (i64, i64) {
        let idx = self.entries.partition_point(|&(t, _)| t <= timestamp);
        if idx == 0 {
            (-1, self.base_offset)
        } else {
            let (t, r) = self.entries[idx - 1];
            (t, self.base_offset + i64::from(r))
        }
    }

    /// The last entry as (timestamp, absolute offset).
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + i64::from(r)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn write_out(&mut self) -> Result<(), LogError> {
        self.file.write_out()
    }

    pub fn flush(&mut self) -> Result<(), LogError> {
        self.file.flush()
    }

    pub fn trim(&mut self) -> Result<(), LogError> {
        self.file.trim()
    }

    pub fn preallocate(&mut self, max_index_bytes: u32) -> Result<(), LogError> {
        self.file.write_out()?;
        self.max_entries = max_index_bytes as usize / TIME_ENTRY_SIZE;
        self.file.preallocate(max_index_bytes)
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_floor_entry_and_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, 100, 1024).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            1024,
            "preallocated"
        );
        idx.append(104, 4096).unwrap();
        idx.append(110, 8200).unwrap();
        idx.append(109, 9000).unwrap(); // not increasing: ignored
        assert_eq!(idx.lookup(99), 0);
        assert_eq!(idx.lookup(103), 0);
        assert_eq!(idx.lookup(104), 4096);
        assert_eq!(idx.lookup(109), 4096);
        assert_eq!(idx.lookup(500), 8200);
        idx.flush().unwrap();
        // Untrimmed (as after a crash): the zero-filled tail is not data.
        let reloaded = OffsetIndex::load(&path, 100, 10_000, None, 1024)
            .unwrap()
            .unwrap();
        assert_eq!(reloaded.len(), 2);
        assert_eq!(reloaded.lookup(111), 8200);
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16, "trimmed");
        let reloaded = OffsetIndex::load(&path, 100, 10_000, Some(111), 1024)
            .unwrap()
            .unwrap();
        assert_eq!(reloaded.last_entry(), Some((110, 8200)));
        // Inconsistent with a shorter segment or fewer offsets: rebuilt by the caller.
        assert!(OffsetIndex::load(&path, 100, 5000, None, 1024)
            .unwrap()
            .is_none());
        assert!(OffsetIndex::load(&path, 100, 10_000, Some(110), 1024)
            .unwrap()
            .is_none());
        std::fs::write(&path, [0u8; 7]).unwrap();
        assert!(OffsetIndex::load(&path, 100, 10_000, None, 1024)
            .unwrap()
            .is_none());
    }

    #[test]
    fn offset_index_is_full_at_its_preallocated_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let mut idx = OffsetIndex::create(&path, 0, 20).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16, "rounded down");
        idx.append(1, 10).unwrap();
        assert!(!idx.is_full());
        idx.append(2, 20).unwrap();
        assert!(idx.is_full());
        idx.trim().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes, [0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 20]);
    }

    #[test]
    fn time_index_keeps_kafkas_rules_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000050.timeindex");
        let mut idx = TimeIndex::create(&path, 50, 120).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 120);
        assert_eq!(idx.lookup(1000), (-1, 50));
        assert!(!idx.maybe_append(-1, 50), "no timestamp: not indexed");
        assert!(idx.maybe_append(1000, 52));
        assert!(!idx.maybe_append(1000, 55), "timestamp not larger");
        assert!(!idx.maybe_append(2000, 51), "offset smaller");
        assert!(idx.maybe_append(3000, 60));
        assert_eq!(idx.lookup(999), (-1, 50));
        assert_eq!(idx.lookup(1000), (1000, 52));
        assert_eq!(idx.lookup(2999), (1000, 52));
        assert_eq!(idx.lookup(i64::MAX), (3000, 60));
        idx.write_out().unwrap();
        let loaded = TimeIndex::load(&path, 50, None, 120).unwrap().unwrap();
        assert_eq!(loaded.last_entry(), Some((3000, 60)));
        idx.trim().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&1000i64.to_be_bytes());
        expected.extend_from_slice(&2u32.to_be_bytes());
        expected.extend_from_slice(&3000i64.to_be_bytes());
        expected.extend_from_slice(&10u32.to_be_bytes());
        assert_eq!(bytes, expected);
        assert!(TimeIndex::load(&path, 50, Some(60), 120).unwrap().is_none());
        let mut swapped = expected.clone();
        swapped[..8].copy_from_slice(&4000i64.to_be_bytes());
        std::fs::write(&path, &swapped).unwrap();
        assert!(TimeIndex::load(&path, 50, None, 120).unwrap().is_none());
        std::fs::write(&path, &expected[..13]).unwrap();
        assert!(TimeIndex::load(&path, 50, None, 120).unwrap().is_none());
    }
}
