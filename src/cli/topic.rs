//! `gregor topic create|list|describe|alter-config|delete`: CreateTopics, Metadata,
//! DescribeConfigs, IncrementalAlterConfigs and DeleteTopics. Errors name Kafka's error
//! code (`TOPIC_ALREADY_EXISTS`) and exit 1.

use clap::Subcommand;
use gregor_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use gregor_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use gregor_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use gregor_protocol::kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
};

use super::{check, key_value, s, topic_name, Session, Target};

/// CreateTopics v5 (flexible, partitions/replication -1 for the broker's defaults).
const CREATE_TOPICS_VERSION: i16 = 5;
/// DeleteTopics v4: topics by name.
const DELETE_TOPICS_VERSION: i16 = 4;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
/// ConfigResource.Type.TOPIC
const TOPIC_RESOURCE: i8 = 2;

#[derive(Subcommand)]
pub(super) enum TopicCommand {
    /// Create a topic.
    Create {
        #[command(flatten)]
        target: Target,
        name: String,
        /// The broker's num.partitions if not given.
        #[arg(long, short = 'p', default_value_t = -1)]
        partitions: i32,
        /// The broker's default.replication.factor if not given.
        #[arg(long, short = 'r', default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, key=value; repeatable.
        #[arg(long, short = 'c')]
        config: Vec<String>,
    },
    /// List the topics with their partition counts.
    List(Target),
    /// Partitions (leader, replicas, ISR) and configs of a topic.
    Describe {
        #[command(flatten)]
        target: Target,
        name: String,
    },
    /// Set or delete topic configs (IncrementalAlterConfigs).
    AlterConfig {
        #[command(flatten)]
        target: Target,
        name: String,
        /// key=value to set; repeatable.
        #[arg(long)]
        set: Vec<String>,
        /// A key to delete (back to the default); repeatable.
        #[arg(long)]
        delete: Vec<String>,
    },
    /// Delete topics.
    Delete {
        #[command(flatten)]
        target: Target,
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub(super) async fn run(command: TopicCommand) -> anyhow::Result<i32> {
    match command {
        TopicCommand::Create {
            target,
            name,
            partitions,
            replication_factor,
            config,
        } => {
            let mut configs = Vec::new();
            for kv in &config {
                let (k, v) = key_value(kv)?;
                configs.push(
                    CreatableTopicConfig::default()
                        .with_name(s(&k))
                        .with_value(Some(s(&v))),
                );
            }
            let mut session = Session::connect(&target).await?;
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(session.timeout().as_millis() as i32)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(topic_name(&name))
                    .with_num_partitions(partitions)
                    .with_replication_factor(replication_factor)
                    .with_configs(configs)]);
            let r = session.call_controller(CREATE_TOPICS_VERSION, &req).await?;
            let t = r
                .topics
                .first()
                .ok_or_else(|| anyhow::anyhow!("CreateTopics answered no topic"))?;
            check(
                t.error_code,
                t.error_message.as_ref(),
                &format!("create {name}"),
            )?;
            println!(
                "created {name} (partitions {}, replication factor {})",
                t.num_partitions, t.replication_factor
            );
            Ok(0)
        }
        TopicCommand::List(target) => {
            let mut session = Session::connect(&target).await?;
            let md = session.metadata(None).await?;
            let mut rows: Vec<(String, usize, usize)> = md
                .topics
                .iter()
                .filter_map(|t| {
                    let name = t.name.as_ref()?.0.to_string();
                    let rf = t
                        .partitions
                        .first()
                        .map(|p| p.replica_nodes.len())
                        .unwrap_or(0);
                    Some((name, t.partitions.len(), rf))
                })
                .collect();
            rows.sort();
            println!("{:<40} {:>10} {:>8}", "NAME", "PARTITIONS", "REPLICAS");
            for (name, partitions, rf) in rows {
                println!("{name:<40} {partitions:>10} {rf:>8}");
            }
            Ok(0)
        }
        TopicCommand::Describe { target, name } => {
            let mut session = Session::connect(&target).await?;
            let parts = session.partitions(&name).await?;
            println!("topic: {name}");
            println!("partitions: {}", parts.len());
            println!(
                "{:>9} {:>7} {:<20} {:<20}",
                "PARTITION", "LEADER", "REPLICAS", "ISR"
            );
            for p in &parts {
                println!(
                    "{:>9} {:>7} {:<20} {:<20}",
                    p.index,
                    p.leader,
                    ids(&p.replicas),
                    ids(&p.isr)
                );
            }
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(TOPIC_RESOURCE)
                    .with_resource_name(s(&name))
                    .with_configuration_keys(None),
            ]);
            let r = session.call(DESCRIBE_CONFIGS_VERSION, &req).await?;
            let res = r
                .results
                .first()
                .ok_or_else(|| anyhow::anyhow!("DescribeConfigs answered no resource"))?;
            check(
                res.error_code,
                res.error_message.as_ref(),
                &format!("configs of {name}"),
            )?;
            println!("configs:");
            let mut configs: Vec<_> = res.configs.iter().collect();
            configs.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
            for c in configs {
                let value = if c.is_sensitive {
                    "(sensitive)".to_string()
                } else {
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()
                };
                println!("  {}={value} ({})", c.name, source_name(c.config_source));
            }
            Ok(0)
        }
        TopicCommand::AlterConfig {
            target,
            name,
            set,
            delete,
        } => {
            if set.is_empty() && delete.is_empty() {
                anyhow::bail!("nothing to change: give --set key=value or --delete key");
            }
            let mut configs = Vec::new();
            for kv in &set {
                let (k, v) = key_value(kv)?;
                configs.push(
                    AlterableConfig::default()
                        .with_name(s(&k))
                        .with_config_operation(0)
                        .with_value(Some(s(&v))),
                );
            }
            for k in &delete {
                configs.push(
                    AlterableConfig::default()
                        .with_name(s(k))
                        .with_config_operation(1)
                        .with_value(None),
                );
            }
            let mut session = Session::connect(&target).await?;
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(TOPIC_RESOURCE)
                    .with_resource_name(s(&name))
                    .with_configs(configs),
            ]);
            let r = session
                .call(INCREMENTAL_ALTER_CONFIGS_VERSION, &req)
                .await?;
            let res = r
                .responses
                .first()
                .ok_or_else(|| anyhow::anyhow!("IncrementalAlterConfigs answered no resource"))?;
            check(
                res.error_code,
                res.error_message.as_ref(),
                &format!("alter configs of {name}"),
            )?;
            println!(
                "altered {name}: {} set, {} deleted",
                set.len(),
                delete.len()
            );
            Ok(0)
        }
        TopicCommand::Delete { target, names } => {
            let mut session = Session::connect(&target).await?;
            let req = DeleteTopicsRequest::default()
                .with_timeout_ms(session.timeout().as_millis() as i32)
                .with_topic_names(names.iter().map(|n| topic_name(n)).collect());
            let r = session.call_controller(DELETE_TOPICS_VERSION, &req).await?;
            let mut failed = 0;
            for t in &r.responses {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                match check(
                    t.error_code,
                    t.error_message.as_ref(),
                    &format!("delete {name}"),
                ) {
                    Ok(()) => println!("deleted {name}"),
                    Err(e) => {
                        eprintln!("gregor: {e}");
                        failed += 1;
                    }
                }
            }
            Ok(if failed > 0 { 1 } else { 0 })
        }
    }
}

/// `[1,2,3]`: one column however many replicas.
fn ids(ids: &[i32]) -> String {
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    format!("[{}]", ids.join(","))
}

/// DescribeConfigs' config source, as Kafka's tools name it.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}
