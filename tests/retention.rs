//! Retention and DeleteRecords through the real broker over a raw socket: DeleteRecords
//! moves the low watermark that ListOffsets earliest and fetch report, fetches below it get
//! OFFSET_OUT_OF_RANGE, and the background retention task (run every 200 ms here) deletes
//! the old segments of a topic with a tiny `retention.bytes` while the newest data stays.

mod common;

use std::time::{Duration, Instant};

use common::{batch, create_topic, name, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::records::RecordBatchDecoder;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Produces one batch of `n` records and returns its base offset.
fn produce(c: &mut Client, topic: &str, n: usize) -> i64 {
    let values: Vec<String> = (0..n).map(|i| format!("value-{i:04}")).collect();
    let records: Vec<(&str, &str)> = values.iter().map(|v| ("k", v.as_str())).collect();
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&records, None, now_ms())))])]);
    let p = c.call(9, &req).responses[0].partition_responses[0].clone();
    assert_eq!(p.error_code, 0);
    p.base_offset
}

/// (error code, offsets of the records returned, log start offset) of a fetch at `offset`.
fn fetch(c: &mut Client, topic: &str, offset: i64) -> (i16, Vec<i64>, i64) {
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
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1024 * 1024)])]);
    let resp = c.call(12, &req);
    let p = resp.responses[0].partitions[0].clone();
    let mut bytes = p.records.unwrap_or_default();
    let offsets = RecordBatchDecoder::decode_all(&mut bytes)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .map(|r| r.offset)
        .collect();
    (p.error_code, offsets, p.log_start_offset)
}

/// Every record offset readable from `from`, fetch after fetch (one segment per fetch).
fn read_all(c: &mut Client, topic: &str, from: i64) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    let mut next = from;
    loop {
        let (err, offsets, _) = fetch(c, topic, next);
        assert_eq!(err, 0);
        let Some(last) = offsets.last().copied() else {
            return out;
        };
        next = last + 1;
        out.extend(offsets);
    }
}

fn earliest(c: &mut Client, topic: &str) -> (i16, i64) {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(-1)
                .with_timestamp(-2)])]);
    let p = c.call(8, &req).topics[0].partitions[0].clone();
    (p.error_code, p.offset)
}

fn delete_records(c: &mut Client, version: i16, topic: &str, offset: i64) -> (i16, i64) {
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])]);
    let resp = c.call(version, &req);
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].name, name(topic));
    let p = resp.topics[0].partitions[0].clone();
    assert_eq!(p.partition_index, 0);
    (p.error_code, p.low_watermark)
}

fn segment_files(broker: &BrokerProcess, topic: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(broker.data_dir().join(format!("{topic}-0")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".log"))
        .collect();
    v.sort();
    v
}

#[test]
fn delete_records_moves_the_low_watermark_and_earliest_offset() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    create_topic(&mut c, "dr", &[("segment.bytes", "300")]);
    for _ in 0..6 {
        produce(&mut c, "dr", 5);
    }
    assert_eq!(earliest(&mut c, "dr"), (0, 0));
    // Offset 12 is inside the third batch (10..15).
    assert_eq!(delete_records(&mut c, 2, "dr", 12), (0, 12));
    assert_eq!(earliest(&mut c, "dr"), (0, 12));
    let (err, offsets, start) = fetch(&mut c, "dr", 11);
    assert_eq!((err, start), (1, 12), "OFFSET_OUT_OF_RANGE below the start");
    assert!(offsets.is_empty());
    // At the start offset: the batch holding it, whole.
    let (err, offsets, start) = fetch(&mut c, "dr", 12);
    assert_eq!((err, start), (0, 12));
    assert_eq!(offsets[..3], [10, 11, 12]);
    assert_eq!(read_all(&mut c, "dr", 12), (10..30).collect::<Vec<_>>());
    // Never backwards; above the high watermark is OFFSET_OUT_OF_RANGE; -1 = high watermark.
    assert_eq!(delete_records(&mut c, 0, "dr", 5), (0, 12));
    assert_eq!(delete_records(&mut c, 1, "dr", 31).0, 1);
    assert_eq!(delete_records(&mut c, 1, "nope", 0).0, 3);
    assert_eq!(earliest(&mut c, "dr"), (0, 12));
    assert_eq!(delete_records(&mut c, 2, "dr", -1), (0, 30));
    assert_eq!(earliest(&mut c, "dr"), (0, 30));
    assert_eq!(
        segment_files(&broker, "dr").len(),
        1,
        "only the active segment is left"
    );
    assert_eq!(produce(&mut c, "dr", 1), 30);
    assert_eq!(fetch(&mut c, "dr", 30).1, vec![30]);
    // The start offset survives a restart through log-start-offset-checkpoint.
    assert!(broker.stop());
    broker.restart();
    let mut c = broker.client();
    assert_eq!(earliest(&mut c, "dr"), (0, 30));
    assert_eq!(fetch(&mut c, "dr", 29).0, 1);
}

#[test]
fn background_retention_deletes_old_segments_by_size() {
    let broker = BrokerProcess::start(&["log.retention.check.interval.ms=200"]);
    let mut c = broker.client();
    // Asserts that the creation succeeds.
    create_topic(
        &mut c,
        "rb",
        &[("segment.bytes", "400"), ("retention.bytes", "1000")],
    );
    for _ in 0..20 {
        produce(&mut c, "rb", 5);
    }
    assert!(segment_files(&broker, "rb").len() >= 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (err, start) = earliest(&mut c, "rb");
        assert_eq!(err, 0);
        if start > 0 && segment_files(&broker, "rb").len() <= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not run: earliest {start}, segments {:?}\n{}",
            segment_files(&broker, "rb"),
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, start) = earliest(&mut c, "rb");
    assert!(
        start >= 50,
        "most of the 100 records are gone, start {start}"
    );
    assert_eq!(start % 5, 0, "whole segments (of whole batches) go");
    // No `.deleted` files linger and the newest data is readable from the start offset.
    let dir = broker.data_dir().join("rb-0");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".deleted"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(fetch(&mut c, "rb", start - 1).0, 1);
    let (err, _, log_start) = fetch(&mut c, "rb", start);
    assert_eq!((err, log_start), (0, start));
    assert_eq!(
        read_all(&mut c, "rb", start),
        (start..100).collect::<Vec<_>>()
    );
}
