//! rskafka-compat: the rskafka adapter of gregor's compat suite.
//!
//! rskafka (InfluxData) is a Kafka client written in Rust from the protocol up, not a wrapper of
//! librdkafka. The Python driver (compat-tests/compat/clients/rskafka.py) runs
//!
//! ```text
//! rskafka-compat <bootstrap> <command> key=value...
//! ```
//!
//! and reads one JSON object per line from stdout, exactly as for
//! compat-tests/java/CompatClient.java:
//!
//! ```text
//! create     topic= partitions=        ControllerClient::create_topic, prints {"created":true}
//! metadata   topic=                    one {"partition","leader"} per partition
//! produce    topic= [compression=]     messages on stdin, one per line (format below); prints
//!                                      {"i","partition","offset"} per message, in input order
//! consume    topic= partition= start= count= [timeout_ms=]
//!                                      Fetch from `start`, one record object per line
//! offsets    topic= partition= [ts=t1,t2,...]
//!                                      {"earliest","latest","by_ts":[offset or null per ts]}
//! ```
//!
//! Stdin message line: `partition TAB timestamp|- TAB key|- TAB value|- TAB headers`, key and
//! value base64 (`-` = null), headers a comma-separated list of `base64(name):base64(value)`
//! (`base64(name)` alone = a null value, which rskafka cannot carry). There is no `group`
//! command: rskafka has no consumer groups (no JoinGroup/SyncGroup, no offset commits).
//!
//! What rskafka's API cannot express is refused, never approximated: a record's headers are a
//! `BTreeMap<String, Vec<u8>>`, so duplicate header names and null header values are an error
//! on produce. Its producer acknowledges with acks=all and reports each record's offset; it has
//! no producer id, so it is never idempotent.
//!
//! Errors: a message that could not be produced is printed as {"i","error"} and the exit status
//! is 1; any other failure is printed on stderr with exit status 1.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    io::{BufRead, BufWriter, Write},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{anyhow, bail, Context as _, Result};
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use rskafka::{
    chrono::{DateTime, TimeZone, Utc},
    client::{
        partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling},
        Client, ClientBuilder,
    },
    record::Record,
    BackoffConfig,
};
use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::{layer::SubscriberExt as _, Layer};

/// Upper bound of the uncompressed record bytes in one produce request: well under the broker's
/// message.max.bytes (1 MiB) even uncompressed.
const BATCH_BYTES: usize = 512 * 1024;
/// Upper bound of the records in one produce request.
const BATCH_RECORDS: usize = 1000;
/// Fetch size per request (rskafka sends it as the request's and the partition's max_bytes).
const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;

type Opts = HashMap<String, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rskafka-compat <bootstrap> <command> key=value...");
        return ExitCode::from(2);
    }
    let mut opts = Opts::new();
    for a in &args[3..] {
        match a.split_once('=') {
            Some((k, v)) => opts.insert(k.to_owned(), v.to_owned()),
            None => {
                eprintln!("argument {a:?} is not key=value");
                return ExitCode::from(2);
            }
        };
    }
    let leaders = Leaders::default();
    let stderr_log = std::env::var("RUST_LOG").ok().map(|_| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::from_default_env())
    });
    let subscriber = tracing_subscriber::registry()
        .with(leaders.clone())
        .with(stderr_log);
    if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("tracing: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (bootstrap, cmd) = (args[1].clone(), args[2].as_str());
    let result = rt.block_on(async move {
        match cmd {
            "create" => create(&bootstrap, &opts).await,
            "metadata" => metadata(&bootstrap, &opts, &leaders).await,
            "produce" => produce(&bootstrap, &opts).await,
            "consume" => consume(&bootstrap, &opts).await,
            "offsets" => offsets(&bootstrap, &opts).await,
            "group" => {
                bail!("rskafka has no consumer groups (no JoinGroup/SyncGroup, no offset commits)")
            }
            other => bail!("unknown command {other}"),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rskafka-compat {cmd}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn opt<'a>(opts: &'a Opts, key: &str) -> Result<&'a str> {
    opts.get(key)
        .map(String::as_str)
        .ok_or_else(|| anyhow!("missing option {key}="))
}

fn opt_num<T: std::str::FromStr>(opts: &Opts, key: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    opt(opts, key)?
        .parse()
        .with_context(|| format!("option {key}="))
}

async fn connect(bootstrap: &str) -> Result<Client> {
    // rskafka retries retriable errors (connection loss, NOT_LEADER, LEADER_NOT_AVAILABLE, ...)
    // with backoff, by default forever: bound it so that a call fails within the driver's time.
    let backoff = BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        base: 2.0,
        deadline: Some(Duration::from_secs(30)),
    };
    ClientBuilder::new(vec![bootstrap.to_owned()])
        .client_id("gregor-compat-rskafka")
        .backoff_config(backoff)
        .build()
        .await
        .with_context(|| format!("connecting to {bootstrap}"))
}

async fn partition_client(client: &Client, topic: &str, partition: i32) -> Result<PartitionClient> {
    client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .with_context(|| format!("partition client for {topic}/{partition}"))
}

fn print_lines(lines: impl IntoIterator<Item = Value>) -> Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    Ok(())
}

async fn create(bootstrap: &str, opts: &Opts) -> Result<bool> {
    let client = connect(bootstrap).await?;
    client
        .controller_client()?
        .create_topic(opt(opts, "topic")?, opt_num(opts, "partitions")?, 1, 20_000)
        .await?;
    print_lines([json!({"created": true})])?;
    Ok(true)
}

/// The leader of each partition as rskafka read it from Metadata. rskafka uses the leader id
/// (to connect to that broker, then to ask the broker itself whether it leads) but does not
/// return it; it reports it in its "Detected leader" event, which this layer records.
#[derive(Clone, Default)]
struct Leaders(Arc<Mutex<HashMap<(String, i32), i64>>>);

#[derive(Default)]
struct LeaderEvent {
    message: Option<String>,
    topic: Option<String>,
    partition: Option<i32>,
    leader: Option<i64>,
}

impl Visit for LeaderEvent {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "leader" {
            self.leader = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let s = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(s),
            "topic" => self.topic = Some(s),
            "partition" => self.partition = s.parse().ok(),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Leaders {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !event.metadata().target().starts_with("rskafka") {
            return;
        }
        let mut ev = LeaderEvent::default();
        event.record(&mut ev);
        if let (Some("Detected leader"), Some(t), Some(p), Some(l)) =
            (ev.message.as_deref(), ev.topic, ev.partition, ev.leader)
        {
            self.0.lock().unwrap().insert((t, p), l);
        }
    }
}

async fn metadata(bootstrap: &str, opts: &Opts, leaders: &Leaders) -> Result<bool> {
    let topic = opt(opts, "topic")?;
    let client = connect(bootstrap).await?;
    let topics = client.list_topics().await?;
    let t = topics
        .iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| anyhow!("topic {topic} not in the Metadata response"))?;
    let mut lines = vec![];
    for &p in &t.partitions {
        // Succeeds only once the partition has a leader that rskafka could connect to and that
        // confirms, in its own Metadata response, that it leads the partition.
        partition_client(&client, topic, p).await?;
        let leader = leaders
            .0
            .lock()
            .unwrap()
            .get(&(topic.to_owned(), p))
            .copied();
        let leader = leader.ok_or_else(|| anyhow!("no leader reported for {topic}/{p}"))?;
        lines.push(json!({"partition": p, "leader": leader}));
    }
    print_lines(lines)?;
    Ok(true)
}

fn b64_field(s: &str) -> Result<Option<Vec<u8>>> {
    if s == "-" {
        Ok(None)
    } else {
        Ok(Some(B64.decode(s)?))
    }
}

fn millis(ts: i64) -> Result<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ts)
        .single()
        .ok_or_else(|| anyhow!("timestamp {ts} out of range"))
}

/// One stdin line as a record for `partition`, or why rskafka cannot produce it.
fn parse_message(line: &str) -> Result<(i32, Record)> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 5 {
        bail!("{} fields, expected 5", f.len());
    }
    let partition = f[0].parse()?;
    let timestamp = if f[1] == "-" {
        // rskafka always sets a CreateTime: the current time, as other clients do.
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        millis(i64::try_from(now.as_millis())?)?
    } else {
        millis(f[1].parse()?)?
    };
    let mut headers = BTreeMap::new();
    if !f[4].is_empty() {
        for h in f[4].split(',') {
            let (name, value) = match h.split_once(':') {
                Some((n, v)) => (n, Some(B64.decode(v)?)),
                None => (h, None),
            };
            let name = String::from_utf8(B64.decode(name)?)?;
            let Some(value) = value else {
                bail!("header {name:?} has a null value, which rskafka cannot produce");
            };
            if headers.insert(name.clone(), value).is_some() {
                bail!("header {name:?} appears twice, which rskafka cannot produce");
            }
        }
    }
    let record = Record {
        key: b64_field(f[2])?,
        value: b64_field(f[3])?,
        headers,
        timestamp,
    };
    Ok((partition, record))
}

fn compression(opts: &Opts) -> Result<Compression> {
    Ok(match opts.get("compression").map(String::as_str) {
        None | Some("none") => Compression::NoCompression,
        Some("gzip") => Compression::Gzip,
        Some("lz4") => Compression::Lz4,
        Some("snappy") => Compression::Snappy,
        Some("zstd") => Compression::Zstd,
        Some(other) => bail!("unknown compression {other}"),
    })
}

/// Produces one partition's records (input indexes and records, in input order) in requests of
/// at most BATCH_BYTES / BATCH_RECORDS, one request at a time so that the offsets follow the
/// input order. Returns (index, offset or error) for every record; after a failed request the
/// partition's remaining records are not sent.
async fn produce_partition(
    pc: PartitionClient,
    records: Vec<(usize, Record)>,
    compression: Compression,
) -> Vec<(usize, Result<i64, String>)> {
    let mut results = Vec::with_capacity(records.len());
    let mut failed: Option<String> = None;
    let mut batch: Vec<(usize, Record)> = vec![];
    let mut size = 0;
    let mut iter = records.into_iter().peekable();
    while let Some((i, r)) = iter.next() {
        size += r.approximate_size();
        batch.push((i, r));
        let full = match iter.peek() {
            None => true,
            Some((_, next)) => {
                batch.len() >= BATCH_RECORDS || size + next.approximate_size() > BATCH_BYTES
            }
        };
        if !full {
            continue;
        }
        let (idx, recs): (Vec<usize>, Vec<Record>) = std::mem::take(&mut batch).into_iter().unzip();
        size = 0;
        if let Some(e) = &failed {
            results.extend(idx.into_iter().map(|i| (i, Err(format!("not sent: {e}")))));
            continue;
        }
        match pc.produce(recs, compression).await {
            Ok(offsets) if offsets.len() == idx.len() => {
                results.extend(idx.into_iter().zip(offsets.into_iter().map(Ok)));
            }
            Ok(offsets) => {
                let e = format!("{} offsets for {} records", offsets.len(), idx.len());
                results.extend(idx.into_iter().map(|i| (i, Err(e.clone()))));
                failed = Some(e);
            }
            Err(e) => {
                let e = e.to_string();
                results.extend(idx.into_iter().map(|i| (i, Err(e.clone()))));
                failed = Some(e);
            }
        }
    }
    results
}

async fn produce(bootstrap: &str, opts: &Opts) -> Result<bool> {
    let topic = opt(opts, "topic")?;
    let compression = compression(opts)?;
    let mut per_partition: BTreeMap<i32, Vec<(usize, Record)>> = BTreeMap::new();
    let mut n = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let (p, r) = parse_message(&line).with_context(|| format!("message {n}"))?;
        per_partition.entry(p).or_default().push((n, r));
        n += 1;
    }
    let client = connect(bootstrap).await?;
    let mut results: Vec<Option<(i32, Result<i64, String>)>> = vec![None; n];
    // The partitions are produced concurrently, each in order over its own leader connection.
    let mut tasks = vec![];
    for (p, records) in per_partition {
        let pc = partition_client(&client, topic, p).await?;
        tasks.push((p, tokio::spawn(produce_partition(pc, records, compression))));
    }
    for (p, task) in tasks {
        for (i, r) in task.await? {
            results[i] = Some((p, r));
        }
    }
    let mut ok = true;
    let lines = results.into_iter().enumerate().map(|(i, r)| match r {
        Some((p, Ok(offset))) => json!({"i": i, "partition": p, "offset": offset}),
        Some((_, Err(e))) => {
            ok = false;
            json!({"i": i, "error": e})
        }
        None => {
            ok = false;
            json!({"i": i, "error": "no result"})
        }
    });
    let lines: Vec<Value> = lines.collect();
    print_lines(lines)?;
    Ok(ok)
}

fn b64_json(b: &Option<Vec<u8>>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => Value::String(B64.encode(b)),
    }
}

async fn consume(bootstrap: &str, opts: &Opts) -> Result<bool> {
    let topic = opt(opts, "topic")?;
    let partition: i32 = opt_num(opts, "partition")?;
    let mut offset: i64 = opt_num(opts, "start")?;
    let count: usize = opt_num(opts, "count")?;
    let timeout_ms: u64 = opts
        .get("timeout_ms")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(60_000);
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let client = connect(bootstrap).await?;
    let pc = partition_client(&client, topic, partition).await?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut got = 0;
    while got < count && Instant::now() < deadline {
        let (records, _high_watermark) = pc
            .fetch_records(offset, 1..FETCH_MAX_BYTES, 500)
            .await
            .with_context(|| format!("fetch {topic}/{partition} at {offset}"))?;
        for r in records {
            if got >= count {
                break;
            }
            let headers: Vec<Value> = r
                .record
                .headers
                .iter()
                .map(|(k, v)| json!([k, B64.encode(v)]))
                .collect();
            let line = json!({
                "partition": partition,
                "offset": r.offset,
                "timestamp": r.record.timestamp.timestamp_millis(),
                "key": b64_json(&r.record.key),
                "value": b64_json(&r.record.value),
                "headers": headers,
            });
            writeln!(out, "{line}")?;
            offset = r.offset + 1;
            got += 1;
        }
    }
    out.flush()?;
    Ok(true)
}

async fn offsets(bootstrap: &str, opts: &Opts) -> Result<bool> {
    let topic = opt(opts, "topic")?;
    let partition: i32 = opt_num(opts, "partition")?;
    let client = connect(bootstrap).await?;
    let pc = partition_client(&client, topic, partition).await?;
    let earliest = pc.get_offset(OffsetAt::Earliest).await?;
    let latest = pc.get_offset(OffsetAt::Latest).await?;
    let mut by_ts = vec![];
    if let Some(list) = opts.get("ts") {
        for ts in list.split(',') {
            let at = millis(ts.parse().with_context(|| format!("ts {ts}"))?)?;
            // ListOffsets answers -1 when no record has a timestamp >= the target.
            let o = pc.get_offset(OffsetAt::Timestamp(at)).await?;
            by_ts.push(if o < 0 { Value::Null } else { json!(o) });
        }
    }
    print_lines([json!({"earliest": earliest, "latest": latest, "by_ts": by_ts})])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        B64.encode(s)
    }

    #[test]
    fn message_line() {
        let line = format!(
            "2\t1700000000123\t{}\t-\t{}:{},{}:",
            b64("k"),
            b64("b"),
            b64("2"),
            b64("a")
        );
        let (p, r) = parse_message(&line).unwrap();
        assert_eq!(p, 2);
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value, None);
        assert_eq!(r.timestamp.timestamp_millis(), 1_700_000_000_123);
        let headers: Vec<_> = r.headers.into_iter().collect();
        assert_eq!(
            headers,
            [("a".to_owned(), vec![]), ("b".to_owned(), b"2".to_vec())]
        );
    }

    #[test]
    fn no_timestamp_is_now() {
        let (_, r) = parse_message("0\t-\t-\t-\t").unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let age = i64::try_from(now.as_millis()).unwrap() - r.timestamp.timestamp_millis();
        assert!((0..60_000).contains(&age), "{age}");
        assert!(r.headers.is_empty());
    }

    #[test]
    fn refuses_what_rskafka_cannot_carry() {
        let dup = format!("0\t-\t-\t-\t{0}:{1},{0}:{1}", b64("a"), b64("x"));
        let err = parse_message(&dup).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
        let null = format!("0\t-\t-\t-\t{}", b64("a"));
        let err = parse_message(&null).unwrap_err().to_string();
        assert!(err.contains("null value"), "{err}");
        assert!(parse_message("0\t-\t-\t-").is_err());
    }

    #[test]
    fn codecs() {
        let mut o = Opts::new();
        assert_eq!(compression(&o).unwrap(), Compression::NoCompression);
        for (name, c) in [
            ("gzip", Compression::Gzip),
            ("lz4", Compression::Lz4),
            ("snappy", Compression::Snappy),
            ("zstd", Compression::Zstd),
        ] {
            o.insert("compression".into(), name.into());
            assert_eq!(compression(&o).unwrap(), c);
        }
        o.insert("compression".into(), "brotli".into());
        assert!(compression(&o).is_err());
    }
}
