//! TransactionIndex: a segment's `<base offset>.txnindex`, the aborted transactions whose
//! abort marker is in that segment (Kafka's file name and format), so that a
//! read_committed fetch can tell the consumer which records to drop.
//!
//! Entries of 34 bytes, big-endian: `version: int16 = 0, producer_id: int64,
//! first_offset: int64, last_offset: int64, last_stable_offset: int64`, in the order the
//! markers were appended. The file is created with the first entry, as Kafka's, and the
//! entries are kept in memory too (aborted transactions are few).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::error::{at, LogError};

const ENTRY_LEN: usize = 34;
const VERSION: i16 = 0;

pub fn txn_index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.txnindex")
}

/// One aborted transaction: its producer, its first offset, the offset of its abort
/// marker (`last_offset`), and the last stable offset once it was aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

pub struct TransactionIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Entries appended since the last flush.
    unflushed: bool,
}

impl TransactionIndex {
    /// Loads `path` if it exists. A torn last entry (a crash mid-write) is dropped; the
    /// replay of the log after recovery writes it again.
    pub fn load(path: &Path) -> Result<TransactionIndex, LogError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(at(path)(e)),
        };
        let whole = bytes.len() - bytes.len() % ENTRY_LEN;
        let mut entries = Vec::with_capacity(whole / ENTRY_LEN);
        for e in bytes[..whole].chunks_exact(ENTRY_LEN) {
            let i64_at = |at: usize| {
                let mut x = [0u8; 8];
                x.copy_from_slice(&e[at..at + 8]);
                i64::from_be_bytes(x)
            };
            entries.push(AbortedTxn {
                producer_id: i64_at(2),
                first_offset: i64_at(10),
                last_offset: i64_at(18),
                last_stable_offset: i64_at(26),
            });
        }
        let mut index = TransactionIndex {
            path: path.to_path_buf(),
            entries,
            unflushed: false,
        };
        if whole != bytes.len() {
            warn!(file = %path.display(), bytes = bytes.len(), "dropping a torn transaction index entry");
            index.rewrite()?;
        }
        Ok(index)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Appends an entry unless one at or past its marker is there already (the replay of a
    /// log whose index was written before a crash).
    pub fn append(&mut self, txn: AbortedTxn) -> Result<(), LogError> {
        if self
            .entries
            .last()
            .is_some_and(|last| last.last_offset >= txn.last_offset)
        {
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(at(&self.path))?;
        f.write_all(&encode(&txn)).map_err(at(&self.path))?;
        self.entries.push(txn);
        self.unflushed = true;
        Ok(())
    }

    /// Drops the entries whose marker is at or above `offset` (the log was cut there).
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let keep = self.entries.partition_point(|t| t.last_offset < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.rewrite()?;
        }
        Ok(())
    }

    /// Empties the index (its segment is being rebuilt).
    pub fn reset(&mut self) -> Result<(), LogError> {
        self.entries.clear();
        self.unflushed = false;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(at(&self.path)(e)),
            _ => Ok(()),
        }
    }

    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.unflushed {
            let f = std::fs::File::open(&self.path).map_err(at(&self.path))?;
            f.sync_data().map_err(at(&self.path))?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// Kafka's `collectAbortedTxns`: the entries overlapping [fetch_offset, upper_bound),
    /// pushed onto `out`; true once an entry shows no later segment can hold more (its
    /// last stable offset reaches `upper_bound`).
    pub fn collect(&self, fetch_offset: i64, upper_bound: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for t in &self.entries {
            if t.last_offset >= fetch_offset && t.first_offset < upper_bound {
                out.push(*t);
            }
            if t.last_stable_offset >= upper_bound {
                return true;
            }
        }
        false
    }

    fn rewrite(&mut self) -> Result<(), LogError> {
        if self.entries.is_empty() {
            return self.reset();
        }
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for t in &self.entries {
            bytes.extend_from_slice(&encode(t));
        }
        let tmp = self.path.with_extension("txnindex.tmp");
        std::fs::write(&tmp, &bytes).map_err(at(&tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(at(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(at(&self.path))?;
        self.unflushed = false;
        Ok(())
    }
}

fn encode(t: &AbortedTxn) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    b[0..2].copy_from_slice(&VERSION.to_be_bytes());
    b[2..10].copy_from_slice(&t.producer_id.to_be_bytes());
    b[10..18].copy_from_slice(&t.first_offset.to_be_bytes());
    b[18..26].copy_from_slice(&t.last_offset.to_be_bytes());
    b[26..34].copy_from_slice(&t.last_stable_offset.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entries_survive_a_reload_in_kafkas_layout_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(txn_index_file_name(100));
        let mut index = TransactionIndex::load(&path).unwrap();
        assert!(!path.exists(), "created with the first entry only");
        index.append(txn(7, 100, 105, 106)).unwrap();
        index.append(txn(8, 103, 110, 111)).unwrap();
        // A replayed marker is not written twice.
        index.append(txn(7, 100, 105, 106)).unwrap();
        index.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(&bytes[18..26], &105i64.to_be_bytes());

        let mut torn = bytes.clone();
        torn.extend_from_slice(&[0, 0, 1]);
        std::fs::write(&path, &torn).unwrap();
        let loaded = TransactionIndex::load(&path).unwrap();
        assert_eq!(
            loaded.entries(),
            &[txn(7, 100, 105, 106), txn(8, 103, 110, 111)]
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn collect_returns_what_overlaps_the_fetch_and_truncate_cuts_at_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(txn_index_file_name(0));
        let mut index = TransactionIndex::load(&path).unwrap();
        index.append(txn(1, 0, 4, 5)).unwrap();
        index.append(txn(2, 10, 20, 21)).unwrap();
        let mut out = Vec::new();
        assert!(!index.collect(5, 30, &mut out));
        assert_eq!(out, vec![txn(2, 10, 20, 21)]);
        out.clear();
        assert!(
            index.collect(0, 3, &mut out),
            "lso 5 >= upper bound 3: complete"
        );
        assert_eq!(out, vec![txn(1, 0, 4, 5)]);
        index.truncate_to(20).unwrap();
        assert_eq!(index.entries(), &[txn(1, 0, 4, 5)]);
        assert_eq!(std::fs::read(&path).unwrap().len(), 34);
        index.truncate_to(0).unwrap();
        assert!(!path.exists());
    }
}
