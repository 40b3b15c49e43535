//! Memory that comes back: bursts of long-poll Fetch connections raise the broker's RSS,
//! and once they have closed it falls back to where it started, cycle after cycle.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use common::{create_topic, name, BrokerProcess};
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseHeader};
use gregor_protocol::kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: usize = 10_000;
const CYCLES: usize = 5;
const FETCH_VERSION: i16 = 4;
const MAX_WAIT_MS: i32 = 300;
/// How far above its starting RSS the broker may stay once a burst has closed.
const SETTLED_SLACK_KIB: u64 = 8 * 1024;
/// How long it gets to give the memory back.
const SETTLE_WITHIN: Duration = Duration::from_secs(5);

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("broker status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field in /proc status")
}

fn raise_own_open_file_limit(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by reference.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= want,
            "the test needs an open-file hard limit of {want}, the machine gives {}",
            limit.rlim_max
        );
        limit.rlim_cur = limit.rlim_cur.max(want);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// One connection: a Fetch at the end of an empty partition, which waits `MAX_WAIT_MS`
/// and answers with no records and a high watermark of 0.
async fn long_poll(mut s: tokio::net::TcpStream, frame: Bytes, correlation_id: i32) {
    s.write_all(&frame).await.expect("send");
    let size = s.read_i32().await.expect("response size");
    let mut body = vec![0u8; usize::try_from(size).expect("size")];
    s.read_exact(&mut body).await.expect("response");
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, 0).expect("header");
    assert_eq!(header.correlation_id, correlation_id);
    let resp = FetchResponse::decode(&mut body, FETCH_VERSION).expect("fetch response");
    assert_eq!(body.remaining(), 0);
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

#[test]
fn rss_after_bursts_of_long_poll_connections_comes_back() {
    raise_own_open_file_limit(CONNECTIONS as u64 + 1024);
    let broker = BrokerProcess::start(&[]);
    let pid = broker.pid();
    let mut c = broker.client();
    create_topic(&mut c, "lp", &[]);
    let req = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(1024 * 1024)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("lp"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1024 * 1024)])]);
    let frame = c.encode_request(FETCH_VERSION, &req).freeze();
    // The same frame on every connection: encode_request numbered it after create_topic's.
    let correlation_id = 2;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    std::thread::sleep(Duration::from_millis(500));
    let start_kib = status_kib(pid, "VmRSS:");
    let mut after = Vec::new();
    for cycle in 1..=CYCLES {
        // Sample the RSS while the burst is open, to prove it really held memory.
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let began = Instant::now();
        runtime.block_on(async {
            let connecting = Arc::new(tokio::sync::Semaphore::new(500));
            let mut polls = tokio::task::JoinSet::new();
            for _ in 0..CONNECTIONS {
                let (frame, connecting) = (frame.clone(), connecting.clone());
                let port = broker.port;
                polls.spawn(async move {
                    // At most 500 handshakes at once, as the listen backlog can take.
                    let permit = connecting.acquire_owned().await.expect("semaphore");
                    let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .expect("connect");
                    drop(permit);
                    long_poll(s, frame, correlation_id).await
                });
            }
            while let Some(r) = polls.join_next().await {
                r.expect("a long poll failed");
            }
        });
        done.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        let burst_kib = peak.load(Ordering::Relaxed);
        let deadline = Instant::now() + SETTLE_WITHIN;
        let settled_kib = loop {
            let now = status_kib(pid, "VmRSS:");
            if now <= start_kib + SETTLED_SLACK_KIB || Instant::now() > deadline {
                break now;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        eprintln!(
            "cycle {cycle}: {CONNECTIONS} long polls in {:.1} s, RSS {start_kib} KiB at start, \
             {burst_kib} KiB during, {settled_kib} KiB after",
            began.elapsed().as_secs_f64()
        );
        after.push(settled_kib);
        if cycle == 1 {
            assert!(
                burst_kib >= start_kib + 2 * SETTLED_SLACK_KIB,
                "the burst never raised RSS above {burst_kib} KiB (start {start_kib} KiB): \
                 the test would prove nothing"
            );
        }
    }
    for (cycle, kib) in after.iter().enumerate() {
        assert!(
            *kib <= start_kib + SETTLED_SLACK_KIB,
            "after cycle {}, RSS stayed at {kib} KiB, started at {start_kib} KiB",
            cycle + 1
        );
    }
    // The broker still serves, and nothing was written by the polls.
    let md = c.call(
        1,
        &gregor_protocol::kafka_protocol::messages::MetadataRequest::default().with_topics(None),
    );
    assert!(md.topics.iter().any(|t| t.name == Some(name("lp"))));
}
