//! One client connection: the TLS handshake and SASL authentication its listener asks for,
//! then read a frame, serve it, write the answer, repeat.
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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::listener::ListenerContext;
use super::sasl_authenticator::{self, Authenticated};
use super::send::{write_response, write_response_copying};
use super::Shutdown;
use crate::broker::Broker;
use crate::handlers::{self, Reply, ResponsePart, Session};
use crate::metrics::{self, ConnectionGuard};
use crate::security::KafkaPrincipal;

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a connection's responses go: straight to the socket (file parts with sendfile), or
/// through TLS (file parts read into memory first).
// Used only inside the crate with concrete types, so the futures' Send-ness need not be named.
#[allow(async_fn_in_trait)]
pub trait ResponseSink {
    async fn send(&mut self, parts: &[ResponsePart]) -> std::io::Result<()>;
}

impl ResponseSink for tokio::net::tcp::OwnedWriteHalf {
    async fn send(&mut self, parts: &[ResponsePart]) -> std::io::Result<()> {
        write_response(self, parts).await
    }
}

/// The write side of a TLS connection.
struct TlsSink<W>(W);

impl<W: AsyncWrite + Unpin> ResponseSink for TlsSink<W> {
    async fn send(&mut self, parts: &[ResponsePart]) -> std::io::Result<()> {
        write_response_copying(&mut self.0, parts).await
    }
}

pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    listener: Arc<ListenerContext>,
    shutdown: Shutdown,
    _counted: ConnectionGuard,
) {
    let _ = stream.set_nodelay(true);
    set_buffer_sizes(
        &stream,
        broker.config.socket_send_buffer_bytes,
        broker.config.socket_receive_buffer_bytes,
    );
    let max_frame = broker.config.socket_request_max_bytes;
    let mut session = Session {
        listener_name: listener.name.clone(),
        security_protocol: listener.security_protocol,
        client_host: format!("/{}", peer.ip()),
        principal: KafkaPrincipal::anonymous(),
    };
    let Some(tls) = &listener.tls else {
        let (read_half, write_half) = stream.into_split();
        let reader = FrameReader::new(read_half, max_frame);
        serve(
            reader, write_half, peer, broker, &listener, session, shutdown,
        )
        .await;
        return;
    };
    let acceptor = TlsAcceptor::from(tls.server_config.clone());
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            listener.counters.authentication_failed();
            info!(%peer, listener = %listener.name, error = %e, "TLS handshake failed; closing connection");
            return;
        }
        Err(_) => {
            listener.counters.authentication_failed();
            info!(%peer, listener = %listener.name, "TLS handshake timed out; closing connection");
            return;
        }
    };
    match tls.principal(stream.get_ref().1.peer_certificates()) {
        Ok(principal) => session.principal = principal,
        Err(e) => {
            listener.counters.authentication_failed();
            info!(%peer, listener = %listener.name, error = %e, "no principal for the client certificate; closing connection");
            return;
        }
    }
    if listener.sasl.is_none() {
        listener.counters.authenticated();
    }
    let (read_half, write_half) = tokio::io::split(stream);
    let reader = FrameReader::new(read_half, max_frame);
    serve(
        reader,
        TlsSink(write_half),
        peer,
        broker,
        &listener,
        session,
        shutdown,
    )
    .await;
}

/// Authenticates the client where the listener uses SASL, then serves its requests.
async fn serve<R, W>(
    mut reader: FrameReader<R>,
    mut writer: W,
    peer: SocketAddr,
    broker: Arc<Broker>,
    listener: &ListenerContext,
    mut session: Session,
    mut shutdown: Shutdown,
) where
    R: AsyncRead + Unpin,
    W: ResponseSink,
{
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    // A SASL session's end (KIP-368): past it, the client must authenticate again.
    let mut session_expires: Option<Instant> = None;
    if let Some(sasl) = &listener.sasl {
        match sasl_authenticator::authenticate(&mut reader, &mut writer, sasl, &broker, peer, None)
            .await
        {
            Authenticated::Yes { principal, expires } => {
                listener.counters.authenticated();
                session.principal = principal;
                session_expires = expires;
            }
            Authenticated::No => {
                listener.counters.authentication_failed();
                return;
            }
            Authenticated::Gone => return,
        }
    }
    // One idle timer and one shutdown wait for the connection's life, not one per request:
    // registering a fresh timer and a fresh watch waiter for every frame cost about a tenth
    // of a small request's instructions (scripts/instructions). The timer is pushed back
    // only when it fires early, from the end of the last request.
    let mut last_active = Instant::now();
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let stopped = shutdown.recv();
    tokio::pin!(stopped);
    loop {
        let frame = {
            // The read lives across timer wake-ups: a frame half read is never dropped.
            let read = reader.read_frame();
            tokio::pin!(read);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut stopped => return,
                    read = &mut read => break read,
                    _ = &mut idle_timer => {
                        if last_active.elapsed() >= idle {
                            debug!(%peer, "connection idle for connections.max.idle.ms; closing");
                            return;
                        }
                        idle_timer.as_mut().reset(deadline_after(last_active, idle));
                    }
                }
            }
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            // A peer that resets its connection is not sending bad input.
            Err(gregor_protocol::FrameError::Io(e)) => {
                debug!(%peer, error = %e, "connection error; closing connection");
                return;
            }
            Err(e) => {
                warn!(%peer, error = %e, "bad frame; closing connection");
                return;
            }
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
        if let Some(sasl) = &listener.sasl {
            // Re-authentication (KIP-368) starts with a SaslHandshake on an open session.
            if sasl_authenticator::is_handshake(&request) {
                match sasl_authenticator::authenticate(
                    &mut reader,
                    &mut writer,
                    sasl,
                    &broker,
                    peer,
                    Some((request, &session.principal)),
                )
                .await
                {
                    Authenticated::Yes { expires, .. } => {
                        listener.counters.authenticated();
                        session_expires = expires;
                        continue;
                    }
                    Authenticated::No => {
                        listener.counters.authentication_failed();
                        return;
                    }
                    Authenticated::Gone => return,
                }
            }
            if session_expires.is_some_and(|at| Instant::now() >= at) {
                info!(%peer, principal = %session.principal, "SASL session expired without re-authentication; closing connection");
                return;
            }
        }
        let timing = metrics::request(
            request.api_key,
            request.api_version,
            handlers::fetch::from_follower(&request),
        );
        timing.queued(read_at.elapsed());
        // Boxed: the largest handler's state would otherwise sit in every connection's
        // task, idle or not (2.4 KB of the 3 KB an idle connection costs).
        let mut reply = Box::pin(handlers::handle(&broker, request, &session)).await;
        // A client over its quota: answered now, then not read from for the throttle time.
        let mut mute = None;
        if let Reply::Muted(inner, wait) = reply {
            reply = *inner;
            mute = Some(wait);
        }
        match reply {
            Reply::Send(parts) => {
                let written = writer.send(&parts).await;
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
            // Handlers never mute twice; were one to, the connection ends rather than guess.
            Reply::Muted(..) => return,
        }
        if let Some(wait) = mute {
            debug!(%peer, throttle_ms = wait.as_millis() as u64, "client over its quota: muted");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut stopped => return,
            }
        }
        last_active = Instant::now();
    }
}

/// `at + idle`, or a day from now where that is past what an `Instant` holds
/// (`connections.max.idle.ms` may be set very large).
fn deadline_after(at: Instant, idle: Duration) -> tokio::time::Instant {
    let deadline = at
        .checked_add(idle)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
    tokio::time::Instant::from_std(deadline)
}

/// Kafka's `socket.send.buffer.bytes` and `socket.receive.buffer.bytes` on an accepted
/// connection; a value below 1 leaves the kernel's own sizing (autotuning). A failure costs
/// nothing but the setting, so it is logged and the connection served.
fn set_buffer_sizes(stream: &TcpStream, send: i32, receive: i32) {
    let socket = socket2::SockRef::from(stream);
    if send > 0 {
        if let Err(error) = socket.set_send_buffer_size(send as usize) {
            debug!(%error, bytes = send, "cannot set SO_SNDBUF");
        }
    }
    if receive > 0 {
        if let Err(error) = socket.set_recv_buffer_size(receive as usize) {
            debug!(%error, bytes = receive, "cannot set SO_RCVBUF");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair on loopback: (the accepted side, the client side).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn buffer_sizes_are_set_as_configured_and_left_to_the_kernel_below_one() {
        let (server, _client) = pair().await;
        let before = socket2::SockRef::from(&server);
        let (send0, receive0) = (
            before.send_buffer_size().unwrap(),
            before.recv_buffer_size().unwrap(),
        );
        // Linux keeps twice the size asked for (its bookkeeping overhead) and reports that.
        set_buffer_sizes(&server, 102_400, -1);
        let after = socket2::SockRef::from(&server);
        assert_eq!(after.send_buffer_size().unwrap(), 2 * 102_400);
        assert_eq!(after.recv_buffer_size().unwrap(), receive0);
        assert_ne!(
            send0,
            2 * 102_400,
            "the kernel's own size differs from the one set"
        );

        let (server, _client) = pair().await;
        let untouched = socket2::SockRef::from(&server).send_buffer_size().unwrap();
        set_buffer_sizes(&server, 0, 65_536);
        let after = socket2::SockRef::from(&server);
        assert_eq!(after.send_buffer_size().unwrap(), untouched);
        assert_eq!(after.recv_buffer_size().unwrap(), 2 * 65_536);
    }
}
