//! ACLs on a standalone broker (the embedded store): CreateAcls, DescribeAcls and DeleteAcls
//! by a super user, what a SASL user sees and may do with and without them, that they
//! survive a restart, and SECURITY_DISABLED without an authorizer. The ZooKeeper side and
//! the real clients are in compat-tests/acl_test.py.

mod common;

use bytes::Bytes;
use common::{create_topic, free_port, produce, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::create_acls_request::AclCreation;
use gregor_protocol::kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use gregor_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::StrBytes;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_REQUEST: i16 = 42;
const SECURITY_DISABLED: i16 = 54;
// Codes of the ACL model.
const TOPIC: i8 = 2;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const ALLOW: i8 = 3;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A broker with a PLAINTEXT listener (User:ANONYMOUS, a super user: the admin) and a
/// SASL_PLAINTEXT one where alice logs in with PLAIN.
fn secured_broker(dir: Option<&std::path::Path>, ports: (u16, u16)) -> BrokerProcess {
    let (plain, sasl) = ports;
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
    let settings = [
        listeners.as_str(),
        "sasl.enabled.mechanisms=PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";",
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "super.users=User:ANONYMOUS",
    ];
    match dir {
        Some(d) => BrokerProcess::start_in(d, &settings),
        None => BrokerProcess::start_on_port(plain, &settings),
    }
}

/// A connection authenticated as alice (SaslHandshake v1, SaslAuthenticate v2, PLAIN).
fn alice(port: u16) -> Client {
    let mut c = Client::connect(port);
    let hs: SaslHandshakeResponse = c.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
    );
    assert_eq!(hs.error_code, 0);
    let auth: SaslAuthenticateResponse = c.call(
        2,
        &SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from_static(b"\0alice\0alice-secret")),
    );
    assert_eq!(auth.error_code, 0, "{:?}", auth.error_message);
    c
}

fn acl(resource_type: i8, name: &str, pattern: i8, principal: &str, operation: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(ALLOW)
}

fn describe_all(c: &mut Client) -> DescribeAclsResponse {
    c.call(
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(ANY)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_pattern_type_filter(ANY)
            .with_operation(ANY)
            .with_permission_type(ANY),
    )
}

/// (type, name, pattern, principal, operation) of every ACL, sorted.
fn bindings(resp: &DescribeAclsResponse) -> Vec<(i8, String, i8, String, i8)> {
    let mut out: Vec<_> = resp
        .resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().map(move |a| {
                (
                    r.resource_type,
                    r.resource_name.to_string(),
                    r.pattern_type,
                    a.principal.to_string(),
                    a.operation,
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// Topic name -> error code in a Metadata answer (all topics when `topic` is None).
fn metadata(c: &mut Client, topic: Option<&str>) -> Vec<(String, i16)> {
    let req = MetadataRequest::default().with_topics(
        topic.map(|t| vec![MetadataRequestTopic::default().with_name(Some(TopicName(s(t))))]),
    );
    let resp: MetadataResponse = c.call(9, &req);
    resp.topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
            )
        })
        .collect()
}

#[test]
fn without_an_authorizer_acl_requests_are_security_disabled() {
    let b = BrokerProcess::start(&[]);
    let mut c = b.client();
    let resp = describe_all(&mut c);
    assert_eq!(resp.error_code, SECURITY_DISABLED);
    let created: CreateAclsResponse = c.call(
        3,
        &CreateAclsRequest::default()
            .with_creations(vec![acl(TOPIC, "t", LITERAL, "User:a", READ)]),
    );
    assert_eq!(created.results[0].error_code, SECURITY_DISABLED);
    // Everything is allowed: a topic is created and produced to by anyone.
    create_topic(&mut c, "open", &[]);
    assert_eq!(produce(&mut c, "open", &[("k", "v")]).0, 0);
}

#[test]
fn acls_decide_what_a_user_sees_and_does_and_survive_a_restart() {
    let ports = (free_port(), free_port());
    let mut b = secured_broker(None, ports);
    let mut admin = b.client();
    create_topic(&mut admin, "t", &[]);
    create_topic(&mut admin, "pre-1", &[]);
    assert_eq!(produce(&mut admin, "t", &[("k", "v")]).0, 0);

    // No ACLs: alice sees nothing; asking by name is TOPIC_AUTHORIZATION_FAILED.
    let mut a = alice(ports.1);
    assert_eq!(metadata(&mut a, None), vec![]);
    assert_eq!(
        metadata(&mut a, Some("t")),
        vec![("t".to_string(), TOPIC_AUTHORIZATION_FAILED)]
    );
    // She may not create ACLs either.
    let refused: CreateAclsResponse = a.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![acl(
            TOPIC,
            "t",
            LITERAL,
            "User:alice",
            READ,
        )]),
    );
    assert_eq!(refused.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(
        describe_all(&mut a).error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    // Nor finalize features (UpdateFeatures needs ALTER on the cluster); the super user may.
    let downgrade = UpdateFeaturesRequest::default()
        .with_timeout_ms(5000)
        .with_validate_only(true)
        .with_feature_updates(vec![update_features_request::FeatureUpdateKey::default()
            .with_feature(s("transaction.version"))
            .with_max_version_level(1)
            .with_upgrade_type(2)]);
    let refused: UpdateFeaturesResponse = a.call(1, &downgrade);
    assert_eq!(
        (refused.error_code, refused.results[0].error_code),
        (CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED)
    );
    let validated: UpdateFeaturesResponse = admin.call(1, &downgrade);
    assert_eq!(
        (validated.error_code, validated.results[0].error_code),
        (0, 0)
    );

    // The admin grants READ on t and DESCRIBE on every topic starting with "pre-"; a
    // CLUSTER ACL under another name than kafka-cluster is refused on its own.
    let created: CreateAclsResponse = admin.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![
            acl(TOPIC, "t", LITERAL, "User:alice", READ),
            acl(TOPIC, "pre-", PREFIXED, "User:alice", DESCRIBE),
            acl(CLUSTER, "my-cluster", LITERAL, "User:alice", DESCRIBE),
        ]),
    );
    let codes: Vec<i16> = created.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 0, INVALID_REQUEST]);
    let want = vec![
        (
            TOPIC,
            "pre-".to_string(),
            PREFIXED,
            "User:alice".to_string(),
            DESCRIBE,
        ),
        (
            TOPIC,
            "t".to_string(),
            LITERAL,
            "User:alice".to_string(),
            READ,
        ),
    ];
    assert_eq!(bindings(&describe_all(&mut admin)), want);

    // READ implies DESCRIBE; the prefix covers pre-1.
    let mut seen = metadata(&mut a, None);
    seen.sort();
    assert_eq!(seen, vec![("pre-1".to_string(), 0), ("t".to_string(), 0)]);
    // READ is not WRITE.
    assert_eq!(
        produce(&mut a, "t", &[("k", "v")]).0,
        TOPIC_AUTHORIZATION_FAILED
    );

    // The ACLs are kept in the embedded store.
    b.stop();
    b.restart();
    let mut admin = b.client();
    assert_eq!(bindings(&describe_all(&mut admin)), want);
    let mut a = alice(ports.1);
    assert_eq!(metadata(&mut a, Some("t")), vec![("t".to_string(), 0)]);

    // DeleteAcls with a filter on alice and ANY else removes both and answers them.
    let deleted: DeleteAclsResponse = admin.call(
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(ANY)
            .with_resource_name_filter(None)
            .with_host_filter(None)
            .with_pattern_type_filter(ANY)
            .with_principal_filter(Some(s("User:alice")))
            .with_operation(ANY)
            .with_permission_type(ANY)]),
    );
    assert_eq!(deleted.filter_results[0].error_code, 0);
    let mut removed: Vec<(String, i8)> = deleted.filter_results[0]
        .matching_acls
        .iter()
        .map(|m| (m.resource_name.to_string(), m.operation))
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        vec![("pre-".to_string(), DESCRIBE), ("t".to_string(), READ)]
    );
    assert_eq!(bindings(&describe_all(&mut admin)), vec![]);
    assert_eq!(metadata(&mut a, None), vec![]);
    // A WRITE ACL now lets her produce (and describe) t.
    let created: CreateAclsResponse = admin.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![acl(
            TOPIC,
            "t",
            LITERAL,
            "User:alice",
            WRITE,
        )]),
    );
    assert_eq!(created.results[0].error_code, 0);
    assert_eq!(produce(&mut a, "t", &[("k2", "v2")]), (0, 1));
}

#[test]
fn transaction_apis_answer_only_what_a_user_may_describe() {
    use gregor_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction;
    use gregor_protocol::kafka_protocol::messages::describe_producers_request::TopicRequest;
    const TRANSACTIONAL_ID: i8 = 5;
    const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    let ports = (free_port(), free_port());
    let b = secured_broker(None, ports);
    let mut admin = b.client();
    create_topic(&mut admin, "t", &[]);
    // Two transactional ids, set up by the admin (a super user).
    for id in ["ta", "tb"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let _: FindCoordinatorResponse = admin.call(
                4,
                &FindCoordinatorRequest::default()
                    .with_key_type(1)
                    .with_coordinator_keys(vec![s(id)]),
            );
            let r: InitProducerIdResponse = admin.call(
                4,
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(s(id))))
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id((-1).into())
                    .with_producer_epoch(-1),
            );
            if r.error_code == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "InitProducerId {}",
                r.error_code
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let created: CreateAclsResponse = admin.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![acl(
            TRANSACTIONAL_ID,
            "ta",
            LITERAL,
            "User:alice",
            DESCRIBE,
        )]),
    );
    assert_eq!(created.results[0].error_code, 0);

    let mut a = alice(ports.1);
    // ListTransactions: only the id she may describe; the admin sees both.
    let listed = |c: &mut Client| -> Vec<String> {
        let r: ListTransactionsResponse = c.call(1, &ListTransactionsRequest::default());
        assert_eq!(r.error_code, 0);
        r.transaction_states
            .iter()
            .map(|t| t.transactional_id.to_string())
            .collect()
    };
    assert_eq!(listed(&mut a), vec!["ta"]);
    assert_eq!(listed(&mut admin), vec!["ta", "tb"]);
    // DescribeTransactions: ta described (Empty, just initialised), tb refused.
    let described: DescribeTransactionsResponse = a.call(
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s("ta")), TransactionalId(s("tb"))]),
    );
    let states: Vec<(String, i16, String)> = described
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.to_string(),
                t.error_code,
                t.transaction_state.to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("ta".to_string(), 0, "Empty".to_string()),
            (
                "tb".to_string(),
                TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                String::new()
            )
        ]
    );
    // DescribeProducers needs READ on the topic.
    let producers: DescribeProducersResponse = a.call(
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0])]),
    );
    assert_eq!(
        producers.topics[0].partitions[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    // The brokers' form of AddPartitionsToTxn needs CLUSTER_ACTION.
    let verify: AddPartitionsToTxnResponse = a.call(
        4,
        &AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(s("ta")))
                .with_producer_id(0.into())
                .with_producer_epoch(0)
                .with_verify_only(true),
        ]),
    );
    assert_eq!(verify.error_code, CLUSTER_AUTHORIZATION_FAILED);
}
