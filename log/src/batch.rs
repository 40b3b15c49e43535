//! RecordBatch v2 headers: the fixed 61 bytes in front of every batch, parsed without
//! touching the records, and the validation a produce request gets before it is appended.
//!
//! Layout (big-endian): baseOffset 0, batchLength 8, partitionLeaderEpoch 12, magic 16,
//! crc 17, attributes 21, lastOffsetDelta 23, baseTimestamp 27, maxTimestamp 35,
//! producerId 43, producerEpoch 51, baseSequence 53, recordCount 57, records 61. The CRC32C
//! covers attributes to the end, so the broker may rewrite baseOffset and the leader epoch.

use crate::LogError;

/// Size of the fixed part of a RecordBatch v2.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// baseOffset + batchLength: the part of a batch outside `batch_length`.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal batch_length: the header after batchLength, without records.
const MIN_BATCH_LENGTH: i32 = (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32;
const CRC_START: usize = 21;

const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const LOG_APPEND_TIME_FLAG: i16 = 0x08;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

impl BatchHeader {
    /// Parses the fixed header; `bytes` must hold at least RECORD_BATCH_OVERHEAD bytes.
    pub fn parse(bytes: &[u8]) -> Option<BatchHeader> {
        if bytes.len() < RECORD_BATCH_OVERHEAD {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(bytes, 0),
            batch_length: be_i32(bytes, 8),
            partition_leader_epoch: be_i32(bytes, 12),
            magic: bytes[16] as i8,
            crc: be_i32(bytes, 17) as u32,
            attributes: be_i16(bytes, 21),
            last_offset_delta: be_i32(bytes, 23),
            base_timestamp: be_i64(bytes, 27),
            max_timestamp: be_i64(bytes, 35),
            producer_id: be_i64(bytes, 43),
            producer_epoch: be_i16(bytes, 51),
            base_sequence: be_i32(bytes, 53),
            record_count: be_i32(bytes, 57),
        })
    }

    /// The whole batch on disk: batch_length plus baseOffset and batchLength.
    pub fn total_size(&self) -> usize {
        self.batch_length.max(0) as usize + LOG_OVERHEAD
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x07) as u8
    }
    pub fn timestamp_type_log_append(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_FLAG != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Sequence of the last record; sequences wrap from i32::MAX to 0 as in Kafka.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

pub(crate) fn increment_sequence(seq: i32, by: i32) -> i32 {
    if seq > i32::MAX - by {
        by - (i32::MAX - seq) - 1
    } else {
        seq + by
    }
}

/// Checks one batch that starts at `bytes[0]` and is complete: magic, length, CRC.
fn check_batch(bytes: &[u8], position: usize) -> Result<BatchHeader, LogError> {
    let corrupt = |reason: String| LogError::CorruptBatch { position, reason };
    let header = BatchHeader::parse(bytes).ok_or_else(|| corrupt("truncated header".into()))?;
    if header.magic != 2 {
        return Err(LogError::UnsupportedMagic(header.magic));
    }
    if header.batch_length < MIN_BATCH_LENGTH {
        return Err(corrupt(format!(
            "batch length {} too small",
            header.batch_length
        )));
    }
    let size = header.total_size();
    if bytes.len() < size {
        return Err(corrupt(format!(
            "batch of {size} bytes but only {} present",
            bytes.len()
        )));
    }
    let crc = crc32c::crc32c(&bytes[CRC_START..size]);
    if crc != header.crc {
        return Err(corrupt(format!(
            "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
            header.crc
        )));
    }
    if header.last_offset_delta < 0 || header.record_count < 0 {
        return Err(corrupt(format!(
            "negative last offset delta {} or record count {}",
            header.last_offset_delta, header.record_count
        )));
    }
    Ok(header)
}

/// Validates a produce record set (one or more batches, nothing trailing) and returns
/// their headers. Never panics, whatever the bytes.
pub fn parse_record_set(
    bytes: &[u8],
    max_message_bytes: u32,
) -> Result<Vec<BatchHeader>, LogError> {
    let mut headers = Vec::new();
    let mut pos = 0;
    if bytes.is_empty() {
        return Err(LogError::CorruptBatch {
            position: 0,
            reason: "empty record set".into(),
        });
    }
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < RECORD_BATCH_OVERHEAD {
            // Too short to tell the magic apart from garbage: a magic byte 0/1 in old
            // message sets sits at the same position, so check it when present.
            if rest.len() > 16 && rest[16] != 2 {
                return Err(LogError::UnsupportedMagic(rest[16] as i8));
            }
            return Err(LogError::CorruptBatch {
                position: pos,
                reason: format!("{} trailing bytes are not a whole batch", rest.len()),
            });
        }
        if rest[16] != 2 {
            return Err(LogError::UnsupportedMagic(rest[16] as i8));
        }
        let declared = be_i32(rest, 8);
        if declared >= MIN_BATCH_LENGTH {
            let size = declared as usize + LOG_OVERHEAD;
            if size > max_message_bytes as usize {
                return Err(LogError::BatchTooLarge {
                    size,
                    max: max_message_bytes as usize,
                });
            }
        }
        let header = check_batch(rest, pos)?;
        pos += header.total_size();
        headers.push(header);
    }
    Ok(headers)
}

/// Stamps every batch of a validated record set with LogAppendTime (topic config
/// `message.timestamp.type=LogAppendTime`): the timestamp-type bit and the max timestamp
/// are set in each header and the CRC is recomputed, since it covers both. Consumers then
/// read `now` as every record's timestamp, as with Kafka.
pub fn set_log_append_time(records: &mut [u8], headers: &mut [BatchHeader], now_ms: i64) {
    let mut pos = 0;
    for h in headers.iter_mut() {
        let size = h.total_size();
        // Headers that do not describe these bytes: leave the rest alone (append refuses them).
        let Some(batch) = records.get_mut(pos..pos + size) else {
            return;
        };
        if size < RECORD_BATCH_OVERHEAD {
            return;
        }
        h.attributes |= LOG_APPEND_TIME_FLAG;
        h.max_timestamp = now_ms;
        batch[21..23].copy_from_slice(&h.attributes.to_be_bytes());
        batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
        h.crc = crc32c::crc32c(&batch[CRC_START..]);
        batch[17..21].copy_from_slice(&h.crc.to_be_bytes());
        pos += size;
    }
}

/// Reads the batch header at the start of `bytes` during recovery: the whole batch must be
/// present and valid. Returns None at a torn or corrupt batch.
pub(crate) fn valid_batch_at(bytes: &[u8]) -> Option<BatchHeader> {
    check_batch(bytes, 0).ok()
}

/// Builds valid RecordBatch v2 bytes for tests and benchmarks (not used by the broker).
#[doc(hidden)]
pub mod test_batches {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    pub fn batch_with(
        n: usize,
        base_ts: i64,
        producer: Option<(i64, i16, i32)>,
        compression: Compression,
        value_size: usize,
    ) -> Bytes {
        encode(n, base_ts, producer, compression, value_size, false)
    }

    /// `n` records of a transaction of producer `pid` at `epoch`, from sequence `seq`.
    pub fn transactional_batch(n: usize, base_ts: i64, pid: i64, epoch: i16, seq: i32) -> Bytes {
        encode(
            n,
            base_ts,
            Some((pid, epoch, seq)),
            Compression::None,
            10,
            true,
        )
    }

    fn encode(
        n: usize,
        base_ts: i64,
        producer: Option<(i64, i16, i32)>,
        compression: Compression,
        value_size: usize,
        transactional: bool,
    ) -> Bytes {
        let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
        let recs: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder keeps records in one batch while offset - sequence is constant;
                // base sequence -1 (no producer) then means sequence = offset - 1.
                sequence: if seq >= 0 {
                    seq + i as i32
                } else {
                    i as i32 - 1
                },
                timestamp: base_ts + i as i64,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'v'; value_size])),
                headers: [(
                    StrBytes::from_static_str("trace"),
                    Some(Bytes::from(format!("t{i}"))),
                )]
                .into_iter()
                .collect(),
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
        .expect("encode");
        buf.freeze()
    }

    pub fn batch(n: usize, base_ts: i64) -> Bytes {
        batch_with(n, base_ts, None, Compression::None, 10)
    }
}

#[cfg(test)]
mod tests {
    use super::test_batches::batch;
    use super::*;

    #[test]
    fn parses_a_valid_set_of_batches() {
        let mut set = batch(3, 100).to_vec();
        set.extend_from_slice(&batch(1, 200));
        let headers = parse_record_set(&set, 1 << 20).unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].record_count, 3);
        assert_eq!(headers[0].last_offset_delta, 2);
        assert_eq!(headers[0].base_timestamp, 100);
        assert_eq!(headers[0].max_timestamp, 102);
        assert_eq!(headers[1].max_timestamp, 200);
        assert_eq!(headers[0].total_size() + headers[1].total_size(), set.len());
        assert!(!headers[0].has_producer_id());
    }

    #[test]
    fn refuses_bad_crc_magic_size_and_truncation() {
        let good = batch(2, 1).to_vec();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            parse_record_set(&bad, 1 << 20),
            Err(LogError::CorruptBatch { .. })
        ));
        let mut old = good.clone();
        old[16] = 1;
        assert!(matches!(
            parse_record_set(&old, 1 << 20),
            Err(LogError::UnsupportedMagic(1))
        ));
        assert!(matches!(
            parse_record_set(&good, 10),
            Err(LogError::BatchTooLarge { .. })
        ));
        for cut in 0..good.len() {
            assert!(
                parse_record_set(&good[..cut], 1 << 20).is_err(),
                "cut at {cut}"
            );
        }
        let mut negative = good.clone();
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(parse_record_set(&negative, 1 << 20).is_err());
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = parse_record_set(&bytes, 1 << 20);
        }
    }

    #[test]
    fn log_append_time_rewrites_header_and_crc() {
        let mut bytes = batch(3, 100).to_vec();
        let mut headers = parse_record_set(&bytes, 1 << 20).unwrap();
        set_log_append_time(&mut bytes, &mut headers, 5555);
        let reparsed = parse_record_set(&bytes, 1 << 20).unwrap();
        assert_eq!(reparsed, headers);
        assert!(reparsed[0].timestamp_type_log_append());
        assert_eq!(reparsed[0].max_timestamp, 5555);
        assert_eq!(reparsed[0].base_timestamp, 100, "base timestamp untouched");
    }

    /// Rewrites bytes [at..at+4) of a batch and fixes its CRC, so only that field is wrong.
    fn with_field(batch: &[u8], at: usize, value: i32) -> Vec<u8> {
        let mut b = batch.to_vec();
        b[at..at + 4].copy_from_slice(&value.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn reads_every_header_field() {
        let b = test_batches::batch_with(
            4,
            1_000,
            Some((77, 3, 10)),
            kafka_protocol::records::Compression::Gzip,
            20,
        );
        let h = parse_record_set(&b, 1 << 20).unwrap()[0];
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.total_size(), b.len());
        assert_eq!(h.magic, 2);
        assert_eq!(h.compression(), 1);
        assert_eq!(
            (h.last_offset_delta, h.record_count, h.last_offset()),
            (3, 4, 3)
        );
        assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 1_003));
        assert_eq!((h.producer_id, h.producer_epoch), (77, 3));
        assert_eq!((h.base_sequence, h.last_sequence()), (10, 13));
        assert!(!h.is_transactional() && !h.is_control() && !h.timestamp_type_log_append());
        assert_eq!(h.crc, crc32c::crc32c(&b[CRC_START..]));
    }

    #[test]
    fn refuses_every_kind_of_bad_field() {
        let good = batch(2, 1).to_vec();
        for magic in [0u8, 1] {
            let mut old = good.clone();
            old[16] = magic;
            assert!(matches!(
                parse_record_set(&old, 1 << 20),
                Err(LogError::UnsupportedMagic(m)) if m == magic as i8
            ));
        }
        // Lengths below the header, negative, or past the end.
        for len in [i32::MIN, -1, 0, 12, 48, good.len() as i32 - 11, i32::MAX] {
            let mut b = good.clone();
            b[8..12].copy_from_slice(&len.to_be_bytes());
            assert!(parse_record_set(&b, u32::MAX).is_err(), "length {len}");
        }
        assert!(matches!(
            parse_record_set(&with_field(&good, 23, -1), 1 << 20),
            Err(LogError::CorruptBatch { .. })
        ));
        assert!(matches!(
            parse_record_set(&with_field(&good, 57, -3), 1 << 20),
            Err(LogError::CorruptBatch { .. })
        ));
        // Exactly at the limit is fine, one byte over is not.
        assert!(parse_record_set(&good, good.len() as u32).is_ok());
        assert!(matches!(
            parse_record_set(&good, good.len() as u32 - 1),
            Err(LogError::BatchTooLarge { size, max }) if size == good.len() && max == good.len() - 1
        ));
        assert!(parse_record_set(&[], 1 << 20).is_err());
    }

    #[test]
    fn a_truncated_or_trailing_second_batch_is_refused() {
        let first = batch(3, 1).to_vec();
        let second = batch(2, 9).to_vec();
        let mut set = first.clone();
        set.extend_from_slice(&second);
        assert_eq!(parse_record_set(&set, 1 << 20).unwrap().len(), 2);
        for cut in first.len() + 1..set.len() {
            assert!(parse_record_set(&set[..cut], 1 << 20).is_err(), "cut {cut}");
        }
        let mut trailing = set.clone();
        trailing.push(0);
        assert!(parse_record_set(&trailing, 1 << 20).is_err());
    }

    #[test]
    fn never_panics_on_mutated_batches() {
        let good = batch(3, 1).to_vec();
        let mut x: u64 = 0x2545f4914f6cdd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5_000 {
            let mut b = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % b.len() as u64) as usize;
                b[at] = next() as u8;
            }
            let cut = (next() % (b.len() as u64 + 1)) as usize;
            if let Ok(headers) = parse_record_set(&b[..cut], 1 << 20) {
                let total: usize = headers.iter().map(|h| h.total_size()).sum();
                assert_eq!(total, cut);
            }
        }
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
