//! Embedded metadata for a single node: the whole cluster state in one JSON file in the
//! first log directory, rewritten atomically (temp file, fsync, rename, fsync dir) on every
//! change. Small, rarely written, and readable by a human with `cat`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::future::{BoxFuture, FutureExt};
use gregor_log::LogError;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{BrokerEntity, DynamicBrokerConfigs};
use crate::security::acl::{AccessControlEntry, PatternType, ResourcePattern, ResourceType};
use crate::security::authorizer::AclTable;

use super::{
    acl_entry_from_stored, acl_entry_to_stored, AclEdit, AclUpdate, BrokerEndpoint, ConfigEntity,
    EntityConfig, FinalizedFeatures, MetadataError, MetadataImage, MetadataStore,
    PartitionMetadata, TopicMetadata, MAX_TRANSACTION_VERSION, TRANSACTION_VERSION_FEATURE,
};

const FILE_NAME: &str = "gregor-metadata.json";

/// Space set aside for the metadata file: on a full disk, deleting a topic (the way to free
/// space) needs a new metadata file written first, so this file is given up to make room
/// for it and made again when space allows.
const RESERVE_FILE_NAME: &str = ".gregor-metadata-reserve";
const RESERVE_BYTES: usize = 4 << 20;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StoredState {
    version: u32,
    topics: Vec<TopicMetadata>,
    next_producer_id: i64,
    /// Dynamic broker configs (AlterConfigs on BROKER resources); absent in older files.
    #[serde(default)]
    dynamic_broker_configs: DynamicBrokerConfigs,
    /// Users' and clients' configs (SCRAM credentials, quotas) by entity path
    /// (`users/alice`, as under Kafka's `/config`); absent in older files.
    #[serde(default)]
    entity_configs: BTreeMap<String, EntityConfig>,
    /// ACLs, one entry per resource pattern, with Kafka's znode names; absent in older files.
    #[serde(default)]
    acls: Vec<StoredResourceAcls>,
    /// Finalized features set with UpdateFeatures (absent: the standalone defaults) and how
    /// many times they were changed (their epoch).
    #[serde(default)]
    finalized_features: Option<BTreeMap<String, i16>>,
    #[serde(default)]
    features_epoch: i64,
}

/// One resource pattern's ACLs as the file keeps them (`"resource_type":"Topic"`,
/// `"pattern_type":"PREFIXED"`, entries as in Kafka's ACL znodes).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredResourceAcls {
    resource_type: String,
    pattern_type: String,
    name: String,
    acls: Vec<gregor_zk::AclZnodeEntry>,
}

impl StoredResourceAcls {
    fn is(&self, pattern: &ResourcePattern) -> bool {
        self.name == pattern.name
            && self.resource_type == pattern.resource_type.zk_name()
            && self.pattern_type == pattern.pattern_type.enum_name()
    }

    fn pattern(&self) -> Option<ResourcePattern> {
        Some(ResourcePattern {
            resource_type: ResourceType::parse(&self.resource_type)?,
            pattern_type: PatternType::parse(&self.pattern_type)?,
            name: self.name.clone(),
        })
    }

    fn entries(&self) -> BTreeSet<AccessControlEntry> {
        self.acls.iter().filter_map(acl_entry_from_stored).collect()
    }
}

impl StoredState {
    fn topic_mut(&mut self, name: &str) -> Result<&mut TopicMetadata, MetadataError> {
        self.topics
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
    }
}

pub struct EmbeddedMetadata {
    path: PathBuf,
    reserve: PathBuf,
    state: Mutex<StoredState>,
    image: RwLock<Arc<MetadataImage>>,
    cluster_id: String,
    broker: BrokerEndpoint,
}

impl EmbeddedMetadata {
    /// Loads the state from `dir`, or starts empty. A corrupt file is an error: silently
    /// starting empty would forget every topic.
    pub fn open(dir: &Path, cluster_id: String, broker: BrokerEndpoint) -> anyhow::Result<Self> {
        let path = dir.join(FILE_NAME);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{} is corrupt ({e}); refusing to start with empty metadata",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                refuse_orphaned_partitions(dir, &path)?;
                StoredState {
                    version: 1,
                    ..Default::default()
                }
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        let store = EmbeddedMetadata {
            reserve: dir.join(RESERVE_FILE_NAME),
            path,
            image: RwLock::new(Arc::new(MetadataImage::default())),
            state: Mutex::new(state),
            cluster_id,
            broker,
        };
        {
            let state = store.lock_state();
            store.publish(&state);
        }
        store.ensure_reserve();
        Ok(store)
    }

    /// Makes the reserve file if it is missing (best effort: a full disk can wait).
    fn ensure_reserve(&self) {
        if self.reserve.exists() {
            return;
        }
        let made =
            gregor_log::checkpoint::write_file_atomically(&self.reserve, &vec![0u8; RESERVE_BYTES]);
        if let Err(e) = made {
            let _ = std::fs::remove_file(&self.reserve);
            debug!(path = %self.reserve.display(), error = %e, "cannot make the metadata reserve yet");
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, StoredState> {
        // A panic while holding the lock cannot leave the state half-written (it is
        // only replaced after a successful persist), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, state: &StoredState) {
        let mut image = MetadataImage {
            cluster_id: self.cluster_id.clone(),
            controller_id: self.broker.id,
            brokers: vec![self.broker.clone()],
            dynamic_broker_configs: state.dynamic_broker_configs.clone(),
            finalized_features: FinalizedFeatures {
                epoch: state.features_epoch,
                levels: state
                    .finalized_features
                    .clone()
                    .unwrap_or_else(standalone_features),
            },
            ..Default::default()
        };
        for t in &state.topics {
            image.topic_names_by_id.insert(t.id, t.name.clone());
            image.topics.insert(t.name.clone(), Arc::new(t.clone()));
        }
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(image);
    }

    /// Writes `next` durably, then makes it the current state and image.
    fn commit(&self, state: &mut StoredState, next: StoredState) -> Result<(), MetadataError> {
        let persisted = match persist(&self.path, &next) {
            Err(e) if e.is_out_of_space() && std::fs::remove_file(&self.reserve).is_ok() => {
                warn!(path = %self.path.display(), "disk full: using the metadata reserve to write the metadata file");
                persist(&self.path, &next)
            }
            other => other,
        };
        persisted.map_err(|e| MetadataError::Storage(e.to_string()))?;
        *state = next;
        self.publish(state);
        self.ensure_reserve();
        Ok(())
    }

    /// Applies `change` to a copy of the state and commits it (fsyncs: off the worker).
    fn update(
        &self,
        change: impl FnOnce(&mut StoredState) -> Result<(), MetadataError>,
    ) -> Result<(), MetadataError> {
        crate::blocking::run(|| {
            let mut state = self.lock_state();
            let mut next = state.clone();
            change(&mut next)?;
            self.commit(&mut state, next)
        })
    }
}

fn persist(path: &Path, state: &StoredState) -> Result<(), LogError> {
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    gregor_log::checkpoint::write_file_atomically(path, &bytes)
}

/// Without its metadata file a data directory must not hold partitions: starting empty
/// beside them would let the next auto-created or created topic of the same name take a new
/// id and move the old data aside, and offsets would start again at 0.
fn refuse_orphaned_partitions(dir: &Path, metadata: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // a directory that does not exist yet holds nothing
    };
    let mut partitions: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("partition.metadata").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if partitions.is_empty() {
        return Ok(());
    }
    partitions.sort();
    let shown: Vec<&str> = partitions.iter().take(5).map(String::as_str).collect();
    anyhow::bail!(
        "{} is missing but {} holds {} partition directories ({}{}); refusing to start with \
         empty metadata, which would hide their data. Restore {} from a backup, or move those \
         directories out of {} to start without them",
        metadata.display(),
        dir.display(),
        partitions.len(),
        shown.join(", "),
        if partitions.len() > shown.len() {
            ", ..."
        } else {
            ""
        },
        metadata.display(),
        dir.display()
    )
}

impl MetadataStore for EmbeddedMetadata {
    fn image(&self) -> Arc<MetadataImage> {
        self.image.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn create_topics(
        &self,
        topics: Vec<TopicMetadata>,
    ) -> BoxFuture<'_, Vec<Result<(), MetadataError>>> {
        let mut results: Vec<Result<(), MetadataError>> = Vec::with_capacity(topics.len());
        let committed = self.update(|s| {
            let mut names: HashSet<String> = s.topics.iter().map(|t| t.name.clone()).collect();
            for topic in topics {
                if names.insert(topic.name.clone()) {
                    s.topics.push(topic);
                    results.push(Ok(()));
                } else {
                    results.push(Err(MetadataError::TopicExists(topic.name)));
                }
            }
            Ok(())
        });
        // The one write failed: none of the topics was created.
        if let Err(e) = committed {
            let reason = e.to_string();
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(MetadataError::Storage(reason.clone()));
            }
        }
        async move { results }.boxed()
    }

    fn delete_topic(&self, name: String) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.update(|s| {
            let before = s.topics.len();
            s.topics.retain(|t| t.name != name);
            if s.topics.len() == before {
                return Err(MetadataError::UnknownTopic(name.clone()));
            }
            Ok(())
        });
        async move { result }.boxed()
    }

    fn add_partitions(
        &self,
        name: String,
        partitions: Vec<PartitionMetadata>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.update(|s| {
            let topic = s.topic_mut(&name)?;
            topic.partitions.extend(partitions);
            Ok(())
        });
        async move { result }.boxed()
    }

    fn set_topic_configs(
        &self,
        name: String,
        configs: std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.update(|s| {
            let topic = s.topic_mut(&name)?;
            topic.configs = configs;
            Ok(())
        });
        async move { result }.boxed()
    }

    fn set_broker_configs(
        &self,
        entity: BrokerEntity,
        configs: std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.update(|s| {
            s.dynamic_broker_configs.set(entity, configs);
            Ok(())
        });
        async move { result }.boxed()
    }

    fn entity_config(
        &self,
        entity: ConfigEntity,
    ) -> BoxFuture<'_, Result<EntityConfig, MetadataError>> {
        let config = self
            .lock_state()
            .entity_configs
            .get(&entity.path())
            .cloned()
            .unwrap_or_default();
        async move { Ok(config) }.boxed()
    }

    fn config_entities(&self) -> BoxFuture<'_, Result<Vec<ConfigEntity>, MetadataError>> {
        let entities = self
            .lock_state()
            .entity_configs
            .keys()
            .filter_map(|p| ConfigEntity::from_path(p))
            .collect();
        async move { Ok(entities) }.boxed()
    }

    fn set_entity_config(
        &self,
        entity: ConfigEntity,
        configs: EntityConfig,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.update(|s| {
            if configs.is_empty() {
                s.entity_configs.remove(&entity.path());
            } else {
                s.entity_configs.insert(entity.path(), configs);
            }
            Ok(())
        });
        async move { result }.boxed()
    }

    fn load_acls(&self) -> BoxFuture<'_, Result<AclTable, MetadataError>> {
        let table = self
            .lock_state()
            .acls
            .iter()
            .filter_map(|r| Some((r.pattern()?, r.entries())))
            .filter(|(_, entries)| !entries.is_empty())
            .collect();
        async move { Ok(table) }.boxed()
    }

    fn resource_acls(
        &self,
        pattern: ResourcePattern,
    ) -> BoxFuture<'_, Result<BTreeSet<AccessControlEntry>, MetadataError>> {
        let entries = self
            .lock_state()
            .acls
            .iter()
            .find(|r| r.is(&pattern))
            .map(StoredResourceAcls::entries)
            .unwrap_or_default();
        async move { Ok(entries) }.boxed()
    }

    fn update_acls(
        &self,
        pattern: ResourcePattern,
        edit: AclEdit,
    ) -> BoxFuture<'_, Result<AclUpdate, MetadataError>> {
        let mut update = AclUpdate::default();
        let result = self.update(|s| {
            let position = s.acls.iter().position(|r| r.is(&pattern));
            update.before = position.map(|i| s.acls[i].entries()).unwrap_or_default();
            update.after = edit(&update.before);
            let stored = StoredResourceAcls {
                resource_type: pattern.resource_type.zk_name().to_string(),
                pattern_type: pattern.pattern_type.enum_name().to_string(),
                name: pattern.name.clone(),
                acls: update.after.iter().map(acl_entry_to_stored).collect(),
            };
            match (position, update.after.is_empty()) {
                (Some(i), true) => {
                    s.acls.remove(i);
                }
                (Some(i), false) => s.acls[i] = stored,
                (None, true) => {}
                (None, false) => s.acls.push(stored),
            }
            Ok(())
        });
        async move { result.map(|()| update) }.boxed()
    }

    fn update_finalized_feature(
        &self,
        feature: String,
        level: i16,
        validate_only: bool,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = if validate_only {
            Ok(())
        } else {
            self.update(|s| {
                let mut levels = s
                    .finalized_features
                    .clone()
                    .unwrap_or_else(standalone_features);
                if level > 0 {
                    levels.insert(feature, level);
                } else {
                    levels.remove(&feature);
                }
                s.finalized_features = Some(levels);
                s.features_epoch += 1;
                Ok(())
            })
        };
        async move { result }.boxed()
    }

    fn allocate_producer_ids(&self, count: i64) -> BoxFuture<'_, Result<i64, MetadataError>> {
        let mut first = 0;
        let result = self.update(|s| {
            first = s.next_producer_id;
            s.next_producer_id += count;
            Ok(())
        });
        async move { result.map(|()| first) }.boxed()
    }
}

/// What a standalone broker finalizes until UpdateFeatures says otherwise:
/// `transaction.version` 2 (KIP-890 transactions v2), as a Kafka 4 cluster formatted today
/// does. No other broker has to agree.
fn standalone_features() -> BTreeMap<String, i16> {
    BTreeMap::from([(
        TRANSACTION_VERSION_FEATURE.to_string(),
        MAX_TRANSACTION_VERSION,
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn broker() -> BrokerEndpoint {
        BrokerEndpoint {
            id: 0,
            endpoints: Vec::new(),
            rack: None,
        }
    }

    fn topic(name: &str, partitions: usize) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions: (0..partitions)
                .map(|_| PartitionMetadata {
                    replicas: vec![0],
                    leader: 0,
                    leader_epoch: 0,
                    isr: vec![0],
                    partition_epoch: 0,
                })
                .collect(),
            configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        }
    }

    #[tokio::test]
    async fn state_survives_reopen_and_ids_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let t = topic("orders", 3);
        let first_block;
        {
            let store = EmbeddedMetadata::open(dir.path(), "c1".into(), broker()).unwrap();
            assert!(matches!(
                store.create_topics(vec![t.clone()]).await.as_slice(),
                [Ok(())]
            ));
            assert!(matches!(
                store.create_topics(vec![t.clone()]).await.as_slice(),
                [Err(MetadataError::TopicExists(_))]
            ));
            store
                .add_partitions("orders".into(), vec![t.partitions[0].clone()])
                .await
                .unwrap();
            first_block = store.allocate_producer_ids(1000).await.unwrap();
        }
        let store = EmbeddedMetadata::open(dir.path(), "c1".into(), broker()).unwrap();
        let image = store.image();
        let orders = image.topic("orders").unwrap();
        assert_eq!(orders.partitions.len(), 4);
        assert_eq!(orders.id, t.id);
        assert_eq!(image.topic_by_id(&t.id).unwrap().name, "orders");
        assert_eq!(orders.configs.get("cleanup.policy").unwrap(), "compact");
        assert_eq!(
            store.allocate_producer_ids(1000).await.unwrap(),
            first_block + 1000
        );
        store.delete_topic("orders".into()).await.unwrap();
        assert!(store.image().topic("orders").is_none());
    }

    #[tokio::test]
    async fn topics_created_together_answer_each_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedMetadata::open(dir.path(), "c1".into(), broker()).unwrap();
            assert!(matches!(
                store.create_topics(vec![topic("old", 1)]).await.as_slice(),
                [Ok(())]
            ));
            let results = store
                .create_topics(vec![
                    topic("a", 2),
                    topic("old", 1),
                    topic("b", 3),
                    topic("a", 5),
                ])
                .await;
            let outcome: Vec<Option<String>> = results
                .iter()
                .map(|r| match r {
                    Ok(()) => None,
                    Err(MetadataError::TopicExists(n)) => Some(n.clone()),
                    Err(e) => Some(format!("unexpected {e}")),
                })
                .collect();
            assert_eq!(
                outcome,
                vec![None, Some("old".into()), None, Some("a".into())]
            );
            assert_eq!(store.image().topic("a").unwrap().partitions.len(), 2);
        }
        let store = EmbeddedMetadata::open(dir.path(), "c1".into(), broker()).unwrap();
        let image = store.image();
        let mut names: Vec<&String> = image.topics.keys().collect();
        names.sort();
        assert_eq!(names, vec!["a", "b", "old"]);
        assert_eq!(image.topic("a").unwrap().partitions.len(), 2);
        assert_eq!(image.topic("b").unwrap().partitions.len(), 3);
    }

    #[test]
    fn corrupt_file_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(EmbeddedMetadata::open(dir.path(), "c1".into(), broker()).is_err());
    }
}
