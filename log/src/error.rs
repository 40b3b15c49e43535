//! Errors of the log. Each says what went wrong in terms the broker can map to a Kafka
//! error code (see the broker's `PartitionError::error_code`).

use std::path::PathBuf;

use thiserror::Error;

pub use crate::producer_state::ProducerError;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("I/O error on {path}: {source}")]
    IoAt {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt record batch at byte {position}: {reason}")]
    CorruptBatch { position: usize, reason: String },
    #[error("record batch magic {0} is not supported (only magic 2)")]
    UnsupportedMagic(i8),
    #[error("record batch of {size} bytes exceeds the maximum of {max}")]
    BatchTooLarge { size: usize, max: usize },
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("corrupt checkpoint file {path}: {reason}")]
    CorruptCheckpoint { path: PathBuf, reason: String },
    /// A record the topic cannot take (a record without a key in a compacted topic).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// A follower was sent batches that do not continue its log (Kafka's
    /// `UnexpectedAppendOffsetException`).
    #[error("batches from offset {first_offset} do not continue the log ending at {log_end}")]
    UnexpectedAppendOffset { first_offset: i64, log_end: i64 },
}

impl LogError {
    /// The file system is full (ENOSPC) or the quota is reached (EDQUOT).
    pub fn is_out_of_space(&self) -> bool {
        let io = match self {
            LogError::Io(io) | LogError::IoAt { source: io, .. } => io,
            _ => return false,
        };
        matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }
}

/// Attaches a path to an I/O error.
pub(crate) fn at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::IoAt {
        path: path.to_path_buf(),
        source,
    }
}
