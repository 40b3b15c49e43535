//! A process crash under load: every acknowledged message is there after the broker process
//! is killed (-9) mid-load and restarted, at the offset it was acknowledged with, and nothing
//! torn is served. What this proves is recovery and offset assignment across a crash of the
//! process: the killed process's writes stay in the page cache, so it passes with or without
//! the fsync that `log.flush.interval.messages=1` asks for. The power-loss test
//! (`tests/power_loss/`, on a filesystem that forgets unsynced writes) proves the fsync.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{name, read_keyed, try_produce, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::kafka_protocol::messages::*;

const TOPIC: &str = "durable";

/// Produces one-record batches with key "p<producer>-<n>" until told to stop or the
/// connection dies; returns (key, acknowledged offset) of every acknowledged batch.
fn producer_loop(
    port: u16,
    id: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, i64)>>>,
) {
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    drop(stream);
    let mut c = Client::connect(port);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("p{id}-{n}");
        let records = [(key.as_str(), "value-bytes-0123456789")];
        let Some((code, offset)) = try_produce(&mut c, TOPIC, &records, n) else {
            return;
        };
        if code == 0 {
            acked.lock().unwrap().push((key, offset));
        }
        n += 1;
    }
}

#[test]
fn kill_9_under_acks_all_load_loses_no_acknowledged_message() {
    let mut broker = BrokerProcess::start(&["log.flush.interval.messages=1"]);
    let mut c = broker.client();
    let created = c.call(
        7,
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(name(TOPIC))
            .with_num_partitions(1)
            .with_replication_factor(1)]),
    );
    assert_eq!(created.topics[0].error_code, 0);

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let producers: Vec<_> = (0..3)
        .map(|id| {
            let (stop, acked, port) = (stop.clone(), acked.clone(), broker.port);
            std::thread::spawn(move || producer_loop(port, id, stop, acked))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    broker.kill9();
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the load ran: only {} acknowledged",
        acked.len()
    );

    broker.restart();
    let mut c = broker.client();
    let found = read_keyed(&mut c, TOPIC);
    let lost: Vec<_> = acked
        .iter()
        .filter(|(key, offset)| !found.iter().any(|(o, k)| o == offset && k == key))
        .collect();
    println!(
        "acknowledged {}, found {} after kill -9 and restart, lost {}",
        acked.len(),
        found.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "lost acknowledged messages: {:?}",
        &lost[..lost.len().min(10)]
    );
    let offsets: Vec<i64> = found.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets,
        (0..found.len() as i64).collect::<Vec<_>>(),
        "dense offsets"
    );
}
