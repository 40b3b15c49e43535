//! One client connection: read a frame, serve it, write the answer, repeat.
//!
//! Requests on a connection are served one at a time in arrival order, as Kafka does
//! (it mutes a channel until its response is sent), so responses leave in request order
//! and an idempotent producer's pipelined batches reach the log in sequence. Clients still
//! pipeline: later requests wait in the socket buffer. Every protocol error ends only this
//! connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_protocol::{decode_request, FrameReader};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::send::write_response;
use super::Shutdown;
use crate::broker::Broker;
use crate::handlers::{self, Reply};
use crate::metrics::{self, ConnectionGuard};

pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: Shutdown,
    _counted: ConnectionGuard,
) {
    let _ = stream.set_nodelay(true);
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = FrameReader::new(read_half, broker.config.socket_request_max_bytes);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let client_host = format!("/{}", peer.ip());
    loop {
        let frame = tokio::select! {
            read = tokio::time::timeout(idle, reader.read_frame()) => match read {
                Err(_) => {
                    debug!(%peer, "connection idle for connections.max.idle.ms; closing");
                    return;
                }
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) => return,
                // A peer that resets its connection is not sending bad input.
                Ok(Err(gregor_protocol::FrameError::Io(e))) => {
                    debug!(%peer, error = %e, "connection error; closing connection");
                    return;
                }
                Ok(Err(e)) => {
                    warn!(%peer, error = %e, "bad frame; closing connection");
                    return;
                }
            },
            _ = shutdown.recv() => return,
        };
        // Kafka's request times start when the whole frame has been read.
        let read_at = Instant::now();
        let request = match decode_request(frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(%peer, error = %e, "cannot serve request; closing connection");
                return;
            }
        };
        let timing = metrics::request(
            request.api_key,
            request.api_version,
            handlers::fetch::from_follower(&request),
        );
        timing.queued(read_at.elapsed());
        // Boxed: the largest handler's state would otherwise sit in every connection's
        // task, idle or not (2.4 KB of the 3 KB an idle connection costs).
        let reply = Box::pin(handlers::handle(&broker, request, &client_host)).await;
        match reply {
            Reply::Send(parts) => {
                let written = write_response(&mut write_half, &parts).await;
                timing.done(read_at.elapsed());
                if let Err(e) = written {
                    debug!(%peer, error = %e, "write failed; closing connection");
                    return;
                }
            }
            Reply::Nothing => timing.done(read_at.elapsed()),
            Reply::Close(reason) => {
                timing.done(read_at.elapsed());
                debug!(%peer, %reason, "closing connection");
                return;
            }
        }
        if shutdown.is_shutdown() {
            return;
        }
    }
}
