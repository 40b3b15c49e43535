//! LeaderEpochFileCache: the start offset of every leader epoch of this partition, kept in
//! `leader-epoch-checkpoint` in Kafka's text format ("0", the entry count, then one
//! "epoch start_offset" line per epoch). It answers OffsetForLeaderEpoch, which consumers
//! use to detect truncation and followers use to truncate before fetching.

use std::path::{Path, PathBuf};

use tracing::warn;

use crate::error::LogError;

pub const FILE_NAME: &str = "leader-epoch-checkpoint";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub leader_epoch: i32,
    pub end_offset: i64,
}

impl EpochEndOffset {
    pub const UNDEFINED: EpochEndOffset = EpochEndOffset {
        leader_epoch: -1,
        end_offset: -1,
    };
}

pub struct LeaderEpochFileCache {
    path: PathBuf,
    /// (epoch, start offset), both increasing.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochFileCache {
    /// Loads the checkpoint in `dir`; a missing or unreadable one starts empty (Kafka
    /// rebuilds epochs from the batches as it appends; a consumer then sees -1 epochs).
    pub fn load(dir: &Path) -> LeaderEpochFileCache {
        let path = dir.join(FILE_NAME);
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).unwrap_or_else(|| {
                warn!(file = %path.display(), "unreadable leader epoch checkpoint; starting empty");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        LeaderEpochFileCache { path, entries }
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Records that `epoch` starts at `start_offset`, as Kafka's `assign`: nothing to do if
    /// it is the latest epoch already starting at or before that offset; otherwise entries
    /// that would no longer be monotonic (epoch >= `epoch` or start >= `start_offset`) are
    /// dropped first. Negative epochs or offsets are ignored (batches of old clients).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        if let Some(&(latest, latest_start)) = self.entries.last() {
            if latest == epoch && latest_start <= start_offset {
                return Ok(());
            }
        }
        let (kept, removed): (Vec<_>, Vec<_>) = self
            .entries
            .iter()
            .partition(|&&(e, start)| e < epoch && start < start_offset);
        self.entries = kept;
        // As Kafka: an epoch that began at the same offset and holds nothing is replaced
        // quietly (a leader elected again before writing); anything else is worth a warning.
        if removed.len() > 1 || removed.first().is_some_and(|&(_, s)| s != start_offset) {
            warn!(file = %self.path.display(), epoch, start_offset, removed = ?removed,
                "new leader epoch entry truncated conflicting entries");
        }
        self.entries.push((epoch, start_offset));
        self.write()
    }

    /// Drops entries starting past `offset` (the log was truncated there). The latest epoch
    /// starting exactly at `offset` stays: it only says that the next record starts that
    /// epoch, which is true of an empty tail, and keeping it spares every partition of a
    /// broker two checkpoint rewrites (with fsync) at each start (Kafka drops it and the
    /// leader re-adds it at once).
    pub fn truncate_from_end(&mut self, offset: i64) -> Result<(), LogError> {
        let before = self.entries.len();
        let latest_at_end = self.entries.last().copied().filter(|&(_, s)| s == offset);
        self.entries.retain(|&(_, start)| start < offset);
        self.entries.extend(latest_at_end);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    /// Drops every entry starting at or after `offset`, the latest too (a follower whose
    /// newest epochs hold no records asks its leader about the epoch its records are in).
    pub fn remove_from(&mut self, offset: i64) -> Result<(), LogError> {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < offset);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    /// The log now starts at `offset` (retention, DeleteRecords): as Kafka's
    /// `truncateFromStart`, entries starting at or below it are dropped except the newest of
    /// them, which is kept as starting at `offset`.
    pub fn truncate_from_start(&mut self, offset: i64) -> Result<(), LogError> {
        let below = self
            .entries
            .iter()
            .take_while(|&&(_, start)| start <= offset)
            .count();
        let Some(&(epoch, start)) = below.checked_sub(1).and_then(|i| self.entries.get(i)) else {
            return Ok(());
        };
        if below == 1 && start == offset {
            return Ok(());
        }
        self.entries.drain(..below);
        self.entries.insert(0, (epoch, offset));
        self.write()
    }

    /// Kafka's `endOffsetFor`.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> EpochEndOffset {
        if requested == -1 {
            return EpochEndOffset::UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return EpochEndOffset {
                leader_epoch: requested,
                end_offset: log_end_offset,
            };
        }
        let Some(&(_, higher_start)) = self.entries.iter().find(|(e, _)| *e > requested) else {
            return EpochEndOffset::UNDEFINED;
        };
        match self.entries.iter().rev().find(|(e, _)| *e <= requested) {
            None => EpochEndOffset {
                leader_epoch: requested,
                end_offset: higher_start,
            },
            Some(&(floor, _)) => EpochEndOffset {
                leader_epoch: floor,
                end_offset: higher_start,
            },
        }
    }

    fn write(&self) -> Result<(), LogError> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        crate::checkpoint::write_file_atomically(&self.path, text.as_bytes())
    }
}

fn parse(text: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = text.lines();
    // An empty file is an empty cache, as Kafka reads it (Kafka creates the file empty).
    let Some(version) = lines.next() else {
        return Some(Vec::new());
    };
    if version.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let epoch = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        entries.push((epoch, start));
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_from_start_keeps_the_epoch_holding_the_new_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochFileCache::load(dir.path());
        c.assign(1, 10).unwrap();
        c.assign(2, 20).unwrap();
        c.assign(4, 40).unwrap();
        c.truncate_from_start(5).unwrap();
        assert_eq!(c.entries, vec![(1, 10), (2, 20), (4, 40)]);
        c.truncate_from_start(25).unwrap();
        assert_eq!(c.entries, vec![(2, 25), (4, 40)]);
        c.truncate_from_start(40).unwrap();
        assert_eq!(c.entries, vec![(4, 40)]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "0\n1\n4 40\n"
        );
    }

    #[test]
    fn end_offsets_follow_kafka_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochFileCache::load(dir.path());
        assert_eq!(c.end_offset_for(0, 0), EpochEndOffset::UNDEFINED);
        c.assign(1, 10).unwrap();
        c.assign(3, 50).unwrap();
        c.assign(3, 70).unwrap(); // latest epoch, later offset: nothing to do
        let c = LeaderEpochFileCache::load(dir.path());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "0\n2\n1 10\n3 50\n"
        );
        let e = |ep, off| EpochEndOffset {
            leader_epoch: ep,
            end_offset: off,
        };
        assert_eq!(c.end_offset_for(3, 99), e(3, 99), "latest: log end");
        assert_eq!(c.end_offset_for(1, 99), e(1, 50));
        assert_eq!(
            c.end_offset_for(2, 99),
            e(1, 50),
            "unknown middle epoch: floor"
        );
        assert_eq!(c.end_offset_for(0, 99), e(0, 10), "older than all");
        assert_eq!(
            c.end_offset_for(4, 99),
            EpochEndOffset::UNDEFINED,
            "newer than all"
        );
        assert_eq!(c.end_offset_for(-1, 99), EpochEndOffset::UNDEFINED);
    }

    #[test]
    fn assign_drops_non_monotonic_entries_and_truncation_drops_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochFileCache::load(dir.path());
        c.assign(-1, 0).unwrap();
        assert_eq!(c.latest_epoch(), None, "negative epochs are ignored");
        c.assign(1, 10).unwrap();
        c.assign(3, 50).unwrap();
        c.assign(5, 80).unwrap();
        // An older epoch at a later offset (a follower catching up): newer epochs go.
        c.assign(2, 60).unwrap();
        assert_eq!(c.entries, vec![(1, 10), (2, 60)]);
        // The latest epoch restated at an earlier offset replaces it.
        c.assign(2, 40).unwrap();
        assert_eq!(c.entries, vec![(1, 10), (2, 40)]);
        // The latest epoch starting exactly at the new end stays (it starts the empty tail)...
        c.truncate_from_end(40).unwrap();
        assert_eq!(c.entries, vec![(1, 10), (2, 40)]);
        // ... entries past it go.
        c.truncate_from_end(39).unwrap();
        assert_eq!(c.entries, vec![(1, 10)]);
        let c = LeaderEpochFileCache::load(dir.path());
        assert_eq!(c.entries, vec![(1, 10)]);
    }

    #[test]
    fn an_epoch_restarted_at_the_same_offset_replaces_the_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "").unwrap(); // as Kafka creates it
        let mut c = LeaderEpochFileCache::load(dir.path());
        c.assign(1, 0).unwrap();
        c.assign(2, 0).unwrap(); // elected again before writing: no conflict to report
        assert_eq!(c.entries, vec![(2, 0)]);
    }

    #[test]
    fn a_damaged_checkpoint_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["", "1\n1\n0 0\n", "0\n2\n0 0\n", "0\nx\n", "0\n1\n0\n"] {
            std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
            assert_eq!(
                LeaderEpochFileCache::load(dir.path()).latest_epoch(),
                None,
                "{text:?}"
            );
        }
    }
}
