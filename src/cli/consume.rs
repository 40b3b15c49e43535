//! `gregor consume TOPIC`: Fetch v12 (topics by name) from the partitions' leaders, starting
//! at an offset (`start`, `end`, N), a timestamp (ListOffsets) or a group's committed offsets
//! (OffsetFetch); with `--group` the positions reached are committed afterwards (OffsetCommit
//! with generation -1, as a standalone consumer commits). It stops after `--num` records, or,
//! without `--follow`, once every partition is caught up with its high watermark.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::{Buf, Bytes};
use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use gregor_protocol::kafka_protocol::messages::{
    BrokerId, FetchRequest, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use gregor_protocol::kafka_protocol::records::{Record, RecordBatchDecoder};

use super::{check, s, topic_name, PartitionInfo, Session, Target};

/// Fetch v12: the newest with topics by name; Kafka 2.8 to 4.x and gregor.
const FETCH_VERSION: i16 = 12;
/// ListOffsets v7: timestamps and -1/-2; Kafka 2.8 to 4.x and gregor.
pub(super) const LIST_OFFSETS_VERSION: i16 = 7;
/// OffsetFetch v7: one group, flexible; Kafka 2.8 to 4.x and gregor.
pub(super) const OFFSET_FETCH_VERSION: i16 = 7;
/// OffsetCommit v8: flexible, generation -1 for a standalone commit.
pub(super) const OFFSET_COMMIT_VERSION: i16 = 8;
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;

#[derive(clap::ValueEnum, Clone, Copy, PartialEq)]
pub(super) enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
pub(super) struct ConsumeArgs {
    #[command(flatten)]
    target: Target,
    topic: String,
    /// Only this partition.
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Where to start: start, end, or an offset (also where a group without a committed
    /// offset starts).
    #[arg(long, short = 'o', default_value = "start")]
    offset: String,
    /// Start at the first record with a timestamp at or after this (ms since the epoch).
    #[arg(long)]
    timestamp: Option<i64>,
    /// Start at this group's committed offsets, and commit the positions reached.
    #[arg(long, short = 'g')]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    num: Option<u64>,
    /// Keep waiting for new records instead of stopping once caught up.
    #[arg(long)]
    follow: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// In text format, print key<TAB>value.
    #[arg(long)]
    print_key: bool,
}

pub(super) async fn run(args: ConsumeArgs) -> anyhow::Result<i32> {
    let mut session = Session::connect(&args.target).await?;
    let mut parts = session.partitions_with_leaders(&args.topic).await?;
    if let Some(p) = args.partition {
        parts.retain(|x| x.index == p);
        if parts.is_empty() {
            bail!("topic {} has no partition {p}", args.topic);
        }
    }
    let ids: Vec<i32> = parts.iter().map(|p| p.index).collect();

    // Where each partition starts.
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    let committed = match &args.group {
        Some(g) => committed_offsets(&mut session, g, &args.topic, Some(&ids)).await?,
        None => BTreeMap::new(),
    };
    let wanted = match (args.timestamp, args.offset.as_str()) {
        (Some(ts), _) => Some(ts),
        (None, "start") => Some(-2),
        (None, "end") => Some(-1),
        (None, n) => {
            let n: i64 = n
                .parse()
                .map_err(|_| anyhow!("--offset must be start, end or a number, not {n:?}"))?;
            for id in &ids {
                positions.insert(*id, n);
            }
            None
        }
    };
    if let Some(ts) = wanted {
        let found = list_offsets(&mut session, &args.topic, &parts, ts).await?;
        let ends = if ts >= 0 {
            list_offsets(&mut session, &args.topic, &parts, -1).await?
        } else {
            BTreeMap::new()
        };
        for (id, offset) in found {
            // No record at or after the timestamp: the end.
            let offset = if offset < 0 {
                ends.get(&id).copied().unwrap_or(0)
            } else {
                offset
            };
            positions.insert(id, offset);
        }
    }
    for (id, offset) in &committed {
        if *offset >= 0 {
            positions.insert(*id, *offset);
        }
    }

    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut high_watermarks: BTreeMap<i32, i64> = BTreeMap::new();
    'fetching: loop {
        if args.num.is_some_and(|n| printed >= n) {
            break;
        }
        let caught_up = ids.iter().all(|id| {
            high_watermarks
                .get(id)
                .is_some_and(|hw| positions.get(id).is_some_and(|p| p >= hw))
        });
        if caught_up && !args.follow && args.num.is_none() {
            break;
        }
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &parts {
            by_leader.entry(p.leader).or_default().push(p.index);
        }
        let wait = if args.follow || args.num.is_some() {
            Duration::from_millis(500)
        } else {
            Duration::ZERO
        };
        let mut refresh = false;
        for (leader, partitions) in by_leader {
            if leader < 0 {
                refresh = true;
                continue;
            }
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(wait.as_millis() as i32)
                .with_min_bytes(1)
                .with_max_bytes(50 * 1024 * 1024)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(&args.topic))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(*p)
                                    .with_current_leader_epoch(-1)
                                    .with_fetch_offset(positions.get(p).copied().unwrap_or(0))
                                    .with_last_fetched_epoch(-1)
                                    .with_log_start_offset(-1)
                                    .with_partition_max_bytes(PARTITION_MAX_BYTES)
                            })
                            .collect(),
                    )]);
            let r = session
                .call_broker(leader, FETCH_VERSION, &req, wait)
                .await?;
            check(r.error_code, None, "fetch")?;
            for t in &r.responses {
                for p in &t.partitions {
                    let retriable = ResponseError::try_from_code(p.error_code)
                        .is_some_and(|e| e.is_retriable());
                    if p.error_code != 0 && retriable {
                        refresh = true;
                        continue;
                    }
                    check(
                        p.error_code,
                        None,
                        &format!("fetch {}-{}", args.topic, p.partition_index),
                    )?;
                    high_watermarks.insert(p.partition_index, p.high_watermark);
                    let Some(records) = &p.records else { continue };
                    let position = positions.entry(p.partition_index).or_insert(0);
                    for record in decode(records)? {
                        if record.offset < *position {
                            continue;
                        }
                        *position = record.offset + 1;
                        if record.control {
                            continue;
                        }
                        print_record(&mut stdout, &args, p.partition_index, &record)?;
                        printed += 1;
                        if args.num.is_some_and(|n| printed >= n) {
                            break 'fetching;
                        }
                    }
                }
            }
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let fresh = session.partitions_with_leaders(&args.topic).await?;
            parts = fresh
                .into_iter()
                .filter(|p| ids.contains(&p.index))
                .collect::<Vec<PartitionInfo>>();
        }
    }
    stdout.flush()?;
    drop(stdout);

    if let Some(g) = &args.group {
        commit(&mut session, g, &args.topic, &positions).await?;
    }
    Ok(0)
}

/// Record batches out of a Fetch answer's records; a batch cut short at the end (the
/// answer's size limit) is left for the next fetch.
fn decode(records: &Bytes) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut rest = records.clone();
    while rest.len() >= 12 {
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Ok(length) = usize::try_from(length) else {
            bail!("a record batch of negative length");
        };
        let whole = 12 + length;
        if rest.len() < whole {
            break;
        }
        let mut batch = rest.slice(..whole);
        rest.advance(whole);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| anyhow!("decoding a record batch: {e}"))?;
        out.extend(set.records);
    }
    Ok(out)
}

fn text(b: &Option<Bytes>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

/// One record in `--format json`, its fields in this order.
#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<JsonHeader>,
}

#[derive(serde::Serialize)]
struct JsonHeader {
    key: String,
    value: Option<String>,
}

fn print_record(
    out: &mut impl Write,
    args: &ConsumeArgs,
    partition: i32,
    r: &Record,
) -> anyhow::Result<()> {
    match args.format {
        Format::Text => {
            let value = text(&r.value).unwrap_or_default();
            if args.print_key {
                writeln!(out, "{}\t{value}", text(&r.key).unwrap_or_default())?;
            } else {
                writeln!(out, "{value}")?;
            }
        }
        Format::Json => {
            let line = JsonRecord {
                topic: &args.topic,
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: text(&r.key),
                value: text(&r.value),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| JsonHeader {
                        key: k.to_string(),
                        value: text(v),
                    })
                    .collect(),
            };
            let line = serde_json::to_string(&line)?;
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// The offset of the first record at or after `timestamp` (-1: the end, -2: the start) in
/// each partition, asked of its leader.
pub(super) async fn list_offsets(
    session: &mut Session,
    topic: &str,
    parts: &[PartitionInfo],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in parts {
        by_leader.entry(p.leader).or_default().push(p.index);
    }
    let mut out = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(0)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(*p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )]);
        let r = session
            .call_broker(leader, LIST_OFFSETS_VERSION, &req, Duration::ZERO)
            .await?;
        for t in &r.topics {
            for p in &t.partitions {
                check(
                    p.error_code,
                    None,
                    &format!("list offsets of {topic}-{}", p.partition_index),
                )?;
                out.insert(p.partition_index, p.offset);
            }
        }
    }
    Ok(out)
}

/// A group's committed offsets in `topic` (-1: none), from its coordinator.
pub(super) async fn committed_offsets(
    session: &mut Session,
    group: &str,
    topic: &str,
    partitions: Option<&[i32]>,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let all = committed_all(session, group, partitions.map(|p| (topic, p))).await?;
    Ok(all
        .into_iter()
        .filter(|((t, _), _)| t == topic)
        .map(|((_, p), o)| (p, o))
        .collect())
}

/// A group's committed offsets by (topic, partition): of all its topics, or of one.
pub(super) async fn committed_all(
    session: &mut Session,
    group: &str,
    only: Option<(&str, &[i32])>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let coordinator = session.coordinator(group).await?;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(only.map(|(t, ps)| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(t))
                .with_partition_indexes(ps.to_vec())]
        }));
    let r = session
        .call_broker(coordinator, OFFSET_FETCH_VERSION, &req, Duration::ZERO)
        .await?;
    check(r.error_code, None, &format!("offsets of group {group}"))?;
    let mut out = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            check(
                p.error_code,
                None,
                &format!(
                    "offset of group {group} in {}-{}",
                    t.name.0, p.partition_index
                ),
            )?;
            out.insert(
                (t.name.0.to_string(), p.partition_index),
                p.committed_offset,
            );
        }
    }
    Ok(out)
}

/// Commits `offsets` for `group` as a standalone consumer does (generation -1, no member).
pub(super) async fn commit(
    session: &mut Session,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let coordinator = session.coordinator(group).await?;
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
    let r = session
        .call_broker(coordinator, OFFSET_COMMIT_VERSION, &req, Duration::ZERO)
        .await?;
    for t in &r.topics {
        for p in &t.partitions {
            check(
                p.error_code,
                None,
                &format!("commit of group {group} in {topic}-{}", p.partition_index),
            )?;
        }
    }
    Ok(())
}
