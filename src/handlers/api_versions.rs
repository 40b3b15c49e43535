//! ApiVersions (key 18): the first request of every client. The table comes from
//! `gregor_protocol::versions`; an unknown (newer) version gets UNSUPPORTED_VERSION with
//! the v0 body so the client retries at a version we know.

use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use gregor_protocol::versions::api_versions_response;

pub fn handle(_version: i16, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    // No finalized features and no tagged fields carrying defaults: Debian's kcat
    // (librdkafka 2.0.2) mis-parses those in v3+ responses.
    api_versions_response(0)
}

pub fn unsupported_version() -> ApiVersionsResponse {
    api_versions_response(ResponseError::UnsupportedVersion.code())
}
