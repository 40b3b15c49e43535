//! Replicas hosted by this broker: one `Partition` per topic-partition, each owning its log,
//! its leader epoch and its high watermark; `ReplicaManager` opens and closes them as the
//! metadata image and the controller's requests say. Followers fetch from their leaders
//! (`replica_fetcher`); leaders send ISR changes to the controller (`alter_partition`).

pub mod alter_partition;
pub mod log_cleaner;
pub mod log_dirs;
pub mod log_flusher;
pub mod manager;
pub mod partition;
pub mod replica_fetcher;
pub mod replication_quota;
pub mod storage_errors;

pub use manager::ReplicaManager;
pub use partition::{
    LeaderAppend, Partition, PartitionCheckpoint, PartitionError, PartitionRead, PartitionStats,
    ReadBound,
};
