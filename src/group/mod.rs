//! Consumer groups: the group coordinator (classic protocol: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup; KIP-848: ConsumerGroupHeartbeat) and committed offsets, kept in the internal
//! topic `__consumer_offsets` in Kafka's record formats.
//!
//! Imports point down this list; nothing below imports what is above it.
//!
//! - `coordinator`: `GroupCoordinator`, which offsets partitions this broker leads, the
//!   groups' timers, the one lock, and routing each API to the modules below; it appends to
//!   the log with its lock released.
//! - `classic_membership`: the classic protocol's APIs on one group (JoinGroup's new-member,
//!   static-member and known-member paths, SyncGroup, Heartbeat, LeaveGroup).
//! - `describe`: read-only views for DescribeGroups, ListGroups, ConsumerGroupDescribe.
//! - `group_metadata_manager`: appending records to `__consumer_offsets` and replaying a
//!   partition (Kafka's `GroupMetadataManager`).
//! - `offset_metadata_manager`: committed offsets of either kind of group: commit, fetch,
//!   delete, expire (Kafka's `OffsetMetadataManager`); it does not know group types.
//! - `classic`: one classic group's state machine, in memory only.
//! - `consumer` and `assignor`: KIP-848 consumer groups and their server-side assignors.
//! - `offsets_topic`: creating `__consumer_offsets` through a narrow topic-creation interface
//!   (`InternalTopicCreator`, implemented for `Broker` in `broker.rs`).
//! - `records`: the key and value formats of `__consumer_offsets`, and its name.

pub mod assignor;
pub mod classic;
pub mod classic_membership;
pub mod consumer;
pub mod coordinator;
pub mod describe;
pub mod group_metadata_manager;
pub mod offset_metadata_manager;
pub mod offsets_topic;
pub mod records;

#[cfg(test)]
mod tests;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
