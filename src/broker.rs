//! The broker's shared state, handed to every connection: configuration, the metadata
//! store, the replicas hosted here and the producer-id allocator.

use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use crate::config::BrokerConfig;
use crate::group::offsets_topic::{CreateTopicError, InternalTopic, InternalTopicCreator};
use crate::group::GroupCoordinator;
use crate::inter_broker::InterBrokerSecurity;
use crate::metadata::embedded::EmbeddedMetadata;
use crate::metadata::zookeeper::ZookeeperMetadata;
use crate::metadata::AclChangeCursor;
use crate::metadata::{BrokerEndpoint, ListenerEndpoint, MetadataImage, MetadataStore};
use crate::replica::log_dirs::LogDirs;
use crate::replica::manager::CLEAN_SHUTDOWN_FILE;
use crate::replica::replica_fetcher::FetcherSettings;
use crate::replica::ReplicaManager;
use crate::security::authorizer::AclAuthorizer;
use crate::security::client_quotas::{ClientQuotaManager, QuotaType};
use crate::topic_admin::{self, TopicAdminContext};
use crate::txn::marker_channel::{OffsetsMarkerListener, TransactionMarkerChannel};
use crate::txn::{ProducerIdManager, TransactionCoordinator, TransactionVerifier};

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<dyn MetadataStore>,
    pub replicas: Arc<ReplicaManager>,
    pub producer_ids: Arc<ProducerIdManager>,
    /// Consumer groups and committed offsets of the `__consumer_offsets` partitions led here.
    pub groups: Arc<GroupCoordinator>,
    /// Transactions of the `__transaction_state` partitions led here.
    pub txns: Arc<TransactionCoordinator>,
    /// As a partition leader: the check of a transaction's first batch at its coordinator.
    pub txn_verifier: TransactionVerifier,
    /// Serialises topic administration (create, delete, add partitions) on this broker.
    pub admin_lock: tokio::sync::Mutex<()>,
    /// Client byte-rate quotas (`producer_byte_rate`, `consumer_byte_rate`), refreshed from
    /// the metadata store by `refresh_client_quotas`.
    pub produce_quotas: ClientQuotaManager,
    pub fetch_quotas: ClientQuotaManager,
    /// `request_percentage`: the share of a thread's time a client's requests may take.
    pub request_quotas: ClientQuotaManager,
    /// Kafka's ACL authorizer when `authorizer.class.name` names it; `None`: all allowed.
    pub authorizer: Option<Arc<AclAuthorizer>>,
    /// How far `refresh_acls` has followed the ACL change notifications.
    acl_cursor: std::sync::Mutex<AclChangeCursor>,
}

impl Broker {
    /// Opens the data directory: meta.properties, metadata, and every hosted log.
    pub fn open(mut config: BrokerConfig) -> anyhow::Result<Broker> {
        let log_dirs = LogDirs::open(&config.log_dirs, CLEAN_SHUTDOWN_FILE, true)?;
        // Broker-wide files (the embedded metadata, and the meta.properties a ZooKeeper-mode
        // broker id is read from) live in the first directory that is online.
        let log_dir = log_dirs
            .all()
            .iter()
            .find(|d| d.is_online())
            .map(|d| d.path.clone())
            .context("no log directory is online")?;
        // The inter-broker client's TLS and SASL, read before this broker registers (a bad
        // truststore or a missing password stops the start before others are told of us).
        // Standalone, no broker is reached.
        let security = match config.zookeeper_connect {
            Some(_) => InterBrokerSecurity::from_config(&config).with_context(|| {
                format!(
                    "the inter-broker client (inter.broker.listener.name={})",
                    config.inter_broker_listener_name
                )
            })?,
            None => InterBrokerSecurity::plaintext(),
        };
        let (metadata, cluster_id): (Arc<dyn MetadataStore>, String) =
            if config.zookeeper_connect.is_some() {
                // Cluster mode: called from the runtime (inside block_in_place).
                let opened = tokio::runtime::Handle::current()
                    .block_on(ZookeeperMetadata::open(&config, &log_dir, &security))?;
                config.broker_id = opened.broker_id;
                (Arc::new(opened.store), opened.cluster_id)
            } else {
                if config.broker_id < 0 {
                    anyhow::bail!(
                        "broker.id={} asks ZooKeeper for an id, but zookeeper.connect is not set",
                        config.broker_id
                    );
                }
                let cluster_id = crate::meta_properties::load_or_create(
                    &log_dir,
                    config.broker_id,
                    config.cluster_id.as_deref(),
                    crate::meta_properties::Version::Standalone,
                )?;
                let endpoint = advertised_endpoint(&config)?;
                let store = EmbeddedMetadata::open(&log_dir, cluster_id.clone(), endpoint)?;
                (Arc::new(store), cluster_id)
            };
        // Every directory carries the same identity, as in Kafka: one from another cluster
        // or broker stops the start.
        let version = if config.zookeeper_connect.is_some() {
            crate::meta_properties::Version::ZooKeeper
        } else {
            crate::meta_properties::Version::Standalone
        };
        for dir in log_dirs.all().iter().filter(|d| d.is_online()) {
            crate::meta_properties::load_or_create(
                &dir.path,
                config.broker_id,
                Some(&cluster_id),
                version,
            )?;
        }
        let replicas = Arc::new(ReplicaManager::new(
            config.broker_id,
            log_dirs,
            fetcher_settings(&config, security.clone()),
            metadata.clone(),
        ));
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
        let groups = Arc::new(GroupCoordinator::new(
            config.broker_id,
            config.group_config(),
        ));
        groups.on_replicas_changed(&metadata.image(), &replicas);
        let producer_ids = Arc::new(ProducerIdManager::new(metadata.clone()));
        let txns = Arc::new(TransactionCoordinator::new(
            config.broker_id,
            config.txn_config(),
            producer_ids.clone(),
            TransactionMarkerChannel::new(
                config.broker_id,
                metadata.clone(),
                replicas.clone(),
                config.inter_broker_listener_name.clone(),
                offsets_markers(groups.clone()),
            ),
        ));
        txns.on_replicas_changed(&metadata.image(), &replicas);
        let txn_verifier = TransactionVerifier::new(
            config.broker_id,
            config.txn_config().partition_verification,
            metadata.clone(),
            txns.clone(),
            config.inter_broker_listener_name.clone(),
            replicas.inter_broker_security.clone(),
        );
        Ok(Broker {
            groups,
            txns,
            txn_verifier,
            producer_ids,
            metadata,
            replicas,
            admin_lock: tokio::sync::Mutex::new(()),
            produce_quotas: ClientQuotaManager::new(QuotaType::Produce),
            fetch_quotas: ClientQuotaManager::new(QuotaType::Fetch),
            request_quotas: ClientQuotaManager::new(QuotaType::Request),
            authorizer: config
                .authorizer
                .clone()
                .map(|settings| Arc::new(AclAuthorizer::new(settings))),
            acl_cursor: std::sync::Mutex::new(AclChangeCursor::default()),
            config,
        })
    }

    /// Cluster mode: applies every new metadata image to the hosted replicas (opens, closes,
    /// leader or follower) as it arrives. No-op for the embedded store.
    pub fn follow_metadata(self: &Arc<Self>) {
        let Some(mut images) = self.metadata.subscribe() else {
            return;
        };
        // A new receiver has seen the current image; one published between `Broker::open`
        // and this subscription would be missed (a restarted broker never loading the
        // offsets partitions it was just elected to lead): apply once at the start.
        images.mark_changed();
        self.report_offline_replicas();
        let broker = self.clone();
        tokio::spawn(async move {
            while images.changed().await.is_ok() {
                let b = broker.clone();
                match tokio::task::spawn_blocking(move || b.sync_replicas()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "applying metadata to replicas failed")
                    }
                    Err(e) => tracing::warn!(error = %e, "replica update task failed"),
                }
            }
        });
    }

    /// Cluster mode: tells the metadata store this broker's replicas in failed log
    /// directories (`MetadataStore::report_offline_replicas`) when a directory fails and
    /// after every new image while one is offline, so the controller moves leadership and
    /// ISR membership off them.
    fn report_offline_replicas(self: &Arc<Self>) {
        let Some(mut images) = self.metadata.subscribe() else {
            return;
        };
        let mut failures = self.replicas.log_dirs().failures();
        // A directory unusable since start counts at once.
        failures.mark_changed();
        let broker = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = failures.changed() => if changed.is_err() { return },
                    changed = images.changed() => if changed.is_err() { return },
                }
                if !broker.replicas.log_dirs().any_offline() {
                    continue;
                }
                let image = images.borrow_and_update().clone();
                let offline = broker.replicas.offline_replicas(&image);
                broker.metadata.report_offline_replicas(offline).await;
            }
        });
    }

    /// The error for a partition this broker does not lead: NOT_LEADER_OR_FOLLOWER if it
    /// exists (its leader is elsewhere, or it has none), else UNKNOWN_TOPIC_OR_PARTITION.
    pub fn not_leader_code(&self, topic: &str, partition: i32) -> i16 {
        use kafka_protocol::error::ResponseError as E;
        if self.image().has_partition(topic, partition) {
            E::NotLeaderOrFollower.code()
        } else {
            E::UnknownTopicOrPartition.code()
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// The configuration in force: the static one with the dynamic broker configs of the
    /// current image on top.
    pub fn effective_config(&self) -> BrokerConfig {
        self.config.effective(&self.image().dynamic_broker_configs)
    }

    /// Brings the hosted replicas in line with the current metadata.
    /// The group and transaction coordinators follow: they load the partitions of
    /// `__consumer_offsets` and `__transaction_state` this broker now leads.
    pub fn sync_replicas(&self) -> Result<(), crate::replica::PartitionError> {
        let image = self.metadata.image();
        let result = self.replicas.apply(&image, &self.config);
        self.groups.on_replicas_changed(&image, &self.replicas);
        self.txns.on_replicas_changed(&image, &self.replicas);
        result
    }

    /// Kafka's controlled shutdown, before the listener closes: asks the controller
    /// (ControlledShutdown; itself if it is the controller) to move every leadership held
    /// here to another in-sync replica, until none is left or `timeout`, then leaves the
    /// cluster and waits, serving meanwhile, until this broker's image shows no partition it
    /// leads that another live replica could lead. Clients see NOT_LEADER_OR_FOLLOWER and
    /// refresh their metadata instead of finding a closed port. No-op standalone.
    pub async fn controlled_shutdown(&self, timeout: std::time::Duration) {
        let Some(mut images) = self.metadata.subscribe() else {
            return;
        };
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        self.ask_controller_to_move_leaderships(deadline).await;
        self.metadata.leave_cluster().await;
        let id = self.config.broker_id;
        loop {
            let image = images.borrow_and_update().clone();
            let movable = image
                .topics
                .values()
                .flat_map(|t| t.partitions.iter())
                .filter(|p| {
                    p.leader == id && p.isr.iter().any(|r| *r != id && image.broker(*r).is_some())
                })
                .count();
            if movable == 0 {
                info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "controlled shutdown: no leadership left to move"
                );
                return;
            }
            if tokio::time::timeout_at(deadline, images.changed())
                .await
                .map_or(true, |r| r.is_err())
            {
                tracing::warn!(
                    partitions = movable,
                    "controlled shutdown: leaderships not moved in time; closing anyway"
                );
                return;
            }
        }
    }

    /// ControlledShutdown until the controller answers that no partition is left to move
    /// (as Kafka's broker asks, again after a pause while some are), or until `deadline`.
    async fn ask_controller_to_move_leaderships(&self, deadline: tokio::time::Instant) {
        const PAUSE: std::time::Duration = std::time::Duration::from_millis(500);
        let id = self.config.broker_id;
        loop {
            let image = self.metadata.image();
            let controller = image.controller_id;
            let epoch = self.metadata.broker_epoch();
            let answer = if controller == id {
                self.metadata
                    .controlled_shutdown(id, epoch)
                    .await
                    .map_err(|e| e.to_string())
            } else if let Some(endpoint) = image
                .broker(controller)
                .and_then(|b| b.address(&self.config.inter_broker_listener_name))
            {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let sent = send_controlled_shutdown(
                    &endpoint,
                    id,
                    epoch,
                    &self.replicas.inter_broker_security,
                );
                tokio::time::timeout(left, sent)
                    .await
                    .unwrap_or_else(|_| Err("no answer in time".into()))
            } else {
                Err("no controller is known".into())
            };
            match answer {
                Ok(remaining) if remaining.is_empty() => {
                    info!(
                        controller,
                        "controlled shutdown: the controller moved every leadership"
                    );
                    return;
                }
                Ok(remaining) => info!(
                    controller,
                    remaining = remaining.len(),
                    "controlled shutdown: partitions still led here; asking again"
                ),
                Err(e) => {
                    tracing::warn!(controller, error = %e, "controlled shutdown request failed")
                }
            }
            if tokio::time::Instant::now() + PAUSE >= deadline {
                return;
            }
            tokio::time::sleep(PAUSE).await;
        }
    }

    /// Leaves the metadata store and closes every log; false if a log failed to close.
    pub fn shutdown(&self) -> bool {
        self.metadata.shutdown();
        self.replicas.shutdown()
    }
}

/// What the group coordinator does when a transaction marker is written to a partition of
/// `__consumer_offsets` here: the transaction's offsets become committed, or are dropped.
pub fn offsets_markers(groups: Arc<GroupCoordinator>) -> OffsetsMarkerListener {
    Arc::new(move |partition, producer_id, commit| {
        groups.complete_transaction(partition, producer_id, commit)
    })
}

/// One ControlledShutdown (v3) to the controller at `endpoint`: the partitions it says this
/// broker still leads.
async fn send_controlled_shutdown(
    endpoint: &crate::inter_broker::Endpoint,
    broker_id: i32,
    broker_epoch: i64,
    security: &InterBrokerSecurity,
) -> Result<Vec<(String, i32)>, String> {
    use gregor_protocol::controller_api::zk_messages::{BrokerId, ControlledShutdownRequest};
    let mut conn = crate::inter_broker::BrokerConnection::connect(
        endpoint,
        format!("gregor-controlled-shutdown-{broker_id}"),
        crate::inter_broker::SOCKET_TIMEOUT,
        security,
    )
    .await
    .map_err(|e| e.to_string())?;
    let request = ControlledShutdownRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(broker_epoch);
    let response = conn
        .call_controller_api(3, &request, std::time::Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    if response.error_code != 0 {
        return Err(format!("error code {}", response.error_code));
    }
    Ok(response
        .remaining_partitions
        .into_iter()
        .map(|p| (p.topic_name.0.to_string(), p.partition_index))
        .collect())
}

/// Topic administration works on the broker through this narrow view.
impl TopicAdminContext for Broker {
    fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn metadata(&self) -> &dyn MetadataStore {
        self.metadata.as_ref()
    }

    fn replicas(&self) -> &ReplicaManager {
        &self.replicas
    }

    fn admin_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.admin_lock
    }

    fn image(&self) -> Arc<MetadataImage> {
        Broker::image(self)
    }

    fn sync_replicas(&self) -> Result<(), crate::replica::PartitionError> {
        Broker::sync_replicas(self)
    }
}

/// The group coordinator creates `__consumer_offsets` through topic administration.
impl InternalTopicCreator for Broker {
    fn topic_exists(&self, name: &str) -> bool {
        self.image().topic(name).is_some()
    }

    fn live_brokers(&self) -> usize {
        self.image().brokers.len()
    }

    fn create_internal_topic(
        &self,
        topic: InternalTopic,
    ) -> impl std::future::Future<Output = Result<(), CreateTopicError>> + Send {
        let topic = topic_admin::NewTopic {
            name: topic.name,
            num_partitions: topic.partitions,
            replication_factor: topic.replication_factor,
            assignments: Vec::new(),
            configs: topic.configs,
        };
        async move {
            match topic_admin::create_topic(self, topic, false).await {
                Ok(_) => Ok(()),
                Err(topic_admin::AdminError::TopicExists(_)) => {
                    Err(CreateTopicError::AlreadyExists)
                }
                Err(e) => Err(CreateTopicError::Failed(e.to_string())),
            }
        }
    }
}

impl Broker {
    /// Loads every ACL into the authorizer, before the first request is served. The change
    /// notifications are looked at first, so that none made during the load is missed (as
    /// Kafka starts its change listener before loading its cache).
    pub async fn load_acls(&self) -> anyhow::Result<()> {
        let Some(authorizer) = &self.authorizer else {
            return Ok(());
        };
        let (cursor, _) = self
            .metadata
            .acl_changes(AclChangeCursor::default())
            .await
            .context("reading the ACL change notifications")?;
        let table = self
            .metadata
            .load_acls()
            .await
            .context("loading the ACLs")?;
        info!(resources = table.len(), "ACLs loaded");
        authorizer.replace_all(table);
        *self.acl_cursor.lock().unwrap_or_else(|e| e.into_inner()) = cursor;
        Ok(())
    }

    /// Follows the ACL changes other brokers make, for as long as the broker runs: at each
    /// signal of the metadata store (ZooKeeper: a watch on the notifications, so a change
    /// applies within milliseconds, as in Kafka), and at least every `poll` in case a watch
    /// is lost with its session.
    pub async fn follow_acl_changes(self: Arc<Self>, poll: std::time::Duration) {
        let mut signals = None;
        loop {
            if signals.is_none() {
                signals = self.metadata.acl_change_signals().await;
            }
            match signals.as_mut() {
                Some(rx) => {
                    if let Ok(None) = tokio::time::timeout(poll, rx.recv()).await {
                        // The session ended: watch again from the next one.
                        signals = None;
                        tokio::time::sleep(poll).await;
                    }
                }
                None => tokio::time::sleep(poll).await,
            }
            self.refresh_acls().await;
        }
    }

    /// Applies the ACL changes other brokers announced since the last look (Kafka's
    /// `/kafka-acl-changes` listener): each resource named is read again.
    pub async fn refresh_acls(&self) {
        let Some(authorizer) = &self.authorizer else {
            return;
        };
        let cursor = self
            .acl_cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (next, changed) = match self.metadata.acl_changes(cursor).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the ACL change notifications");
                return;
            }
        };
        for pattern in changed {
            match self.metadata.resource_acls(pattern.clone()).await {
                Ok(entries) => {
                    info!(resource = %pattern, acls = entries.len(), "ACLs changed");
                    authorizer.set_resource(pattern, entries);
                }
                Err(e) => {
                    // The cursor stays: the same notifications are read again next time.
                    tracing::debug!(error = %e, resource = %pattern, "cannot read changed ACLs");
                    return;
                }
            }
        }
        *self.acl_cursor.lock().unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// Reads every user's and client's configs and puts their byte-rate quotas in force
    /// (Kafka applies quota changes from its config-change notifications; gregor reads them
    /// again every second).
    pub async fn refresh_client_quotas(&self) {
        let entities = match self.metadata.config_entities().await {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the client quota entities");
                return;
            }
        };
        let mut configs = Vec::with_capacity(entities.len());
        for entity in entities {
            match self.metadata.entity_config(entity.clone()).await {
                Ok(config) => configs.push((entity, config)),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read a client quota entity's configs");
                    return;
                }
            }
        }
        self.produce_quotas.update(&configs);
        self.fetch_quotas.update(&configs);
        self.request_quotas.update(&configs);
    }
}

/// How followers fetch from their leaders: `replica.fetch.*`.
fn fetcher_settings(config: &BrokerConfig, security: InterBrokerSecurity) -> FetcherSettings {
    FetcherSettings {
        broker_id: config.broker_id,
        listener: config.inter_broker_listener_name.clone(),
        security,
        wait_max_ms: config.replica_fetch_wait_max_ms,
        min_bytes: config.replica_fetch_min_bytes,
        max_bytes: config.replica_fetch_max_bytes,
        response_max_bytes: config.replica_fetch_response_max_bytes,
        backoff: std::time::Duration::from_millis(config.replica_fetch_backoff_ms),
    }
}

/// This broker as the embedded store lists it: its advertised listeners.
fn advertised_endpoint(config: &BrokerConfig) -> anyhow::Result<BrokerEndpoint> {
    if config.advertised_listeners.is_empty() {
        anyhow::bail!("no listener configured");
    }
    Ok(BrokerEndpoint {
        id: config.broker_id,
        endpoints: config
            .advertised_listeners
            .iter()
            .map(|l| ListenerEndpoint {
                listener: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
            })
            .collect(),
        rack: config.broker_rack.clone(),
    })
}
