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
            fn encode_body(&self, buf: &mut BytesMut, version: i16) -> anyhow::Result<()> {
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
    let fail = |e: anyhow::Error| ProtocolError::Encode {
        api_key: api_key as i16,
        api_version,
        reason: e.to_string(),
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api_key.response_header_version(api_version))
        .map_err(fail)?;
    response.encode_body(&mut buf, api_version).map_err(fail)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
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

    #[test]
    fn flexible_responses_carry_header_tagged_fields() {
        let resp = Response::Metadata(MetadataResponse::default());
        let frame = encode_response(ApiKey::Metadata, 12, 1, &resp).unwrap();
        assert_eq!(&frame[4..8], &1i32.to_be_bytes());
        assert_eq!(frame[8], 0, "empty header tagged fields");
    }
}
