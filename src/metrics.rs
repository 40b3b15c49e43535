//! Prometheus metrics, named as Prometheus' JMX exporter renders Kafka's JMX beans
//! (`kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=t` becomes
//! `kafka_server_brokertopicmetrics_bytesin_total{topic="t"}`), so that Kafka dashboards need
//! few changes. `docs/metrics.md` lists them.
//!
//! Two kinds: counters and histograms that the code moves as things happen, kept here in
//! one registry (`registry`), and gauges of state (log sizes, under-replicated partitions,
//! consumer lag, ...) that `server::metrics_http` reads from the broker at scrape time and
//! builds with `gauge_family`. A leaf module: it imports nothing from the rest of the crate,
//! so the replica, group and metadata layers can call it without reaching up.
//!
//! The hot path does no label lookup: a request's handles are cached per API and version
//! (`request`), a topic's in an `Arc<TopicMetrics>` that each `Partition` holds.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::ApiKey;
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Request latency buckets in milliseconds (Kafka's `TotalTimeMs` is in ms too). Long polls
/// (Fetch `max_wait_ms`) and JoinGroup's rebalance waits fill the upper ones.
const TOTAL_TIME_BUCKETS_MS: &[f64] = &[
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0, 30000.0, 60000.0,
];

/// Queue time buckets in milliseconds: decoding a frame takes microseconds.
const QUEUE_TIME_BUCKETS_MS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 50.0];

/// API keys with their own row in the request table; the two rows after them are Kafka's
/// split of Fetch into FetchConsumer and FetchFollower.
const API_SLOTS: usize = 128;
const FETCH_CONSUMER: usize = API_SLOTS;
const FETCH_FOLLOWER: usize = API_SLOTS + 1;

/// Versions with a cached counter handle; a higher one is looked up by label.
const CACHED_VERSIONS: usize = 32;

/// Error codes with a cached name and counter: -1 (UNKNOWN_SERVER_ERROR) up to this.
const MAX_CACHED_ERROR: i16 = 255;

/// Every metric the broker moves as things happen.
struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    total_time: HistogramVec,
    queue_time: HistogramVec,
    errors: IntCounterVec,
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    messages_in: IntCounterVec,
    produce_requests: IntCounterVec,
    fetch_requests: IntCounterVec,
    replication_bytes_in: IntCounter,
    replication_bytes_out: IntCounter,
    connections: IntGaugeVec,
    connections_created: IntCounterVec,
    connections_closed: IntCounterVec,
    authentications_succeeded: IntCounterVec,
    authentications_failed: IntCounterVec,
    isr_shrinks: IntCounter,
    isr_expands: IntCounter,
    apis: Vec<ApiMetrics>,
    error_names: Vec<String>,
    topics: Mutex<HashMap<String, Arc<TopicMetrics>>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, vec.clone());
    vec
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, c.clone());
    c
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let vec = HistogramVec::new(opts, labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, vec.clone());
    vec
}

/// The names and label sets are constants of this file: a refusal is a bug here, found by
/// the first test that touches metrics.
fn register(registry: &Registry, c: impl Collector + 'static) {
    if let Err(e) = registry.register(Box::new(c)) {
        panic!("registering a metric: {e}");
    }
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let topic = &["topic"];
        let listener = &["listener"];
        Metrics {
            requests: counter_vec(
                &r,
                "kafka_network_requestmetrics_requests_total",
                "Requests served, by API and version (Kafka's RequestMetrics RequestsPerSec)",
                &["request", "version"],
            ),
            total_time: histogram_vec(
                &r,
                "kafka_network_requestmetrics_totaltimems",
                "Milliseconds from a request's frame read to its response written (TotalTimeMs)",
                TOTAL_TIME_BUCKETS_MS,
                &["request"],
            ),
            queue_time: histogram_vec(
                &r,
                "kafka_network_requestmetrics_requestqueuetimems",
                "Milliseconds from a request's frame read to its handler start: decoding and checks (RequestQueueTimeMs)",
                QUEUE_TIME_BUCKETS_MS,
                &["request"],
            ),
            errors: counter_vec(
                &r,
                "kafka_network_requestmetrics_errors_total",
                "Error codes in Produce and Fetch responses, one per partition, NONE included (ErrorsPerSec)",
                &["request", "error"],
            ),
            bytes_in: counter_vec(
                &r,
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Record bytes appended by producers, by topic (BytesInPerSec)",
                topic,
            ),
            bytes_out: counter_vec(
                &r,
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Record bytes sent to consumers, by topic (BytesOutPerSec; followers not counted)",
                topic,
            ),
            messages_in: counter_vec(
                &r,
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records appended by producers, by topic (MessagesInPerSec)",
                topic,
            ),
            produce_requests: counter_vec(
                &r,
                "kafka_server_brokertopicmetrics_totalproducerequests_total",
                "Produce requests per topic, one per partition produced to (TotalProduceRequestsPerSec)",
                topic,
            ),
            fetch_requests: counter_vec(
                &r,
                "kafka_server_brokertopicmetrics_totalfetchrequests_total",
                "Fetch requests per topic, one per partition fetched (TotalFetchRequestsPerSec)",
                topic,
            ),
            replication_bytes_in: counter(
                &r,
                "kafka_server_brokertopicmetrics_replicationbytesin_total",
                "Record bytes appended from leaders by this broker's replica fetchers (ReplicationBytesInPerSec)",
            ),
            replication_bytes_out: counter(
                &r,
                "kafka_server_brokertopicmetrics_replicationbytesout_total",
                "Record bytes sent to followers (ReplicationBytesOutPerSec)",
            ),
            connections: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "kafka_server_socket_server_metrics_connection_count",
                        "Open client connections (socket-server-metrics connection-count)",
                    ),
                    listener,
                )
                .unwrap_or_else(|e| panic!("metric connection_count: {e}"));
                register(&r, g.clone());
                g
            },
            connections_created: counter_vec(
                &r,
                "kafka_server_socket_server_metrics_connection_creation_total",
                "Client connections accepted (connection-creation-total)",
                listener,
            ),
            connections_closed: counter_vec(
                &r,
                "kafka_server_socket_server_metrics_connection_close_total",
                "Client connections closed (connection-close-total)",
                listener,
            ),
            authentications_succeeded: counter_vec(
                &r,
                "kafka_server_socket_server_metrics_successful_authentication_total",
                "TLS and SASL authentications that succeeded (successful-authentication-total)",
                listener,
            ),
            authentications_failed: counter_vec(
                &r,
                "kafka_server_socket_server_metrics_failed_authentication_total",
                "TLS handshakes and SASL authentications that failed (failed-authentication-total)",
                listener,
            ),
            isr_shrinks: counter(
                &r,
                "kafka_server_replicamanager_isrshrinks_total",
                "ISR shrinks this broker made as leader and the controller accepted (IsrShrinksPerSec)",
            ),
            isr_expands: counter(
                &r,
                "kafka_server_replicamanager_isrexpands_total",
                "ISR expansions this broker made as leader and the controller accepted (IsrExpandsPerSec)",
            ),
            apis: (0..API_SLOTS + 2).map(ApiMetrics::new).collect(),
            error_names: (-1..=MAX_CACHED_ERROR).map(error_name).collect(),
            topics: Mutex::new(HashMap::new()),
            registry: r,
        }
    }
}

/// Kafka's name of an error code (`Errors.name()`): NONE, UNKNOWN_TOPIC_OR_PARTITION, ...
fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_CODE_{c}"),
        Some(e) => upper_snake(&e.to_string()),
    }
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    let chars: Vec<char> = camel.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// Kafka's name of a request as its metrics show it.
fn api_name(slot: usize) -> String {
    match slot {
        FETCH_CONSUMER => "FetchConsumer".to_string(),
        FETCH_FOLLOWER => "FetchFollower".to_string(),
        // The ZooKeeper-mode controller RPCs, which kafka-protocol 0.18's ApiKey lacks.
        4 => "LeaderAndIsr".to_string(),
        5 => "StopReplica".to_string(),
        6 => "UpdateMetadata".to_string(),
        7 => "ControlledShutdown".to_string(),
        _ => i16::try_from(slot)
            .ok()
            .and_then(|k| ApiKey::try_from(k).ok())
            .map_or_else(|| format!("ApiKey{slot}"), |k| format!("{k:?}")),
    }
}

/// One API's handles, created on first use so that only APIs served show up.
struct ApiMetrics {
    name: String,
    versions: Vec<OnceLock<IntCounter>>,
    total_time: OnceLock<Histogram>,
    queue_time: OnceLock<Histogram>,
    /// By error code + 1 (-1 first).
    errors: OnceLock<Vec<OnceLock<IntCounter>>>,
}

impl ApiMetrics {
    fn new(slot: usize) -> ApiMetrics {
        ApiMetrics {
            name: api_name(slot),
            versions: (0..CACHED_VERSIONS).map(|_| OnceLock::new()).collect(),
            total_time: OnceLock::new(),
            queue_time: OnceLock::new(),
            errors: OnceLock::new(),
        }
    }

    fn count(&'static self, version: i16) {
        let m = &*METRICS;
        match usize::try_from(version)
            .ok()
            .and_then(|v| self.versions.get(v))
        {
            Some(slot) => slot
                .get_or_init(|| {
                    m.requests
                        .with_label_values(&[self.name.as_str(), &version.to_string()])
                })
                .inc(),
            None => m
                .requests
                .with_label_values(&[self.name.as_str(), &version.to_string()])
                .inc(),
        }
    }

    fn total_time(&'static self) -> &'static Histogram {
        self.total_time
            .get_or_init(|| METRICS.total_time.with_label_values(&[self.name.as_str()]))
    }

    fn queue_time(&'static self) -> &'static Histogram {
        self.queue_time
            .get_or_init(|| METRICS.queue_time.with_label_values(&[self.name.as_str()]))
    }

    fn count_error(&'static self, code: i16, n: u64) {
        let m = &*METRICS;
        let slots = self
            .errors
            .get_or_init(|| (-1..=MAX_CACHED_ERROR).map(|_| OnceLock::new()).collect());
        match usize::try_from(i32::from(code) + 1)
            .ok()
            .and_then(|i| Some((slots.get(i)?, m.error_names.get(i)?)))
        {
            Some((slot, name)) => slot
                .get_or_init(|| {
                    m.errors
                        .with_label_values(&[self.name.as_str(), name.as_str()])
                })
                .inc_by(n),
            None => m
                .errors
                .with_label_values(&[self.name.as_str(), &error_name(code)])
                .inc_by(n),
        }
    }
}

/// The row of an API key in the request table (an impossible key shares the last row; the
/// decoder refuses unknown keys before any of this).
fn slot(api_key: i16) -> usize {
    usize::try_from(api_key)
        .ok()
        .filter(|k| *k < API_SLOTS)
        .unwrap_or(API_SLOTS - 1)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One request's metrics, from its frame read to its response written.
pub struct RequestMetrics {
    api: &'static ApiMetrics,
    /// Fetch also counts as FetchConsumer or FetchFollower, as in Kafka.
    fetch_kind: Option<&'static ApiMetrics>,
}

/// The handles of a request of `api_key` at `version`; `follower` says for a Fetch whether
/// a replica sent it. Counts the request now, so that a client that has its answer sees it
/// counted.
pub fn request(api_key: i16, version: i16, follower: Option<bool>) -> RequestMetrics {
    let m = &*METRICS;
    let api = &m.apis[slot(api_key)];
    let fetch_kind = follower.map(|f| &m.apis[if f { FETCH_FOLLOWER } else { FETCH_CONSUMER }]);
    api.count(version);
    if let Some(k) = fetch_kind {
        k.count(version);
    }
    RequestMetrics { api, fetch_kind }
}

impl RequestMetrics {
    /// The time from the frame read to the handler's start.
    pub fn queued(&self, d: Duration) {
        let v = ms(d);
        self.api.queue_time().observe(v);
        if let Some(k) = self.fetch_kind {
            k.queue_time().observe(v);
        }
    }

    /// The time from the frame read to the response written (or to the handler's end when
    /// nothing is sent).
    pub fn done(&self, d: Duration) {
        let v = ms(d);
        self.api.total_time().observe(v);
        if let Some(k) = self.fetch_kind {
            k.total_time().observe(v);
        }
    }
}

/// Counts the error codes of one response (one per partition, NONE included, as Kafka's
/// `errorCounts`), first adding up the first few distinct codes (on the stack) so that a
/// response of many partitions costs one counter update per code.
pub fn response_errors(api_key: ApiKey, codes: impl IntoIterator<Item = i16>) {
    let api = &METRICS.apis[slot(api_key as i16)];
    const DISTINCT: usize = 8;
    let mut seen = [(0i16, 0u64); DISTINCT];
    let mut used = 0;
    for code in codes {
        match seen[..used].iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None if used < DISTINCT => {
                seen[used] = (code, 1);
                used += 1;
            }
            None => api.count_error(code, 1),
        }
    }
    for &(code, n) in &seen[..used] {
        api.count_error(code, n);
    }
}

/// One topic's counters. Each `Partition` of the topic holds the same `Arc`.
pub struct TopicMetrics {
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    pub messages_in: IntCounter,
    pub produce_requests: IntCounter,
    pub fetch_requests: IntCounter,
}

/// The counters of `topic`, created on first use.
pub fn topic(topic: &str) -> Arc<TopicMetrics> {
    let m = &*METRICS;
    let mut topics = m.topics.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = topics.get(topic) {
        return t.clone();
    }
    let labels = &[topic];
    let t = Arc::new(TopicMetrics {
        bytes_in: m.bytes_in.with_label_values(labels),
        bytes_out: m.bytes_out.with_label_values(labels),
        messages_in: m.messages_in.with_label_values(labels),
        produce_requests: m.produce_requests.with_label_values(labels),
        fetch_requests: m.fetch_requests.with_label_values(labels),
    });
    topics.insert(topic.to_string(), t.clone());
    t
}

/// A deleted topic's series go (Kafka removes a topic's metrics with it); a partition still
/// holding the old handles counts into nothing.
pub fn forget_topic(topic: &str) {
    let m = &*METRICS;
    let removed = m
        .topics
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(topic);
    if removed.is_some() {
        let labels = &[topic];
        for vec in [
            &m.bytes_in,
            &m.bytes_out,
            &m.messages_in,
            &m.produce_requests,
            &m.fetch_requests,
        ] {
            let _ = vec.remove_label_values(labels);
        }
    }
}

pub fn replication_bytes_in(bytes: u64) {
    METRICS.replication_bytes_in.inc_by(bytes);
}

pub fn replication_bytes_out(bytes: u64) {
    METRICS.replication_bytes_out.inc_by(bytes);
}

pub fn isr_shrunk() {
    METRICS.isr_shrinks.inc();
}

pub fn isr_expanded() {
    METRICS.isr_expands.inc();
}

/// The connection counters of one listener, looked up once.
pub struct ConnectionCounters {
    open: IntGauge,
    created: IntCounter,
    closed: IntCounter,
    authentications_succeeded: IntCounter,
    authentications_failed: IntCounter,
}

/// The counters of the listener named `listener` (e.g. PLAINTEXT).
pub fn connections(listener: &str) -> ConnectionCounters {
    let m = &*METRICS;
    ConnectionCounters {
        open: m.connections.with_label_values(&[listener]),
        created: m.connections_created.with_label_values(&[listener]),
        closed: m.connections_closed.with_label_values(&[listener]),
        authentications_succeeded: m.authentications_succeeded.with_label_values(&[listener]),
        authentications_failed: m.authentications_failed.with_label_values(&[listener]),
    }
}

impl ConnectionCounters {
    /// Counts an accepted connection: open until the guard drops.
    pub fn opened(&self) -> ConnectionGuard {
        self.created.inc();
        self.open.inc();
        ConnectionGuard {
            open: self.open.clone(),
            closed: self.closed.clone(),
        }
    }

    /// Counts a TLS handshake or SASL authentication that succeeded.
    pub fn authenticated(&self) {
        self.authentications_succeeded.inc();
    }

    /// Counts a TLS handshake or SASL authentication that failed.
    pub fn authentication_failed(&self) {
        self.authentications_failed.inc();
    }
}

/// An accepted connection, counted open while this lives.
pub struct ConnectionGuard {
    open: IntGauge,
    closed: IntCounter,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.dec();
        self.closed.inc();
    }
}

/// ZooKeeper session state as Kafka's `SessionExpireListener` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZkSessionState {
    Connected,
    /// Connection lost; the client reconnects within the session.
    Connecting,
    Expired,
    Closed,
}

impl ZkSessionState {
    const ALL: [ZkSessionState; 4] = [
        ZkSessionState::Connected,
        ZkSessionState::Connecting,
        ZkSessionState::Expired,
        ZkSessionState::Closed,
    ];

    fn name(self) -> &'static str {
        match self {
            ZkSessionState::Connected => "CONNECTED",
            ZkSessionState::Connecting => "CONNECTING",
            ZkSessionState::Expired => "EXPIRED",
            ZkSessionState::Closed => "CLOSED",
        }
    }
}

/// The ZooKeeper metrics, registered only when the broker runs in cluster mode.
struct ZkMetrics {
    state: IntGaugeVec,
    expires: IntCounter,
    disconnects: IntCounter,
    connects: IntCounter,
}

static ZK: LazyLock<ZkMetrics> = LazyLock::new(|| {
    let r = &METRICS.registry;
    let state = IntGaugeVec::new(
        Opts::new(
            "kafka_server_sessionexpirelistener_sessionstate",
            "1 for the ZooKeeper session's current state, 0 for the others (SessionState)",
        ),
        &["state"],
    )
    .unwrap_or_else(|e| panic!("metric sessionstate: {e}"));
    register(r, state.clone());
    ZkMetrics {
        state,
        expires: counter(
            r,
            "kafka_server_sessionexpirelistener_zookeeperexpires_total",
            "ZooKeeper sessions that expired (ZooKeeperExpiresPerSec)",
        ),
        disconnects: counter(
            r,
            "kafka_server_sessionexpirelistener_zookeeperdisconnects_total",
            "Connections to ZooKeeper lost within a session (ZooKeeperDisconnectsPerSec)",
        ),
        connects: counter(
            r,
            "kafka_server_sessionexpirelistener_zookeepersyncconnects_total",
            "Connections to ZooKeeper made, first and re-made (ZooKeeperSyncConnectsPerSec)",
        ),
    }
});

/// The ZooKeeper session entered `state` (counting disconnects, expiries and connects).
pub fn zk_session(state: ZkSessionState) {
    let zk = &*ZK;
    for s in ZkSessionState::ALL {
        zk.state
            .with_label_values(&[s.name()])
            .set(i64::from(s == state));
    }
    match state {
        ZkSessionState::Connected => zk.connects.inc(),
        ZkSessionState::Connecting => zk.disconnects.inc(),
        ZkSessionState::Expired => zk.expires.inc(),
        ZkSessionState::Closed => {}
    }
}

/// Every family of the registry (those with at least one series).
pub fn gather() -> Vec<MetricFamily> {
    METRICS.registry.gather()
}

/// A gauge family built at scrape time from `rows` (label values, value); nothing if there
/// are no rows (the text format has no empty family).
pub fn gauge_family<'a, L>(
    name: &str,
    help: &str,
    labels: &[&str],
    rows: impl IntoIterator<Item = (L, i64)>,
) -> Vec<MetricFamily>
where
    L: AsRef<[&'a str]>,
{
    let vec = match IntGaugeVec::new(Opts::new(name, help), labels) {
        Ok(v) => v,
        Err(e) => panic!("metric {name}: {e}"),
    };
    let mut any = false;
    for (values, v) in rows {
        vec.with_label_values(values.as_ref()).set(v);
        any = true;
    }
    if any {
        vec.collect()
    } else {
        Vec::new()
    }
}

/// Renders families in Prometheus' text format (version 0.0.4).
pub fn encode_text(families: &[MetricFamily]) -> Result<String, prometheus::Error> {
    let mut out = String::new();
    prometheus::TextEncoder::new().encode_utf8(families, &mut out)?;
    Ok(out)
}

/// The text format's content type.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(32000), "UNKNOWN_CODE_32000");
    }

    #[test]
    fn api_names_are_kafkas() {
        assert_eq!(api_name(0), "Produce");
        assert_eq!(api_name(1), "Fetch");
        assert_eq!(api_name(4), "LeaderAndIsr");
        assert_eq!(api_name(18), "ApiVersions");
        assert_eq!(api_name(FETCH_FOLLOWER), "FetchFollower");
    }

    #[test]
    fn every_family_renders() {
        request(0, 9, None).done(Duration::from_millis(3));
        response_errors(ApiKey::Produce, [0, 3, 3]);
        topic("metrics-unit").bytes_in.inc_by(10);
        let text = encode_text(&gather()).expect("encodes");
        assert!(text.contains(
            r#"kafka_network_requestmetrics_requests_total{request="Produce",version="9"}"#
        ));
        assert!(text.contains(
            r#"kafka_network_requestmetrics_errors_total{error="UNKNOWN_TOPIC_OR_PARTITION",request="Produce"}"#
        ));
        assert!(
            text.contains(r#"kafka_server_brokertopicmetrics_bytesin_total{topic="metrics-unit"}"#)
        );
        forget_topic("metrics-unit");
        let text = encode_text(&gather()).expect("encodes");
        assert!(!text.contains(r#"topic="metrics-unit""#));
    }
}
