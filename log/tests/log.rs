//! The log against its contract, on real files: offsets, bytes, rolls, reads, crash
//! recovery at every byte of a torn batch, idempotent producer state and leader epochs.

use std::path::Path;

use bytes::Bytes;
use gregor_log::batch::test_batches::{batch, batch_with};
use gregor_log::{parse_record_set, Log, LogConfig, LogError, ProducerError};
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
    let mut bytes = b.to_vec();
    log.append(&mut bytes, &headers, 0)
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
        out.extend(recs.into_iter().filter(|o| *o >= from));
    }
    out
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count()
}

#[test]
fn offsets_are_dense_across_rolls_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2000)).unwrap();
    let mut expected = 0;
    for i in 0..60 {
        let n = 1 + i % 4;
        let info = append(&mut log, &batch(n, 1000 + i as i64)).unwrap();
        assert_eq!(info.first_offset, expected);
        assert_eq!(info.last_offset, expected + n as i64 - 1);
        expected += n as i64;
    }
    assert_eq!(log.log_end_offset(), expected);
    assert!(segment_files(dir.path()) > 3, "rolled");
    assert_eq!(offsets_from(&log, 0), (0..expected).collect::<Vec<_>>());
    for from in [1, 17, 33, expected - 1] {
        assert_eq!(
            offsets_from(&log, from),
            (from..expected).collect::<Vec<_>>()
        );
    }
    log.close().unwrap();
    drop(log);
    let mut log = Log::open(dir.path(), config(2000)).unwrap();
    assert_eq!(log.log_end_offset(), expected);
    assert_eq!(offsets_from(&log, 0), (0..expected).collect::<Vec<_>>());
    assert_eq!(
        append(&mut log, &batch(2, 1)).unwrap().first_offset,
        expected
    );
}

#[test]
fn stored_bytes_are_the_client_bytes_except_offset_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    append(&mut log, &batch(3, 5)).unwrap();
    let b = batch(2, 9);
    let headers = parse_record_set(&b, 1 << 20).unwrap();
    let mut bytes = b.to_vec();
    log.append(&mut bytes, &headers, 7).unwrap();
    let slice = log.read(3, 1 << 20, i64::MAX, false).unwrap().unwrap();
    let stored = slice.read().unwrap();
    assert_eq!(stored.len(), b.len());
    assert_eq!(&stored[0..8], &3i64.to_be_bytes());
    assert_eq!(&stored[12..16], &7i32.to_be_bytes());
    assert_eq!(&stored[8..12], &b[8..12]);
    assert_eq!(&stored[16..], &b[16..]);
    // Still a valid batch (the CRC does not cover what was rewritten).
    assert_eq!(
        parse_record_set(&stored, 1 << 20).unwrap()[0].base_offset,
        3
    );
}

#[test]
fn read_limits_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let b = batch_with(5, 1, None, Compression::None, 100);
    for _ in 0..4 {
        append(&mut log, &b).unwrap();
    }
    let size = b.len();
    // max_bytes smaller than a batch: one whole batch with min_one_batch, else nothing.
    let s = log.read(0, 10, i64::MAX, true).unwrap().unwrap();
    assert_eq!(s.len, size);
    assert!(log.read(0, 10, i64::MAX, false).unwrap().is_none());
    // max_bytes cutting inside the third batch: a partial tail, as Kafka does.
    let s = log.read(0, size * 2 + 10, i64::MAX, true).unwrap().unwrap();
    assert_eq!(s.len, size * 2 + 10);
    // Bounded by max_offset (e.g. the high watermark) at a batch boundary.
    let s = log.read(0, 1 << 20, 10, true).unwrap().unwrap();
    assert_eq!(s.len, size * 2);
    assert!(log.read(10, 1 << 20, 10, true).unwrap().is_none());
    // From the middle of a batch: that batch first.
    let s = log.read(7, 1 << 20, i64::MAX, true).unwrap().unwrap();
    assert_eq!(s.position as usize, size);
    // Ends and errors.
    assert!(log.read(20, 1 << 20, i64::MAX, true).unwrap().is_none());
    assert!(matches!(
        log.read(21, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { offset: 21, .. })
    ));
    assert!(matches!(
        log.read(-1, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_of_the_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("00000000000000000000.log");
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    append(&mut log, &batch(3, 1)).unwrap();
    append(&mut log, &batch(2, 2)).unwrap();
    let whole = std::fs::metadata(&seg).unwrap().len();
    let last = batch(4, 3);
    append(&mut log, &last).unwrap();
    log.flush().unwrap();
    drop(log);
    let full = std::fs::read(&seg).unwrap();
    for cut in whole..full.len() as u64 {
        std::fs::write(&seg, &full[..cut as usize]).unwrap();
        let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
        assert_eq!(log.log_end_offset(), 5, "cut at {cut}");
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            whole,
            "cut at {cut}"
        );
        assert_eq!(offsets_from(&log, 0), (0..5).collect::<Vec<_>>());
        assert_eq!(append(&mut log, &batch(1, 9)).unwrap().first_offset, 5);
    }
}

#[test]
fn a_corrupt_batch_and_everything_after_it_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("00000000000000000000.log");
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let first = batch(3, 1);
    append(&mut log, &first).unwrap();
    append(&mut log, &batch(2, 2)).unwrap();
    append(&mut log, &batch(2, 3)).unwrap();
    drop(log);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[first.len() + 70] ^= 0x55; // inside the second batch's records
    std::fs::write(&seg, &bytes).unwrap();
    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, first.len());
}

#[test]
fn a_missing_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(3000)).unwrap();
    for i in 0..40 {
        append(&mut log, &batch(3, i)).unwrap();
    }
    log.close().unwrap();
    drop(log);
    std::fs::remove_file(dir.path().join("00000000000000000000.index")).unwrap();
    std::fs::write(dir.path().join("00000000000000000000.log.junk"), b"x").unwrap();
    let log = Log::open(dir.path(), config(3000)).unwrap();
    assert_eq!(offsets_from(&log, 50), (50..120).collect::<Vec<_>>());
    assert!(dir.path().join("00000000000000000000.index").exists());
}

#[test]
fn idempotent_producer_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let b = |n, seq, epoch| batch_with(n, 1, Some((42, epoch, seq)), Compression::None, 5);
    let mut firsts = vec![];
    for i in 0..6 {
        let info = append(&mut log, &b(2, i * 2, 0)).unwrap();
        assert!(!info.duplicate);
        firsts.push(info.first_offset);
    }
    // The last 5 batches are recognised as duplicates with their original offsets.
    for i in 1..6 {
        let info = append(&mut log, &b(2, i * 2, 0)).unwrap();
        assert!(info.duplicate);
        assert_eq!(info.first_offset, firsts[i as usize]);
    }
    assert_eq!(log.log_end_offset(), 12, "duplicates wrote nothing");
    // The 6th-oldest is gone: out of order.
    assert!(matches!(
        append(&mut log, &b(2, 0, 0)),
        Err(LogError::Producer(ProducerError::OutOfOrderSequence { .. }))
    ));
    // A gap.
    assert!(matches!(
        append(&mut log, &b(1, 13, 0)),
        Err(LogError::Producer(ProducerError::OutOfOrderSequence {
            expected: 12,
            ..
        }))
    ));
    // A new producer must start at 0.
    let other = batch_with(1, 1, Some((7, 0, 3)), Compression::None, 5);
    assert!(append(&mut log, &other).is_err());
    // Epoch bump restarts at 0; the old epoch is fenced.
    assert_eq!(append(&mut log, &b(1, 0, 1)).unwrap().first_offset, 12);
    assert!(matches!(
        append(&mut log, &b(1, 12, 0)),
        Err(LogError::Producer(
            ProducerError::InvalidProducerEpoch { .. }
        ))
    ));
    assert!(matches!(
        append(&mut log, &b(1, 5, 1)),
        Err(LogError::Producer(_))
    ));
    // Survives a clean close, and an unclean one (rebuilt from the log).
    log.close().unwrap();
    drop(log);
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert!(append(&mut log, &b(1, 0, 1)).unwrap().duplicate);
    assert_eq!(append(&mut log, &b(1, 1, 1)).unwrap().first_offset, 13);
    drop(log); // no close: no snapshot at 14
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let dup = append(&mut log, &b(1, 1, 1)).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.first_offset, 13);
    assert_eq!(append(&mut log, &b(1, 2, 1)).unwrap().first_offset, 14);
}

#[test]
fn producer_state_is_rebuilt_without_any_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(600)).unwrap();
    for i in 0..20 {
        append(
            &mut log,
            &batch_with(1, 1, Some((9, 0, i)), Compression::None, 50),
        )
        .unwrap();
    }
    drop(log);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let mut log = Log::open(dir.path(), config(600)).unwrap();
    let info = append(
        &mut log,
        &batch_with(1, 1, Some((9, 0, 19)), Compression::None, 50),
    )
    .unwrap();
    assert!(info.duplicate);
    assert_eq!(info.first_offset, 19);
    assert_eq!(
        append(
            &mut log,
            &batch_with(1, 1, Some((9, 0, 20)), Compression::None, 50)
        )
        .unwrap()
        .first_offset,
        20
    );
}

#[test]
fn leader_epochs_are_recorded_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    log.assign_epoch_start_offset(0, 0).unwrap();
    append(&mut log, &batch(3, 1)).unwrap();
    let b = batch(2, 1);
    let h = parse_record_set(&b, 1 << 20).unwrap();
    log.append(&mut b.to_vec(), &h, 2).unwrap();
    drop(log);
    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.latest_epoch(), Some(2));
    let e0 = log.end_offset_for_epoch(0);
    assert_eq!((e0.leader_epoch, e0.end_offset), (0, 3));
    let e2 = log.end_offset_for_epoch(2);
    assert_eq!((e2.leader_epoch, e2.end_offset), (2, 5));
}

#[test]
fn timestamps_are_found_record_by_record_even_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.max_timestamp_offset().unwrap(), None);
    append(&mut log, &batch_with(5, 1000, None, Compression::None, 3)).unwrap(); // 0..4: 1000..1004
    append(&mut log, &batch_with(5, 2000, None, Compression::Gzip, 3)).unwrap(); // 5..9: 2000..2004
    append(&mut log, &batch_with(2, 1500, None, Compression::None, 3)).unwrap(); // 10..11
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
    assert_eq!(log.offset_for_timestamp(1003).unwrap(), Some((3, 1003)));
    assert_eq!(log.offset_for_timestamp(1005).unwrap(), Some((5, 2000)));
    assert_eq!(log.offset_for_timestamp(2003).unwrap(), Some((8, 2003)));
    assert_eq!(log.offset_for_timestamp(2005).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((9, 2004)));
}
