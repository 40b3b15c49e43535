//! Producer ids and (later) transactions. Idempotent producers only need ids handed out
//! here; the per-partition sequence and epoch state lives with each log
//! (`gregor_log`'s ProducerStateManager), as in Kafka's storage layer.

pub mod producer_ids;

pub use producer_ids::{ProducerIdManager, BLOCK_SIZE as PRODUCER_ID_BLOCK_SIZE};
