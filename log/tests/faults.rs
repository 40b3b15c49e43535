//! Fault injection on real files beyond the torn-tail tests of log.rs: a byte flipped at
//! every position of a batch (the log is cut before the batch wherever the CRC or the
//! framing catches it, and opens whatever the byte), garbage appended after the last batch,
//! a segment whose header says more bytes than the file holds, zero-filled tails left by a
//! crash, and a missing later segment file.

use std::path::Path;

use bytes::Bytes;
use gregor_log::batch::test_batches::{batch, batch_with};
use gregor_log::{parse_record_set, Log, LogConfig, LogOpenOptions};
use kafka_protocol::records::Compression;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

fn append(log: &mut Log, b: &Bytes) -> i64 {
    let headers = parse_record_set(b, 1 << 20).unwrap();
    log.append(b, &headers, 0).unwrap().first_offset
}

fn crash_open(dir: &Path) -> Log {
    Log::open_with(dir, config(), LogOpenOptions::default()).unwrap()
}

#[test]
fn a_flipped_byte_anywhere_in_a_batch_cuts_the_log_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("00000000000000000000.log");
    let mut log = Log::open(dir.path(), config()).unwrap();
    let first = batch(3, 1);
    let second = batch_with(2, 2, Some((5, 0, 0)), Compression::Lz4, 30);
    append(&mut log, &first);
    append(&mut log, &second);
    append(&mut log, &batch(2, 3));
    log.close().unwrap();
    drop(log);
    let good = std::fs::read(&seg).unwrap();
    let mut caught = 0;
    for at in first.len()..first.len() + second.len() {
        let mut bytes = good.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&seg, &bytes).unwrap();
        let _ = std::fs::remove_file(dir.path().join("00000000000000000000.index"));
        let mut log = crash_open(dir.path());
        let rel = at - first.len();
        // baseOffset and partitionLeaderEpoch are outside the CRC (Kafka's layout): a flip
        // there may pass; anything else is caught and the log ends after the first batch.
        if !(0..8).contains(&rel) && !(12..16).contains(&rel) {
            assert_eq!(log.log_end_offset(), 3, "flip at {at}");
            assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, first.len());
            caught += 1;
        }
        // Whatever the byte, the log opens and takes appends.
        let leo = log.log_end_offset();
        assert_eq!(append(&mut log, &batch(1, 9)), leo, "flip at {at}");
        drop(log);
    }
    assert_eq!(caught, second.len() - 12);
}

#[test]
fn trailing_garbage_and_zero_fill_after_the_last_batch_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("00000000000000000000.log");
    let mut log = Log::open(dir.path(), config()).unwrap();
    append(&mut log, &batch(3, 1));
    append(&mut log, &batch(2, 2));
    drop(log);
    let good = std::fs::read(&seg).unwrap();
    for tail in [
        vec![0u8; 4096],
        vec![0xff; 7],
        (0..200u8).collect::<Vec<_>>(),
    ] {
        let mut bytes = good.clone();
        bytes.extend_from_slice(&tail);
        std::fs::write(&seg, &bytes).unwrap();
        let log = crash_open(dir.path());
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, good.len());
    }
    // A header that claims more bytes than the file holds.
    let mut bytes = good.clone();
    let mut big = batch(1, 5).to_vec();
    big[8..12].copy_from_slice(&1_000_000i32.to_be_bytes());
    bytes.extend_from_slice(&big);
    std::fs::write(&seg, &bytes).unwrap();
    let log = crash_open(dir.path());
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn a_corrupt_older_segment_ends_the_log_and_the_segments_after_it_go_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes: 300,
            ..config()
        },
    )
    .unwrap();
    for i in 0..12 {
        append(&mut log, &batch(2, i));
    }
    drop(log);
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".log"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 4);
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    std::fs::write(victim, &bytes).unwrap();
    let base: i64 = victim
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let log = crash_open(dir.path());
    assert!(log.log_end_offset() > base && log.log_end_offset() < 24);
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a recovery-aside directory");
    for later in &segs[2..] {
        assert!(!later.exists(), "{later:?} no longer in the log");
        assert!(
            aside.join(later.file_name().unwrap()).exists(),
            "{later:?} kept aside"
        );
    }
}
