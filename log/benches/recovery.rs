//! Recovery and compaction throughput of the partition log.
//!
//! - `recovery`: opening a log after an unclean shutdown with no recovery point, so every
//!   segment is validated batch by batch (CRC32C of every byte) and its indexes rebuilt:
//!   the worst case of unflushed data. 256 MiB of 1 KB records in 64 KB batches (scaled
//!   down from a GB; criterion's throughput gives the rate, seconds per GB = 1 / GiB/s).
//!   The data is in the page cache (it was just written), so this measures the CPU cost.
//! - `clean`: one compaction of 64 MiB of keyed records (100 B values over 10,000 keys,
//!   uncompressed and lz4; stored bytes) into `.cleaned` files, without the swap.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gregor_log::batch::test_batches::batch_with;
use gregor_log::cleaner::{clean, discard_cleaned, CleanParams};
use gregor_log::{parse_record_set, Log, LogConfig, LogOpenOptions};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const RECOVERY_BYTES: u64 = 256 << 20;
const CLEAN_BYTES: u64 = 64 << 20;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        ..LogConfig::default()
    }
}

fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(".").expect("tempdir")
}

fn recovery(c: &mut Criterion) {
    let dir = bench_dir();
    let mut log = Log::open(dir.path(), config()).unwrap();
    let batch = batch_with(62, 1_700_000_000_000, None, Compression::None, 1024);
    let headers = parse_record_set(&batch, 1 << 20).unwrap();
    while log.size_bytes() < RECOVERY_BYTES {
        let bytes = batch.to_vec();
        log.append(&bytes, &headers, 0).unwrap();
    }
    let size = log.size_bytes();
    drop(log);
    let mut group = c.benchmark_group("recovery_unflushed");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(size));
    group.bench_function("validate_256MiB_no_recovery_point", |b| {
        b.iter(|| {
            let log = Log::open_with(dir.path(), config(), LogOpenOptions::default()).unwrap();
            assert_eq!(log.size_bytes(), size);
        })
    });
    group.finish();
}

fn keyed_batch(first: usize, n: usize, keys: usize, compression: Compression) -> Bytes {
    let recs: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: 1_000,
            key: Some(Bytes::from(format!("key-{}", (first + i) * 7919 % keys))),
            value: Some(Bytes::from(noise(first + i, 100))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

/// 100 bytes that lz4 cannot shrink much (xorshift from the record number).
fn noise(seed: usize, len: usize) -> Vec<u8> {
    let mut x = seed as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 16) as u8
        })
        .collect()
}

fn cleaning(c: &mut Criterion) {
    let mut group = c.benchmark_group("clean_64MiB_10k_keys");
    group.sample_size(10);
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let dir = bench_dir();
        let mut log = Log::open(
            dir.path(),
            LogConfig {
                segment_bytes: 8 << 20,
                ..LogConfig::default()
            },
        )
        .unwrap();
        let mut n = 0;
        while log.size_bytes() < CLEAN_BYTES {
            let b = keyed_batch(n, 500, 10_000, compression);
            let headers = parse_record_set(&b, 1 << 20).unwrap();
            log.append(&b, &headers, 0).unwrap();
            n += 500;
        }
        let view = log.cleanable_view(log.log_end_offset()).unwrap();
        // Throughput: the stored bytes of the closed segments, which the cleaning reads.
        let appended: u64 = view.segments.iter().map(|s| s.size).sum();
        let params = CleanParams {
            now_ms: 10_000,
            min_compaction_lag_ms: 0,
            delete_retention_ms: 1_000_000,
            dedupe_buffer_size: 128 << 20,
        };
        group.throughput(Throughput::Bytes(appended));
        group.bench_function(name, |b| {
            b.iter(|| {
                let result = clean(&view, 0, &params).unwrap().unwrap();
                assert!(result.records_kept <= 10_000);
                discard_cleaned(&result);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, recovery, cleaning);
criterion_main!(benches);
