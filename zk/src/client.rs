//! `ZkClient`: one ZooKeeper session with typed reads and writes of Kafka's znodes.
//!
//! Writes follow Kafka's `KafkaZkClient`: broker registration as multi{create ephemeral,
//! setData} so the returned stat carries the czxid (the broker epoch), controller election as
//! multi{create ephemeral `/controller`, conditional setData `/controller_epoch`}, and every
//! controller write optionally fenced by a check of `/controller_epoch`'s zkVersion.
//! The client never creates a new session by itself: after expiry every call fails with
//! [`ZkError::SessionExpired`] and the owner calls [`ZkClient::reconnect`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use zookeeper_client::{
    Acls, Client, CreateMode, CreateOptions, Error as ClientError, MultiWriteError,
    MultiWriteResult, MultiWriter, SessionState, Stat,
};

use crate::error::{Result, ZkError};
use crate::paths;
use crate::watch::{self as zkwatch, SessionEvent, ZkEvent};
use crate::znode::{
    decode_controller_epoch, encode_controller_epoch, new_kafka_uuid, BrokerRegistration,
    ClusterIdZnode, ConfigChangeNotification, ControllerZnode, EntityConfig, FeatureZnode,
    LogDirEventNotification, PartitionState, ProducerIdBlock, ResourceAcls, TopicAssignment,
};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const PERSISTENT_SEQUENTIAL: CreateOptions<'static> =
    CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

/// Kafka's `reserved.broker.max.id` default: generated broker ids start above it.
pub const DEFAULT_RESERVED_BROKER_MAX_ID: i32 = 1000;

/// A znode's decoded payload together with the parts of its `Stat` Kafka relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    /// `Stat.version`: the expected version of the next conditional write (for a partition
    /// state znode, the partition epoch).
    pub zk_version: i32,
    /// `Stat.czxid`: for `/brokers/ids/<id>`, the broker epoch.
    pub czxid: i64,
    /// `Stat.ephemeralOwner`: the session id owning an ephemeral znode, 0 for persistent ones.
    pub ephemeral_owner: i64,
}

impl<T> Versioned<T> {
    fn new(value: T, stat: &Stat) -> Self {
        Versioned {
            value,
            zk_version: stat.version,
            czxid: stat.czxid,
            ephemeral_owner: stat.ephemeral_owner,
        }
    }
}

/// The controller epoch won by an election and the zkVersion of `/controller_epoch` that
/// fences every write of that controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerEpoch {
    pub epoch: i32,
    pub zk_version: i32,
}

struct Inner {
    /// The session, re-rooted at the chroot.
    client: Client,
    connect_string: String,
    session_timeout: Duration,
    /// Session id of the session this one replaced (see [`ZkClient::reconnect`]); an ephemeral
    /// still owned by it may be deleted and re-created (Kafka's ZOOKEEPER-2985 workaround).
    previous_session_id: Option<i64>,
    /// Dropped with the last `ZkClient` clone: stops the watch tasks so the session closes.
    shutdown: watch::Sender<()>,
}

/// One ZooKeeper session, cheap to clone (clones share the session). Dropping the last clone
/// closes the session, which deletes its ephemeral znodes.
#[derive(Clone)]
pub struct ZkClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ZkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkClient")
            .field("connect_string", &self.inner.connect_string)
            .field("session_id", &format_args!("0x{:x}", self.session_id()))
            .finish()
    }
}

/// Splits `host:port,host:port/chroot` into the server list and the chroot (`None` for none
/// or `/`). `tcp://host:port` server prefixes are kept.
pub fn split_connect_string(connect_string: &str) -> Result<(String, Option<String>)> {
    let invalid = |reason| ZkError::InvalidConnectString {
        connect_string: connect_string.to_owned(),
        reason,
    };
    let bytes = connect_string.as_bytes();
    let mut chroot_at = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' && (i == 0 || (bytes[i - 1] != b':' && bytes[i - 1] != b'/')) {
            chroot_at = Some(i);
            break;
        }
    }
    let (servers, chroot) = match chroot_at {
        Some(i) => (&connect_string[..i], Some(&connect_string[i..])),
        None => (connect_string, None),
    };
    if servers.trim().is_empty() {
        return Err(invalid("no servers"));
    }
    let chroot = match chroot {
        None | Some("/") => None,
        Some(path) => {
            let path = path.trim_end_matches('/');
            if path.contains("//") || path.contains(',') {
                return Err(invalid("bad chroot path"));
            }
            Some(path.to_owned())
        }
    };
    Ok((servers.to_owned(), chroot))
}

impl ZkClient {
    /// Connects to `host:port[,host:port...][/chroot]` with the given session timeout (the
    /// server clamps it to [2, 20] ticks), creating the chroot if it is missing as Kafka does.
    pub async fn connect(connect_string: &str, session_timeout: Duration) -> Result<ZkClient> {
        Self::connect_inner(connect_string, session_timeout, None).await
    }

    async fn connect_inner(
        connect_string: &str,
        session_timeout: Duration,
        previous_session_id: Option<i64>,
    ) -> Result<ZkClient> {
        let (servers, chroot) = split_connect_string(connect_string)?;
        let connect_err = |source| ZkError::Connect {
            connect_string: connect_string.to_owned(),
            source,
        };
        let client = Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(session_timeout)
            .connect(&servers)
            .await
            .map_err(connect_err)?;
        let client = match chroot {
            None => client,
            Some(chroot) => {
                client
                    .mkdir(&chroot, &PERSISTENT)
                    .await
                    .map_err(|e| ZkError::from_client(&chroot, None, e))?;
                client
                    .chroot(chroot.clone())
                    .map_err(|_| ZkError::InvalidConnectString {
                        connect_string: connect_string.to_owned(),
                        reason: "bad chroot path",
                    })?
            }
        };
        info!(
            connect_string,
            session_id = format_args!("0x{:x}", client.session_id().0),
            negotiated_timeout_ms = client.session_timeout().as_millis() as u64,
            "ZooKeeper session established"
        );
        let (shutdown, _) = watch::channel(());
        Ok(ZkClient {
            inner: Arc::new(Inner {
                client,
                connect_string: connect_string.to_owned(),
                session_timeout,
                previous_session_id,
                shutdown,
            }),
        })
    }

    /// Builds a new session with the same connect string and timeout, for use after
    /// [`SessionEvent::Expired`]. The new client remembers this session's id so that
    /// [`ZkClient::register_broker`] can replace a broker znode the dead session still owns.
    /// Re-registering and re-arming watches is the caller's job.
    pub async fn reconnect(&self) -> Result<ZkClient> {
        Self::connect_inner(
            &self.inner.connect_string,
            self.inner.session_timeout,
            Some(self.session_id()),
        )
        .await
    }

    /// The underlying `zookeeper-client` handle (already re-rooted at the chroot).
    pub fn raw(&self) -> &Client {
        &self.inner.client
    }

    pub fn connect_string(&self) -> &str {
        &self.inner.connect_string
    }

    pub fn session_id(&self) -> i64 {
        self.inner.client.session_id().0
    }

    /// The session timeout the server granted.
    pub fn negotiated_session_timeout(&self) -> Duration {
        self.inner.client.session_timeout()
    }

    /// False once the session has reached a terminal state (expired, closed, auth failed):
    /// every call on this client fails from then on, build a new one.
    pub fn is_session_alive(&self) -> bool {
        !matches!(
            self.session_state(),
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
        )
    }

    pub fn session_state(&self) -> SessionState {
        self.inner.client.state()
    }

    /// Fault injection for tests: attaches a second connection to this session and closes it,
    /// so the server expires the session (its ephemerals go away, this client sees `Expired`).
    ///
    /// The steal races with this client: ZooKeeper hands the session to the newest
    /// connection, so this client's immediate reconnect kicks the thief out again, often
    /// before the thief has finished its handshake (connect response, then a ping round
    /// trip). So the thief is short-lived and retried until this client reports `Expired`.
    pub async fn expire_session_for_tests(&self) -> Result<()> {
        let (servers, _) = split_connect_string(&self.inner.connect_string)?;
        let deadline = tokio::time::Instant::now() + self.inner.session_timeout * 3;
        let mut state = self.inner.client.state_watcher();
        let mut last_error = None;
        while tokio::time::Instant::now() < deadline {
            if self.inner.client.state() == SessionState::Expired {
                return Ok(());
            }
            let thief = Client::connector()
                .with_session(self.inner.client.session().clone())
                .with_session_timeout(self.inner.session_timeout)
                .with_connection_timeout(Duration::from_millis(300))
                .with_fail_eagerly()
                .connect(&servers)
                .await;
            match thief {
                // Dropping the only handle sends CloseSession.
                Ok(thief) => drop(thief),
                Err(ClientError::SessionExpired) => {}
                Err(e) => {
                    debug!(error = %e, "session steal attempt failed; retrying");
                    last_error = Some(e);
                    continue;
                }
            }
            // Give the close a moment to land before trying again.
            let expired = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    if state.changed().await == SessionState::Expired {
                        return;
                    }
                }
            })
            .await;
            if expired.is_ok() || self.inner.client.state() == SessionState::Expired {
                return Ok(());
            }
        }
        Err(ZkError::Connect {
            connect_string: self.inner.connect_string.clone(),
            source: last_error.unwrap_or(ClientError::Timeout),
        })
    }

    fn shutdown_receiver(&self) -> watch::Receiver<()> {
        self.inner.shutdown.subscribe()
    }

    // ---- generic helpers ---------------------------------------------------------------

    /// Raw bytes and stat of `path`, `None` if it does not exist.
    pub async fn get_raw(&self, path: &str) -> Result<Option<(Vec<u8>, Stat)>> {
        match self.inner.client.get_data(path).await {
            Ok(found) => Ok(Some(found)),
            Err(ClientError::NoNode) => Ok(None),
            Err(e) => Err(ZkError::from_client(path, None, e)),
        }
    }

    /// The data of `path` read by `decode`, `None` if it does not exist.
    async fn get_decoded<T>(
        &self,
        path: &str,
        decode: impl FnOnce(&str, &[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.get_raw(path).await? {
            None => Ok(None),
            Some((data, _)) => decode(path, &data).map(Some),
        }
    }

    /// Children of `path` (sorted), empty if it does not exist.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        match self.inner.client.list_children(path).await {
            Ok(mut children) => {
                children.sort();
                Ok(children)
            }
            Err(ClientError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(ZkError::from_client(path, None, e)),
        }
    }

    /// `mkdir -p` of persistent znodes with empty data.
    pub async fn create_recursive(&self, path: &str) -> Result<()> {
        self.inner
            .client
            .mkdir(path, &PERSISTENT)
            .await
            .map_err(|e| ZkError::from_client(path, None, e))
    }

    /// Creates `path` with `data`, creating missing persistent parents first.
    async fn create_with_parents(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions<'_>,
    ) -> Result<Stat> {
        match self.inner.client.create(path, data, options).await {
            Ok((stat, _)) => Ok(stat),
            Err(ClientError::NoNode) => {
                if let Some((parent, _)) = path.rsplit_once('/') {
                    if !parent.is_empty() {
                        self.create_recursive(parent).await?;
                    }
                }
                self.inner
                    .client
                    .create(path, data, options)
                    .await
                    .map(|(stat, _)| stat)
                    .map_err(|e| ZkError::from_client(path, None, e))
            }
            Err(e) => Err(ZkError::from_client(path, None, e)),
        }
    }

    /// Deletes `path` and everything below it; absent nodes are fine.
    pub async fn delete_recursive(&self, path: &str) -> Result<()> {
        let mut stack = vec![path.to_owned()];
        let mut order = Vec::new();
        while let Some(node) = stack.pop() {
            for child in self.get_children(&node).await? {
                stack.push(format!("{}/{}", node.trim_end_matches('/'), child));
            }
            order.push(node);
        }
        for node in order.iter().rev() {
            match self.inner.client.delete(node, None).await {
                Ok(()) | Err(ClientError::NoNode) => {}
                Err(e) => return Err(ZkError::from_client(node, None, e)),
            }
        }
        Ok(())
    }

    /// Creates Kafka's persistent paths (`ZkData.PersistentZkPaths`) that are missing.
    pub async fn ensure_persistent_paths(&self) -> Result<()> {
        for path in paths::PERSISTENT_PATHS {
            self.create_recursive(path).await?;
        }
        Ok(())
    }

    /// Commits `writer` (which may start with the controller-epoch check) and maps a failed
    /// check to [`ZkError::ControllerMoved`] and other failures to errors on `paths[index]`.
    async fn commit(
        &self,
        mut writer: MultiWriter<'_>,
        fence: Option<&ControllerEpoch>,
        op_paths: &[(&str, Option<i32>)],
    ) -> Result<Vec<MultiWriteResult>> {
        match writer.commit().await {
            Ok(results) => Ok(results),
            Err(MultiWriteError::RequestFailed { source }) => {
                let path = op_paths.first().map(|(p, _)| *p).unwrap_or("/");
                Err(ZkError::from_client(path, None, source))
            }
            Err(MultiWriteError::OperationFailed { index, source }) => {
                let offset = usize::from(fence.is_some());
                if let (Some(fence), 0) = (fence, index) {
                    if source == ClientError::BadVersion || source == ClientError::NoNode {
                        return Err(ZkError::ControllerMoved {
                            expected_zk_version: fence.zk_version,
                        });
                    }
                }
                let (path, expected) = index
                    .checked_sub(offset)
                    .and_then(|i| op_paths.get(i))
                    .copied()
                    .unwrap_or(("/", None));
                Err(ZkError::from_client(path, expected, source))
            }
        }
    }

    fn writer(&self, fence: Option<&ControllerEpoch>) -> Result<MultiWriter<'_>> {
        let mut writer = self.inner.client.new_multi_writer();
        if let Some(fence) = fence {
            writer
                .add_check_version(paths::CONTROLLER_EPOCH, fence.zk_version)
                .map_err(|e| ZkError::from_client(paths::CONTROLLER_EPOCH, None, e))?;
        }
        Ok(writer)
    }

    /// setData with an expected version, optionally fenced; returns the new zkVersion.
    async fn set_data_checked(
        &self,
        path: &str,
        data: &[u8],
        expected_zk_version: Option<i32>,
        fence: Option<&ControllerEpoch>,
    ) -> Result<i32> {
        if fence.is_none() {
            return self
                .inner
                .client
                .set_data(path, data, expected_zk_version)
                .await
                .map(|stat| stat.version)
                .map_err(|e| ZkError::from_client(path, expected_zk_version, e));
        }
        let mut writer = self.writer(fence)?;
        writer
            .add_set_data(path, data, expected_zk_version)
            .map_err(|e| ZkError::from_client(path, None, e))?;
        let results = self
            .commit(writer, fence, &[(path, expected_zk_version)])
            .await?;
        match results.last() {
            Some(MultiWriteResult::SetData { stat }) => Ok(stat.version),
            other => Err(ZkError::InvalidData {
                path: path.to_owned(),
                reason: format!("unexpected multi result {other:?}"),
            }),
        }
    }

    /// create, optionally fenced; returns the stat (zkVersion 0).
    async fn create_checked(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions<'_>,
        fence: Option<&ControllerEpoch>,
    ) -> Result<()> {
        if fence.is_none() {
            return self
                .create_with_parents(path, data, options)
                .await
                .map(|_| ());
        }
        let mut writer = self.writer(fence)?;
        writer
            .add_create(path, data, options)
            .map_err(|e| ZkError::from_client(path, None, e))?;
        self.commit(writer, fence, &[(path, None)])
            .await
            .map(|_| ())
    }

    // ---- brokers -----------------------------------------------------------------------

    /// Registers this broker: ephemeral `/brokers/ids/<id>` created as multi{create(empty),
    /// setData(json, version 0)} as Kafka does; returns the broker epoch (the czxid).
    ///
    /// If the znode exists and belongs to this session (a retried registration), its czxid is
    /// returned; if it belongs to the session this client replaced ([`ZkClient::reconnect`]),
    /// it is deleted and re-created; otherwise [`ZkError::BrokerIdInUse`].
    pub async fn register_broker(&self, registration: &BrokerRegistration) -> Result<i64> {
        let path = paths::broker_id(registration.broker_id);
        let data = registration.encode();
        for attempt in 0..3 {
            let mut writer = self.inner.client.new_multi_writer();
            writer
                .add_create(&path, &[], &EPHEMERAL)
                .map_err(|e| ZkError::from_client(&path, None, e))?;
            writer
                .add_set_data(&path, &data, Some(0))
                .map_err(|e| ZkError::from_client(&path, None, e))?;
            match self
                .commit(writer, None, &[(&path, None), (&path, Some(0))])
                .await
            {
                Ok(results) => {
                    if let Some(MultiWriteResult::SetData { stat }) = results.last() {
                        info!(
                            broker_id = registration.broker_id,
                            broker_epoch = stat.czxid,
                            "registered broker in ZooKeeper"
                        );
                        return Ok(stat.czxid);
                    }
                    return Err(ZkError::InvalidData {
                        path,
                        reason: format!("unexpected multi result {results:?}"),
                    });
                }
                Err(ZkError::NoNode { .. }) if attempt == 0 => {
                    self.create_recursive(paths::BROKER_IDS).await?;
                }
                Err(ZkError::NodeExists { .. }) => {
                    let Some((_, stat)) = self.get_raw(&path).await? else {
                        continue; // vanished in between: try again
                    };
                    if stat.ephemeral_owner == self.session_id() {
                        return Ok(stat.czxid);
                    }
                    if Some(stat.ephemeral_owner) == self.inner.previous_session_id {
                        warn!(%path, "broker znode still owned by our expired session; re-creating it");
                        match self.inner.client.delete(&path, Some(stat.version)).await {
                            Ok(()) | Err(ClientError::NoNode) => continue,
                            Err(e) => {
                                return Err(ZkError::from_client(&path, Some(stat.version), e))
                            }
                        }
                    }
                    return Err(ZkError::BrokerIdInUse {
                        broker_id: registration.broker_id,
                        owner: stat.ephemeral_owner,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(ZkError::NodeExists { path })
    }

    /// `/brokers/ids/<id>` with its czxid (broker epoch), `None` if not registered.
    pub async fn get_broker(
        &self,
        broker_id: i32,
    ) -> Result<Option<Versioned<BrokerRegistration>>> {
        let path = paths::broker_id(broker_id);
        match self.get_raw(&path).await? {
            None => Ok(None),
            Some((data, stat)) => Ok(Some(Versioned::new(
                BrokerRegistration::decode(&path, broker_id, &data)?,
                &stat,
            ))),
        }
    }

    /// Ids of the registered (live) brokers, ascending; non-numeric children are skipped.
    pub async fn list_broker_ids(&self) -> Result<Vec<i32>> {
        let mut ids: Vec<i32> = self
            .get_children(paths::BROKER_IDS)
            .await?
            .iter()
            .filter_map(|name| match name.parse() {
                Ok(id) => Some(id),
                Err(_) => {
                    warn!(name, "ignoring non-numeric child of /brokers/ids");
                    None
                }
            })
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// All live brokers with their epochs (a broker that vanishes while listing is skipped).
    pub async fn get_all_brokers(&self) -> Result<Vec<Versioned<BrokerRegistration>>> {
        let mut brokers = Vec::new();
        for id in self.list_broker_ids().await? {
            if let Some(broker) = self.get_broker(id).await? {
                brokers.push(broker);
            }
        }
        Ok(brokers)
    }

    /// Kafka's broker id generation (`broker.id=-1`): an unconditional setData on
    /// `/brokers/seqid`; the resulting zkVersion (1, 2, ...) plus `reserved_broker_max_id`.
    pub async fn generate_broker_id(&self, reserved_broker_max_id: i32) -> Result<i32> {
        let path = paths::BROKER_SEQID;
        let stat = match self.inner.client.set_data(path, &[], None).await {
            Ok(stat) => stat,
            Err(ClientError::NoNode) => {
                self.create_recursive(path).await?;
                self.inner
                    .client
                    .set_data(path, &[], None)
                    .await
                    .map_err(|e| ZkError::from_client(path, None, e))?
            }
            Err(e) => return Err(ZkError::from_client(path, None, e)),
        };
        Ok(stat.version + reserved_broker_max_id)
    }

    // ---- topics ------------------------------------------------------------------------

    /// Creates a topic as Kafka's `AdminZkClient`: `/config/topics/<t>` (written or
    /// overwritten, not transactional with the assignment, as in Kafka), then
    /// `/brokers/topics/<t>`. [`ZkError::NodeExists`] if the topic exists.
    pub async fn create_topic(
        &self,
        name: &str,
        assignment: &TopicAssignment,
        config: &BTreeMap<String, String>,
    ) -> Result<()> {
        let assignment_path = paths::topic(name);
        if self.get_raw(&assignment_path).await?.is_some() {
            return Err(ZkError::NodeExists {
                path: assignment_path,
            });
        }
        self.write_topic_config(name, config).await?;
        self.create_with_parents(&assignment_path, &assignment.encode(), &PERSISTENT)
            .await?;
        debug!(
            topic = name,
            partitions = assignment.partitions.len(),
            "created topic znodes"
        );
        Ok(())
    }

    /// `/brokers/topics/<t>`, `None` if the topic does not exist.
    pub async fn get_topic_assignment(
        &self,
        name: &str,
    ) -> Result<Option<Versioned<TopicAssignment>>> {
        let path = paths::topic(name);
        match self.get_raw(&path).await? {
            None => Ok(None),
            Some((data, stat)) => Ok(Some(Versioned::new(
                TopicAssignment::decode(&path, &data)?,
                &stat,
            ))),
        }
    }

    /// Rewrites `/brokers/topics/<t>` (partition additions, topic id) conditionally on its
    /// zkVersion, optionally fenced by the controller epoch; returns the new zkVersion.
    pub async fn set_topic_assignment(
        &self,
        name: &str,
        assignment: &TopicAssignment,
        expected_zk_version: i32,
        fence: Option<&ControllerEpoch>,
    ) -> Result<i32> {
        self.set_data_checked(
            &paths::topic(name),
            &assignment.encode(),
            Some(expected_zk_version),
            fence,
        )
        .await
    }

    /// Topic names under `/brokers/topics`, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        self.get_children(paths::BROKER_TOPICS).await
    }

    /// Creates `/brokers/topics/<t>/partitions/<p>/state` (and its persistent parents);
    /// the new znode's zkVersion 0 is the partition epoch.
    pub async fn create_partition_state(
        &self,
        topic: &str,
        partition: i32,
        state: &PartitionState,
        fence: Option<&ControllerEpoch>,
    ) -> Result<()> {
        let path = paths::partition_state(topic, partition);
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.create_recursive(parent).await?;
        }
        self.create_checked(&path, &state.encode(), &PERSISTENT, fence)
            .await
    }

    /// The partition state with its zkVersion (the partition epoch), `None` if absent.
    pub async fn get_partition_state(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Versioned<PartitionState>>> {
        let path = paths::partition_state(topic, partition);
        match self.get_raw(&path).await? {
            None => Ok(None),
            Some((data, stat)) => Ok(Some(Versioned::new(
                PartitionState::decode(&path, &data)?,
                &stat,
            ))),
        }
    }

    /// Conditional update of a partition state: fails with [`ZkError::BadVersion`] if the
    /// znode is not at `expected_zk_version`, [`ZkError::ControllerMoved`] if fenced by a
    /// stale controller epoch. Returns the new zkVersion (partition epoch).
    pub async fn set_partition_state(
        &self,
        topic: &str,
        partition: i32,
        state: &PartitionState,
        expected_zk_version: i32,
        fence: Option<&ControllerEpoch>,
    ) -> Result<i32> {
        let path = paths::partition_state(topic, partition);
        self.set_data_checked(&path, &state.encode(), Some(expected_zk_version), fence)
            .await
    }

    /// Marks a topic for deletion (`/admin/delete_topics/<t>`, null data). Returns false if it
    /// was already marked.
    pub async fn mark_topic_for_deletion(&self, name: &str) -> Result<bool> {
        match self
            .create_with_parents(&paths::delete_topic(name), &[], &PERSISTENT)
            .await
        {
            Ok(_) => Ok(true),
            Err(ZkError::NodeExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn list_topics_marked_for_deletion(&self) -> Result<Vec<String>> {
        self.get_children(paths::ADMIN_DELETE_TOPICS).await
    }

    /// The controller's last step of a topic deletion: removes `/brokers/topics/<t>` (with
    /// its partitions), `/config/topics/<t>` and `/admin/delete_topics/<t>`. If `fence` is
    /// given, first checks that `/controller_epoch` is still at the fenced version.
    pub async fn delete_topic_znodes(
        &self,
        name: &str,
        fence: Option<&ControllerEpoch>,
    ) -> Result<()> {
        if let Some(fence) = fence {
            self.check_controller_epoch(fence).await?;
        }
        self.delete_recursive(&paths::topic(name)).await?;
        self.delete_recursive(&paths::topic_config(name)).await?;
        self.delete_recursive(&paths::delete_topic(name)).await?;
        Ok(())
    }

    // ---- configs -----------------------------------------------------------------------

    async fn write_topic_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.write_entity_config(&paths::topic_config(name), config)
            .await
    }

    /// Writes `/config/<type>/<name>` (creating it and its parents if needed).
    async fn write_entity_config(
        &self,
        path: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<()> {
        let data = EntityConfig::new(config.clone()).encode();
        match self.inner.client.set_data(path, &data, None).await {
            Ok(_) => Ok(()),
            Err(ClientError::NoNode) => {
                match self.create_with_parents(path, &data, &PERSISTENT).await {
                    Ok(_) => Ok(()),
                    Err(ZkError::NodeExists { .. }) => self
                        .inner
                        .client
                        .set_data(path, &data, None)
                        .await
                        .map(|_| ())
                        .map_err(|e| ZkError::from_client(path, None, e)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(ZkError::from_client(path, None, e)),
        }
    }

    /// The configs of `/config/<type>/<name>`, empty if it is absent or has no data.
    async fn get_entity_config(&self, path: &str) -> Result<BTreeMap<String, String>> {
        match self.get_raw(path).await? {
            None => Ok(BTreeMap::new()),
            Some((data, _)) if data.is_empty() => Ok(BTreeMap::new()),
            Some((data, _)) => Ok(EntityConfig::decode(path, &data)?.config),
        }
    }

    /// `/config/topics/<t>`'s overrides, empty if none.
    pub async fn get_topic_config(&self, name: &str) -> Result<BTreeMap<String, String>> {
        self.get_entity_config(&paths::topic_config(name)).await
    }

    /// Replaces a topic's overrides and announces it with a sequential
    /// `/config/changes/config_change_<seq>` (`{"version":2,"entity_path":"topics/<t>"}`).
    /// Returns the notification's znode name.
    pub async fn set_topic_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.write_topic_config(name, config).await?;
        self.announce_config_change(&format!("topics/{name}")).await
    }

    /// The configs of `/config/<entity_path>` (e.g. `users/alice`: SCRAM credentials and
    /// quotas), empty if none.
    pub async fn get_entity_config_at(
        &self,
        entity_path: &str,
    ) -> Result<BTreeMap<String, String>> {
        self.get_entity_config(&format!("{}/{entity_path}", paths::CONFIG))
            .await
    }

    /// Replaces the configs of `/config/<entity_path>` and announces it as Kafka's
    /// `AdminZkClient.changeConfigs` does (`"entity_path":"users/alice"`).
    pub async fn set_entity_config_at(
        &self,
        entity_path: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.write_entity_config(&format!("{}/{entity_path}", paths::CONFIG), config)
            .await?;
        self.announce_config_change(entity_path).await
    }

    /// The entity paths with configs under `/config/users` and `/config/clients`:
    /// `users/<u>`, `users/<u>/clients/<c>`, `clients/<c>` (names as stored, sanitized).
    pub async fn list_quota_entity_paths(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for user in self.get_children(paths::CONFIG_USERS).await? {
            let user_path = format!("users/{user}");
            let clients = self
                .get_children(&format!("{}/{user}/clients", paths::CONFIG_USERS))
                .await?;
            out.push(user_path.clone());
            out.extend(clients.iter().map(|c| format!("{user_path}/clients/{c}")));
        }
        for client in self.get_children("/config/clients").await? {
            out.push(format!("clients/{client}"));
        }
        Ok(out)
    }

    /// Every `/config/brokers/<entity>` (a broker id or `<default>`) with its configs:
    /// Kafka's dynamic broker configs.
    pub async fn get_broker_configs(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        let mut out = BTreeMap::new();
        for entity in self.get_children(paths::CONFIG_BROKERS).await? {
            let config = self
                .get_entity_config(&paths::broker_config(&entity))
                .await?;
            out.insert(entity, config);
        }
        Ok(out)
    }

    /// Replaces the dynamic configs of `entity` (a broker id or `<default>`) and announces it
    /// as Kafka's `AdminZkClient.changeBrokerConfig` does (`"entity_path":"brokers/<entity>"`).
    pub async fn set_broker_config(
        &self,
        entity: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.write_entity_config(&paths::broker_config(entity), config)
            .await?;
        self.announce_config_change(&format!("brokers/{entity}"))
            .await
    }

    /// Creates `/config/changes/config_change_<seq>` naming `entity_path`; returns its name.
    async fn announce_config_change(&self, entity_path: &str) -> Result<String> {
        let notification = ConfigChangeNotification::new(entity_path.to_string());
        self.create_sequential(
            paths::CONFIG_CHANGES,
            paths::CONFIG_CHANGE_PREFIX,
            &notification.encode(),
        )
        .await
    }

    /// Creates the persistent sequential `<parent>/<prefix><seq>` (and `parent` if it is
    /// missing); returns the child's name.
    async fn create_sequential(&self, parent: &str, prefix: &str, data: &[u8]) -> Result<String> {
        let path = format!("{parent}/{prefix}");
        let mut attempt = 0;
        let sequence = loop {
            match self
                .inner
                .client
                .create(&path, data, &PERSISTENT_SEQUENTIAL)
                .await
            {
                Ok((_, sequence)) => break sequence,
                Err(ClientError::NoNode) if attempt == 0 => {
                    attempt += 1;
                    self.create_recursive(parent).await?;
                }
                Err(e) => return Err(ZkError::from_client(&path, None, e)),
            }
        };
        Ok(format!("{prefix}{sequence}"))
    }

    /// Names of the pending `config_change_<seq>` notifications, oldest first.
    pub async fn list_config_changes(&self) -> Result<Vec<String>> {
        self.get_children(paths::CONFIG_CHANGES).await
    }

    pub async fn get_config_change(&self, name: &str) -> Result<Option<ConfigChangeNotification>> {
        let path = format!("{}/{}", paths::CONFIG_CHANGES, name);
        self.get_decoded(&path, ConfigChangeNotification::decode)
            .await
    }

    // ---- ACLs ----------------------------------------------------------------------------

    /// Creates the ACL roots Kafka's `AclAuthorizer` creates (`createAclPaths`).
    pub async fn create_acl_paths(&self) -> Result<()> {
        for path in [
            paths::KAFKA_ACL,
            paths::KAFKA_ACL_CHANGES,
            paths::KAFKA_ACL_PREFIXED,
            paths::KAFKA_ACL_EXTENDED_CHANGES,
        ] {
            self.create_recursive(path).await?;
        }
        Ok(())
    }

    /// The resources with an ACL znode under `root` (`/kafka-acl` or
    /// `/kafka-acl-extended/prefixed`): (resource type name, resource name).
    pub async fn list_acl_resources(&self, root: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for resource_type in self.get_children(root).await? {
            for name in self
                .get_children(&format!("{root}/{resource_type}"))
                .await?
            {
                out.push((resource_type.clone(), name));
            }
        }
        Ok(out)
    }

    /// The ACLs of `<root>/<type>/<name>` and the znode's version, `None` if it is absent.
    pub async fn get_resource_acls(&self, path: &str) -> Result<Option<(ResourceAcls, i32)>> {
        match self.get_raw(path).await? {
            None => Ok(None),
            Some((data, stat)) => Ok(Some((ResourceAcls::decode(path, &data)?, stat.version))),
        }
    }

    /// Kafka's conditional ACL write: `acls` at `path` if the znode is still at
    /// `expected_version` (`None`: it must not exist yet); no ACLs deletes the znode. `false`
    /// when the znode changed meanwhile (the caller re-reads and retries).
    pub async fn write_resource_acls(
        &self,
        path: &str,
        acls: &ResourceAcls,
        expected_version: Option<i32>,
    ) -> Result<bool> {
        let client = &self.inner.client;
        let outcome = match (acls.acls.is_empty(), expected_version) {
            (true, None) => return Ok(true),
            (true, Some(version)) => client.delete(path, Some(version)).await,
            (false, Some(version)) => client
                .set_data(path, &acls.encode(), Some(version))
                .await
                .map(|_| ()),
            (false, None) => {
                return match self
                    .create_with_parents(path, &acls.encode(), &PERSISTENT)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(ZkError::NodeExists { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        };
        match outcome {
            Ok(()) => Ok(true),
            // Deleted already: nothing left to delete (Kafka's conditionalDelete says true).
            Err(ClientError::NoNode) if acls.acls.is_empty() => Ok(true),
            Err(ClientError::NoNode) | Err(ClientError::BadVersion) => Ok(false),
            Err(e) => Err(ZkError::from_client(path, expected_version, e)),
        }
    }

    /// Announces changed ACLs in `changes_root` (`/kafka-acl-changes` or
    /// `/kafka-acl-extended-changes`); returns the notification's name.
    pub async fn announce_acl_change(&self, changes_root: &str, data: &[u8]) -> Result<String> {
        self.create_sequential(changes_root, paths::ACL_CHANGE_PREFIX, data)
            .await
    }

    /// A change notification's data and creation time (ms since the epoch), `None` if gone.
    pub async fn get_acl_change(&self, path: &str) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(self
            .get_raw(path)
            .await?
            .map(|(data, stat)| (data, stat.ctime)))
    }

    /// Deletes an old change notification (Kafka purges those older than 15 minutes).
    pub async fn delete_acl_change(&self, path: &str) -> Result<()> {
        match self.inner.client.delete(path, None).await {
            Ok(()) | Err(ClientError::NoNode) => Ok(()),
            Err(e) => Err(ZkError::from_client(path, None, e)),
        }
    }

    // ---- log directory events ----------------------------------------------------------

    /// A broker's log directory failed: creates
    /// `/log_dir_event_notification/log_dir_event_<seq>` (Kafka's `propagateLogDirEvent`);
    /// returns its name.
    pub async fn announce_log_dir_failure(&self, broker: i32) -> Result<String> {
        self.create_sequential(
            paths::LOG_DIR_EVENT_NOTIFICATION,
            paths::LOG_DIR_EVENT_PREFIX,
            &LogDirEventNotification::failure(broker).encode(),
        )
        .await
    }

    /// Names of the pending log directory events, oldest first.
    pub async fn list_log_dir_events(&self) -> Result<Vec<String>> {
        self.get_children(paths::LOG_DIR_EVENT_NOTIFICATION).await
    }

    /// The broker a log directory event names; `None` if it is gone.
    pub async fn get_log_dir_event(&self, name: &str) -> Result<Option<LogDirEventNotification>> {
        let path = format!("{}/{}", paths::LOG_DIR_EVENT_NOTIFICATION, name);
        self.get_decoded(&path, LogDirEventNotification::decode)
            .await
    }

    /// The controller has handled a log directory event: deletes it, fenced by the
    /// controller epoch as Kafka's `deleteLogDirEventNotifications`. Gone already is fine.
    pub async fn delete_log_dir_event(&self, name: &str, fence: &ControllerEpoch) -> Result<()> {
        let path = format!("{}/{}", paths::LOG_DIR_EVENT_NOTIFICATION, name);
        let mut writer = self.writer(Some(fence))?;
        writer
            .add_delete(&path, None)
            .map_err(|e| ZkError::from_client(&path, None, e))?;
        match self.commit(writer, Some(fence), &[(&path, None)]).await {
            Ok(_) | Err(ZkError::NoNode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ---- controller --------------------------------------------------------------------

    /// The current `/controller`, `None` if there is no controller.
    pub async fn get_controller(&self) -> Result<Option<Versioned<ControllerZnode>>> {
        match self.get_raw(paths::CONTROLLER).await? {
            None => Ok(None),
            Some((data, stat)) => Ok(Some(Versioned::new(
                ControllerZnode::decode(paths::CONTROLLER, &data)?,
                &stat,
            ))),
        }
    }

    /// `/feature` (KIP-584) and its zkVersion (the finalized features' epoch), `None` before
    /// a controller first wrote it.
    pub async fn get_feature(&self) -> Result<Option<Versioned<FeatureZnode>>> {
        match self.get_raw(paths::FEATURE).await? {
            None => Ok(None),
            Some((data, stat)) => Ok(Some(Versioned::new(
                FeatureZnode::decode(paths::FEATURE, &data)?,
                &stat,
            ))),
        }
    }

    /// Finalizes `feature` at `level` in `/feature` (0: removes it), conditional on the
    /// znode's version as read (Kafka's controller writes `{"max_version_level": N}`).
    pub async fn set_finalized_feature(&self, feature: &str, level: i16) -> Result<()> {
        self.ensure_feature_versioning().await?;
        let Some(current) = self.get_feature().await? else {
            return Err(ZkError::from_client(
                paths::FEATURE,
                None,
                ClientError::NoNode,
            ));
        };
        let mut features = current.value.features.clone();
        if level > 0 {
            features.insert(
                feature.to_string(),
                serde_json::json!({ "max_version_level": level }),
            );
        } else {
            features.remove(feature);
        }
        let wanted = FeatureZnode::enabled(features);
        self.inner
            .client
            .set_data(paths::FEATURE, &wanted.encode(), Some(current.zk_version))
            .await
            .map(|_| ())
            .map_err(|e| ZkError::from_client(paths::FEATURE, Some(current.zk_version), e))
    }

    /// `/controller_epoch` and its zkVersion, `None` before the first election.
    pub async fn get_controller_epoch(&self) -> Result<Option<ControllerEpoch>> {
        match self.get_raw(paths::CONTROLLER_EPOCH).await? {
            None => Ok(None),
            Some((data, stat)) => Ok(Some(ControllerEpoch {
                epoch: decode_controller_epoch(paths::CONTROLLER_EPOCH, &data)?,
                zk_version: stat.version,
            })),
        }
    }

    /// Fails with [`ZkError::ControllerMoved`] if `/controller_epoch` moved past `fence`.
    pub async fn check_controller_epoch(&self, fence: &ControllerEpoch) -> Result<()> {
        match self.get_controller_epoch().await? {
            Some(current) if current.zk_version == fence.zk_version => Ok(()),
            _ => Err(ZkError::ControllerMoved {
                expected_zk_version: fence.zk_version,
            }),
        }
    }

    /// What a Kafka 3.9 controller does on election (`enableFeatureVersioning`, IBP 3.9):
    /// `/feature` enabled, created with no finalized feature if absent, a disabled one
    /// enabled with the features it holds.
    pub async fn ensure_feature_versioning(&self) -> Result<()> {
        match self.get_raw(paths::FEATURE).await? {
            None => {
                let data = FeatureZnode::enabled(Default::default()).encode();
                match self
                    .inner
                    .client
                    .create(paths::FEATURE, &data, &PERSISTENT)
                    .await
                {
                    Ok(_) | Err(ClientError::NodeExists) => Ok(()),
                    Err(e) => Err(ZkError::from_client(paths::FEATURE, None, e)),
                }
            }
            Some((data, stat)) => {
                let current = FeatureZnode::decode(paths::FEATURE, &data)?;
                let wanted = FeatureZnode::enabled(current.features.clone());
                if current == wanted {
                    return Ok(());
                }
                self.inner
                    .client
                    .set_data(paths::FEATURE, &wanted.encode(), Some(stat.version))
                    .await
                    .map(|_| ())
                    .map_err(|e| ZkError::from_client(paths::FEATURE, Some(stat.version), e))
            }
        }
    }

    /// One election attempt (Kafka's `registerControllerAndIncrementControllerEpoch`):
    /// creates `/controller_epoch` with 0 if missing, then one multi of create ephemeral
    /// `/controller` + setData `/controller_epoch` = epoch + 1 conditional on its zkVersion.
    /// `Some(epoch)` if this broker is now controller, `None` if another one is.
    pub async fn try_elect_controller(&self, broker_id: i32) -> Result<Option<ControllerEpoch>> {
        if let Some(controller) = self.get_controller().await? {
            return self.already_controller(broker_id, &controller).await;
        }
        let current = match self.get_controller_epoch().await? {
            Some(current) => current,
            None => {
                match self
                    .inner
                    .client
                    .create(
                        paths::CONTROLLER_EPOCH,
                        &encode_controller_epoch(0),
                        &PERSISTENT,
                    )
                    .await
                {
                    Ok(_) | Err(ClientError::NodeExists) => {}
                    Err(e) => return Err(ZkError::from_client(paths::CONTROLLER_EPOCH, None, e)),
                }
                self.get_controller_epoch()
                    .await?
                    .ok_or_else(|| ZkError::NoNode {
                        path: paths::CONTROLLER_EPOCH.to_owned(),
                    })?
            }
        };
        let new_epoch = current.epoch + 1;
        let mut writer = self.inner.client.new_multi_writer();
        writer
            .add_create(
                paths::CONTROLLER,
                &ControllerZnode::new(broker_id).encode(),
                &EPHEMERAL,
            )
            .map_err(|e| ZkError::from_client(paths::CONTROLLER, None, e))?;
        writer
            .add_set_data(
                paths::CONTROLLER_EPOCH,
                &encode_controller_epoch(new_epoch),
                Some(current.zk_version),
            )
            .map_err(|e| ZkError::from_client(paths::CONTROLLER_EPOCH, None, e))?;
        let op_paths = [
            (paths::CONTROLLER, None),
            (paths::CONTROLLER_EPOCH, Some(current.zk_version)),
        ];
        match self.commit(writer, None, &op_paths).await {
            Ok(results) => match results.last() {
                Some(MultiWriteResult::SetData { stat }) => {
                    let won = ControllerEpoch {
                        epoch: new_epoch,
                        zk_version: stat.version,
                    };
                    info!(
                        broker_id,
                        epoch = won.epoch,
                        epoch_zk_version = won.zk_version,
                        "elected controller"
                    );
                    Ok(Some(won))
                }
                other => Err(ZkError::InvalidData {
                    path: paths::CONTROLLER_EPOCH.to_owned(),
                    reason: format!("unexpected multi result {other:?}"),
                }),
            },
            Err(ZkError::NodeExists { .. }) | Err(ZkError::BadVersion { .. }) => {
                // Lost the race, or our own earlier attempt succeeded before a connection loss.
                match self.get_controller().await? {
                    Some(controller) => self.already_controller(broker_id, &controller).await,
                    None => Ok(None),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn already_controller(
        &self,
        broker_id: i32,
        controller: &Versioned<ControllerZnode>,
    ) -> Result<Option<ControllerEpoch>> {
        if controller.value.brokerid == broker_id && controller.ephemeral_owner == self.session_id()
        {
            return self.get_controller_epoch().await;
        }
        debug!(
            controller = controller.value.brokerid,
            "another broker is controller"
        );
        Ok(None)
    }

    /// Resigns: deletes `/controller` if this session owns it.
    pub async fn resign_controller(&self) -> Result<()> {
        if let Some((_, stat)) = self.get_raw(paths::CONTROLLER).await? {
            if stat.ephemeral_owner == self.session_id() {
                match self
                    .inner
                    .client
                    .delete(paths::CONTROLLER, Some(stat.version))
                    .await
                {
                    Ok(()) | Err(ClientError::NoNode) => {}
                    Err(e) => {
                        return Err(ZkError::from_client(
                            paths::CONTROLLER,
                            Some(stat.version),
                            e,
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    // ---- cluster id and producer ids ---------------------------------------------------

    pub async fn get_cluster_id(&self) -> Result<Option<String>> {
        let znode = self
            .get_decoded(paths::CLUSTER_ID, ClusterIdZnode::decode)
            .await?;
        Ok(znode.map(|z| z.id))
    }

    /// Reads `/cluster/id`, creating it with a fresh Kafka-style id if this is the first broker.
    pub async fn get_or_create_cluster_id(&self) -> Result<String> {
        if let Some(id) = self.get_cluster_id().await? {
            return Ok(id);
        }
        let id = new_kafka_uuid();
        match self
            .create_with_parents(
                paths::CLUSTER_ID,
                &ClusterIdZnode::new(id.clone()).encode(),
                &PERSISTENT,
            )
            .await
        {
            Ok(_) => Ok(id),
            Err(ZkError::NodeExists { .. }) => {
                self.get_cluster_id().await?.ok_or_else(|| ZkError::NoNode {
                    path: paths::CLUSTER_ID.to_owned(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `/latest_producer_id_block` with its zkVersion; `None` if absent or still empty.
    pub async fn get_producer_id_block(&self) -> Result<Option<Versioned<ProducerIdBlock>>> {
        match self.get_raw(paths::LATEST_PRODUCER_ID_BLOCK).await? {
            None => Ok(None),
            Some((data, _)) if data.is_empty() => Ok(None),
            Some((data, stat)) => Ok(Some(Versioned::new(
                ProducerIdBlock::decode(paths::LATEST_PRODUCER_ID_BLOCK, &data)?,
                &stat,
            ))),
        }
    }

    /// Claims the next block of `block_size` producer ids (Kafka's `ZkProducerIdManager`):
    /// read the latest block and its zkVersion, write the following block conditionally,
    /// retry on a concurrent claim.
    pub async fn allocate_producer_id_block(
        &self,
        broker_id: i32,
        block_size: i64,
    ) -> Result<ProducerIdBlock> {
        let path = paths::LATEST_PRODUCER_ID_BLOCK;
        loop {
            let (next_start, expected) = match self.get_raw(path).await? {
                None => {
                    match self.create_with_parents(path, &[], &PERSISTENT).await {
                        Ok(_) | Err(ZkError::NodeExists { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                Some((data, stat)) if data.is_empty() => (0, stat.version),
                Some((data, stat)) => {
                    let latest = ProducerIdBlock::decode(path, &data)?;
                    let next = latest
                        .block_end
                        .checked_add(1)
                        .filter(|n| n.checked_add(block_size).is_some());
                    let Some(next) = next else {
                        return Err(ZkError::InvalidData {
                            path: path.to_owned(),
                            reason: "producer ids exhausted".to_owned(),
                        });
                    };
                    (next, stat.version)
                }
            };
            let block = ProducerIdBlock::new(broker_id, next_start, block_size);
            match self
                .set_data_checked(path, &block.encode(), Some(expected), None)
                .await
            {
                Ok(_) => return Ok(block),
                Err(ZkError::BadVersion { .. }) => {
                    debug!("producer id block claimed concurrently; retrying");
                }
                Err(e) => return Err(e),
            }
        }
    }

    // ---- watches -----------------------------------------------------------------------

    /// Session state changes (`Disconnected`, `Connected`, then terminal `Expired`/`Closed`).
    pub fn session_events(&self) -> mpsc::Receiver<SessionEvent> {
        zkwatch::spawn_session_events(self.inner.client.state_watcher(), self.shutdown_receiver())
    }

    /// Children of `path`: the current list first, then the new list after every change
    /// (one-shot child watches re-armed after each event, as Kafka does). Ends with
    /// `ZkEvent::Session(Expired)` when the session dies. A missing `path` is waited for.
    pub fn watch_children(&self, path: &str) -> mpsc::Receiver<ZkEvent> {
        zkwatch::spawn_children(
            self.inner.client.clone(),
            path.to_owned(),
            self.shutdown_receiver(),
        )
    }

    /// Data of `path`: the current bytes first (or `None` if absent), then after every
    /// change, creation or deletion.
    pub fn watch_data(&self, path: &str) -> mpsc::Receiver<ZkEvent> {
        zkwatch::spawn_data(
            self.inner.client.clone(),
            path.to_owned(),
            self.shutdown_receiver(),
        )
    }

    /// A persistent recursive watch (ZooKeeper 3.6+) on `path`: node created / deleted / data
    /// changed events for it and every descendant. Events during a reconnection may be lost
    /// (ZOOKEEPER-4698): after `Session(Connected)` re-read the state.
    pub async fn watch_recursive(&self, path: &str) -> Result<mpsc::Receiver<ZkEvent>> {
        let watcher = self
            .inner
            .client
            .watch(path, zookeeper_client::AddWatchMode::PersistentRecursive)
            .await
            .map_err(|e| ZkError::from_client(path, None, e))?;
        Ok(zkwatch::spawn_persistent(watcher, self.shutdown_receiver()))
    }
}
