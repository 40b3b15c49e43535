//! The records the transaction coordinator keeps in `__transaction_state`, in Kafka's own
//! formats (`TransactionLogKey` and `TransactionLogValue` of Kafka's transaction-coordinator
//! schemas), so that `kafka-dump-log.sh --transaction-log-decoder` reads gregor's log and a
//! Kafka broker taking over a partition reads gregor's transactions.
//!
//! Key: `version: int16 = 0, transactional_id: string`. Value version 0 (what Kafka writes
//! for the classic protocol): `version: int16, producer_id: int64, producer_epoch: int16,
//! transaction_timeout_ms: int32, transaction_status: int8, transaction_partitions:
//! nullable [topic: string, partition_ids: [int32]], transaction_last_update_timestamp_ms:
//! int64, transaction_start_timestamp_ms: int64`. Version 1 (flexible, KIP-890; what Kafka
//! writes once `transaction.version` is 1 or more) has the same fields as compact strings and
//! arrays, and three tagged fields: previous_producer_id (tag 0), next_producer_id (tag 1)
//! and client_transaction_version (tag 2), each left out at its default (-1, -1, 0) as
//! Kafka's generated writers do. A null value is a tombstone (the transactional id expired).

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Kafka's name for the transaction log topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

const KEY_VERSION: i16 = 0;

#[derive(Debug, Error, PartialEq)]
pub enum RecordFormatError {
    #[error("record ends early while reading {0}")]
    Truncated(&'static str),
    #[error("string field is not UTF-8")]
    NotUtf8,
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },
    #[error("unknown transaction status {0}")]
    UnknownStatus(i8),
}

/// Kafka's `TransactionState`, with its ids as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TransactionState {
    pub fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Result<TransactionState, RecordFormatError> {
        Ok(match id {
            0 => TransactionState::Empty,
            1 => TransactionState::Ongoing,
            2 => TransactionState::PrepareCommit,
            3 => TransactionState::PrepareAbort,
            4 => TransactionState::CompleteCommit,
            5 => TransactionState::CompleteAbort,
            6 => TransactionState::Dead,
            7 => TransactionState::PrepareEpochFence,
            other => return Err(RecordFormatError::UnknownStatus(other)),
        })
    }

    /// The names `kafka-transactions.sh` and DescribeTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// One transactional id's state as stored (TransactionLogValue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    pub state: TransactionState,
    /// topic -> partitions; empty when no transaction is open.
    pub partitions: BTreeMap<String, Vec<i32>>,
    pub last_update_timestamp_ms: i64,
    pub start_timestamp_ms: i64,
    /// Version 1 only (-1 in version 0): the producer id before the last state change.
    pub previous_producer_id: i64,
    /// Version 1 only: the producer id a transaction ending with an exhausted epoch hands
    /// over to (KIP-890 transactions v2), -1 if none.
    pub next_producer_id: i64,
    /// Version 1 only: the transaction version the producer's requests used (0 in v0).
    pub client_transaction_version: i16,
}

pub fn transaction_log_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_VERSION);
    put_string(&mut b, transactional_id);
    b.freeze()
}

/// `v` in value `version` 0 or 1 (the coordinator's choice, from `transaction.version`).
pub fn encode_transaction_log_value(v: &TransactionLogValue, version: i16) -> Bytes {
    let flexible = version >= 1;
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(if flexible { 1 } else { 0 });
    b.put_i64(v.producer_id);
    b.put_i16(v.producer_epoch);
    b.put_i32(v.transaction_timeout_ms);
    b.put_i8(v.state.id());
    // Kafka writes an empty array (not null) when no partitions are in the transaction.
    put_array_len(&mut b, v.partitions.len(), flexible);
    for (topic, partitions) in &v.partitions {
        if flexible {
            put_uvarint(&mut b, topic.len() as u64 + 1);
            b.put_slice(topic.as_bytes());
        } else {
            put_string(&mut b, topic);
        }
        put_array_len(&mut b, partitions.len(), flexible);
        for p in partitions {
            b.put_i32(*p);
        }
        if flexible {
            b.put_u8(0); // the topic's tagged fields: none
        }
    }
    b.put_i64(v.last_update_timestamp_ms);
    b.put_i64(v.start_timestamp_ms);
    if flexible {
        let mut tagged: Vec<(u64, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != -1 {
            tagged.push((0, v.previous_producer_id.to_be_bytes().to_vec()));
        }
        if v.next_producer_id != -1 {
            tagged.push((1, v.next_producer_id.to_be_bytes().to_vec()));
        }
        if v.client_transaction_version != 0 {
            tagged.push((2, v.client_transaction_version.to_be_bytes().to_vec()));
        }
        put_uvarint(&mut b, tagged.len() as u64);
        for (tag, data) in tagged {
            put_uvarint(&mut b, tag);
            put_uvarint(&mut b, data.len() as u64);
            b.put_slice(&data);
        }
    }
    b.freeze()
}

/// The transactional id of a `__transaction_state` key.
pub fn decode_transaction_log_key(mut b: &[u8]) -> Result<String, RecordFormatError> {
    let version = get_i16(&mut b, "key version")?;
    if version != KEY_VERSION {
        return Err(RecordFormatError::UnsupportedVersion {
            what: "transaction log key",
            version,
        });
    }
    get_string(&mut b, false)
}

pub fn decode_transaction_log_value(
    mut b: &[u8],
) -> Result<TransactionLogValue, RecordFormatError> {
    let version = get_i16(&mut b, "value version")?;
    let flexible = match version {
        0 => false,
        1 => true,
        _ => {
            return Err(RecordFormatError::UnsupportedVersion {
                what: "transaction log value",
                version,
            })
        }
    };
    let producer_id = get_i64(&mut b, "producer id")?;
    let producer_epoch = get_i16(&mut b, "producer epoch")?;
    let transaction_timeout_ms = get_i32(&mut b, "timeout")?;
    let state = TransactionState::from_id(get_i8(&mut b, "status")?)?;
    let mut partitions = BTreeMap::new();
    let count = get_array_len(&mut b, flexible)?;
    for _ in 0..count.unwrap_or(0) {
        let topic = get_string(&mut b, flexible)?;
        let n = get_array_len(&mut b, flexible)?.unwrap_or(0);
        let mut ids = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            ids.push(get_i32(&mut b, "partition id")?);
        }
        if flexible {
            skip_tagged_fields(&mut b)?;
        }
        partitions.insert(topic, ids);
    }
    let last_update_timestamp_ms = get_i64(&mut b, "last update timestamp")?;
    let start_timestamp_ms = get_i64(&mut b, "start timestamp")?;
    let mut value = TransactionLogValue {
        producer_id,
        producer_epoch,
        transaction_timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
        previous_producer_id: -1,
        next_producer_id: -1,
        client_transaction_version: 0,
    };
    if flexible {
        let n = get_uvarint(&mut b)?;
        for _ in 0..n {
            let tag = get_uvarint(&mut b)?;
            let size = get_uvarint(&mut b)? as usize;
            need(b, size, "tagged field")?;
            let mut field = &b[..size];
            match tag {
                0 => value.previous_producer_id = get_i64(&mut field, "previous producer id")?,
                1 => value.next_producer_id = get_i64(&mut field, "next producer id")?,
                2 => {
                    value.client_transaction_version =
                        get_i16(&mut field, "client transaction version")?
                }
                _ => {} // a field of a later Kafka: skipped, as its readers do
            }
            b.advance(size);
        }
    }
    Ok(value)
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn put_array_len(b: &mut BytesMut, len: usize, flexible: bool) {
    if flexible {
        put_uvarint(b, len as u64 + 1);
    } else {
        b.put_i32(len as i32);
    }
}

fn put_string(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn need(b: &[u8], n: usize, what: &'static str) -> Result<(), RecordFormatError> {
    if b.remaining() < n {
        return Err(RecordFormatError::Truncated(what));
    }
    Ok(())
}

fn get_i8(b: &mut &[u8], what: &'static str) -> Result<i8, RecordFormatError> {
    need(b, 1, what)?;
    Ok(b.get_i8())
}

fn get_i16(b: &mut &[u8], what: &'static str) -> Result<i16, RecordFormatError> {
    need(b, 2, what)?;
    Ok(b.get_i16())
}

fn get_i32(b: &mut &[u8], what: &'static str) -> Result<i32, RecordFormatError> {
    need(b, 4, what)?;
    Ok(b.get_i32())
}

fn get_i64(b: &mut &[u8], what: &'static str) -> Result<i64, RecordFormatError> {
    need(b, 8, what)?;
    Ok(b.get_i64())
}

fn get_uvarint(b: &mut &[u8]) -> Result<u64, RecordFormatError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = get_i8(b, "varint")? as u8;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(RecordFormatError::Truncated("varint"))
}

/// An array length: int32 (-1 null) or, flexible, an unsigned varint of length + 1 (0 null).
fn get_array_len(b: &mut &[u8], flexible: bool) -> Result<Option<usize>, RecordFormatError> {
    let n = if flexible {
        get_uvarint(b)? as i64 - 1
    } else {
        i64::from(get_i32(b, "array length")?)
    };
    Ok(usize::try_from(n).ok())
}

fn get_string(b: &mut &[u8], flexible: bool) -> Result<String, RecordFormatError> {
    let len = if flexible {
        get_uvarint(b)?.saturating_sub(1) as usize
    } else {
        get_i16(b, "string length")?.max(0) as usize
    };
    need(b, len, "string")?;
    let s = std::str::from_utf8(&b[..len]).map_err(|_| RecordFormatError::NotUtf8)?;
    let out = s.to_string();
    b.advance(len);
    Ok(out)
}

fn skip_tagged_fields(b: &mut &[u8]) -> Result<(), RecordFormatError> {
    let n = get_uvarint(b)?;
    for _ in 0..n {
        let _tag = get_uvarint(b)?;
        let size = get_uvarint(b)? as usize;
        need(b, size, "tagged field")?;
        b.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_round_trips_in_kafkas_version_0_layout() {
        let v = TransactionLogValue {
            producer_id: 1001,
            producer_epoch: 3,
            transaction_timeout_ms: 60000,
            state: TransactionState::PrepareCommit,
            partitions: BTreeMap::from([("out".to_string(), vec![0, 2])]),
            last_update_timestamp_ms: 1_700_000_000_100,
            start_timestamp_ms: 1_700_000_000_000,
            previous_producer_id: -1,
            next_producer_id: -1,
            client_transaction_version: 0,
        };
        let bytes = encode_transaction_log_value(&v, 0);
        // version, pid, epoch, timeout, status, [1 topic: "out", [0, 2]], two timestamps.
        let mut want = vec![0, 0];
        want.extend_from_slice(&1001i64.to_be_bytes());
        want.extend_from_slice(&3i16.to_be_bytes());
        want.extend_from_slice(&60000i32.to_be_bytes());
        want.push(2);
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&[0, 3, b'o', b'u', b't']);
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&0i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_100i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&bytes[..], &want[..]);
        assert_eq!(decode_transaction_log_value(&bytes), Ok(v));
        assert_eq!(
            decode_transaction_log_key(&transaction_log_key("tx-1")),
            Ok("tx-1".to_string())
        );
        for cut in 0..bytes.len() {
            assert!(decode_transaction_log_value(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn a_flexible_version_1_value_is_read() {
        // version 1: compact array of 1 topic "t" with [5], tagged fields in the topic and
        // at the end (Kafka's ClientTransactionVersion).
        let mut b = vec![0, 1];
        b.extend_from_slice(&7i64.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&1000i32.to_be_bytes());
        b.push(1); // Ongoing
        b.push(2); // 1 topic
        b.extend_from_slice(&[2, b't']);
        b.push(2); // 1 partition
        b.extend_from_slice(&5i32.to_be_bytes());
        b.push(0); // topic's tagged fields
        b.extend_from_slice(&10i64.to_be_bytes());
        b.extend_from_slice(&9i64.to_be_bytes());
        b.extend_from_slice(&[1, 2, 2, 0, 2]); // tagged: ClientTransactionVersion = 2
        let v = decode_transaction_log_value(&b).unwrap();
        assert_eq!(v.state, TransactionState::Ongoing);
        assert_eq!(v.partitions, BTreeMap::from([("t".to_string(), vec![5])]));
        assert_eq!((v.last_update_timestamp_ms, v.start_timestamp_ms), (10, 9));
        assert_eq!(
            (
                v.previous_producer_id,
                v.next_producer_id,
                v.client_transaction_version
            ),
            (-1, -1, 2)
        );
        // What we write in version 1 is exactly these bytes.
        assert_eq!(&encode_transaction_log_value(&v, 1)[..], &b[..]);
    }

    #[test]
    fn version_1_carries_the_previous_and_next_producer_ids() {
        let v = TransactionLogValue {
            producer_id: 7,
            producer_epoch: i16::MAX,
            transaction_timeout_ms: 1000,
            state: TransactionState::PrepareCommit,
            partitions: BTreeMap::from([("out".to_string(), vec![0, 1])]),
            last_update_timestamp_ms: 20,
            start_timestamp_ms: 10,
            previous_producer_id: 7,
            next_producer_id: 8,
            client_transaction_version: 2,
        };
        let bytes = encode_transaction_log_value(&v, 1);
        // Tagged fields at the end: 3 of them, tags 0, 1 (8 bytes each) and 2 (2 bytes).
        let tail = &bytes[bytes.len() - 25..];
        assert_eq!(&tail[..3], &[3, 0, 8]);
        assert_eq!(&tail[3..11], &7i64.to_be_bytes());
        assert_eq!(&tail[11..13], &[1, 8]);
        assert_eq!(&tail[13..21], &8i64.to_be_bytes());
        assert_eq!(&tail[21..], &[2, 2, 0, 2]);
        assert_eq!(decode_transaction_log_value(&bytes), Ok(v));
        for cut in 0..bytes.len() {
            assert!(decode_transaction_log_value(&bytes[..cut]).is_err());
        }
    }
}
