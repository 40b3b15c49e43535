//! Property tests: random sequences of appends (keyed records, tombstones, every codec),
//! rolls (tiny segments), reopens (clean, or crash with full recovery), torn tails,
//! DeleteRecords, size retention and compaction, checked after every step against a simple
//! model: a Vec of (offset, key, value). Compaction's model is "the newest record of each key
//! below the active segment, and everything from the active segment on". At most 16
//! segment files stay open, so segments are closed and reopened throughout.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use gregor_log::cleaner::{clean, CleanParams};
use gregor_log::{parse_record_set, Log, LogConfig, LogOpenOptions};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

type Row = (i64, u8, Option<u16>);

#[derive(Clone, Debug)]
enum Op {
    /// Records as (key, value; None = tombstone), with a codec.
    Append(Vec<(u8, Option<u16>)>, u8),
    Reopen {
        clean: bool,
    },
    /// Cut this many bytes (modulo the last batch's size, at least 1) off the active segment.
    TearTail(usize),
    /// DeleteRecords at this fraction (per mille) of [log start, log end].
    DeleteRecords(u16),
    /// Size retention with this many bytes.
    RetainBytes(u16),
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop::collection::vec((0u8..6, prop::option::weighted(0.85, any::<u16>())), 1..6), 0u8..5)
            .prop_map(|(r, c)| Op::Append(r, c)),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (1usize..10_000).prop_map(Op::TearTail),
        1 => (0u16..1000).prop_map(Op::DeleteRecords),
        1 => (0u16..3000).prop_map(Op::RetainBytes),
        2 => Just(Op::Compact),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 100,
        retention_ms: -1,
        retention_bytes: -1,
        delete_enabled: false,
        ..LogConfig::default()
    }
}

fn encode(records: &[(u8, Option<u16>)], codec: u8) -> Bytes {
    let compression = match codec {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
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
            timestamp: 1_000 + i as i64,
            key: Some(Bytes::from(vec![b'k', *k])),
            value: v.map(|v| Bytes::from(v.to_be_bytes().to_vec())),
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

/// Every record readable from the log start.
fn contents(log: &Log) -> Vec<Row> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while let Some(slice) = log.read(next, 1 << 20, i64::MAX, true).unwrap() {
        let bytes = slice.read().unwrap();
        let headers = parse_record_set(&bytes, 1 << 30).unwrap();
        let mut b = bytes.clone();
        for set in RecordBatchDecoder::decode_all(&mut b).unwrap() {
            for r in set.records {
                if r.offset < log.log_start_offset() {
                    continue;
                }
                let key = r.key.unwrap()[1];
                let value = r.value.map(|v| u16::from_be_bytes([v[0], v[1]]));
                out.push((r.offset, key, value));
            }
        }
        next = headers.last().unwrap().last_offset() + 1;
    }
    out
}

fn reopen(dir: &Path, clean: bool) -> Log {
    let options = if clean {
        LogOpenOptions {
            clean_shutdown: true,
            ..LogOpenOptions::default()
        }
    } else {
        LogOpenOptions::default() // no recovery point: every segment is validated
    };
    Log::open_with(dir, config(), options).unwrap()
}

fn active_segment_size(dir: &Path) -> (std::path::PathBuf, u64) {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".log"))
        .collect();
    logs.sort();
    let last = logs.pop().unwrap();
    let size = std::fs::metadata(&last).unwrap().len();
    (last, size)
}

fn run(ops: Vec<Op>) {
    // Far fewer open segment files than the logs have segments: every step also exercises
    // closing and reopening them (the set is process-wide, and every test here wants this).
    gregor_log::open_files::set_capacity(16);
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    let mut model: Vec<Row> = Vec::new();
    let mut log_start = 0i64;
    let mut first_dirty = 0i64;
    // The last append's records and batch size, while it is the last thing in the log.
    let mut last_batch: Option<(usize, u64)> = None;
    let mut leo = 0i64;
    for op in ops {
        let step = op.clone();
        match op {
            Op::Append(records, codec) => {
                let b = encode(&records, codec);
                let headers = parse_record_set(&b, 1 << 20).unwrap();
                let info = log.append(&b, &headers, 0).unwrap();
                for (i, (k, v)) in records.iter().enumerate() {
                    model.push((info.first_offset + i as i64, *k, *v));
                }
                last_batch = Some((records.len(), b.len() as u64));
                leo = info.last_offset + 1;
            }
            Op::Reopen { clean } => {
                if clean {
                    log.close().unwrap();
                }
                drop(log);
                log = reopen(dir.path(), clean);
                // The log start offset is the broker's checkpoint; reapply it.
                log.delete_records_before(log_start).unwrap();
            }
            Op::TearTail(n) => {
                let Some((count, size)) = last_batch.take() else {
                    continue;
                };
                let (path, active) = active_segment_size(dir.path());
                if active < size {
                    continue;
                }
                drop(log);
                let cut = 1 + (n as u64 % size);
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(active - cut).unwrap();
                drop(f);
                log = reopen(dir.path(), false);
                log.delete_records_before(log_start.min(log.log_end_offset()))
                    .unwrap();
                leo -= count as i64;
                model.retain(|r| r.0 < leo);
                log_start = log_start.min(leo);
            }
            Op::DeleteRecords(per_mille) => {
                let leo = log.log_end_offset();
                let target = log_start + (leo - log_start) * i64::from(per_mille) / 1000;
                log_start = log.delete_records_before(target).unwrap();
                assert_eq!(log_start, target.max(log.log_start_offset()));
                last_batch = last_batch.filter(|_| log.log_end_offset() > log_start);
            }
            Op::RetainBytes(bytes) => {
                log.set_config(LogConfig {
                    retention_bytes: i64::from(bytes),
                    delete_enabled: true,
                    ..config()
                });
                let leo = log.log_end_offset();
                log.delete_old_segments(i64::MAX / 2, leo).unwrap();
                log.set_config(config());
                let start = log.log_start_offset();
                assert!(start >= log_start && start <= leo);
                log_start = start;
                // What is left beyond the first segment stays within the limit.
                assert!(
                    log.size_bytes() <= u64::from(bytes) + 400 || start == leo,
                    "size {} over {bytes}",
                    log.size_bytes()
                );
            }
            Op::Compact => {
                let view = log.cleanable_view(log.log_end_offset()).unwrap();
                let active_base = view.active_base_offset;
                let params = CleanParams {
                    now_ms: 1_000_000,
                    min_compaction_lag_ms: 0,
                    delete_retention_ms: i64::MAX,
                    dedupe_buffer_size: 24 * 16, // a tiny map: several passes
                };
                if let Some(result) = clean(&view, first_dirty, &params).unwrap() {
                    assert_eq!(log.replace_cleaned(&result).unwrap(), result.groups.len());
                    gregor_log::remove_deleted_files(&log.take_deleted_files());
                    first_dirty = result.end_offset;
                    // The model of a pass that ends at `end`: records below `end` that a
                    // newer record of the same key in [first dirty, end) replaces are gone.
                    let end = result.end_offset;
                    let mut newest = std::collections::BTreeMap::new();
                    for (o, k, _) in model.iter().filter(|r| r.0 < end) {
                        newest.insert(*k, *o);
                    }
                    model.retain(|(o, k, _)| *o >= end || newest[k] == *o);
                    assert!(end <= active_base);
                }
            }
        }
        model.retain(|r| r.0 >= log_start);
        assert_eq!(contents(&log), model, "after {step:?}");
        assert_eq!(log.log_end_offset(), leo, "after {step:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]
    #[test]
    fn log_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
