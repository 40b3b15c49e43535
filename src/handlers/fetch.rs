//! Fetch (key 1): read whole batches from each requested partition up to its high
//! watermark, within partition_max_bytes and the response's max_bytes, and long-poll until
//! min_bytes are there or max_wait_ms has passed, woken by new data.
//!
//! Record sets of `SENDFILE_MIN` bytes or more are not read here: the answer carries a
//! stand-in for each (see `gregor_protocol::stand_in`) and the file ranges to send in their
//! place, which the connection writes from the page cache with sendfile, as Kafka does.
//! Smaller ones are read into memory, where one pread costs less than a sendfile and the
//! extra write around it.
//!
//! A fetch with a replica id (a follower: `replica_id` before v15, `replica_state` after)
//! reads up to the log end instead, tells the partition where the follower is
//! (`Partition::record_follower_fetch`, which may move the high watermark and propose adding
//! the follower to the ISR), and long-polls on the log end. It takes the same sendfile path.
//!
//! Fetch sessions (KIP-227) are declined: every answer carries session id 0, which tells
//! the client to keep sending full requests. Records are never null in an answer
//! (librdkafka rejects a null record set), only empty.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select_all;
use futures_util::FutureExt;
use gregor_log::FetchSlice;
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use gregor_protocol::kafka_protocol::messages::ApiKey;
use gregor_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use gregor_protocol::{stand_in, DecodedRequest, Request};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::metrics;
use crate::replica::replication_quota::ReplicationQuota;
use crate::replica::{Partition, ReadBound};
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;

/// Fetch v4+: isolation level 1 is read_committed.
const READ_COMMITTED: i8 = 1;

/// Record sets from this size on are sent from the file (sendfile) instead of being read.
const SENDFILE_MIN: usize = 16 * 1024;

/// A Fetch answer: the response, whose record-set stand-in number `i` is to be replaced by
/// `file_ranges[i]` on the wire.
pub struct FetchAnswer {
    pub response: FetchResponse,
    pub file_ranges: Vec<FetchSlice>,
}

impl From<FetchResponse> for FetchAnswer {
    fn from(response: FetchResponse) -> Self {
        FetchAnswer {
            response,
            file_ranges: Vec::new(),
        }
    }
}

/// One requested partition, resolved once per request.
struct Wanted {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    current_leader_epoch: i32,
    partition_max_bytes: i32,
    replica: Result<Arc<Partition>, i16>,
    /// The fetcher's log diverges from ours (KIP-320, v12+): the epoch and end offset it
    /// must truncate to, answered instead of records.
    diverging: Option<(i32, i64)>,
    /// A follower's fetch under the leader's replication throttle
    /// (`ReplicaManager::leader_throttled`): no records while the rate is over it.
    throttled: bool,
}

/// The fetching replica's id: -1 for a consumer (`replica_id` before v15, `replica_state`
/// from v15).
pub(crate) fn replica_id(version: i16, req: &FetchRequest) -> i32 {
    if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    }
}

/// For the request metrics (FetchConsumer or FetchFollower): whether a Fetch comes from a
/// follower; None for other requests.
pub fn from_follower(req: &DecodedRequest) -> Option<bool> {
    match &req.request {
        Request::Fetch(r) => Some(replica_id(req.api_version, r) >= 0),
        _ => None,
    }
}

/// With an authorizer: a consumer needs READ on each topic, a follower CLUSTER_ACTION on
/// the cluster; a partition refused is TOPIC_AUTHORIZATION_FAILED, as in Kafka.
pub async fn handle(
    broker: &Broker,
    version: i16,
    req: FetchRequest,
    authz: RequestAuthorizer<'_>,
) -> FetchAnswer {
    let refused = if req.session_id != 0 {
        // We never hand out sessions, so any session id is one we do not know.
        Some(E::FetchSessionIdNotFound)
    } else if req.session_epoch > 0 {
        Some(E::InvalidFetchSessionEpoch)
    } else {
        None
    };
    if let Some(e) = refused {
        metrics::response_errors(ApiKey::Fetch, [e.code()]);
        return FetchResponse::default().with_error_code(e.code()).into();
    }
    let image = broker.image();
    let replica_id = replica_id(version, &req);
    let bound = if replica_id >= 0 {
        ReadBound::LogEnd
    } else if req.isolation_level == READ_COMMITTED {
        ReadBound::LastStableOffset
    } else {
        ReadBound::HighWatermark
    };
    let now_ms = crate::clock::now_ms();
    let follower_allowed = replica_id < 0 || authz.allows_cluster(AclOperation::ClusterAction);
    let mut topics: Vec<FetchableTopicResponse> = Vec::with_capacity(req.topics.len());
    let mut wanted = Vec::new();
    for (topic_index, topic) in req.topics.iter().enumerate() {
        // v13+ names topics by id only.
        let (name, unknown_code) = if version >= 13 {
            (
                image.topic_by_id(&topic.topic_id).map(|t| t.name.clone()),
                E::UnknownTopicId.code(),
            )
        } else {
            (
                Some(topic.topic.0.to_string()),
                E::UnknownTopicOrPartition.code(),
            )
        };
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(if version >= 13 {
                    TopicName::default()
                } else {
                    topic.topic.clone()
                })
                .with_topic_id(topic.topic_id),
        );
        let allowed = match &name {
            Some(_) if replica_id >= 0 => follower_allowed,
            Some(n) => authz.allows_topic(AclOperation::Read, n),
            None => true,
        };
        for p in &topic.partitions {
            let mut replica = match &name {
                Some(_) if !allowed => Err(E::TopicAuthorizationFailed.code()),
                Some(n) => broker
                    .replicas
                    .partition(n, p.partition)
                    .ok_or_else(|| not_hosted_code(broker, n, p.partition, unknown_code)),
                None => Err(unknown_code),
            };
            // Kafka's check of the epoch the fetcher last fetched in: if this log's end
            // for that epoch is an earlier epoch or an earlier offset, the fetcher holds
            // records that are not ours and is told where to truncate.
            let diverging = match &replica {
                Ok(partition) if version >= 12 && p.last_fetched_epoch >= 0 => {
                    let found = partition.end_offset_for_epoch(p.last_fetched_epoch);
                    (found.leader_epoch < p.last_fetched_epoch || found.end_offset < p.fetch_offset)
                        .then_some((found.leader_epoch, found.end_offset))
                }
                _ => None,
            };
            if let (Ok(partition), true, None) = (&replica, replica_id >= 0, diverging) {
                // The follower's fetch offset is its log end offset.
                let recorded = partition
                    .check_leader_epoch(p.current_leader_epoch)
                    .and_then(|()| {
                        partition.record_follower_fetch(replica_id, p.fetch_offset, now_ms)
                    });
                match recorded {
                    Ok(Some(change)) => broker.replicas.alter_isr(partition.clone(), change),
                    Ok(None) => {}
                    Err(e) => replica = Err(e.error_code()),
                }
            }
            let throttled = match &replica {
                Ok(partition) if replica_id >= 0 => {
                    broker.replicas.leader_throttled(partition, replica_id)
                }
                _ => false,
            };
            wanted.push(Wanted {
                throttled,
                topic_index,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                current_leader_epoch: p.current_leader_epoch,
                partition_max_bytes: p.partition_max_bytes,
                replica,
                diverging,
            });
        }
    }

    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    // Subscribe before the first read so that data arriving between read and wait wakes us.
    let mut watchers: Vec<watch::Receiver<i64>> = wanted
        .iter()
        .filter_map(|w| {
            w.replica.as_ref().ok().map(|p| match bound {
                // The last stable offset moves with the high watermark (a marker counts
                // once the ISR has it) or with an append (a marker's own).
                ReadBound::HighWatermark | ReadBound::LastStableOffset => p.subscribe(),
                ReadBound::LogEnd => p.subscribe_log_end(),
            })
        })
        .collect();
    let mut watcher_closed = false;
    loop {
        for w in watchers.iter_mut() {
            w.borrow_and_update();
        }
        let quota = broker.replicas.leader_quota();
        let read = read_all(&wanted, req.max_bytes, req.isolation_level, bound, quota);
        let done = read.bytes >= i64::from(req.min_bytes.max(0))
            || read.answer_now
            || watchers.is_empty()
            || watcher_closed
            || Instant::now() >= deadline;
        if done {
            if read.throttled_bytes > 0 {
                quota.record(read.throttled_bytes, crate::clock::now_ms());
            }
            count(&wanted, &read.partitions, replica_id >= 0);
            for (topic_index, data) in read.partitions {
                topics[topic_index].partitions.push(data);
            }
            return FetchAnswer {
                response: FetchResponse::default()
                    .with_session_id(0)
                    .with_responses(topics),
                file_ranges: read.file_ranges,
            };
        }
        let woken = select_all(watchers.iter_mut().map(|w| w.changed().boxed()));
        // New data or the deadline both lead to another read; a closed channel means the
        // partition went away (topic deleted), so answer with what there is.
        if let Ok((Err(_), _, _)) = tokio::time::timeout_at(deadline, woken).await {
            watcher_closed = true;
        }
    }
}

/// The answer's metrics: error codes, and per topic the partitions fetched and the record
/// bytes sent (to consumers; a follower's count as replication bytes). `partitions` holds
/// one answer per `wanted`, in order.
fn count(wanted: &[Wanted], partitions: &[(usize, PartitionData)], follower: bool) {
    metrics::response_errors(ApiKey::Fetch, partitions.iter().map(|(_, d)| d.error_code));
    let mut replicated = 0u64;
    for (w, (_, data)) in wanted.iter().zip(partitions) {
        let Ok(p) = &w.replica else { continue };
        let bytes = data.records.as_ref().map_or(0, |r| r.len() as u64);
        if follower {
            replicated += bytes;
        } else {
            p.metrics.fetch_requests.inc();
            p.metrics.bytes_out.inc_by(bytes);
        }
    }
    if replicated > 0 {
        metrics::replication_bytes_out(replicated);
    }
}

/// The code for a partition that is not hosted here: unknown topic or partition, or
/// NOT_LEADER_OR_FOLLOWER if it exists but lives elsewhere.
fn not_hosted_code(broker: &Broker, topic: &str, partition: i32, unknown: i16) -> i16 {
    if broker.image().has_partition(topic, partition) {
        E::NotLeaderOrFollower.code()
    } else {
        unknown
    }
}

/// One pass over the wanted partitions.
struct ReadAll {
    /// The partition answers, with their topic's index.
    partitions: Vec<(usize, PartitionData)>,
    /// The ranges that the answers' record-set stand-ins stand for.
    file_ranges: Vec<FetchSlice>,
    /// Record bytes in the answer.
    bytes: i64,
    /// A partition's answer cannot wait (an error, a diverging epoch).
    answer_now: bool,
    /// Record bytes in the answer for throttled replicas.
    throttled_bytes: u64,
}

/// Reads every wanted partition once.
fn read_all(
    wanted: &[Wanted],
    max_bytes: i32,
    isolation_level: i8,
    bound: ReadBound,
    quota: &ReplicationQuota,
) -> ReadAll {
    let mut remaining = i64::from(max_bytes.max(0));
    let mut throttled_bytes = 0u64;
    let over_quota =
        wanted.iter().any(|w| w.throttled) && quota.is_exceeded(crate::clock::now_ms());
    let mut total = 0i64;
    let mut answer_now = false;
    let mut out = Vec::with_capacity(wanted.len());
    let mut file_ranges = Vec::new();
    for w in wanted {
        let data = match (&w.replica, w.diverging) {
            (Err(code), _) => {
                answer_now = true;
                error_data(w.partition, *code)
            }
            (Ok(p), Some((epoch, end_offset))) => {
                answer_now = true;
                let (log_start, hw, _) = p.offsets();
                PartitionData::default()
                    .with_partition_index(w.partition)
                    .with_high_watermark(hw)
                    .with_last_stable_offset(p.last_stable_offset())
                    .with_log_start_offset(log_start)
                    .with_diverging_epoch(
                        EpochEndOffset::default()
                            .with_epoch(epoch)
                            .with_end_offset(end_offset),
                    )
                    .with_preferred_read_replica((-1).into())
                    .with_records(Some(Bytes::new()))
            }
            (Ok(p), None) => {
                let held_back = w.throttled && over_quota;
                let limit = if held_back {
                    0
                } else {
                    remaining.min(i64::from(w.partition_max_bytes.max(0)))
                };
                // Kafka (KIP-74): the first partition with data returns at least one whole
                // batch even if it exceeds the limits, so a large batch cannot stall a consumer.
                let min_one_batch = total == 0 && !held_back;
                let read = p
                    .check_leader_epoch(w.current_leader_epoch)
                    .and_then(|()| {
                        p.read_up_to(w.fetch_offset, limit as usize, min_one_batch, bound)
                    })
                    .and_then(|mut r| {
                        let records = match r.records.take() {
                            // A read that fails here fails the log directory, as one
                            // under the partition lock would.
                            Some(slice) => record_set(slice, &mut file_ranges)
                                .map_err(|e| p.storage_error(e.into()))?,
                            None => Bytes::new(),
                        };
                        Ok((r, records))
                    });
                match read {
                    Ok((mut r, records)) => {
                        let len = records.len() as i64;
                        if w.throttled {
                            throttled_bytes += len as u64;
                        }
                        total += len;
                        remaining = (remaining - len).max(0);
                        PartitionData::default()
                            .with_partition_index(w.partition)
                            .with_high_watermark(r.high_watermark)
                            .with_last_stable_offset(r.last_stable_offset)
                            .with_log_start_offset(r.log_start_offset)
                            .with_aborted_transactions((isolation_level == READ_COMMITTED).then(
                                || {
                                    std::mem::take(&mut r.aborted_transactions)
                                        .into_iter()
                                        .map(|t| {
                                            AbortedTransaction::default()
                                                .with_producer_id(t.producer_id.into())
                                                .with_first_offset(t.first_offset)
                                        })
                                        .collect()
                                },
                            ))
                            .with_preferred_read_replica((-1).into())
                            .with_records(Some(records))
                    }
                    Err(e) => {
                        answer_now = true;
                        let (log_start, hw, _) = p.offsets();
                        error_data(w.partition, e.error_code())
                            .with_high_watermark(hw)
                            .with_last_stable_offset(p.last_stable_offset())
                            .with_log_start_offset(log_start)
                    }
                }
            }
        };
        out.push((w.topic_index, data));
    }
    ReadAll {
        partitions: out,
        file_ranges,
        bytes: total,
        answer_now,
        throttled_bytes,
    }
}

/// The record set to put in the answer: a stand-in for a large range (added to
/// `file_ranges`, to be sent from the file), the bytes themselves for a small one.
fn record_set(slice: FetchSlice, file_ranges: &mut Vec<FetchSlice>) -> std::io::Result<Bytes> {
    if slice.len >= SENDFILE_MIN {
        if let Some(stand_in) = stand_in(file_ranges.len(), slice.len) {
            file_ranges.push(slice);
            return Ok(stand_in);
        }
    }
    slice.read()
}

fn error_data(partition: i32, code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(code)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica((-1).into())
        .with_records(Some(bytes::Bytes::new()))
}
