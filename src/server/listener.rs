//! The accept loops, one per listener (`listeners`), and the connections they start: one tokio
//! task per connection, until shutdown. On shutdown they stop accepting, let each connection
//! finish the request it is serving, and wait for them (bounded) before the caller flushes and
//! closes the logs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::connection::serve_connection;
use super::heap_release::{release_free_heap, BurstWatch};
use super::Shutdown;
use crate::broker::Broker;
use crate::config::{BrokerConfig, Listener, SecurityProtocol};
use crate::metrics::{self, ConnectionCounters};
use crate::security::sasl::SaslListener;
use crate::security::tls::TlsListener;

/// What a connection needs to know of the listener it came in on: its name and security
/// protocol, the TLS and SASL settings where the protocol has them, and its counters.
pub struct ListenerContext {
    pub name: String,
    pub security_protocol: SecurityProtocol,
    pub tls: Option<TlsListener>,
    pub sasl: Option<SaslListener>,
    pub counters: ConnectionCounters,
}

impl ListenerContext {
    /// Reads the listener's TLS and SASL settings; a listener that cannot serve stops the start.
    pub fn from_config(config: &BrokerConfig, listener: &Listener) -> anyhow::Result<Self> {
        let protocol = listener.security_protocol;
        let tls = if protocol.uses_tls() {
            Some(TlsListener::from_config(config, &listener.name)?)
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            Some(SaslListener::from_config(config, &listener.name)?)
        } else {
            None
        };
        Ok(ListenerContext {
            name: listener.name.clone(),
            security_protocol: protocol,
            tls,
            sasl,
            counters: metrics::connections(&listener.name),
        })
    }
}

/// A bound listener socket and what its connections are served with.
pub struct BoundListener {
    pub socket: TcpListener,
    pub context: Arc<ListenerContext>,
}

/// How long in-flight requests get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Sleeps until `at`, or forever when it is None.
async fn sleep_until_some(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

pub async fn run(listeners: Vec<BoundListener>, broker: Arc<Broker>, mut shutdown: Shutdown) {
    // Each listener's accept loop hands its connections to this one task, which owns them all.
    let (accepted_tx, mut accepted_rx) = mpsc::channel::<Accepted>(64);
    let mut acceptors = JoinSet::new();
    for l in listeners {
        acceptors.spawn(accept_loop(l, accepted_tx.clone()));
    }
    drop(accepted_tx);
    let mut connections = JoinSet::new();
    let mut burst = BurstWatch::new();
    loop {
        tokio::select! {
            Some((stream, peer, listener)) = accepted_rx.recv() => {
                debug!(%peer, listener = %listener.name, "accepted connection");
                // Counted open from here until its task ends (or is aborted).
                let counted = listener.counters.opened();
                connections.spawn(serve_connection(
                    stream, peer, broker.clone(), listener, shutdown.clone(), counted,
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = sleep_until_some(burst.release_at()) => {
                tokio::task::spawn_blocking(release_free_heap);
                burst.released(connections.len());
            }
            _ = shutdown.recv() => break,
        }
        burst.observe(connections.len(), std::time::Instant::now());
    }
    // Dropping the accept loops closes their sockets.
    acceptors.abort_all();
    info!(
        open = connections.len(),
        "stopped accepting; draining connections"
    );
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            left = connections.len(),
            "connections did not finish in time; aborting them"
        );
        connections.abort_all();
    }
}

/// An accepted connection and the listener it came in on.
type Accepted = (TcpStream, SocketAddr, Arc<ListenerContext>);

/// Accepts connections on one listener until the receiving side goes away.
async fn accept_loop(listener: BoundListener, accepted: mpsc::Sender<Accepted>) {
    loop {
        match listener.socket.accept().await {
            Ok((stream, peer)) => {
                if accepted
                    .send((stream, peer, listener.context.clone()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(listener = %listener.context.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
