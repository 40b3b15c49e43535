//! Records inside a RecordBatch v2, read without a full decode: the cleaner and the
//! compacted-topic key check need each record's offset, timestamp, key and whether its value
//! is null, and the cleaner rebuilds batches from a subset of the records' bytes.
//!
//! A record (after the batch header, decompressed with the batch's codec if need be):
//! length varint, attributes int8, timestampDelta varlong, offsetDelta varint, keyLength
//! varint (-1 = null), key, valueLength varint (-1 = null), value, headers. Kept records are
//! copied byte for byte (their deltas stay valid because a rebuilt batch keeps its base
//! offset and base timestamp), so only the header changes: record count, max timestamp,
//! batch length and CRC. A compressed batch is decompressed and recompressed with its codec.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};

use crate::batch::{BatchHeader, RECORD_BATCH_OVERHEAD};
use crate::LogError;

/// One record of a batch: its bytes (length prefix included) and the fields the cleaner uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub bytes: &'a [u8],
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    /// A tombstone: the value is null.
    pub value_is_null: bool,
}

fn corrupt(position: u64, reason: impl Into<String>) -> LogError {
    LogError::CorruptBatch {
        position: position as usize,
        reason: reason.into(),
    }
}

/// Reads a zigzag varint (at most 10 bytes) at `*pos`.
fn varlong(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

fn bytes_field<'a>(b: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = varlong(b, pos)?;
    if len < 0 {
        return Some(None);
    }
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let field = b.get(*pos..end)?;
    *pos = end;
    Some(Some(field))
}

/// Parses the records of a batch's (decompressed) records section.
pub fn parse_records<'a>(
    header: &BatchHeader,
    section: &'a [u8],
    position: u64,
) -> Result<Vec<RawRecord<'a>>, LogError> {
    // The count comes from the batch: a record takes at least 7 bytes of the section (a
    // length, attributes, two deltas, key and value lengths, a header count), so a larger
    // claim cannot be true and is not reserved.
    let claimed = usize::try_from(header.record_count).unwrap_or(0);
    let mut out = Vec::with_capacity(claimed.min(section.len() / 7));
    let mut pos = 0usize;
    while pos < section.len() {
        let start = pos;
        let bad = || {
            corrupt(
                position,
                format!("malformed record at byte {start} of the batch"),
            )
        };
        let len = varlong(section, &mut pos).ok_or_else(bad)?;
        let body_end = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|e| *e <= section.len())
            .ok_or_else(bad)?;
        let body = &section[..body_end];
        pos += 1; // attributes
        let ts_delta = varlong(body, &mut pos).ok_or_else(bad)?;
        let offset_delta = varlong(body, &mut pos).ok_or_else(bad)?;
        let key = bytes_field(body, &mut pos).ok_or_else(bad)?;
        let value = bytes_field(body, &mut pos).ok_or_else(bad)?;
        out.push(RawRecord {
            bytes: &section[start..body_end],
            offset: header.base_offset + offset_delta,
            timestamp: header.base_timestamp.saturating_add(ts_delta),
            key,
            value_is_null: value.is_none(),
        });
        pos = body_end;
    }
    if out.len() != header.record_count.max(0) as usize {
        return Err(corrupt(
            position,
            format!(
                "batch says {} records but holds {}",
                header.record_count,
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// The records section of a whole batch (`batch` starts at its base offset), decompressed.
pub fn records_section(
    header: &BatchHeader,
    batch: &[u8],
    position: u64,
) -> Result<Bytes, LogError> {
    let raw = batch
        .get(RECORD_BATCH_OVERHEAD..header.total_size())
        .ok_or_else(|| corrupt(position, "batch shorter than its header says"))?;
    let mut input = Bytes::copy_from_slice(raw);
    let take = |b: &mut Bytes| Ok(std::mem::take(b));
    let result: anyhow::Result<Bytes> = match header.compression() {
        0 => Ok(input),
        1 => codec::Gzip::decompress(&mut input, take),
        2 => codec::Snappy::decompress(&mut input, take),
        3 => codec::Lz4::decompress(&mut input, take),
        4 => codec::Zstd::decompress(&mut input, take),
        other => {
            return Err(corrupt(
                position,
                format!("unknown compression codec {other}"),
            ))
        }
    };
    result.map_err(|e| corrupt(position, format!("cannot decompress records: {e}")))
}

fn compress(codec_id: u8, plain: &[u8], position: u64) -> Result<Vec<u8>, LogError> {
    if codec_id == 0 {
        return Ok(plain.to_vec());
    }
    let mut out = BytesMut::new();
    let fill = |b: &mut BytesMut| {
        b.extend_from_slice(plain);
        Ok(())
    };
    let result = match codec_id {
        1 => codec::Gzip::compress(&mut out, fill),
        2 => codec::Snappy::compress(&mut out, fill),
        3 => codec::Lz4::compress(&mut out, fill),
        4 => codec::Zstd::compress(&mut out, fill),
        other => {
            return Err(corrupt(
                position,
                format!("unknown compression codec {other}"),
            ))
        }
    };
    result.map_err(|e| corrupt(position, format!("cannot compress records: {e}")))?;
    Ok(out.to_vec())
}

/// Builds a batch with the header of `original` and the given records (a subset of its
/// records, in order, as their bytes): same base offset, last offset delta, base timestamp,
/// producer id/epoch/base sequence, leader epoch and attributes; record count, max timestamp
/// (of the kept records, for CreateTime), length and CRC are recomputed. No records: Kafka's
/// empty batch (uncompressed, max timestamp kept), which keeps a producer's last sequence.
pub fn rebuild_batch(
    original: &BatchHeader,
    kept: &[RawRecord<'_>],
    position: u64,
) -> Result<Vec<u8>, LogError> {
    let plain: Vec<u8> = kept.iter().flat_map(|r| r.bytes.iter().copied()).collect();
    let mut attributes = original.attributes;
    let section = if kept.is_empty() {
        attributes &= !0x07;
        Vec::new()
    } else {
        compress(original.compression(), &plain, position)?
    };
    let max_timestamp = if original.timestamp_type_log_append() || kept.is_empty() {
        original.max_timestamp
    } else {
        kept.iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(original.max_timestamp)
    };
    let total = RECORD_BATCH_OVERHEAD + section.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&original.base_offset.to_be_bytes());
    b.extend_from_slice(&((total - 12) as i32).to_be_bytes());
    b.extend_from_slice(&original.partition_leader_epoch.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]); // CRC, below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&original.last_offset_delta.to_be_bytes());
    b.extend_from_slice(&original.base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b.extend_from_slice(&original.producer_id.to_be_bytes());
    b.extend_from_slice(&original.producer_epoch.to_be_bytes());
    b.extend_from_slice(&original.base_sequence.to_be_bytes());
    b.extend_from_slice(&(kept.len() as i32).to_be_bytes());
    b.extend_from_slice(&section);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(b)
}

/// Kafka's produce check for a compacted topic: every record must have a key (else
/// INVALID_RECORD). `records` is a validated record set described by `headers`. Control
/// batches carry no user records and are not checked.
pub fn check_keys(records: &[u8], headers: &[BatchHeader]) -> Result<(), LogError> {
    let mut pos = 0usize;
    for h in headers {
        let size = h.total_size();
        let batch = records
            .get(pos..pos + size)
            .ok_or_else(|| corrupt(pos as u64, "record set shorter than its headers"))?;
        if !h.is_control() {
            let section = records_section(h, batch, pos as u64)?;
            for r in parse_records(h, &section, pos as u64)? {
                if r.key.is_none() {
                    return Err(LogError::InvalidRecord(format!(
                        "compacted topic cannot accept a record without a key (offset delta {})",
                        r.offset - h.base_offset
                    )));
                }
            }
        }
        pos += size;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch_with;
    use crate::parse_record_set;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    #[test]
    fn parses_and_rebuilds_a_subset_for_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = batch_with(5, 1_000, Some((9, 2, 40)), compression, 12).to_vec();
            b[0..8].copy_from_slice(&100i64.to_be_bytes());
            let h = parse_record_set(&b, 1 << 20).unwrap()[0];
            let section = records_section(&h, &b, 0).unwrap();
            let recs = parse_records(&h, &section, 0).unwrap();
            assert_eq!(recs.len(), 5);
            assert_eq!(recs[3].offset, 103);
            assert_eq!(recs[3].timestamp, 1_003);
            assert_eq!(recs[3].key, Some(&b"key-3"[..]));
            assert!(!recs[3].value_is_null);
            let kept = vec![recs[1].clone(), recs[2].clone()];
            let rebuilt = rebuild_batch(&h, &kept, 0).unwrap();
            let nh = parse_record_set(&rebuilt, 1 << 20).unwrap()[0];
            assert_eq!(nh.base_offset, 100);
            assert_eq!(nh.last_offset(), 104, "last offset delta kept");
            assert_eq!(nh.record_count, 2);
            assert_eq!(nh.max_timestamp, 1_002);
            assert_eq!(nh.compression(), h.compression());
            assert_eq!(
                (nh.producer_id, nh.producer_epoch, nh.base_sequence),
                (9, 2, 40)
            );
            // A real decoder agrees on offsets, keys and values.
            let mut bytes = Bytes::from(rebuilt);
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            let got: Vec<(i64, Option<Bytes>)> = set
                .records
                .iter()
                .map(|r| (r.offset, r.key.clone()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (101, Some(Bytes::from_static(b"key-1"))),
                    (102, Some(Bytes::from_static(b"key-2")))
                ]
            );
            assert_eq!(set.records[0].value.as_deref(), Some(&[b'v'; 12][..]));
            let empty = rebuild_batch(&h, &[], 0).unwrap();
            let eh = parse_record_set(&empty, 1 << 20).unwrap()[0];
            assert_eq!(
                (eh.record_count, eh.last_offset(), eh.compression()),
                (0, 104, 0)
            );
        }
    }

    #[test]
    fn key_check_refuses_a_null_key() {
        let b = batch_with(3, 1, None, Compression::Lz4, 4).to_vec();
        let h = parse_record_set(&b, 1 << 20).unwrap();
        assert!(check_keys(&b, &h).is_ok());
        let mut buf = BytesMut::new();
        let rec = kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 5,
            key: None,
            value: Some(Bytes::from_static(b"x")),
            headers: Default::default(),
        };
        kafka_protocol::records::RecordBatchEncoder::encode(
            &mut buf,
            [&rec],
            &kafka_protocol::records::RecordEncodeOptions {
                version: 2,
                compression: Compression::Gzip,
            },
        )
        .unwrap();
        let h = parse_record_set(&buf, 1 << 20).unwrap();
        assert!(matches!(
            check_keys(&buf, &h),
            Err(LogError::InvalidRecord(_))
        ));
    }
}
