//! The partition leader's side of transactions, over the wire: transactional batches,
//! WriteTxnMarkers (as a transaction coordinator sends them), the last stable offset in
//! Fetch and ListOffsets, the aborted transactions a read_committed fetch names, and what
//! a kill -9 leaves of them. Real clients (confluent-kafka and kafka-python with
//! isolation.level=read_committed) then read the partition.
//!
//! A module of tests/api.rs (one test binary less to link).

use std::process::Command;

use crate::common::{create_topic, name, try_create_topic, BrokerProcess, Client};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    FetchRequest, ListOffsetsRequest, ProduceRequest, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const TOPIC: &str = "txn";
/// A leader that appends transactional batches without asking a coordinator (as Kafka
/// before 3.6): the tests of the partition's side write their own transactions.
const UNVERIFIED: &str = "transaction.partition.verification.enable=false";

/// One batch of `values` (keys = values), transactional when `txn` is set.
fn batch(values: &[&str], producer: (i64, i16, i32), txn: bool) -> Bytes {
    batch_at(values, producer, txn, 1_700_000_000_000)
}

/// `batch` with its records' timestamps from `timestamp` on.
fn batch_at(values: &[&str], producer: (i64, i16, i32), txn: bool, timestamp: i64) -> Bytes {
    let (pid, epoch, seq) = producer;
    let recs: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: txn,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: timestamp + i as i64,
            key: Some(Bytes::copy_from_slice(v.as_bytes())),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Produces one batch with acks=all: (error code, base offset).
fn produce(c: &mut Client, records: Bytes, transactional_id: Option<&str>) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string()))),
        )
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let p = c.call(9, &req).responses[0].partition_responses[0].clone();
    (p.error_code, p.base_offset)
}

/// WriteTxnMarkers for `pid` on `topic`-0: the partition's error code.
fn end_txn(c: &mut Client, topic: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(pid.into())
        .with_producer_epoch(epoch)
        .with_transaction_result(commit)
        .with_coordinator_epoch(3)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![0])])]);
    let resp = c.call(1, &req);
    assert_eq!(resp.markers[0].producer_id.0, pid);
    resp.markers[0].topics[0].partitions[0].error_code
}

struct Fetched {
    high_watermark: i64,
    last_stable_offset: i64,
    /// (producer id, first offset)
    aborted: Option<Vec<(i64, i64)>>,
    /// (offset, value) of data records; markers as (offset, "COMMIT"/"ABORT").
    records: Vec<(i64, String)>,
}

fn fetch(c: &mut Client, isolation_level: i8) -> Fetched {
    let req = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation_level)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(TOPIC))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp = c.call(12, &req);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let mut bytes = p.records.clone().unwrap_or_default();
    let mut records = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for r in set.records {
            let key = r.key.map(|k| k.to_vec()).unwrap_or_default();
            let text = if r.control {
                if key == [0, 0, 0, 1] {
                    "COMMIT"
                } else {
                    "ABORT"
                }
                .to_string()
            } else {
                String::from_utf8(key).unwrap()
            };
            records.push((r.offset, text));
        }
    }
    Fetched {
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        aborted: p.aborted_transactions.as_ref().map(|a| {
            a.iter()
                .map(|t| (t.producer_id.0, t.first_offset))
                .collect()
        }),
        records,
    }
}

/// ListOffsets LATEST at `isolation_level`.
fn latest(c: &mut Client, isolation_level: i8) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(isolation_level)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(TOPIC))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let p = c.call(7, &req).topics[0].partitions[0].clone();
    assert_eq!(p.error_code, 0);
    p.offset
}

fn offsets(records: &[(i64, String)]) -> Vec<String> {
    records.iter().map(|(o, v)| format!("{o}:{v}")).collect()
}

#[test]
fn markers_the_last_stable_offset_and_aborted_transactions_in_fetch() {
    // The transactions here are the test's own: no coordinator to verify them with.
    let mut broker = BrokerProcess::start(&[UNVERIFIED]);
    let mut c = broker.client();
    create_topic(&mut c, TOPIC, &[]);
    // 0-1 producer 1000's transaction, 2 producer 2000's, 3 a plain record.
    assert_eq!(
        produce(&mut c, batch(&["a1", "a2"], (1000, 0, 0), true), Some("t1")),
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, batch(&["b1"], (2000, 0, 0), true), Some("t2")),
        (0, 2)
    );
    assert_eq!(
        produce(&mut c, batch(&["c1"], (-1, -1, -1), false), None),
        (0, 3)
    );
    let open = fetch(&mut c, 1);
    assert_eq!((open.high_watermark, open.last_stable_offset), (4, 0));
    assert!(
        open.records.is_empty(),
        "read_committed stops at the first open transaction"
    );
    assert_eq!(latest(&mut c, 1), 0);
    assert_eq!(latest(&mut c, 0), 4);

    // Producer 1000 aborts (marker at 4): producer 2000 still holds the LSO at 2.
    assert_eq!(end_txn(&mut c, TOPIC, 1000, 0, false), 0);
    let f = fetch(&mut c, 1);
    assert_eq!((f.high_watermark, f.last_stable_offset), (5, 2));
    assert_eq!(offsets(&f.records), ["0:a1", "1:a2"]);
    assert_eq!(f.aborted, Some(vec![(1000, 0)]));
    // read_uncommitted sees everything to the high watermark and gets no aborted list.
    let u = fetch(&mut c, 0);
    assert_eq!(
        offsets(&u.records),
        ["0:a1", "1:a2", "2:b1", "3:c1", "4:ABORT"]
    );
    assert_eq!((u.last_stable_offset, u.aborted), (2, None));

    assert_eq!(end_txn(&mut c, TOPIC, 2000, 0, true), 0);
    let f = fetch(&mut c, 1);
    assert_eq!((f.high_watermark, f.last_stable_offset), (6, 6));
    assert_eq!(
        offsets(&f.records),
        ["0:a1", "1:a2", "2:b1", "3:c1", "4:ABORT", "5:COMMIT"]
    );
    assert_eq!(f.aborted, Some(vec![(1000, 0)]));
    assert_eq!(latest(&mut c, 1), 6);

    // Refusals: a client's control batch, a marker from an older coordinator epoch or
    // producer epoch, a plain write inside an open transaction, an unknown partition.
    let control = gregor_log::EndTxnMarker {
        commit: true,
        coordinator_epoch: 0,
    }
    .batch(3000, 0, 0);
    // (A control batch is transactional: without a transactional id Kafka refuses it
    // earlier, with TRANSACTIONAL_ID_AUTHORIZATION_FAILED.)
    assert_eq!(produce(&mut c, control.clone(), None).0, 53);
    assert_eq!(produce(&mut c, control, Some("t3")).0, 87, "INVALID_RECORD");
    assert_eq!(
        produce(&mut c, batch(&["d1"], (1000, 0, 2), true), Some("t1")),
        (0, 6)
    );
    let stale = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(1000.into())
        .with_producer_epoch(0)
        .with_transaction_result(true)
        .with_coordinator_epoch(2)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(name(TOPIC))
            .with_partition_indexes(vec![0])])]);
    let code = c.call(1, &stale).markers[0].topics[0].partitions[0].error_code;
    assert_eq!(code, 52, "TRANSACTION_COORDINATOR_FENCED");
    assert_eq!(
        produce(&mut c, batch(&["e1"], (1000, 0, 3), false), None).0,
        48,
        "INVALID_TXN_STATE"
    );
    assert_eq!(end_txn(&mut c, "no-such-topic", 1000, 0, true), 3);
    // Producer 1000's second transaction stays open across a kill -9.
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    let f = fetch(&mut c, 1);
    assert_eq!((f.high_watermark, f.last_stable_offset), (7, 6));
    assert_eq!(f.aborted, Some(vec![(1000, 0)]));
    let txnindex = broker
        .data_dir()
        .join("txn-0/00000000000000000000.txnindex");
    assert_eq!(
        std::fs::metadata(&txnindex).unwrap().len(),
        34,
        "one aborted transaction"
    );
    assert_eq!(end_txn(&mut c, TOPIC, 1000, 0, false), 0);
    let f = fetch(&mut c, 1);
    assert_eq!((f.high_watermark, f.last_stable_offset), (8, 8));
    assert_eq!(f.aborted, Some(vec![(1000, 0), (1000, 6)]));
}

#[test]
#[ignore = "needs the Python clients (confluent-kafka, kafka-python): scripts/test.sh runs it"]
fn read_committed_clients_skip_aborted_records_and_wait_at_the_last_stable_offset() {
    let broker = BrokerProcess::start(&[UNVERIFIED]);
    let mut c = broker.client();
    create_topic(&mut c, TOPIC, &[]);
    produce(&mut c, batch(&["a1", "a2"], (1000, 0, 0), true), Some("t1"));
    produce(&mut c, batch(&["b1"], (2000, 0, 0), true), Some("t2"));
    produce(&mut c, batch(&["c1"], (-1, -1, -1), false), None);
    assert_eq!(end_txn(&mut c, TOPIC, 1000, 0, false), 0);
    assert_eq!(end_txn(&mut c, TOPIC, 2000, 0, true), 0);
    // An open transaction after them: read_committed clients must stop before it.
    produce(&mut c, batch(&["f1"], (4000, 0, 0), true), Some("t4"));
    produce(&mut c, batch(&["g1"], (-1, -1, -1), false), None);
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let script = r#"
import sys, json
from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as KTP
bootstrap, topic = sys.argv[1], sys.argv[2]
out = {}
for level in ("read_committed", "read_uncommitted"):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "enable.auto.commit": False,
                  "isolation.level": level, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while True:
        m = c.poll(10)
        if m is None or (m.error() and m.error().code() == -191):  # _PARTITION_EOF
            break
        got.append(m.value().decode())
    out["confluent-kafka " + level] = got
    c.close()
    k = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=3000)
    k.assign([KTP(topic, 0)])
    k.seek(KTP(topic, 0), 0)
    out["kafka-python " + level] = [r.value.decode() for r in k]
    k.close()
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&bootstrap)
        .arg(TOPIC)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_str(text.trim()).expect("json");
    for client in ["confluent-kafka", "kafka-python"] {
        assert_eq!(
            got[&format!("{client} read_committed")],
            ["b1", "c1"],
            "{client}: the aborted a1, a2 dropped; nothing from the open transaction on"
        );
        assert_eq!(
            got[&format!("{client} read_uncommitted")],
            ["a1", "a2", "b1", "c1", "f1", "g1"],
            "{client}"
        );
    }
}

/// InitProducerId for `transactional_id` once its coordinator (created on first use) is
/// ready: (producer id, epoch).
fn init_transactional(c: &mut Client, transactional_id: &str) -> (i64, i16) {
    use kafka_protocol::messages::{FindCoordinatorRequest, InitProducerIdRequest};
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![StrBytes::from_string(transactional_id.into())]);
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            transactional_id.into(),
        ))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        c.call(4, &find);
        let r = c.call(4, &init);
        if r.error_code == 0 {
            return (r.producer_id.0, r.producer_epoch);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "InitProducerId: error {}",
            r.error_code
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_coordinator_answers_a_partition_leaders_verification() {
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::AddPartitionsToTxnRequest;
    let broker = BrokerProcess::start(&["transaction.state.log.num.partitions=2"]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, TOPIC, 2, &[]), 0);
    let (pid, epoch) = init_transactional(&mut c, "verified");
    let topics = |parts: &[i32]| {
        vec![AddPartitionsToTxnTopic::default()
            .with_name(name(TOPIC))
            .with_partitions(parts.to_vec())]
    };
    // The producer adds partition 0 (the client form).
    let added = c.call(
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str(
                "verified",
            )))
            .with_v3_and_below_producer_id(pid.into())
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(topics(&[0])),
    );
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    // A leader asks about partitions 0 and 1, with the right epoch and a stale one; and a
    // second transaction adds partition 1 in the same request.
    let ask = |epoch: i16, verify_only: bool, parts: &[i32]| {
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str("verified")))
            .with_producer_id(pid.into())
            .with_producer_epoch(epoch)
            .with_verify_only(verify_only)
            .with_topics(topics(parts))
    };
    let codes = |r: &kafka_protocol::messages::AddPartitionsToTxnResponse| -> Vec<Vec<i16>> {
        r.results_by_transaction
            .iter()
            .map(|t| {
                t.topic_results[0]
                    .results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
                    .collect()
            })
            .collect()
    };
    let v4 = c.call(
        4,
        &AddPartitionsToTxnRequest::default()
            .with_transactions(vec![ask(epoch, true, &[0, 1]), ask(epoch + 1, true, &[0])]),
    );
    // None; INVALID_TXN_STATE (48) for v4; PRODUCER_FENCED (90) for the stale epoch.
    assert_eq!(
        (v4.error_code, codes(&v4)),
        (0, vec![vec![0, 48], vec![90]])
    );
    let v5 = c.call(
        5,
        &AddPartitionsToTxnRequest::default().with_transactions(vec![ask(epoch, true, &[0, 1])]),
    );
    // TRANSACTION_ABORTABLE (120) from v5 on.
    assert_eq!(codes(&v5), vec![vec![0, 120]]);
    let add = c.call(
        5,
        &AddPartitionsToTxnRequest::default().with_transactions(vec![ask(epoch, false, &[1])]),
    );
    assert_eq!(codes(&add), vec![vec![0]]);
    let again = c.call(
        5,
        &AddPartitionsToTxnRequest::default().with_transactions(vec![ask(epoch, true, &[0, 1])]),
    );
    assert_eq!(
        codes(&again),
        vec![vec![0, 0]],
        "partition 1 joined the transaction"
    );
}

#[test]
fn a_transactional_producer_bumps_its_own_epoch_kip_360() {
    use kafka_protocol::messages::InitProducerIdRequest;
    let broker = BrokerProcess::start(&["transaction.state.log.num.partitions=1"]);
    let mut c = broker.client();
    let (pid, epoch) = init_transactional(&mut c, "bumper");
    let init = |c: &mut Client, version: i16, producer: (i64, i16)| {
        let r = c.call(
            version,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("bumper"))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(producer.0.into())
                .with_producer_epoch(producer.1),
        );
        (r.error_code, r.producer_id.0, r.producer_epoch)
    };
    assert_eq!(init(&mut c, 4, (pid, epoch)), (0, pid, epoch + 1));
    assert_eq!(
        init(&mut c, 4, (pid, epoch)),
        (0, pid, epoch + 1),
        "a retry of the same bump"
    );
    // PRODUCER_FENCED (90) for another producer id; INVALID_PRODUCER_EPOCH (47) before v4.
    assert_eq!(init(&mut c, 4, (pid + 1, epoch + 1)), (90, -1, -1));
    assert_eq!(init(&mut c, 3, (pid + 1, epoch + 1)), (47, -1, -1));
    // INVALID_REQUEST (42): an epoch without an id.
    assert_eq!(init(&mut c, 4, (-1, 3)), (42, -1, -1));
    assert_eq!(init(&mut c, 4, (pid, epoch + 1)), (0, pid, epoch + 2));
}

#[test]
fn a_leader_appends_a_transactional_batch_only_once_the_coordinator_verified_it() {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::AddPartitionsToTxnRequest;
    let broker = BrokerProcess::start(&["transaction.state.log.num.partitions=1"]);
    let mut c = broker.client();
    create_topic(&mut c, TOPIC, &[]);
    // No transactional id with a transactional batch: TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    let (code, _) = produce(&mut c, batch(&["x"], (77, 0, 0), true), None);
    assert_eq!(code, 53);
    let (pid, epoch) = init_transactional(&mut c, "checked");
    // A producer id the coordinator does not map to the id: INVALID_PRODUCER_ID_MAPPING.
    let (code, _) = produce(
        &mut c,
        batch(&["x"], (pid + 1, 0, 0), true),
        Some("checked"),
    );
    assert_eq!(code, 49);
    // The right producer, but the partition is not in its transaction: INVALID_TXN_STATE,
    // and nothing is appended (no hanging transaction).
    let (code, _) = produce(
        &mut c,
        batch(&["a"], (pid, epoch, 0), true),
        Some("checked"),
    );
    assert_eq!(code, 48);
    assert_eq!(latest(&mut c, 0), 0);
    let added = c.call(
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str(
                "checked",
            )))
            .with_v3_and_below_producer_id(pid.into())
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(name(TOPIC))
                .with_partitions(vec![0])]),
    );
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    // Added: appended; the next batch of the open transaction needs no new verification.
    assert_eq!(
        produce(
            &mut c,
            batch(&["a"], (pid, epoch, 0), true),
            Some("checked")
        ),
        (0, 0)
    );
    assert_eq!(
        produce(
            &mut c,
            batch(&["b"], (pid, epoch, 1), true),
            Some("checked")
        ),
        (0, 1)
    );
    // The transaction is still open: read_committed sees nothing yet.
    assert_eq!(latest(&mut c, 1), 0);
}

#[test]
fn a_partition_forgets_an_idle_producer_after_producer_id_expiration_ms() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::DescribeProducersRequest;
    let broker = BrokerProcess::start(&[
        "producer.id.expiration.ms=1000",
        "producer.id.expiration.check.interval.ms=200",
    ]);
    let mut c = broker.client();
    create_topic(&mut c, TOPIC, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(
        produce(&mut c, batch_at(&["a"], (4321, 0, 0), false, now), None),
        (0, 0)
    );
    let producers = |c: &mut Client| -> Vec<(i64, i32)> {
        let r = c.call(
            0,
            &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
                .with_name(name(TOPIC))
                .with_partition_indexes(vec![0])]),
        );
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        p.active_producers
            .iter()
            .map(|s| (s.producer_id.0, s.last_sequence))
            .collect()
    };
    assert_eq!(producers(&mut c), vec![(4321, 0)]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !producers(&mut c).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the producer was not expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Forgotten: its next batch may start at any sequence (KIP-360), and it is known again.
    assert_eq!(
        produce(&mut c, batch_at(&["b"], (4321, 0, 9), false, now), None),
        (0, 1)
    );
    assert_eq!(producers(&mut c), vec![(4321, 9)]);
}
