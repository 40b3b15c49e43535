//! SASL authentication of one connection on a SASL listener, before any other request is
//! served (Kafka's `SaslServerAuthenticator`): ApiVersions may come first, then SaslHandshake
//! names a mechanism the listener offers, then SaslAuthenticate requests carry the mechanism's
//! tokens until it succeeds or fails (after a v0 handshake the tokens travel as raw
//! size-prefixed frames instead, as before KIP-152). A failure is answered
//! SASL_AUTHENTICATION_FAILED after `connection.failed.authentication.delay.ms`, and the
//! connection closes. Anything else before authentication closes the connection, as in Kafka.
//!
//! Re-authentication (KIP-368) is the same exchange on an authenticated connection, started by
//! a SaslHandshake; it must end with the same principal.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::{
    ApiKey, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use gregor_protocol::{decode_request, DecodedRequest, FrameReader, Request, Response};
use tokio::io::AsyncRead;
use tracing::{debug, info, warn};

use super::connection::ResponseSink;
use crate::broker::Broker;
use crate::handlers::{self, str_bytes, Reply, ResponsePart};
use crate::security::oauthbearer::Refusal;
use crate::security::sasl::{Mechanism, SaslListener};
use crate::security::scram::{ClientFirst, ScramCredential, ScramMechanism, ScramServer};
use crate::security::KafkaPrincipal;

/// How an authentication ended.
pub enum Authenticated {
    Yes {
        principal: KafkaPrincipal,
        /// When the session ends unless the client re-authenticates (KIP-368).
        expires: Option<Instant>,
    },
    /// Refused (the client was told why where the protocol allows): close the connection.
    No,
    /// The client went away.
    Gone,
}

/// A SaslHandshake on an authenticated connection starts re-authentication.
pub fn is_handshake(request: &DecodedRequest) -> bool {
    matches!(request.request, Request::SaslHandshake(_))
}

/// Where the exchange stands.
enum State {
    /// Waiting for ApiVersions or SaslHandshake.
    Handshake,
    /// The mechanism is chosen; waiting for its first token.
    First(Mechanism),
    /// SCRAM: the server's first message was sent.
    ScramFinal(Box<ScramServer>, String),
    /// OAUTHBEARER: the token was refused and the error sent as a challenge (RFC 7628 3.2.2);
    /// waiting for the client's `%x01`, after which the exchange fails. Holds why.
    OAuthBearerError(String),
}

/// The challenge OAUTHBEARER answers a refused token with, as Kafka's `OAuthBearerSaslServer`
/// (which names no reason: the broker's log has it). It is also the failure's message.
const OAUTHBEARER_INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

/// How tokens travel: in SaslAuthenticate requests, or (after a v0 handshake) as raw
/// size-prefixed frames.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    SaslAuthenticate { version: i16, correlation_id: i32 },
    Raw,
}

/// What the client sent: a request, or (after a v0 handshake) a raw SASL token.
enum Frame {
    Request(Box<DecodedRequest>),
    RawToken(Bytes),
}

/// Runs the exchange. `reauth` is the SaslHandshake that started a re-authentication, with the
/// principal the connection has.
pub async fn authenticate<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut W,
    sasl: &SaslListener,
    broker: &Broker,
    peer: SocketAddr,
    reauth: Option<(DecodedRequest, &KafkaPrincipal)>,
) -> Authenticated
where
    R: AsyncRead + Unpin,
    W: ResponseSink,
{
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let (mut first_request, previous) = match reauth {
        Some((request, principal)) => (Some(request), Some(principal)),
        None => (None, None),
    };
    let mut state = State::Handshake;
    let mut raw_tokens = false;
    loop {
        let frame = match first_request.take() {
            Some(r) => Frame::Request(Box::new(r)),
            None => match tokio::time::timeout(idle, reader.read_frame()).await {
                Ok(Ok(Some(frame))) if raw_tokens => Frame::RawToken(frame.freeze()),
                Ok(Ok(Some(frame))) => match decode_request(frame) {
                    Ok(r) => Frame::Request(Box::new(r)),
                    Err(e) => {
                        warn!(%peer, error = %e, "cannot serve request during SASL authentication; closing connection");
                        return Authenticated::No;
                    }
                },
                Ok(Ok(None)) | Ok(Err(gregor_protocol::FrameError::Io(_))) => {
                    return Authenticated::Gone
                }
                Ok(Err(e)) => {
                    // A TLS client on a SASL_PLAINTEXT port ends up here.
                    info!(%peer, error = %e, "bad frame during SASL authentication; closing connection");
                    return Authenticated::No;
                }
                Err(_) => {
                    debug!(%peer, "no SASL authentication within connections.max.idle.ms");
                    return Authenticated::Gone;
                }
            },
        };
        // A token and how to answer it; requests of the handshake are answered here.
        let (token, framing) = match frame {
            Frame::RawToken(token) => (token, Framing::Raw),
            Frame::Request(request) => {
                let version = request.api_version;
                let correlation_id = request.correlation_id;
                let api_key = request.api_key;
                match (&state, request.request) {
                    (State::Handshake, Request::ApiVersions(r)) if previous.is_none() => {
                        let answer = handlers::api_versions::handle(
                            version,
                            r,
                            &broker.image().finalized_features,
                        );
                        let response = Response::ApiVersions(answer);
                        if !send(
                            writer,
                            ApiKey::ApiVersions,
                            version,
                            correlation_id,
                            response,
                        )
                        .await
                        {
                            return Authenticated::Gone;
                        }
                        continue;
                    }
                    (State::Handshake, Request::ApiVersionsUnsupported) if previous.is_none() => {
                        let answer = handlers::api_versions::unsupported_version();
                        let response = Response::ApiVersions(answer);
                        if !send(writer, ApiKey::ApiVersions, 0, correlation_id, response).await {
                            return Authenticated::Gone;
                        }
                        continue;
                    }
                    (State::Handshake, Request::SaslHandshake(r)) => {
                        let offered: Vec<_> = sasl
                            .mechanisms
                            .iter()
                            .map(|m| str_bytes(m.name()))
                            .collect();
                        let chosen = Mechanism::from_name(r.mechanism.as_str())
                            .filter(|m| sasl.mechanisms.contains(m));
                        let answer = SaslHandshakeResponse::default()
                            .with_error_code(if chosen.is_some() {
                                0
                            } else {
                                E::UnsupportedSaslMechanism.code()
                            })
                            .with_mechanisms(offered);
                        let response = Response::SaslHandshake(answer);
                        if !send(
                            writer,
                            ApiKey::SaslHandshake,
                            version,
                            correlation_id,
                            response,
                        )
                        .await
                        {
                            return Authenticated::Gone;
                        }
                        let Some(m) = chosen else {
                            info!(%peer, mechanism = %r.mechanism.as_str(), "SASL mechanism not enabled on this listener; closing connection");
                            return Authenticated::No;
                        };
                        state = State::First(m);
                        // v0: the tokens follow as raw frames.
                        raw_tokens = version == 0;
                        continue;
                    }
                    (
                        State::First(_) | State::ScramFinal(..) | State::OAuthBearerError(_),
                        Request::SaslAuthenticate(r),
                    ) if !raw_tokens => (
                        r.auth_bytes,
                        Framing::SaslAuthenticate {
                            version,
                            correlation_id,
                        },
                    ),
                    (_, _) => {
                        info!(%peer, api_key, "unexpected request during SASL authentication; closing connection");
                        return Authenticated::No;
                    }
                }
            }
        };
        match std::mem::replace(&mut state, State::Handshake) {
            State::Handshake => {
                info!(%peer, "a SASL token before the handshake; closing connection");
                return Authenticated::No;
            }
            State::First(mechanism) => {
                let outcome = match mechanism {
                    Mechanism::Plain => sasl.authenticate_plain(&token).map(|user| (user, None)),
                    Mechanism::OAuthBearer => match sasl.authenticate_oauthbearer(&token) {
                        Ok((user, expiry_ms)) => Ok((user, Some(expiry_ms))),
                        Err(Refusal::Failed(message)) => Err(message),
                        Err(Refusal::InvalidToken(reason)) => {
                            // RFC 7628: the error goes back as a challenge; the client
                            // acknowledges it and only then does the exchange fail.
                            let challenge =
                                Bytes::from_static(OAUTHBEARER_INVALID_TOKEN.as_bytes());
                            if !send_token(writer, framing, challenge, 0).await {
                                return Authenticated::Gone;
                            }
                            state = State::OAuthBearerError(reason);
                            continue;
                        }
                    },
                    Mechanism::Scram(m) => match scram_first(broker, m, &token).await {
                        Ok((server, challenge, user)) => {
                            if !send_token(writer, framing, Bytes::from(challenge), 0).await {
                                return Authenticated::Gone;
                            }
                            state = State::ScramFinal(Box::new(server), user);
                            continue;
                        }
                        Err(message) => Err(message),
                    },
                };
                let ending = Ending {
                    mechanism,
                    previous,
                    framing,
                };
                return finish(writer, sasl, peer, ending, outcome, Bytes::new()).await;
            }
            State::OAuthBearerError(reason) => {
                // Kafka fails the exchange on the client's %x01 with the challenge's text; any
                // other answer fails it too (Kafka would start over with it as a new token, a
                // second try gregor does not offer).
                info!(%peer, reason, "OAUTHBEARER token refused");
                let ending = Ending {
                    mechanism: Mechanism::OAuthBearer,
                    previous,
                    framing,
                };
                let refused = Err(OAUTHBEARER_INVALID_TOKEN.to_string());
                return finish(writer, sasl, peer, ending, refused, Bytes::new()).await;
            }
            State::ScramFinal(server, user) => {
                let mechanism = Mechanism::Scram(server.mechanism());
                let ending = Ending {
                    mechanism,
                    previous,
                    framing,
                };
                return match server.client_final(&token) {
                    Ok(last) => {
                        finish(
                            writer,
                            sasl,
                            peer,
                            ending,
                            Ok((user, None)),
                            Bytes::from(last),
                        )
                        .await
                    }
                    Err(e) => {
                        debug!(%peer, user, reason = %e.0, "SCRAM proof refused");
                        let refused = Err(invalid_credentials(mechanism));
                        finish(writer, sasl, peer, ending, refused, Bytes::new()).await
                    }
                };
            }
        }
    }
}

/// Kafka's message for a failed SCRAM exchange; it names no reason, so that a client cannot
/// tell an unknown user from a wrong password.
fn invalid_credentials(mechanism: Mechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
        mechanism.name()
    )
}

/// SCRAM's first round: the client's first message, the user's stored credential, the
/// server's first message.
async fn scram_first(
    broker: &Broker,
    mechanism: ScramMechanism,
    message: &[u8],
) -> Result<(ScramServer, Vec<u8>, String), String> {
    let first = ClientFirst::parse(message).map_err(|e| e.0)?;
    let user = first.username.clone();
    let config = broker
        .metadata
        .user_config(user.clone())
        .await
        .map_err(|e| format!("cannot read the credentials of {user}: {e}"))?;
    let credential = config
        .get(mechanism.name())
        .and_then(|text| ScramCredential::decode(text).ok())
        .ok_or_else(|| invalid_credentials(Mechanism::Scram(mechanism)))?;
    let (server, challenge) = ScramServer::new(mechanism, first, credential);
    Ok((server, challenge, user))
}

/// What the last answer of an exchange needs to know.
struct Ending<'a> {
    mechanism: Mechanism,
    /// The principal of the session being re-authenticated.
    previous: Option<&'a KafkaPrincipal>,
    framing: Framing,
}

/// Answers the last token: success with the session's lifetime, or
/// SASL_AUTHENTICATION_FAILED after the failure delay.
async fn finish<W: ResponseSink>(
    writer: &mut W,
    sasl: &SaslListener,
    peer: SocketAddr,
    ending: Ending<'_>,
    outcome: Result<(String, Option<i64>), String>,
    last_token: Bytes,
) -> Authenticated {
    let mechanism = ending.mechanism.name();
    let outcome = outcome.and_then(|(user, token_expiry)| {
        let principal = KafkaPrincipal::user(user);
        match ending.previous {
            Some(p) if *p != principal => Err(format!(
                "Cannot change principals during re-authentication from {p}: {principal}"
            )),
            _ => Ok((principal, token_expiry)),
        }
    });
    match outcome {
        Ok((principal, token_expiry)) => {
            let now_ms = crate::clock::now_ms();
            // KIP-368: the session lasts connections.max.reauth.ms, and no longer than the
            // OAUTHBEARER token it was opened with.
            let lifetime_ms = match (sasl.max_reauth_ms, token_expiry) {
                (0, _) => 0,
                (max, Some(exp)) => max.min((exp - now_ms).max(1)),
                (max, None) => max,
            };
            if !send_token(writer, ending.framing, last_token, lifetime_ms).await {
                return Authenticated::Gone;
            }
            debug!(%peer, %principal, mechanism, "SASL authentication succeeded");
            Authenticated::Yes {
                principal,
                expires: (lifetime_ms > 0)
                    .then(|| Instant::now() + Duration::from_millis(lifetime_ms as u64)),
            }
        }
        Err(message) => {
            info!(%peer, mechanism, reason = %message, "SASL authentication failed");
            tokio::time::sleep(sasl.failed_authentication_delay).await;
            // Raw tokens (v0) have no way to say why: the connection just closes.
            if let Framing::SaslAuthenticate {
                version,
                correlation_id,
            } = ending.framing
            {
                let answer = SaslAuthenticateResponse::default()
                    .with_error_code(E::SaslAuthenticationFailed.code())
                    .with_error_message(Some(str_bytes(message)));
                let response = Response::SaslAuthenticate(answer);
                send(
                    writer,
                    ApiKey::SaslAuthenticate,
                    version,
                    correlation_id,
                    response,
                )
                .await;
            }
            Authenticated::No
        }
    }
}

/// Sends a token to the client: in a SaslAuthenticate response (with the session's lifetime,
/// KIP-368), or raw and size-prefixed after a v0 handshake. False if the client is gone.
async fn send_token<W: ResponseSink>(
    writer: &mut W,
    framing: Framing,
    token: Bytes,
    session_lifetime_ms: i64,
) -> bool {
    match framing {
        Framing::SaslAuthenticate {
            version,
            correlation_id,
        } => {
            let answer = SaslAuthenticateResponse::default()
                .with_auth_bytes(token)
                .with_session_lifetime_ms(session_lifetime_ms);
            let response = Response::SaslAuthenticate(answer);
            send(
                writer,
                ApiKey::SaslAuthenticate,
                version,
                correlation_id,
                response,
            )
            .await
        }
        Framing::Raw => {
            let Ok(len) = u32::try_from(token.len()) else {
                return false;
            };
            let parts = [
                ResponsePart::Bytes(Bytes::copy_from_slice(&len.to_be_bytes())),
                ResponsePart::Bytes(token),
            ];
            writer.send(&parts).await.is_ok()
        }
    }
}

/// Encodes and writes one response; false if the client is gone.
async fn send<W: ResponseSink>(
    writer: &mut W,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: Response,
) -> bool {
    match handlers::encode(api_key, version, correlation_id, &response) {
        Reply::Send(parts) => writer.send(&parts).await.is_ok(),
        Reply::Nothing | Reply::Close(_) | Reply::Muted(..) => false,
    }
}
