//! Request headers, read by hand first.
//!
//! Every request header starts with api key (i16), api version (i16) and correlation id
//! (i32), whatever its version. Reading those ourselves means a request for an API or
//! version we do not serve can still be answered (ApiVersions) or refused with a clear log
//! line, instead of failing inside a generic decoder.

use crate::ProtocolError;

/// The fixed first 8 bytes of every request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeaderInfo {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn peek_header(frame: &[u8]) -> Result<RequestHeaderInfo, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::TooShort { size: frame.len() });
    }
    Ok(RequestHeaderInfo {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fixed_fields() {
        let frame = [0, 18, 0, 3, 0, 0, 1, 2, 0xff];
        assert_eq!(
            peek_header(&frame).unwrap(),
            RequestHeaderInfo {
                api_key: 18,
                api_version: 3,
                correlation_id: 258
            }
        );
        assert!(matches!(
            peek_header(&frame[..7]),
            Err(ProtocolError::TooShort { size: 7 })
        ));
    }
}
