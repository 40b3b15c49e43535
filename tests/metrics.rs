//! The Prometheus endpoint (`metrics.port`) of a real broker, scraped over HTTP while real
//! Kafka requests go through its socket: every number checked is compared with what the
//! test did (bytes and records produced, requests sent, errors provoked, connections held,
//! files on disk, offsets committed), before and after.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{batch, free_port, BrokerProcess, Client, FailingBroker, Scrape};
use gregor_protocol::kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::{
    ApiVersionsRequest, DescribeLogDirsRequest, FindCoordinatorRequest, GroupId,
    OffsetCommitRequest, ProduceRequest,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

const TOPIC: &str = "metered";
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Produces one batch of `n` records to `partition` (acks=1, Produce v9); the batch's bytes
/// and the partition's error code.
fn produce(c: &mut Client, partition: i32, n: usize, tag: &str) -> (usize, i16) {
    let keys: Vec<(String, String)> = (0..n)
        .map(|i| (format!("{tag}-k{i}"), format!("{tag}-value-{i}")))
        .collect();
    let records: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let records = batch(&records, None, 1_000);
    let len = records.len();
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(common::name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let code = c.call(9, &req).responses[0].partition_responses[0].error_code;
    (len, code)
}

/// DescribeLogDirs' size of one partition.
fn described_size(c: &mut Client, partition: i32) -> i64 {
    let req =
        DescribeLogDirsRequest::default()
            .with_topics(Some(vec![DescribableLogDirTopic::default()
                .with_topic(common::name(TOPIC))
                .with_partitions(vec![partition])]));
    let resp = c.call(1, &req);
    let sizes: Vec<i64> = resp
        .results
        .iter()
        .flat_map(|r| r.topics.iter())
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.partition_index == partition)
        .map(|p| p.partition_size)
        .collect();
    assert_eq!(sizes.len(), 1, "one directory holds the partition");
    sizes[0]
}

/// The `.log` files of a partition directory: (count, total bytes).
fn segment_files(dir: &Path) -> (usize, u64) {
    let mut count = 0;
    let mut bytes = 0;
    for e in std::fs::read_dir(dir)
        .expect("partition directory")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "log") {
            count += 1;
            bytes += e.metadata().expect("segment metadata").len();
        }
    }
    (count, bytes)
}

/// Commits `offset` for `group` on `partition` (a simple commit: generation -1, no
/// member), after creating `__consumer_offsets` with FindCoordinator; waits until the
/// coordinator has loaded.
fn commit(c: &mut Client, group: &str, partition: i32, offset: i64) {
    let find = FindCoordinatorRequest::default().with_key(s(group));
    eventually("a coordinator", || {
        (c.call(3, &find).error_code == 0).then_some(())
    });
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(common::name(TOPIC))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    eventually("the commit accepted", || {
        (c.call(8, &req).topics[0].partitions[0].error_code == 0).then_some(())
    });
}

fn topic_value(m: &Scrape, name: &str) -> f64 {
    m.value(name, &[("topic", TOPIC)])
}

fn partition_value(m: &Scrape, name: &str, partition: &str) -> Option<f64> {
    m.get(name, &[("topic", TOPIC), ("partition", partition)])
}

#[test]
fn metrics_follow_what_clients_do() {
    let metrics_port = free_port();
    let b = BrokerProcess::start(&[
        &format!("metrics.port={metrics_port}"),
        "offsets.topic.num.partitions=1",
        "group.initial.rebalance.delay.ms=0",
    ]);
    // The broker listens on its Kafka port and its metrics port, nothing else.
    assert_eq!(
        b.listening_ports(),
        [b.port, metrics_port].into_iter().collect()
    );
    let mut c = b.client();
    assert_eq!(common::try_create_topic(&mut c, TOPIC, 2, &[]), 0);
    let before = b.scrape();

    // Produce: 3 requests to partition 0 (2 + 3 + 4 records), 1 to partition 1 (5 records),
    // 1 to a partition that does not exist.
    let mut p0_bytes = 0;
    let mut all_bytes = 0;
    for (i, n) in [2, 3, 4].into_iter().enumerate() {
        let (len, code) = produce(&mut c, 0, n, &format!("p0-{i}"));
        assert_eq!(code, 0);
        p0_bytes += len;
        all_bytes += len;
    }
    let (len, code) = produce(&mut c, 1, 5, "p1");
    assert_eq!(code, 0);
    all_bytes += len;
    let (_, code) = produce(&mut c, 7, 1, "nowhere");
    assert_eq!(code, UNKNOWN_TOPIC_OR_PARTITION);
    let after = b.scrape();
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };

    let bytes_in = delta(
        "kafka_server_brokertopicmetrics_bytesin_total",
        &[("topic", TOPIC)],
    );
    assert!(
        bytes_in >= all_bytes as f64,
        "bytes in grew by {bytes_in}, {all_bytes} were produced"
    );
    assert_eq!(
        delta(
            "kafka_server_brokertopicmetrics_messagesin_total",
            &[("topic", TOPIC)]
        ),
        14.0,
        "2 + 3 + 4 + 5 records"
    );
    assert_eq!(
        delta(
            "kafka_network_requestmetrics_requests_total",
            &[("request", "Produce"), ("version", "9")]
        ),
        5.0
    );
    assert_eq!(
        delta(
            "kafka_network_requestmetrics_errors_total",
            &[
                ("request", "Produce"),
                ("error", "UNKNOWN_TOPIC_OR_PARTITION")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "kafka_network_requestmetrics_errors_total",
            &[("request", "Produce"), ("error", "NONE")]
        ),
        4.0
    );
    assert_eq!(
        delta(
            "kafka_server_brokertopicmetrics_totalproducerequests_total",
            &[("topic", TOPIC)]
        ),
        4.0,
        "the partition that does not exist is no request to the topic's partitions"
    );
    // The total time of a request is observed once its answer is written: eventually.
    eventually("5 Produce latencies", || {
        let m = b.scrape();
        let n = m.value(
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "Produce")],
        ) - before.value(
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "Produce")],
        );
        (n == 5.0).then_some(())
    });
    let m = b.scrape();
    let buckets = m.value(
        "kafka_network_requestmetrics_totaltimems_bucket",
        &[("request", "Produce"), ("le", "+Inf")],
    );
    assert_eq!(
        buckets,
        m.value(
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "Produce")]
        )
    );
    assert!(m.has("kafka_network_requestmetrics_requestqueuetimems_bucket"));

    // Fetch partition 0 from the start (Fetch v12): its bytes out are the batches as stored,
    // which have the length they were produced with.
    let fetch_before = b.scrape();
    let read = common::try_read_keyed(&mut c, TOPIC, 0).expect("fetch partition 0");
    assert_eq!(read.len(), 9);
    let m = b.scrape();
    assert_eq!(
        topic_value(&m, "kafka_server_brokertopicmetrics_bytesout_total")
            - topic_value(
                &fetch_before,
                "kafka_server_brokertopicmetrics_bytesout_total"
            ),
        p0_bytes as f64
    );
    let fetches = |m: &Scrape, request: &str| {
        m.value(
            "kafka_network_requestmetrics_requests_total",
            &[("request", request), ("version", "12")],
        )
    };
    // read_keyed: one fetch with the records, one that finds the end.
    assert_eq!(fetches(&m, "Fetch") - fetches(&fetch_before, "Fetch"), 2.0);
    assert_eq!(
        fetches(&m, "FetchConsumer") - fetches(&fetch_before, "FetchConsumer"),
        2.0
    );
    assert_eq!(fetches(&m, "FetchFollower"), 0.0);
    let fetch_errors = common::try_read_keyed(&mut c, TOPIC, 9);
    assert_eq!(fetch_errors, Err(UNKNOWN_TOPIC_OR_PARTITION));
    let m2 = b.scrape();
    let unknown = [
        ("request", "Fetch"),
        ("error", "UNKNOWN_TOPIC_OR_PARTITION"),
    ];
    assert_eq!(
        m2.value("kafka_network_requestmetrics_errors_total", &unknown)
            - m.value("kafka_network_requestmetrics_errors_total", &unknown),
        1.0
    );

    // Connections: this client and three more, each served a request (so accepted).
    let listener = [("listener", "PLAINTEXT")];
    let open = |m: &Scrape| {
        m.value(
            "kafka_server_socket_server_metrics_connection_count",
            &listener,
        )
    };
    let created = |m: &Scrape| {
        m.value(
            "kafka_server_socket_server_metrics_connection_creation_total",
            &listener,
        )
    };
    let closed = |m: &Scrape| {
        m.value(
            "kafka_server_socket_server_metrics_connection_close_total",
            &listener,
        )
    };
    // The harness's probes of the port while the broker started are closed by now.
    let m = eventually("the test's one client open", || {
        let m = b.scrape();
        (open(&m) == 1.0).then_some(m)
    });
    let mut more: Vec<Client> = (0..3).map(|_| b.client()).collect();
    for extra in &mut more {
        assert_eq!(extra.call(3, &ApiVersionsRequest::default()).error_code, 0);
    }
    let m3 = b.scrape();
    assert_eq!(open(&m3), 4.0);
    assert_eq!(created(&m3) - created(&m), 3.0);
    drop(more);
    let m4 = eventually("the three closed connections counted", || {
        let m4 = b.scrape();
        (open(&m4) == 1.0).then_some(m4)
    });
    assert_eq!(closed(&m4) - closed(&m3), 3.0);

    // Log size and segments per partition: what DescribeLogDirs and the files say.
    for p in [0, 1] {
        let label = p.to_string();
        let size = partition_value(&m4, "kafka_log_log_size", &label).expect("log size");
        let (files, file_bytes) = segment_files(&b.dir.join(format!("{TOPIC}-{p}")));
        assert!(size > 0.0);
        assert_eq!(size, described_size(&mut c, p) as f64);
        assert_eq!(size, file_bytes as f64);
        assert_eq!(
            partition_value(&m4, "kafka_log_log_numlogsegments", &label),
            Some(files as f64)
        );
    }
    assert_eq!(
        partition_value(&m4, "kafka_log_log_logendoffset", "0"),
        Some(9.0)
    );
    assert_eq!(
        partition_value(&m4, "kafka_log_log_logendoffset", "1"),
        Some(5.0)
    );

    // Standalone: the controller, nothing under-replicated or offline.
    for (name, want) in [
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            1.0,
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            0.0,
        ),
        ("kafka_server_replicamanager_underreplicatedpartitions", 0.0),
    ] {
        assert_eq!(m4.get(name, &[]), Some(want), "{name}");
    }
    assert!(
        !m4.has("kafka_server_sessionexpirelistener_sessionstate"),
        "no ZooKeeper standalone"
    );

    // Consumer lag: high watermark 9 on partition 0, committed 2; partition 1 has 5, committed 5.
    commit(&mut c, "metered-group", 0, 2);
    commit(&mut c, "metered-group", 1, 5);
    let m5 = b.scrape();
    let lag = |p: &str| {
        m5.get(
            "kafka_consumergroup_lag",
            &[
                ("group", "metered-group"),
                ("topic", TOPIC),
                ("partition", p),
            ],
        )
    };
    assert_eq!(lag("0"), Some(7.0));
    assert_eq!(lag("1"), Some(0.0));
    assert_eq!(
        m5.get(
            "kafka_consumergroup_current_offset",
            &[
                ("group", "metered-group"),
                ("topic", TOPIC),
                ("partition", "0")
            ],
        ),
        Some(2.0)
    );
    // More records raise the lag by as many.
    assert_eq!(produce(&mut c, 0, 4, "later").1, 0);
    let m6 = b.scrape();
    assert_eq!(
        m6.get(
            "kafka_consumergroup_lag",
            &[
                ("group", "metered-group"),
                ("topic", TOPIC),
                ("partition", "0")
            ],
        ),
        Some(11.0)
    );

    // Only /metrics is served.
    let (status, _) = common::http_get(metrics_port, "/").expect("GET /");
    assert_eq!(status, 404);
}

#[test]
fn metrics_port_zero_serves_nothing() {
    // The harness's default is metrics.port=0.
    let b = BrokerProcess::start(&[]);
    assert_eq!(b.metrics_port, 0);
    assert_eq!(
        b.listening_ports(),
        [b.port].into_iter().collect(),
        "only the Kafka listener"
    );
    assert!(!b.log().contains("serving Prometheus metrics"));
}

#[test]
fn a_metrics_port_in_use_stops_the_start() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let mut b = FailingBroker::spawn(&[&format!("metrics.port={port}")]);
    let status = b
        .wait_exit(Duration::from_secs(20))
        .expect("the broker exits");
    assert!(!status.success());
    let log = b.log();
    assert!(
        log.contains(&format!("cannot serve metrics on 127.0.0.1:{port}"))
            && log.contains("metrics.port"),
        "the log names the port and the key: {log}"
    );
}
