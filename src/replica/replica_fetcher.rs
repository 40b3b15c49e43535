//! Followers fetch from their leaders (Kafka's `ReplicaFetcherManager` and
//! `ReplicaFetcherThread`): one task per leader broker fetches every partition this broker
//! follows there, in one long-polling Fetch with this broker's id as replica id.
//!
//! A partition that becomes follower (or sees a new leader epoch) first asks its leader,
//! with OffsetForLeaderEpoch, where its latest epoch ends there, and truncates whatever it
//! holds past that point (KIP-101/279): history written by a deposed leader that the new
//! one never had. Only then is it fetched. Fetched batches are appended with the leader's
//! offsets and epochs (`Partition::append_as_follower`), and the answer's high watermark and
//! log start offset are taken over. The leader learns the follower's position from the
//! fetch offset of its next request.
//!
//! A partition the leader refuses (it has not learnt its leadership yet, or lost it) waits
//! on its own, 25 ms at first and twice as long at each refusal up to
//! `replica.fetch.backoff.ms`, while the leader's other partitions go on being fetched: a
//! new topic's followers start within milliseconds of its leader, and no other partition's
//! acks=all waits for it. Only a failed connection backs the whole fetcher off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_log::{parse_record_set, BatchHeader};
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use gregor_protocol::kafka_protocol::messages::{
    BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::partition::{Partition, PartitionError};
use super::replication_quota::ReplicationQuota;
use crate::inter_broker::{
    BrokerConnection, Endpoint, InterBrokerError, InterBrokerSecurity, SOCKET_TIMEOUT,
};

/// Fetch v12: topics by name, replica id in the body, leader epochs (the newest version
/// before topic ids and KIP-903's replica state).
const FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch v3: the first with a replica id.
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 3;

/// `replica.fetch.*` and this broker's id.
#[derive(Clone, Debug)]
pub struct FetcherSettings {
    pub broker_id: i32,
    /// The listener leaders are reached on (`inter.broker.listener.name`).
    pub listener: String,
    /// TLS and SASL on that listener.
    pub security: InterBrokerSecurity,
    pub wait_max_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub response_max_bytes: i32,
    pub backoff: Duration,
}

/// One partition this broker follows. Weak: the replica manager owns partitions, and a
/// deleted topic's partition must not be kept alive (its directory kept) by a fetch in
/// flight; a fetcher upgrades it only while it works on it, never across an await.
#[derive(Clone)]
struct Followed {
    partition: Weak<Partition>,
    leader: i32,
    leader_epoch: i32,
    /// Truncated against this leader epoch: fetching may begin.
    truncated: bool,
    /// Refused by the leader: not asked again before this.
    retry_at: Option<Instant>,
    /// Refusals in a row (the next delay doubles with each).
    refusals: u32,
}

/// The first delay of a refused partition; it doubles up to `replica.fetch.backoff.ms`.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(25);

/// A followed partition by (topic, partition).
type PartitionKey = (String, i32);
/// One partition a fetcher round works on.
type Target = (PartitionKey, Followed);

#[derive(Default)]
struct FetcherState {
    followed: HashMap<PartitionKey, Followed>,
    /// Where each broker listens (from the metadata image).
    endpoints: HashMap<i32, Endpoint>,
    /// The leaders a fetcher task runs for.
    running: HashMap<i32, tokio::task::JoinHandle<()>>,
}

struct Shared {
    settings: FetcherSettings,
    /// `follower.replication.throttled.rate`, for the replicas the topics throttle.
    quota: ReplicationQuota,
    state: Mutex<FetcherState>,
    /// Wakes fetchers when a partition is added (they sleep only in backoffs).
    changed: watch::Sender<u64>,
}

pub struct ReplicaFetcherManager {
    shared: Arc<Shared>,
}

impl ReplicaFetcherManager {
    pub fn new(settings: FetcherSettings) -> Self {
        ReplicaFetcherManager {
            shared: Arc::new(Shared {
                settings,
                quota: ReplicationQuota::default(),
                state: Mutex::new(FetcherState::default()),
                changed: watch::Sender::new(0),
            }),
        }
    }

    /// `follower.replication.throttled.rate` (bytes/s), from each new configuration.
    pub fn set_throttle(&self, bytes_per_second: i64) {
        self.shared.quota.set_bound(bytes_per_second);
    }

    /// The brokers' endpoints, from each new metadata image.
    pub fn set_endpoints(&self, endpoints: HashMap<i32, Endpoint>) {
        self.shared.lock().endpoints = endpoints;
    }

    /// Follows `partition` from `leader` at `leader_epoch`: truncation first, then fetching.
    /// Starts the leader's fetcher task if none runs (needs a tokio runtime).
    pub fn follow(&self, partition: Arc<Partition>, leader: i32, leader_epoch: i32) {
        let key = (partition.topic.clone(), partition.index);
        let mut st = self.shared.lock();
        st.followed.insert(
            key,
            Followed {
                partition: Arc::downgrade(&partition),
                leader,
                leader_epoch,
                truncated: false,
                retry_at: None,
                refusals: 0,
            },
        );
        let running = st.running.get(&leader).is_some_and(|t| !t.is_finished());
        if !running {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let task = runtime.spawn(run_fetcher(self.shared.clone(), leader));
                    st.running.insert(leader, task);
                }
                Err(_) => warn!(leader, "no runtime to fetch from the leader on"),
            }
        }
        drop(st);
        self.shared.changed.send_modify(|n| *n += 1);
    }

    /// Stops following a partition (it became leader, or left this broker).
    pub fn unfollow(&self, topic: &str, index: i32) {
        self.shared
            .lock()
            .followed
            .remove(&(topic.to_string(), index));
    }

    /// Stops every fetcher task (broker shutdown, before the logs close). A task is only
    /// ever stopped at an await, never inside an append.
    pub fn shutdown(&self) {
        let mut st = self.shared.lock();
        st.followed.clear();
        for (_, task) in st.running.drain() {
            task.abort();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FetcherState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the fetcher of `leader` works on now, and where that leader listens. Empty:
    /// the task ends (and unregisters itself under the same lock, so that a `follow`
    /// racing with it starts a new one).
    /// A replica whose log directory failed is not fetched for: it cannot take the records,
    /// and stays out of the ISR.
    fn targets(&self, leader: i32) -> (Vec<Target>, Option<Endpoint>) {
        let mut st = self.lock();
        let targets: Vec<_> = st
            .followed
            .iter()
            .filter(|(_, f)| f.leader == leader)
            .filter(|(_, f)| {
                f.partition
                    .upgrade()
                    .is_none_or(|p| p.log_dir().is_online())
            })
            .map(|(k, f)| (k.clone(), f.clone()))
            .collect();
        if targets.is_empty() {
            st.running.remove(&leader);
        }
        (targets, st.endpoints.get(&leader).cloned())
    }

    /// Whether `leader` now has a followed partition, or leader epoch, that `asked` lacks.
    fn follows_more_than(&self, leader: i32, asked: &HashMap<&PartitionKey, i32>) -> bool {
        self.lock()
            .followed
            .iter()
            .any(|(k, f)| f.leader == leader && asked.get(k) != Some(&f.leader_epoch))
    }

    /// The earliest retry of a refused partition followed from `leader`.
    fn next_retry(&self, leader: i32) -> Option<Instant> {
        self.lock()
            .followed
            .values()
            .filter(|f| f.leader == leader)
            .filter_map(|f| f.retry_at)
            .min()
    }

    /// Records a finished truncation, unless the partition moved on meanwhile.
    fn mark_truncated(&self, key: &PartitionKey, leader: i32, leader_epoch: i32) {
        if let Some(f) = self.lock().followed.get_mut(key) {
            if f.leader == leader && f.leader_epoch == leader_epoch {
                f.truncated = true;
            }
        }
    }

    /// Asks for another truncation round (the leader said our offset is out of range).
    fn mark_untruncated(&self, key: &PartitionKey) {
        if let Some(f) = self.lock().followed.get_mut(key) {
            f.truncated = false;
        }
    }

    /// The leader refused the partition: it waits before being asked about again.
    fn delay(&self, key: &PartitionKey) {
        if let Some(f) = self.lock().followed.get_mut(key) {
            let delay = FIRST_RETRY_DELAY
                .saturating_mul(1 << f.refusals.min(16))
                .min(self.settings.backoff.max(FIRST_RETRY_DELAY));
            f.retry_at = Some(Instant::now() + delay);
            f.refusals = f.refusals.saturating_add(1);
        }
    }

    /// The leader answered for the partition: no more delays.
    fn clear_delay(&self, key: &PartitionKey) {
        if let Some(f) = self.lock().followed.get_mut(key) {
            f.retry_at = None;
            f.refusals = 0;
        }
    }
}

/// The fetcher task of one leader: until no partition is followed there any more.
async fn run_fetcher(shared: Arc<Shared>, leader: i32) {
    let settings = shared.settings.clone();
    let mut changed = shared.changed.subscribe();
    let mut connection: Option<BrokerConnection> = None;
    info!(leader, "replica fetcher started");
    loop {
        // Everything followed so far is in the targets read next.
        changed.borrow_and_update();
        let (targets, endpoint) = shared.targets(leader);
        if targets.is_empty() {
            info!(
                leader,
                "replica fetcher stopped: nothing left to follow there"
            );
            return;
        }
        // Partitions the leader refused recently sit this round out.
        let now = Instant::now();
        let (due, delayed): (Vec<&Target>, Vec<&Target>) = targets
            .iter()
            .partition(|(_, f)| f.retry_at.is_none_or(|t| t <= now));
        let next_retry = delayed.iter().filter_map(|(_, f)| f.retry_at).min();
        if due.is_empty() {
            let until = next_retry.map_or(settings.backoff, |t| t.saturating_duration_since(now));
            let _ = tokio::time::timeout(until, changed.changed()).await;
            continue;
        }
        let round = async {
            if connection.is_none() {
                let endpoint = endpoint.ok_or(InterBrokerError::NoEndpoint(leader))?;
                connection = Some(
                    BrokerConnection::connect(
                        &endpoint,
                        format!("gregor-replica-fetcher-{}", settings.broker_id),
                        SOCKET_TIMEOUT,
                        &settings.security,
                    )
                    .await?,
                );
            }
            let Some(conn) = connection.as_mut() else {
                return Err(InterBrokerError::NoEndpoint(leader));
            };
            let untruncated: Vec<_> = due.iter().copied().filter(|(_, f)| !f.truncated).collect();
            if !untruncated.is_empty() && truncate(&shared, conn, leader, &untruncated).await? > 0 {
                // The next round starts at once: it fetches the partitions just truncated,
                // and no long poll of this round's snapshot keeps them (or a refused
                // partition's retry) waiting.
                return Ok(true);
            }
            let ready: Vec<_> = due.iter().copied().filter(|(_, f)| f.truncated).collect();
            if ready.is_empty() {
                return Ok(false);
            }
            // A long poll must not outlast the retry of a refused partition.
            let wait = next_retry.map(|t| t.saturating_duration_since(now));
            fetch(&shared, &settings, conn, &ready, wait).await
        };
        // A partition newly followed here must not wait for the long poll in flight (up to
        // `replica.fetch.wait.max.ms`): the round is dropped, with its connection (an answer
        // may still come on it), and the next one asks for the new partition too. Nothing
        // is lost: appends happen only after a whole answer, and no await follows them.
        let asked: HashMap<&PartitionKey, i32> =
            targets.iter().map(|(k, f)| (k, f.leader_epoch)).collect();
        let outcome = {
            let mut round = std::pin::pin!(round);
            loop {
                tokio::select! {
                    r = &mut round => break Some(r),
                    _ = changed.changed() => {
                        if shared.follows_more_than(leader, &asked) {
                            break None;
                        }
                    }
                }
            }
        };
        let Some(outcome) = outcome else {
            debug!(leader, "newly followed partitions: restarting the fetch");
            connection = None;
            continue;
        };
        match outcome {
            Ok(true) => {}
            Ok(false) => {
                // Nothing fetched and nothing truncated: the leader refused every partition
                // asked about (each now waits for its retry), or they went away. A change
                // of what is followed, or the backoff, ends the wait.
                let retry = shared.next_retry(leader);
                let until = retry.map_or(settings.backoff, |t| {
                    t.saturating_duration_since(Instant::now())
                        .min(settings.backoff)
                });
                let _ = tokio::time::timeout(until, changed.changed()).await;
            }
            Err(e) => {
                warn!(leader, error = %e, "fetching from the leader failed; backing off");
                connection = None;
                tokio::time::sleep(settings.backoff).await;
            }
        }
    }
}

/// The round's entry for a partition a leader answered about (none: not asked, ignore it).
fn followed_in<'a>(targets: &[&'a Target], key: &PartitionKey) -> Option<&'a Followed> {
    targets.iter().find(|t| t.0 == *key).map(|t| &t.1)
}

/// KIP-101/279 truncation: asks the leader where our latest epoch ends there and cuts our
/// log to that point (Kafka's `getOffsetTruncationState`). Returns how many partitions were
/// settled: may now be fetched, need one more round (after a cut to an older epoch's end),
/// or were refused and wait for their retry.
async fn truncate(
    shared: &Shared,
    conn: &mut BrokerConnection,
    leader: i32,
    targets: &[&Target],
) -> Result<usize, InterBrokerError> {
    let mut settled = 0;
    let mut by_topic: HashMap<&str, Vec<OffsetForLeaderPartition>> = HashMap::new();
    for ((topic, index), f) in targets.iter().map(|t| (&t.0, &t.1)) {
        let Some(p) = f.partition.upgrade() else {
            continue;
        };
        let (_, latest) = p.log_end_and_latest_epoch();
        by_topic.entry(topic.as_str()).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(*index)
                .with_current_leader_epoch(f.leader_epoch)
                .with_leader_epoch(latest.unwrap_or(-1)),
        );
    }
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(shared.settings.broker_id))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let resp = conn
        .call(OFFSET_FOR_LEADER_EPOCH_VERSION, &req, Duration::ZERO)
        .await?;
    for topic in resp.topics {
        let name = topic.topic.0.to_string();
        for answer in topic.partitions {
            let key = (name.clone(), answer.partition);
            let Some(f) = followed_in(targets, &key) else {
                continue;
            };
            if answer.error_code != 0 {
                debug!(topic = %name, partition = answer.partition, error_code = answer.error_code,
                    "leader refused OffsetForLeaderEpoch; retrying");
                shared.delay(&key);
                settled += 1;
                continue;
            }
            let Some(p) = f.partition.upgrade() else {
                continue;
            };
            let (log_end, _) = p.log_end_and_latest_epoch();
            let hw = p.offsets().1;
            let target = if answer.leader_epoch < 0 || answer.end_offset < 0 {
                // The leader knows no such epoch (or we have none): Kafka falls back to the
                // high watermark.
                hw
            } else {
                let ours = p.end_offset_for_epoch(answer.leader_epoch);
                if ours.end_offset < 0 {
                    // An answer about an epoch newer than ours (a leader does not send
                    // one): the high watermark is what we know to be shared.
                    hw
                } else if ours.leader_epoch == answer.leader_epoch {
                    // Both have the epoch: cut where the first of the two ends it.
                    ours.end_offset.min(answer.end_offset).min(log_end)
                } else {
                    // We do not have the leader's epoch: cut to where our epochs after it
                    // begin (or, if they begin at our log end, forget those empty epochs);
                    // the next round asks again about our (now older) latest epoch.
                    let cut = ours.end_offset.max(0).min(log_end);
                    let done = if cut < log_end {
                        p.truncate_to(cut).map(|_| ())
                    } else {
                        p.forget_empty_epochs()
                    };
                    match done {
                        Ok(()) => settled += 1,
                        Err(e) => {
                            warn!(topic = %name, partition = answer.partition, error = %e, "truncation failed")
                        }
                    }
                    continue;
                }
            };
            match p.truncate_to(target) {
                Ok(truncated) => {
                    if truncated {
                        info!(topic = %name, partition = answer.partition, leader,
                            leader_epoch = f.leader_epoch, offset = target,
                            "follower truncated its log to the leader's history");
                    }
                    shared.mark_truncated(&key, leader, f.leader_epoch);
                    if f.refusals > 0 {
                        shared.clear_delay(&key);
                    }
                    settled += 1;
                }
                Err(e) => {
                    warn!(topic = %name, partition = answer.partition, error = %e, "truncation failed")
                }
            }
        }
    }
    Ok(settled)
}

/// One Fetch round; true if the leader answered (data or not).
async fn fetch(
    shared: &Shared,
    settings: &FetcherSettings,
    conn: &mut BrokerConnection,
    targets: &[&Target],
    wait_at_most: Option<Duration>,
) -> Result<bool, InterBrokerError> {
    let mut by_topic: HashMap<&str, Vec<FetchPartition>> = HashMap::new();
    // Replicas out of the ISR that the topic throttles (a reassignment's copy) wait while the
    // follower's rate is over `follower.replication.throttled.rate` (Kafka's
    // `shouldFollowerThrottle`); what they fetch counts against it.
    let now_ms = crate::clock::now_ms();
    let quota = &shared.quota;
    let exceeded = quota.is_bounded() && quota.is_exceeded(now_ms);
    let mut throttled: Vec<&PartitionKey> = Vec::new();
    for (key, f) in targets.iter().map(|t| (&t.0, &t.1)) {
        let (topic, index) = key;
        let Some(p) = f.partition.upgrade() else {
            continue;
        };
        if quota.is_bounded()
            && !p.isr().contains(&settings.broker_id)
            && p.settings()
                .follower_replication_throttled_replicas
                .includes(*index, settings.broker_id)
        {
            if exceeded {
                continue;
            }
            throttled.push(key);
        }
        let (log_start, _, log_end) = p.offsets();
        by_topic.entry(topic.as_str()).or_default().push(
            FetchPartition::default()
                .with_partition(*index)
                .with_current_leader_epoch(f.leader_epoch)
                .with_fetch_offset(log_end)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(log_start)
                .with_partition_max_bytes(settings.max_bytes),
        );
    }
    if by_topic.is_empty() {
        return Ok(false); // every partition throttled: the caller backs off
    }
    let wait_ms = wait_at_most.map_or(settings.wait_max_ms, |w| {
        settings
            .wait_max_ms
            .min(i32::try_from(w.as_millis()).unwrap_or(i32::MAX))
    });
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(settings.broker_id))
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(settings.min_bytes)
        .with_max_bytes(settings.response_max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let wait = Duration::from_millis(wait_ms.max(0) as u64);
    let resp = conn.call(FETCH_VERSION, &req, wait).await?;
    if resp.error_code != 0 {
        return Err(InterBrokerError::Frame(format!(
            "fetch error code {}",
            resp.error_code
        )));
    }
    for topic in resp.responses {
        let name = topic.topic.0.to_string();
        for data in topic.partitions {
            let key = (name.clone(), data.partition_index);
            let Some(f) = followed_in(targets, &key) else {
                continue;
            };
            let Some(p) = f.partition.upgrade() else {
                continue;
            };
            let p = &p;
            if data.error_code == 0 && f.refusals > 0 {
                shared.clear_delay(&key);
            }
            let records = data.records.unwrap_or_default();
            if throttled.contains(&&key) {
                quota.record(records.len() as u64, crate::clock::now_ms());
            }
            let result = match data.error_code {
                0 => apply_fetched(p, records).and_then(|()| {
                    p.update_from_leader(data.high_watermark, data.log_start_offset)
                }),
                code if code == E::OffsetOutOfRange.code() => {
                    let (_, _, log_end) = p.offsets();
                    if data.log_start_offset > log_end {
                        // The leader no longer has what comes after our log end.
                        warn!(topic = %name, partition = data.partition_index, log_end,
                            leader_log_start = data.log_start_offset,
                            "follower is behind the leader's log start: starting over there");
                        p.truncate_fully_and_start_at(data.log_start_offset)
                    } else {
                        shared.mark_untruncated(&key);
                        Ok(())
                    }
                }
                code => {
                    // Not (or no longer) the leader at our epoch: the metadata will say.
                    debug!(topic = %name, partition = data.partition_index, error_code = code,
                        "leader refused the fetch");
                    shared.delay(&key);
                    Ok(())
                }
            };
            if let Err(e) = result {
                warn!(topic = %name, partition = data.partition_index, error = %e,
                    "appending fetched records failed");
                shared.mark_untruncated(&key);
                shared.delay(&key);
            }
        }
    }
    Ok(true)
}

/// Appends the whole batches of a fetched record set (a fetch may end inside a batch), after
/// checking each one's CRC.
fn apply_fetched(p: &Partition, records: Bytes) -> Result<(), PartitionError> {
    let whole = whole_batches_len(&records);
    if whole == 0 {
        return Ok(());
    }
    let records = records.slice(..whole);
    let headers = parse_record_set(&records, u32::MAX)?;
    p.append_as_follower(&records, &headers)?;
    crate::metrics::replication_bytes_in(records.len() as u64);
    Ok(())
}

/// The length of the whole batches at the front of `bytes`.
fn whole_batches_len(bytes: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(h) = bytes.get(pos..).and_then(BatchHeader::parse) {
        if h.batch_length < 0 || pos + h.total_size() > bytes.len() {
            break;
        }
        pos += h.total_size();
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_log::batch::test_batches::batch;

    #[test]
    fn a_record_set_cut_inside_a_batch_yields_only_its_whole_batches() {
        let mut set = batch(3, 1).to_vec();
        let first = set.len();
        set.extend_from_slice(&batch(2, 5));
        assert_eq!(whole_batches_len(&set), set.len());
        for cut in [0, 10, first - 1] {
            assert_eq!(whole_batches_len(&set[..cut]), 0, "cut at {cut}");
        }
        for cut in [first, first + 1, set.len() - 1] {
            assert_eq!(whole_batches_len(&set[..cut]), first, "cut at {cut}");
        }
    }
}
