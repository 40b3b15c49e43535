//! Producer ids and transactions.
//!
//! Imports point down this list; nothing below imports what is above it.
//!
//! - `partition_verification`: a partition leader's question (transactions v1) or addition
//!   (transactions v2) of a partition to a producer's transaction, at its coordinator.
//! - `coordinator`: `TransactionCoordinator`, the `__transaction_state` partitions this
//!   broker leads and the state of their transactional ids, one lock, and the APIs that
//!   change them (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, timeouts).
//! - `marker_channel`: writing a transaction's markers at the leaders of its partitions
//!   (here directly, elsewhere with WriteTxnMarkers).
//! - `state_manager`: appending to and replaying `__transaction_state`, creating it.
//! - `transaction_metadata`: one transactional id's state and its transitions, pure.
//! - `records`: the key and value formats of `__transaction_state`.
//! - `producer_ids`: producer ids from blocks reserved in the metadata store.
//!
//! The per-partition side of transactions (producer state, markers in the log, the last
//! stable offset, the aborted-transaction index) lives with each log, in `gregor_log`.

pub mod coordinator;
pub mod marker_channel;
pub mod partition_verification;
pub mod producer_ids;
pub mod records;
pub mod state_manager;
pub mod transaction_metadata;

pub use coordinator::TransactionCoordinator;
pub use partition_verification::TransactionVerifier;
pub use producer_ids::{ProducerIdManager, BLOCK_SIZE as PRODUCER_ID_BLOCK_SIZE};
pub use records::{TransactionState, TRANSACTION_STATE_TOPIC};
pub use transaction_metadata::TV2;
