//! Kafka's on-disk format and recovery rules, on real files: preallocated and trimmed
//! `.index` / `.timeindex`, rolls by age and by full index, recovery from the recovery point
//! after an unclean shutdown (and none after a clean one), time index lookups across segments.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_log::batch::test_batches::{batch, batch_with};
use gregor_log::{parse_record_set, Log, LogConfig, LogError, LogOpenOptions};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn append(log: &mut Log, b: &Bytes) -> Result<gregor_log::AppendInfo, LogError> {
    let headers = parse_record_set(b, 1 << 20)?;
    log.append(b, &headers, 0)
}

/// All record offsets readable from `from`.
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
        out.extend(recs.into_iter().filter(|o| *o >= from));
    }
    out
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

fn unclean(recovery_point: Option<i64>) -> LogOpenOptions {
    LogOpenOptions {
        recovery_point,
        clean_shutdown: false,
        log_start_offset: None,
    }
}

fn clean() -> LogOpenOptions {
    LogOpenOptions {
        clean_shutdown: true,
        ..LogOpenOptions::default()
    }
}

/// 40 batches of 3 records (timestamps 1000 + 10*i ..), several segments, closed cleanly.
fn write_log(dir: &Path, cfg: &LogConfig) -> i64 {
    let mut log = Log::open_with(dir, cfg.clone(), clean()).unwrap();
    for i in 0..40 {
        append(&mut log, &batch(3, 1000 + 10 * i)).unwrap();
    }
    log.close().unwrap();
    log.log_end_offset()
}

#[test]
fn indexes_are_preallocated_and_trimmed_on_roll_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_index_bytes: 4096,
        ..config(2000)
    };
    let mut log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    let index = dir.path().join("00000000000000000000.index");
    let time_index = dir.path().join("00000000000000000000.timeindex");
    assert_eq!(len(&index), 4096);
    assert_eq!(len(&time_index), 4092, "rounded down to 12-byte entries");
    for i in 0..30 {
        append(&mut log, &batch(3, 1000 + i)).unwrap();
    }
    let logs = files_with(dir.path(), "log");
    assert!(logs.len() >= 3);
    // Closed segments: trimmed to whole entries, never empty (interval 256 < segment).
    for seg in &logs[..logs.len() - 1] {
        let idx = seg.with_extension("index");
        let tidx = seg.with_extension("timeindex");
        assert!(len(&idx) > 0 && len(&idx) < 4096 && len(&idx).is_multiple_of(8));
        assert!(len(&tidx) > 0 && len(&tidx) < 4092 && len(&tidx).is_multiple_of(12));
        // The last time index entry is the segment's max timestamp (Kafka's roll entry).
        let t = std::fs::read(&tidx).unwrap();
        let last = &t[t.len() - 12..];
        let ts = i64::from_be_bytes(last[..8].try_into().unwrap());
        let base: i64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let next: i64 = logs[logs.iter().position(|p| p == seg).unwrap() + 1]
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let rel = u32::from_be_bytes(last[8..].try_into().unwrap());
        assert_eq!(base + i64::from(rel), next - 1, "offset of the last batch");
        assert_eq!(ts, 1000 + (next - 1) / 3 + 2, "its max timestamp");
    }
    let active = logs.last().unwrap();
    assert_eq!(
        len(&active.with_extension("index")),
        4096,
        "active: preallocated"
    );
    log.close().unwrap();
    let active_index = len(&active.with_extension("index"));
    assert!(
        active_index < 4096 && active_index.is_multiple_of(8),
        "trimmed on close"
    );
    drop(log);
    // Reopened after a clean shutdown: the active segment is preallocated again.
    let log = Log::open_with(dir.path(), cfg, clean()).unwrap();
    assert_eq!(len(&active.with_extension("index")), 4096);
    assert_eq!(offsets_from(&log, 0), (0..90).collect::<Vec<_>>());
}

#[test]
fn a_zero_filled_index_tail_is_not_data() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(3000);
    let leo = write_log(dir.path(), &cfg);
    let index = dir.path().join("00000000000000000000.index");
    let time_index = dir.path().join("00000000000000000000.timeindex");
    let (good_index, good_time) = (
        std::fs::read(&index).unwrap(),
        std::fs::read(&time_index).unwrap(),
    );
    // As after a crash before the trim: preallocated zeros after the entries.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(8000)
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&time_index)
        .unwrap()
        .set_len(12000)
        .unwrap();
    let log = Log::open_with(dir.path(), cfg, clean()).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(offsets_from(&log, 0), (0..leo).collect::<Vec<_>>());
    assert_eq!(log.offset_for_timestamp(1051).unwrap(), Some((16, 1051)));
    drop(log);
    // Loaded as they were (a closed segment: the tail is cut, the entries kept).
    assert_eq!(std::fs::read(&index).unwrap(), good_index);
    assert_eq!(std::fs::read(&time_index).unwrap(), good_time);
}

#[test]
fn roll_by_age_with_a_small_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 150,
        ..config(1 << 30)
    };
    let mut log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    append(&mut log, &batch(2, 1)).unwrap();
    append(&mut log, &batch(2, 2)).unwrap();
    assert_eq!(files_with(dir.path(), "log").len(), 1, "young: no roll");
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(append(&mut log, &batch(2, 3)).unwrap().first_offset, 4);
    let logs = files_with(dir.path(), "log");
    assert_eq!(logs.len(), 2, "rolled by age");
    assert!(logs[1].ends_with("00000000000000000004.log"));
    append(&mut log, &batch(2, 4)).unwrap();
    assert_eq!(
        files_with(dir.path(), "log").len(),
        2,
        "the new segment is young"
    );
    // An empty active segment never rolls, however old.
    let dir2 = tempfile::tempdir().unwrap();
    let mut empty = Log::open_with(dir2.path(), cfg, clean()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    append(&mut empty, &batch(1, 1)).unwrap();
    assert_eq!(files_with(dir2.path(), "log").len(), 1);
    assert_eq!(offsets_from(&log, 0), (0..8).collect::<Vec<_>>());
}

#[test]
fn roll_when_an_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 3 offset entries (24 bytes) and 2 time entries (24 bytes / 12): the time
    // index fills first.
    let cfg = LogConfig {
        max_index_bytes: 24,
        index_interval_bytes: 1,
        ..config(1 << 30)
    };
    let mut log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    for i in 0..9 {
        append(&mut log, &batch(1, 100 + i)).unwrap();
    }
    // Batch 0 is not indexed (0 bytes before it); batches 1 and 2 fill the time index, so
    // batch 3 rolls: segments of 3 batches each.
    let logs = files_with(dir.path(), "log");
    let bases: Vec<String> = logs
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        bases,
        [
            "00000000000000000000",
            "00000000000000000003",
            "00000000000000000006"
        ]
    );
    for seg in &logs[..2] {
        assert_eq!(len(&seg.with_extension("index")), 16);
        assert_eq!(len(&seg.with_extension("timeindex")), 24);
    }
    assert_eq!(offsets_from(&log, 0), (0..9).collect::<Vec<_>>());
    assert_eq!(log.offset_for_timestamp(104).unwrap(), Some((4, 104)));
}

#[test]
fn time_index_lookups_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1500);
    let mut log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    // Batch i: 3 records at 1000 + 10*i .. +2, except batch 20 going back in time.
    for i in 0..40i64 {
        let ts = if i == 20 { 500 } else { 1000 + 10 * i };
        append(&mut log, &batch_with(3, ts, None, Compression::Gzip, 20)).unwrap();
    }
    assert!(files_with(dir.path(), "log").len() >= 4, "several segments");
    let check = |log: &Log| {
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
        assert_eq!(log.offset_for_timestamp(1000).unwrap(), Some((0, 1000)));
        assert_eq!(log.offset_for_timestamp(1001).unwrap(), Some((1, 1001)));
        assert_eq!(log.offset_for_timestamp(1003).unwrap(), Some((3, 1010)));
        for i in [5i64, 13, 19, 21, 30, 39] {
            let ts = 1000 + 10 * i;
            assert_eq!(
                log.offset_for_timestamp(ts + 1).unwrap(),
                Some((3 * i + 1, ts + 1)),
                "batch {i}"
            );
        }
        // 500 is before everything else but only found where the first record >= 500 is.
        assert_eq!(log.offset_for_timestamp(400).unwrap(), Some((0, 1000)));
        assert_eq!(log.offset_for_timestamp(1392).unwrap(), Some((119, 1392)));
        assert_eq!(log.offset_for_timestamp(1393).unwrap(), None);
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((119, 1392)));
    };
    check(&log);
    log.close().unwrap();
    drop(log);
    // From the loaded time indexes after a clean shutdown (no scan), and rebuilt ones.
    let log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    check(&log);
    drop(log);
    for t in files_with(dir.path(), "timeindex") {
        std::fs::remove_file(t).unwrap();
    }
    let log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    check(&log);
    assert_eq!(
        files_with(dir.path(), "timeindex").len(),
        files_with(dir.path(), "log").len()
    );
    drop(log);
    let log = Log::open_with(dir.path(), cfg, unclean(None)).unwrap();
    check(&log);
}

#[test]
fn max_timestamp_with_ties_takes_the_earliest_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open_with(dir.path(), config(200), clean()).unwrap();
    for ts in [10, 50, 20, 50, 50, 30] {
        append(&mut log, &batch(1, ts)).unwrap();
    }
    assert!(files_with(dir.path(), "log").len() >= 2);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((1, 50)));
    assert_eq!(log.offset_for_timestamp(40).unwrap(), Some((1, 50)));
    assert_eq!(log.offset_for_timestamp(25).unwrap(), Some((1, 50)));
}

/// Flips a byte inside the records of the batch at `pos` of `seg`.
fn corrupt(seg: &Path, pos: u64) {
    let mut bytes = std::fs::read(seg).unwrap();
    bytes[pos as usize + 70] ^= 0x5a;
    std::fs::write(seg, &bytes).unwrap();
}

#[test]
fn unclean_shutdown_validates_from_the_recovery_point_and_cuts_an_older_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1000);
    let leo = write_log(dir.path(), &cfg);
    let logs = files_with(dir.path(), "log");
    assert!(logs.len() >= 5, "{} segments", logs.len());
    let base = |p: &Path| -> i64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let batch_size = batch(3, 0).len() as u64;
    // Corrupt the second batch of segment 1 (not the active one).
    let victim = &logs[1];
    let victim_len = len(victim);
    corrupt(victim, batch_size);
    // Recovery point in segment 2: segment 1 is trusted, the corruption stays unseen.
    let rp = base(&logs[2]) + 1;
    let log = Log::open_with(dir.path(), cfg.clone(), unclean(Some(rp))).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(len(victim), victim_len, "untouched");
    assert_eq!(files_with(dir.path(), "log").len(), logs.len());
    drop(log);
    // Recovery point in segment 1 (or before): validated and cut after its first batch;
    // the damaged bytes and every later segment go aside, not served and not deleted.
    let original = std::fs::read(victim).unwrap();
    let later: Vec<Vec<u8>> = logs[2..]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let rp = base(&logs[1]);
    let log = Log::open_with(dir.path(), cfg.clone(), unclean(Some(rp))).unwrap();
    let asides: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(asides.len(), 1, "{asides:?}");
    let aside = &asides[0];
    assert!(aside
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(gregor_log::log::RECOVERY_ASIDE_PREFIX));
    let tail = std::fs::read(aside.join(format!(
        "{}.from-byte-{batch_size}",
        victim.file_name().unwrap().to_string_lossy()
    )))
    .unwrap();
    assert_eq!(
        tail,
        original[batch_size as usize..],
        "the damaged tail, byte for byte"
    );
    for (path, bytes) in logs[2..].iter().zip(&later) {
        let kept = std::fs::read(aside.join(path.file_name().unwrap())).unwrap();
        assert_eq!(&kept, bytes, "{} kept whole", path.display());
    }
    assert_eq!(log.log_end_offset(), base(victim) + 3);
    assert_eq!(log.recovery_point(), log.log_end_offset());
    assert_eq!(len(victim), batch_size);
    let after = files_with(dir.path(), "log");
    assert_eq!(after, logs[..2].to_vec());
    assert_eq!(files_with(dir.path(), "index").len(), 2);
    assert_eq!(files_with(dir.path(), "timeindex").len(), 2);
    assert_eq!(
        offsets_from(&log, 0),
        (0..base(victim) + 3).collect::<Vec<_>>()
    );
    drop(log);
    // Appends continue at the cut, into the (preallocated) truncated segment.
    let mut log = Log::open_with(dir.path(), cfg, clean()).unwrap();
    assert_eq!(
        append(&mut log, &batch(2, 5)).unwrap().first_offset,
        base(victim) + 3
    );
}

#[test]
fn a_clean_shutdown_does_not_scan_and_an_unclean_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1000);
    let leo = write_log(dir.path(), &cfg);
    let logs = files_with(dir.path(), "log");
    let victim = &logs[2];
    let victim_len = len(victim);
    let victim_base: i64 = victim
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let batch_size = batch(3, 0).len() as u64;
    corrupt(victim, 2 * batch_size);
    // Clean: nothing validated, the flipped byte goes unnoticed (proof that nothing was
    // scanned), every offset is still there.
    let log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(len(victim), victim_len);
    assert_eq!(files_with(dir.path(), "log").len(), logs.len());
    drop(log);
    // Unclean without a recovery point: everything is validated and the log cut there.
    let log = Log::open_with(dir.path(), cfg.clone(), unclean(None)).unwrap();
    assert_eq!(log.log_end_offset(), victim_base + 6);
    assert_eq!(len(victim), 2 * batch_size);
    assert_eq!(files_with(dir.path(), "log").len(), 3);
}

#[test]
fn missing_and_corrupt_indexes_are_rebuilt_after_any_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1000);
    let leo = write_log(dir.path(), &cfg);
    let idx = files_with(dir.path(), "index");
    let tidx = files_with(dir.path(), "timeindex");
    let good: Vec<Vec<u8>> = idx
        .iter()
        .chain(&tidx)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    std::fs::remove_file(&idx[0]).unwrap();
    std::fs::write(&tidx[1], [1u8; 12]).unwrap(); // one entry with an offset past the segment
    std::fs::write(&idx[2], [7u8; 13]).unwrap(); // not whole entries
    std::fs::remove_file(tidx.last().unwrap()).unwrap(); // the active segment's
    let log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(offsets_from(&log, 0), (0..leo).collect::<Vec<_>>());
    log.offset_for_timestamp(0).unwrap();
    drop(log);
    let now: Vec<Vec<u8>> = idx
        .iter()
        .chain(&tidx)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    for (i, (a, b)) in good.iter().zip(&now).enumerate() {
        if i == idx.len() - 1 || i == good.len() - 1 {
            continue; // the active segment's files: preallocated again
        }
        assert_eq!(a, b, "file {i} rebuilt identically");
    }
}

#[test]
fn recovery_point_follows_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1000);
    let mut log = Log::open_with(dir.path(), cfg.clone(), unclean(None)).unwrap();
    assert_eq!(log.recovery_point(), 0);
    for i in 0..20 {
        append(&mut log, &batch(3, i)).unwrap();
    }
    assert_eq!(
        log.recovery_point(),
        0,
        "no flush policy: nothing synced yet"
    );
    log.flush_rolled_segments().unwrap();
    let active_base = *files_with(dir.path(), "log")
        .last()
        .unwrap()
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse::<i64>()
        .as_ref()
        .unwrap();
    assert!(active_base > 0);
    assert_eq!(log.recovery_point(), active_base);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 60);
    // With flush.messages=1 every append moves it.
    log.set_config(LogConfig {
        flush_interval_messages: 1,
        ..cfg
    });
    append(&mut log, &batch(2, 1)).unwrap();
    assert_eq!(log.recovery_point(), 62);
}

#[test]
fn log_start_offset_comes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1000);
    let leo = write_log(dir.path(), &cfg);
    let opts = |start| LogOpenOptions {
        log_start_offset: Some(start),
        ..clean()
    };
    let log = Log::open_with(dir.path(), cfg.clone(), opts(7)).unwrap();
    assert_eq!(log.log_start_offset(), 7);
    assert!(matches!(
        log.read(6, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(offsets_from(&log, 7)[0], 7);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((7, 1021)));
    drop(log);
    let log = Log::open_with(dir.path(), cfg, opts(leo + 100)).unwrap();
    assert_eq!(log.log_start_offset(), leo, "never past the log end");
}

/// Not a benchmark: shows that a clean open reads no segment data while an unclean one from
/// offset 0 validates it all (printed; the assertion only needs the clean one to be faster).
#[test]
fn clean_startup_does_not_scan_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    };
    let mut log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    let b = batch_with(16, 1, None, Compression::None, 1000);
    for _ in 0..1500 {
        append(&mut log, &b).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let segments = files_with(dir.path(), "log").len();
    let t = Instant::now();
    let log = Log::open_with(dir.path(), cfg.clone(), clean()).unwrap();
    let clean_time = t.elapsed();
    let leo = log.log_end_offset();
    drop(log);
    let t = Instant::now();
    let log = Log::open_with(dir.path(), cfg, unclean(Some(0))).unwrap();
    let unclean_time = t.elapsed();
    assert_eq!(log.log_end_offset(), leo);
    println!(
        "{segments} segments, {} MB: clean open {clean_time:?}, unclean open from offset 0 {unclean_time:?}",
        1500 * b.len() / (1 << 20)
    );
    assert!(clean_time < unclean_time);
}

#[test]
fn a_segment_file_beyond_the_end_of_a_clean_shutdown_is_kept_aside_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1000);
    let leo = write_log(dir.path(), &cfg);
    let logs = files_with(dir.path(), "log");
    // A valid segment, far past the end: as if copied in from elsewhere.
    let stray = dir.path().join("00000000000099999990.log");
    std::fs::copy(&logs[0], &stray).unwrap();
    let options = LogOpenOptions {
        recovery_point: Some(leo),
        clean_shutdown: true,
        log_start_offset: None,
    };
    let log = Log::open_with(dir.path(), cfg.clone(), options).unwrap();
    assert_eq!(log.log_end_offset(), leo, "the log end did not jump");
    assert_eq!(offsets_from(&log, 0), (0..leo).collect::<Vec<_>>());
    assert!(!stray.exists());
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a recovery-aside directory");
    assert_eq!(
        std::fs::read(aside.join("00000000000099999990.log")).unwrap(),
        std::fs::read(&logs[0]).unwrap()
    );
}
