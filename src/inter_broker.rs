//! A connection from this broker to another one, for the requests brokers send each other:
//! a follower's Fetch and OffsetForLeaderEpoch to its leader, a leader's AlterPartition and a
//! stopping broker's ControlledShutdown to the controller. Requests go one at a time; every
//! wait is bounded.
//!
//! The connection speaks the inter-broker listener's security protocol, as Kafka's
//! inter-broker client does: TLS with the listener's `ssl.*` stores (SSL, SASL_SSL), and SASL
//! with `sasl.mechanism.inter.broker.protocol` and the username and password of the
//! listener's JAAS entry (SASL_PLAINTEXT, SASL_SSL).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_protocol::client::{decode_response, encode_request};
use gregor_protocol::controller_api;
use gregor_protocol::kafka_protocol::error::ParseResponseErrorCode;
use gregor_protocol::kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use gregor_protocol::kafka_protocol::protocol::{Request, StrBytes};
use gregor_protocol::FrameReader;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::warn;

use crate::config::{BrokerConfig, SecurityProtocol};
use crate::security::sasl::{self, Mechanism, SaslConfigError};
use crate::security::scram::ScramClient;
use crate::security::tls::{self, TlsConfigError};

/// Bound on connecting, and on an answer beyond the wait the request itself asks for.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a broker listens: (host, port).
pub type Endpoint = (String, u16);

/// Why a request to another broker failed; callers back off and reconnect.
#[derive(Debug, thiserror::Error)]
pub enum InterBrokerError {
    #[error("broker {0} has no known endpoint")]
    NoEndpoint(i32),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("answer: {0}")]
    Protocol(#[from] gregor_protocol::ProtocolError),
    #[error("answer: {0}")]
    Frame(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("TLS handshake: {0}")]
    Tls(String),
    #[error("SASL authentication: {0}")]
    Authentication(String),
}

/// Why the inter-broker client cannot be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum InterBrokerConfigError {
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(transparent)]
    Sasl(#[from] SaslConfigError),
    #[error(
        "sasl.mechanism.inter.broker.protocol={0}: gregor's brokers authenticate to each other \
         with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (GSSAPI, the default, is Kerberos, which \
         gregor does not have; OAUTHBEARER needs a token provider)"
    )]
    Mechanism(String),
}

/// How this broker's client side reaches the other brokers: built once at start from the
/// inter-broker listener's settings, shared by every inter-broker connection.
#[derive(Clone, Default)]
pub struct InterBrokerSecurity {
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<Arc<SaslCredentials>>,
}

/// The mechanism and the credentials this broker authenticates with.
struct SaslCredentials {
    mechanism: Mechanism,
    username: String,
    password: String,
}

impl std::fmt::Debug for InterBrokerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("InterBrokerSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| s.mechanism.name()))
            .finish()
    }
}

impl InterBrokerSecurity {
    /// No TLS, no SASL: a PLAINTEXT listener (and the CLI tool).
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// The client side of the inter-broker listener (`inter.broker.listener.name` or
    /// `security.inter.broker.protocol`): its `ssl.*` keys, and for SASL
    /// `sasl.mechanism.inter.broker.protocol` with the credentials of its JAAS entry.
    pub fn from_config(config: &BrokerConfig) -> Result<Self, InterBrokerConfigError> {
        let Some(listener) = config.inter_broker_listener() else {
            return Ok(Self::plaintext());
        };
        let name = listener.name.as_str();
        let (uses_tls, uses_sasl) = match listener.security_protocol {
            SecurityProtocol::Plaintext => (false, false),
            SecurityProtocol::Ssl => (true, false),
            SecurityProtocol::SaslPlaintext => (false, true),
            SecurityProtocol::SaslSsl => (true, true),
        };
        let tls = match uses_tls {
            true => Some(tls::client_config(config, name)?),
            false => None,
        };
        let sasl = match uses_sasl {
            false => None,
            true => {
                let mechanism_name = config
                    .raw_value("sasl.mechanism.inter.broker.protocol")
                    .unwrap_or_else(|| "GSSAPI".into());
                let mechanism = match Mechanism::from_name(&mechanism_name) {
                    Some(m @ (Mechanism::Plain | Mechanism::Scram(_))) => m,
                    _ => return Err(InterBrokerConfigError::Mechanism(mechanism_name)),
                };
                let (username, password) = sasl::inter_broker_credentials(config, name, mechanism)?;
                Some(Arc::new(SaslCredentials {
                    mechanism,
                    username,
                    password,
                }))
            }
        };
        Ok(InterBrokerSecurity { tls, sasl })
    }
}

/// A Kafka error code as its name (e.g. `SaslAuthenticationFailed`).
fn error_name(code: i16) -> String {
    match code.err() {
        Some(e) => format!("{e:?}"),
        None => format!("error code {code}"),
    }
}

/// SaslHandshake v1: the tokens then travel in SaslAuthenticate requests (KIP-152).
const SASL_HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate v1: the first with the session lifetime (KIP-368); Kafka 2.2 and later.
const SASL_AUTHENTICATE_VERSION: i16 = 1;

pub struct BrokerConnection {
    reader: FrameReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    correlation_id: i32,
    client_id: String,
    /// The credentials, to authenticate again before the session ends.
    sasl: Option<Arc<SaslCredentials>>,
    /// When to re-authenticate (KIP-368): the peer's session lifetime, as Kafka's client,
    /// renewed before it ends so that the peer never closes the connection for it.
    reauthenticate_at: Option<Instant>,
    peer: String,
}

impl BrokerConnection {
    /// Connects to `endpoint` with `security` (TLS handshake, then SASL authentication), naming
    /// this side `client_id` in every request header.
    pub async fn connect(
        endpoint: &Endpoint,
        client_id: String,
        timeout: Duration,
        security: &InterBrokerSecurity,
    ) -> Result<BrokerConnection, InterBrokerError> {
        let peer = format!("{}:{}", endpoint.0, endpoint.1);
        let stream = tokio::time::timeout(
            timeout,
            TcpStream::connect((endpoint.0.as_str(), endpoint.1)),
        )
        .await
        .map_err(|_| InterBrokerError::Timeout(timeout))??;
        stream.set_nodelay(true)?;
        let (reader, writer): (
            Box<dyn AsyncRead + Send + Unpin>,
            Box<dyn AsyncWrite + Send + Unpin>,
        ) = match &security.tls {
            None => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(tls) => {
                // The host name as advertised: what the certificate must name (SNI too).
                let server_name = ServerName::try_from(endpoint.0.clone()).map_err(|e| {
                    InterBrokerError::Tls(format!("{} is not a host name: {e}", endpoint.0))
                })?;
                let connector = tokio_rustls::TlsConnector::from(tls.clone());
                let handshake = connector.connect(server_name, stream);
                let stream = match tokio::time::timeout(timeout, handshake).await {
                    Err(_) => return Err(InterBrokerError::Timeout(timeout)),
                    Ok(Err(e)) => {
                        warn!(%peer, error = %e, "TLS handshake with another broker failed");
                        return Err(InterBrokerError::Tls(e.to_string()));
                    }
                    Ok(Ok(s)) => s,
                };
                let (r, w) = tokio::io::split(stream);
                (Box::new(r), Box::new(w))
            }
        };
        let mut conn = BrokerConnection {
            reader: FrameReader::new(reader, usize::MAX >> 1),
            writer,
            correlation_id: 0,
            client_id,
            sasl: security.sasl.clone(),
            reauthenticate_at: None,
            peer,
        };
        if conn.sasl.is_some() {
            tokio::time::timeout(timeout, conn.authenticate())
                .await
                .map_err(|_| InterBrokerError::Timeout(timeout))??;
        }
        Ok(conn)
    }

    /// SaslHandshake, then the mechanism's SaslAuthenticate exchange.
    async fn authenticate(&mut self) -> Result<(), InterBrokerError> {
        let Some(sasl) = self.sasl.clone() else {
            return Ok(());
        };
        let result = self.exchange(&sasl).await;
        if let Err(InterBrokerError::Authentication(reason)) = &result {
            warn!(peer = %self.peer, mechanism = sasl.mechanism.name(), user = %sasl.username,
                %reason, "authentication to another broker failed");
        }
        result
    }

    async fn exchange(&mut self, sasl: &SaslCredentials) -> Result<(), InterBrokerError> {
        let refused = InterBrokerError::Authentication;
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(sasl.mechanism.name()));
        let answer = self
            .call_unchecked(SASL_HANDSHAKE_VERSION, &handshake, Duration::ZERO)
            .await?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(format!(
                "SaslHandshake: {}; the peer offers {offered:?}",
                error_name(answer.error_code)
            )));
        }
        let lifetime_ms = match sasl.mechanism {
            Mechanism::Plain => {
                // RFC 4616: no authorization id, the user, the password.
                let token = format!("\0{}\0{}", sasl.username, sasl.password);
                self.sasl_authenticate(token.into_bytes()).await?.1
            }
            Mechanism::Scram(m) => {
                let (mut client, first) = ScramClient::new(m, &sasl.username, &sasl.password);
                let (server_first, _) = self.sasl_authenticate(first).await?;
                let last = client
                    .server_first(&server_first)
                    .map_err(|e| refused(e.0))?;
                let (server_final, lifetime_ms) = self.sasl_authenticate(last).await?;
                client
                    .server_final(&server_final)
                    .map_err(|e| refused(e.0))?;
                lifetime_ms
            }
            Mechanism::OAuthBearer => {
                return Err(refused(
                    "OAUTHBEARER is not available between brokers".into(),
                ))
            }
        };
        // Kafka's client re-authenticates at 85-95% of the lifetime; 90% here.
        self.reauthenticate_at = (lifetime_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(lifetime_ms as u64 * 9 / 10));
        Ok(())
    }

    /// One SaslAuthenticate: the peer's token and the session lifetime (ms, 0: none).
    async fn sasl_authenticate(
        &mut self,
        token: Vec<u8>,
    ) -> Result<(Bytes, i64), InterBrokerError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let answer = self
            .call_unchecked(SASL_AUTHENTICATE_VERSION, &request, Duration::ZERO)
            .await?;
        if answer.error_code != 0 {
            return Err(InterBrokerError::Authentication(format!(
                "{}: {}",
                error_name(answer.error_code),
                answer.error_message.as_deref().unwrap_or("")
            )));
        }
        Ok((answer.auth_bytes, answer.session_lifetime_ms))
    }

    /// Authenticates again when the session is about to end (KIP-368).
    async fn renew_session(&mut self) -> Result<(), InterBrokerError> {
        if self.reauthenticate_at.is_some_and(|t| Instant::now() >= t) {
            self.reauthenticate_at = None;
            let limit = SOCKET_TIMEOUT;
            tokio::time::timeout(limit, self.authenticate())
                .await
                .map_err(|_| InterBrokerError::Timeout(limit))??;
        }
        Ok(())
    }

    /// Sends `req` at `version` and reads its answer, waiting at most `wait` (what the
    /// request asks the other side to wait, e.g. a long poll) plus `SOCKET_TIMEOUT`.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        req: &R,
        wait: Duration,
    ) -> Result<R::Response, InterBrokerError> {
        self.renew_session().await?;
        self.call_unchecked(version, req, wait).await
    }

    /// `call` without the session check (the SASL exchange itself).
    async fn call_unchecked<R: Request>(
        &mut self,
        version: i16,
        req: &R,
        wait: Duration,
    ) -> Result<R::Response, InterBrokerError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame = encode_request(version, self.correlation_id, &self.client_id, req)?;
        let answer = self.round_trip(frame, wait + SOCKET_TIMEOUT).await?;
        let (correlation_id, response) = decode_response::<R>(version, answer)?;
        self.check_correlation(correlation_id)?;
        Ok(response)
    }

    /// `call` for the ZooKeeper-mode controller RPCs (`controller_api`'s types).
    pub async fn call_controller_api<R>(
        &mut self,
        version: i16,
        req: &R,
        wait: Duration,
    ) -> Result<R::Response, InterBrokerError>
    where
        R: controller_api::ZkRequest,
    {
        self.renew_session().await?;
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame =
            controller_api::encode_request(version, self.correlation_id, &self.client_id, req)?;
        let answer = self.round_trip(frame, wait + SOCKET_TIMEOUT).await?;
        let (correlation_id, response) = controller_api::decode_response::<R>(version, answer)?;
        self.check_correlation(correlation_id)?;
        Ok(response)
    }

    async fn round_trip(
        &mut self,
        frame: Bytes,
        limit: Duration,
    ) -> Result<Bytes, InterBrokerError> {
        self.writer.write_all(&frame).await?;
        let read = tokio::time::timeout(limit, self.reader.read_frame())
            .await
            .map_err(|_| InterBrokerError::Timeout(limit))?;
        match read {
            Ok(Some(frame)) => Ok(BytesMut::freeze(frame)),
            Ok(None) => Err(InterBrokerError::Frame("connection closed".into())),
            Err(e) => Err(InterBrokerError::Frame(e.to_string())),
        }
    }

    fn check_correlation(&self, correlation_id: i32) -> Result<(), InterBrokerError> {
        if correlation_id != self.correlation_id {
            return Err(InterBrokerError::Frame(format!(
                "correlation id {correlation_id}, expected {}",
                self.correlation_id
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(text: &str) -> Result<InterBrokerSecurity, InterBrokerConfigError> {
        InterBrokerSecurity::from_config(&BrokerConfig::from_properties_text(text, &[]).unwrap())
    }

    const SASL: &str = "listeners=SASL_PLAINTEXT://:9093\n\
        security.inter.broker.protocol=SASL_PLAINTEXT\n\
        sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512\n\
        listener.name.sasl_plaintext.plain.sasl.jaas.config=x required username=\"b\" password=\"p\" user_b=\"p\";\n\
        listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=x required username=\"b\" password=\"p\";\n";

    #[test]
    fn gssapi_and_oauthbearer_are_refused_by_key() {
        // GSSAPI is Kafka's default.
        let e = security(SASL).unwrap_err().to_string();
        assert!(
            e.starts_with("sasl.mechanism.inter.broker.protocol=GSSAPI:"),
            "{e}"
        );
        let e = security(&format!(
            "{SASL}sasl.mechanism.inter.broker.protocol=OAUTHBEARER"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("sasl.mechanism.inter.broker.protocol=OAUTHBEARER:"),
            "{e}"
        );
    }

    #[test]
    fn plain_and_scram_are_read() {
        let s = security(&format!(
            "{SASL}sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"
        ))
        .unwrap();
        let sasl = s.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert_eq!((sasl.username.as_str(), sasl.password.as_str()), ("b", "p"));
        assert!(s.tls.is_none());
        // The password never shows in logs.
        assert_eq!(
            format!("{s:?}"),
            "InterBrokerSecurity { tls: false, sasl: Some(\"SCRAM-SHA-512\") }"
        );
        let s = security("listeners=PLAINTEXT://:9092").unwrap();
        assert!(s.tls.is_none() && s.sasl.is_none());
    }

    #[test]
    fn tls_needs_a_truststore() {
        let e = security(
            "listeners=SSL://:9093\nsecurity.inter.broker.protocol=SSL\n\
             ssl.truststore.type=PEM\nssl.truststore.location=/nonexistent.pem",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot read ssl.truststore.location"), "{e}");
        let e = security(
            "listeners=SSL://:9093\nsecurity.inter.broker.protocol=SSL\n\
             ssl.truststore.type=JCEKS\nssl.truststore.location=/x.jceks",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ssl.truststore.type=JCEKS is not supported"),
            "{e}"
        );
        let e = security("listeners=SSL://:9093\nsecurity.inter.broker.protocol=SSL")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs ssl.truststore.location"), "{e}");
        let e = security(
            "listeners=SSL://:9093\nsecurity.inter.broker.protocol=SSL\nssl.truststore.type=PEM\n\
             ssl.endpoint.identification.algorithm=ldap",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ssl.endpoint.identification.algorithm=ldap"),
            "{e}"
        );
    }
}
