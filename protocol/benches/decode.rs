//! What the length check (`schema::check_body`) costs beside the decoding it guards: each
//! request is measured through `check_body` alone and through `decode_request` (which runs
//! the check, then kafka-protocol's decoder), in the same run.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use gregor_protocol::{decode_request, schema};

/// A request frame without its size prefix, and where its body starts.
fn frame<R: Encodable + HeaderVersion>(key: ApiKey, version: i16, body: &R) -> (BytesMut, usize) {
    let mut out = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("bench")))
        .encode(&mut out, key.request_header_version(version))
        .expect("header");
    let header_len = out.len();
    body.encode(&mut out, version).expect("body");
    (out, header_len)
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn requests() -> Vec<(&'static str, ApiKey, i16, BytesMut, usize)> {
    let records = Bytes::from(vec![7u8; 16 * 1024]);
    let produce = |partitions: i32| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic("orders"))
                .with_partition_data(
                    (0..partitions)
                        .map(|i| {
                            PartitionProduceData::default()
                                .with_index(i)
                                .with_records(Some(records.clone()))
                        })
                        .collect(),
                )])
    };
    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic("orders"))
            .with_partitions(
                (0..100)
                    .map(|i| {
                        FetchPartition::default()
                            .with_partition(i)
                            .with_fetch_offset(1_000_000)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    let metadata = MetadataRequest::default().with_topics(Some(
        (0..10)
            .map(|i| MetadataRequestTopic::default().with_name(Some(topic(&format!("t{i}")))))
            .collect(),
    ));
    let mut out = Vec::new();
    for (name, key, version, (bytes, header)) in [
        (
            "produce v9, 1 partition, 16 KiB",
            ApiKey::Produce,
            9,
            frame(ApiKey::Produce, 9, &produce(1)),
        ),
        (
            "produce v9, 16 partitions, 16 KiB each",
            ApiKey::Produce,
            9,
            frame(ApiKey::Produce, 9, &produce(16)),
        ),
        (
            "fetch v12, 100 partitions",
            ApiKey::Fetch,
            12,
            frame(ApiKey::Fetch, 12, &fetch),
        ),
        (
            "metadata v12, 10 topics",
            ApiKey::Metadata,
            12,
            frame(ApiKey::Metadata, 12, &metadata),
        ),
    ] {
        out.push((name, key, version, bytes, header));
    }
    out
}

fn decode(c: &mut Criterion) {
    for (name, key, version, frame, header) in requests() {
        let mut group = c.benchmark_group(name);
        let body = frame[header..].to_vec();
        group.bench_function("check_body", |b| {
            b.iter(|| schema::check_body(key as i16, version, &body).expect("valid"))
        });
        group.bench_function("decode_request (check + decode)", |b| {
            b.iter(|| decode_request(frame.clone()).expect("valid"))
        });
        group.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
