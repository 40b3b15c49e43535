//! Transactions in the log, on real files: transactional batches and markers, the last
//! stable offset, the aborted-transaction index (`.txnindex`, Kafka's layout) and what
//! survives a restart, a crash without snapshot, a truncation and a roll.

use bytes::Bytes;
use gregor_log::batch::test_batches::{batch, batch_with, transactional_batch};
use gregor_log::{
    parse_record_set, AbortedTxn, EndTxnMarker, Log, LogConfig, LogError, ProducerError,
};
use kafka_protocol::records::Compression;

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

fn marker(pid: i64, epoch: i16, commit: bool, coordinator_epoch: i32) -> Bytes {
    EndTxnMarker {
        commit,
        coordinator_epoch,
    }
    .batch(pid, epoch, 1_700_000_000_000)
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

/// Two interleaved transactions and a plain batch: offsets 0-2 producer 1 (aborted at 7),
/// 3-4 producer 2 (committed at 8), 5 non-transactional, 6 producer 1 again.
fn interleaved(log: &mut Log) {
    append(log, &transactional_batch(3, 1, 1, 0, 0)).unwrap();
    append(log, &transactional_batch(2, 1, 2, 0, 0)).unwrap();
    append(log, &batch(1, 1)).unwrap();
    append(log, &transactional_batch(1, 1, 1, 0, 3)).unwrap();
}

#[test]
fn the_last_stable_offset_waits_for_the_oldest_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    interleaved(&mut log);
    assert_eq!(log.log_end_offset(), 7);
    // Below the high watermark, and below producer 1's first offset.
    assert_eq!(log.last_stable_offset(7), 0);
    assert_eq!(log.last_stable_offset(0), 0);
    let info = append(&mut log, &marker(1, 0, false, 5)).unwrap();
    assert_eq!(info.first_offset, 7);
    // Producer 1 ended, but its marker is not below the high watermark yet: Kafka keeps the
    // transaction unstable until it is replicated.
    assert_eq!(log.last_stable_offset(7), 0);
    // Once the high watermark passes the marker, producer 2's transaction (first offset 3) holds it.
    assert_eq!(log.last_stable_offset(8), 3);
    append(&mut log, &marker(2, 0, true, 5)).unwrap();
    assert_eq!(
        log.last_stable_offset(8),
        3,
        "marker 8 not below the high watermark yet"
    );
    assert_eq!(log.last_stable_offset(9), 9);
    // Only the abort is indexed: producer 2 was still open, so its LSO is 3.
    assert_eq!(log.collect_aborted_txns(0, 9), vec![aborted(1, 0, 7, 3)]);
    assert_eq!(
        log.collect_aborted_txns(8, 9),
        vec![],
        "ended before the fetch"
    );
    assert_eq!(log.collect_aborted_txns(6, 9), vec![aborted(1, 0, 7, 3)]);
}

#[test]
fn the_txnindex_file_is_kafkas_and_survives_clean_and_unclean_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    interleaved(&mut log);
    append(&mut log, &marker(1, 0, false, 5)).unwrap();
    // Producer 2 stays open across the restart.
    let path = dir.path().join("00000000000000000000.txnindex");
    let bytes = std::fs::read(&path).unwrap();
    let mut want = Vec::new();
    want.extend_from_slice(&0i16.to_be_bytes());
    for v in [1i64, 0, 7, 3] {
        want.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(
        bytes, want,
        "version, producer id, first, last, last stable offset"
    );
    drop(log);

    // Unclean (no snapshot): the replay finds producer 2 open and rewrites nothing twice.
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(log.last_stable_offset(8), 3);
    assert_eq!(log.collect_aborted_txns(0, 8), vec![aborted(1, 0, 7, 3)]);
    // Without the index file the replay writes it again.
    std::fs::remove_file(&path).unwrap();
    drop(log);
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    append(&mut log, &marker(2, 0, true, 5)).unwrap();
    assert_eq!(log.last_stable_offset(9), 9);

    // Clean close: the producer snapshot (Kafka's format) carries the open transaction.
    append(&mut log, &transactional_batch(2, 1, 3, 4, 0)).unwrap(); // offsets 9-10
    log.close().unwrap();
    drop(log);
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.last_stable_offset(11), 9);
    append(&mut log, &marker(3, 4, false, 6)).unwrap(); // 11
    assert_eq!(
        log.collect_aborted_txns(9, 12),
        vec![aborted(3, 9, 11, 12)],
        "nothing open after it: its lso is the marker + 1"
    );
}

#[test]
fn aborts_are_indexed_in_the_segment_of_their_marker_and_collected_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: every append of ~100 bytes rolls.
    let mut log = Log::open(dir.path(), config(150)).unwrap();
    append(&mut log, &transactional_batch(1, 1, 1, 0, 0)).unwrap(); // 0
    append(&mut log, &batch(1, 1)).unwrap(); // 1
    append(&mut log, &transactional_batch(1, 1, 1, 0, 1)).unwrap(); // 2
    append(&mut log, &marker(1, 0, false, 0)).unwrap(); // 3
    assert!(log.segment_count() >= 3);
    // From offset 1 (a later segment than the transaction's start) the abort is found.
    assert_eq!(log.collect_aborted_txns(1, 4), vec![aborted(1, 0, 3, 4)]);
    let marker_segment = dir.path().join("00000000000000000003.txnindex");
    assert!(marker_segment.exists());
    assert!(!dir.path().join("00000000000000000000.txnindex").exists());
    // A truncation below the marker takes the entry and reopens the transaction.
    assert!(log.truncate_to(3).unwrap());
    assert_eq!(log.collect_aborted_txns(0, 4), vec![]);
    assert_eq!(log.last_stable_offset(3), 0);
}

#[test]
fn transactional_producers_are_checked_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    append(&mut log, &transactional_batch(2, 1, 7, 1, 0)).unwrap();
    // A plain write inside an open transaction.
    assert!(matches!(
        append(
            &mut log,
            &batch_with(1, 1, Some((7, 1, 2)), Compression::None, 5)
        ),
        Err(LogError::Producer(ProducerError::InvalidTxnState {
            producer_id: 7
        }))
    ));
    append(&mut log, &marker(7, 1, true, 3)).unwrap();
    // A marker from an older coordinator is fenced.
    append(&mut log, &transactional_batch(1, 1, 7, 1, 2)).unwrap();
    assert!(matches!(
        append(&mut log, &marker(7, 1, true, 2)),
        Err(LogError::Producer(
            ProducerError::TransactionCoordinatorFenced {
                coordinator_epoch: 2,
                current: 3,
                ..
            }
        ))
    ));
    append(&mut log, &marker(7, 1, false, 3)).unwrap();
    assert_eq!(log.last_stable_offset(log.log_end_offset()), 5);
}

#[test]
fn compaction_empties_an_aborted_batch_it_must_keep_and_an_aborted_record_shadows_nothing() {
    use gregor_log::cleaner::{clean, CleanParams};
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(150)).unwrap();
    append(&mut log, &batch(1, 1)).unwrap(); // 0: key-0, committed (plain)
    append(&mut log, &transactional_batch(1, 1, 9, 0, 0)).unwrap(); // 1: key-0, aborted below
    append(&mut log, &marker(9, 0, false, 0)).unwrap(); // 2
    append(&mut log, &batch(1, 1)).unwrap(); // 3: the active segment, not cleaned
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let params = CleanParams {
        now_ms: 1_700_000_000_000,
        min_compaction_lag_ms: 0,
        delete_retention_ms: 86_400_000,
        dedupe_buffer_size: 1 << 20,
    };
    let result = clean(&view, 0, &params)
        .unwrap()
        .expect("something to clean");
    log.replace_cleaned(&result).unwrap();
    gregor_log::remove_deleted_files(&log.take_deleted_files());
    // Offset 0 (the committed key-0) was not shadowed by the aborted key-0 at 1. The
    // aborted batch lost its record but stays, empty, as producer 9's newest batch (its
    // sequence state); its marker stays with it.
    assert_eq!(
        batches(&log),
        [
            (0, false, false, 1),
            (1, true, false, 0),
            (2, true, true, 1),
            (3, false, false, 1)
        ]
    );
    assert_eq!(log.collect_aborted_txns(0, 4), vec![aborted(9, 1, 2, 3)]);
}

/// (base offset, transactional, control, record count) of every batch in the log.
fn batches(log: &Log) -> Vec<(i64, bool, bool, i32)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while let Some(slice) = log.read(next, 1 << 20, i64::MAX, true).unwrap() {
        let bytes = slice.read().unwrap();
        let headers = parse_record_set(&bytes, 1 << 20).unwrap();
        for h in &headers {
            out.push((
                h.base_offset,
                h.is_transactional(),
                h.is_control(),
                h.record_count,
            ));
        }
        next = headers.last().unwrap().last_offset() + 1;
    }
    out
}

#[test]
fn compaction_drops_aborted_data_then_its_marker_and_compacts_committed_records() {
    use gregor_log::cleaner::{clean, CleanParams};
    const TS: i64 = 1_700_000_000_000;
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    // One batch a segment: everything below the last batch is closed.
    let mut log = Log::open(dir.path(), config(1)).unwrap();
    append(&mut log, &batch(1, TS)).unwrap(); // 0: key-0, plain
    append(&mut log, &transactional_batch(1, TS, 9, 0, 0)).unwrap(); // 1: key-0, aborted
    append(&mut log, &marker(9, 0, false, 0)).unwrap(); // 2
    append(&mut log, &transactional_batch(1, TS, 7, 0, 0)).unwrap(); // 3: key-0, committed
    append(&mut log, &marker(7, 0, true, 0)).unwrap(); // 4
    append(&mut log, &transactional_batch(1, TS, 9, 0, 1)).unwrap(); // 5: key-0, committed
    append(&mut log, &marker(9, 0, true, 0)).unwrap(); // 6
    append(&mut log, &batch(1, TS)).unwrap(); // 7: the active segment
    assert_eq!(log.collect_aborted_txns(0, 8), vec![aborted(9, 1, 2, 3)]);
    let params = |now_ms| CleanParams {
        now_ms,
        min_compaction_lag_ms: 0,
        delete_retention_ms: DAY,
        dedupe_buffer_size: 1 << 20,
    };
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let first = clean(&view, 0, &params(TS + 1000)).unwrap().expect("dirty");
    assert_eq!(first.aborted_batches_removed, 1);
    log.replace_cleaned(&first).unwrap();
    gregor_log::remove_deleted_files(&log.take_deleted_files());
    // The plain key-0 at 0 is shadowed by the committed one at 5 (transactional records are
    // compacted like any others), so is producer 7's at 3 (kept empty: its newest batch);
    // the aborted batch at 1 is gone; its marker stays until the data is known gone.
    assert_eq!(
        batches(&log),
        [
            (2, true, true, 1),
            (3, true, false, 0),
            (4, true, true, 1),
            (5, true, false, 1),
            (6, true, true, 1),
            (7, false, false, 1)
        ]
    );
    assert_eq!(log.collect_aborted_txns(0, 8), vec![aborted(9, 1, 2, 3)]);
    assert!(
        first.tombstone_expiry_ms.is_none(),
        "no marker without data yet"
    );
    // A cleaning within delete.retention.ms keeps the marker that now covers nothing, and
    // says when it may go.
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let early = clean(&view, first.end_offset, &params(TS + 2000))
        .unwrap()
        .expect("a pass");
    assert_eq!(early.tombstone_expiry_ms, Some(TS + DAY + 1));
    assert!(early.removed_aborted_txns.is_empty());
    // After it, the marker goes and its transaction leaves the index.
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    let late = clean(&view, first.end_offset, &params(TS + 3 * DAY))
        .unwrap()
        .expect("a pass");
    assert_eq!(late.removed_aborted_txns, vec![aborted(9, 1, 2, 3)]);
    log.replace_cleaned(&late).unwrap();
    gregor_log::remove_deleted_files(&log.take_deleted_files());
    assert_eq!(
        batches(&log),
        [
            (3, true, false, 0),
            (4, true, true, 1),
            (5, true, false, 1),
            (6, true, true, 1),
            (7, false, false, 1)
        ]
    );
    assert_eq!(log.collect_aborted_txns(0, 8), vec![]);
    // Reopened from the files: the same index.
    drop(log);
    let log = Log::open(dir.path(), config(1)).unwrap();
    assert_eq!(log.collect_aborted_txns(0, 8), vec![]);
    assert_eq!(batches(&log).len(), 5);
}

#[test]
fn compaction_stops_at_an_open_transaction() {
    use gregor_log::cleaner::{clean, CleanParams};
    const TS: i64 = 1_700_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1)).unwrap();
    append(&mut log, &batch(1, TS)).unwrap(); // 0: key-0
    append(&mut log, &transactional_batch(1, TS, 9, 0, 0)).unwrap(); // 1: key-0, open
    append(&mut log, &batch(1, TS)).unwrap(); // 2: key-0
    append(&mut log, &batch(1, TS)).unwrap(); // 3: the active segment
    let view = log.cleanable_view(log.log_end_offset()).unwrap();
    assert_eq!(view.last_stable_offset, 1);
    let params = CleanParams {
        now_ms: TS,
        min_compaction_lag_ms: 0,
        delete_retention_ms: 86_400_000,
        dedupe_buffer_size: 1 << 20,
    };
    // Nothing below offset 1 can be compacted yet: 0 stays, though 2 has the same key.
    assert_eq!(view.dirty_stats(None, TS, 0).first_uncleanable_offset, 1);
    let result = clean(&view, 0, &params).unwrap().expect("a pass");
    assert_eq!(result.end_offset, 1);
    log.replace_cleaned(&result).unwrap();
    assert_eq!(batches(&log).len(), 4);
}

#[test]
fn idle_producers_expire_but_not_one_with_a_transaction_open() {
    const TS: i64 = 1_700_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let idempotent = batch_with(1, TS, Some((5, 0, 0)), Compression::None, 10);
    append(&mut log, &idempotent).unwrap();
    append(&mut log, &transactional_batch(1, TS, 6, 0, 0)).unwrap();
    let ids = |log: &Log| -> Vec<i64> {
        log.active_producers()
            .iter()
            .map(|p| p.producer_id)
            .collect()
    };
    assert_eq!(ids(&log), vec![5, 6]);
    // Not yet idle for the expiration; then past it: only the open transaction's stays.
    assert_eq!(log.remove_expired_producers(TS + 999, 1000), 0);
    assert_eq!(log.remove_expired_producers(TS + 1000, 1000), 1);
    assert_eq!(ids(&log), vec![6]);
    assert_eq!(log.active_producers()[0].current_txn_start_offset, 1);
    // Once the transaction ends, that producer goes too.
    append(&mut log, &marker(6, 0, true, 0)).unwrap();
    assert_eq!(log.remove_expired_producers(TS + 1000, 1000), 1);
    assert!(ids(&log).is_empty());
    // A producer that comes back after expiry starts afresh at any sequence (KIP-360).
    let later = batch_with(1, TS + 5000, Some((5, 0, 7)), Compression::None, 10);
    append(&mut log, &later).unwrap();
    assert_eq!(ids(&log), vec![5]);
}
