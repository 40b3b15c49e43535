//! Hands out producer ids from blocks reserved durably in the metadata store, so an id is
//! never given twice, even across restarts (Kafka: `/latest_producer_id_block`).

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::metadata::{MetadataError, MetadataStore};

/// Kafka reserves producer ids in blocks of 1000.
pub const BLOCK_SIZE: i64 = 1000;

pub struct ProducerIdManager {
    store: Arc<dyn MetadataStore>,
    /// [next, end) of the current block.
    block: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        ProducerIdManager {
            store,
            block: Mutex::new((0, 0)),
        }
    }

    pub async fn next_id(&self) -> Result<i64, MetadataError> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let first = self.store.allocate_producer_ids(BLOCK_SIZE).await?;
            *block = (first, first + BLOCK_SIZE);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}
