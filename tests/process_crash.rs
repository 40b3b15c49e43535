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

use bytes::Bytes;
use common::{batch, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::records::RecordBatchDecoder;

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("durable"))
}

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
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(
                        &[(key.as_str(), "value-bytes-0123456789")],
                        None,
                        n,
                    )))])]);
        let frame = c.encode_request(9, &req);
        if std::io::Write::write_all(&mut c.stream, &frame).is_err() {
            return;
        }
        let Some(mut resp) = c.read_frame() else {
            return;
        };
        use gregor_protocol::kafka_protocol::protocol::Decodable;
        if ResponseHeader::decode(&mut resp, 1).is_err() {
            return;
        }
        let Ok(r) = ProduceResponse::decode(&mut resp, 9) else {
            return;
        };
        let p = &r.responses[0].partition_responses[0];
        if p.error_code == 0 {
            acked.lock().unwrap().push((key, p.base_offset));
        }
        n += 1;
    }
}

fn read_all(c: &mut Client) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let req = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_max_bytes(50 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![FetchPartition::default()
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(10 << 20)])]);
        let resp = c.call(12, &req);
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let mut bytes: Bytes = p.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return out;
        }
        for set in RecordBatchDecoder::decode_all(&mut bytes).expect("only whole, valid batches") {
            for r in set.records {
                out.push((
                    r.offset,
                    String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                ));
                offset = r.offset + 1;
            }
        }
    }
}

#[test]
fn kill_9_under_acks_all_load_loses_no_acknowledged_message() {
    let mut broker = BrokerProcess::start(&["log.flush.interval.messages=1"]);
    let mut c = broker.client();
    let created = c.call(
        7,
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(topic())
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
    let found = read_all(&mut c);
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
