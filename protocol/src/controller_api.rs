//! Kafka's ZooKeeper-mode controller RPCs: LeaderAndIsr (key 4), StopReplica (5),
//! UpdateMetadata (6) and ControlledShutdown (7).
//!
//! Kafka 4 removed them, and kafka-protocol 0.16 removed them with it; a Kafka 3.9 controller
//! still sends the first three to every broker, and a Kafka 3.9 broker sends the last to its
//! controller. They are decoded and encoded here with kafka-protocol 0.15.1 (generated from
//! Kafka 3.8, whose shapes of these four are those of 3.9: `scripts/extract-request-schemas.py
//! --controller-apis` writes them to `schema/controller-requests.json`, which `schema`'s length
//! walk checks every request against before the decoder runs, as for every other API).
//!
//! The message types are 0.15.1's own: their `StrBytes`, `BrokerId` and `TopicName` are not
//! those of the rest of the crate, so they are re-exported from here (`zk_messages`) and
//! converted where the broker reads them.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol_zk::messages::{
    ApiKey, ControlledShutdownRequest, ControlledShutdownResponse, LeaderAndIsrRequest,
    LeaderAndIsrResponse, RequestHeader, ResponseHeader, StopReplicaRequest, StopReplicaResponse,
    UpdateMetadataRequest, UpdateMetadataResponse,
};
use kafka_protocol_zk::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::ProtocolError;

/// The generated types of kafka-protocol 0.15.1 (only these four APIs' are meant to be used).
pub use kafka_protocol_zk::messages as zk_messages;
pub use kafka_protocol_zk::protocol::Request as ZkRequest;
pub use kafka_protocol_zk::protocol::StrBytes as ZkStrBytes;

pub const LEADER_AND_ISR: i16 = 4;
pub const STOP_REPLICA: i16 = 5;
pub const UPDATE_METADATA: i16 = 6;
pub const CONTROLLED_SHUTDOWN: i16 = 7;

/// The versions served: Kafka 3.9's whole ranges (`inter.broker.protocol.version` 3.9 sends
/// LeaderAndIsr v7, StopReplica v4, UpdateMetadata v8 and ControlledShutdown v3), except
/// ControlledShutdown v0, whose request header (v0, without a client id) the header decoder
/// of kafka-protocol 0.18 no longer reads (Kafka brokers before 0.9.0 sent it).
pub fn served_range(api_key: i16) -> Option<(i16, i16)> {
    match api_key {
        LEADER_AND_ISR => Some((0, 7)),
        STOP_REPLICA => Some((0, 4)),
        UPDATE_METADATA => Some((0, 8)),
        CONTROLLED_SHUTDOWN => Some((1, 3)),
        _ => None,
    }
}

/// A controller RPC request.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerRequest {
    LeaderAndIsr(LeaderAndIsrRequest),
    StopReplica(StopReplicaRequest),
    UpdateMetadata(UpdateMetadataRequest),
    ControlledShutdown(ControlledShutdownRequest),
}

/// The answer to a `ControllerRequest`.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerResponse {
    LeaderAndIsr(LeaderAndIsrResponse),
    StopReplica(StopReplicaResponse),
    UpdateMetadata(UpdateMetadataResponse),
    ControlledShutdown(ControlledShutdownResponse),
}

impl ControllerRequest {
    pub fn api_key(&self) -> i16 {
        match self {
            ControllerRequest::LeaderAndIsr(_) => LEADER_AND_ISR,
            ControllerRequest::StopReplica(_) => STOP_REPLICA,
            ControllerRequest::UpdateMetadata(_) => UPDATE_METADATA,
            ControllerRequest::ControlledShutdown(_) => CONTROLLED_SHUTDOWN,
        }
    }
}

impl ControllerResponse {
    pub fn api_key(&self) -> i16 {
        match self {
            ControllerResponse::LeaderAndIsr(_) => LEADER_AND_ISR,
            ControllerResponse::StopReplica(_) => STOP_REPLICA,
            ControllerResponse::UpdateMetadata(_) => UPDATE_METADATA,
            ControllerResponse::ControlledShutdown(_) => CONTROLLED_SHUTDOWN,
        }
    }
}

fn key(api_key: i16) -> Result<ApiKey, String> {
    if served_range(api_key).is_none() {
        return Err(format!("api key {api_key} is not a controller RPC"));
    }
    ApiKey::try_from(api_key).map_err(|_| format!("unknown api key {api_key}"))
}

/// The request header version of a controller RPC at `version`.
pub fn request_header_version(api_key: i16, version: i16) -> Option<i16> {
    key(api_key).ok().map(|k| k.request_header_version(version))
}

/// Decodes a request body (after its header, already checked by `schema::check_body`).
pub fn decode_request_body(
    api_key: i16,
    version: i16,
    body: &mut Bytes,
) -> anyhow::Result<ControllerRequest> {
    Ok(match api_key {
        LEADER_AND_ISR => {
            ControllerRequest::LeaderAndIsr(LeaderAndIsrRequest::decode(body, version)?)
        }
        STOP_REPLICA => ControllerRequest::StopReplica(StopReplicaRequest::decode(body, version)?),
        UPDATE_METADATA => {
            ControllerRequest::UpdateMetadata(UpdateMetadataRequest::decode(body, version)?)
        }
        CONTROLLED_SHUTDOWN => {
            ControllerRequest::ControlledShutdown(ControlledShutdownRequest::decode(body, version)?)
        }
        other => anyhow::bail!("api key {other} is not a controller RPC"),
    })
}

fn encode_body<T: Encodable>(body: &T, out: &mut BytesMut, version: i16) -> Result<(), String> {
    body.encode(out, version).map_err(|e| e.to_string())
}

/// The response frame (size prefix, header, body) of `response` at `version`.
pub fn encode_response(
    version: i16,
    correlation_id: i32,
    response: &ControllerResponse,
) -> Result<Bytes, ProtocolError> {
    let api_key = response.api_key();
    let fail = |reason: String| ProtocolError::Encode {
        api_key,
        api_version: version,
        reason,
    };
    let header_version = match response {
        ControllerResponse::LeaderAndIsr(_) => LeaderAndIsrResponse::header_version(version),
        ControllerResponse::StopReplica(_) => StopReplicaResponse::header_version(version),
        ControllerResponse::UpdateMetadata(_) => UpdateMetadataResponse::header_version(version),
        ControllerResponse::ControlledShutdown(_) => {
            ControlledShutdownResponse::header_version(version)
        }
    };
    let mut frame = BytesMut::with_capacity(128);
    frame.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut frame, header_version)
        .map_err(|e| fail(e.to_string()))?;
    match response {
        ControllerResponse::LeaderAndIsr(r) => encode_body(r, &mut frame, version),
        ControllerResponse::StopReplica(r) => encode_body(r, &mut frame, version),
        ControllerResponse::UpdateMetadata(r) => encode_body(r, &mut frame, version),
        ControllerResponse::ControlledShutdown(r) => encode_body(r, &mut frame, version),
    }
    .map_err(fail)?;
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame.freeze())
}

/// The request frame (size prefix, header, body) of `req` at `version`, for a broker that
/// sends one (ControlledShutdown to the controller; the controller's requests to brokers).
pub fn encode_request<R: Request>(
    version: i16,
    correlation_id: i32,
    client_id: &str,
    req: &R,
) -> Result<Bytes, ProtocolError> {
    let fail = |reason: String| ProtocolError::Encode {
        api_key: R::KEY,
        api_version: version,
        reason,
    };
    let api_key = key(R::KEY).map_err(fail)?;
    let mut frame = BytesMut::with_capacity(256);
    frame.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
        .encode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| fail(e.to_string()))?;
    req.encode(&mut frame, version)
        .map_err(|e| fail(e.to_string()))?;
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame.freeze())
}

/// Reads a response frame (without its size prefix) of `R` at `version`.
pub fn decode_response<R: Request>(
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, R::Response), ProtocolError> {
    let malformed = |what: &'static str, reason: String| ProtocolError::Malformed {
        what,
        api_key: R::KEY,
        api_version: version,
        reason,
    };
    let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
        .map_err(|e| malformed("response header", e.to_string()))?;
    let response = R::Response::decode(&mut frame, version)
        .map_err(|e| malformed("response body", e.to_string()))?;
    if frame.has_remaining() {
        return Err(malformed(
            "response body",
            format!("{} bytes left over", frame.remaining()),
        ));
    }
    Ok((header.correlation_id, response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol_zk::messages::leader_and_isr_request::{
        LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
    };
    use kafka_protocol_zk::messages::{BrokerId, TopicName};

    fn leader_and_isr() -> LeaderAndIsrRequest {
        let state = LeaderAndIsrPartitionState::default()
            .with_partition_index(2)
            .with_controller_epoch(5)
            .with_leader(BrokerId(1))
            .with_leader_epoch(9)
            .with_isr(vec![BrokerId(1), BrokerId(3)])
            .with_partition_epoch(12)
            .with_replicas(vec![BrokerId(1), BrokerId(2), BrokerId(3)]);
        LeaderAndIsrRequest::default()
            .with_controller_id(BrokerId(1))
            .with_controller_epoch(5)
            .with_broker_epoch(4242)
            .with_topic_states(vec![LeaderAndIsrTopicState::default()
                .with_topic_name(TopicName(StrBytes::from_static_str("t")))
                .with_topic_id(uuid::Uuid::from_u128(7))
                .with_partition_states(vec![state])])
    }

    #[test]
    fn a_leader_and_isr_request_framed_as_a_controller_sends_it_is_decoded_by_the_broker() {
        let req = leader_and_isr();
        let frame = encode_request(7, 11, "controller-1", &req).unwrap();
        let decoded = crate::decode_request(BytesMut::from(&frame[4..])).unwrap();
        assert_eq!(decoded.api_key, LEADER_AND_ISR);
        assert_eq!(decoded.correlation_id, 11);
        assert_eq!(decoded.client_id.as_deref(), Some("controller-1"));
        match decoded.request {
            crate::Request::Controller(ControllerRequest::LeaderAndIsr(got)) => {
                assert_eq!(got, req)
            }
            other => panic!("not a LeaderAndIsr: {other:?}"),
        }
    }

    #[test]
    fn every_served_version_decodes_a_body_written_from_its_schema() {
        for key in [
            LEADER_AND_ISR,
            STOP_REPLICA,
            UPDATE_METADATA,
            CONTROLLED_SHUTDOWN,
        ] {
            let (min, max) = served_range(key).unwrap();
            for version in min..=max {
                let body = crate::schema::sample_body(key, version, 1).unwrap();
                let mut frame = BytesMut::new();
                RequestHeader::default()
                    .with_request_api_key(key)
                    .with_request_api_version(version)
                    .with_correlation_id(3)
                    .with_client_id(Some(StrBytes::from_static_str("seed")))
                    .encode(&mut frame, request_header_version(key, version).unwrap())
                    .unwrap();
                frame.extend_from_slice(&body);
                let decoded = crate::decode_request(frame)
                    .unwrap_or_else(|e| panic!("api key {key} v{version}: {e}"));
                assert_eq!((decoded.api_key, decoded.correlation_id), (key, 3));
                assert!(
                    matches!(decoded.request, crate::Request::Controller(ref r) if r.api_key() == key)
                );
            }
        }
    }

    #[test]
    fn a_claimed_count_beyond_the_frame_is_refused_before_decoding() {
        // UpdateMetadata v0: controller id, controller epoch, then a partition-states array
        // claiming 2^31-1 entries with nothing after it.
        let mut body = BytesMut::new();
        body.put_i32(1);
        body.put_i32(1);
        body.put_i32(i32::MAX);
        assert!(crate::schema::check_body(UPDATE_METADATA, 0, &body).is_err());
    }

    #[test]
    fn responses_round_trip_at_every_served_version() {
        use kafka_protocol_zk::messages::controlled_shutdown_response::RemainingPartition;
        for version in 1..=3 {
            let resp = ControlledShutdownResponse::default()
                .with_error_code(0)
                .with_remaining_partitions(vec![RemainingPartition::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_index(3)]);
            let frame = encode_response(
                version,
                5,
                &ControllerResponse::ControlledShutdown(resp.clone()),
            )
            .unwrap();
            let (correlation, got) =
                decode_response::<ControlledShutdownRequest>(version, frame.slice(4..)).unwrap();
            assert_eq!((correlation, got), (5, resp));
        }
    }
}
