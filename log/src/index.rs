//! OffsetIndex: Kafka's sparse `.index` file. Each 8-byte entry maps an offset (4 bytes,
//! relative to the segment's base offset) to the byte position (4 bytes) of the batch
//! holding it, one entry per `index.interval.bytes` of log. A lookup finds the last entry
//! at or before an offset; the segment then scans a few batch headers from there.
//!
//! Entries are kept in memory and appended to the file through a buffer (flushed with the
//! segment, on roll and on close; the active segment's index is rebuilt on every open, so
//! a lost buffer costs nothing); on open the file
//! is checked and, if it is missing or inconsistent, rebuilt from the log by the segment.
//! (Preallocation and memory mapping as Kafka does come with the log-format issue.)

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{at, LogError};

pub const ENTRY_SIZE: usize = 8;

pub struct OffsetIndex {
    path: PathBuf,
    base_offset: i64,
    /// (relative offset, position), both increasing.
    entries: Vec<(u32, u32)>,
    file: BufWriter<File>,
}

impl OffsetIndex {
    /// Creates an empty index file (truncating any existing one).
    pub fn create(path: &Path, base_offset: i64) -> Result<OffsetIndex, LogError> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(at(path))?;
        Ok(OffsetIndex {
            path: path.to_path_buf(),
            base_offset,
            entries: Vec::new(),
            file: BufWriter::new(file),
        })
    }

    /// Loads an index, or None if it is missing or inconsistent with a segment of
    /// `segment_size` bytes (then the caller rebuilds it).
    pub fn load(
        path: &Path,
        base_offset: i64,
        segment_size: u64,
    ) -> Result<Option<OffsetIndex>, LogError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(at(path)(e)),
        };
        if bytes.len() % ENTRY_SIZE != 0 {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            // Kafka preallocates and zero-fills; a zero entry after the first ends the data.
            if rel == 0 && pos == 0 && !entries.is_empty() {
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
            entries.push((rel, pos));
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(at(path))?;
        Ok(Some(OffsetIndex {
            path: path.to_path_buf(),
            base_offset,
            entries,
            file: BufWriter::new(file),
        }))
    }

    /// Records that `offset` lives in the batch starting at `position`.
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
        self.file.write_all(&entry).map_err(at(&self.path))?;
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

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hands the buffered entries to the OS (no fsync).
    pub fn write_out(&mut self) -> Result<(), LogError> {
        self.file.flush().map_err(at(&self.path))
    }

    /// Writes out the buffered entries and fsyncs the file.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.file.flush().map_err(at(&self.path))?;
        self.file.get_ref().sync_data().map_err(at(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_floor_entry_and_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, 100).unwrap();
        idx.append(104, 4096).unwrap();
        idx.append(110, 8200).unwrap();
        idx.append(109, 9000).unwrap(); // not increasing: ignored
        assert_eq!(idx.lookup(99), 0);
        assert_eq!(idx.lookup(103), 0);
        assert_eq!(idx.lookup(104), 4096);
        assert_eq!(idx.lookup(109), 4096);
        assert_eq!(idx.lookup(500), 8200);
        idx.flush().unwrap();
        let reloaded = OffsetIndex::load(&path, 100, 10_000).unwrap().unwrap();
        assert_eq!(reloaded.len(), 2);
        assert_eq!(reloaded.lookup(111), 8200);
        // Inconsistent with a shorter segment: rebuilt by the caller.
        assert!(OffsetIndex::load(&path, 100, 5000).unwrap().is_none());
        std::fs::write(&path, [0u8; 7]).unwrap();
        assert!(OffsetIndex::load(&path, 100, 10_000).unwrap().is_none());
    }
}
