//! Retention and DeleteRecords on real files: deletion by time (explicit batch timestamps)
//! and by size, the expired active segment rolled first, the `.deleted` rename and the
//! removal of leftovers on open, the log start offset moving (never back), persisting through
//! the broker's checkpoint file, and reads below it failing.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor_log::batch::test_batches::batch;
use gregor_log::checkpoint::{read_checkpoint, write_checkpoint, Offsets};
use gregor_log::{parse_record_set, Log, LogConfig, LogError, LogOpenOptions};
use kafka_protocol::records::RecordBatchDecoder;

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        retention_ms: -1,
        retention_bytes: -1,
        delete_enabled: true,
        ..LogConfig::default()
    }
}

fn append(log: &mut Log, b: &Bytes) -> gregor_log::AppendInfo {
    let headers = parse_record_set(b, 1 << 20).unwrap();
    log.append(b, &headers, 0).unwrap()
}

/// All record offsets readable from `from`, following reads across segments.
fn offsets_from(log: &Log, from: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next = from;
    while let Some(slice) = log.read(next, 1 << 20, i64::MAX, true).unwrap() {
        let mut bytes = slice.read().unwrap();
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        let recs: Vec<i64> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        next = recs.last().unwrap() + 1;
        out.extend(recs);
    }
    out
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Ten batches of 5 records, one segment each (the segment size fits one batch), with
/// timestamps 1000 * (i + 1) .. + 4.
fn ten_segments(dir: &Path, cfg: LogConfig) -> Log {
    let mut log = Log::open(dir, cfg).unwrap();
    for i in 0..10 {
        append(&mut log, &batch(5, 1000 * (i + 1)));
    }
    assert_eq!(files_with(dir, ".log").len(), 10);
    log
}

#[test]
fn retention_ms_deletes_the_expired_prefix_by_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(150);
    cfg.retention_ms = 3000;
    let mut log = ten_segments(dir.path(), cfg);
    // Segment i holds timestamps 1000(i+1)..1000(i+1)+4. At now = 7004 the limit is 4004:
    // segments 0..=2 (largest 1004, 2004, 3004) are older; segment 3 (4004) is not.
    let deleted = log.delete_old_segments(7004, i64::MAX).unwrap();
    assert_eq!(deleted, 3);
    assert_eq!(log.log_start_offset(), 15);
    assert_eq!(files_with(dir.path(), ".log").len(), 7);
    // Renamed first, each segment's three files, removed by whoever takes them.
    let deleted_files = files_with(dir.path(), ".deleted");
    assert_eq!(deleted_files.len(), 9);
    assert!(deleted_files
        .iter()
        .any(|p| p.ends_with("00000000000000000000.log.deleted")));
    assert!(deleted_files
        .iter()
        .any(|p| p.ends_with("00000000000000000005.index.deleted")));
    assert!(deleted_files
        .iter()
        .any(|p| p.ends_with("00000000000000000010.timeindex.deleted")));
    let taken = log.take_deleted_files();
    assert!(deleted_files.iter().all(|p| taken.contains(p)));
    gregor_log::remove_deleted_files(&taken);
    assert!(files_with(dir.path(), ".deleted").is_empty());
    // Reads below the start offset are out of range; at it, data.
    assert!(matches!(
        log.read(14, 1 << 20, i64::MAX, true),
        Err(LogError::OffsetOutOfRange {
            offset: 14,
            log_start: 15,
            ..
        })
    ));
    assert_eq!(offsets_from(&log, 15), (15..50).collect::<Vec<_>>());
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((15, 4000)));
    // Nothing more is due at the same time; the log still takes appends.
    assert_eq!(log.delete_old_segments(7004, i64::MAX).unwrap(), 0);
    assert_eq!(append(&mut log, &batch(1, 99_000)).first_offset, 50);
}

#[test]
fn retention_stops_at_the_high_watermark_and_without_delete_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(150);
    cfg.retention_ms = 0;
    cfg.delete_enabled = false;
    let mut log = ten_segments(dir.path(), cfg.clone());
    assert_eq!(log.delete_old_segments(1_000_000, i64::MAX).unwrap(), 0);
    cfg.delete_enabled = true;
    log.set_config(cfg);
    // Only segments wholly below the high watermark go: segment 1 ends at 10 <= 12, not 2.
    assert_eq!(log.delete_old_segments(1_000_000, 12).unwrap(), 2);
    assert_eq!(log.log_start_offset(), 10);
}

#[test]
fn retention_bytes_keeps_at_least_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(150);
    let probe = tempfile::tempdir().unwrap();
    let one = {
        let mut l = Log::open(probe.path(), config(150)).unwrap();
        append(&mut l, &batch(5, 1000));
        l.size_bytes() as i64
    };
    // Room for 3.5 segments: 6 of the 10 go (the total minus a segment must stay >= limit).
    cfg.retention_bytes = one * 7 / 2;
    let mut log = ten_segments(dir.path(), cfg);
    assert_eq!(log.size_bytes() as i64, one * 10);
    assert_eq!(log.delete_old_segments(0, i64::MAX).unwrap(), 6);
    assert_eq!(log.size_bytes() as i64, one * 4);
    assert_eq!(log.log_start_offset(), 30);
    assert_eq!(offsets_from(&log, 30), (30..50).collect::<Vec<_>>());
    gregor_log::remove_deleted_files(&log.take_deleted_files());
}

#[test]
fn an_expired_active_segment_is_rolled_then_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(1 << 20);
    cfg.retention_ms = 1000;
    let mut log = Log::open(dir.path(), cfg).unwrap();
    append(&mut log, &batch(5, 100));
    append(&mut log, &batch(5, 200));
    assert_eq!(files_with(dir.path(), ".log").len(), 1);
    assert_eq!(log.delete_old_segments(10_000, i64::MAX).unwrap(), 1);
    // A new empty active segment at the log end offset remains.
    let logs = files_with(dir.path(), ".log");
    assert_eq!(logs.len(), 1);
    assert!(logs[0].ends_with("00000000000000000010.log"));
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(
        log.read(10, 1 << 20, i64::MAX, true)
            .unwrap()
            .map(|s| s.len),
        None
    );
    // An empty active segment is never deleted.
    assert_eq!(log.delete_old_segments(10_000, i64::MAX).unwrap(), 0);
    assert_eq!(append(&mut log, &batch(1, 20_000)).first_offset, 10);
    assert_eq!(offsets_from(&log, 10), vec![10]);
    gregor_log::remove_deleted_files(&log.take_deleted_files());
}

#[test]
fn delete_records_in_the_middle_of_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ten_segments(dir.path(), config(150));
    // 17 is inside segment 15..20: segments 0..=2 go, the start offset is 17.
    assert_eq!(log.delete_records_before(17).unwrap(), 17);
    assert_eq!(files_with(dir.path(), ".log").len(), 7);
    assert_eq!(files_with(dir.path(), ".deleted").len(), 9);
    gregor_log::remove_deleted_files(&log.take_deleted_files());
    assert!(matches!(
        log.read(16, 1 << 20, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { log_start: 17, .. })
    ));
    // A read at 17 returns the whole batch holding it, as Kafka does.
    assert_eq!(offsets_from(&log, 17)[..6], [15, 16, 17, 18, 19, 20]);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((17, 4002)));
    // Never backwards; above the log end offset is refused.
    assert_eq!(log.delete_records_before(3).unwrap(), 17);
    assert!(matches!(
        log.delete_records_before(51),
        Err(LogError::OffsetOutOfRange { offset: 51, .. })
    ));
    // Retention (no time or size limit here) keeps the segment holding 17.
    assert_eq!(log.delete_old_segments(0, i64::MAX).unwrap(), 0);
    // Up to the log end offset: every closed segment goes, the active one stays.
    assert_eq!(log.delete_records_before(50).unwrap(), 50);
    assert_eq!(files_with(dir.path(), ".log").len(), 1);
    assert_eq!(log.log_end_offset(), 50);
    gregor_log::remove_deleted_files(&log.take_deleted_files());
}

#[test]
fn the_start_offset_survives_a_reopen_through_the_checkpoint_and_leftovers_go() {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let checkpoint = root.path().join("log-start-offset-checkpoint");
    {
        let mut log = ten_segments(dir.path(), config(150));
        assert_eq!(log.delete_records_before(23).unwrap(), 23);
        // The deleted files are left behind, as after a crash between rename and removal.
        assert_eq!(files_with(dir.path(), ".deleted").len(), 12);
        let mut offsets = Offsets::new();
        offsets.insert(("t".to_string(), 0), log.log_start_offset());
        write_checkpoint(&checkpoint, &offsets).unwrap();
        log.close().unwrap();
    }
    let start = read_checkpoint(&checkpoint)
        .unwrap()
        .get(&("t".to_string(), 0))
        .copied();
    assert_eq!(start, Some(23));
    let log = Log::open_with(
        dir.path(),
        config(150),
        LogOpenOptions {
            recovery_point: None,
            clean_shutdown: true,
            log_start_offset: start,
        },
    )
    .unwrap();
    assert!(files_with(dir.path(), ".deleted").is_empty());
    assert_eq!(log.log_start_offset(), 23);
    assert!(matches!(
        log.read(22, 1 << 20, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(offsets_from(&log, 23)[0], 20);
    assert_eq!(*offsets_from(&log, 23).last().unwrap(), 49);
    // Without the checkpoint the first segment's base offset is the start.
    drop(log);
    let log = Log::open(dir.path(), config(150)).unwrap();
    assert_eq!(log.log_start_offset(), 20);
}
