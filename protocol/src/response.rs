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
    DescribeLogDirs(DescribeLogDirsResponse),
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
    ElectLeaders(ElectLeadersResponse),
    UpdateFeatures(UpdateFeaturesResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
    AlterPartition(AlterPartitionResponse),
    AllocateProducerIds(AllocateProducerIdsResponse),
    AlterPartitionReassignments(AlterPartitionReassignmentsResponse),
    ListPartitionReassignments(ListPartitionReassignmentsResponse),
    DescribeClientQuotas(DescribeClientQuotasResponse),
    AlterClientQuotas(AlterClientQuotasResponse),
    SaslHandshake(SaslHandshakeResponse),
    SaslAuthenticate(SaslAuthenticateResponse),
    DescribeUserScramCredentials(DescribeUserScramCredentialsResponse),
    AlterUserScramCredentials(AlterUserScramCredentialsResponse),
    DescribeAcls(DescribeAclsResponse),
    CreateAcls(CreateAclsResponse),
    DeleteAcls(DeleteAclsResponse),
    WriteTxnMarkers(WriteTxnMarkersResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    DescribeProducers(DescribeProducersResponse),
    DescribeTransactions(DescribeTransactionsResponse),
    ListTransactions(ListTransactionsResponse),
}

impl Response {
    /// Sets throttle_time_ms (a client's quota wait) where the response has one: all but the
    /// SASL responses, which are answered before a client is known.
    pub fn set_throttle_time_ms(&mut self, ms: i32) {
        macro_rules! set {
            ($($variant:ident),* $(,)?) => {
                match self {
                    $(Response::$variant(r) => r.throttle_time_ms = ms,)*
                    Response::SaslHandshake(_)
                    | Response::SaslAuthenticate(_)
                    | Response::WriteTxnMarkers(_) => {}
                }
            };
        }
        set!(
            Produce,
            Fetch,
            ListOffsets,
            Metadata,
            ApiVersions,
            CreateTopics,
            DeleteTopics,
            DeleteRecords,
            InitProducerId,
            OffsetForLeaderEpoch,
            DescribeConfigs,
            CreatePartitions,
            DescribeCluster,
            DescribeLogDirs,
            FindCoordinator,
            AlterConfigs,
            IncrementalAlterConfigs,
            OffsetCommit,
            OffsetFetch,
            JoinGroup,
            Heartbeat,
            LeaveGroup,
            SyncGroup,
            DescribeGroups,
            ListGroups,
            DeleteGroups,
            OffsetDelete,
            ElectLeaders,
            UpdateFeatures,
            ConsumerGroupHeartbeat,
            ConsumerGroupDescribe,
            AlterPartition,
            AllocateProducerIds,
            AlterPartitionReassignments,
            ListPartitionReassignments,
            DescribeClientQuotas,
            AlterClientQuotas,
            DescribeUserScramCredentials,
            AlterUserScramCredentials,
            DescribeAcls,
            CreateAcls,
            DeleteAcls,
            AddPartitionsToTxn,
            AddOffsetsToTxn,
            EndTxn,
            TxnOffsetCommit,
            DescribeProducers,
            DescribeTransactions,
            ListTransactions,
        );
    }
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

/// A piece of an encoded frame: bytes, or the gap left by a record-set stand-in
/// (`stand_in::stand_in`), to be filled with `len` bytes of whatever the stand-in stood
/// for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramePart {
    Bytes(Bytes),
    Gap { index: usize, len: usize },
}

/// Encodes `size | response header | body` like `encode_response`, but every record-set
/// stand-in in the response becomes a `FramePart::Gap` instead of being copied: the caller
/// writes the real record set in its place (a Fetch answer's file ranges go out with
/// sendfile). The size prefix counts the gaps.
pub fn encode_response_parts(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    response: &Response,
) -> Result<Vec<FramePart>, ProtocolError> {
    let mut buf = GapBuf {
        done: Vec::new(),
        done_len: 0,
        head: BytesMut::with_capacity(256),
        reached_into_gap: false,
    };
    encode_header_and_body(&mut buf, api_key, api_version, correlation_id, response)?;
    if buf.reached_into_gap {
        return Err(ProtocolError::Encode {
            api_key: api_key as i16,
            api_version,
            reason: "the encoder reached back into a record-set gap".into(),
        });
    }
    let mut parts = buf.finish();
    let len = parts.iter().map(FramePart::len).sum();
    let size = frame_size(len, api_key, api_version)?;
    parts.insert(
        0,
        FramePart::Bytes(Bytes::copy_from_slice(&size.to_be_bytes())),
    );
    Ok(parts)
}

impl FramePart {
    pub fn len(&self) -> usize {
        match self {
            FramePart::Bytes(b) => b.len(),
            FramePart::Gap { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An encoding buffer that leaves a gap where the encoder puts a record-set stand-in.
/// Offsets (`ByteBufMut::seek`/`range`, which kafka-protocol uses only while encoding
/// record batches, never in a Fetch answer) address the logical stream; reaching back past
/// a gap cannot be served and fails the encoding.
struct GapBuf {
    done: Vec<FramePart>,
    done_len: usize,
    head: BytesMut,
    reached_into_gap: bool,
}

impl GapBuf {
    fn finish(mut self) -> Vec<FramePart> {
        if !self.head.is_empty() {
            self.done.push(FramePart::Bytes(self.head.freeze()));
        }
        self.done
    }

    /// Makes `offset` addressable in `head`: possible only while nothing was set aside.
    fn reach_back(&mut self, offset: usize) -> bool {
        if offset >= self.done_len {
            return true;
        }
        self.reached_into_gap = true;
        false
    }
}

// SAFETY: every method delegates to `head`, a BytesMut, except `put_slice`, which only
// appends through safe calls.
unsafe impl BufMut for GapBuf {
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
        let Some(index) = crate::stand_in::stand_in_index(src) else {
            self.head.extend_from_slice(src);
            return;
        };
        if !self.head.is_empty() {
            let head = self.head.split().freeze();
            self.done_len += head.len();
            self.done.push(FramePart::Bytes(head));
        }
        self.done_len += src.len();
        self.done.push(FramePart::Gap {
            index,
            len: src.len(),
        });
    }
}

impl kafka_protocol::protocol::buf::ByteBufMut for GapBuf {
    fn offset(&self) -> usize {
        self.done_len + self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        if self.reach_back(offset) {
            self.head.resize(offset - self.done_len, 0);
        }
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        if !self.reach_back(r.start) {
            // Scratch space: the encoding is failed by `reached_into_gap`.
            self.head.resize(self.head.len().max(r.len()), 0);
            return &mut self.head[..r.len()];
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

    /// Joins a frame's parts, filling each gap with the record set it stands for.
    fn filled(parts: &[FramePart], record_sets: &[Bytes]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            match p {
                FramePart::Bytes(b) => out.extend_from_slice(b),
                FramePart::Gap { index, len } => {
                    assert_eq!(record_sets[*index].len(), *len);
                    out.extend_from_slice(&record_sets[*index]);
                }
            }
        }
        out
    }

    #[test]
    fn gaps_filled_with_their_record_sets_give_the_frame_encoded_with_the_records() {
        let big = Bytes::from((0..20_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let other = Bytes::from(vec![9u8; 5000]);
        let small = Bytes::from_static(b"tiny record set");
        let real = [big.clone(), small.clone(), other.clone()];
        // What the fetch handler sends: stand-ins for the two large sets, the small in memory.
        let sent = [
            crate::stand_in::stand_in(0, big.len()).unwrap(),
            small.clone(),
            crate::stand_in::stand_in(1, other.len()).unwrap(),
        ];
        let by_index = [big.clone(), other.clone()];
        for version in [4, 11, 12, 13, 16, 17] {
            let whole = encode_response(ApiKey::Fetch, version, 42, &fetch_with(&real)).unwrap();
            let parts =
                encode_response_parts(ApiKey::Fetch, version, 42, &fetch_with(&sent)).unwrap();
            assert_eq!(
                filled(&parts, &by_index),
                whole.to_vec(),
                "version {version}"
            );
            let gaps: Vec<(usize, usize)> = parts
                .iter()
                .filter_map(|p| match p {
                    FramePart::Gap { index, len } => Some((*index, *len)),
                    FramePart::Bytes(_) => None,
                })
                .collect();
            assert_eq!(gaps, vec![(0, big.len()), (1, other.len())]);
        }
    }

    #[test]
    fn responses_without_stand_ins_are_one_copy_of_the_frame() {
        let resp = Response::Metadata(MetadataResponse::default());
        let whole = encode_response(ApiKey::Metadata, 12, 3, &resp).unwrap();
        let parts = encode_response_parts(ApiKey::Metadata, 12, 3, &resp).unwrap();
        assert_eq!(filled(&parts, &[]), whole.to_vec());
        assert_eq!(parts.len(), 2, "size prefix and one body part");
    }

    #[test]
    fn reaching_back_past_a_gap_fails_instead_of_sending_stand_in_bytes() {
        use kafka_protocol::protocol::buf::ByteBufMut;
        let gap = crate::stand_in::stand_in(3, 8192).unwrap();
        let mut buf = GapBuf {
            done: Vec::new(),
            done_len: 0,
            head: BytesMut::new(),
            reached_into_gap: false,
        };
        buf.put_slice(b"ab");
        buf.put_slice(&gap);
        buf.put_slice(b"cd");
        assert_eq!(buf.offset(), 8192 + 4);
        // Within the tail: fine.
        buf.range(8194..8195)[0] = b'X';
        assert!(!buf.reached_into_gap);
        buf.range(0..1)[0] = b'Y';
        assert!(buf.reached_into_gap);
        let parts = buf.finish();
        assert_eq!(parts[0], FramePart::Bytes(Bytes::from_static(b"ab")));
        assert_eq!(
            parts[1],
            FramePart::Gap {
                index: 3,
                len: 8192
            }
        );
    }

    #[test]
    fn flexible_responses_carry_header_tagged_fields() {
        let resp = Response::Metadata(MetadataResponse::default());
        let frame = encode_response(ApiKey::Metadata, 12, 1, &resp).unwrap();
        assert_eq!(&frame[4..8], &1i32.to_be_bytes());
        assert_eq!(frame[8], 0, "empty header tagged fields");
    }
}
