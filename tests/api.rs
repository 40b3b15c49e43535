//! The broker's APIs over a raw socket, checked field by field: produce and fetch with
//! exact offsets and bytes, idempotent producer sequences and fencing, errors Kafka defines
//! (bad CRC, old magic, oversized batches, unknown topics), long-poll fetch, ListOffsets,
//! OffsetForLeaderEpoch, topic administration and configs, and state across a restart.

mod common;
mod txn;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{batch, records_of, try_create_topic, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use gregor_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use gregor_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use gregor_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::produce_response::PartitionProduceResponse;
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::records::RecordBatchDecoder;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let resp = c.call(9, &req);
    resp.responses[0].partition_responses[0].clone()
}

fn fetch_req(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1024 * 1024)])])
}

#[test]
fn produce_and_fetch_round_trip_with_exact_offsets_and_bytes() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "orders", 3, &[]), 0);
    let mut sent = Vec::new();
    for i in 0..5 {
        let b = batch(
            &[("k1", "v1"), ("k2", "v2"), ("k3", "v3")],
            None,
            1_700_000_000_000 + i * 10,
        );
        sent.push(b.clone());
        let r = produce(&mut c, "orders", 1, b, -1);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.base_offset, i * 3);
        assert_eq!(r.log_start_offset, 0);
    }
    let resp = c.call(12, &fetch_req("orders", 1, 0, 0, 0));
    assert_eq!(resp.session_id, 0, "sessions declined");
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.log_start_offset),
        (0, 15, 0)
    );
    let records = p.records.clone().unwrap();
    // Stored as sent except base offset (bytes 0..8) and leader epoch (12..16).
    let mut pos = 0;
    for (i, b) in sent.iter().enumerate() {
        let stored = &records[pos..pos + b.len()];
        assert_eq!(&stored[0..8], &((i as i64) * 3).to_be_bytes());
        assert_eq!(&stored[8..12], &b[8..12]);
        assert_eq!(&stored[12..16], &0i32.to_be_bytes(), "leader epoch 0");
        assert_eq!(&stored[16..], &b[16..], "the rest as the client sent it");
        pos += b.len();
    }
    assert_eq!(pos, records.len());
    let offsets: Vec<i64> = records_of(&records).iter().map(|r| r.0).collect();
    assert_eq!(offsets, (0..15).collect::<Vec<_>>());
    // From the middle of a batch: the containing batch comes first.
    let resp = c.call(12, &fetch_req("orders", 1, 7, 0, 0));
    let got = records_of(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(got[0].0, 6);
    assert_eq!(got.last().unwrap().0, 14);
    // At the end: empty, never null.
    let resp = c.call(12, &fetch_req("orders", 1, 15, 0, 0));
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0)
    );
    // Past the end: OFFSET_OUT_OF_RANGE.
    let resp = c.call(12, &fetch_req("orders", 1, 16, 0, 0));
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);
    // Other partitions untouched.
    let resp = c.call(12, &fetch_req("orders", 0, 0, 0, 0));
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 0);
}

/// A batch as the log stores it: the client's bytes with the base offset and leader epoch
/// (0) filled in.
fn stored_form(sent: &Bytes, base_offset: i64) -> Vec<u8> {
    let mut b = sent.to_vec();
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&0i32.to_be_bytes());
    b
}

#[test]
fn large_record_sets_go_out_from_the_file_byte_for_byte_beside_small_ones() {
    // Record sets of 16 KiB and more are sent with sendfile into gaps of the encoded frame;
    // one answer mixes them with a small in-memory set and a cut at partition_max_bytes.
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "bulk", 3, &[]), 0);
    let make = |partition: i32, batches: usize| -> Vec<Bytes> {
        (0..batches)
            .map(|b| {
                let rows: Vec<(String, String)> = (0..20)
                    .map(|r| {
                        let fill = char::from(b'a' + ((b * 20 + r) % 26) as u8);
                        (
                            format!("p{partition}-b{b}-r{r}"),
                            fill.to_string().repeat(1000),
                        )
                    })
                    .collect();
                let rows: Vec<(&str, &str)> =
                    rows.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                batch(&rows, None, 1_700_000_000_000 + b as i64)
            })
            .collect()
    };
    let p0 = make(0, 60);
    let p2 = make(2, 10);
    let small = batch(&[("k", "small")], None, 1_700_000_000_000);
    for (partition, batches) in [(0, &p0), (2, &p2)] {
        for (i, b) in batches.iter().enumerate() {
            let r = produce(&mut c, "bulk", partition, b.clone(), 1);
            assert_eq!((r.error_code, r.base_offset), (0, i as i64 * 20));
        }
    }
    assert_eq!(produce(&mut c, "bulk", 1, small.clone(), 1).error_code, 0);

    let cut = 512 * 1024;
    let req = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("bulk"))
            .with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(cut),
                FetchPartition::default()
                    .with_partition(1)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(cut),
                // Offset 15 is inside the first batch: it comes whole.
                FetchPartition::default()
                    .with_partition(2)
                    .with_fetch_offset(15)
                    .with_partition_max_bytes(cut),
            ])]);
    for version in [4, 12] {
        let resp = c.call(version, &req);
        let parts = &resp.responses[0].partitions;
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.error_code == 0));

        // Partition 0: whole batches up to the cut, then the start of the next one.
        let got = parts[0].records.clone().unwrap();
        assert_eq!(
            got.len(),
            cut as usize,
            "v{version}: cut at partition_max_bytes"
        );
        let want: Vec<u8> = p0
            .iter()
            .enumerate()
            .flat_map(|(i, b)| stored_form(b, i as i64 * 20))
            .take(cut as usize)
            .collect();
        assert!(got[..] == want[..], "v{version}: partition 0 bytes differ");

        // Partition 1: a small set, read into memory.
        let got = parts[1].records.clone().unwrap();
        assert_eq!(
            got[..],
            stored_form(&small, 0)[..],
            "v{version}: partition 1"
        );

        // Partition 2: all ten batches, every record where it belongs.
        let got = parts[2].records.clone().unwrap();
        let want: Vec<u8> = p2
            .iter()
            .enumerate()
            .flat_map(|(i, b)| stored_form(b, i as i64 * 20))
            .collect();
        assert!(got[..] == want[..], "v{version}: partition 2 bytes differ");
        let records = records_of(&got);
        assert_eq!(records.len(), 200);
        assert_eq!(records[137].0, 137);
        assert_eq!(records[137].1, "p2-b6-r17");
        assert_eq!(records[137].2, "h".repeat(1000), "(6 * 20 + 17) % 26 = 7");
    }
}

#[test]
fn produce_errors_follow_kafka() {
    let broker = BrokerProcess::start(&["message.max.bytes=2000"]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "t", 1, &[]), 0);
    let good = batch(&[("k", "v")], None, 1);
    // Bad CRC: flip a byte covered by it.
    let mut bad = BytesMut::from(&good[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(
        produce(&mut c, "t", 0, bad.freeze(), 1).error_code,
        2,
        "CORRUPT_MESSAGE"
    );
    // Magic 1.
    let mut old = BytesMut::from(&good[..]);
    old[16] = 1;
    assert_eq!(
        produce(&mut c, "t", 0, old.freeze(), 1).error_code,
        87,
        "INVALID_RECORD"
    );
    // Truncated batch.
    assert_eq!(
        produce(&mut c, "t", 0, good.slice(..good.len() - 3), 1).error_code,
        2
    );
    // Two batches for one partition: Kafka takes exactly one from Produce v3 on.
    let mut two = BytesMut::from(&good[..]);
    two.extend_from_slice(&good);
    let refused = produce(&mut c, "t", 0, two.freeze(), 1);
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");
    assert!(refused
        .error_message
        .is_some_and(|m| m.contains("exactly one record batch")));
    // Over message.max.bytes.
    let big_value = "x".repeat(5000);
    let big = batch(&[("k", big_value.as_str())], None, 1);
    assert_eq!(
        produce(&mut c, "t", 0, big, 1).error_code,
        10,
        "MESSAGE_TOO_LARGE"
    );
    // Unknown topic and partition.
    assert_eq!(produce(&mut c, "nope", 0, good.clone(), 1).error_code, 3);
    assert_eq!(produce(&mut c, "t", 5, good.clone(), 1).error_code, 3);
    // Bad acks.
    assert_eq!(
        produce(&mut c, "t", 0, good.clone(), 2).error_code,
        21,
        "INVALID_REQUIRED_ACKS"
    );
    // None of it was written: the next good batch gets offset 0.
    let ok = produce(&mut c, "t", 0, good, 1);
    assert_eq!((ok.error_code, ok.base_offset), (0, 0));
}

#[test]
fn min_insync_replicas_above_the_isr_refuses_acks_all() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(
        try_create_topic(&mut c, "safe", 1, &[("min.insync.replicas", "2")]),
        0
    );
    let b = batch(&[("k", "v")], None, 1);
    assert_eq!(
        produce(&mut c, "safe", 0, b.clone(), -1).error_code,
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    assert_eq!(
        produce(&mut c, "safe", 0, b, 1).error_code,
        0,
        "acks=1 is not bound by it"
    );
}

#[test]
fn idempotent_producer_sequences_duplicates_and_fencing_survive_restart() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "idem", 1, &[]), 0);
    let init = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000),
    );
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert!(pid >= 0);
    assert_eq!(epoch, 0);
    let second = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000),
    );
    assert_ne!(second.producer_id.0, pid, "ids are never reused");

    let b0 = batch(&[("a", "1"), ("b", "2")], Some((pid, 0, 0)), 10);
    let b1 = batch(&[("c", "3")], Some((pid, 0, 2)), 20);
    assert_eq!(produce(&mut c, "idem", 0, b0.clone(), -1).base_offset, 0);
    assert_eq!(produce(&mut c, "idem", 0, b1.clone(), -1).base_offset, 2);
    // A retried duplicate is answered with its original offset and not written again.
    let dup = produce(&mut c, "idem", 0, b0.clone(), -1);
    assert_eq!((dup.error_code, dup.base_offset), (0, 0));
    // A gap in sequence.
    let gap = batch(&[("d", "4")], Some((pid, 0, 9)), 30);
    assert_eq!(
        produce(&mut c, "idem", 0, gap, -1).error_code,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    // A newer epoch fences the old one.
    let bumped = batch(&[("e", "5")], Some((pid, 1, 0)), 40);
    assert_eq!(produce(&mut c, "idem", 0, bumped, -1).base_offset, 3);
    let stale = batch(&[("f", "6")], Some((pid, 0, 3)), 50);
    assert_eq!(
        produce(&mut c, "idem", 0, stale, -1).error_code,
        47,
        "INVALID_PRODUCER_EPOCH"
    );

    // State survives a restart: clean, then kill -9.
    assert!(broker.stop());
    broker.restart();
    let mut c = broker.client();
    let next = batch(&[("g", "7")], Some((pid, 1, 1)), 60);
    assert_eq!(produce(&mut c, "idem", 0, next.clone(), -1).base_offset, 4);
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    let dup = produce(&mut c, "idem", 0, next, -1);
    assert_eq!(
        (dup.error_code, dup.base_offset),
        (0, 4),
        "duplicate recognised after kill -9"
    );
    let resp = c.call(12, &fetch_req("idem", 0, 0, 0, 0));
    let got = records_of(resp.responses[0].partitions[0].records.as_ref().unwrap());
    let keys: Vec<&str> = got.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c", "e", "g"]);
    // A fresh id after restart is still new.
    let third = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000),
    );
    assert!(third.producer_id.0 > second.producer_id.0);
}

#[test]
fn fetch_long_poll_is_woken_by_new_data() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "poll", 1, &[]), 0);
    // Nothing there: waits max_wait_ms.
    let start = Instant::now();
    let resp = c.call(12, &fetch_req("poll", 0, 0, 400, 1));
    assert!(start.elapsed() >= Duration::from_millis(380));
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .len(),
        0
    );
    // Data arriving during the wait answers it early.
    let port = broker.port;
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut p = Client::connect(port);
        produce(&mut p, "poll", 0, batch(&[("k", "v")], None, 1), 1)
    });
    let start = Instant::now();
    let resp = c.call(12, &fetch_req("poll", 0, 0, 10_000, 1));
    let waited = start.elapsed();
    assert_eq!(producer.join().unwrap().error_code, 0);
    assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
    let got = records_of(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(got, vec![(0, "k".to_string(), "v".to_string())]);
}

#[test]
fn list_offsets_and_offset_for_leader_epoch() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "lo", 1, &[]), 0);
    // Timestamps 1000..1004 in one batch, 2000..2002 in another.
    produce(
        &mut c,
        "lo",
        0,
        batch(
            &[("a", ""), ("b", ""), ("c", ""), ("d", ""), ("e", "")],
            None,
            1000,
        ),
        1,
    );
    produce(
        &mut c,
        "lo",
        0,
        batch(&[("f", ""), ("g", ""), ("h", "")], None, 2000),
        1,
    );
    let query = |c: &mut Client, ts: i64| {
        let req = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("lo"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(ts)])]);
        let p = c.call(8, &req).topics[0].partitions[0].clone();
        (p.error_code, p.offset, p.timestamp)
    };
    assert_eq!(query(&mut c, -2), (0, 0, -1), "earliest");
    assert_eq!(query(&mut c, -1), (0, 8, -1), "latest");
    assert_eq!(
        query(&mut c, 1002),
        (0, 2, 1002),
        "a record inside the first batch"
    );
    assert_eq!(
        query(&mut c, 1500),
        (0, 5, 2000),
        "first record at or after"
    );
    assert_eq!(query(&mut c, 2001), (0, 6, 2001));
    assert_eq!(query(&mut c, 9999), (0, -1, -1), "none after");
    assert_eq!(query(&mut c, -3), (0, 7, 2002), "max timestamp");

    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name("lo"))
            .with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(0)
                    .with_leader_epoch(0),
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(-1)
                    .with_leader_epoch(5),
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(3)
                    .with_leader_epoch(0),
            ])]);
    let resp = c.call(4, &req);
    let parts = &resp.topics[0].partitions;
    assert_eq!(
        (
            parts[0].error_code,
            parts[0].leader_epoch,
            parts[0].end_offset
        ),
        (0, 0, 8)
    );
    assert_eq!(
        (parts[1].leader_epoch, parts[1].end_offset),
        (-1, -1),
        "unknown epoch"
    );
    assert_eq!(
        parts[2].error_code, 75,
        "UNKNOWN_LEADER_EPOCH for a future epoch"
    );
}

/// KIP-320: a Fetch (v12+) names the epoch of the last batch the fetcher has; if this log
/// ends that epoch earlier (or never had it), the answer carries no records but the epoch and
/// offset to truncate to, as Kafka's does. Kafka 3.9 followers rely on it instead of
/// OffsetForLeaderEpoch.
#[test]
fn a_fetch_whose_last_fetched_epoch_diverges_is_told_where_to_truncate() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "div", 1, &[]), 0);
    let keys: Vec<(String, &str)> = (0..8).map(|i| (format!("k{i}"), "")).collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    produce(&mut c, "div", 0, batch(&keys, None, 1000), 1);
    let fetch = |c: &mut Client, offset: i64, last_fetched_epoch: i32| {
        let mut req = fetch_req("div", 0, offset, 0, 0);
        req.topics[0].partitions[0].last_fetched_epoch = last_fetched_epoch;
        req.topics[0].partitions[0].current_leader_epoch = 0;
        let p = c.call(12, &req).responses[0].partitions[0].clone();
        let records = records_of(p.records.as_ref().unwrap());
        (
            p.error_code,
            p.diverging_epoch.epoch,
            p.diverging_epoch.end_offset,
            p.high_watermark,
            records.last().map(|r| r.0),
        )
    };
    assert_eq!(
        fetch(&mut c, 3, 0),
        (0, -1, -1, 8, Some(7)),
        "in step: records"
    );
    assert_eq!(
        fetch(&mut c, 8, 0),
        (0, -1, -1, 8, None),
        "at the end: nothing yet"
    );
    assert_eq!(
        fetch(&mut c, 10, 0),
        (0, 0, 8, 8, None),
        "past the end of epoch 0: truncate to 8"
    );
    assert_eq!(
        fetch(&mut c, 8, 4),
        (0, -1, -1, 8, None),
        "an epoch this log never had: no end offset known for it"
    );
    // Without the field (-1, as before v12 and from consumers that do not send it): records.
    assert_eq!(fetch(&mut c, 3, -1), (0, -1, -1, 8, Some(7)));
}

/// Kafka's controller requests are fenced by the controller epoch: once a broker has heard
/// from a controller at epoch 5, a request at epoch 4 (a deposed controller's) is refused
/// with STALE_CONTROLLER_EPOCH, and the broker keeps answering the newer one.
#[test]
fn a_controller_request_from_an_older_controller_epoch_is_refused() {
    use gregor_protocol::controller_api::{self, zk_messages};
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    let update = |c: &mut Client, correlation: i32, controller_epoch: i32| -> i16 {
        let req = zk_messages::UpdateMetadataRequest::default()
            .with_controller_id(zk_messages::BrokerId(7))
            .with_controller_epoch(controller_epoch)
            .with_broker_epoch(-1);
        let frame =
            controller_api::encode_request(8, correlation, "test-controller", &req).unwrap();
        c.send_raw(&frame);
        let answer = c.read_frame().expect("an answer");
        let (got, resp) =
            controller_api::decode_response::<zk_messages::UpdateMetadataRequest>(8, answer)
                .unwrap();
        assert_eq!(got, correlation);
        resp.error_code
    };
    assert_eq!(update(&mut c, 1, 5), 0, "the first controller epoch heard");
    assert_eq!(update(&mut c, 2, 4), 11, "STALE_CONTROLLER_EPOCH");
    assert_eq!(update(&mut c, 3, 5), 0, "the current one still");
    assert_eq!(update(&mut c, 4, 6), 0, "a newer one");
    assert_eq!(update(&mut c, 5, 5), 11, "the one before it, now stale");
}

/// One CreateTopics request with good and bad topics: each answered on its own (in order),
/// the good ones created together and still there after a restart.
#[test]
fn create_topics_answers_each_topic_of_a_request() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "batch-old", 1, &[]), 0);
    let topic = |n: &str, partitions: i32| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
    };
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            topic("batch-a", 3),
            topic("batch.b", 1),
            topic("batch_b", 1),
            topic("batch-old", 1),
            topic("bad name", 1),
            topic("batch-d", 0),
            topic("dup", 1),
            topic("batch-c", 2).with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(None)]),
            topic("dup", 1),
            topic("batch-e", 2),
        ]);
    let resp = c.call(7, &req);
    let answers: Vec<(String, i16, i32)> = resp
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.error_code, t.num_partitions))
        .collect();
    let expect = |n: &str, code: i16, partitions: i32| (n.to_string(), code, partitions);
    assert_eq!(
        answers,
        vec![
            expect("batch-a", 0, 3),
            expect("batch.b", 0, 1),
            expect("batch_b", 17, -1), // collides with batch.b, created in the same request
            expect("batch-old", 36, -1),
            expect("bad name", 17, -1),
            expect("batch-d", 37, -1),
            expect("dup", 42, -1),
            expect("batch-c", 40, -1),
            expect("dup", 42, -1),
            expect("batch-e", 0, 2),
        ]
    );
    let ids: Vec<_> = resp
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .map(|t| t.topic_id)
        .collect();
    assert!(ids.iter().all(|id| !id.is_nil()) && ids[0] != ids[1] && ids[1] != ids[2]);

    let listed = |c: &mut Client| -> Vec<(String, i16, usize)> {
        let md = c.call(
            12,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(
                    ["batch-a", "batch.b", "batch_b", "batch-c", "dup", "batch-e"]
                        .iter()
                        .map(|n| MetadataRequestTopic::default().with_name(Some(name(n))))
                        .collect(),
                )),
        );
        md.topics
            .iter()
            .map(|t| {
                let n = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                (n, t.error_code, t.partitions.len())
            })
            .collect()
    };
    let want = vec![
        ("batch-a".to_string(), 0, 3),
        ("batch.b".to_string(), 0, 1),
        ("batch_b".to_string(), 3, 0),
        ("batch-c".to_string(), 3, 0),
        ("dup".to_string(), 3, 0),
        ("batch-e".to_string(), 0, 2),
    ];
    assert_eq!(listed(&mut c), want);
    assert_eq!(
        produce(&mut c, "batch-a", 2, batch(&[("k", "v")], None, 1), 1).base_offset,
        0
    );
    assert!(broker.stop(), "graceful shutdown");
    broker.restart();
    let mut c = broker.client();
    assert_eq!(listed(&mut c), want, "created topics survive a restart");
    assert_eq!(
        produce(&mut c, "batch-a", 2, batch(&[("k", "w")], None, 1), 1).base_offset,
        1
    );
}

#[test]
fn topic_administration_and_configs() {
    let broker = BrokerProcess::start(&["log.segment.bytes=1048576"]);
    let mut c = broker.client();
    assert_eq!(
        try_create_topic(&mut c, "admin-t", 2, &[("cleanup.policy", "compact")]),
        0
    );
    assert_eq!(
        try_create_topic(&mut c, "admin-t", 2, &[]),
        36,
        "TOPIC_ALREADY_EXISTS"
    );
    assert_eq!(
        try_create_topic(&mut c, "bad name", 2, &[]),
        17,
        "INVALID_TOPIC_EXCEPTION"
    );
    assert_eq!(try_create_topic(&mut c, "my.topic", 1, &[]), 0);
    assert_eq!(
        try_create_topic(&mut c, "my_topic", 1, &[]),
        17,
        "collides with my.topic"
    );
    assert_eq!(
        try_create_topic(&mut c, "z", 0, &[]),
        37,
        "INVALID_PARTITIONS"
    );
    assert_eq!(
        try_create_topic(&mut c, "z", 1, &[("no.such.config", "1")]),
        40,
        "INVALID_CONFIG"
    );
    let rf = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(name("z"))
        .with_num_partitions(1)
        .with_replication_factor(3)]);
    assert_eq!(
        c.call(7, &rf).topics[0].error_code,
        38,
        "INVALID_REPLICATION_FACTOR"
    );
    // validate_only creates nothing.
    let v = CreateTopicsRequest::default()
        .with_validate_only(true)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("ghost"))
            .with_num_partitions(4)
            .with_replication_factor(1)]);
    let vr = c.call(7, &v);
    assert_eq!(
        (vr.topics[0].error_code, vr.topics[0].num_partitions),
        (0, 4)
    );

    let md = c.call(
        12,
        &MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("admin-t"))),
                MetadataRequestTopic::default().with_name(Some(name("ghost"))),
            ])),
    );
    let t = &md.topics[0];
    assert_eq!(t.error_code, 0);
    assert_eq!(t.partitions.len(), 2);
    assert!(!t.topic_id.is_nil());
    assert_eq!(t.partitions[1].leader_id.0, 0);
    assert_eq!(t.partitions[1].leader_epoch, 0);
    assert_eq!(md.topics[1].error_code, 3, "ghost was never created");

    // Grow to 5 partitions; shrinking is refused.
    let grow = |count| {
        CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name("admin-t"))
            .with_count(count)
            .with_assignments(None)])
    };
    assert_eq!(c.call(3, &grow(5)).results[0].error_code, 0);
    assert_eq!(c.call(3, &grow(4)).results[0].error_code, 37);
    assert_eq!(
        produce(&mut c, "admin-t", 4, batch(&[("k", "v")], None, 1), 1).base_offset,
        0
    );

    // DescribeConfigs: the override is a topic config; others come from broker or defaults.
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("admin-t")),
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("0"))
                .with_configuration_keys(Some(vec![StrBytes::from_static_str(
                    "log.segment.bytes",
                )])),
        ]);
    let resp = c.call(4, &req);
    let topic = &resp.results[0];
    assert_eq!(topic.error_code, 0);
    let get = |n: &str| topic.configs.iter().find(|e| e.name.as_str() == n).unwrap();
    assert_eq!(
        get("cleanup.policy").value.as_ref().unwrap().as_str(),
        "compact"
    );
    assert_eq!(get("cleanup.policy").config_source, 1, "TOPIC_CONFIG");
    assert_eq!(
        get("segment.bytes").value.as_ref().unwrap().as_str(),
        "1048576"
    );
    assert_eq!(
        get("segment.bytes").config_source,
        4,
        "STATIC_BROKER_CONFIG"
    );
    assert_eq!(
        get("retention.ms").value.as_ref().unwrap().as_str(),
        "604800000"
    );
    assert_eq!(get("retention.ms").config_source, 5, "DEFAULT_CONFIG");
    let broker_res = &resp.results[1];
    assert_eq!(broker_res.configs.len(), 1);
    assert_eq!(
        broker_res.configs[0].value.as_ref().unwrap().as_str(),
        "1048576"
    );

    // Delete: gone from metadata, produce refused, name reusable with fresh data.
    let del = DeleteTopicsRequest::default().with_topic_names(vec![name("admin-t")]);
    assert_eq!(c.call(5, &del).responses[0].error_code, 0);
    assert_eq!(c.call(5, &del).responses[0].error_code, 3);
    assert_eq!(
        produce(&mut c, "admin-t", 0, batch(&[("k", "v")], None, 1), 1).error_code,
        3
    );
    assert_eq!(try_create_topic(&mut c, "admin-t", 1, &[]), 0);
    let resp = c.call(12, &fetch_req("admin-t", 0, 0, 0, 0));
    assert_eq!(
        resp.responses[0].partitions[0].high_watermark, 0,
        "no data of the old topic"
    );
}

#[test]
fn metadata_auto_creates_and_everything_survives_a_restart() {
    let mut broker = BrokerProcess::start(&["num.partitions=4"]);
    let mut c = broker.client();
    let md = c.call(
        12,
        &MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("auto")))
            ])),
    );
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions.len(), 4);
    let id = md.topics[0].topic_id;
    for p in 0..4 {
        assert_eq!(
            produce(
                &mut c,
                "auto",
                p,
                batch(&[("k", "v"), ("k2", "v2")], None, 5),
                -1
            )
            .error_code,
            0
        );
    }
    let cluster_id = md.cluster_id.clone();
    assert!(broker.stop(), "graceful shutdown exits 0");
    assert!(broker.data_dir().join(".kafka_cleanshutdown").exists());
    broker.restart();
    let mut c = broker.client();
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    assert_eq!(md.cluster_id, cluster_id, "cluster id is kept");
    assert_eq!(md.topics.len(), 1);
    assert_eq!(md.topics[0].topic_id, id, "topic id is kept");
    assert_eq!(md.topics[0].partitions.len(), 4);
    for p in 0..4 {
        let resp = c.call(12, &fetch_req("auto", p, 0, 0, 0));
        let got = records_of(resp.responses[0].partitions[0].records.as_ref().unwrap());
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], (1, "k2".to_string(), "v2".to_string()));
    }
}

#[test]
fn oldest_served_versions_answer_with_their_own_fields() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "old", 1, &[]), 0);
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("old"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&[("k", "v"), ("k2", "v2")], None, 7)))])]);
    let resp = c.call(3, &req);
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 0);
    let mut fetch = fetch_req("old", 0, 0, 0, 0);
    fetch.session_epoch = 0;
    let resp = c.call(4, &fetch);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 2);
    assert_eq!(records_of(p.records.as_ref().unwrap()).len(), 2);
    for version in [1, 2, 3] {
        let req = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("old"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let p = c.call(version, &req).topics[0].partitions[0].clone();
        assert_eq!((p.error_code, p.offset), (0, 2), "ListOffsets v{version}");
    }
    let md = c.call(0, &MetadataRequest::default().with_topics(Some(vec![])));
    assert_eq!(md.topics.len(), 1, "v0: an empty list means all topics");
    assert_eq!(md.topics[0].partitions[0].leader_id.0, 0);
}

#[test]
fn log_append_time_topics_stamp_the_broker_time() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(
        try_create_topic(
            &mut c,
            "lat",
            1,
            &[("message.timestamp.type", "LogAppendTime")]
        ),
        0
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let r = produce(
        &mut c,
        "lat",
        0,
        batch(&[("k", "v"), ("k2", "v2")], None, 42),
        1,
    );
    assert_eq!(r.error_code, 0);
    assert!(
        r.log_append_time_ms >= before,
        "{} < {before}",
        r.log_append_time_ms
    );
    let resp = c.call(12, &fetch_req("lat", 0, 0, 0, 0));
    let mut bytes = resp.responses[0].partitions[0].records.clone().unwrap();
    // Clients take every record's timestamp from the batch's max timestamp when the
    // LogAppendTime bit is set.
    assert_eq!(&bytes[35..43], &r.log_append_time_ms.to_be_bytes());
    let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
    let types: Vec<_> = sets
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.timestamp_type))
        .collect();
    assert_eq!(
        types,
        vec![gregor_protocol::kafka_protocol::records::TimestampType::LogAppend; 2]
    );
}

/// DescribeConfigs of one topic config: (value, source).
fn topic_config(c: &mut Client, topic: &str, key: &str) -> (Option<String>, i8) {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]))]);
    let resp = c.call(4, &req);
    let e = &resp.results[0].configs[0];
    (e.value.as_ref().map(|v| v.to_string()), e.config_source)
}

#[test]
fn topic_configs_change_live_through_both_alter_apis() {
    use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "live", 1, &[]), 0);
    let big = "x".repeat(3000);
    let big_batch = batch(&[("k", big.as_str())], None, 1);
    assert_eq!(
        produce(&mut c, "live", 0, big_batch.clone(), 1).error_code,
        0
    );

    let incremental = |ops: Vec<(&str, i8, Option<&str>)>, validate_only: bool| {
        IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("live"))
                .with_configs(
                    ops.into_iter()
                        .map(|(k, op, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_config_operation(op)
                                .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                )])
    };
    // validate_only changes nothing; a bad value is refused with INVALID_CONFIG.
    let r = c.call(
        1,
        &incremental(vec![("max.message.bytes", 0, Some("1000"))], true),
    );
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(topic_config(&mut c, "live", "max.message.bytes").1, 5);
    let r = c.call(
        1,
        &incremental(vec![("min.insync.replicas", 0, Some("zero"))], false),
    );
    assert_eq!(r.responses[0].error_code, 40);
    // SET applies to the running partition at once.
    let r = c.call(
        1,
        &incremental(vec![("max.message.bytes", 0, Some("1000"))], false),
    );
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        topic_config(&mut c, "live", "max.message.bytes"),
        (Some("1000".to_string()), 1)
    );
    assert_eq!(
        produce(&mut c, "live", 0, big_batch.clone(), 1).error_code,
        10
    );
    // APPEND to a list config; DELETE returns to the default.
    let r = c.call(
        1,
        &incremental(vec![("cleanup.policy", 2, Some("compact"))], false),
    );
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        topic_config(&mut c, "live", "cleanup.policy").0.as_deref(),
        Some("delete,compact")
    );
    let r = c.call(1, &incremental(vec![("max.message.bytes", 1, None)], false));
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(produce(&mut c, "live", 0, big_batch, 1).error_code, 0);

    // Legacy AlterConfigs replaces the whole set.
    use gregor_protocol::kafka_protocol::messages::alter_configs_request as legacy;
    let req =
        AlterConfigsRequest::default().with_resources(vec![legacy::AlterConfigsResource::default(
        )
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("live"))
        .with_configs(vec![legacy::AlterableConfig::default()
            .with_name(StrBytes::from_static_str("retention.ms"))
            .with_value(Some(StrBytes::from_static_str("1234")))])]);
    assert_eq!(c.call(1, &req).responses[0].error_code, 0);
    assert_eq!(
        topic_config(&mut c, "live", "retention.ms"),
        (Some("1234".to_string()), 1)
    );
    assert_eq!(
        topic_config(&mut c, "live", "cleanup.policy").1,
        5,
        "replaced: back to default"
    );
}

/// IncrementalAlterConfigs of one BROKER resource ("" is the cluster-wide default):
/// (error code, error message).
fn alter_broker_config(
    c: &mut Client,
    resource: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, String) {
    use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(resource.to_string()))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_config_operation(*op)
                            .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            ),
    ]);
    let r = c.call(1, &req);
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// One DescribeConfigs row: (name, value, source, read-only, synonym sources).
type ConfigRow = (String, Option<String>, i8, bool, Vec<i8>);

/// DescribeConfigs of one BROKER resource.
fn broker_configs(c: &mut Client, resource: &str, keys: Option<&[&str]>) -> Vec<ConfigRow> {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(resource.to_string()))
            .with_configuration_keys(keys.map(|ks| {
                ks.iter()
                    .map(|k| StrBytes::from_string(k.to_string()))
                    .collect()
            }))]);
    let resp = c.call(4, &req);
    assert_eq!(
        resp.results[0].error_code, 0,
        "{:?}",
        resp.results[0].error_message
    );
    resp.results[0]
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_ref().map(|v| v.to_string()),
                e.config_source,
                e.read_only,
                e.synonyms.iter().map(|s| s.source).collect(),
            )
        })
        .collect()
}

#[test]
fn dynamic_broker_configs_apply_live_and_survive_a_restart() {
    let mut broker = BrokerProcess::start(&["message.max.bytes=100000"]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "dyn", 1, &[]), 0);
    let big = "x".repeat(3000);
    let big_batch = batch(&[("k", big.as_str())], None, 1);
    assert_eq!(
        produce(&mut c, "dyn", 0, big_batch.clone(), 1).error_code,
        0
    );
    assert_eq!(
        topic_config(&mut c, "dyn", "max.message.bytes"),
        (Some("100000".into()), 4)
    );

    // The cluster-wide default applies to the running partition at once.
    assert_eq!(
        alter_broker_config(&mut c, "", &[("message.max.bytes", 0, Some("1000"))]).0,
        0
    );
    assert_eq!(
        topic_config(&mut c, "dyn", "max.message.bytes"),
        (Some("1000".into()), 3)
    );
    assert_eq!(
        produce(&mut c, "dyn", 0, big_batch.clone(), 1).error_code,
        10
    );
    assert_eq!(
        broker_configs(&mut c, "", None),
        vec![(
            "message.max.bytes".to_string(),
            Some("1000".to_string()),
            3,
            false,
            vec![3]
        )]
    );
    // This broker's own entry wins over the default; DescribeConfigs shows every layer.
    assert_eq!(
        alter_broker_config(&mut c, "0", &[("message.max.bytes", 0, Some("5000"))]).0,
        0
    );
    assert_eq!(
        topic_config(&mut c, "dyn", "max.message.bytes"),
        (Some("5000".into()), 2)
    );
    assert_eq!(
        produce(&mut c, "dyn", 0, big_batch.clone(), 1).error_code,
        0
    );
    assert_eq!(
        broker_configs(&mut c, "0", Some(&["message.max.bytes", "broker.id"])),
        vec![
            (
                "broker.id".to_string(),
                Some("0".to_string()),
                5,
                true,
                vec![5]
            ),
            (
                "message.max.bytes".to_string(),
                Some("5000".to_string()),
                2,
                false,
                vec![2, 3, 4, 5]
            ),
        ]
    );

    // What Kafka refuses is refused, with its messages; nothing is stored.
    let (code, message) = alter_broker_config(&mut c, "", &[("broker.id", 0, Some("9"))]);
    assert_eq!(code, 42, "{message}");
    assert!(
        message.contains("Cannot update these configs dynamically: Set(broker.id)"),
        "{message}"
    );
    let (code, message) = alter_broker_config(&mut c, "7", &[("message.max.bytes", 0, Some("1"))]);
    assert_eq!(
        (code, message.as_str()),
        (42, "Unexpected broker id, expected 0, but received 7")
    );
    let (code, message) = alter_broker_config(&mut c, "", &[("log.retention.ms", 0, Some("0"))]);
    assert_eq!(code, 42, "{message}");
    let (code, message) = alter_broker_config(&mut c, "", &[("log.retention.ms", 2, Some("1"))]);
    assert_eq!(code, 42);
    assert!(
        message.contains("append is not allowed for config key: log.retention.ms"),
        "{message}"
    );
    assert_eq!(broker_configs(&mut c, "", None).len(), 1);

    // Stored durably: a restarted broker has them before any client asks.
    assert!(broker.stop());
    broker.restart();
    let mut c = broker.client();
    assert_eq!(
        topic_config(&mut c, "dyn", "max.message.bytes"),
        (Some("5000".into()), 2)
    );
    assert_eq!(
        alter_broker_config(&mut c, "0", &[("message.max.bytes", 1, None)]).0,
        0
    );
    assert_eq!(
        topic_config(&mut c, "dyn", "max.message.bytes"),
        (Some("1000".into()), 3)
    );
    assert_eq!(
        produce(&mut c, "dyn", 0, big_batch.clone(), 1).error_code,
        10
    );
    // Legacy AlterConfigs replaces the default entity's whole set: back to the static value.
    use gregor_protocol::kafka_protocol::messages::alter_configs_request as legacy;
    let req =
        AlterConfigsRequest::default()
            .with_resources(vec![legacy::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str(""))]);
    assert_eq!(c.call(1, &req).responses[0].error_code, 0);
    assert_eq!(
        topic_config(&mut c, "dyn", "max.message.bytes"),
        (Some("100000".into()), 4)
    );
    assert_eq!(produce(&mut c, "dyn", 0, big_batch, 1).error_code, 0);
    assert!(broker_configs(&mut c, "", None).is_empty());
}

#[test]
fn graceful_shutdown_answers_the_request_in_flight() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "bye", 1, &[]), 0);
    produce(&mut c, "bye", 0, batch(&[("k", "v")], None, 1), 1);
    // A long poll at the end of the log is in flight when SIGTERM arrives.
    let fetcher = std::thread::spawn(move || {
        let start = Instant::now();
        let resp = c.call(12, &fetch_req("bye", 0, 1, 1500, 1));
        let p = resp.responses[0].partitions[0].clone();
        (
            start.elapsed(),
            p.error_code,
            p.high_watermark,
            c.is_closed_by_broker(),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(broker.stop(), "exit status 0 after SIGTERM");
    let (took, error, hw, closed_after) = fetcher.join().unwrap();
    assert_eq!((error, hw), (0, 1), "the in-flight fetch got its answer");
    assert!(
        took >= Duration::from_millis(1400),
        "answered after its max wait: {took:?}"
    );
    assert!(closed_after, "then the connection was closed");
    assert!(broker.data_dir().join(".kafka_cleanshutdown").exists());
}

fn metadata_topics(c: &mut Client) -> Vec<String> {
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    let mut names: Vec<String> = md
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    names
}

#[test]
fn a_request_for_more_than_ten_thousand_partitions_is_refused_as_kafka_refuses_it() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    let topic = |n: &str, partitions: i32| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
    };
    // One topic of 16,843,009 partitions (what a fuzzed request asked for), then two that
    // only together exceed the limit: every topic of the request gets POLICY_VIOLATION.
    for topics in [
        vec![topic("huge", 0x0101_0101)],
        vec![topic("half-a", 5_000), topic("half-b", 5_001)],
    ] {
        let resp = c.call(
            7,
            &CreateTopicsRequest::default().with_topics(topics.clone()),
        );
        assert_eq!(resp.topics.len(), topics.len());
        for t in &resp.topics {
            assert_eq!(t.error_code, 44, "POLICY_VIOLATION for {:?}", t.name);
            assert_eq!(
                t.error_message.as_deref(),
                Some("Excessively large number of partitions per request.")
            );
        }
    }
    assert!(metadata_topics(&mut c).is_empty());
    // CreatePartitions: the same limit on the partitions a request adds.
    assert_eq!(try_create_topic(&mut c, "grow", 1, &[]), 0);
    let resp = c.call(
        3,
        &CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name("grow"))
            .with_count(10_002)]),
    );
    assert_eq!(resp.results[0].error_code, 44);
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    assert_eq!(md.topics[0].partitions.len(), 1, "nothing added");
}

#[test]
fn a_topic_whose_logs_cannot_be_opened_is_rolled_back() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    // A regular file where partition 1's directory must go: its log cannot be created.
    let blocker = broker.data_dir().join("blocked-1");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let resp = c.call(
        7,
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(name("blocked"))
            .with_num_partitions(3)
            .with_replication_factor(1)]),
    );
    assert_ne!(resp.topics[0].error_code, 0);
    let message = resp.topics[0].error_message.as_deref().unwrap_or_default();
    assert!(message.contains("the topic was not created"), "{message}");
    assert!(metadata_topics(&mut c).is_empty(), "rolled back");
    assert!(
        !broker.data_dir().join("blocked-0").exists(),
        "its other logs removed"
    );
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");
    // The broker goes on creating topics, and starts again.
    assert_eq!(try_create_topic(&mut c, "fine", 2, &[]), 0);
    drop(c);
    assert!(broker.stop());
    broker.restart();
    let mut c = broker.client();
    assert_eq!(metadata_topics(&mut c), vec!["fine".to_string()]);
}
