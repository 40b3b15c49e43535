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
    log.append(b, &headers, 0)
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
    log.append(&b, &headers, 7).unwrap();
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
    // max_bytes smaller than a batch: one whole batch with min_one_batch, else a fragment
    // of max_bytes (as Kafka; clients drop it), and nothing for 0 bytes.
    let s = log.read(0, 10, i64::MAX, true).unwrap().unwrap();
    assert_eq!(s.len, size);
    let s = log.read(0, 10, i64::MAX, false).unwrap().unwrap();
    assert_eq!((s.position, s.len), (0, 10));
    assert!(log.read(0, 0, i64::MAX, false).unwrap().is_none());
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
    // A producer the log knows nothing of may start at any sequence (Kafka since KIP-360);
    // from then on its sequence is checked.
    let other = batch_with(1, 1, Some((7, 0, 3)), Compression::None, 5);
    assert!(append(&mut log, &other).is_ok());
    let gap = batch_with(1, 1, Some((7, 0, 5)), Compression::None, 5);
    assert!(append(&mut log, &gap).is_err());
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
    log.append(&b, &h, 2).unwrap();
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

/// (first offset, last offset) of every batch in `bytes`, a possibly partial tail dropped.
fn batch_ranges(bytes: &[u8]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 61 <= bytes.len() {
        let h = parse_record_set(&bytes[pos..pos + 61], u32::MAX).err();
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
        if pos + len > bytes.len() {
            break;
        }
        assert!(h.is_some() || len == 61);
        let hs = parse_record_set(&bytes[pos..pos + len], u32::MAX).unwrap();
        out.push((hs[0].base_offset, hs[0].last_offset()));
        pos += len;
    }
    out
}

/// Rewrites a valid idempotent batch into a transaction marker (control + transactional,
/// no sequence), with its CRC recomputed.
fn control_marker(producer_id: i64, epoch: i16) -> Bytes {
    let mut b = batch_with(1, 1, Some((producer_id, epoch, 0)), Compression::None, 5).to_vec();
    b[21..23].copy_from_slice(&0x30i16.to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

#[test]
fn every_offset_reads_its_containing_batch_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1500)).unwrap();
    let mut ranges = Vec::new();
    for i in 0..40 {
        let n = 1 + (i * 7) % 5;
        let info = append(&mut log, &batch(n, i as i64)).unwrap();
        ranges.push((info.first_offset, info.last_offset));
    }
    assert!(segment_files(dir.path()) > 4);
    let leo = log.log_end_offset();
    for offset in 0..leo {
        let slice = log.read(offset, 1, i64::MAX, true).unwrap().unwrap();
        let got = batch_ranges(&slice.read().unwrap());
        assert_eq!(got.len(), 1, "min_one_batch gives exactly the first batch");
        let want = ranges
            .iter()
            .find(|(f, l)| *f <= offset && offset <= *l)
            .unwrap();
        assert_eq!(got[0], *want, "offset {offset}");
        // Without a byte limit: whole batches to the end of that segment, in order.
        let slice = log.read(offset, 1 << 20, i64::MAX, false).unwrap().unwrap();
        let got = batch_ranges(&slice.read().unwrap());
        assert_eq!(got[0], *want);
        assert!(got.windows(2).all(|w| w[1].0 == w[0].1 + 1));
    }
}

#[test]
fn max_offset_inside_a_batch_excludes_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let b = batch(4, 1);
    for _ in 0..3 {
        append(&mut log, &b).unwrap(); // 0..3, 4..7, 8..11
    }
    let s = log.read(0, 1 << 20, 6, false).unwrap().unwrap();
    assert_eq!(batch_ranges(&s.read().unwrap()), vec![(0, 3)]);
    assert_eq!(s.len, b.len());
    let s = log.read(1, 1 << 20, 8, true).unwrap().unwrap();
    assert_eq!(batch_ranges(&s.read().unwrap()), vec![(0, 3), (4, 7)]);
    // The batch holding max_offset is also the first one: nothing.
    assert!(log.read(5, 1 << 20, 6, true).unwrap().is_none());
    assert!(log.read(6, 1 << 20, 6, true).unwrap().is_none());
    assert!(log.read(7, 1 << 20, 3, true).unwrap().is_none());
}

#[test]
fn reopen_serves_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1000)).unwrap();
    for i in 0..30 {
        append(&mut log, &batch(1 + i % 3, i as i64)).unwrap();
    }
    let leo = log.log_end_offset();
    let size = log.size_bytes();
    let before: Vec<Bytes> = (0..leo)
        .map(|o| {
            log.read(o, 4096, i64::MAX, true)
                .unwrap()
                .unwrap()
                .read()
                .unwrap()
        })
        .collect();
    drop(log); // unclean: no close
    let log = Log::open(dir.path(), config(1000)).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.size_bytes(), size);
    let after: Vec<Bytes> = (0..leo)
        .map(|o| {
            log.read(o, 4096, i64::MAX, true)
                .unwrap()
                .unwrap()
                .read()
                .unwrap()
        })
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_torn_active_segment_after_rolls_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(700)).unwrap();
    let mut seq = 0;
    for _ in 0..12 {
        let b = batch_with(2, 1, Some((5, 0, seq)), Compression::None, 60);
        append(&mut log, &b).unwrap();
        seq += 2;
    }
    let leo = log.log_end_offset();
    drop(log);
    let mut logs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() > 2);
    let active = logs.last().unwrap();
    let full = std::fs::read(active).unwrap();
    let last_len = batch_with(2, 1, Some((5, 0, 0)), Compression::None, 60).len();
    assert!(full.len() >= last_len);
    for cut in (full.len() - last_len)..full.len() {
        std::fs::write(active, &full[..cut]).unwrap();
        let mut log = Log::open(dir.path(), config(700)).unwrap();
        assert_eq!(log.log_end_offset(), leo - 2, "cut at {cut}");
        // The cut batch was never stored: its retry is new, not a duplicate, at the same offsets.
        let retry = batch_with(2, 1, Some((5, 0, seq - 2)), Compression::None, 60);
        let info = append(&mut log, &retry).unwrap();
        assert!(!info.duplicate);
        assert_eq!(info.first_offset, leo - 2);
        drop(log);
        std::fs::write(active, &full[..cut]).unwrap();
    }
    std::fs::write(active, &full).unwrap();
    let log = Log::open(dir.path(), config(700)).unwrap();
    assert_eq!(offsets_from(&log, 0), (0..leo).collect::<Vec<_>>());
}

#[test]
fn an_invalid_index_of_a_closed_segment_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(3000)).unwrap();
    for i in 0..40 {
        append(&mut log, &batch(3, i)).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let index = dir.path().join("00000000000000000000.index");
    let good = std::fs::read(&index).unwrap();
    assert!(
        good.len() >= 16 && good.len().is_multiple_of(8),
        "entries were written"
    );
    let mut decreasing = good.clone();
    decreasing[8..12].copy_from_slice(&0u32.to_be_bytes());
    let mut beyond = good.clone();
    beyond[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    for bad in [good[..good.len() - 3].to_vec(), decreasing, beyond] {
        std::fs::write(&index, &bad).unwrap();
        let log = Log::open(dir.path(), config(3000)).unwrap();
        assert_eq!(offsets_from(&log, 0), (0..120).collect::<Vec<_>>());
        for o in [1, 40, 77, 119] {
            let s = log.read(o, 1, i64::MAX, true).unwrap().unwrap();
            let r = batch_ranges(&s.read().unwrap())[0];
            assert!(r.0 <= o && o <= r.1);
        }
        drop(log);
        assert_eq!(std::fs::read(&index).unwrap(), good, "rebuilt identically");
    }
}

#[test]
fn a_log_starting_above_zero_refuses_older_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = batch(3, 1).to_vec();
    bytes[0..8].copy_from_slice(&100i64.to_be_bytes());
    std::fs::write(dir.path().join("00000000000000000100.log"), &bytes).unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(log.log_end_offset(), 103);
    assert!(matches!(
        log.read(99, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange {
            offset: 99,
            log_start: 100,
            log_end: 103
        })
    ));
    assert_eq!(append(&mut log, &batch(1, 2)).unwrap().first_offset, 103);
    assert_eq!(offsets_from(&log, 101), vec![101, 102, 103]);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((100, 1)));
}

#[test]
fn one_append_of_several_batches_from_one_producer() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let parts = [
        batch_with(2, 1, Some((3, 0, 0)), Compression::None, 5),
        batch_with(3, 1, Some((3, 0, 2)), Compression::None, 5),
        batch_with(1, 1, Some((3, 0, 5)), Compression::None, 5),
    ];
    let set: Vec<u8> = parts.iter().flat_map(|b| b.to_vec()).collect();
    let info = append(&mut log, &Bytes::from(set)).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 5, 6)
    );
    let dup = append(&mut log, &parts[1]).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (2, 4));
    let next = batch_with(1, 1, Some((3, 0, 6)), Compression::None, 5);
    assert_eq!(append(&mut log, &next).unwrap().first_offset, 6);
    // A set whose second batch is out of sequence writes nothing at all.
    let bad: Vec<u8> = [
        batch_with(1, 1, Some((3, 0, 7)), Compression::None, 5),
        batch_with(1, 1, Some((3, 0, 9)), Compression::None, 5),
    ]
    .iter()
    .flat_map(|b| b.to_vec())
    .collect();
    assert!(matches!(
        append(&mut log, &Bytes::from(bad)),
        Err(LogError::Producer(ProducerError::OutOfOrderSequence {
            expected: 8,
            ..
        }))
    ));
    assert_eq!(log.log_end_offset(), 7);
    // Headers that do not describe the bytes are refused, not trusted.
    let b = batch(2, 1);
    let h = parse_record_set(&b, 1 << 20).unwrap();
    assert!(log.append(&b[..b.len() - 1], &h, 0).is_err());
    assert!(log.append(&b, &[], 0).is_err());
    assert_eq!(log.log_end_offset(), 7);
}

#[test]
fn transaction_markers_are_fenced_by_epoch_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    append(
        &mut log,
        &batch_with(2, 1, Some((8, 2, 0)), Compression::None, 5),
    )
    .unwrap();
    // A marker carries no sequence and does not disturb the producer's sequence.
    let info = append(&mut log, &control_marker(8, 2)).unwrap();
    assert_eq!(info.first_offset, 2);
    let next = batch_with(1, 1, Some((8, 2, 2)), Compression::None, 5);
    assert_eq!(append(&mut log, &next).unwrap().first_offset, 3);
    assert!(matches!(
        append(&mut log, &control_marker(8, 1)),
        Err(LogError::Producer(
            ProducerError::InvalidProducerEpoch { .. }
        ))
    ));
    // A marker of a newer epoch (coordinator bump) fences the old epoch.
    append(&mut log, &control_marker(8, 3)).unwrap();
    let old = batch_with(1, 1, Some((8, 2, 3)), Compression::None, 5);
    assert!(matches!(
        append(&mut log, &old),
        Err(LogError::Producer(
            ProducerError::InvalidProducerEpoch { .. }
        ))
    ));
    // Replayed the same way after an unclean restart.
    drop(log);
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert!(append(&mut log, &old).is_err());
    let fresh = batch_with(1, 1, Some((8, 3, 0)), Compression::None, 5);
    assert_eq!(append(&mut log, &fresh).unwrap().first_offset, 5);
}

#[test]
fn config_changes_apply_from_the_next_append_and_fsync_policy_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    for _ in 0..5 {
        append(&mut log, &batch(2, 1)).unwrap();
    }
    assert_eq!(segment_files(dir.path()), 1);
    log.set_config(LogConfig {
        segment_bytes: 1,
        flush_interval_messages: 1,
        ..config(1)
    });
    append(&mut log, &batch(2, 1)).unwrap();
    append(&mut log, &batch(2, 1)).unwrap();
    assert_eq!(segment_files(dir.path()), 3, "one batch per segment now");
    assert!(dir.path().join("00000000000000000012.log").exists());
    assert_eq!(offsets_from(&log, 0), (0..14).collect::<Vec<_>>());
    let size = log.size_bytes();
    assert_eq!(size, 7 * batch(2, 1).len() as u64);
    // Only the two newest producer-state snapshots are kept.
    let snapshots = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "snapshot")
        })
        .count();
    assert_eq!(snapshots, 2);
    let path = log.dir().to_path_buf();
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn max_timestamp_prefers_the_earliest_record_and_log_append_time_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    append(&mut log, &batch_with(3, 10, None, Compression::Snappy, 3)).unwrap(); // 0..2: 10..12
    append(&mut log, &batch_with(3, 12, None, Compression::Lz4, 3)).unwrap(); // 3..5: 12..14
    append(&mut log, &batch_with(2, 14, None, Compression::Zstd, 3)).unwrap(); // 6..7: 14..15
    append(&mut log, &batch_with(2, 15, None, Compression::None, 3)).unwrap(); // 8..9: 15..16
    append(&mut log, &batch_with(1, 16, None, Compression::None, 3)).unwrap(); // 10: 16
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((9, 16)));
    assert_eq!(log.offset_for_timestamp(13).unwrap(), Some((4, 13)));
    assert_eq!(log.offset_for_timestamp(15).unwrap(), Some((7, 15)));
    // LogAppendTime: every record of the batch has the batch's timestamp.
    let b = batch(3, 20);
    let mut bytes = b.to_vec();
    let mut h = parse_record_set(&bytes, 1 << 20).unwrap();
    gregor_log::set_log_append_time(&mut bytes, &mut h, 500);
    log.append(&bytes, &h, 0).unwrap(); // 11..13 at 500
    assert_eq!(log.offset_for_timestamp(100).unwrap(), Some((11, 500)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((11, 500)));
    assert_eq!(log.offset_for_timestamp(501).unwrap(), None);
}
