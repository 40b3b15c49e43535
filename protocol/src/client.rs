//! The client side of the protocol, for the requests one broker sends another (a follower's
//! Fetch and OffsetForLeaderEpoch): a typed request framed with its header, and the typed
//! answer read back from a response frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::ProtocolError;

/// The frame of `req` at `version`: size prefix, request header, body.
pub fn encode_request<R: Request>(
    version: i16,
    correlation_id: i32,
    client_id: &str,
    req: &R,
) -> Result<Bytes, ProtocolError> {
    let encode_error = |reason: String| ProtocolError::Encode {
        api_key: R::KEY,
        api_version: version,
        reason,
    };
    let key = ApiKey::try_from(R::KEY).map_err(|_| encode_error("unknown api key".into()))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut frame = BytesMut::with_capacity(256);
    frame.put_i32(0);
    header
        .encode(&mut frame, key.request_header_version(version))
        .map_err(|e| encode_error(e.to_string()))?;
    req.encode(&mut frame, version)
        .map_err(|e| encode_error(e.to_string()))?;
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame.freeze())
}

/// Reads a response frame (without its size prefix) to `R` at `version`: the correlation id
/// and the typed response.
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
    use kafka_protocol::messages::{FetchRequest, FetchResponse};

    #[test]
    fn a_request_frame_is_read_back_by_the_server_side_decoder() {
        let req = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_replica_id(kafka_protocol::messages::BrokerId(2));
        let frame = encode_request(12, 7, "gregor-replica-fetcher-2", &req).unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4);
        let decoded = crate::decode_request(BytesMut::from(&frame[4..])).unwrap();
        assert_eq!(decoded.correlation_id, 7);
        assert_eq!(
            decoded.client_id.as_deref(),
            Some("gregor-replica-fetcher-2")
        );
        match decoded.request {
            crate::Request::Fetch(f) => {
                assert_eq!(f.max_wait_ms, 500);
                assert_eq!(f.replica_id.0, 2);
            }
            other => panic!("not a fetch: {other:?}"),
        }
    }

    #[test]
    fn a_response_frame_decodes_and_leftover_bytes_are_refused() {
        let resp = FetchResponse::default().with_throttle_time_ms(3);
        let mut frame = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(9)
            .encode(&mut frame, FetchResponse::header_version(12))
            .unwrap();
        resp.encode(&mut frame, 12).unwrap();
        let (correlation, decoded) =
            decode_response::<FetchRequest>(12, frame.clone().freeze()).unwrap();
        assert_eq!((correlation, decoded.throttle_time_ms), (9, 3));
        frame.put_u8(0);
        assert!(decode_response::<FetchRequest>(12, frame.freeze()).is_err());
    }
}
