//! ApiVersions (key 18): the first request of every client. The table comes from
//! `gregor_protocol::versions`; an unknown (newer) version gets UNSUPPORTED_VERSION with
//! the v0 body so the client retries at a version we know.
//!
//! From v4 on the answer also carries the features (KIP-584): `transaction.version`
//! supported from 0 to 2 and the level the cluster finalized, with its epoch. Java clients
//! 4.x read it to choose transactions v2 (KIP-890 part 2).

use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::api_versions_response::{
    FinalizedFeatureKey, SupportedFeatureKey,
};
use gregor_protocol::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use gregor_protocol::versions::api_versions_response;

use super::str_bytes;
use crate::metadata::{FinalizedFeatures, MAX_TRANSACTION_VERSION, TRANSACTION_VERSION_FEATURE};

/// The first version whose answer carries features. Kafka puts them in v3 already, but
/// Debian's kcat (librdkafka 2.0.2, which asks with v3) mis-parses a v3 answer carrying
/// them; Java clients 4.x ask with v4.
const FEATURES_FROM: i16 = 4;

pub fn handle(
    version: i16,
    _req: ApiVersionsRequest,
    features: &FinalizedFeatures,
) -> ApiVersionsResponse {
    let response = api_versions_response(0);
    if version < FEATURES_FROM {
        return response;
    }
    response
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(str_bytes(TRANSACTION_VERSION_FEATURE))
            .with_min_version(0)
            .with_max_version(MAX_TRANSACTION_VERSION)])
        .with_finalized_features_epoch(features.epoch)
        .with_finalized_features(
            features
                .levels
                .iter()
                .map(|(name, level)| {
                    FinalizedFeatureKey::default()
                        .with_name(str_bytes(name))
                        .with_min_version_level(*level)
                        .with_max_version_level(*level)
                })
                .collect(),
        )
}

pub fn unsupported_version() -> ApiVersionsResponse {
    api_versions_response(ResponseError::UnsupportedVersion.code())
}
