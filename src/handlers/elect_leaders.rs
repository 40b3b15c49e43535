//! ElectLeaders (key 43): preferred or unclean leader elections on request, as
//! `kafka-leader-election.sh` and the admin clients' `electLeaders` ask for them. Only the
//! controller serves it (NOT_CONTROLLER elsewhere; clients send it to the controller that
//! Metadata names). The elections are written by the metadata store
//! (`MetadataStore::elect_leaders`) and answered once this broker's image shows them.
//! Asked for every partition (a null list), the answer leaves out the partitions that
//! needed no election, as Kafka's does.

use std::collections::BTreeMap;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::elect_leaders_response::{
    PartitionResult, ReplicaElectionResult,
};
use gregor_protocol::kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, TopicName,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::{ElectionOutcome, ElectionType};

/// Kafka's ElectionType codes: 0 preferred, 1 unclean (v0 has no field: preferred).
const UNCLEAN: i8 = 1;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let election = if version >= 1 && req.election_type == UNCLEAN {
        ElectionType::Unclean
    } else {
        ElectionType::Preferred
    };
    let all = req.topic_partitions.is_none();
    let wanted: Option<Vec<(String, i32)>> = req.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    let results = match broker
        .metadata
        .elect_leaders(election, wanted.clone())
        .await
    {
        Ok(results) => results,
        Err(e) => {
            let code = super::controller_error_code(&e);
            let failed = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|key| (key, Err((code, e.to_string()))))
                .collect();
            return response(version, code, failed);
        }
    };
    let answered = results
        .into_iter()
        .filter(|(_, outcome)| !(all && *outcome == ElectionOutcome::NotNeeded))
        .map(|(key, outcome)| (key, outcome_code(outcome)))
        .collect();
    response(version, 0, answered)
}

/// The answer without ALTER on the cluster: every named partition refused with `code`.
pub fn refused(version: i16, req: ElectLeadersRequest, code: i16) -> ElectLeadersResponse {
    let refused = req
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic.0.to_string();
            t.partitions.into_iter().map(move |p| {
                (
                    (topic.clone(), p),
                    Err((code, "Cluster authorization failed.".to_string())),
                )
            })
        })
        .collect();
    response(version, code, refused)
}

/// A partition's error code and message.
fn outcome_code(outcome: ElectionOutcome) -> Result<(), (i16, String)> {
    let (error, message) = match outcome {
        ElectionOutcome::Elected { .. } => return Ok(()),
        ElectionOutcome::NotNeeded => (E::ElectionNotNeeded, "Leader election not needed"),
        ElectionOutcome::PreferredNotAvailable => (
            E::PreferredLeaderNotAvailable,
            "The preferred replica is not live or not in the ISR",
        ),
        ElectionOutcome::EligibleLeadersNotAvailable => (
            E::EligibleLeadersNotAvailable,
            "No live replica can lead the partition",
        ),
        ElectionOutcome::UnknownPartition => {
            (E::UnknownTopicOrPartition, "The partition does not exist")
        }
        ElectionOutcome::Failed(reason) => return Err((E::UnknownServerError.code(), reason)),
    };
    Err((error.code(), message.to_string()))
}

type Answered = Vec<((String, i32), Result<(), (i16, String)>)>;

fn response(version: i16, error_code: i16, answered: Answered) -> ElectLeadersResponse {
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), result) in answered {
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err((code, message)) => (code, Some(str_bytes(message))),
        };
        by_topic.entry(topic).or_default().push(
            PartitionResult::default()
                .with_partition_id(partition)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    let results = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            ReplicaElectionResult::default()
                .with_topic(TopicName(str_bytes(topic)))
                .with_partition_result(partitions)
        })
        .collect();
    // The top-level error code exists from v1 on.
    let error_code = if version >= 1 { error_code } else { 0 };
    ElectLeadersResponse::default()
        .with_error_code(error_code)
        .with_replica_election_results(results)
}
