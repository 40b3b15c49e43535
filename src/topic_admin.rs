//! Creating, deleting and growing topics: the validation and replica assignment shared by
//! CreateTopics, auto-creation in Metadata, DeleteTopics and CreatePartitions.
//!
//! Each change goes to the metadata store first (the source of truth), then the local
//! replicas are brought in line, so the answer is sent once the change is visible.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use thiserror::Error;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::{validate_topic_config, BrokerConfig};
use crate::metadata::{
    MetadataError, MetadataImage, MetadataStore, PartitionMetadata, TopicMetadata,
};
use crate::replica::{PartitionError, ReplicaManager};

/// Kafka's limit on topic name length.
const MAX_NAME_LENGTH: usize = 249;

#[derive(Clone, Debug, Error)]
pub enum AdminError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("Topic '{0}' already exists.")]
    TopicExists(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    /// Kafka's INVALID_REQUEST (e.g. a broker config update Kafka refuses).
    #[error("{0}")]
    InvalidRequest(String),
    /// Kafka's REQUEST_TIMED_OUT: the change was made but is not complete yet.
    #[error("{0}")]
    Timeout(String),
    #[error("Topic deletion is disabled.")]
    DeletionDisabled,
    #[error("{0}")]
    PolicyViolation(String),
    #[error("{0}")]
    Storage(String),
}

/// Kafka's limit on the partitions one CreateTopics or CreatePartitions request may create
/// (`ReplicationControlManager`'s `MAX_PARTITIONS_PER_BATCH`), answered as Kafka answers it.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

pub fn excessive_partitions() -> AdminError {
    AdminError::PolicyViolation("Excessively large number of partitions per request.".into())
}

impl AdminError {
    pub fn error_code(&self) -> i16 {
        match self {
            AdminError::InvalidTopic(_) => E::InvalidTopicException.code(),
            AdminError::TopicExists(_) => E::TopicAlreadyExists.code(),
            AdminError::UnknownTopic => E::UnknownTopicOrPartition.code(),
            AdminError::InvalidPartitions(_) => E::InvalidPartitions.code(),
            AdminError::InvalidReplicationFactor(_) => E::InvalidReplicationFactor.code(),
            AdminError::InvalidReplicaAssignment(_) => E::InvalidReplicaAssignment.code(),
            AdminError::InvalidConfig(_) => E::InvalidConfig.code(),
            AdminError::InvalidRequest(_) => E::InvalidRequest.code(),
            AdminError::Timeout(_) => E::RequestTimedOut.code(),
            AdminError::DeletionDisabled => E::TopicDeletionDisabled.code(),
            AdminError::PolicyViolation(_) => E::PolicyViolation.code(),
            AdminError::Storage(_) => E::UnknownServerError.code(),
        }
    }
}

impl From<MetadataError> for AdminError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::TopicExists(name) => AdminError::TopicExists(name),
            MetadataError::UnknownTopic(_) => AdminError::UnknownTopic,
            MetadataError::Storage(s)
            | MetadataError::StaleIsrChange(s)
            | MetadataError::StaleBrokerEpoch(s)
            | MetadataError::InvalidUpdateVersion(s) => AdminError::Storage(s),
            MetadataError::NotController => AdminError::Storage(e.to_string()),
        }
    }
}

/// What topic administration needs of the broker (implemented by `Broker`), so that this
/// module does not reach up into it.
pub trait TopicAdminContext: Sync {
    fn config(&self) -> &BrokerConfig;
    fn metadata(&self) -> &dyn MetadataStore;
    fn replicas(&self) -> &ReplicaManager;
    /// One topic administration at a time on this broker.
    fn admin_lock(&self) -> &tokio::sync::Mutex<()>;
    fn image(&self) -> Arc<MetadataImage>;
    /// Brings the hosted replicas (and their users) in line with the metadata store.
    fn sync_replicas(&self) -> Result<(), PartitionError>;
}

/// A topic to create, as CreateTopics describes it (-1 = broker default).
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Explicit replica lists per partition, if the client gave them.
    pub assignments: Vec<Vec<i32>>,
    pub configs: BTreeMap<String, String>,
}

/// Kafka's topic name rules: 1..=249 characters of [a-zA-Z0-9._-], not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let invalid = |why: String| Err(AdminError::InvalidTopic(why));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_NAME_LENGTH {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Kafka refuses names that differ from an existing one only by '.' versus '_', because
/// they collide in metric names.
fn check_collision<'a>(
    existing: impl Iterator<Item = &'a String>,
    name: &str,
) -> Result<(), AdminError> {
    // Equal once '.' and '_' are taken as one character (no allocation per topic).
    let same = |a: &str| {
        a.len() == name.len()
            && a.bytes()
                .zip(name.bytes())
                .all(|(x, y)| x == y || (matches!(x, b'.' | b'_') && matches!(y, b'.' | b'_')))
    };
    match existing.map(String::as_str).find(|t| *t != name && same(t)) {
        Some(other) => Err(AdminError::InvalidTopic(format!(
            "Topic '{name}' collides with existing topic: {other}"
        ))),
        None => Ok(()),
    }
}

/// Kafka's rack-alternated broker order: brokers grouped by rack (racks and brokers sorted),
/// then the first broker of each rack, the second of each rack, ... so that neighbours in
/// the list sit on different racks. Without racks on every broker: the ids in order.
fn rack_alternated(image: &MetadataImage) -> Vec<i32> {
    let mut brokers: Vec<(i32, Option<String>)> = image
        .brokers
        .iter()
        .map(|b| (b.id, b.rack.clone()))
        .collect();
    brokers.sort_unstable();
    if brokers.iter().any(|(_, rack)| rack.is_none()) {
        return brokers.into_iter().map(|(id, _)| id).collect();
    }
    let mut by_rack: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack
            .entry(rack.unwrap_or_default())
            .or_default()
            .push(id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

/// Replica lists for partitions `first..first+count`: consecutive brokers of the
/// rack-alternated list (so replicas land on different racks), the preferred leader moving
/// one broker per partition from a random start (Kafka's random `startIndex`), which
/// spreads leaders evenly within a topic and across topics.
fn assign_replicas(
    image: &MetadataImage,
    first: usize,
    count: usize,
    replication_factor: usize,
) -> Result<Vec<Vec<i32>>, AdminError> {
    let brokers = rack_alternated(image);
    if replication_factor == 0 || replication_factor > brokers.len() {
        return Err(AdminError::InvalidReplicationFactor(format!(
            "Replication factor: {replication_factor} larger than available brokers: {}.",
            brokers.len()
        )));
    }
    // Single-broker (embedded) mode keeps its deterministic layout.
    let start = if brokers.len() > 1 {
        Uuid::new_v4().as_u128() as usize % brokers.len()
    } else {
        0
    };
    Ok((first..first + count)
        .map(|p| {
            (0..replication_factor)
                .map(|i| brokers[(start + p + i) % brokers.len()])
                .collect()
        })
        .collect())
}

fn check_assignments(image: &MetadataImage, assignments: &[Vec<i32>]) -> Result<(), AdminError> {
    let rf = assignments.first().map_or(0, Vec::len);
    for (p, replicas) in assignments.iter().enumerate() {
        if replicas.is_empty() || replicas.len() != rf {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "All partitions should have the same number of replicas; partition {p} has {}",
                replicas.len()
            )));
        }
        let mut seen = replicas.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != replicas.len() {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "Duplicate brokers not allowed in replica assignment: {replicas:?} for partition {p}"
            )));
        }
        if let Some(b) = replicas.iter().find(|b| image.broker(**b).is_none()) {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "Unknown broker {b} in replica assignment of partition {p}"
            )));
        }
    }
    Ok(())
}

fn new_partition(replicas: Vec<i32>) -> PartitionMetadata {
    PartitionMetadata {
        leader: replicas[0],
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

/// Validates and (unless `validate_only`) creates a topic. Returns the topic as created.
pub async fn create_topic(
    broker: &impl TopicAdminContext,
    topic: NewTopic,
    validate_only: bool,
) -> Result<TopicMetadata, AdminError> {
    create_topics(broker, vec![topic], validate_only)
        .await
        .pop()
        .unwrap_or_else(|| Err(AdminError::Storage("no answer for the topic".into())))
}

/// Validates and (unless `validate_only`) creates topics, answering for each in order.
/// The valid ones are written to the metadata store together and their logs opened in
/// one pass: a CreateTopics request of 100 topics is one metadata write, not 100.
pub async fn create_topics(
    broker: &impl TopicAdminContext,
    topics: Vec<NewTopic>,
    validate_only: bool,
) -> Vec<Result<TopicMetadata, AdminError>> {
    let requested: i64 = topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => i64::from(broker.config().num_partitions),
            (0, n) => i64::from(n.max(0)),
            (n, _) => n as i64,
        })
        .sum();
    if requested > MAX_PARTITIONS_PER_REQUEST {
        return topics.iter().map(|_| Err(excessive_partitions())).collect();
    }
    let _guard = broker.admin_lock().lock().await;
    let image = broker.image();
    let mut results: Vec<Result<TopicMetadata, AdminError>> = Vec::with_capacity(topics.len());
    let mut batch: Vec<String> = Vec::new();
    for topic in topics {
        let prepared = prepare_topic(broker, &image, &batch, topic);
        if let Ok(t) = &prepared {
            batch.push(t.name.clone());
        }
        results.push(prepared);
    }
    if validate_only || results.iter().all(|r| r.is_err()) {
        return results;
    }
    let valid: Vec<TopicMetadata> = results.iter().flatten().cloned().collect();
    let mut stored = broker.metadata().create_topics(valid).await.into_iter();
    for r in results.iter_mut().filter(|r| r.is_ok()) {
        if let Some(Err(e)) = stored.next() {
            *r = Err(e.into());
        }
    }
    if let Err(e) = sync_replicas(broker) {
        // Topics whose logs cannot all be opened are taken back out of the metadata: a
        // topic that stays committed without its logs is one no restart can open.
        for created in results.iter().flatten() {
            if let Err(d) = broker.metadata().delete_topic(created.name.clone()).await {
                warn!(topic = %created.name, error = %d, "rolling back a topic whose logs failed failed too");
            }
        }
        if let Err(again) = sync_replicas(broker) {
            warn!(error = %again, "closing the logs of rolled-back topics failed");
        }
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(AdminError::Storage(format!(
                "{e}; the topic was not created"
            )));
        }
        return results;
    }
    for created in results.iter().flatten() {
        info!(topic = %created.name, partitions = created.partitions.len(), "created topic")
    }
    results
}

/// Checks a topic against the image and the names created earlier in the same request,
/// and assigns its replicas.
fn prepare_topic(
    broker: &impl TopicAdminContext,
    image: &MetadataImage,
    batch: &[String],
    topic: NewTopic,
) -> Result<TopicMetadata, AdminError> {
    validate_topic_name(&topic.name)?;
    for (k, v) in &topic.configs {
        validate_topic_config(k, v).map_err(AdminError::InvalidConfig)?;
    }
    if image.topic(&topic.name).is_some() || batch.contains(&topic.name) {
        return Err(AdminError::TopicExists(topic.name));
    }
    check_collision(image.topics.keys().chain(batch), &topic.name)?;
    let assignments = if topic.assignments.is_empty() {
        let partitions = match topic.num_partitions {
            -1 => broker.config().num_partitions,
            n => n,
        };
        if partitions <= 0 {
            return Err(AdminError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        let rf = match topic.replication_factor {
            -1 => broker.config().default_replication_factor,
            n => n,
        };
        if rf <= 0 {
            return Err(AdminError::InvalidReplicationFactor(
                "Replication factor must be larger than 0.".into(),
            ));
        }
        assign_replicas(image, 0, partitions as usize, rf as usize)?
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(AdminError::InvalidReplicaAssignment(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        check_assignments(image, &topic.assignments)?;
        topic.assignments
    };
    Ok(TopicMetadata {
        name: topic.name,
        id: Uuid::new_v4(),
        partitions: assignments.into_iter().map(new_partition).collect(),
        configs: topic.configs,
    })
}

/// Opens and closes logs for the metadata just written (off the worker: see `blocking`).
fn sync_replicas(broker: &impl TopicAdminContext) -> Result<(), AdminError> {
    crate::blocking::run(|| broker.sync_replicas()).map_err(|e| AdminError::Storage(e.to_string()))
}

/// Deletes a topic and its logs. Returns the deleted topic's id.
pub async fn delete_topic(broker: &impl TopicAdminContext, name: &str) -> Result<Uuid, AdminError> {
    if !broker.config().delete_topic_enable {
        return Err(AdminError::DeletionDisabled);
    }
    let _guard = broker.admin_lock().lock().await;
    let id = broker
        .image()
        .topic(name)
        .map(|t| t.id)
        .ok_or(AdminError::UnknownTopic)?;
    broker.metadata().delete_topic(name.to_string()).await?;
    sync_replicas(broker)?;
    info!(topic = %name, "deleted topic");
    Ok(id)
}

/// Grows a topic to `total` partitions.
pub async fn create_partitions(
    broker: &impl TopicAdminContext,
    name: &str,
    total: i32,
    assignments: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<(), AdminError> {
    let _guard = broker.admin_lock().lock().await;
    let image = broker.image();
    let topic: Arc<TopicMetadata> = image.topic(name).cloned().ok_or(AdminError::UnknownTopic)?;
    let current = topic.partitions.len();
    if total < 0 || (total as usize) <= current {
        return Err(AdminError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than or equal to the requested {total}."
        )));
    }
    let added = total as usize - current;
    let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let new = match assignments {
        Some(a) => {
            if a.len() != added {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "Increasing the number of partitions by {added} but {} assignments provided.",
                    a.len()
                )));
            }
            check_assignments(&image, &a)?;
            if a.iter().any(|r| r.len() != rf) {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "Inconsistent replication factor between partitions, partition 0 has {rf}"
                )));
            }
            a
        }
        None => assign_replicas(&image, current, added, rf)?,
    };
    let new: Vec<PartitionMetadata> = new.into_iter().map(new_partition).collect();
    if validate_only {
        return Ok(());
    }
    broker
        .metadata()
        .add_partitions(name.to_string(), new)
        .await?;
    sync_replicas(broker)?;
    info!(topic = %name, partitions = total, "added partitions");
    Ok(())
}

/// Changes a topic's config overrides with `change`, validates the result, and (unless
/// `validate_only`) stores it; running partitions pick the new settings up at once.
pub async fn alter_topic_configs(
    broker: &impl TopicAdminContext,
    name: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), AdminError>,
    validate_only: bool,
) -> Result<(), AdminError> {
    let _guard = broker.admin_lock().lock().await;
    let topic = broker
        .image()
        .topic(name)
        .cloned()
        .ok_or(AdminError::UnknownTopic)?;
    let mut configs = topic.configs.clone();
    change(&mut configs)?;
    for (k, v) in &configs {
        validate_topic_config(k, v).map_err(AdminError::InvalidConfig)?;
    }
    if validate_only || configs == topic.configs {
        return Ok(());
    }
    broker
        .metadata()
        .set_topic_configs(name.to_string(), configs)
        .await?;
    sync_replicas(broker)?;
    info!(topic = %name, "altered topic configs");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BrokerEndpoint;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "orders.v1", "A_b-9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "é", "a/b", &"x".repeat(250)] {
            assert!(
                matches!(validate_topic_name(bad), Err(AdminError::InvalidTopic(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn replicas_alternate_racks_and_leaders_spread() {
        let racks = [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")];
        let image = MetadataImage {
            brokers: racks
                .iter()
                .map(|(id, rack)| BrokerEndpoint {
                    id: *id,
                    endpoints: Vec::new(),
                    rack: Some(rack.to_string()),
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(rack_alternated(&image), vec![1, 3, 5, 2, 4, 6]);
        let rack_of = |b: i32| racks.iter().find(|(id, _)| *id == b).unwrap().1;
        let assignment = assign_replicas(&image, 0, 12, 3).unwrap();
        for replicas in &assignment {
            let mut used: Vec<&str> = replicas.iter().map(|b| rack_of(*b)).collect();
            used.sort_unstable();
            used.dedup();
            assert_eq!(used.len(), 3, "three racks for {replicas:?}");
        }
        let mut leaders: Vec<i32> = assignment.iter().map(|r| r[0]).collect();
        leaders.sort_unstable();
        assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
    }

    fn image(brokers: &[i32], topics: &[&str]) -> MetadataImage {
        let mut image = MetadataImage {
            brokers: brokers
                .iter()
                .map(|id| BrokerEndpoint {
                    id: *id,
                    endpoints: Vec::new(),
                    rack: None,
                })
                .collect(),
            ..Default::default()
        };
        for t in topics {
            image.topics.insert(
                t.to_string(),
                Arc::new(TopicMetadata {
                    name: t.to_string(),
                    id: Uuid::new_v4(),
                    partitions: vec![],
                    configs: Default::default(),
                }),
            );
        }
        image
    }

    #[test]
    fn dot_underscore_collisions_are_refused() {
        let img = image(&[0], &["my.topic"]);
        assert!(check_collision(img.topics.keys(), "my_topic").is_err());
        assert!(check_collision(img.topics.keys(), "my.topic").is_ok());
        assert!(check_collision(img.topics.keys(), "my-topic").is_ok());
    }

    #[test]
    fn leaders_are_spread_and_rf_is_bounded() {
        let img = image(&[2, 0, 1], &[]);
        let a = assign_replicas(&img, 0, 4, 2).unwrap();
        // A random start, then consecutive brokers: [s, s+1], [s+1, s+2], ...
        let s = a[0][0];
        let next = |b: i32| (b + 1) % 3;
        let want: Vec<Vec<i32>> = (0..4)
            .map(|p| {
                let first = (s + p) % 3;
                vec![first, next(first)]
            })
            .collect();
        assert_eq!(a, want);
        assert!(matches!(
            assign_replicas(&img, 0, 1, 4),
            Err(AdminError::InvalidReplicationFactor(_))
        ));
        assert!(check_assignments(&img, &[vec![0, 0]]).is_err());
        assert!(check_assignments(&img, &[vec![0, 7]]).is_err());
        assert!(check_assignments(&img, &[vec![0, 1], vec![1]]).is_err());
        assert!(check_assignments(&img, &[vec![0, 1], vec![1, 2]]).is_ok());
    }
}
