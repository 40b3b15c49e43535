//! gregor-protocol: the Kafka wire protocol as gregor speaks it.
//!
//! A request travels `frame` (size-prefixed bytes, size checked before allocation) →
//! `header` (api key, version and correlation id read by hand, so that an unknown key or
//! version can still be answered or refused cleanly) → `schema` (every length in the body
//! checked against the bytes left, so that decoding cannot be made to allocate by a count) →
//! `request` (typed `kafka-protocol` structs) and back through `response` (a Fetch answer's large record sets as `stand_in`s,
//! which the broker fills from the segment files). `versions` is the single table of what gregor
//! serves; ApiVersions advertises exactly that table.

#[cfg(test)]
mod alloc_guard;
pub mod client;
pub mod controller_api;
pub mod error;
pub mod frame;
pub mod header;
pub mod request;
pub mod response;
pub mod schema;
pub mod stand_in;
pub mod versions;

pub use error::ProtocolError;
pub use frame::{FrameError, FrameReader, DEFAULT_MAX_REQUEST_BYTES};
pub use header::{peek_header, RequestHeaderInfo};
pub use request::{decode_request, DecodedRequest, Request};
pub use response::{encode_response, encode_response_parts, FramePart, Response};
pub use stand_in::stand_in;
pub use versions::{api_versions_table, is_served, served_range, ApiRange, SUPPORTED_APIS};

/// Re-exported so that the broker and its tests use the same generated message types.
pub use kafka_protocol;
