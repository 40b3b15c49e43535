//! Typed responses and their encoding into a size-prefixed frame.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

use crate::ProtocolError;

macro_rules! responses {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// A response body, to be encoded at the version of its request.
        #[derive(Debug)]
        pub enum Response {
            $($variant($ty),)*
        }

        impl Response {
            fn encode_body<B: kafka_protocol::protocol::buf::ByteBufMut>(
                &self,
                buf: &mut B,
                version: i16,
            ) -> anyhow::Result<()> {
                match self {
                    $(Response::$variant(r) => r.encode(buf, version),)*
                }
            }
        }
    };
}

responses! {
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    ApiVersions(ApiVersionsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    DeleteRecords(DeleteRecordsResponse),
    InitProducerId(InitProducerIdResponse),
    OffsetForLeaderEpoch(OffsetForLeaderEpochResponse),
    DescribeConfigs(DescribeConfigsResponse),
    CreatePartitions(CreatePartitionsResponse),
    DescribeCluster(DescribeClusterResponse),
    FindCoordinator(FindCoordinatorResponse),
    AlterConfigs(AlterConfigsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    JoinGroup(JoinGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    SyncGroup(SyncGroupResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
}

/// Encodes `size | response header | body`. The header version follows the request's API
/// and version (ApiVersions always uses header v0, which `response_header_version` knows).
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    response: &Response,
) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    encode_header_and_body(&mut buf, api_key, api_version, correlation_id, response)?;
    let size = frame_size(buf.len() - 4, api_key, api_version)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// The response header (at the version that goes with the request's) and the body, into
/// any encoding buffer: the one encoding path behind both frame builders.
fn encode_header_and_body<B: kafka_protocol::protocol::buf::ByteBufMut>(
    buf: &mut B,
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    response: &Response,
) -> Result<(), ProtocolError> {
    let fail = |e: anyhow::Error| ProtocolError::Encode {
        api_key: api_key as i16,
        api_version,
        reason: e.to_string(),
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(buf, api_key.response_header_version(api_version))
        .map_err(fail)?;
    response.encode_body(buf, api_version).map_err(fail)
}

/// The 4-byte size prefix of a frame of `len` bytes (header and body).
fn frame_size(len: usize, api_key: ApiKey, api_version: i16) -> Result<i32, ProtocolError> {
    i32::try_from(len).map_err(|_| ProtocolError::Encode {
        api_key: api_key as i16,
        api_version,
        reason: format!("response of {len} bytes is too large for a frame"),
    })
}

/// Record sets at least this large travel by reference (below it a copy is cheaper than
/// another iovec).
const SPLICE_MIN: usize = 4096;

/// Encodes `size | response header | body` like `encode_response`, but the record sets in
/// `record_sets` (byte strings the response holds, e.g. a Fetch answer's batches) are not
/// copied into the frame: the frame comes back as parts, to be written with one vectored
/// write, and those parts share the record sets' memory.
pub fn encode_response_parts(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    response: &Response,
    record_sets: &[Bytes],
) -> Result<Vec<Bytes>, ProtocolError> {
    let mut buf = SplicingBuf {
        done: Vec::new(),
        done_len: 0,
        head: BytesMut::with_capacity(256),
        keep: record_sets,
        next_kept: 0,
    };
    encode_header_and_body(&mut buf, api_key, api_version, correlation_id, response)?;
    let mut parts = buf.finish();
    let size = frame_size(parts.iter().map(Bytes::len).sum(), api_key, api_version)?;
    parts.insert(0, Bytes::copy_from_slice(&size.to_be_bytes()));
    Ok(parts)
}

/// An encoding buffer that keeps known byte strings by reference: `put_slice` of exactly
/// one of `keep` closes the current chunk and appends a clone of that `Bytes` (a reference
/// count, no copy). Offsets (`ByteBufMut::seek`/`range`, used by kafka-protocol only while
/// encoding record batches) address the logical stream; reaching back past a kept part
/// flattens the buffer, so every use stays correct.
struct SplicingBuf<'a> {
    done: Vec<Bytes>,
    done_len: usize,
    head: BytesMut,
    keep: &'a [Bytes],
    /// Where in `keep` to look first: record sets are encoded in the order they were
    /// collected, so the search is one comparison per record set, not one per pair.
    next_kept: usize,
}

impl SplicingBuf<'_> {
    fn finish(mut self) -> Vec<Bytes> {
        if !self.head.is_empty() {
            self.done.push(self.head.freeze());
        }
        self.done
    }

    /// Copies everything into `head` (only if an encoder reaches back past a kept part).
    fn flatten(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let mut all = BytesMut::with_capacity(self.done_len + self.head.len());
        for part in self.done.drain(..) {
            all.extend_from_slice(&part);
        }
        all.extend_from_slice(&self.head);
        self.head = all;
        self.done_len = 0;
    }
}

// SAFETY: every method delegates to `head`, a BytesMut, except `put_slice`, which only
// appends through safe calls.
unsafe impl BufMut for SplicingBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's contract is the same as BytesMut's.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= SPLICE_MIN {
            let is_src = |k: &Bytes| k.as_ptr() == src.as_ptr() && k.len() == src.len();
            let found = (self.next_kept..self.keep.len())
                .chain(0..self.next_kept)
                .find(|&i| is_src(&self.keep[i]));
            if let Some(i) = found {
                self.next_kept = i + 1;
                let kept = &self.keep[i];
                if !self.head.is_empty() {
                    let head = self.head.split().freeze();
                    self.done_len += head.len();
                    self.done.push(head);
                }
                self.done_len += kept.len();
                self.done.push(kept.clone());
                return;
            }
        }
        self.head.extend_from_slice(src);
    }
}

impl kafka_protocol::protocol::buf::ByteBufMut for SplicingBuf<'_> {
    fn offset(&self) -> usize {
        self.done_len + self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        if offset < self.done_len {
            self.flatten();
        }
        self.head.resize(offset - self.done_len, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        if r.start < self.done_len {
            self.flatten();
        }
        let base = self.done_len;
        &mut self.head[r.start - base..r.end - base]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_v3_uses_header_v0_and_no_default_tagged_fields() {
        let resp = Response::ApiVersions(crate::versions::api_versions_response(0));
        let frame = encode_response(ApiKey::ApiVersions, 3, 7, &resp).unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4);
        // correlation id, then directly the error code: no header tagged-field byte.
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        assert_eq!(&frame[8..10], &0i16.to_be_bytes());
        // ... and the body ends with throttle time and an empty tagged-field section.
        assert_eq!(frame[frame.len() - 1], 0);
        assert_eq!(
            &frame[frame.len() - 5..frame.len() - 1],
            &0i32.to_be_bytes()
        );
    }

    fn fetch_with(records: &[Bytes]) -> Response {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(7)
                    .with_records(Some(r.clone()))
            })
            .collect();
        Response::Fetch(FetchResponse::default().with_responses(
            vec![FetchableTopicResponse::default()
                .with_topic(TopicName::from(
                    kafka_protocol::protocol::StrBytes::from_static_str("t"),
                ))
                .with_partitions(partitions)],
        ))
    }

    #[test]
    fn spliced_fetch_frames_equal_the_copied_ones_and_share_the_records() {
        let big = Bytes::from((0..20_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let other = Bytes::from(vec![9u8; 5000]);
        let small = Bytes::from_static(b"tiny record set");
        let records = [big.clone(), small.clone(), other.clone()];
        let resp = fetch_with(&records);
        for version in [4, 11, 12, 13, 16, 17] {
            let whole = encode_response(ApiKey::Fetch, version, 42, &resp).unwrap();
            let parts = encode_response_parts(ApiKey::Fetch, version, 42, &resp, &records).unwrap();
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, whole.to_vec(), "version {version}");
            // The two large record sets are parts of their own, pointing at the originals.
            for r in [&big, &other] {
                assert!(
                    parts
                        .iter()
                        .any(|p| p.as_ptr() == r.as_ptr() && p.len() == r.len()),
                    "version {version}: record set copied"
                );
            }
            assert!(!parts.iter().any(|p| p.as_ptr() == small.as_ptr()));
        }
    }

    #[test]
    fn spliced_encoding_of_other_responses_is_one_copy_of_the_frame() {
        let resp = Response::Metadata(MetadataResponse::default());
        let whole = encode_response(ApiKey::Metadata, 12, 3, &resp).unwrap();
        let parts = encode_response_parts(ApiKey::Metadata, 12, 3, &resp, &[]).unwrap();
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(joined, whole.to_vec());
    }

    #[test]
    fn reaching_back_past_a_kept_part_flattens_correctly() {
        use kafka_protocol::protocol::buf::ByteBufMut;
        let kept = Bytes::from(vec![1u8; SPLICE_MIN]);
        let keep = [kept.clone()];
        let mut buf = SplicingBuf {
            done: Vec::new(),
            done_len: 0,
            head: BytesMut::new(),
            keep: &keep,
            next_kept: 0,
        };
        buf.put_slice(b"ab");
        buf.put_slice(&kept);
        buf.put_slice(b"cd");
        assert_eq!(buf.offset(), SPLICE_MIN + 4);
        buf.range(0..1)[0] = b'X';
        let joined: Vec<u8> = buf
            .finish()
            .iter()
            .flat_map(|p| p.iter().copied())
            .collect();
        let mut want = b"Xb".to_vec();
        want.extend_from_slice(&kept);
        want.extend_from_slice(b"cd");
        assert_eq!(joined, want);
    }

    #[test]
    fn flexible_responses_carry_header_tagged_fields() {
        let resp = Response::Metadata(MetadataResponse::default());
        let frame = encode_response(ApiKey::Metadata, 12, 1, &resp).unwrap();
        assert_eq!(&frame[4..8], &1i32.to_be_bytes());
        assert_eq!(frame[8], 0, "empty header tagged fields");
    }
}
