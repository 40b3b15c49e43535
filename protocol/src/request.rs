//! Typed requests: one variant per API gregor serves, decoded at the version the client sent.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::controller_api::{self, ControllerRequest};
use crate::header::peek_header;
use crate::schema::check_body;
use crate::versions::{is_served, served_range};
use crate::ProtocolError;

macro_rules! requests {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// A decoded request body.
        #[derive(Debug)]
        pub enum Request {
            $($variant($ty),)*
            /// An ApiVersions request at a version we do not know: answered with
            /// UNSUPPORTED_VERSION and the v0 body so that the client can downgrade.
            ApiVersionsUnsupported,
            /// A ZooKeeper-mode controller RPC (`controller_api`), which kafka-protocol 0.18
            /// no longer knows.
            Controller(ControllerRequest),
        }

        fn decode_body(key: ApiKey, body: &mut Bytes, version: i16) -> anyhow::Result<Request> {
            match key {
                $(ApiKey::$variant => Ok(Request::$variant(<$ty>::decode(body, version)?)),)*
                other => anyhow::bail!("no decoder for {other:?}"),
            }
        }

        /// The body encoded back by kafka-protocol (tests compare it with what was decoded).
        #[cfg(test)]
        fn encode_body(request: &Request, version: i16) -> anyhow::Result<BytesMut> {
            use kafka_protocol::protocol::Encodable;
            let mut out = BytesMut::new();
            match request {
                $(Request::$variant(body) => body.encode(&mut out, version)?,)*
                Request::ApiVersionsUnsupported | Request::Controller(_) => {
                    anyhow::bail!("not encoded here")
                }
            }
            Ok(out)
        }
    };
}

requests! {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    DeleteRecords(DeleteRecordsRequest),
    InitProducerId(InitProducerIdRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    DescribeConfigs(DescribeConfigsRequest),
    CreatePartitions(CreatePartitionsRequest),
    DescribeCluster(DescribeClusterRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    FindCoordinator(FindCoordinatorRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    JoinGroup(JoinGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    SyncGroup(SyncGroupRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    ElectLeaders(ElectLeadersRequest),
    UpdateFeatures(UpdateFeaturesRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    AlterPartition(AlterPartitionRequest),
    AllocateProducerIds(AllocateProducerIdsRequest),
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
    DescribeClientQuotas(DescribeClientQuotasRequest),
    AlterClientQuotas(AlterClientQuotasRequest),
    SaslHandshake(SaslHandshakeRequest),
    SaslAuthenticate(SaslAuthenticateRequest),
    DescribeUserScramCredentials(DescribeUserScramCredentialsRequest),
    AlterUserScramCredentials(AlterUserScramCredentialsRequest),
    DescribeAcls(DescribeAclsRequest),
    CreateAcls(CreateAclsRequest),
    DeleteAcls(DeleteAclsRequest),
    WriteTxnMarkers(WriteTxnMarkersRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    DescribeProducers(DescribeProducersRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
}

/// A request with the header fields the handlers need.
#[derive(Debug)]
pub struct DecodedRequest {
    /// The raw key: the controller RPCs have none in kafka-protocol 0.18's `ApiKey`.
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub request: Request,
}

/// Decodes one frame into a request, or says precisely why it cannot be served.
pub fn decode_request(frame: BytesMut) -> Result<DecodedRequest, ProtocolError> {
    let info = peek_header(&frame)?;
    if controller_api::served_range(info.api_key).is_some() {
        return decode_controller_request(frame, info);
    }
    let unknown = || ProtocolError::UnknownApiKey {
        api_key: info.api_key,
        correlation_id: info.correlation_id,
    };
    served_range(info.api_key).ok_or_else(unknown)?;
    let api_key = ApiKey::try_from(info.api_key).map_err(|_| unknown())?;
    let served = is_served(info.api_key, info.api_version);
    if !served && api_key != ApiKey::ApiVersions {
        return Err(ProtocolError::UnsupportedVersion {
            api_key: info.api_key,
            api_version: info.api_version,
            correlation_id: info.correlation_id,
        });
    }
    let mut buf = frame.freeze();
    let malformed = |what: &'static str, e: anyhow::Error| ProtocolError::Malformed {
        what,
        api_key: info.api_key,
        api_version: info.api_version,
        reason: e.to_string(),
    };
    // An ApiVersions request newer than ours may have a header or body we cannot parse:
    // all we need from it is the correlation id, which `peek_header` already read.
    if !served {
        return Ok(DecodedRequest {
            api_key: info.api_key,
            api_version: info.api_version,
            correlation_id: info.correlation_id,
            client_id: None,
            request: Request::ApiVersionsUnsupported,
        });
    }
    let header_version = api_key.request_header_version(info.api_version);
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| malformed("request header", e))?;
    // kafka-protocol reserves an array's whole claimed length before reading it: the body's
    // lengths are checked against the frame first (see `schema`).
    check_body(info.api_key, info.api_version, &buf).map_err(|e| malformed("body", e.into()))?;
    let request =
        decode_body(api_key, &mut buf, info.api_version).map_err(|e| malformed("body", e))?;
    Ok(DecodedRequest {
        api_key: info.api_key,
        api_version: info.api_version,
        correlation_id: info.correlation_id,
        client_id: header.client_id.map(|s| s.to_string()),
        request,
    })
}

/// `decode_request` for the controller RPCs: the same header, the same length walk, the
/// decoder of `controller_api`.
fn decode_controller_request(
    frame: BytesMut,
    info: crate::RequestHeaderInfo,
) -> Result<DecodedRequest, ProtocolError> {
    let served = controller_api::served_range(info.api_key)
        .is_some_and(|(min, max)| (min..=max).contains(&info.api_version));
    let header_version = controller_api::request_header_version(info.api_key, info.api_version);
    let (true, Some(header_version)) = (served, header_version) else {
        return Err(ProtocolError::UnsupportedVersion {
            api_key: info.api_key,
            api_version: info.api_version,
            correlation_id: info.correlation_id,
        });
    };
    let malformed = |what: &'static str, e: anyhow::Error| ProtocolError::Malformed {
        what,
        api_key: info.api_key,
        api_version: info.api_version,
        reason: e.to_string(),
    };
    let mut buf = frame.freeze();
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| malformed("request header", e))?;
    check_body(info.api_key, info.api_version, &buf).map_err(|e| malformed("body", e.into()))?;
    let request = controller_api::decode_request_body(info.api_key, info.api_version, &mut buf)
        .map_err(|e| malformed("body", e))?;
    Ok(DecodedRequest {
        api_key: info.api_key,
        api_version: info.api_version,
        correlation_id: info.correlation_id,
        client_id: header.client_id.map(|s| s.to_string()),
        request: Request::Controller(request),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn frame_of<R: Encodable + kafka_protocol::protocol::HeaderVersion>(
        key: ApiKey,
        version: i16,
        body: &R,
    ) -> BytesMut {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf
    }

    #[test]
    fn decodes_a_metadata_request() {
        let req = MetadataRequest::default().with_topics(None);
        let decoded = decode_request(frame_of(ApiKey::Metadata, 12, &req)).unwrap();
        assert_eq!(decoded.correlation_id, 42);
        assert_eq!(decoded.client_id.as_deref(), Some("test"));
        assert!(matches!(decoded.request, Request::Metadata(m) if m.topics.is_none()));
    }

    #[test]
    fn unknown_key_and_unsupported_version_are_refused() {
        let mut frame = BytesMut::from(&[0x7f, 0x00, 0, 1, 0, 0, 0, 9, 0, 0][..]);
        assert!(matches!(
            decode_request(frame.split()),
            Err(ProtocolError::UnknownApiKey {
                api_key: 0x7f00,
                correlation_id: 9
            })
        ));
        let req = ProduceRequest::default();
        // Produce v2 is advertised (v0) but not served.
        let mut f = frame_of(ApiKey::Produce, 3, &req);
        f[3] = 2;
        assert!(matches!(
            decode_request(f),
            Err(ProtocolError::UnsupportedVersion { api_version: 2, .. })
        ));
    }

    #[test]
    fn newer_api_versions_is_answered_not_refused() {
        let frame = BytesMut::from(&[0, 18, 0, 99, 0, 0, 0, 5, 1, 2, 3][..]);
        let decoded = decode_request(frame).unwrap();
        assert_eq!(decoded.correlation_id, 5);
        assert!(matches!(decoded.request, Request::ApiVersionsUnsupported));
    }

    /// A frame of the given raw body, with a header of the version the API key uses.
    fn frame_with_body(key: ApiKey, version: i16, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        buf.extend_from_slice(body);
        buf
    }

    #[test]
    fn every_served_version_reads_its_schema_the_way_the_decoder_does() {
        // A body written from the schema (arrays of 0, 1 and 2 elements, every optional and
        // tagged field present) decodes, and kafka-protocol encodes it back to the same bytes:
        // the length check and the decoder agree on where every field is.
        for r in crate::versions::SUPPORTED_APIS {
            for version in r.min..=r.max {
                for elements in 0..3 {
                    let body = crate::schema::sample_body(r.key as i16, version, elements)
                        .expect("a schema for every served API");
                    let decoded = decode_request(frame_with_body(r.key, version, &body))
                        .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", r.key));
                    let again = encode_body(&decoded.request, version).unwrap();
                    assert_eq!(&again[..], &body[..], "{:?} v{version}", r.key);
                }
            }
        }
    }

    #[test]
    fn no_length_in_any_served_request_makes_decoding_allocate_beyond_the_frame() {
        // Every position of every served request's sample body is overwritten with the largest
        // int32, int16 and varint lengths. Without the schema check, kafka-protocol reserves
        // gigabytes for such an array count, which the test allocator (alloc_guard) turns into
        // an abort of this test binary; with it, each frame is refused or decoded.
        let patches: [&[u8]; 3] = [
            &[0x7f, 0xff, 0xff, 0xff],
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x7f, 0xff],
        ];
        let mut refused = 0;
        let mut frames = 0;
        for r in crate::versions::SUPPORTED_APIS {
            for version in r.min..=r.max {
                let body = crate::schema::sample_body(r.key as i16, version, 2).unwrap();
                for at in 0..body.len() {
                    for patch in patches {
                        let mut bad = body.clone();
                        let end = (at + patch.len()).min(bad.len());
                        bad[at..end].copy_from_slice(&patch[..end - at]);
                        frames += 1;
                        if decode_request(frame_with_body(r.key, version, &bad)).is_err() {
                            refused += 1;
                        }
                    }
                }
            }
        }
        assert!(frames > 10_000, "{frames} frames");
        // Most patches land on a length; numbers and string bytes decode as other values.
        assert!(refused > frames / 4, "{refused} of {frames} refused");
    }

    #[test]
    fn the_nineteen_byte_request_is_malformed_not_fatal() {
        let frame = [
            0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, b'x', 0x7f, 0xff, 0xff,
            0xff,
        ];
        let err = decode_request(BytesMut::from(&frame[..])).unwrap_err();
        assert!(
            matches!(&err, ProtocolError::Malformed { what: "body", reason, .. }
                if reason.contains("Topics")),
            "{err}"
        );
    }

    #[test]
    fn truncated_body_is_malformed() {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))]));
        let mut f = frame_of(ApiKey::Metadata, 9, &req);
        f.truncate(f.len() - 4);
        assert!(matches!(
            decode_request(f),
            Err(ProtocolError::Malformed { what: "body", .. })
        ));
    }
}
