//! DescribeLogDirs (key 35): each of `log.dirs` with the partitions it holds and their sizes
//! (`kafka-log-dirs.sh --describe`). As Kafka answers: a failed directory with
//! KAFKA_STORAGE_ERROR and no partitions; partitions asked for that are not hosted here are
//! left out; no partition is ever "future" (no reassignment between directories yet).

use std::collections::{BTreeMap, HashMap, HashSet};

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use gregor_protocol::kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};

use super::str_bytes;
use crate::broker::Broker;

pub fn handle(
    broker: &Broker,
    _version: i16,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // None: every partition.
    let wanted: Option<HashMap<String, HashSet<i32>>> = req.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.into_iter().collect()))
            .collect()
    });
    let asked = |topic: &str, index: i32| {
        wanted
            .as_ref()
            .is_none_or(|w| w.get(topic).is_some_and(|p| p.contains(&index)))
    };
    // Per directory: topic -> [(partition, bytes)].
    let mut held: HashMap<std::path::PathBuf, BTreeMap<String, Vec<(i32, i64)>>> = HashMap::new();
    for p in broker.replicas.all_partitions() {
        if !asked(&p.topic, p.index) {
            continue;
        }
        held.entry(p.log_dir().path.clone())
            .or_default()
            .entry(p.topic.clone())
            .or_default()
            .push((p.index, i64::try_from(p.size_bytes()).unwrap_or(i64::MAX)));
    }
    let results = broker
        .replicas
        .log_dirs()
        .all()
        .iter()
        .map(|dir| {
            let result = DescribeLogDirsResult::default()
                .with_log_dir(str_bytes(dir.path.display().to_string()));
            if !dir.is_online() {
                return result
                    .with_error_code(E::KafkaStorageError.code())
                    .with_total_bytes(-1)
                    .with_usable_bytes(-1);
            }
            let (total, usable) = dir.space().map_or((-1, -1), |(t, u)| {
                (
                    i64::try_from(t).unwrap_or(i64::MAX),
                    i64::try_from(u).unwrap_or(i64::MAX),
                )
            });
            let topics = held
                .remove(&dir.path)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_unstable();
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, size)| {
                                    DescribeLogDirsPartition::default()
                                        .with_partition_index(index)
                                        .with_partition_size(size)
                                        .with_offset_lag(0)
                                        .with_is_future_key(false)
                                })
                                .collect(),
                        )
                })
                .collect();
            result
                .with_topics(topics)
                .with_total_bytes(total)
                .with_usable_bytes(usable)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
