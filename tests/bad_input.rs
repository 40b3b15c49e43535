//! Bad input on raw sockets: each malformed request gets Kafka's answer or a closed
//! connection, the broker's memory does not jump, and a normal client works right after.

mod common;

use common::{BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

/// A well-behaved client still gets served.
fn assert_broker_healthy(broker: &BrokerProcess) {
    let mut c = broker.client();
    let resp = c.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    );
    assert_eq!(resp.error_code, 0);
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == 1 && k.max_version >= 12));
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(md.brokers[0].port, i32::from(broker.port));
}

fn closed_after(broker: &BrokerProcess, bytes: &[u8]) -> bool {
    let mut c = broker.client();
    c.send_raw(bytes);
    c.is_closed_by_broker()
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let broker = BrokerProcess::start(&[]);
    // Keep one healthy connection open across all the abuse.
    let mut bystander = broker.client();
    let rss_before = broker.rss_kib();

    // An HTTP request: "GET " read as a size is ~1.1 GiB, over socket.request.max.bytes.
    assert!(closed_after(&broker, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    // A negative size.
    assert!(closed_after(&broker, &(-7i32).to_be_bytes()));
    // A 2 GiB size claim.
    assert!(closed_after(&broker, &i32::MAX.to_be_bytes()));
    // Pure garbage after a plausible size.
    let mut garbage = 12i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0xca, 0xfe, 0, 1, 2, 3]);
    assert!(closed_after(&broker, &garbage));
    // A frame too short to hold a request header.
    assert!(closed_after(&broker, &[0, 0, 0, 3, 0, 18, 0]));

    let rss_after = broker.rss_kib();
    assert!(
        rss_after < rss_before + 20 * 1024,
        "RSS jumped from {rss_before} KiB to {rss_after} KiB"
    );
    let md = bystander.call(1, &MetadataRequest::default().with_topics(None));
    assert_eq!(md.brokers.len(), 1);
    assert_broker_healthy(&broker);
}

#[test]
fn a_stalled_large_frame_does_not_reserve_its_claimed_size() {
    let broker = BrokerProcess::start(&[]);
    let rss_before = broker.rss_kib();
    // Claim 99 MiB (under the limit), send a little, then stall, on several connections.
    let mut stalled: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = broker.client();
            let mut frame = (99i32 * 1024 * 1024).to_be_bytes().to_vec();
            frame.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1]);
            frame.extend_from_slice(&[b'x'; 1000]);
            c.send_raw(&frame);
            c
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let rss_after = broker.rss_kib();
    assert!(
        rss_after < rss_before + 30 * 1024,
        "RSS jumped from {rss_before} KiB to {rss_after} KiB for 4 stalled 99 MiB frames"
    );
    assert_broker_healthy(&broker);
    // A truncated frame: the client goes away mid-frame.
    drop(stalled.pop());
    assert_broker_healthy(&broker);
}

#[test]
fn unknown_api_key_and_unsupported_versions() {
    let broker = BrokerProcess::start(&[]);
    // Unknown API key 9999 with a valid-looking header: the connection is closed.
    let mut frame = 10i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(closed_after(&broker, &frame));
    // A key that Kafka defines but gregor does not serve (SaslHandshake, 17): closed.
    let mut frame = 10i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 17, 0, 1, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(closed_after(&broker, &frame));
    // Metadata v99: closed.
    let mut frame = 10i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(closed_after(&broker, &frame));
    // Produce v2 is advertised (min 0, for librdkafka) but not served: closed.
    let mut c = broker.client();
    let mut produce = c.encode_request(
        3,
        &gregor_protocol::kafka_protocol::messages::ProduceRequest::default().with_acks(1),
    );
    produce[4 + 3] = 2;
    c.send_raw(&produce);
    assert!(c.is_closed_by_broker());

    // ApiVersions v99: answered with UNSUPPORTED_VERSION and the v0 body, then usable.
    let mut c = broker.client();
    let mut frame = 12i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 18, 0, 99, 0, 0, 0, 77, 0, 0, 0, 0]);
    c.send_raw(&frame);
    let resp = c.read_frame().expect("an answer");
    assert_eq!(
        &resp[0..4],
        &77i32.to_be_bytes(),
        "correlation id, header v0"
    );
    assert_eq!(&resp[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    let count = i32::from_be_bytes(resp[6..10].try_into().unwrap());
    assert!(count >= 10, "v0 body lists our APIs");
    let first = &resp[10..16];
    let (key, min, max) = (
        i16::from_be_bytes([first[0], first[1]]),
        i16::from_be_bytes([first[2], first[3]]),
        i16::from_be_bytes([first[4], first[5]]),
    );
    assert_eq!((key, min, max), (0, 0, 12), "Produce advertised 0..=12");
    assert_eq!(
        resp.len(),
        6 + 4 + count as usize * 6,
        "exactly the v0 layout"
    );
    let ok = c.call(2, &ApiVersionsRequest::default());
    assert_eq!(ok.error_code, 0);
    assert_broker_healthy(&broker);
}

#[test]
fn truncated_body_closes_the_connection() {
    let broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    let req = MetadataRequest::default().with_topics(Some(vec![
        gregor_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(gregor_protocol::kafka_protocol::messages::TopicName(
            StrBytes::from_static_str("some-topic"),
        ))),
    ]));
    let mut frame = c.encode_request(9, &req);
    // Cut the body short but keep the size prefix consistent with what we send.
    let cut = frame.len() - 6;
    frame.truncate(cut);
    let size = (cut - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    c.send_raw(&frame);
    assert!(c.is_closed_by_broker());
    assert_broker_healthy(&broker);
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let broker = BrokerProcess::start(&["connections.max.idle.ms=300"]);
    let mut idle = broker.client();
    let mut busy = broker.client();
    let start = std::time::Instant::now();
    // The busy one keeps talking past the idle limit and stays open.
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(busy.call(2, &ApiVersionsRequest::default()).error_code, 0);
    }
    assert!(idle.is_closed_by_broker());
    let waited = start.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(290),
        "closed too early: {waited:?}"
    );
    assert_broker_healthy(&broker);
}
