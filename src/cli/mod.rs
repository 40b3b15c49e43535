//! `gregor cluster|topic|produce|consume|group|completions ...`: the command-line client, in
//! the spirit of Redpanda's rpk. Every subcommand takes `--bootstrap-server HOST:PORT` as
//! Kafka's tools do and speaks only the Kafka protocol (through `BrokerConnection`), so it
//! works against Apache Kafka as well as gregor. This module holds the clap tree, the
//! dispatch and what the subcommands share (`Session`: the bootstrap connection, Metadata,
//! connections to leaders and coordinators, Kafka's error names); each subcommand family
//! lives in its own file.

mod cluster;
mod consume;
mod group;
mod produce;
mod topic;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{CommandFactory, Parser, Subcommand};
use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::kafka_protocol::messages::{
    FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::{Request, StrBytes};

use crate::inter_broker::{BrokerConnection, Endpoint, InterBrokerSecurity};

/// The first argument that selects the command-line client instead of the broker.
pub const SUBCOMMANDS: &[&str] = &[
    "cluster",
    "topic",
    "produce",
    "consume",
    "group",
    "completions",
];

/// Metadata v12: served by Kafka 2.8 to 4.x and by gregor.
const METADATA_VERSION: i16 = 12;
/// FindCoordinator v3: one key per request; Kafka 2.x to 4.x and gregor.
const FIND_COORDINATOR_VERSION: i16 = 3;

#[derive(Parser)]
#[command(
    name = "gregor",
    about = "gregor's command-line client (Kafka protocol only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The cluster as its brokers describe it.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Create, list, describe, reconfigure and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Produce records read from stdin or a file, one per line.
    Produce(produce::ProduceArgs),
    /// Print a topic's records.
    Consume(consume::ConsumeArgs),
    /// List, describe, reset and delete consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller, brokers, topics and partitions.
    Info(Target),
    /// Whether every partition has a leader and a whole ISR; exits 1 if not.
    Health {
        #[command(flatten)]
        target: Target,
        /// Wait up to this long for the cluster to become healthy.
        #[arg(long, default_value_t = 0)]
        wait_ms: u64,
    },
}

#[derive(clap::Args, Clone)]
pub(crate) struct Target {
    /// A broker to ask, host:port (Kafka's tools' flag).
    #[arg(long)]
    bootstrap_server: String,
    /// How long one request may take.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

/// Runs the client with `args` (without the program name); the process exit code.
pub fn run(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once("gregor".to_string()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "gregor", &mut std::io::stdout());
        return 0;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gregor: cannot start: {e}");
            return 2;
        }
    };
    let done = runtime.block_on(async move {
        match cli.command {
            Command::Cluster(ClusterCommand::Info(target)) => cluster::info(&target).await,
            Command::Cluster(ClusterCommand::Health { target, wait_ms }) => {
                Ok(cluster::health(&target, Duration::from_millis(wait_ms)).await)
            }
            Command::Topic(c) => topic::run(c).await,
            Command::Produce(a) => produce::run(a).await,
            Command::Consume(a) => consume::run(a).await,
            Command::Group(c) => group::run(c).await,
            Command::Completions { .. } => Ok(0),
        }
    });
    match done {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gregor: {e:#}");
            1
        }
    }
}

/// Kafka's name for an error code, as its tools print it: `TOPIC_ALREADY_EXISTS`.
pub(crate) fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::new();
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
    }
}

/// `Ok` for error code 0, otherwise an error naming `what`, Kafka's error name and the
/// broker's message (or Kafka's description of the code).
pub(crate) fn check(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let message = match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => ResponseError::try_from_code(code)
            .map(|e| e.to_string())
            .unwrap_or_default(),
    };
    bail!("{what}: {} ({message})", error_name(code))
}

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(crate) fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// `k=v` into its halves.
pub(crate) fn key_value(kv: &str) -> anyhow::Result<(String, String)> {
    kv.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow!("expected key=value, got {kv:?}"))
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone)]
pub(crate) struct PartitionInfo {
    pub index: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// The connections of one command: the bootstrap broker, and others by broker id as
/// Metadata names them (leaders, coordinators, the controller).
pub(crate) struct Session {
    name: String,
    timeout: Duration,
    bootstrap: BrokerConnection,
    endpoints: HashMap<i32, Endpoint>,
    brokers: HashMap<i32, BrokerConnection>,
    pub controller: i32,
}

impl Session {
    pub async fn connect(target: &Target) -> anyhow::Result<Session> {
        let (host, port) = target
            .bootstrap_server
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| anyhow!("--bootstrap-server must be host:port"))?;
        let timeout = Duration::from_millis(target.timeout_ms);
        // The tool speaks PLAINTEXT only.
        let plaintext = InterBrokerSecurity::plaintext();
        let bootstrap =
            BrokerConnection::connect(&(host, port), "gregor-cli".into(), timeout, &plaintext)
                .await
                .with_context(|| target.bootstrap_server.clone())?;
        Ok(Session {
            name: target.bootstrap_server.clone(),
            timeout,
            bootstrap,
            endpoints: HashMap::new(),
            brokers: HashMap::new(),
            controller: -1,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `req` to the bootstrap broker.
    pub async fn call<R: Request>(&mut self, version: i16, req: &R) -> anyhow::Result<R::Response> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.bootstrap.call(version, req, Duration::ZERO))
            .await
            .map_err(|_| anyhow!("no answer from {} within {timeout:?}", self.name))?
            .with_context(|| self.name.clone())
    }

    /// Sends `req` to broker `id` (known from an earlier Metadata), waiting `wait` beyond
    /// the timeout (a long poll).
    pub async fn call_broker<R: Request>(
        &mut self,
        id: i32,
        version: i16,
        req: &R,
        wait: Duration,
    ) -> anyhow::Result<R::Response> {
        let timeout = self.timeout;
        if !self.brokers.contains_key(&id) {
            let endpoint = self
                .endpoints
                .get(&id)
                .cloned()
                .ok_or_else(|| anyhow!("broker {id} is not in the cluster's metadata"))?;
            let plaintext = InterBrokerSecurity::plaintext();
            let conn =
                BrokerConnection::connect(&endpoint, "gregor-cli".into(), timeout, &plaintext)
                    .await
                    .with_context(|| format!("broker {id} at {}:{}", endpoint.0, endpoint.1))?;
            self.brokers.insert(id, conn);
        }
        let Some(conn) = self.brokers.get_mut(&id) else {
            bail!("broker {id}: no connection");
        };
        let answer = tokio::time::timeout(timeout + wait, conn.call(version, req, wait)).await;
        let answer = match answer {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(anyhow!("broker {id}: {e}")),
            Err(_) => Err(anyhow!("no answer from broker {id} within {timeout:?}")),
        };
        if answer.is_err() {
            // A connection that failed mid-request is not reused.
            self.brokers.remove(&id);
        }
        answer
    }

    /// Sends `req` to the controller (as Metadata names it; CreateTopics and DeleteTopics
    /// must go there on a ZooKeeper-mode Kafka), or the bootstrap broker if none is known.
    pub async fn call_controller<R: Request>(
        &mut self,
        version: i16,
        req: &R,
    ) -> anyhow::Result<R::Response> {
        self.metadata(Some(&[])).await?;
        if self.controller >= 0 && self.endpoints.contains_key(&self.controller) {
            let controller = self.controller;
            self.call_broker(controller, version, req, Duration::ZERO)
                .await
        } else {
            self.call(version, req).await
        }
    }

    /// Metadata for `topics` (all if `None`), remembering the brokers' endpoints.
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> anyhow::Result<MetadataResponse> {
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect()
            }));
        let md = self.call(METADATA_VERSION, &req).await?;
        for b in &md.brokers {
            let Ok(port) = u16::try_from(b.port) else {
                continue;
            };
            self.endpoints
                .insert(b.node_id.0, (b.host.to_string(), port));
        }
        self.controller = md.controller_id.0;
        Ok(md)
    }

    /// The partitions of `topic`, by index; an error if Metadata reports one for it.
    pub async fn partitions(&mut self, topic: &str) -> anyhow::Result<Vec<PartitionInfo>> {
        let md = self.metadata(Some(&[topic])).await?;
        let t = md
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .ok_or_else(|| anyhow!("topic {topic}: not in the metadata answer"))?;
        check(t.error_code, None, &format!("topic {topic}"))?;
        let mut parts: Vec<PartitionInfo> = t
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                index: p.partition_index,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                isr: p.isr_nodes.iter().map(|r| r.0).collect(),
            })
            .collect();
        parts.sort_by_key(|p| p.index);
        Ok(parts)
    }

    /// The partitions of `topic` once each has a leader (just created topics take a moment),
    /// waiting at most the timeout.
    pub async fn partitions_with_leaders(
        &mut self,
        topic: &str,
    ) -> anyhow::Result<Vec<PartitionInfo>> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let parts = self.partitions(topic).await;
            match parts {
                Ok(parts) if !parts.is_empty() && parts.iter().all(|p| p.leader >= 0) => {
                    return Ok(parts)
                }
                Ok(_) if tokio::time::Instant::now() < deadline => {}
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let retriable = e.to_string().contains("LEADER_NOT_AVAILABLE")
                        || e.to_string().contains("UNKNOWN_TOPIC_OR_PARTITION");
                    if !retriable {
                        return Err(e);
                    }
                }
                Ok(_) => bail!("topic {topic}: partitions without a leader"),
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The broker coordinating `group`, retrying while it is being loaded.
    pub async fn coordinator(&mut self, group: &str) -> anyhow::Result<i32> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let req = FindCoordinatorRequest::default()
                .with_key(s(group))
                .with_key_type(0);
            let r = self.call(FIND_COORDINATOR_VERSION, &req).await?;
            if r.error_code == 0 {
                if let Ok(port) = u16::try_from(r.port) {
                    self.endpoints
                        .insert(r.node_id.0, (r.host.to_string(), port));
                }
                return Ok(r.node_id.0);
            }
            let retriable =
                ResponseError::try_from_code(r.error_code).is_some_and(|e| e.is_retriable());
            if !retriable || tokio::time::Instant::now() >= deadline {
                check(
                    r.error_code,
                    r.error_message.as_ref(),
                    &format!("coordinator of group {group}"),
                )?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The broker ids Metadata named.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.endpoints.keys().copied().collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(run(vec!["cluster".into(), "health".into()]), 2);
        assert_eq!(run(vec!["cluster".into(), "nothing".into()]), 2);
        assert_eq!(run(vec!["topic".into(), "create".into()]), 2);
    }

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
    }
}
