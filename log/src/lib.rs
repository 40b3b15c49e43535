//! gregor-log: one partition's log on disk.
//!
//! `Log` (log.rs) is the entry point: segments of RecordBatch v2 bytes stored as clients
//! sent them in Kafka's on-disk format (`segment`, with its `.index` and `.timeindex`,
//! `index`), crash recovery from the recovery point (`checkpoint` holds Kafka's checkpoint
//! files that the broker keeps per log directory),
//! the leader epoch history (`epoch_cache`), idempotent and transactional producer state
//! (`producer_state`), transaction markers (`end_txn_marker`) and the aborted transactions
//! of each segment (`txn_index`). `batch` parses and validates batch headers without touching records.
//! `cleaner` compacts logs (with `offset_map`, and `records` for record-level access).
//! It knows nothing of the network or of ZooKeeper.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod durable;
pub mod end_txn_marker;
pub mod epoch_cache;
pub mod error;
pub mod index;
#[allow(clippy::module_inception)]
pub mod log;
pub mod offset_map;
pub mod open_files;
pub mod producer_state;
pub mod records;
pub mod segment;
pub mod txn_index;

pub use batch::{parse_record_set, set_log_append_time, BatchHeader, RECORD_BATCH_OVERHEAD};
pub use config::LogConfig;
pub use end_txn_marker::EndTxnMarker;
pub use epoch_cache::EpochEndOffset;
pub use error::LogError;
pub use log::{remove_deleted_files, AppendInfo, FetchSlice, FlushJob, Log, LogOpenOptions};
pub use producer_state::{ActiveProducer, AppendOrigin, ProducerError};
pub use txn_index::AbortedTxn;
