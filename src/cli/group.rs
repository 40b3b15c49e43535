//! `gregor group list|describe|seek|delete`: ListGroups (asked of every broker, each lists
//! the groups it coordinates), DescribeGroups with OffsetFetch and ListOffsets for the lag,
//! OffsetCommit with generation -1 for `seek` (only for an empty group, as Kafka's
//! `kafka-consumer-groups --reset-offsets`), DeleteGroups.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use gregor_protocol::kafka_protocol::messages::describe_groups_response::DescribedGroup;
use gregor_protocol::kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
};

use super::consume::{commit, committed_all, list_offsets};
use super::{check, s, Session, Target};

/// ListGroups v4: with states; Kafka 2.6 to 4.x and gregor.
const LIST_GROUPS_VERSION: i16 = 4;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const DELETE_GROUPS_VERSION: i16 = 2;

#[derive(Subcommand)]
pub(super) enum GroupCommand {
    /// The groups of every broker, with their state.
    List(Target),
    /// Members, and per partition the committed offset, the end offset and the lag.
    Describe {
        #[command(flatten)]
        target: Target,
        group: String,
    },
    /// Move an empty group's committed offsets in a topic.
    Seek {
        #[command(flatten)]
        target: Target,
        group: String,
        #[arg(long)]
        topic: String,
        /// start, end, or an offset.
        #[arg(long)]
        to: String,
    },
    /// Delete groups (empty ones only, as Kafka does).
    Delete {
        #[command(flatten)]
        target: Target,
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub(super) async fn run(command: GroupCommand) -> anyhow::Result<i32> {
    match command {
        GroupCommand::List(target) => {
            let mut session = Session::connect(&target).await?;
            session.metadata(Some(&[])).await?;
            let mut rows = Vec::new();
            for id in session.broker_ids() {
                let r = session
                    .call_broker(
                        id,
                        LIST_GROUPS_VERSION,
                        &ListGroupsRequest::default(),
                        Duration::ZERO,
                    )
                    .await?;
                check(r.error_code, None, &format!("list groups of broker {id}"))?;
                for g in &r.groups {
                    rows.push((
                        g.group_id.0.to_string(),
                        g.group_state.to_string(),
                        g.protocol_type.to_string(),
                        id,
                    ));
                }
            }
            rows.sort();
            println!(
                "{:<40} {:<20} {:<10} {:>11}",
                "GROUP", "STATE", "PROTOCOL", "COORDINATOR"
            );
            for (group, state, protocol, id) in rows {
                println!("{group:<40} {state:<20} {protocol:<10} {id:>11}");
            }
            Ok(0)
        }
        GroupCommand::Describe { target, group } => {
            let mut session = Session::connect(&target).await?;
            let described = describe(&mut session, &group).await?;
            println!("group: {group}");
            println!("state: {}", described.group_state);
            println!("protocol type: {}", described.protocol_type);
            println!("members: {}", described.members.len());
            for m in &described.members {
                println!(
                    "  {} client-id={} host={}",
                    m.member_id, m.client_id, m.client_host
                );
            }
            let committed = committed_all(&mut session, &group, None).await?;
            let mut topics: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
            for ((t, p), o) in committed {
                topics.entry(t).or_default().push((p, o));
            }
            println!(
                "{:<30} {:>9} {:>12} {:>12} {:>8}",
                "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
            );
            let mut total = 0i64;
            for (topic, partitions) in topics {
                let parts = session.partitions(&topic).await?;
                let ends = list_offsets(&mut session, &topic, &parts, -1).await?;
                for (p, committed) in partitions {
                    let end = ends.get(&p).copied();
                    let lag = match end {
                        Some(end) if committed >= 0 => (end - committed).max(0),
                        Some(end) => end,
                        None => 0,
                    };
                    total += lag;
                    let end = end.map_or("-".to_string(), |e| e.to_string());
                    println!("{topic:<30} {p:>9} {committed:>12} {end:>12} {lag:>8}");
                }
            }
            println!("total lag: {total}");
            Ok(0)
        }
        GroupCommand::Seek {
            target,
            group,
            topic,
            to,
        } => {
            let mut session = Session::connect(&target).await?;
            let described = describe(&mut session, &group).await?;
            let state = described.group_state.to_string();
            if !(state == "Empty" || state == "Dead" || described.members.is_empty()) {
                bail!(
                    "group {group} is {state} with {} members: seek needs an empty group",
                    described.members.len()
                );
            }
            let parts = session.partitions_with_leaders(&topic).await?;
            let offsets: BTreeMap<i32, i64> = match to.as_str() {
                "start" => list_offsets(&mut session, &topic, &parts, -2).await?,
                "end" => list_offsets(&mut session, &topic, &parts, -1).await?,
                n => {
                    let n: i64 = n.parse().map_err(|_| {
                        anyhow::anyhow!("--to must be start, end or an offset, not {n:?}")
                    })?;
                    parts.iter().map(|p| (p.index, n)).collect()
                }
            };
            commit(&mut session, &group, &topic, &offsets).await?;
            for (p, o) in &offsets {
                println!("{group} {topic}-{p} -> {o}");
            }
            Ok(0)
        }
        GroupCommand::Delete { target, groups } => {
            let mut session = Session::connect(&target).await?;
            let mut failed = 0;
            for group in &groups {
                let done = async {
                    let coordinator = session.coordinator(group).await?;
                    let req =
                        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
                    let r = session
                        .call_broker(coordinator, DELETE_GROUPS_VERSION, &req, Duration::ZERO)
                        .await?;
                    for g in &r.results {
                        check(g.error_code, None, &format!("delete group {group}"))?;
                    }
                    anyhow::Ok(())
                }
                .await;
                match done {
                    Ok(()) => println!("deleted {group}"),
                    Err(e) => {
                        eprintln!("gregor: {e:#}");
                        failed += 1;
                    }
                }
            }
            Ok(if failed > 0 { 1 } else { 0 })
        }
    }
}

async fn describe(session: &mut Session, group: &str) -> anyhow::Result<DescribedGroup> {
    let coordinator = session.coordinator(group).await?;
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    let r = session
        .call_broker(coordinator, DESCRIBE_GROUPS_VERSION, &req, Duration::ZERO)
        .await?;
    let g = r
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("DescribeGroups answered no group"))?;
    check(
        g.error_code,
        g.error_message.as_ref(),
        &format!("group {group}"),
    )?;
    Ok(g)
}
