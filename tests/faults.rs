//! Broker-level faults: after kill -9, a byte flipped inside a stored batch and garbage in
//! the checkpoint files, the broker starts, serves exactly the batches before the corrupt
//! one and appends after them; a compacted topic is cleaned by the background cleaner and
//! survives a kill -9 right after.

mod common;

use std::time::{Duration, Instant};

use common::{create_topic, name, produce, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::records::RecordBatchDecoder;

/// Every (offset, key, value) from `from`, fetch after fetch.
fn read_all(c: &mut Client, topic: &str) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    let mut next = 0;
    loop {
        let req = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(50 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(1024 * 1024)])]);
        let p = c.call(12, &req).responses[0].partitions[0].clone();
        assert_eq!(p.error_code, 0);
        let mut bytes = p.records.unwrap_or_default();
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        let before = next;
        for s in sets {
            for r in s.records {
                out.push((
                    r.offset,
                    String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
                next = r.offset + 1;
            }
        }
        if next == before {
            return out;
        }
    }
}

#[test]
fn a_flipped_byte_and_garbage_checkpoints_after_kill_9() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    create_topic(&mut c, "t", &[]);
    assert_eq!(produce(&mut c, "t", &[("a", "1"), ("b", "2")]), (0, 0));
    assert_eq!(produce(&mut c, "t", &[("c", "3")]), (0, 2));
    assert_eq!(produce(&mut c, "t", &[("d", "4")]), (0, 3));
    drop(c);
    broker.kill9();
    let seg = broker.data_dir().join("t-0/00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let first_len = {
        let len = i32::from_be_bytes(bytes[8..12].try_into().unwrap());
        len as usize + 12
    };
    bytes[first_len + 40] ^= 0x01; // inside the second batch, under its CRC
    std::fs::write(&seg, &bytes).unwrap();
    for f in [
        "recovery-point-offset-checkpoint",
        "log-start-offset-checkpoint",
        "cleaner-offset-checkpoint",
    ] {
        std::fs::write(broker.data_dir().join(f), b"0\n7\ngarbage\n").unwrap();
    }
    broker.restart();
    let mut c = broker.client();
    assert_eq!(
        read_all(&mut c, "t"),
        vec![(0, "a".into(), "1".into()), (1, "b".into(), "2".into())]
    );
    assert_eq!(produce(&mut c, "t", &[("e", "5")]), (0, 2));
    assert!(broker
        .log()
        .contains("damaged record batch found by recovery"));
}

#[test]
fn the_cleaner_compacts_a_topic_and_the_result_survives_kill_9() {
    let mut broker = BrokerProcess::start(&["log.cleaner.backoff.ms=100"]);
    let mut c = broker.client();
    create_topic(
        &mut c,
        "kv",
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    // Keyless records are refused: INVALID_RECORD.
    assert_eq!(
        produce(&mut c, "kv", &[("", "x")]).0,
        0,
        "an empty key is a key"
    );
    let mut expected = std::collections::BTreeMap::new();
    for i in 1..=300 {
        let key = format!("k{}", i % 7);
        let value = format!("v{i}");
        let (err, offset) = produce(&mut c, "kv", &[(key.as_str(), value.as_str())]);
        assert_eq!(err, 0);
        expected.insert(key, (offset, value));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = read_all(&mut c, "kv");
        // Compacted: the records below the active segment are one per key.
        if got.len() < 60 {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted: {} records",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The newest value of each key is there, at its offset, and nothing older survives
    // twice below it.
    for (key, (offset, value)) in &expected {
        assert!(
            got.contains(&(*offset, key.clone(), value.clone())),
            "{key} newest missing"
        );
    }
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    drop(c);
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    let after = read_all(&mut c, "kv");
    assert!(after.len() <= got.len() && after.len() >= 7);
    for (key, (offset, value)) in &expected {
        assert!(after.contains(&(*offset, key.clone(), value.clone())));
    }
    assert_eq!(produce(&mut c, "kv", &[("k1", "new")]), (0, 301));
    // The cleaner writes its checkpoint after its round of cleanings, which the kill may
    // have cut short; the restarted broker's cleaner writes it again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cleaner_checkpoint(&broker).contains("kv 0 ") {
        assert!(
            Instant::now() < deadline,
            "no cleaner checkpoint for kv 0: {:?}",
            cleaner_checkpoint(&broker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cleaner_checkpoint(broker: &BrokerProcess) -> String {
    std::fs::read_to_string(broker.data_dir().join("cleaner-offset-checkpoint")).unwrap_or_default()
}

fn fill_updates(c: &mut Client, topic: &str) -> usize {
    for i in 0..200 {
        let (key, value) = (format!("k{}", i % 5), format!("v{i}"));
        assert_eq!(produce(c, topic, &[(key.as_str(), value.as_str())]).0, 0);
    }
    read_all(c, topic).len()
}

#[test]
fn the_cleaner_follows_the_dirty_ratio_max_lag_and_live_config_changes() {
    use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let broker = BrokerProcess::start(&["log.cleaner.backoff.ms=50"]);
    let mut c = broker.client();
    let compact = [("cleanup.policy", "compact"), ("segment.bytes", "1024")];
    create_topic(
        &mut c,
        "eager",
        &[
            compact[0],
            compact[1],
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    create_topic(
        &mut c,
        "lazy",
        &[compact[0], compact[1], ("min.cleanable.dirty.ratio", "1.0")],
    );
    create_topic(
        &mut c,
        "overdue",
        &[
            compact[0],
            compact[1],
            ("min.cleanable.dirty.ratio", "1.0"),
            ("max.compaction.lag.ms", "1"),
        ],
    );
    fill_updates(&mut c, "eager");
    assert_eq!(fill_updates(&mut c, "lazy"), 200);
    fill_updates(&mut c, "overdue");
    // A cleaning that starts while the producer still writes covers only part of the log;
    // the next one (after log.cleaner.backoff.ms) takes the rest.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let checkpoint = cleaner_checkpoint(&broker);
        let eager = read_all(&mut c, "eager").len();
        let overdue = read_all(&mut c, "overdue").len();
        if checkpoint.contains("eager 0 ")
            && checkpoint.contains("overdue 0 ")
            && eager < 60
            && overdue < 60
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not cleaned: checkpoint {checkpoint:?}, {eager} records in eager, {overdue} in overdue"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A ratio must be exceeded: 1.0 never is, so this topic is untouched.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_all(&mut c, "lazy").len(), 200);
    assert!(!cleaner_checkpoint(&broker).contains("lazy 0 "));
    // Lowering the ratio on the running topic makes the cleaner take it.
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("lazy"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("min.cleanable.dirty.ratio"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_static_str("0.1")))]),
    ]);
    assert_eq!(c.call(1, &req).responses[0].error_code, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cleaner_checkpoint(&broker).contains("lazy 0 ") {
        assert!(
            Instant::now() < deadline,
            "lazy not cleaned after the change"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let lazy = read_all(&mut c, "lazy");
    assert!(lazy.len() < 60, "{} records", lazy.len());
    // The newest value of every key is there.
    for k in 0..5 {
        let newest = (195 + k) as i64;
        assert!(lazy.contains(&(newest, format!("k{k}"), format!("v{newest}"))));
    }
}

/// One batch of records whose value may be null (tombstones), timestamp `ts`.
fn tombstone_batch(records: &[(&str, Option<&str>)], ts: i64) -> bytes::Bytes {
    use gregor_protocol::kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: ts,
            key: Some(bytes::Bytes::copy_from_slice(k.as_bytes())),
            value: v.map(|v| bytes::Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Snappy,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Every (offset, key, value or None) from offset 0.
fn read_with_tombstones(c: &mut Client, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut next = 0;
    loop {
        let req = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(50 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(1024 * 1024)])]);
        let p = c.call(12, &req).responses[0].partitions[0].clone();
        assert_eq!(p.error_code, 0);
        let mut bytes = p.records.unwrap_or_default();
        let before = next;
        for s in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in s.records {
                out.push((
                    r.offset,
                    String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                    r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                ));
                next = r.offset + 1;
            }
        }
        if next == before {
            return out;
        }
    }
}

#[test]
fn tombstones_go_after_delete_retention_without_new_writes() {
    let broker = BrokerProcess::start(&["log.cleaner.backoff.ms=50"]);
    let mut c = broker.client();
    create_topic(
        &mut c,
        "deletes",
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "1.0"),
            ("delete.retention.ms", "3000"),
        ],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let send = |c: &mut Client, recs: &[(&str, Option<&str>)]| {
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("deletes"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(tombstone_batch(recs, now)))])]);
        let p = c.call(9, &req).responses[0].partition_responses[0].clone();
        assert_eq!(p.error_code, 0);
        p.base_offset
    };
    for i in 0..20 {
        let v = format!("v{i}");
        send(&mut c, &[("a", Some(v.as_str())), ("b", Some(v.as_str()))]);
    }
    let tombstone = send(&mut c, &[("a", None)]);
    // Other keys push the tombstone out of the active segment.
    for i in 0..40 {
        let (k, v) = (format!("x{}", i % 3), format!("w{i}"));
        send(&mut c, &[(k.as_str(), Some(v.as_str()))]);
    }
    // Nothing is cleaned until the ratio drops; then one cleaning takes everything written.
    use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("deletes"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("min.cleanable.dirty.ratio"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_static_str("0.01")))]),
    ]);
    assert_eq!(c.call(1, &req).responses[0].error_code, 0);
    // First the cleaner keeps the tombstone (consumers get delete.retention.ms to see it) ...
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = read_with_tombstones(&mut c, "deletes");
        if !got.iter().any(|r| r.1 == "a" && r.2.is_some()) {
            assert!(
                got.contains(&(tombstone, "a".into(), None)),
                "tombstone kept by the first cleaning"
            );
            break;
        }
        assert!(Instant::now() < deadline, "key a not compacted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ... then, with no further writes, it goes once delete.retention.ms has passed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = read_with_tombstones(&mut c, "deletes");
        if !got.iter().any(|r| r.0 == tombstone) {
            break got;
        }
        assert!(Instant::now() < deadline, "tombstone still there");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(got.iter().all(|r| r.1 != "a"), "key a fully deleted");
    assert!(got
        .iter()
        .any(|r| r.1 == "b" && r.2.as_deref() == Some("v19")));
}

#[test]
fn a_damaged_partition_metadata_hides_no_data_and_reuses_no_offset() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    create_topic(&mut c, "kept", &[]);
    assert_eq!(produce(&mut c, "kept", &[("a", "1"), ("b", "2")]), (0, 0));
    drop(c);
    assert!(broker.stop());
    let file = broker.data_dir().join("kept-0/partition.metadata");
    let good = std::fs::read_to_string(&file).unwrap();
    assert!(good.starts_with("version: 0\ntopic_id: "), "{good:?}");

    // Kafka's exact form and an extra newline name the same topic id: served as before.
    for text in [good.trim_end().to_string(), format!("{good}\n\n")] {
        std::fs::write(&file, &text).unwrap();
        broker.restart();
        let mut c = broker.client();
        assert_eq!(read_all(&mut c, "kept").len(), 2, "{text:?}");
        drop(c);
        assert!(broker.stop());
    }

    // Empty (what a crash during a non-atomic write could leave) or garbage: the broker
    // refuses to start, names the file and the way out, and moves nothing aside.
    for text in ["", "version: 0\ntopic_id: ???"] {
        std::fs::write(&file, text).unwrap();
        let log = broker
            .try_restart()
            .expect_err("a start on an unreadable partition.metadata");
        assert!(
            log.contains("partition.metadata") && log.contains("delete it"),
            "{log}"
        );
        let strays = std::fs::read_dir(broker.data_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with("-stray")
            })
            .count();
        assert_eq!(strays, 0);
    }

    // The way out the message gives: delete the file. The data is adopted, the next
    // record goes after it, and the file is rewritten with the topic's id.
    std::fs::remove_file(&file).unwrap();
    broker.restart();
    let mut c = broker.client();
    assert_eq!(produce(&mut c, "kept", &[("c", "3")]), (0, 2));
    assert_eq!(
        read_all(&mut c, "kept"),
        vec![
            (0, "a".into(), "1".into()),
            (1, "b".into(), "2".into()),
            (2, "c".into(), "3".into())
        ]
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), good.trim_end());
}

#[test]
fn a_missing_metadata_file_beside_partitions_refuses_the_start() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    create_topic(&mut c, "orders", &[]);
    assert_eq!(produce(&mut c, "orders", &[("a", "1"), ("b", "2")]), (0, 0));
    drop(c);
    assert!(broker.stop());
    let file = broker.data_dir().join("gregor-metadata.json");
    let saved = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    // Starting empty would auto-create "orders" with a new id on the next Metadata request
    // and move the two records aside; instead the start is refused with the way out.
    let log = broker
        .try_restart()
        .expect_err("a start without its metadata file");
    assert!(
        log.contains("gregor-metadata.json is missing") && log.contains("orders-0"),
        "{log}"
    );
    assert!(!file.exists(), "nothing was written in its place");
    // Restored from the backup, everything is there and offsets go on.
    std::fs::write(&file, saved).unwrap();
    broker.restart();
    let mut c = broker.client();
    assert_eq!(produce(&mut c, "orders", &[("c", "3")]), (0, 2));
    assert_eq!(read_all(&mut c, "orders").len(), 3);
}

#[test]
fn an_unreachable_zookeeper_is_said_at_once_counted_down_and_named_when_the_start_fails() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let connect = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut broker = common::FailingBroker::spawn(&[
        &format!("zookeeper.connect={connect}"),
        "zookeeper.session.timeout.ms=5000",
    ]);
    // Said at once, not after the timeout.
    let deadline = started + Duration::from_secs(2);
    while !broker.log().contains("connecting to ZooKeeper") {
        assert!(Instant::now() < deadline, "nothing said: {}", broker.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = broker
        .wait_exit(Duration::from_secs(20))
        .expect("the start gives up");
    assert!(!status.success());
    let log = broker.log();
    let countdown: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ZooKeeper not reachable yet"))
        .collect();
    assert!(countdown.len() >= 2, "{log}");
    assert!(countdown[0].contains("seconds_left=3"), "{}", countdown[0]);
    assert!(
        log.contains(&format!("cannot connect to ZooKeeper at {connect}")),
        "{log}"
    );
}
