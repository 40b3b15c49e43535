//! ZooKeeper watches turned into `tokio::sync::mpsc` event streams. Each stream is served by a
//! task holding a clone of the session; the task ends when the receiver is dropped, when the
//! last `ZkClient` is dropped, or after reporting a terminal session state.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};
use zookeeper_client::{
    Client, Error as ClientError, EventType, PersistentWatcher, SessionState, StateWatcher,
    WatchedEvent,
};

use crate::client::Versioned;

const CHANNEL_CAPACITY: usize = 64;
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// A change of the session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// Connection lost; the client reconnects within the same session by itself.
    Disconnected,
    /// (Re)connected within the same session. Watches survive, but re-read state.
    Connected,
    /// Terminal: the session is gone with its ephemerals. Build a new one with
    /// [`crate::ZkClient::reconnect`], re-register and re-arm watches.
    Expired,
    /// Terminal: authentication failed.
    AuthFailed,
    /// Terminal: closed by us.
    Closed,
}

impl SessionEvent {
    fn from_state(state: SessionState) -> SessionEvent {
        match state {
            SessionState::Disconnected => SessionEvent::Disconnected,
            SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                SessionEvent::Connected
            }
            SessionState::Expired => SessionEvent::Expired,
            SessionState::AuthFailed => SessionEvent::AuthFailed,
            SessionState::Closed => SessionEvent::Closed,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionEvent::Expired | SessionEvent::AuthFailed | SessionEvent::Closed
        )
    }
}

/// What a watch stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkEvent {
    /// From [`crate::ZkClient::watch_children`]: the children of `path` now (sorted; empty
    /// if `path` does not exist).
    Children {
        path: String,
        children: Vec<String>,
    },
    /// From [`crate::ZkClient::watch_data`]: the data of `path` now, `None` if it does not exist.
    Data {
        path: String,
        data: Option<Versioned<Vec<u8>>>,
    },
    /// From [`crate::ZkClient::watch_recursive`]: a node event under the watched path.
    NodeCreated {
        path: String,
    },
    NodeDeleted {
        path: String,
    },
    NodeDataChanged {
        path: String,
    },
    /// The session changed state; after a terminal state the stream ends.
    Session(SessionEvent),
}

/// Waits for `fut` unless the receiver went away or the client was dropped (`None` then).
async fn unless_stopped<T>(
    tx: &mpsc::Sender<ZkEvent>,
    shutdown: &mut watch::Receiver<()>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        value = fut => Some(value),
        _ = tx.closed() => None,
        _ = shutdown.changed() => None,
    }
}

/// Handles a session event seen by a one-shot watcher; true if the stream must end.
async fn session_event_ends_stream(tx: &mpsc::Sender<ZkEvent>, event: &WatchedEvent) -> bool {
    if event.event_type != EventType::Session {
        return false;
    }
    let session = SessionEvent::from_state(event.session_state);
    let _ = tx.send(ZkEvent::Session(session)).await;
    session.is_terminal()
}

/// Handles an error of a read that arms a watch; true if the stream must end.
async fn error_ends_stream(tx: &mpsc::Sender<ZkEvent>, path: &str, err: ClientError) -> bool {
    match err {
        ClientError::SessionExpired | ClientError::ClientClosed => {
            let event = if err == ClientError::SessionExpired {
                SessionEvent::Expired
            } else {
                SessionEvent::Closed
            };
            let _ = tx.send(ZkEvent::Session(event)).await;
            true
        }
        ClientError::AuthFailed => {
            let _ = tx.send(ZkEvent::Session(SessionEvent::AuthFailed)).await;
            true
        }
        other => {
            warn!(path, error = %other, "arming a ZooKeeper watch failed; retrying");
            tokio::time::sleep(RETRY_DELAY).await;
            false
        }
    }
}

pub(crate) fn spawn_session_events(
    mut watcher: StateWatcher,
    mut shutdown: watch::Receiver<()>,
) -> mpsc::Receiver<SessionEvent> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(async move {
        loop {
            let state = tokio::select! {
                state = watcher.changed() => state,
                _ = tx.closed() => return,
                _ = shutdown.changed() => return,
            };
            let event = SessionEvent::from_state(state);
            debug!(?event, "ZooKeeper session event");
            if tx.send(event).await.is_err() || event.is_terminal() {
                return;
            }
        }
    });
    rx
}

pub(crate) fn spawn_children(
    client: Client,
    path: String,
    mut shutdown: watch::Receiver<()>,
) -> mpsc::Receiver<ZkEvent> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(async move {
        loop {
            let armed =
                unless_stopped(&tx, &mut shutdown, client.list_and_watch_children(&path)).await;
            let watcher = match armed {
                None => return,
                Some(Ok((mut children, watcher))) => {
                    children.sort();
                    let event = ZkEvent::Children {
                        path: path.clone(),
                        children,
                    };
                    if tx.send(event).await.is_err() {
                        return;
                    }
                    watcher
                }
                Some(Err(ClientError::NoNode)) => {
                    // Wait for the node to appear (an exists watch works on a missing path).
                    match unless_stopped(&tx, &mut shutdown, client.check_and_watch_stat(&path))
                        .await
                    {
                        None => return,
                        Some(Ok((Some(_), _))) => continue,
                        Some(Ok((None, watcher))) => {
                            let event = ZkEvent::Children {
                                path: path.clone(),
                                children: Vec::new(),
                            };
                            if tx.send(event).await.is_err() {
                                return;
                            }
                            watcher
                        }
                        Some(Err(err)) => {
                            if error_ends_stream(&tx, &path, err).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
                Some(Err(err)) => {
                    if error_ends_stream(&tx, &path, err).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(event) = unless_stopped(&tx, &mut shutdown, watcher.changed()).await else {
                return;
            };
            if session_event_ends_stream(&tx, &event).await {
                return;
            }
        }
    });
    rx
}

pub(crate) fn spawn_data(
    client: Client,
    path: String,
    mut shutdown: watch::Receiver<()>,
) -> mpsc::Receiver<ZkEvent> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(async move {
        loop {
            let armed = unless_stopped(&tx, &mut shutdown, client.get_and_watch_data(&path)).await;
            let watcher = match armed {
                None => return,
                Some(Ok((data, stat, watcher))) => {
                    let event = ZkEvent::Data {
                        path: path.clone(),
                        data: Some(Versioned {
                            value: data,
                            zk_version: stat.version,
                            czxid: stat.czxid,
                            ephemeral_owner: stat.ephemeral_owner,
                        }),
                    };
                    if tx.send(event).await.is_err() {
                        return;
                    }
                    watcher
                }
                Some(Err(ClientError::NoNode)) => {
                    match unless_stopped(&tx, &mut shutdown, client.check_and_watch_stat(&path))
                        .await
                    {
                        None => return,
                        Some(Ok((Some(_), _))) => continue,
                        Some(Ok((None, watcher))) => {
                            let event = ZkEvent::Data {
                                path: path.clone(),
                                data: None,
                            };
                            if tx.send(event).await.is_err() {
                                return;
                            }
                            watcher
                        }
                        Some(Err(err)) => {
                            if error_ends_stream(&tx, &path, err).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
                Some(Err(err)) => {
                    if error_ends_stream(&tx, &path, err).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(event) = unless_stopped(&tx, &mut shutdown, watcher.changed()).await else {
                return;
            };
            if session_event_ends_stream(&tx, &event).await {
                return;
            }
        }
    });
    rx
}

pub(crate) fn spawn_persistent(
    mut watcher: PersistentWatcher,
    mut shutdown: watch::Receiver<()>,
) -> mpsc::Receiver<ZkEvent> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(async move {
        loop {
            // `PersistentWatcher::changed` panics once called after a terminal session
            // event: we return right after forwarding one.
            let Some(event) = unless_stopped(&tx, &mut shutdown, watcher.changed()).await else {
                return;
            };
            let forwarded = match event.event_type {
                EventType::Session => {
                    let session = SessionEvent::from_state(event.session_state);
                    let _ = tx.send(ZkEvent::Session(session)).await;
                    if session.is_terminal() {
                        return;
                    }
                    continue;
                }
                EventType::NodeCreated => ZkEvent::NodeCreated { path: event.path },
                EventType::NodeDeleted => ZkEvent::NodeDeleted { path: event.path },
                EventType::NodeDataChanged => ZkEvent::NodeDataChanged { path: event.path },
                // Not produced by recursive watches; nothing to forward.
                EventType::NodeChildrenChanged => continue,
            };
            if tx.send(forwarded).await.is_err() {
                return;
            }
        }
    });
    rx
}
