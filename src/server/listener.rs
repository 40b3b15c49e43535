//! The accept loop: one tokio task per connection, until shutdown. On shutdown it stops
//! accepting, lets each connection finish the request it is serving, and waits for them
//! (bounded) before the caller flushes and closes the logs.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::connection::serve_connection;
use super::heap_release::{release_free_heap, BurstWatch};
use super::Shutdown;
use crate::broker::Broker;
use crate::metrics;

/// How long in-flight requests get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Sleeps until `at`, or forever when it is None.
async fn sleep_until_some(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

pub async fn run(listener: TcpListener, broker: Arc<Broker>, mut shutdown: Shutdown) {
    let counters = metrics::connections(
        broker
            .config
            .listeners
            .first()
            .map_or("PLAINTEXT", |l| l.name.as_str()),
    );
    let mut connections = JoinSet::new();
    let mut burst = BurstWatch::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "accepted connection");
                    // Counted open from here until its task ends (or is aborted).
                    let counted = counters.opened();
                    connections.spawn(serve_connection(stream, peer, broker.clone(), shutdown.clone(), counted));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = sleep_until_some(burst.release_at()) => {
                tokio::task::spawn_blocking(release_free_heap);
                burst.released(connections.len());
            }
            _ = shutdown.recv() => break,
        }
        burst.observe(connections.len(), std::time::Instant::now());
    }
    drop(listener);
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
