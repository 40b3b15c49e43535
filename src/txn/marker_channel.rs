//! Sending a transaction's markers to the leaders of its partitions (Kafka's
//! `TransactionMarkerChannelManager`): a partition led here gets its marker appended
//! directly, the others through WriteTxnMarkers on the inter-broker listener. A partition
//! is retried (its leader looked up again) until its marker is written, its topic is gone,
//! or this broker stops coordinating the transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gregor_log::EndTxnMarker;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, warn};

use crate::inter_broker::{BrokerConnection, InterBrokerSecurity, SOCKET_TIMEOUT};
use crate::metadata::MetadataStore;
use crate::replica::ReplicaManager;

/// How long a local marker may wait for the ISR: Kafka's default `request.timeout.ms`.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two rounds of retries.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// WriteTxnMarkers v1 (flexible), which Kafka 2.8 and later serve; v0 before.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

/// One transaction's end, as its partitions' leaders must write it.
#[derive(Clone, Debug)]
pub struct TxnMarkers {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    pub partitions: BTreeSet<(String, i32)>,
}

/// Told of every marker written here to a partition of `__consumer_offsets`: (partition,
/// producer id, commit). The group coordinator completes the transaction's offsets.
pub type OffsetsMarkerListener = Arc<dyn Fn(i32, i64, bool) + Send + Sync>;

pub struct TransactionMarkerChannel {
    broker_id: i32,
    offsets_markers: OffsetsMarkerListener,
    metadata: Arc<dyn MetadataStore>,
    replicas: Arc<ReplicaManager>,
    inter_broker_listener: String,
    security: InterBrokerSecurity,
}

impl TransactionMarkerChannel {
    pub fn new(
        broker_id: i32,
        metadata: Arc<dyn MetadataStore>,
        replicas: Arc<ReplicaManager>,
        inter_broker_listener: String,
        offsets_markers: OffsetsMarkerListener,
    ) -> TransactionMarkerChannel {
        let security = replicas.inter_broker_security.clone();
        TransactionMarkerChannel {
            broker_id,
            offsets_markers,
            metadata,
            replicas,
            inter_broker_listener,
            security,
        }
    }

    /// Writes every marker; true once all are written (or their topics deleted), false if
    /// `still_coordinator` turned false first.
    pub async fn write(&self, txn: &TxnMarkers, still_coordinator: impl Fn() -> bool) -> bool {
        let marker = EndTxnMarker {
            commit: txn.commit,
            coordinator_epoch: txn.coordinator_epoch,
        };
        let mut left = txn.partitions.clone();
        let mut round = 0u32;
        while !left.is_empty() {
            if !still_coordinator() {
                return false;
            }
            if round > 0 {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            round += 1;
            let image = self.metadata.image();
            // By leader; a deleted partition needs no marker (Kafka drops it too).
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            left.retain(|(t, p)| image.has_partition(t, *p));
            for (t, p) in &left {
                let leader = image
                    .topic(t)
                    .and_then(|topic| topic.partitions.get(*p as usize))
                    .map_or(-1, |pm| pm.leader);
                by_leader.entry(leader).or_default().push((t.clone(), *p));
            }
            for (leader, partitions) in by_leader {
                let written = if leader == self.broker_id {
                    self.write_local(txn, marker, &partitions).await
                } else if leader >= 0 {
                    self.write_remote(leader, txn, &partitions).await
                } else {
                    Vec::new()
                };
                for tp in written {
                    left.remove(&tp);
                }
            }
            if round.is_multiple_of(50) && !left.is_empty() {
                warn!(transactional_id = %txn.transactional_id, partitions = left.len(),
                    "transaction markers still not written; retrying");
            }
        }
        true
    }

    /// The partitions whose marker this broker, as their leader, wrote and replicated.
    async fn write_local(
        &self,
        txn: &TxnMarkers,
        marker: EndTxnMarker,
        partitions: &[(String, i32)],
    ) -> Vec<(String, i32)> {
        let mut done = Vec::new();
        for (t, p) in partitions {
            let Some(partition) = self.replicas.partition(t, *p) else {
                continue;
            };
            let appended = match partition.append_end_txn_marker(
                txn.producer_id,
                txn.producer_epoch,
                marker,
            ) {
                Ok(a) => a,
                Err(e) => {
                    debug!(topic = %t, partition = p, error = %e, "marker not appended");
                    if fenced(e.error_code()) {
                        // Retrying cannot succeed (Kafka drops it as well).
                        done.push((t.clone(), *p));
                    }
                    continue;
                }
            };
            match partition
                .wait_until_replicated(&appended, REPLICATION_TIMEOUT)
                .await
            {
                Ok(()) => {
                    if t == crate::group::OFFSETS_TOPIC {
                        (self.offsets_markers)(*p, txn.producer_id, txn.commit);
                    }
                    done.push((t.clone(), *p))
                }
                Err(e) => debug!(topic = %t, partition = p, error = %e, "marker not replicated"),
            }
        }
        done
    }

    /// The partitions whose marker `leader` reports written.
    async fn write_remote(
        &self,
        leader: i32,
        txn: &TxnMarkers,
        partitions: &[(String, i32)],
    ) -> Vec<(String, i32)> {
        let image = self.metadata.image();
        let Some(endpoint) = image
            .broker(leader)
            .and_then(|b| b.address(&self.inter_broker_listener))
        else {
            return Vec::new();
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t).or_default().push(*p);
        }
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(txn.producer_id.into())
                .with_producer_epoch(txn.producer_epoch)
                .with_transaction_result(txn.commit)
                .with_coordinator_epoch(txn.coordinator_epoch)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            WritableTxnMarkerTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                                .with_partition_indexes(ps)
                        })
                        .collect(),
                )]);
        let exchange = async {
            let mut conn = BrokerConnection::connect(
                &endpoint,
                format!("gregor-txn-markers-{}", self.broker_id),
                SOCKET_TIMEOUT,
                &self.security,
            )
            .await?;
            conn.call(WRITE_TXN_MARKERS_VERSION, &request, REPLICATION_TIMEOUT)
                .await
        };
        match exchange.await {
            Ok(resp) => resp
                .markers
                .into_iter()
                .flat_map(|m| m.topics)
                .flat_map(|t| {
                    let name = t.name.0.to_string();
                    t.partitions
                        .into_iter()
                        .filter(|p| p.error_code == 0 || fenced(p.error_code))
                        .map(move |p| (name.clone(), p.partition_index))
                })
                .collect(),
            Err(e) => {
                debug!(leader, error = %e, "WriteTxnMarkers failed");
                Vec::new()
            }
        }
    }
}

/// A marker the leader refused for good: a newer producer epoch or coordinator epoch is
/// already in the partition.
fn fenced(code: i16) -> bool {
    use kafka_protocol::error::ResponseError as E;
    code == E::InvalidProducerEpoch.code() || code == E::TransactionCoordinatorFenced.code()
}
