//! A connection from this broker to another one, for the requests brokers send each other:
//! a follower's Fetch and OffsetForLeaderEpoch to its leader, a leader's AlterPartition and a
//! stopping broker's ControlledShutdown to the controller. Requests go one at a time; every
//! wait is bounded.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::client::{decode_response, encode_request};
use gregor_protocol::controller_api;
use gregor_protocol::kafka_protocol::protocol::Request;
use gregor_protocol::FrameReader;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

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
}

pub struct BrokerConnection {
    reader: FrameReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    correlation_id: i32,
    client_id: String,
}

impl BrokerConnection {
    /// Connects to `endpoint`, naming this side `client_id` in every request header.
    pub async fn connect(
        endpoint: &Endpoint,
        client_id: String,
        timeout: Duration,
    ) -> Result<BrokerConnection, InterBrokerError> {
        let stream = tokio::time::timeout(
            timeout,
            TcpStream::connect((endpoint.0.as_str(), endpoint.1)),
        )
        .await
        .map_err(|_| InterBrokerError::Timeout(timeout))??;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        Ok(BrokerConnection {
            reader: FrameReader::new(read, usize::MAX >> 1),
            writer,
            correlation_id: 0,
            client_id,
        })
    }

    /// Sends `req` at `version` and reads its answer, waiting at most `wait` (what the
    /// request asks the other side to wait, e.g. a long poll) plus `SOCKET_TIMEOUT`.
    pub async fn call<R: Request>(
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
