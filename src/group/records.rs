//! The records the group coordinator keeps in `__consumer_offsets`, in Kafka's own formats
//! (`OffsetCommitKey`/`OffsetCommitValue` and `GroupMetadataKey`/`GroupMetadataValue` of
//! Kafka's group-coordinator schemas), so that Kafka's tools (`kafka-dump-log.sh
//! --offsets-decoder`, the console consumer's offsets formatter) read gregor's offsets topic.
//!
//! A record's key starts with an int16 version that says what it is: 0 and 1 an offset commit,
//! 2 a group's metadata. A null value is a tombstone (offset or group deleted). gregor writes
//! key version 1 / value version 3 for offsets and key version 2 / value version 3 for groups,
//! the newest non-flexible versions, and reads every non-flexible version.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Kafka's name for the offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key version of an offset commit as Kafka writes it.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

#[derive(Debug, Error, PartialEq)]
pub enum RecordFormatError {
    #[error("record ends early while reading {0}")]
    Truncated(&'static str),
    #[error("string field is not UTF-8")]
    NotUtf8,
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },
}

/// What a `__consumer_offsets` key identifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A key version gregor does not read (KIP-848 and share-group records): skipped.
    Other(i16),
}

/// A committed offset (OffsetCommitValue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only in value version 1 (clients' retention_time_ms); -1 otherwise.
    pub expire_timestamp: i64,
}

/// One member as stored in GroupMetadataValue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A classic group's state after a rebalance (GroupMetadataValue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberMetadataValue>,
}

/// One record for `__consumer_offsets`: a key and a value (None: a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// Strings in `__consumer_offsets` records carry an int16 length: longer ones cannot be stored.
pub fn fits_record(s: &str) -> bool {
    s.len() <= i16::MAX as usize
}

/// A group's metadata record.
pub fn group_metadata_record(group: &str, value: &GroupMetadataValue) -> KeyValue {
    (
        group_metadata_key(group),
        Some(encode_group_metadata_value(value)),
    )
}

pub fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::with_capacity(10 + group.len() + topic.len());
    b.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut b, group);
    put_string(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

pub fn group_metadata_key(group: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + group.len());
    b.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut b, group);
    b.freeze()
}

pub fn encode_offset_commit_value(v: &OffsetCommitValue) -> Bytes {
    let mut b = BytesMut::with_capacity(32 + v.metadata.len());
    b.put_i16(OFFSET_COMMIT_VALUE_VERSION);
    b.put_i64(v.offset);
    b.put_i32(v.leader_epoch);
    put_string(&mut b, &v.metadata);
    b.put_i64(v.commit_timestamp);
    b.freeze()
}

pub fn encode_group_metadata_value(v: &GroupMetadataValue) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut b, &v.protocol_type);
    b.put_i32(v.generation);
    put_nullable_string(&mut b, v.protocol.as_deref());
    put_nullable_string(&mut b, v.leader.as_deref());
    b.put_i64(v.current_state_timestamp);
    b.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_string(&mut b, &m.member_id);
        put_nullable_string(&mut b, m.group_instance_id.as_deref());
        put_string(&mut b, &m.client_id);
        put_string(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

pub fn decode_key(mut b: &[u8]) -> Result<CoordinatorKey, RecordFormatError> {
    let version = get_i16(&mut b, "key version")?;
    match version {
        0 | 1 => Ok(CoordinatorKey::Offset {
            group: get_string(&mut b, "group")?,
            topic: get_string(&mut b, "topic")?,
            partition: get_i32(&mut b, "partition")?,
        }),
        2 => Ok(CoordinatorKey::Group {
            group: get_string(&mut b, "group")?,
        }),
        other => Ok(CoordinatorKey::Other(other)),
    }
}

pub fn decode_offset_commit_value(mut b: &[u8]) -> Result<OffsetCommitValue, RecordFormatError> {
    let version = get_i16(&mut b, "value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordFormatError::UnsupportedVersion {
            what: "OffsetCommitValue",
            version,
        });
    }
    let offset = get_i64(&mut b, "offset")?;
    let leader_epoch = if version >= 3 {
        get_i32(&mut b, "leader epoch")?
    } else {
        -1
    };
    let metadata = get_string(&mut b, "metadata")?;
    let commit_timestamp = get_i64(&mut b, "commit timestamp")?;
    let expire_timestamp = if version == 1 {
        get_i64(&mut b, "expire timestamp")?
    } else {
        -1
    };
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

pub fn decode_group_metadata_value(mut b: &[u8]) -> Result<GroupMetadataValue, RecordFormatError> {
    let version = get_i16(&mut b, "value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordFormatError::UnsupportedVersion {
            what: "GroupMetadataValue",
            version,
        });
    }
    let protocol_type = get_string(&mut b, "protocol type")?;
    let generation = get_i32(&mut b, "generation")?;
    let protocol = get_nullable_string(&mut b, "protocol")?;
    let leader = get_nullable_string(&mut b, "leader")?;
    let current_state_timestamp = if version >= 2 {
        get_i64(&mut b, "state timestamp")?
    } else {
        -1
    };
    let count = get_i32(&mut b, "member count")?.max(0);
    let mut members = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        let member_id = get_string(&mut b, "member id")?;
        let group_instance_id = if version >= 3 {
            get_nullable_string(&mut b, "group instance id")?
        } else {
            None
        };
        let client_id = get_string(&mut b, "client id")?;
        let client_host = get_string(&mut b, "client host")?;
        let rebalance_timeout_ms = if version >= 1 {
            get_i32(&mut b, "rebalance timeout")?
        } else {
            -1
        };
        let session_timeout_ms = get_i32(&mut b, "session timeout")?;
        let subscription = get_bytes(&mut b, "subscription")?;
        let assignment = get_bytes(&mut b, "assignment")?;
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// The topics a consumer subscribes to, read from its ConsumerProtocolSubscription (the
/// metadata of a `consumer` protocol member; all versions start with the topic list).
pub fn subscribed_topics(subscription: &[u8]) -> Result<Vec<String>, RecordFormatError> {
    let mut b = subscription;
    let _version = get_i16(&mut b, "subscription version")?;
    let count = get_i32(&mut b, "topic count")?.max(0);
    let mut topics = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        topics.push(get_string(&mut b, "topic")?);
    }
    Ok(topics)
}

fn put_string(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn put_nullable_string(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, bytes: &[u8]) {
    b.put_i32(bytes.len() as i32);
    b.put_slice(bytes);
}

fn need(b: &[u8], n: usize, what: &'static str) -> Result<(), RecordFormatError> {
    if b.len() < n {
        Err(RecordFormatError::Truncated(what))
    } else {
        Ok(())
    }
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

fn get_nullable_string(
    b: &mut &[u8],
    what: &'static str,
) -> Result<Option<String>, RecordFormatError> {
    let len = get_i16(b, what)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    need(b, len, what)?;
    let s = std::str::from_utf8(&b[..len])
        .map_err(|_| RecordFormatError::NotUtf8)?
        .to_string();
    b.advance(len);
    Ok(Some(s))
}

fn get_string(b: &mut &[u8], what: &'static str) -> Result<String, RecordFormatError> {
    Ok(get_nullable_string(b, what)?.unwrap_or_default())
}

fn get_bytes(b: &mut &[u8], what: &'static str) -> Result<Bytes, RecordFormatError> {
    let len = get_i32(b, what)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    let len = len as usize;
    need(b, len, what)?;
    let out = Bytes::copy_from_slice(&b[..len]);
    b.advance(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_round_trip() {
        let key = offset_commit_key("g1", "orders", 7);
        assert_eq!(&key[..2], &[0, 1]);
        assert_eq!(
            decode_key(&key).unwrap(),
            CoordinatorKey::Offset {
                group: "g1".into(),
                topic: "orders".into(),
                partition: 7
            }
        );
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: -1,
        };
        let bytes = encode_offset_commit_value(&value);
        // version 3: i16 + i64 + i32 + (i16 + 1) + i64
        assert_eq!(bytes.len(), 2 + 8 + 4 + 3 + 8);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
    }

    #[test]
    fn group_metadata_round_trip() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 99,
            members: vec![MemberMetadataValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let bytes = encode_group_metadata_value(&value);
        assert_eq!(decode_group_metadata_value(&bytes).unwrap(), value);
        assert_eq!(
            decode_key(&group_metadata_key("g")).unwrap(),
            CoordinatorKey::Group { group: "g".into() }
        );
    }

    #[test]
    fn truncated_values_are_errors_not_panics() {
        let bytes = encode_offset_commit_value(&OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: "abc".into(),
            commit_timestamp: 1,
            expire_timestamp: -1,
        });
        for cut in 0..bytes.len() {
            assert!(
                decode_offset_commit_value(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        assert_eq!(
            decode_key(&[0, 1, 0]).unwrap_err(),
            RecordFormatError::Truncated("group")
        );
    }

    #[test]
    fn subscription_topics() {
        // ConsumerProtocolSubscription v0: version, [topics], user data
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(2);
        put_string(&mut b, "a");
        put_string(&mut b, "bb");
        b.put_i32(-1);
        assert_eq!(subscribed_topics(&b).unwrap(), vec!["a", "bb"]);
    }
}
