//! Transaction markers: the control batches a transaction coordinator has each partition
//! leader append when a transaction ends (Kafka's `EndTransactionMarker`).
//!
//! A marker is a batch with the transactional and control attributes, the producer's id and
//! epoch, no sequence (-1), never compressed, holding one record whose key is
//! `version: int16 = 0, type: int16` (0 ABORT, 1 COMMIT) and whose value is
//! `version: int16 = 0, coordinator_epoch: int32`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{BatchHeader, RECORD_BATCH_OVERHEAD};

/// Attributes of a marker batch: transactional (0x10) and control (0x20), no compression.
const MARKER_ATTRIBUTES: i16 = 0x30;
const CONTROL_KEY_VERSION: i16 = 0;
const MARKER_VALUE_VERSION: i16 = 0;
const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// What a marker says: how the producer's transaction ended, and under which coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// Reads the marker from a whole control batch (`batch` starts at its base offset).
    /// None if the batch is not a transaction marker (another control type, or malformed):
    /// Kafka ignores control records it does not know.
    pub fn parse(batch: &[u8]) -> Option<EndTxnMarker> {
        let h = BatchHeader::parse(batch)?;
        if !h.is_control() || h.compression() != 0 || h.record_count < 1 {
            return None;
        }
        let mut r = Reader {
            b: batch.get(RECORD_BATCH_OVERHEAD..h.total_size().min(batch.len()))?,
        };
        let _length = r.varint()?;
        let _attributes = r.take(1)?;
        let _timestamp_delta = r.varint()?;
        let _offset_delta = r.varint()?;
        let key_len = usize::try_from(r.varint()?).ok()?;
        let key = r.take(key_len)?;
        if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) < CONTROL_KEY_VERSION {
            return None;
        }
        let commit = match i16::from_be_bytes([key[2], key[3]]) {
            ABORT => false,
            COMMIT => true,
            _ => return None,
        };
        let value_len = usize::try_from(r.varint()?).ok()?;
        let value = r.take(value_len)?;
        if value.len() < 6 {
            return None;
        }
        Some(EndTxnMarker {
            commit,
            coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
        })
    }

    /// The marker batch for `producer_id` at `producer_epoch` (base offset 0: the log
    /// assigns it), stamped `timestamp_ms`.
    pub fn batch(&self, producer_id: i64, producer_epoch: i16, timestamp_ms: i64) -> Bytes {
        let mut key = BytesMut::with_capacity(4);
        key.put_i16(CONTROL_KEY_VERSION);
        key.put_i16(if self.commit { COMMIT } else { ABORT });
        let mut value = BytesMut::with_capacity(6);
        value.put_i16(MARKER_VALUE_VERSION);
        value.put_i32(self.coordinator_epoch);
        let mut record = BytesMut::new();
        record.put_i8(0); // record attributes
        put_varint(&mut record, 0); // timestamp delta
        put_varint(&mut record, 0); // offset delta
        put_varint(&mut record, key.len() as i64);
        record.put_slice(&key);
        put_varint(&mut record, value.len() as i64);
        record.put_slice(&value);
        put_varint(&mut record, 0); // headers
        let mut body = BytesMut::new();
        put_varint(&mut body, record.len() as i64);
        body.put_slice(&record);

        let mut b = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + body.len());
        b.put_i64(0); // base offset
        b.put_i32((RECORD_BATCH_OVERHEAD - 12 + body.len()) as i32); // batch length
        b.put_i32(-1); // partition leader epoch
        b.put_i8(2); // magic
        b.put_u32(0); // CRC, below
        b.put_i16(MARKER_ATTRIBUTES);
        b.put_i32(0); // last offset delta
        b.put_i64(timestamp_ms);
        b.put_i64(timestamp_ms);
        b.put_i64(producer_id);
        b.put_i16(producer_epoch);
        b.put_i32(-1); // base sequence: markers carry none
        b.put_i32(1); // record count
        b.put_slice(&body);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }
}

fn put_varint(b: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    b.put_u8(z as u8);
}

/// Reads zigzag varints and byte runs, None past the end.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<i64> {
        let mut z = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self.take(1)?.first()?;
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_record_set;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn a_built_marker_is_a_valid_control_batch_that_reads_back() {
        for commit in [true, false] {
            let marker = EndTxnMarker {
                commit,
                coordinator_epoch: 7,
            };
            let bytes = marker.batch(4242, 3, 1_700_000_000_000);
            let headers = parse_record_set(&bytes, 1 << 20).expect("valid batch");
            let h = headers[0];
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (4242, 3, -1)
            );
            assert_eq!(EndTxnMarker::parse(&bytes), Some(marker));
            // An independent decoder (kafka-protocol's) agrees on the control record.
            let mut buf = bytes.clone();
            let set = RecordBatchDecoder::decode(&mut buf).expect("decodes");
            let record = &set.records[0];
            assert!(record.control);
            let key = record.key.as_ref().expect("control key");
            assert_eq!(&key[..], &[0, 0, 0, u8::from(commit)]);
        }
    }

    #[test]
    fn anything_else_is_not_a_marker() {
        let data = crate::batch::test_batches::batch(2, 100);
        assert_eq!(EndTxnMarker::parse(&data), None);
        let marker = EndTxnMarker {
            commit: true,
            coordinator_epoch: 1,
        }
        .batch(1, 0, 0);
        for cut in 0..marker.len() {
            // Never panics on a short batch.
            let _ = EndTxnMarker::parse(&marker[..cut]);
        }
    }
}
