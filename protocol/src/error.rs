//! Errors of the protocol layer. Each one tells the server what to do with the connection:
//! all of them end it, except those the server can answer (see `request::DecodedRequest`).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProtocolError {
    /// The request is shorter than the fixed part of a request header.
    #[error("request of {size} bytes is too short for a request header")]
    TooShort { size: usize },
    /// An API key that Kafka does not define, or that gregor does not serve.
    #[error("unknown or unserved api key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    /// A known API at a version outside the range gregor serves.
    #[error("api key {api_key} version {api_version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    },
    /// The header or body does not decode at the version it claims.
    #[error("malformed {what} for api key {api_key} v{api_version}: {reason}")]
    Malformed {
        what: &'static str,
        api_key: i16,
        api_version: i16,
        reason: String,
    },
    /// A response could not be encoded (a bug on our side, never the client's fault).
    #[error("cannot encode response for api key {api_key} v{api_version}: {reason}")]
    Encode {
        api_key: i16,
        api_version: i16,
        reason: String,
    },
}
