//! One client connection: read a frame, serve it, write the answer, repeat.
//!
//! Requests on a connection are served one at a time in arrival order, as Kafka does
//! (it mutes a channel until its response is sent), so responses leave in request order
//! and an idempotent producer's pipelined batches reach the log in sequence. Clients still
//! pipeline: later requests wait in the socket buffer. Every protocol error ends only this
//! connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::{decode_request, read_frame};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::Shutdown;
use crate::broker::Broker;
use crate::handlers::{self, Reply};

const READ_BUFFER: usize = 64 * 1024;

pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER, read_half);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let max_request = broker.config.socket_request_max_bytes;
    let client_host = format!("/{}", peer.ip());
    loop {
        let frame = tokio::select! {
            read = tokio::time::timeout(idle, read_frame(&mut reader, max_request)) => match read {
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
        let request = match decode_request(frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(%peer, error = %e, "cannot serve request; closing connection");
                return;
            }
        };
        match handlers::handle(&broker, request, &client_host).await {
            Reply::Send(parts) => {
                if let Err(e) = write_parts(&mut write_half, &parts).await {
                    debug!(%peer, error = %e, "write failed; closing connection");
                    return;
                }
            }
            Reply::Nothing => {}
            Reply::Close(reason) => {
                debug!(%peer, %reason, "closing connection");
                return;
            }
        }
        if shutdown.is_shutdown() {
            return;
        }
    }
}

/// Writes a frame given in parts with vectored writes (a Fetch answer's record sets are
/// parts of their own), resuming after partial writes.
async fn write_parts<W: AsyncWrite + Unpin>(w: &mut W, parts: &[Bytes]) -> std::io::Result<()> {
    // Enough slices per call for a many-partition fetch; far below any IOV_MAX.
    const MAX_SLICES: usize = 64;
    let (mut index, mut offset) = (0, 0);
    while index < parts.len() {
        let slices: Vec<std::io::IoSlice<'_>> = std::iter::once(&parts[index][offset..])
            .chain(parts[index + 1..].iter().map(|p| &p[..]))
            .filter(|s| !s.is_empty())
            .take(MAX_SLICES)
            .map(std::io::IoSlice::new)
            .collect();
        if slices.is_empty() {
            break;
        }
        let mut written = w.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let left = parts[index].len() - offset;
            if written >= left {
                written -= left;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_parts;
    use bytes::Bytes;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A writer that takes at most `step` bytes per call, to exercise partial writes.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
    }

    impl tokio::io::AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut budget = self.step;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(budget);
                self.out.extend_from_slice(&b[..take]);
                budget -= take;
                n += take;
                if budget == 0 {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn parts_arrive_whole_and_in_order_through_partial_writes() {
        let parts: Vec<Bytes> = (0..100u8)
            .map(|i| Bytes::from(vec![i; (i as usize * 7) % 23]))
            .collect();
        let want: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        for step in [1, 3, 64, 1 << 20] {
            let mut w = Trickle {
                out: Vec::new(),
                step,
            };
            write_parts(&mut w, &parts).await.unwrap();
            assert_eq!(w.out, want, "step {step}");
        }
    }
}
