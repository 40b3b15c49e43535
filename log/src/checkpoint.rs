//! Kafka's offset checkpoint files, one per log directory: `recovery-point-offset-checkpoint`
//! (offset up to which each partition's log is fsynced), `replication-offset-checkpoint`
//! (high watermarks) and `log-start-offset-checkpoint`. Text, as Kafka's
//! `OffsetCheckpointFile` writes it:
//!
//! ```text
//! 0                      <- version
//! 2                      <- number of entries
//! orders 0 1234          <- topic, partition, offset
//! orders 1 99
//! ```
//!
//! Written to `<name>.tmp`, fsynced, renamed over the file and the directory fsynced, so a
//! crash leaves either the old or the new file. Reading refuses anything malformed (the
//! caller decides what a lost checkpoint costs; for the recovery point it is a full scan).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::error::{at, LogError};

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";

const VERSION: i32 = 0;

/// (topic, partition) -> offset.
pub type Offsets = BTreeMap<(String, i32), i64>;

/// The file's text for `entries`, in Kafka's format.
pub fn format_checkpoint(entries: &Offsets) -> String {
    let mut out = format!("{VERSION}\n{}\n", entries.len());
    for ((topic, partition), offset) in entries {
        out.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    out
}

/// Parses a checkpoint's text; errors say which line is wrong.
pub fn parse_checkpoint(text: &str) -> Result<Offsets, String> {
    let mut lines = text.lines();
    // An empty file holds no entries, as Kafka reads it (Kafka creates checkpoints empty).
    let Some(version) = lines.next().map(str::trim) else {
        return Ok(Offsets::new());
    };
    if version != VERSION.to_string() {
        return Err(format!("unsupported version {version:?}"));
    }
    let count: usize = lines
        .next()
        .ok_or("no entry count")?
        .trim()
        .parse()
        .map_err(|e| format!("bad entry count: {e}"))?;
    let mut entries = Offsets::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // Topic names cannot hold spaces; split from the right all the same.
        let mut parts = line.rsplitn(3, ' ');
        let (Some(offset), Some(partition), Some(topic)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("line {}: expected `topic partition offset`", i + 3));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|e| format!("line {}: bad partition: {e}", i + 3))?;
        let offset: i64 = offset
            .parse()
            .map_err(|e| format!("line {}: bad offset: {e}", i + 3))?;
        if topic.is_empty() {
            return Err(format!("line {}: empty topic", i + 3));
        }
        entries.insert((topic.to_string(), partition), offset);
    }
    if entries.len() != count {
        return Err(format!(
            "{} entries but the header says {count}",
            entries.len()
        ));
    }
    Ok(entries)
}

/// Reads a checkpoint file: empty if it does not exist, `CorruptCheckpoint` if malformed.
pub fn read_checkpoint(path: &Path) -> Result<Offsets, LogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(LogError::CorruptCheckpoint {
                path: path.to_path_buf(),
                reason: "not UTF-8".into(),
            })
        }
        Err(e) => return Err(at(path)(e)),
    };
    parse_checkpoint(&text).map_err(|reason| LogError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    })
}

/// Writes a checkpoint file atomically (tmp file, fsync, rename, fsync of the directory).
pub fn write_checkpoint(path: &Path, entries: &Offsets) -> Result<(), LogError> {
    write_file_atomically(path, format_checkpoint(entries).as_bytes())
}

/// Replaces `path` with `bytes` so that a crash leaves either the old file or the new one,
/// whole and on disk: written to `<path>.tmp`, fsynced, renamed over `path`, and the
/// directory fsynced so that the rename itself survives.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp).map_err(at(&tmp))?;
        file.write_all(bytes).map_err(at(&tmp))?;
        file.sync_all().map_err(at(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(at(path))?;
    if let Some(dir) = path.parent() {
        crate::durable::sync_dir(dir).map_err(at(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_exact_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        assert!(
            read_checkpoint(&path).unwrap().is_empty(),
            "missing = empty"
        );
        let mut entries = Offsets::new();
        entries.insert(("orders".into(), 1), 99);
        entries.insert(("orders".into(), 0), 1234);
        entries.insert(("__consumer_offsets".into(), 17), 0);
        write_checkpoint(&path, &entries).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n3\n__consumer_offsets 17 0\norders 0 1234\norders 1 99\n"
        );
        assert!(!dir
            .path()
            .join("recovery-point-offset-checkpoint.tmp")
            .exists());
        assert_eq!(read_checkpoint(&path).unwrap(), entries);
        write_checkpoint(&path, &Offsets::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n0\n");
        assert!(read_checkpoint(&path).unwrap().is_empty());
    }

    #[test]
    fn reads_files_written_by_kafka_and_refuses_malformed_ones() {
        // As a Kafka 3.x broker writes it.
        let kafka = "0\n2\nmy-topic 0 42\nmy.other_topic 12 9000000000\n";
        let parsed = parse_checkpoint(kafka).unwrap();
        assert_eq!(parsed[&("my-topic".to_string(), 0)], 42);
        assert_eq!(parsed[&("my.other_topic".to_string(), 12)], 9_000_000_000);
        // Kafka creates a checkpoint file empty before it first writes it, and reads an
        // empty one as no entries.
        assert!(parse_checkpoint("").unwrap().is_empty());
        for (bad, why) in [
            ("1\n0\n", "version"),
            ("0\nx\n", "entry count"),
            ("0\n2\nt 0 1\n", "header says 2"),
            ("0\n1\nt 0\n", "expected"),
            ("0\n1\nt x 1\n", "partition"),
            ("0\n1\nt 0 y\n", "offset"),
        ] {
            let e = parse_checkpoint(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_START_OFFSET_CHECKPOINT);
        std::fs::write(&path, [0xff, 0xfe, 0]).unwrap();
        assert!(matches!(
            read_checkpoint(&path),
            Err(LogError::CorruptCheckpoint { .. })
        ));
    }
}
