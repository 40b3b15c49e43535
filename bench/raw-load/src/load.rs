//! The throughput modes: produce (one pre-encoded request sent over and over, a window of
//! requests in flight per connection) and consume (Fetch, reading batch headers only).

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::net;
use crate::wire::{self, Check, PartitionOffset};

pub struct ProduceOpts<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub partitions: u32,
    pub size: usize,
    pub records: u64,
    pub request_bytes: usize,
    pub acks: i16,
    pub in_flight: usize,
    pub connections: usize,
}

pub struct ProduceReport {
    pub records: u64,
    pub errors: u64,
    pub seconds: f64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn produce(o: &ProduceOpts) -> Result<ProduceReport, String> {
    let partitions: Vec<i32> = (0..o.partitions as i32).collect();
    // Records per batch so that a request holds about request_bytes (10: a record's overhead).
    let per_batch = (o.request_bytes / partitions.len() / (o.size + 10)).max(1);
    let batch = wire::record_batch(per_batch, o.size, now_ms());
    let per_request = (per_batch * partitions.len()) as u64;
    let requests = o.records.div_ceil(per_request);
    let frame = wire::request(
        wire::PRODUCE,
        7,
        0,
        &wire::produce_body(o.topic, &partitions, &batch, o.acks),
    );
    // Connected before the clock starts.
    let streams = (0..o.connections)
        .map(|_| net::connect(o.bootstrap))
        .collect::<Result<Vec<_>, _>>()?;
    let c = streams.len() as u64;
    let results: Vec<Result<Timing, String>> = thread::scope(|s| {
        let handles: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(k, stream)| {
                // The requests dealt evenly, the first ones taking the remainder.
                let n = requests / c + u64::from((k as u64) < requests % c);
                let frame = frame.clone();
                s.spawn(move || produce_connection(stream, frame, n, o.in_flight, o.acks))
            })
            .collect();
        handles.into_iter().map(join).collect()
    });
    let mut start: Option<Instant> = None;
    let mut end: Option<Instant> = None;
    let mut errors = 0;
    for r in results {
        let t = r?;
        start = earliest(start, t.first_send);
        end = end.max(t.last_answer);
        errors += t.errors;
    }
    Ok(ProduceReport {
        records: requests * per_request,
        errors,
        seconds: seconds(start, end),
    })
}

/// What one connection saw.
struct Timing {
    first_send: Option<Instant>,
    /// The last answer, or with acks 0 (the broker does not answer) the last send.
    last_answer: Option<Instant>,
    errors: u64,
}

/// Sends `requests` copies of `frame` (correlation ids 1, 2, ...) with at most `in_flight`
/// unanswered; a reader thread checks the answers and frees window slots.
fn produce_connection(
    stream: TcpStream,
    mut frame: Vec<u8>,
    requests: u64,
    in_flight: usize,
    acks: i16,
) -> Result<Timing, String> {
    // Holds the ids of the requests sent and not yet answered: sending blocks when it is full.
    let (window_tx, sent) = sync_channel::<i32>(in_flight);
    // The first failure of either thread; shutting the socket down then stops the other.
    let failure = OnceLock::new();
    let fail = |e: String| {
        let _ = failure.set(e);
        let _ = stream.shutdown(Shutdown::Both);
    };
    let (first_send, last_send, answers) = thread::scope(|s| {
        let (stream, fail) = (&stream, &fail);
        // acks 0: the broker does not answer, so no reader and no window.
        let reader = (acks != 0).then(|| {
            s.spawn(move || {
                let r = read_produce_answers(stream, &sent, requests);
                if let Err(e) = &r {
                    fail(e.clone());
                }
                r.ok() // `sent` is dropped here, after `fail`: a blocked writer wakes
            })
        });
        let mut first_send = None;
        let window = reader.as_ref().map(|_| &window_tx);
        if let Err(e) = write_requests(stream, &mut frame, requests, window, &mut first_send) {
            fail(e);
        }
        let last_send = Instant::now();
        drop(window_tx);
        (first_send, last_send, reader.map(|h| h.join()))
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let (errors, last_answer) = match answers {
        None => (0, (requests > 0).then_some(last_send)),
        Some(Ok(Some(answers))) => answers,
        Some(_) => return Err("the answer reader panicked".to_string()),
    };
    Ok(Timing {
        first_send,
        last_answer,
        errors,
    })
}

/// The writer's loop. Without a window (acks 0) it sends as fast as the socket takes them.
fn write_requests(
    stream: &TcpStream,
    frame: &mut [u8],
    requests: u64,
    window: Option<&SyncSender<i32>>,
    first_send: &mut Option<Instant>,
) -> Result<(), String> {
    for i in 0..requests {
        let id = correlation_id(i);
        if let Some(window) = window {
            // Fails only once the reader has gone, and its failure came first.
            window
                .send(id)
                .map_err(|_| "the answer reader stopped".to_string())?;
        }
        wire::set_correlation(frame, id);
        first_send.get_or_insert_with(Instant::now);
        net::send(stream, frame)?;
    }
    Ok(())
}

/// Correlation ids 1, 2, ... (wrapping past i32::MAX, far beyond any run).
fn correlation_id(i: u64) -> i32 {
    (i % i32::MAX as u64) as i32 + 1
}

/// Reads `requests` answers; returns the partitions with an error and when the last came.
fn read_produce_answers(
    stream: &TcpStream,
    sent: &Receiver<i32>,
    requests: u64,
) -> Result<(u64, Option<Instant>), String> {
    let mut buf = Vec::new();
    let mut errors = 0;
    let mut last = None;
    for _ in 0..requests {
        net::read_answer(stream, &mut buf)?;
        // The writer queues the id before sending, so it is there once the answer is.
        let expected = sent
            .recv()
            .map_err(|_| "an answer to a request never sent".to_string())?;
        net::check_correlation(&buf, expected)?;
        let parts = wire::parse_produce(&buf)?;
        errors += parts.iter().filter(|p| p.error != 0).count() as u64;
        last = Some(Instant::now());
    }
    Ok((errors, last))
}

pub struct ConsumeOpts<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub partitions: u32,
    pub records: u64,
    pub connections: usize,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub verify: bool,
}

pub struct ConsumeReport {
    pub records: u64,
    pub connections: usize,
    pub seconds: f64,
    /// Records per second, from the first answer carrying data.
    pub rate: f64,
    pub bytes: u64,
}

/// How long consume keeps trying to read `records`.
const DEADLINE: Duration = Duration::from_secs(600);

/// What the consume threads share.
struct Shared {
    goal: u64,
    /// Records read by all threads.
    total: AtomicU64,
    /// When the total reached the goal, and the total then.
    done: OnceLock<(Instant, u64)>,
    /// Set by a thread that failed, so that the others stop.
    failed: AtomicBool,
    deadline: Instant,
}

/// What one consume thread saw.
struct Consumed {
    /// Its first answer carrying data, and the records in it.
    first: Option<(Instant, u64)>,
    end: Instant,
    bytes: u64,
}

pub fn consume(o: &ConsumeOpts) -> Result<ConsumeReport, String> {
    let c = o.connections.min(o.partitions as usize);
    let mut assigned = vec![Vec::new(); c];
    for p in 0..o.partitions as i32 {
        assigned[p as usize % c].push(PartitionOffset {
            partition: p,
            next: 0,
        });
    }
    let streams = (0..c)
        .map(|_| net::connect(o.bootstrap))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Shared {
        goal: o.records,
        total: AtomicU64::new(0),
        done: OnceLock::new(),
        failed: AtomicBool::new(false),
        deadline: Instant::now() + DEADLINE,
    };
    let start = Instant::now();
    let results: Vec<Result<Consumed, String>> = thread::scope(|s| {
        let handles: Vec<_> = streams
            .into_iter()
            .zip(assigned)
            .map(|(stream, offsets)| {
                let shared = &shared;
                s.spawn(move || {
                    let r = consume_connection(&stream, offsets, o, shared);
                    if r.is_err() {
                        shared.failed.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        handles.into_iter().map(join).collect()
    });
    let mut first: Option<(Instant, u64)> = None;
    let mut end = start;
    let mut bytes = 0;
    for r in results {
        let t = r?;
        if let Some(f) = t.first {
            if first.is_none_or(|g| f.0 < g.0) {
                first = Some(f);
            }
        }
        end = end.max(t.end);
        bytes += t.bytes;
    }
    let total = shared.total.load(Ordering::Relaxed);
    // Timed to the answer that reached the goal: other threads may still be waiting on a
    // fetch that will bring nothing.
    let (end, counted) = shared.done.get().copied().unwrap_or((end, total));
    let (from, first_records) = first.unwrap_or((start, 0));
    let secs = end.saturating_duration_since(from).as_secs_f64().max(1e-9);
    Ok(ConsumeReport {
        records: total,
        connections: c,
        seconds: secs,
        rate: counted.saturating_sub(first_records) as f64 / secs,
        bytes,
    })
}

/// Fetches one connection's partitions until all threads together have the goal.
fn consume_connection(
    stream: &TcpStream,
    mut offsets: Vec<PartitionOffset>,
    o: &ConsumeOpts,
    shared: &Shared,
) -> Result<Consumed, String> {
    let check = if o.verify {
        Check::Batches
    } else {
        Check::Headers
    };
    let mut buf = Vec::new();
    let mut out = Consumed {
        first: None,
        end: Instant::now(),
        bytes: 0,
    };
    let mut correlation = 0;
    while shared.total.load(Ordering::Relaxed) < shared.goal
        && !shared.failed.load(Ordering::Relaxed)
        && Instant::now() < shared.deadline
    {
        correlation = correlation % i32::MAX + 1;
        let body = wire::fetch_body(o.topic, &offsets, 500, o.max_bytes, o.partition_max_bytes);
        let frame = wire::request(wire::FETCH, 4, correlation, &body);
        net::exchange(stream, &frame, correlation, &mut buf)?;
        let got = wire::walk_fetch(&buf, &mut offsets, check)?;
        out.bytes += got.bytes;
        if got.records > 0 {
            let now = Instant::now();
            out.first.get_or_insert((now, got.records));
            let before = shared.total.fetch_add(got.records, Ordering::Relaxed);
            if before < shared.goal && before + got.records >= shared.goal {
                let _ = shared.done.set((now, before + got.records));
            }
        }
    }
    out.end = Instant::now();
    Ok(out)
}

/// A thread's result; a panic (a bug, never network input) becomes an error.
fn join<T>(h: thread::ScopedJoinHandle<'_, Result<T, String>>) -> Result<T, String> {
    h.join()
        .unwrap_or_else(|_| Err("a worker thread panicked".to_string()))
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn seconds(start: Option<Instant>, end: Option<Instant>) -> f64 {
    match (start, end) {
        (Some(s), Some(e)) => e.saturating_duration_since(s).as_secs_f64().max(1e-9),
        _ => 1e-9,
    }
}
