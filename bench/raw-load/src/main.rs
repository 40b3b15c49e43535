//! raw_load: load on a Kafka-wire broker with no client library in the way, to measure the
//! broker's own limit (the Rust successor of bench/raw_load.py).
//!
//! Kafka clients spend CPU on every record (librdkafka and the JVM client build, checksum and
//! parse each batch), and on a small machine that work competes with the broker for the same
//! cores, so a client benchmark partly measures the client. raw_load does no per-record work:
//! `produce` encodes one RecordBatch v2 per partition once and sends the same Produce v7
//! request over and over, keeping a window of requests in flight; `consume` sends Fetch v4
//! requests and walks only the batch headers of the answers. Both can spread the load over
//! several connections, each with its own threads, so that one client thread is never what
//! limits the run. Each mode prints one JSON object on stdout.
//!
//! `fixed-produce` and `fixed-consume` are a deterministic workload instead (one request at a
//! time, everything checked), for counting the broker's instructions under valgrind.

mod fixed;
mod load;
mod net;
mod wire;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "raw_load",
    about = "Load on a Kafka-wire broker with pre-encoded batches and no client library"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Send one pre-encoded Produce request over and over, a window of them in flight
    Produce(ProduceArgs),
    /// Read with Fetch requests, walking only the batch headers
    Consume(ConsumeArgs),
    /// Deterministic: B Produce requests of one R-record batch to partition 0, one at a time
    FixedProduce(FixedArgs),
    /// Deterministic: fetch B*R records from partition 0, checking every batch and value
    FixedConsume(FixedArgs),
}

#[derive(Args)]
struct Target {
    /// The broker, host:port
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
}

#[derive(Args)]
struct ProduceArgs {
    #[command(flatten)]
    target: Target,
    /// Partitions 0..N of the topic, one batch each per request
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// Bytes of each record's value
    #[arg(long, default_value_t = 1024)]
    size: u32,
    /// Records to send (rounded up to whole requests)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// About the bytes of one request, split evenly over the partitions (librdkafka's largest
    /// request is about 1,000,000 bytes)
    #[arg(long, default_value_t = 960 * 1024)]
    request_bytes: u32,
    #[arg(long, default_value_t = 1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i16).range(-1..=1))]
    acks: i16,
    /// Requests outstanding per connection
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    in_flight: u32,
    /// Connections, each with a writer and a reader thread; the requests are split over them
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
}

#[derive(Args)]
struct ConsumeArgs {
    #[command(flatten)]
    target: Target,
    /// Partitions 0..N of the topic, read from offset 0
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// Records to read (across all partitions)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Bytes of each record's value (only for the MB/s figure)
    #[arg(long, default_value_t = 1024)]
    size: u32,
    /// Connections (at most one per partition), the partitions dealt round-robin over them
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    #[arg(long, default_value_t = 50 << 20, value_parser = clap::value_parser!(i32).range(1..))]
    max_bytes: i32,
    #[arg(long, default_value_t = 10 << 20, value_parser = clap::value_parser!(i32).range(1..))]
    partition_max_bytes: i32,
    /// Check each batch: magic 2, its CRC, and offsets contiguous from 0
    #[arg(long)]
    verify: bool,
}

#[derive(Args)]
struct FixedArgs {
    #[command(flatten)]
    target: Target,
    /// Bytes of each record's value
    #[arg(long)]
    size: u32,
    /// Produce requests (B), one batch each
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    batches: u64,
    /// Records per batch (R)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    records_per_batch: u32,
    /// fixed-consume: the Fetch request's max bytes and partition max bytes (a whole batch
    /// comes back even if it is larger, as in Kafka)
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(i32).range(1..))]
    max_bytes: i32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.mode) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("raw_load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a mode and prints its JSON line; false if the run fell short (errors, too few
/// records).
fn run(mode: Mode) -> Result<bool, String> {
    match mode {
        Mode::Produce(a) => {
            let r = load::produce(&load::ProduceOpts {
                bootstrap: &a.target.bootstrap,
                topic: &a.target.topic,
                partitions: a.partitions,
                size: a.size as usize,
                records: a.records,
                request_bytes: a.request_bytes as usize,
                acks: a.acks,
                in_flight: a.in_flight as usize,
                connections: a.connections as usize,
            })?;
            let rate = r.records as f64 / r.seconds;
            print_json(&[
                ("mode", "produce".into()),
                ("records", r.records.into()),
                ("errors", r.errors.into()),
                ("seconds", round3(r.seconds).into()),
                ("msgs", rate.into()),
                ("mbs", (rate * f64::from(a.size) / 1e6).into()),
                ("connections", a.connections.into()),
            ]);
            Ok(r.errors == 0)
        }
        Mode::Consume(a) => {
            let r = load::consume(&load::ConsumeOpts {
                bootstrap: &a.target.bootstrap,
                topic: &a.target.topic,
                partitions: a.partitions,
                records: a.records,
                connections: a.connections as usize,
                max_bytes: a.max_bytes,
                partition_max_bytes: a.partition_max_bytes,
                verify: a.verify,
            })?;
            print_json(&[
                ("mode", "consume".into()),
                ("records", r.records.into()),
                ("seconds", round3(r.seconds).into()),
                ("msgs", r.rate.into()),
                ("mbs", (r.rate * f64::from(a.size) / 1e6).into()),
                ("connections", r.connections.into()),
                ("bytes", r.bytes.into()),
            ]);
            Ok(r.records >= a.records)
        }
        Mode::FixedProduce(a) => fixed("fixed-produce", fixed::produce, &a),
        Mode::FixedConsume(a) => fixed("fixed-consume", fixed::consume, &a),
    }
}

fn fixed(
    mode: &str,
    workload: fn(&fixed::FixedOpts) -> Result<fixed::FixedReport, String>,
    a: &FixedArgs,
) -> Result<bool, String> {
    let r = workload(&fixed::FixedOpts {
        bootstrap: &a.target.bootstrap,
        topic: &a.target.topic,
        size: a.size as usize,
        batches: a.batches,
        records_per_batch: a.records_per_batch,
        max_bytes: a.max_bytes,
    })?;
    print_json(&[
        ("mode", mode.into()),
        ("requests", r.requests.into()),
        ("records", r.records.into()),
        ("bytes", (r.records * u64::from(a.size)).into()),
    ]);
    Ok(true)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One JSON object on one line, keys in the order given (raw_load.py's order).
fn print_json(fields: &[(&str, Value)]) {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
        .collect();
    println!("{{{}}}", body.join(","));
}
