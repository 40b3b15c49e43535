//! Consumer groups: the group coordinator (classic protocol: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) and committed offsets, kept in the internal topic `__consumer_offsets` in
//! Kafka's record formats.
//!
//! - `records`: the key and value formats of `__consumer_offsets`.
//! - `classic`: one classic group's state machine, in memory only.
//! - `consumer` and `assignor`: KIP-848 consumer groups (ConsumerGroupHeartbeat) and their
//!   server-side assignors.
//! - `coordinator`: which groups this broker coordinates, loading them from the log, and
//!   every group API's logic; it writes to the log before answering.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod coordinator;
pub mod offsets_topic;
pub mod records;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
