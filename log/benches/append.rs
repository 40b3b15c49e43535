//! Append and read throughput of the partition log, beside a plain `write` of the same
//! bytes to a file on the same disk in the same run, so the ratio is what counts.
//! 1 KB records in 64 KB batches, as the issue asks.

use std::io::Write;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gregor_log::batch::test_batches::batch_with;
use gregor_log::{parse_record_set, Log, LogConfig};
use kafka_protocol::records::Compression;

const BATCH_RECORDS: usize = 62; // 62 x ~1 KB = ~64 KB
const BATCHES_PER_ITER: usize = 32; // 2 MiB per iteration

fn one_batch() -> Bytes {
    batch_with(
        BATCH_RECORDS,
        1_700_000_000_000,
        None,
        Compression::None,
        1024,
    )
}

fn bench_dir() -> tempfile::TempDir {
    // Under the working directory, so both sides use the same disk as the project.
    tempfile::tempdir_in(".").expect("tempdir")
}

fn append(c: &mut Criterion) {
    let batch = one_batch();
    let headers = parse_record_set(&batch, 1 << 20).expect("valid batch");
    let mut group = c.benchmark_group("append_1KB_records_64KB_batches");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(4));
    group.throughput(Throughput::Bytes((batch.len() * BATCHES_PER_ITER) as u64));

    let dir = bench_dir();
    let mut log = Log::open(dir.path(), LogConfig::default()).expect("open");
    group.bench_function(BenchmarkId::new("gregor_log_append", "64KB"), |b| {
        b.iter(|| {
            for _ in 0..BATCHES_PER_ITER {
                log.append(&batch, &headers, 0).expect("append");
            }
        })
    });

    let plain_dir = bench_dir();
    let mut file = std::fs::File::create(plain_dir.path().join("plain.bin")).expect("file");
    group.bench_function(BenchmarkId::new("plain_file_write", "64KB"), |b| {
        b.iter(|| {
            for _ in 0..BATCHES_PER_ITER {
                file.write_all(&batch).expect("write");
            }
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let batch = one_batch();
    let headers = parse_record_set(&batch, 1 << 20).expect("valid batch");
    let dir = bench_dir();
    let mut log = Log::open(dir.path(), LogConfig::default()).expect("open");
    for _ in 0..512 {
        log.append(&batch, &headers, 0).expect("append");
    }
    let end = log.log_end_offset();
    let mut group = c.benchmark_group("sequential_fetch_1MB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(log.size_bytes()));
    group.bench_function("read_whole_log_in_1MB_fetches", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut total = 0;
            while offset < end {
                let slice = log
                    .read(offset, 1 << 20, i64::MAX, true)
                    .expect("read")
                    .expect("data");
                let bytes = slice.read().expect("pread");
                total += bytes.len();
                // Whole 64 KB batches of 62 records each.
                offset += (bytes.len() / batch.len() * BATCH_RECORDS).max(1) as i64;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
