//! Replicas hosted by this broker: one `Partition` per topic-partition, each owning its log,
//! its leader epoch and its high watermark; `ReplicaManager` opens and closes them as the
//! metadata image says.
//!
//! Single node for now: this broker leads every partition and the ISR is itself, so the high
//! watermark follows the log end offset. Replication (followers fetching, ISR shrink/expand,
//! acks=all waiting on the ISR) fills in `Partition` without changing its callers.

pub mod log_cleaner;
pub mod log_flusher;
pub mod manager;
pub mod partition;
pub mod replica_fetcher;
pub mod storage_errors;

pub use manager::ReplicaManager;
pub use partition::{
    LeaderAppend, Partition, PartitionCheckpoint, PartitionError, PartitionRead, ReadBound,
};
