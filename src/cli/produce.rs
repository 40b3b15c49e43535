//! `gregor produce TOPIC`: records from stdin or `--file`, one per line, batched per
//! partition into record batches (v2, uncompressed) and sent to the partitions' leaders with
//! Produce v9, acks=all by default. A partition is `--partition`, else the key's murmur2
//! hash as Kafka's default partitioner picks it, else round robin. A summary at the end; a
//! progress line on stderr every second when stderr is a terminal.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::{Bytes, BytesMut};
use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::ProduceRequest;
use gregor_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::{check, key_value, s, topic_name, PartitionInfo, Session, Target};

/// Produce v9: flexible, record batches; Kafka 2.4 to 4.x and gregor.
const PRODUCE_VERSION: i16 = 9;
/// A partition's pending records are sent once they reach this many bytes...
const BATCH_BYTES: usize = 256 * 1024;
/// ...or records, or once no line came for `LINGER`.
const BATCH_RECORDS: usize = 2000;
const LINGER: Duration = Duration::from_millis(100);
/// Sends retried on a retriable error (a moved leader), after a Metadata refresh.
const RETRIES: usize = 5;

#[derive(clap::Args)]
pub(super) struct ProduceArgs {
    #[command(flatten)]
    target: Target,
    topic: String,
    /// The key of every record.
    #[arg(long, short = 'k')]
    key: Option<String>,
    /// Split each line at the first SEP into key and value.
    #[arg(long)]
    key_separator: Option<String>,
    /// A header key=value on every record; repeatable.
    #[arg(long, short = 'H')]
    header: Vec<String>,
    /// Send every record to this partition.
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Read the records from this file instead of stdin.
    #[arg(long, short = 'f')]
    file: Option<std::path::PathBuf>,
    /// -1 (all) or 1 (the leader alone).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    acks: i16,
}

/// What one line became.
struct Line {
    key: Option<Bytes>,
    value: Bytes,
}

#[derive(Default)]
struct Totals {
    records: u64,
    bytes: u64,
    partitions: std::collections::BTreeSet<i32>,
}

pub(super) async fn run(args: ProduceArgs) -> anyhow::Result<i32> {
    if args.acks == 0 {
        // No answer comes for acks=0, and the summary counts acknowledged records.
        bail!("--acks must be -1 (all) or 1 (leader)");
    }
    let mut headers = Vec::new();
    for kv in &args.header {
        headers.push(key_value(kv)?);
    }
    let mut session = Session::connect(&args.target).await?;
    let mut parts = session.partitions_with_leaders(&args.topic).await?;
    if let Some(p) = args.partition {
        if !parts.iter().any(|x| x.index == p) {
            bail!("topic {} has no partition {p}", args.topic);
        }
    }

    // Lines are read on a thread of their own, so that a slow stdin does not hold back
    // batches already complete.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(BATCH_RECORDS);
    let file = args.file.clone();
    std::thread::spawn(move || {
        let reader: Box<dyn BufRead> = match file {
            Some(path) => match std::fs::File::open(&path) {
                Ok(f) => Box::new(std::io::BufReader::new(f)),
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", path.display()),
                    )));
                    return;
                }
            },
            None => Box::new(std::io::stdin().lock()),
        };
        for line in reader.lines() {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });

    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut totals = Totals::default();
    let mut pending: BTreeMap<i32, Vec<Line>> = BTreeMap::new();
    let mut pending_bytes = 0usize;
    let mut pending_records = 0usize;
    let mut round_robin = 0usize;
    let mut done = false;
    while !done {
        let next = tokio::time::timeout(LINGER, rx.recv()).await;
        let flush = match next {
            Ok(Some(line)) => {
                let line = line.map_err(|e| anyhow!("reading records: {e}"))?;
                let (key, value) = match (&args.key_separator, &args.key) {
                    (Some(sep), _) if line.contains(sep.as_str()) => {
                        let (k, v) = line.split_once(sep.as_str()).unwrap_or(("", &line));
                        (Some(k.to_string()), v.to_string())
                    }
                    (_, key) => (key.clone(), line),
                };
                let partition = match (args.partition, &key) {
                    (Some(p), _) => p,
                    (None, Some(k)) => {
                        let n = parts.len() as u32;
                        (murmur2(k.as_bytes()) & 0x7fff_ffff) as i32 % n as i32
                    }
                    (None, None) => {
                        round_robin += 1;
                        parts[round_robin % parts.len()].index
                    }
                };
                pending_bytes += value.len() + key.as_ref().map_or(0, String::len);
                pending_records += 1;
                pending.entry(partition).or_default().push(Line {
                    key: key.map(Bytes::from),
                    value: Bytes::from(value),
                });
                pending_bytes >= BATCH_BYTES || pending_records >= BATCH_RECORDS
            }
            Ok(None) => {
                done = true;
                true
            }
            Err(_) => true,
        };
        if flush && !pending.is_empty() {
            send(
                &mut session,
                &args,
                &headers,
                &mut parts,
                std::mem::take(&mut pending),
                &mut totals,
            )
            .await?;
            pending_bytes = 0;
            pending_records = 0;
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let rate = totals.records as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\r{} records, {rate:.0} records/s   ", totals.records);
            let _ = std::io::stderr().flush();
        }
    }
    if progress && started.elapsed() >= Duration::from_secs(1) {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    println!(
        "produced {} records ({} bytes) to {} partitions of {} in {secs:.2}s ({:.0} records/s)",
        totals.records,
        totals.bytes,
        totals.partitions.len(),
        args.topic,
        totals.records as f64 / secs
    );
    Ok(0)
}

/// Sends the pending records, one batch per partition and one request per leader.
async fn send(
    session: &mut Session,
    args: &ProduceArgs,
    headers: &[(String, String)],
    parts: &mut Vec<PartitionInfo>,
    pending: BTreeMap<i32, Vec<Line>>,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut batches: BTreeMap<i32, (Bytes, u64, u64)> = BTreeMap::new();
    for (partition, lines) in pending {
        let mut bytes = 0u64;
        let records: Vec<Record> = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                bytes += (line.value.len() + line.key.as_ref().map_or(0, Bytes::len)) as u64;
                let mut record_headers = gregor_protocol::kafka_protocol::indexmap::IndexMap::new();
                for (k, v) in headers {
                    record_headers.insert(s(k), Some(Bytes::copy_from_slice(v.as_bytes())));
                }
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    // One batch needs offset - sequence constant; without a producer id the
                    // base sequence is -1.
                    sequence: i as i32 - 1,
                    timestamp: now,
                    key: line.key,
                    value: Some(line.value),
                    headers: record_headers,
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| anyhow!("encoding a batch: {e}"))?;
        batches.insert(partition, (buf.freeze(), records.len() as u64, bytes));
    }
    let mut attempt = 0;
    while !batches.is_empty() {
        attempt += 1;
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for partition in batches.keys() {
            let leader = parts
                .iter()
                .find(|p| p.index == *partition)
                .map_or(-1, |p| p.leader);
            by_leader.entry(leader).or_default().push(*partition);
        }
        let mut retry = false;
        for (leader, partitions) in by_leader {
            if leader < 0 {
                retry = true;
                continue;
            }
            let req = ProduceRequest::default()
                .with_acks(args.acks)
                .with_timeout_ms(session.timeout().as_millis() as i32)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic_name(&args.topic))
                    .with_partition_data(
                        partitions
                            .iter()
                            .filter_map(|p| {
                                let (batch, _, _) = batches.get(p)?;
                                Some(
                                    PartitionProduceData::default()
                                        .with_index(*p)
                                        .with_records(Some(batch.clone())),
                                )
                            })
                            .collect(),
                    )]);
            let r = session
                .call_broker(leader, PRODUCE_VERSION, &req, Duration::ZERO)
                .await?;
            for t in &r.responses {
                for p in &t.partition_responses {
                    let retriable = ResponseError::try_from_code(p.error_code)
                        .is_some_and(|e| e.is_retriable());
                    if p.error_code != 0 && retriable && attempt <= RETRIES {
                        retry = true;
                        continue;
                    }
                    check(
                        p.error_code,
                        p.error_message.as_ref(),
                        &format!("produce to {}-{}", args.topic, p.index),
                    )?;
                    if let Some((_, records, bytes)) = batches.remove(&p.index) {
                        totals.records += records;
                        totals.bytes += bytes;
                        totals.partitions.insert(p.index);
                    }
                }
            }
        }
        if !batches.is_empty() {
            if !retry || attempt > RETRIES {
                bail!(
                    "produce to {}: no answer for partitions {:?}",
                    args.topic,
                    batches.keys().collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            *parts = session.partitions_with_leaders(&args.topic).await?;
        }
    }
    Ok(())
}

/// Kafka's murmur2 (`Utils.murmur2`), which its default partitioner hashes keys with.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len() as u32;
    let mut h = SEED ^ length;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= (tail[2] as u32) << 16;
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= tail[0] as u32;
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas() {
        // Kafka's UtilsTest.testMurmur2: "21" -> -973932308, "foobar" -> -790332482.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
    }
}
