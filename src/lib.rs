//! gregor: a Kafka-wire-compatible message broker.
//!
//! A request's path: `server` (socket, frames) → `gregor_protocol` (typed request) →
//! `handlers::<api>` → `replica` (partition logs, `gregor_log`) or `topic_admin` and
//! `metadata` (cluster state) → back out as a typed response.

pub mod blocking;
pub mod broker;
pub mod broker_config_admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod group;
pub mod handlers;
pub mod inter_broker;
pub mod meta_properties;
pub mod metadata;
pub mod metrics;
pub mod replica;
pub mod scheduler;
pub mod security;
pub mod server;
pub mod topic_admin;
pub mod txn;
