//! The one table of what gregor serves. ApiVersions advertises exactly this, the request
//! decoder refuses anything outside it, and the README's API table is written from it.
//!
//! Ranges follow Apache Kafka 4.0 (KIP-896 removed the old versions), with one deliberate
//! exception: Produce is advertised from v0 although only v3+ is served, because librdkafka
//! before 2.9 silently stops compressing when the broker's Produce minimum is not 0
//! (KAFKA-18659). A Produce v0-2 request is refused like any unsupported version.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::ApiVersionsResponse;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    /// Lowest version a request is served at.
    pub min: i16,
    pub max: i16,
    /// Lowest version advertised in ApiVersions (differs from `min` only for Produce).
    pub advertised_min: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange {
        key,
        min,
        max,
        advertised_min: min,
    }
}

pub const SUPPORTED_APIS: &[ApiRange] = &[
    ApiRange {
        key: ApiKey::Produce,
        min: 3,
        max: 12,
        advertised_min: 0,
    },
    api(ApiKey::Fetch, 4, 17),
    api(ApiKey::ListOffsets, 1, 10),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::CreatePartitions, 0, 3),
    // Preferred or unclean elections on request (kafka-leader-election.sh), at the controller.
    api(ApiKey::ElectLeaders, 0, 2),
    // Finalized feature levels (KIP-584, `kafka-features.sh upgrade/downgrade`), at the
    // controller: only `transaction.version`.
    api(ApiKey::UpdateFeatures, 0, 2),
    // Partition reassignment (kafka-reassign-partitions.sh, KIP-455), at the controller.
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::DescribeCluster, 0, 2),
    // kafka-log-dirs.sh; v0 is gone from Kafka 4.
    api(ApiKey::DescribeLogDirs, 1, 4),
    // Groups and transactional ids. librdkafka also infers LZ4 support (a 0.8.2 feature)
    // from its presence.
    api(ApiKey::FindCoordinator, 0, 6),
    // Consumer groups (classic protocol) and committed offsets.
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    // KIP-848 consumer groups (`group.protocol=consumer`).
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    // A leader's ISR change (KIP-497), served at the controller (NOT_CONTROLLER elsewhere).
    api(ApiKey::AlterPartition, 2, 3),
    // A Kafka 3.x broker's block of producer ids (KIP-730), served at the controller.
    api(ApiKey::AllocateProducerIds, 0, 0),
    // SASL authentication (KIP-152): the handshake names the mechanism, SaslAuthenticate
    // carries its tokens (after a v0 handshake: raw size-prefixed tokens). librdkafka takes
    // the v0 in the range as the sign that the broker has SASL at all.
    api(ApiKey::SaslHandshake, 0, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    // Client quotas (KIP-546): byte rates enforced.
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::AlterClientQuotas, 0, 1),
    // SCRAM credentials (KIP-554): kafka-configs.sh --entity-type users.
    api(ApiKey::DescribeUserScramCredentials, 0, 0),
    api(ApiKey::AlterUserScramCredentials, 0, 0),
    // ACLs (kafka-acls.sh), SECURITY_DISABLED without an authorizer; v0 is gone from Kafka 4.
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
    // A transaction coordinator's markers, appended as each partition's leader (v0 is gone
    // from Kafka 4; Kafka 3.9 coordinators send v1).
    api(ApiKey::WriteTxnMarkers, 1, 1),
    // Transactions at their coordinator. AddPartitionsToTxn v4+ is the partition leaders'
    // batched form (KIP-890 part 1: Kafka 3.6+ leaders verify a transactional batch's
    // partition at the coordinator). EndTxn v5 and TxnOffsetCommit v5 (with Produce v12)
    // are transactions v2 (KIP-890 part 2), used by clients once `transaction.version` 2
    // is finalized.
    api(ApiKey::AddPartitionsToTxn, 0, 5),
    api(ApiKey::AddOffsetsToTxn, 0, 4),
    api(ApiKey::EndTxn, 0, 5),
    api(ApiKey::TxnOffsetCommit, 0, 5),
    // Looking at transactions (KIP-664, kafka-transactions.sh): producers at a partition's
    // leader, transactional ids at their coordinator.
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::DescribeTransactions, 0, 0),
    api(ApiKey::ListTransactions, 0, 2),
];

/// The served range of an API key, if gregor serves it at all.
pub fn served_range(api_key: i16) -> Option<ApiRange> {
    SUPPORTED_APIS
        .iter()
        .copied()
        .find(|r| r.key as i16 == api_key)
}

pub fn is_served(api_key: i16, api_version: i16) -> bool {
    served_range(api_key).is_some_and(|r| (r.min..=r.max).contains(&api_version))
}

/// The `api_keys` list of an ApiVersions response.
pub fn api_versions_table() -> Vec<kafka_protocol::messages::api_versions_response::ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|r| {
            kafka_protocol::messages::api_versions_response::ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.advertised_min)
                .with_max_version(r.max)
        })
        .collect()
}

/// An ApiVersions response carrying our table (error code left to the caller).
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_versions_table())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_range_is_one_the_protocol_crate_can_decode() {
        for r in SUPPORTED_APIS {
            let valid = r.key.valid_versions();
            assert!(
                valid.min <= r.min && r.max <= valid.max,
                "{:?} {}..{} outside {}",
                r.key,
                r.min,
                r.max,
                valid
            );
        }
    }

    #[test]
    fn produce_is_advertised_from_zero_but_served_from_three() {
        assert!(!is_served(0, 2));
        assert!(is_served(0, 3));
        let produce = api_versions_table()
            .into_iter()
            .find(|a| a.api_key == 0)
            .unwrap();
        assert_eq!((produce.min_version, produce.max_version), (0, 12));
    }

    #[test]
    fn unknown_keys_are_not_served() {
        assert!(served_range(-1).is_none());
        assert!(served_range(9999).is_none());
        assert!(!is_served(18, 5));
    }
}
