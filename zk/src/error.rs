//! The error type of gregor-zk: ZooKeeper's failures that callers act on (missing node, existing
//! node, stale zkVersion, lost controllership, expired session) get their own variant; the
//! rest keep the `zookeeper-client` error with the path it happened on.

use zookeeper_client::Error as ClientError;

/// Everything a gregor-zk call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("invalid ZooKeeper connect string {connect_string:?}: {reason}")]
    InvalidConnectString {
        connect_string: String,
        reason: &'static str,
    },

    #[error("could not connect to ZooKeeper at {connect_string:?}: {source}")]
    Connect {
        connect_string: String,
        source: ClientError,
    },

    #[error("znode {path} does not exist")]
    NoNode { path: String },

    #[error("znode {path} already exists")]
    NodeExists { path: String },

    #[error("znode {path} has changed: expected zkVersion {expected:?}")]
    BadVersion { path: String, expected: Option<i32> },

    /// A fenced write found `/controller_epoch` at another version: another controller was
    /// elected since ours.
    #[error("controller moved: /controller_epoch is no longer at zkVersion {expected_zk_version}")]
    ControllerMoved { expected_zk_version: i32 },

    #[error(
        "broker id {broker_id} is already registered by another ZooKeeper session (0x{owner:x})"
    )]
    BrokerIdInUse { broker_id: i32, owner: i64 },

    #[error("ZooKeeper session expired")]
    SessionExpired,

    #[error("ZooKeeper connection lost during an operation on {path}")]
    ConnectionLoss { path: String },

    #[error("znode {path} holds malformed JSON: {source}")]
    MalformedJson {
        path: String,
        source: serde_json::Error,
    },

    #[error("znode {path} holds unexpected data: {reason}")]
    InvalidData { path: String, reason: String },

    #[error("ZooKeeper operation on {path} failed: {source}")]
    Zookeeper { path: String, source: ClientError },
}

impl ZkError {
    /// Classifies a `zookeeper-client` error raised by an operation on `path`.
    pub(crate) fn from_client(path: &str, expected: Option<i32>, err: ClientError) -> ZkError {
        match err {
            ClientError::NoNode => ZkError::NoNode {
                path: path.to_owned(),
            },
            ClientError::NodeExists => ZkError::NodeExists {
                path: path.to_owned(),
            },
            ClientError::BadVersion => ZkError::BadVersion {
                path: path.to_owned(),
                expected,
            },
            ClientError::SessionExpired => ZkError::SessionExpired,
            ClientError::ConnectionLoss => ZkError::ConnectionLoss {
                path: path.to_owned(),
            },
            other => ZkError::Zookeeper {
                path: path.to_owned(),
                source: other,
            },
        }
    }

    /// True for a request cut off by a lost connection (the client reconnects by itself
    /// within the session): the request may or may not have been applied; retry it in a way
    /// that is safe to repeat. Socket errors surface as `Custom` errors of the client.
    pub fn is_connection_loss(&self) -> bool {
        matches!(self, ZkError::ConnectionLoss { .. })
            || matches!(
                self,
                ZkError::Zookeeper {
                    source: ClientError::ConnectionLoss
                        | ClientError::Timeout
                        | ClientError::Custom(_),
                    ..
                }
            )
    }

    /// True for errors after which the caller should build a new session
    /// ([`crate::ZkClient::reconnect`]).
    pub fn is_session_expired(&self) -> bool {
        matches!(self, ZkError::SessionExpired)
            || matches!(
                self,
                ZkError::Zookeeper {
                    source: ClientError::SessionExpired | ClientError::ClientClosed,
                    ..
                }
            )
    }
}

/// `Result` with [`ZkError`].
pub type Result<T, E = ZkError> = std::result::Result<T, E>;
