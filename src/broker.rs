//! The broker's shared state, handed to every connection: configuration, the metadata
//! store, the replicas hosted here and the producer-id allocator.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::metadata::embedded::EmbeddedMetadata;
use crate::metadata::{BrokerEndpoint, MetadataImage, MetadataStore};
use crate::replica::ReplicaManager;
use crate::txn::ProducerIdManager;

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<dyn MetadataStore>,
    pub replicas: ReplicaManager,
    pub producer_ids: ProducerIdManager,
    /// Consumer groups and committed offsets of the `__consumer_offsets` partitions led here.
    pub groups: GroupCoordinator,
    /// Serialises topic administration (create, delete, add partitions) on this broker.
    pub admin_lock: tokio::sync::Mutex<()>,
    pub log_dir: PathBuf,
}

impl Broker {
    /// Opens the data directory: meta.properties, metadata, and every hosted log.
    pub fn open(config: BrokerConfig) -> anyhow::Result<Broker> {
        if config.zookeeper_connect.is_some() {
            anyhow::bail!(
                "zookeeper.connect is set, but cluster mode on ZooKeeper is not implemented yet; \
                 remove it to run a standalone broker"
            );
        }
        let log_dir = config
            .log_dirs
            .first()
            .cloned()
            .context("log.dirs is empty")?;
        if config.log_dirs.len() > 1 {
            tracing::warn!(
                used = %log_dir.display(),
                "several log.dirs are configured; only the first is used for now"
            );
        }
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create log dir {}", log_dir.display()))?;
        let cluster_id = crate::meta_properties::load_or_create(
            &log_dir,
            config.broker_id,
            config.cluster_id.as_deref(),
        )?;
        let endpoint = advertised_endpoint(&config)?;
        let metadata = Arc::new(EmbeddedMetadata::open(
            &log_dir,
            cluster_id.clone(),
            endpoint,
        )?);
        let replicas = ReplicaManager::new(config.broker_id, log_dir.clone());
        replicas
            .apply(&metadata.image(), &config)
            .context("opening partition logs")?;
        info!(
            cluster_id = %cluster_id,
            broker_id = config.broker_id,
            log_dir = %log_dir.display(),
            topics = metadata.image().topics.len(),
            "broker state loaded"
        );
        let groups = GroupCoordinator::new(config.broker_id, config.group_config());
        groups.on_replicas_changed(&metadata.image(), &replicas);
        Ok(Broker {
            groups,
            producer_ids: ProducerIdManager::new(metadata.clone()),
            metadata,
            replicas,
            admin_lock: tokio::sync::Mutex::new(()),
            config,
            log_dir,
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// Brings the hosted replicas in line with the current metadata.
    /// The group coordinator follows: it loads the offsets partitions this broker now leads.
    pub fn sync_replicas(&self) -> Result<(), crate::replica::PartitionError> {
        let image = self.metadata.image();
        let result = self.replicas.apply(&image, &self.config);
        self.groups.on_replicas_changed(&image, &self.replicas);
        result
    }

    pub fn shutdown(&self) {
        self.replicas.shutdown();
    }
}

/// The endpoint clients are told to connect to: the first advertised listener.
fn advertised_endpoint(config: &BrokerConfig) -> anyhow::Result<BrokerEndpoint> {
    let listener = config
        .advertised_listeners
        .first()
        .or_else(|| config.listeners.first())
        .context("no listener configured")?;
    Ok(BrokerEndpoint {
        id: config.broker_id,
        host: listener.host.clone(),
        port: listener.port,
        rack: config.broker_rack.clone(),
    })
}
