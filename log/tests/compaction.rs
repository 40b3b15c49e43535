//! Compaction on real files: the newest record per key survives with its offset, the active
//! segment is untouched, tombstones go after delete.retention.ms, a small offset map takes
//! several passes to the same result, compressed batches stay compressed, a producer's last
//! batch survives empty, segments are grouped, and a swap interrupted by a crash completes.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use gregor_log::cleaner::{clean, CleanParams};
use gregor_log::{parse_record_set, Log, LogConfig, LogOpenOptions};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        retention_ms: -1,
        delete_enabled: false,
        ..LogConfig::default()
    }
}

/// A batch of (key, value) records (value None = tombstone) at timestamp `ts`.
fn keyed_batch(
    records: &[(String, Option<String>)],
    ts: i64,
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if seq >= 0 {
                seq + i as i32
            } else {
                i as i32 - 1
            },
            timestamp: ts,
            key: Some(Bytes::from(k.clone())),
            value: v.clone().map(Bytes::from),
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

fn append(log: &mut Log, b: &Bytes) -> gregor_log::AppendInfo {
    let headers = parse_record_set(b, 1 << 20).unwrap();
    log.append(b, &headers, 0).unwrap()
}

/// Every record readable from the log start: (offset, key, value), and the batch count.
fn contents(log: &Log) -> (Vec<(i64, String, Option<String>)>, usize) {
    let mut out = Vec::new();
    let mut batches = 0;
    let mut next = log.log_start_offset();
    while let Some(slice) = log.read(next, 1 << 20, i64::MAX, true).unwrap() {
        let bytes = slice.read().unwrap();
        let headers = parse_record_set(&bytes, 1 << 30).unwrap();
        let mut b = bytes.clone();
        let sets = RecordBatchDecoder::decode_all(&mut b).unwrap();
        for s in &sets {
            for r in &s.records {
                out.push((
                    r.offset,
                    String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(),
                    r.value
                        .clone()
                        .map(|v| String::from_utf8(v.to_vec()).unwrap()),
                ));
            }
        }
        batches += headers.len();
        next = headers.last().unwrap().last_offset() + 1;
    }
    (out, batches)
}

fn params(now_ms: i64, delete_retention_ms: i64, buffer: usize) -> CleanParams {
    CleanParams {
        now_ms,
        min_compaction_lag_ms: 0,
        delete_retention_ms,
        dedupe_buffer_size: buffer,
    }
}

/// One cleaning from `first_dirty`, swapped in; returns the new first dirty offset.
fn clean_once(log: &mut Log, first_dirty: i64, p: &CleanParams) -> i64 {
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let result = clean(&view, first_dirty, p)
        .unwrap()
        .expect("something to clean");
    let swapped = log.replace_cleaned(&result).unwrap();
    assert_eq!(swapped, result.groups.len());
    gregor_log::remove_deleted_files(&log.take_deleted_files());
    result.end_offset
}

/// The model: after compaction below `active_base`, the newest record of each key (with its
/// original offset), then everything from the active segment on.
fn model(
    all: &[(i64, String, Option<String>)],
    active_base: i64,
    drop_tombstones: bool,
) -> Vec<(i64, String, Option<String>)> {
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    for (o, k, _) in all.iter().filter(|(o, _, _)| *o < active_base) {
        newest.insert(k, *o);
    }
    all.iter()
        .filter(|(o, k, v)| {
            *o >= active_base || (newest[k.as_str()] == *o && !(drop_tombstones && v.is_none()))
        })
        .cloned()
        .collect()
}

fn fill(log: &mut Log, updates: usize, keys: usize, per_batch: usize, ts: i64) {
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
    ];
    for (n, chunk) in (0..updates)
        .collect::<Vec<_>>()
        .chunks(per_batch)
        .enumerate()
    {
        let recs: Vec<(String, Option<String>)> = chunk
            .iter()
            .map(|i| (format!("k{}", (i * 7) % keys), Some(format!("v{i}"))))
            .collect();
        append(log, &keyed_batch(&recs, ts, None, codecs[n % codecs.len()]));
    }
}

#[test]
fn newest_value_per_key_survives_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(4096)).unwrap();
    fill(&mut log, 3000, 100, 10, 1_000);
    let (before, _) = contents(&log);
    assert_eq!(before.len(), 3000);
    let active_base = log
        .cleanable_view(log.log_end_offset())
        .unwrap()
        .active_base_offset;
    assert!(active_base > 2000, "many segments rolled: {active_base}");
    let size_before = log.size_bytes();
    let end = clean_once(&mut log, 0, &params(10_000, 1_000_000, 1 << 20));
    assert_eq!(end, active_base, "whole closed range cleaned");
    let (after, _) = contents(&log);
    assert_eq!(after, model(&before, active_base, false));
    assert!(
        log.size_bytes() < size_before / 4,
        "{} vs {size_before}",
        log.size_bytes()
    );
    assert_eq!(log.log_end_offset(), 3000, "offsets never change");
    // Reopened (after a crash or cleanly) it is the same log.
    drop(log);
    let log = Log::open_with(dir.path(), config(4096), LogOpenOptions::default()).unwrap();
    assert_eq!(contents(&log).0, model(&before, active_base, false));
    // Appends continue at the same offset.
    assert_eq!(log.log_end_offset(), 3000);
}

#[test]
fn small_segments_are_grouped_and_cleaning_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    fill(&mut log, 2000, 20, 10, 1_000);
    let (before, _) = contents(&log);
    let segments_before = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    let end = clean_once(&mut log, 0, &params(10_000, 1_000_000, 1 << 20));
    let expected = model(&before, end, false);
    assert_eq!(contents(&log).0, expected);
    // Roll more data in, clean again from the checkpoint: still the model.
    fill(&mut log, 500, 20, 10, 2_000);
    let (before2, _) = contents(&log);
    let end2 = clean_once(&mut log, end, &params(10_000, 1_000_000, 1 << 20));
    assert!(end2 > end);
    let mut all = before.clone();
    all.extend(before2.iter().filter(|(o, _, _)| *o >= 2000).cloned());
    assert_eq!(contents(&log).0, model(&all, end2, false));
    // Kafka groups by the segments' current sizes: the second cleaning merges the small
    // segments the first one left.
    let segments_after = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(
        segments_after * 2 < segments_before,
        "{segments_after} segments left of {segments_before}"
    );
}

#[test]
fn a_small_offset_map_takes_several_passes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(4096)).unwrap();
    fill(&mut log, 3000, 300, 10, 1_000);
    let (before, _) = contents(&log);
    let active_base = log
        .cleanable_view(log.log_end_offset())
        .unwrap()
        .active_base_offset;
    // 24 bytes per slot: room for ~90 keys while the dirty section has 300.
    let p = params(10_000, 1_000_000, 24 * 100);
    let mut first_dirty = 0;
    let mut passes = 0;
    while first_dirty < active_base {
        first_dirty = clean_once(&mut log, first_dirty, &p);
        passes += 1;
        assert!(passes < 100);
    }
    assert!(passes >= 3, "{passes} passes");
    // Later passes saw only part of the keys: one more full pass with a big map converges.
    clean_once(&mut log, 0, &params(10_000, 1_000_000, 1 << 20));
    assert_eq!(contents(&log).0, model(&before, active_base, false));
}

#[test]
fn tombstones_survive_one_cleaning_then_go_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    fill(&mut log, 200, 10, 10, 1_000);
    // Delete k0..k4.
    let deletes: Vec<(String, Option<String>)> = (0..5).map(|k| (format!("k{k}"), None)).collect();
    append(
        &mut log,
        &keyed_batch(&deletes, 5_000, None, Compression::None),
    );
    fill(&mut log, 200, 10, 10, 9_000); // pushes the tombstones out of the active segment
    let (before, _) = contents(&log);
    let active_base = log
        .cleanable_view(log.log_end_offset())
        .unwrap()
        .active_base_offset;
    let tombstone_offsets: Vec<i64> = before
        .iter()
        .filter(|r| r.2.is_none())
        .map(|r| r.0)
        .collect();
    assert!(tombstone_offsets.iter().all(|o| *o < active_base));
    // The later updates rewrite every key, so tombstones are superseded anyway: write more
    // tombstones that stay newest.
    let deletes: Vec<(String, Option<String>)> =
        (10..13).map(|k| (format!("k{k}"), None)).collect();
    append(
        &mut log,
        &keyed_batch(&deletes, 9_500, None, Compression::Gzip),
    );
    fill(&mut log, 100, 5, 10, 9_900);
    let (before, _) = contents(&log);
    let active_base = log
        .cleanable_view(log.log_end_offset())
        .unwrap()
        .active_base_offset;
    let end = clean_once(&mut log, 0, &params(100_000, 1_000, 1 << 20));
    assert_eq!(end, active_base);
    let after = contents(&log).0;
    assert_eq!(
        after,
        model(&before, active_base, false),
        "kept on first clean"
    );
    assert_eq!(after.iter().filter(|r| r.2.is_none()).count(), 3);
    // Second cleaning (new data rolled in), now past delete.retention.ms: the tombstones go.
    fill(&mut log, 100, 5, 10, 9_950);
    let (before2, _) = contents(&log);
    let mut all = before.clone();
    all.extend(
        before2
            .iter()
            .filter(|r| r.0 > before.last().unwrap().0)
            .cloned(),
    );
    let end2 = clean_once(&mut log, end, &params(100_000, 1_000, 1 << 20));
    let after = contents(&log).0;
    assert_eq!(after, model(&all, end2, true));
    assert_eq!(after.iter().filter(|r| r.2.is_none()).count(), 0);
    // Within delete.retention.ms they would have stayed: checked on a fresh copy.
}

#[test]
fn a_producers_last_batch_survives_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(512)).unwrap();
    let recs: Vec<(String, Option<String>)> = (0..3)
        .map(|i| (format!("p{i}"), Some("a".into())))
        .collect();
    append(
        &mut log,
        &keyed_batch(&recs, 1, Some((42, 0, 0)), Compression::None),
    );
    let recs: Vec<(String, Option<String>)> = (0..3)
        .map(|i| (format!("p{i}"), Some("b".into())))
        .collect();
    append(&mut log, &keyed_batch(&recs, 2, None, Compression::None));
    for i in 0..40 {
        let r = vec![(format!("other{i}"), Some("x".repeat(50)))];
        append(&mut log, &keyed_batch(&r, 3, None, Compression::None));
    }
    clean_once(&mut log, 0, &params(10_000, 1_000_000, 1 << 20));
    // The producer's batch at offsets 0..=2 lost every record but is kept as an empty batch.
    let slice = log.read(0, 1 << 20, i64::MAX, true).unwrap().unwrap();
    let bytes = slice.read().unwrap();
    let first = parse_record_set(&bytes, 1 << 30).unwrap()[0];
    assert_eq!(
        (first.base_offset, first.last_offset(), first.record_count),
        (0, 2, 0)
    );
    assert_eq!(
        (first.producer_id, first.producer_epoch, first.base_sequence),
        (42, 0, 0)
    );
    let (recs, _) = contents(&log);
    assert_eq!(recs[0], (3, "p0".into(), Some("b".into())));
    // The producer's next sequence is still accepted after a reopen from the cleaned log.
    drop(log);
    let mut log = Log::open_with(dir.path(), config(512), LogOpenOptions::default()).unwrap();
    let next = vec![("p0".to_string(), Some("c".into()))];
    let info = append(
        &mut log,
        &keyed_batch(&next, 4, Some((42, 0, 3)), Compression::None),
    );
    assert!(!info.duplicate);
}

#[test]
fn an_interrupted_swap_completes_on_open_and_unfinished_cleanings_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(4096)).unwrap();
    fill(&mut log, 2000, 50, 10, 1_000);
    let (before, _) = contents(&log);
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let active_base = view.active_base_offset;
    let result = clean(&view, 0, &params(10_000, 1_000_000, 1 << 20))
        .unwrap()
        .unwrap();
    assert!(result.groups.len() >= 2);
    log.close().unwrap();
    drop(log);
    // Crash in the middle of the swap of the first group: `.cleaned` renamed to `.swap`, the
    // old segments still there. The second group's file is still `.cleaned`.
    let g = &result.groups[0];
    let swap_name = g
        .cleaned_path
        .to_string_lossy()
        .replace(".cleaned", ".swap");
    let swap = Path::new(&swap_name);
    std::fs::rename(&g.cleaned_path, swap).unwrap();
    let mut log = Log::open_with(dir.path(), config(4096), LogOpenOptions::default()).unwrap();
    assert!(!swap.exists());
    assert!(!result.groups[1].cleaned_path.exists(), ".cleaned removed");
    let (after, _) = contents(&log);
    // Offsets stay strictly increasing and every record is one that was written, with its
    // offset; everything the cleaning keeps is there. As in Kafka, old segments of the
    // group past the swap's last offset may survive the crash (stale values, never wrong
    // offsets) until the next cleaning.
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(after.iter().all(|r| before.contains(r)));
    let cleaned = model(&before, active_base, false);
    assert!(cleaned.iter().all(|r| after.contains(r)));
    assert!(after.len() < before.len());
    clean_once(&mut log, 0, &params(10_000, 1_000_000, 1 << 20));
    assert_eq!(contents(&log).0, cleaned);
}

#[test]
fn a_crash_after_the_old_segments_were_renamed_keeps_the_cleaned_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(4096)).unwrap();
    fill(&mut log, 2000, 50, 10, 1_000);
    let (before, _) = contents(&log);
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let active_base = view.active_base_offset;
    let result = clean(&view, 0, &params(10_000, 1_000_000, 1 << 20))
        .unwrap()
        .unwrap();
    log.close().unwrap();
    drop(log);
    // Every group got as far as: `.cleaned` -> `.swap`, old segments -> `.deleted`.
    for g in &result.groups {
        let swap_name = g
            .cleaned_path
            .to_string_lossy()
            .replace(".cleaned", ".swap");
        std::fs::rename(&g.cleaned_path, &swap_name).unwrap();
        for (base, _) in &g.replaces {
            for ext in ["log", "index", "timeindex"] {
                let p = dir.path().join(format!("{base:020}.{ext}"));
                std::fs::rename(&p, format!("{}.deleted", p.display())).unwrap();
            }
        }
    }
    let log = Log::open_with(dir.path(), config(4096), LogOpenOptions::default()).unwrap();
    assert_eq!(contents(&log).0, model(&before, active_base, false));
    assert_eq!(log.log_end_offset(), 2000);
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let n = e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .to_string();
            n.ends_with(".swap") || n.ends_with(".deleted") || n.ends_with(".cleaned")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn min_compaction_lag_keeps_recent_segments_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    fill(&mut log, 300, 10, 10, 1_000); // old records
    fill(&mut log, 300, 10, 10, 9_000); // recent records
    let (before, _) = contents(&log);
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    // now 10,000, lag 5,000: segments holding records newer than 5,000 are not cleanable.
    let uncleanable = view.first_uncleanable_offset(0, 10_000, 5_000);
    assert!(uncleanable > 0 && uncleanable <= 300, "{uncleanable}");
    assert!(uncleanable < view.active_base_offset);
    let stats = view.dirty_stats(None, 10_000, 5_000);
    assert_eq!(stats.first_uncleanable_offset, uncleanable);
    assert!(stats.dirty_bytes > 0 && stats.clean_bytes == 0);
    let p = CleanParams {
        min_compaction_lag_ms: 5_000,
        ..params(10_000, 1_000_000, 1 << 20)
    };
    let end = clean_once(&mut log, 0, &p);
    assert_eq!(end, uncleanable);
    assert_eq!(contents(&log).0, model(&before, uncleanable, false));
    // Everything at or above the uncleanable offset is as written.
    assert!(
        contents(&log)
            .0
            .iter()
            .filter(|r| r.0 >= uncleanable)
            .count()
            == 600 - uncleanable as usize
    );
    // Later, with the lag passed, the rest (below the active segment) is cleaned too.
    let p = CleanParams {
        now_ms: 20_000,
        ..p
    };
    // Segments the first cleaning emptied carry no timestamp (their modification time is
    // now): only dirty segments count for the lag, as in Kafka.
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    assert_eq!(
        view.first_uncleanable_offset(end, 20_000, 5_000),
        view.active_base_offset
    );
    let active = view.active_base_offset;
    assert_eq!(clean_once(&mut log, end, &p), active);
    assert_eq!(contents(&log).0, model(&before, active, false));
}

#[test]
fn expired_tombstones_go_without_new_dirty_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    fill(&mut log, 100, 10, 10, 1_000);
    let deletes: Vec<(String, Option<String>)> = (0..4).map(|k| (format!("k{k}"), None)).collect();
    append(
        &mut log,
        &keyed_batch(&deletes, 2_000, None, Compression::Gzip),
    );
    fill(&mut log, 200, 3, 10, 3_000); // other keys, rolls the tombstones out of the active segment
    let (before, _) = contents(&log);
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let active_base = view.active_base_offset;
    let result = clean(&view, 0, &params(3_500, 10_000, 1 << 20))
        .unwrap()
        .unwrap();
    log.replace_cleaned(&result).unwrap();
    let end = result.end_offset;
    assert_eq!(end, active_base);
    let tombstone_segment_ts = 2_000; // the segment holding them also holds 1_000 records
    let expiry = result.tombstone_expiry_ms.expect("tombstones kept");
    assert!(expiry > tombstone_segment_ts + 10_000 && expiry <= 3_000 + 10_001);
    assert_eq!(contents(&log).0, model(&before, active_base, false));
    // Nothing dirty; before the horizon a pass keeps them, after it they go.
    let early = clean(
        &log.cleanable_view(log.log_end_offset()).unwrap(),
        end,
        &params(expiry - 1, 10_000, 1 << 20),
    )
    .unwrap()
    .unwrap();
    log.replace_cleaned(&early).unwrap();
    assert_eq!(early.end_offset, end, "checkpoint unchanged");
    assert_eq!(contents(&log).0, model(&before, active_base, false));
    // Each pass reports when its kept tombstones expire (merging segments can move it
    // later: the horizon is per segment); cleaning at that time removes them.
    let mut at = early.tombstone_expiry_ms.expect("still kept");
    assert!(at >= expiry);
    let mut passes = 0;
    loop {
        let pass = clean(
            &log.cleanable_view(log.log_end_offset()).unwrap(),
            end,
            &params(at, 10_000, 1 << 20),
        )
        .unwrap()
        .unwrap();
        log.replace_cleaned(&pass).unwrap();
        passes += 1;
        match pass.tombstone_expiry_ms {
            Some(next) => {
                assert!(next > at && passes < 3, "pass {passes}: {next}");
                at = next;
            }
            None => break,
        }
    }
    assert_eq!(contents(&log).0, model(&before, active_base, true));
    assert!(contents(&log).0.iter().all(|r| r.2.is_some()));
}
