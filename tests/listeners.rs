//! Several listeners on one broker: each client is told the brokers' addresses on the
//! listener it came in on (Metadata, FindCoordinator, DescribeCluster), SASL requests on a
//! listener without SASL are answered ILLEGAL_SASL_STATE, and SCRAM credentials and client
//! quotas written through one request are described back (the embedded store).

mod common;

use common::{create_topic, free_port, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::alter_client_quotas_request::{
    EntityData as AlterEntity, EntryData as AlterEntry, OpData,
};
use gregor_protocol::kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use gregor_protocol::kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use gregor_protocol::kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use gregor_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::StrBytes;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn metadata(c: &mut Client, topic: &str) -> MetadataResponse {
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(s(topic))))
    ]));
    c.call(12, &req)
}

#[test]
fn each_listener_advertises_its_own_addresses() {
    let (internal, external) = (free_port(), free_port());
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}");
    // EXTERNAL is advertised under another name, as behind a NAT or in a container.
    let advertised = format!(
        "advertised.listeners=PLAINTEXT://127.0.0.1:{internal},EXTERNAL://localhost:{external}"
    );
    let b = BrokerProcess::start_on_port(
        internal,
        &[
            &listeners,
            &advertised,
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
        ],
    );
    let mut inside = b.client();
    let mut outside = Client::connect(external);
    create_topic(&mut inside, "where", &[]);

    let md = metadata(&mut inside, "where");
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(
        (md.brokers[0].host.as_str(), md.brokers[0].port),
        ("127.0.0.1", internal as i32)
    );
    let md = metadata(&mut outside, "where");
    assert_eq!(
        (md.brokers[0].host.as_str(), md.brokers[0].port),
        ("localhost", external as i32)
    );
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions[0].leader_id.0, 0);

    let find = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![s("g1")]);
    let found: FindCoordinatorResponse = outside.call(4, &find);
    assert_eq!(
        found.coordinators[0].error_code, 0,
        "{:?}",
        found.coordinators[0]
    );
    assert_eq!(
        (
            found.coordinators[0].host.as_str(),
            found.coordinators[0].port
        ),
        ("localhost", external as i32)
    );
    let found: FindCoordinatorResponse = inside.call(4, &find);
    assert_eq!(found.coordinators[0].port, internal as i32);

    let cluster: DescribeClusterResponse = outside.call(0, &DescribeClusterRequest::default());
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].port, external as i32);
}

#[test]
fn sasl_requests_without_sasl_are_an_illegal_state() {
    let b = BrokerProcess::start(&[]);
    let mut c = b.client();
    let hs: SaslHandshakeResponse = c.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
    );
    assert_eq!(hs.error_code, 34, "ILLEGAL_SASL_STATE");
    let auth: SaslAuthenticateResponse = c.call(
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from_static(b"\0a\0b")),
    );
    assert_eq!(auth.error_code, 34);
    // The connection still serves.
    let md: MetadataResponse = c.call(12, &MetadataRequest::default().with_topics(Some(vec![])));
    assert_eq!(md.brokers.len(), 1);
}

#[test]
fn scram_credentials_and_client_quotas_are_stored_and_described() {
    let b = BrokerProcess::start(&[]);
    let mut c = b.client();
    let upsert = |user: &str, mechanism: i8, iterations: i32| {
        ScramCredentialUpsertion::default()
            .with_name(s(user))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(bytes::Bytes::from_static(b"0123456789abcdef"))
            .with_salted_password(bytes::Bytes::from(vec![7u8; 32]))
    };
    let altered: AlterUserScramCredentialsResponse = c.call(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            upsert("alice", 2, 4096),
            upsert("alice", 1, 8192),
            upsert("bob", 2, 100),
            upsert("carol", 9, 4096),
        ]),
    );
    let codes: Vec<(String, i16)> = altered
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    // bob: too few iterations (UNACCEPTABLE_CREDENTIAL); carol: no such mechanism.
    assert_eq!(
        codes,
        vec![
            ("alice".into(), 0),
            ("bob".into(), 93),
            ("carol".into(), 33)
        ]
    );
    let described: DescribeUserScramCredentialsResponse = c.call(
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
            UserName::default().with_name(s("alice")),
            UserName::default().with_name(s("bob")),
        ])),
    );
    assert_eq!(described.results.len(), 2);
    let alice = &described.results[0];
    assert_eq!((alice.user.as_str(), alice.error_code), ("alice", 0));
    let infos: Vec<(i8, i32)> = alice
        .credential_infos
        .iter()
        .map(|i| (i.mechanism, i.iterations))
        .collect();
    assert_eq!(infos, vec![(1, 8192), (2, 4096)]);
    assert_eq!(
        described.results[1].error_code, 91,
        "RESOURCE_NOT_FOUND for bob"
    );

    // A quota on alice lives beside her credentials; DescribeClientQuotas shows only quotas.
    let entity = |t: &str, n: Option<&str>| {
        AlterEntity::default()
            .with_entity_type(s(t))
            .with_entity_name(n.map(s))
    };
    let op = |k: &str, v: f64| OpData::default().with_key(s(k)).with_value(v);
    let set: AlterClientQuotasResponse = c.call(
        1,
        &AlterClientQuotasRequest::default().with_entries(vec![
            AlterEntry::default()
                .with_entity(vec![entity("user", Some("alice"))])
                .with_ops(vec![op("producer_byte_rate", 1048576.0)]),
            AlterEntry::default()
                .with_entity(vec![entity("client-id", None)])
                .with_ops(vec![op("request_percentage", 12.5)]),
            AlterEntry::default()
                .with_entity(vec![entity("client-id", Some("c1"))])
                .with_ops(vec![op("producer_byte_rate", 1.5)]),
        ]),
    );
    let codes: Vec<i16> = set.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(
        codes,
        vec![0, 0, 42],
        "a fractional byte rate is INVALID_REQUEST"
    );
    let all: DescribeClientQuotasResponse = c.call(1, &DescribeClientQuotasRequest::default());
    let mut seen: Vec<(String, Option<String>, String, f64)> = all
        .entries
        .unwrap_or_default()
        .iter()
        .flat_map(|e| {
            e.values.iter().map(move |v| {
                (
                    e.entity[0].entity_type.to_string(),
                    e.entity[0].entity_name.as_ref().map(|n| n.to_string()),
                    v.key.to_string(),
                    v.value,
                )
            })
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("client-id".into(), None, "request_percentage".into(), 12.5),
            (
                "user".into(),
                Some("alice".into()),
                "producer_byte_rate".into(),
                1048576.0
            ),
        ]
    );
    let exact: DescribeClientQuotasResponse = c.call(
        1,
        &DescribeClientQuotasRequest::default()
            .with_components(vec![ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(0)
                .with_match(Some(s("alice")))])
            .with_strict(true),
    );
    assert_eq!(exact.entries.unwrap_or_default().len(), 1);
    // The quota did not disturb the credentials.
    let described: DescribeUserScramCredentialsResponse =
        c.call(0, &DescribeUserScramCredentialsRequest::default());
    assert_eq!(described.results.len(), 1);
    assert_eq!(described.results[0].credential_infos.len(), 2);
}

#[test]
fn a_request_percentage_quota_throttles_and_mutes() {
    use std::time::{Duration, Instant};
    let b = BrokerProcess::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "rq", &[]);
    for _ in 0..50 {
        assert_eq!(metadata(&mut c, "rq").throttle_time_ms, 0, "no quota yet");
    }
    // 0.01% of a thread (0.1 ms of handling each second) for the test client's id.
    let quota = |c: &mut Client, remove: bool| {
        let set: AlterClientQuotasResponse = c.call(
            1,
            &AlterClientQuotasRequest::default().with_entries(vec![AlterEntry::default()
                .with_entity(vec![AlterEntity::default()
                    .with_entity_type(s("client-id"))
                    .with_entity_name(Some(s("gregor-test")))])
                .with_ops(vec![OpData::default()
                    .with_key(s("request_percentage"))
                    .with_value(0.01)
                    .with_remove(remove)])]),
        );
        assert_eq!(set.entries[0].error_code, 0);
    };
    quota(&mut c, false);
    // Quotas apply within a second; a few Metadata requests then outrun 0.1 ms a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let told = loop {
        let ms = metadata(&mut c, "rq").throttle_time_ms;
        if ms > 0 {
            break ms;
        }
        assert!(Instant::now() < deadline, "never throttled");
    };
    // The broker holds the connection for that long: the next answer comes no sooner.
    let sent = Instant::now();
    let next = metadata(&mut c, "rq");
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(told as u64 * 8 / 10),
        "told to wait {told} ms, answered after {waited:?}"
    );
    assert!(next.throttle_time_ms >= 0);
    // Without the quota the client runs free again.
    quota(&mut c, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metadata(&mut c, "rq").throttle_time_ms > 0 {
        assert!(
            Instant::now() < deadline,
            "still throttled after the quota went"
        );
    }
    for _ in 0..50 {
        assert_eq!(metadata(&mut c, "rq").throttle_time_ms, 0, "quota removed");
    }
}
