//! What a follower does to its log, on real files: appending a leader's batches with the
//! leader's offsets and epochs, and truncating a history that diverged.

use std::path::Path;

use bytes::Bytes;
use gregor_log::batch::test_batches::{batch, batch_with};
use gregor_log::{parse_record_set, BatchHeader, Log, LogConfig, LogError, ProducerError};
use kafka_protocol::records::Compression;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn append(log: &mut Log, b: &Bytes, epoch: i32) -> gregor_log::AppendInfo {
    let headers = parse_record_set(b, 1 << 20).unwrap();
    log.append(b, &headers, epoch).unwrap()
}

/// The whole batches at the front of `bytes` (a read may end inside a batch).
fn whole_batches(bytes: &[u8]) -> (Vec<BatchHeader>, usize) {
    let mut headers = Vec::new();
    let mut pos = 0;
    while let Some(h) = BatchHeader::parse(&bytes[pos..]) {
        if pos + h.total_size() > bytes.len() {
            break;
        }
        pos += h.total_size();
        headers.push(h);
    }
    (headers, pos)
}

/// Copies `leader` into `follower` as a replica fetcher does, `max_bytes` per read.
fn replicate(leader: &Log, follower: &mut Log, max_bytes: usize) {
    loop {
        let from = follower.log_end_offset();
        let Some(slice) = leader.read(from, max_bytes, i64::MAX, true).unwrap() else {
            return;
        };
        let bytes = slice.read().unwrap();
        let (headers, len) = whole_batches(&bytes);
        follower
            .append_as_follower(&bytes[..len], &headers)
            .unwrap();
    }
}

/// Every byte of every segment, in offset order.
fn log_bytes(dir: &Path) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect()
}

#[test]
fn a_follower_holds_the_leaders_batches_byte_for_byte_with_its_epochs_and_producers() {
    let root = tempfile::tempdir().unwrap();
    let mut leader = Log::open(&root.path().join("leader"), config()).unwrap();
    let mut follower = Log::open(&root.path().join("follower"), config()).unwrap();
    let mut seq = 0;
    for epoch in [0, 3] {
        for i in 0..20 {
            let b = if i % 2 == 0 {
                let b = batch_with(3, 1000 + i, Some((7, 0, seq)), Compression::Lz4, 40);
                seq += 3;
                b
            } else {
                batch(2, 1000 + i)
            };
            append(&mut leader, &b, epoch);
        }
    }
    // Small reads: batches arrive one or two at a time, and some reads end mid-batch.
    replicate(&leader, &mut follower, 700);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.log_end_offset(), 100);
    assert_eq!(
        log_bytes(&root.path().join("follower")),
        log_bytes(&root.path().join("leader"))
    );
    for epoch in [0, 1, 3, 4] {
        assert_eq!(
            follower.end_offset_for_epoch(epoch),
            leader.end_offset_for_epoch(epoch),
            "epoch {epoch}"
        );
    }
    assert_eq!(follower.end_offset_for_epoch(0).end_offset, 50);
    assert_eq!(follower.latest_epoch(), Some(3));
    // The follower becomes leader: the producer's next batch is accepted where it follows
    // on, and a retry of its last batch is answered with the original offsets.
    let last = batch_with(3, 2000, Some((7, 0, seq - 3)), Compression::Lz4, 40);
    let retry = follower
        .append(&last, &parse_record_set(&last, 1 << 20).unwrap(), 4)
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, 95);
    let gap = batch_with(1, 2000, Some((7, 0, seq + 1)), Compression::None, 5);
    let err = follower
        .append(&gap, &parse_record_set(&gap, 1 << 20).unwrap(), 4)
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::Producer(ProducerError::OutOfOrderSequence { .. })
    ));
    let next = batch_with(1, 2000, Some((7, 0, seq)), Compression::None, 5);
    let info = append(&mut follower, &next, 4);
    assert_eq!(info.first_offset, 100);
}

#[test]
fn batches_that_do_not_continue_the_log_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut leader = Log::open(&root.path().join("leader"), config()).unwrap();
    let mut follower = Log::open(&root.path().join("follower"), config()).unwrap();
    for _ in 0..3 {
        append(&mut leader, &batch(2, 1), 0);
    }
    replicate(&leader, &mut follower, 1 << 20);
    let slice = leader.read(2, 1 << 20, i64::MAX, true).unwrap().unwrap();
    let bytes = slice.read().unwrap();
    let (headers, len) = whole_batches(&bytes);
    let err = follower
        .append_as_follower(&bytes[..len], &headers)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LogError::UnexpectedAppendOffset {
                first_offset: 2,
                log_end: 6
            }
        ),
        "{err}"
    );
    assert_eq!(follower.log_end_offset(), 6);
}

#[test]
fn truncation_cuts_at_a_batch_boundary_and_survives_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("p");
    let mut log = Log::open(&dir, config()).unwrap();
    let mut seq = 0;
    for epoch in [0, 2, 5] {
        for i in 0..10 {
            let b = batch_with(4, i, Some((9, 0, seq)), Compression::None, 60);
            append(&mut log, &b, epoch);
            seq += 4;
        }
    }
    let segments_before = log_bytes(&dir).len();
    assert!(
        std::fs::read_dir(&dir).unwrap().count() > 8,
        "several segments"
    );
    // 70 is inside the batch [68, 71]: the batch goes whole, the log ends at 68.
    assert!(log.truncate_to(70).unwrap());
    assert_eq!(log.log_end_offset(), 68);
    assert!(log_bytes(&dir).len() < segments_before);
    // Epochs 0, 2 and 5 started at 0, 40 and 80: epoch 5 is gone with its records.
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(0).end_offset, 40);
    assert_eq!(log.end_offset_for_epoch(2).end_offset, 68);
    assert!(!log.truncate_to(68).unwrap(), "nothing at or above the end");
    // The producer state follows the log: the batch at 64 (sequences 64-67) is the last.
    let next = batch_with(1, 0, Some((9, 0, 68)), Compression::None, 1);
    assert_eq!(append(&mut log, &next, 6).first_offset, 68);
    // A crash (no clean shutdown) after truncation: recovery finds the same log.
    drop(log);
    let log = Log::open_with(
        &dir,
        config(),
        gregor_log::LogOpenOptions {
            recovery_point: Some(0),
            clean_shutdown: false,
            log_start_offset: None,
        },
    )
    .unwrap();
    assert_eq!(log.log_end_offset(), 69);
    assert_eq!(log.end_offset_for_epoch(2).end_offset, 68);
    assert_eq!(log.latest_epoch(), Some(6));
}

#[test]
fn truncating_to_the_start_of_a_segment_or_below_the_log_leaves_a_usable_log() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("p");
    let mut log = Log::open(&dir, config()).unwrap();
    for i in 0..40 {
        append(&mut log, &batch_with(2, i, None, Compression::None, 80), 1);
    }
    assert!(log.truncate_to(0).unwrap());
    assert_eq!(log.log_end_offset(), 0);
    // The epoch that started at 0 may stay (it starts at the end: no record claims it).
    assert_eq!(log.end_offset_for_epoch(1).end_offset, 0);
    assert_eq!(append(&mut log, &batch(1, 5), 2).first_offset, 0);
    let slice = log.read(0, 1 << 20, i64::MAX, true).unwrap().unwrap();
    assert_eq!(slice.read().unwrap().len(), batch(1, 5).len());
}

#[test]
fn a_follower_behind_the_leaders_log_start_starts_over_there() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("p");
    let mut log = Log::open(&dir, config()).unwrap();
    for i in 0..10 {
        append(
            &mut log,
            &batch_with(2, i, Some((4, 0, i as i32 * 2)), Compression::None, 80),
            1,
        );
    }
    log.truncate_fully_and_start_at(500).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
    assert!(
        log.read(0, 100, i64::MAX, true).is_err(),
        "nothing below 500"
    );
    let b = batch(3, 7);
    let mut headers = parse_record_set(&b, 1 << 20).unwrap();
    headers[0].base_offset = 500;
    let mut bytes = b.to_vec();
    bytes[..8].copy_from_slice(&500i64.to_be_bytes());
    log.append_as_follower(&bytes, &headers).unwrap();
    assert_eq!(log.log_end_offset(), 503);
    drop(log);
    let log = Log::open(&dir, config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 503));
}

#[test]
fn epochs_begun_without_a_record_can_be_forgotten() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("p");
    let mut log = Log::open(&dir, config()).unwrap();
    for _ in 0..3 {
        append(&mut log, &batch(2, 1), 1);
    }
    // Leader at epoch 4 and 6 without writing anything (the epochs start at the log end).
    log.assign_epoch_start_offset(4, 6).unwrap();
    log.assign_epoch_start_offset(6, 6).unwrap();
    assert_eq!(log.latest_epoch(), Some(6));
    log.forget_empty_epochs().unwrap();
    assert_eq!(log.latest_epoch(), Some(1), "the epoch its records are in");
    assert_eq!(log.end_offset_for_epoch(1).end_offset, 6);
    assert_eq!(log.log_end_offset(), 6, "no record removed");
    drop(log);
    let log = Log::open(&dir, config()).unwrap();
    assert_eq!(log.latest_epoch(), Some(1), "forgotten on disk too");
}
