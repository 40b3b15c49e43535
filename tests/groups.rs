//! Consumer groups over a raw socket, checked field by field: FindCoordinator creating
//! `__consumer_offsets`, the JoinGroup / SyncGroup / Heartbeat protocol with Kafka's error
//! codes, rebalances when members join, expire and leave, static membership, committed
//! offsets, DescribeGroups / ListGroups / DeleteGroups / OffsetDelete, and everything
//! surviving a broker restart. Real clients are exercised in compat-tests/.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use gregor_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use gregor_protocol::kafka_protocol::messages::leave_group_request::MemberIdentity;
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::StrBytes;

// Kafka's error codes used below.
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC: i16 = 17;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn create_topic(c: &mut Client, topic: &str, partitions: i32) {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(s(topic)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    assert_eq!(c.call(7, &req).topics[0].error_code, NONE);
}

/// A consumer-protocol subscription (ConsumerProtocolSubscription v0) to `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

fn join_req(
    group: &str,
    member: &str,
    instance: Option<&str>,
    session_ms: i32,
    protocols: &[(&str, Bytes)],
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(
            protocols
                .iter()
                .map(|(n, m)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(n))
                        .with_metadata(m.clone())
                })
                .collect(),
        )
}

/// Joins as a new dynamic member (v5: MEMBER_ID_REQUIRED first), blocking until the join
/// phase ends.
fn join_new(c: &mut Client, group: &str, session_ms: i32, meta: &Bytes) -> JoinGroupResponse {
    let first = c.call(
        5,
        &join_req(group, "", None, session_ms, &[("range", meta.clone())]),
    );
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    assert!(
        first.member_id.starts_with("gregor-test-"),
        "member id {:?} is client id + uuid",
        first.member_id
    );
    c.call(
        5,
        &join_req(
            group,
            &first.member_id,
            None,
            session_ms,
            &[("range", meta.clone())],
        ),
    )
}

fn sync(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse {
    c.call(
        5,
        &SyncGroupRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::copy_from_slice(a))
                    })
                    .collect(),
            ),
    )
}

fn heartbeat(c: &mut Client, group: &str, generation: i32, member: &str) -> i16 {
    c.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(s(member)),
    )
    .error_code
}

fn commit(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> Vec<i16> {
    let resp = c.call(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                                .with_committed_leader_epoch(0)
                                .with_committed_metadata(Some(s(&format!("meta-{p}"))))
                        })
                        .collect(),
                )]),
    );
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// Committed (offset, metadata) per requested partition, through OffsetFetch v7.
fn fetch_offsets(c: &mut Client, group: &str, topic: &str, parts: &[i32]) -> Vec<(i64, String)> {
    let resp = c.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(gid(group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(parts.to_vec())])),
    );
    assert_eq!(resp.error_code, NONE);
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, NONE);
            (
                p.committed_offset,
                p.metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// What every client does first: find the coordinator (this creates `__consumer_offsets`).
fn find_coordinator(c: &mut Client, group: &str) {
    let resp = c.call(3, &FindCoordinatorRequest::default().with_key(s(group)));
    assert_eq!((resp.error_code, resp.node_id.0), (NONE, 0));
}

fn describe(c: &mut Client, group: &str) -> describe_groups_response::DescribedGroup {
    let resp = c.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![gid(group)]),
    );
    resp.groups.into_iter().next().expect("one group")
}

fn list_groups(c: &mut Client, states: &[&str]) -> Vec<(String, String)> {
    let resp = c.call(
        4,
        &ListGroupsRequest::default().with_states_filter(states.iter().map(|v| s(v)).collect()),
    );
    assert_eq!(resp.error_code, NONE);
    let mut out: Vec<(String, String)> = resp
        .groups
        .iter()
        .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn find_coordinator_creates_the_compacted_offsets_topic() {
    let broker = BrokerProcess::start(&["offsets.topic.num.partitions=7"]);
    let mut c = broker.client();
    for version in [0, 1, 2, 3] {
        let resp = c.call(
            version,
            &FindCoordinatorRequest::default().with_key(s("some-group")),
        );
        assert_eq!(
            (
                resp.error_code,
                resp.node_id.0,
                resp.host.as_str(),
                resp.port
            ),
            (NONE, 0, "127.0.0.1", broker.port as i32),
            "v{version}"
        );
    }
    let resp = c.call(
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2")]),
    );
    let found: Vec<(&str, i16, i32)> = resp
        .coordinators
        .iter()
        .map(|c| (c.key.as_str(), c.error_code, c.node_id.0))
        .collect();
    assert_eq!(found, [("g1", NONE, 0), ("g2", NONE, 0)]);
    // A transactional id's coordinator: the leader of its `__transaction_state` partition,
    // the topic created on first use (50 partitions, compacted, internal).
    let txn = c.call(
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![s("t1")]),
    );
    assert_eq!(
        (
            txn.coordinators[0].error_code,
            txn.coordinators[0].node_id.0
        ),
        (NONE, 0)
    );
    let md = c.call(
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(s("__transaction_state"))))])),
    );
    assert_eq!(md.topics[0].partitions.len(), 50);
    assert!(md.topics[0].is_internal);
    // Other key types (share groups) are not served.
    let other = c.call(
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(2)
            .with_coordinator_keys(vec![s("s1")]),
    );
    assert_eq!(other.coordinators[0].error_code, 42, "INVALID_REQUEST");

    let md = c.call(
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(s("__consumer_offsets"))))])),
    );
    assert_eq!(md.topics[0].partitions.len(), 7);
    assert!(md.topics[0].is_internal);
    let cfg = c.call(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("__consumer_offsets"))
            .with_configuration_keys(Some(vec![s("cleanup.policy"), s("segment.bytes")]))]),
    );
    let values: Vec<(String, String)> = cfg.results[0]
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), "104857600".to_string())
        ]
    );
    // Clients may not write to it.
    let produce = c.call(
        9,
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(s("__consumer_offsets")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&[("k", "v")], None, 1)))])]),
    );
    assert_eq!(
        produce.responses[0].partition_responses[0].error_code,
        INVALID_TOPIC
    );
}

#[test]
fn one_member_joins_syncs_commits_and_everything_survives_a_restart() {
    let mut broker = BrokerProcess::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut c = broker.client();
    create_topic(&mut c, "orders", 3);
    find_coordinator(&mut c, "g");
    let meta = subscription(&["orders"]);

    // Bad joins get Kafka's errors.
    let bad = c.call(5, &join_req("g", "", None, 100, &[("range", meta.clone())]));
    assert_eq!(bad.error_code, INVALID_SESSION_TIMEOUT);
    let unknown = c.call(
        5,
        &join_req("g", "nobody", None, 10_000, &[("range", meta.clone())]),
    );
    assert_eq!(unknown.error_code, UNKNOWN_MEMBER_ID);

    let joined = join_new(&mut c, "g", 10_000, &meta);
    assert_eq!(joined.error_code, NONE);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, joined.member_id);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    let members: Vec<(&str, &Bytes)> = joined
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.metadata))
        .collect();
    assert_eq!(members, [(joined.member_id.as_str(), &meta)]);
    let me = joined.member_id.to_string();

    // A member with another protocol type cannot join this group.
    let other = c.call(
        5,
        &join_req("g", "", None, 10_000, &[("roundrobin", meta.clone())])
            .with_protocol_type(s("connect")),
    );
    assert_eq!(other.error_code, INCONSISTENT_GROUP_PROTOCOL);

    let synced = sync(&mut c, "g", 1, &me, &[(&me, b"assignment-bytes")]);
    assert_eq!(synced.error_code, NONE);
    assert_eq!(&synced.assignment[..], b"assignment-bytes");
    assert_eq!(
        sync(&mut c, "g", 2, &me, &[]).error_code,
        ILLEGAL_GENERATION
    );

    assert_eq!(heartbeat(&mut c, "g", 1, &me), NONE);
    assert_eq!(heartbeat(&mut c, "g", 7, &me), ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut c, "g", 1, "stranger"), UNKNOWN_MEMBER_ID);
    assert_eq!(
        heartbeat(&mut c, "no-such-group", 1, &me),
        UNKNOWN_MEMBER_ID
    );

    assert_eq!(
        commit(&mut c, "g", 1, &me, "orders", &[(0, 42), (2, 7), (9, 1)]),
        [NONE, NONE, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        commit(&mut c, "g", 3, &me, "orders", &[(0, 1)]),
        [ILLEGAL_GENERATION]
    );
    assert_eq!(
        fetch_offsets(&mut c, "g", "orders", &[0, 1, 2]),
        [
            (42, "meta-0".to_string()),
            (-1, String::new()),
            (7, "meta-2".to_string())
        ]
    );

    let d = describe(&mut c, "g");
    assert_eq!(
        (
            d.error_code,
            d.group_state.as_str(),
            d.protocol_type.as_str(),
            d.protocol_data.as_str()
        ),
        (NONE, "Stable", "consumer", "range")
    );
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), me);
    assert_eq!(d.members[0].client_id.as_str(), "gregor-test");
    assert_eq!(d.members[0].client_host.as_str(), "/127.0.0.1");
    assert_eq!(&d.members[0].member_assignment[..], b"assignment-bytes");
    assert_eq!(d.members[0].member_metadata, meta);
    assert_eq!(
        list_groups(&mut c, &[]),
        [("g".to_string(), "Stable".to_string())]
    );
    assert_eq!(list_groups(&mut c, &["stable"]).len(), 1);
    assert!(list_groups(&mut c, &["Empty"]).is_empty());
    // DeleteGroups refuses a group with members; unknown groups are reported.
    let del = c.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![gid("g"), gid("nope")]),
    );
    let codes: Vec<i16> = del.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND]);
    // OffsetDelete refuses partitions of a topic the group consumes.
    let od = c.call(
        0,
        &OffsetDeleteRequest::default()
            .with_group_id(gid("g"))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])]),
    );
    assert_eq!(od.error_code, NONE);
    assert_eq!(
        od.topics[0].partitions[0].error_code,
        GROUP_SUBSCRIBED_TO_TOPIC
    );

    // A graceful restart: the group comes back Stable with its member, generation and offsets.
    assert!(broker.stop());
    broker.restart();
    let mut c = broker.client();
    c.call(
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")]),
    );
    assert_eq!(heartbeat(&mut c, "g", 1, &me), NONE);
    let d = describe(&mut c, "g");
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(&d.members[0].member_assignment[..], b"assignment-bytes");
    assert_eq!(
        fetch_offsets(&mut c, "g", "orders", &[0, 2]),
        [(42, "meta-0".to_string()), (7, "meta-2".to_string())]
    );

    // Leaving empties the group; then its offsets can be deleted one by one or all at once.
    let left = c.call(
        3,
        &LeaveGroupRequest::default()
            .with_group_id(gid("g"))
            .with_members(vec![MemberIdentity::default().with_member_id(s(&me))]),
    );
    assert_eq!((left.error_code, left.members[0].error_code), (NONE, NONE));
    assert_eq!(describe(&mut c, "g").group_state.as_str(), "Empty");
    let od = c.call(
        0,
        &OffsetDeleteRequest::default()
            .with_group_id(gid("g"))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(2)
                ])]),
    );
    assert_eq!(
        (od.error_code, od.topics[0].partitions[0].error_code),
        (NONE, NONE)
    );
    assert_eq!(
        fetch_offsets(&mut c, "g", "orders", &[0, 2]),
        [(42, "meta-0".to_string()), (-1, String::new())]
    );
    let del = c.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![gid("g")]),
    );
    assert_eq!(del.results[0].error_code, NONE);
    // Before DescribeGroups v6 an unknown group is "Dead" without an error, as in Kafka.
    let gone = describe(&mut c, "g");
    assert_eq!((gone.error_code, gone.group_state.as_str()), (NONE, "Dead"));

    // kill -9: the deletion is in the log (tombstones), so the group stays gone.
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    c.call(
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")]),
    );
    assert_eq!(
        fetch_offsets(&mut c, "g", "orders", &[0]),
        [(-1, String::new())]
    );
    assert!(list_groups(&mut c, &[]).is_empty());
}

#[test]
fn simple_consumers_commit_without_a_generation_and_offsets_survive_kill9() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = broker.client();
    create_topic(&mut c, "t", 2);
    c.call(3, &FindCoordinatorRequest::default().with_key(s("simple")));
    assert_eq!(
        commit(&mut c, "simple", -1, "", "t", &[(0, 5), (1, 9)]),
        [NONE, NONE]
    );
    assert_eq!(commit(&mut c, "simple", -1, "", "t", &[(1, 10)]), [NONE]);
    // v8 batched form.
    let resp = c.call(
        8,
        &OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(gid("simple"))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0, 1])]))]),
    );
    let got: Vec<i64> = resp.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(got, [5, 10]);
    assert_eq!(
        list_groups(&mut c, &[]),
        [("simple".to_string(), "Empty".to_string())]
    );
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    c.call(3, &FindCoordinatorRequest::default().with_key(s("simple")));
    assert_eq!(
        fetch_offsets(&mut c, "simple", "t", &[0, 1]),
        [(5, "meta-0".to_string()), (10, "meta-1".to_string())]
    );
    // All of a group's offsets when no topics are named (v2+ null topics).
    let all = c.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(gid("simple"))
            .with_topics(None),
    );
    let parts: Vec<(String, i32, i64)> = all
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    assert_eq!(parts, [("t".to_string(), 0, 5), ("t".to_string(), 1, 10)]);
}

#[test]
fn rebalances_on_join_on_session_expiry_and_on_leave() {
    let broker = BrokerProcess::start(&[
        "group.initial.rebalance.delay.ms=0",
        "group.min.session.timeout.ms=500",
    ]);
    let meta = subscription(&["t"]);
    let mut a = broker.client();
    find_coordinator(&mut a, "rb");
    let ja = join_new(&mut a, "rb", 1500, &meta);
    let id_a = ja.member_id.to_string();
    assert_eq!((ja.generation_id, ja.leader.as_str()), (1, id_a.as_str()));
    assert_eq!(
        sync(&mut a, "rb", 1, &id_a, &[(&id_a, b"all")]).error_code,
        NONE
    );

    // B joins: its JoinGroup waits until A has rejoined.
    let port = broker.port;
    let meta_b = meta.clone();
    let b_thread = std::thread::spawn(move || {
        let mut b = Client::connect(port);
        let jb = join_new(&mut b, "rb", 1500, &meta_b);
        (b, jb)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hb = heartbeat(&mut a, "rb", 1, &id_a);
        if hb == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(hb, NONE);
        assert!(Instant::now() < deadline, "A never told to rebalance");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ja2 = a.call(
        5,
        &join_req("rb", &id_a, None, 1500, &[("range", meta.clone())]),
    );
    let (mut b, jb) = b_thread.join().expect("B's join");
    let id_b = jb.member_id.to_string();
    assert_eq!((ja2.error_code, jb.error_code), (NONE, NONE));
    assert_eq!((ja2.generation_id, jb.generation_id), (2, 2));
    // A stays leader and sees both members (in join order); B sees none.
    assert_eq!(
        (ja2.leader.as_str(), jb.leader.as_str()),
        (id_a.as_str(), id_a.as_str())
    );
    let ids: Vec<&str> = ja2.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, [id_a.as_str(), id_b.as_str()]);
    assert!(jb.members.is_empty());

    // B's SyncGroup waits for the leader's assignment.
    let b_sync = std::thread::spawn(move || {
        let r = sync(&mut b, "rb", 2, &id_b, &[]);
        (b, r)
    });
    std::thread::sleep(Duration::from_millis(200));
    let sa = sync(
        &mut a,
        "rb",
        2,
        &id_a,
        &[(&id_a, b"p0"), (jb.member_id.as_str(), b"p1")],
    );
    let (b, sb) = b_sync.join().expect("B's sync");
    assert_eq!(
        (&sa.assignment[..], &sb.assignment[..]),
        (&b"p0"[..], &b"p1"[..])
    );
    drop(b);

    // B goes silent: after its 1.5 s session A is told to rebalance and ends up alone.
    let started = Instant::now();
    loop {
        let hb = heartbeat(&mut a, "rb", 2, &id_a);
        if hb == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(hb, NONE);
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "B never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "expired too early"
    );
    let ja3 = a.call(
        5,
        &join_req("rb", &id_a, None, 1500, &[("range", meta.clone())]),
    );
    assert_eq!((ja3.generation_id, ja3.members.len()), (3, 1));
    assert_eq!(
        sync(&mut a, "rb", 3, &id_a, &[(&id_a, b"p0p1")]).error_code,
        NONE
    );

    // A leaves (v0 form): the group is empty at once, at a new generation.
    let left = a.call(
        0,
        &LeaveGroupRequest::default()
            .with_group_id(gid("rb"))
            .with_member_id(s(&id_a)),
    );
    assert_eq!(left.error_code, NONE);
    let d = describe(&mut a, "rb");
    assert_eq!((d.group_state.as_str(), d.members.len()), ("Empty", 0));
    assert_eq!(heartbeat(&mut a, "rb", 3, &id_a), UNKNOWN_MEMBER_ID);
}

#[test]
fn a_static_member_rejoining_keeps_its_assignment_without_a_rebalance() {
    let broker = BrokerProcess::start(&["group.initial.rebalance.delay.ms=0"]);
    let meta = subscription(&["t"]);
    let mut c = broker.client();
    find_coordinator(&mut c, "st");
    // Static members get an id right away (no MEMBER_ID_REQUIRED round).
    let j = c.call(
        5,
        &join_req(
            "st",
            "",
            Some("instance-1"),
            10_000,
            &[("range", meta.clone())],
        ),
    );
    assert_eq!(j.error_code, NONE);
    assert!(j.member_id.starts_with("instance-1-"));
    let old = j.member_id.to_string();
    assert_eq!(
        sync(&mut c, "st", 1, &old, &[(&old, b"mine")]).error_code,
        NONE
    );

    // The same instance restarts: new member id, same generation, no rebalance.
    let mut c2 = broker.client();
    let j2 = c2.call(
        5,
        &join_req(
            "st",
            "",
            Some("instance-1"),
            10_000,
            &[("range", meta.clone())],
        ),
    );
    assert_eq!(j2.error_code, NONE);
    assert_eq!(j2.generation_id, 1);
    let new = j2.member_id.to_string();
    assert_ne!(new, old);
    // Before v9 the restarted leader is told the OLD leader id (as Kafka does), so it does not
    // recompute an assignment over an empty member list.
    assert_eq!(j2.leader.as_str(), old);
    assert!(j2.members.is_empty());
    let s2 = sync(&mut c2, "st", 1, &new, &[]);
    assert_eq!((s2.error_code, &s2.assignment[..]), (NONE, &b"mine"[..]));
    assert_eq!(describe(&mut c2, "st").group_state.as_str(), "Stable");
    // The old incarnation is fenced.
    let fenced = c.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(gid("st"))
            .with_generation_id(1)
            .with_member_id(s(&old))
            .with_group_instance_id(Some(s("instance-1"))),
    );
    assert_eq!(fenced.error_code, FENCED_INSTANCE_ID);
    // Leaving by instance id.
    let left = c2.call(
        4,
        &LeaveGroupRequest::default()
            .with_group_id(gid("st"))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(s(""))
                .with_group_instance_id(Some(s("instance-1")))]),
    );
    assert_eq!(left.members[0].error_code, NONE);
    assert_eq!(describe(&mut c2, "st").group_state.as_str(), "Empty");
}

/// One KIP-848 heartbeat: (error, member epoch, assignment as sorted partition numbers of the
/// only topic, or None when the response carries no assignment).
fn cg_heartbeat(
    c: &mut Client,
    member: &str,
    epoch: i32,
    topics: Option<&[&str]>,
    owned: Option<(&uuid::Uuid, &[i32])>,
) -> (i16, i32, Option<Vec<i32>>) {
    use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("kip848"))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(5000)
        .with_subscribed_topic_names(topics.map(|ts| ts.iter().map(|t| TopicName(s(t))).collect()))
        .with_topic_partitions(owned.map(|(id, ps)| {
            vec![TopicPartitions::default()
                .with_topic_id(*id)
                .with_partitions(ps.to_vec())]
        }));
    let resp = c.call(1, &req);
    let parts = resp.assignment.map(|a| {
        let mut ps: Vec<i32> = a
            .topic_partitions
            .iter()
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect();
        ps.sort_unstable();
        ps
    });
    (resp.error_code, resp.member_epoch, parts)
}

#[test]
fn kip848_consumer_groups_reconcile_without_giving_a_partition_to_two_members() {
    const FENCED_MEMBER_EPOCH: i16 = 110;
    let broker = BrokerProcess::start(&["group.consumer.session.timeout.ms=1500"]);
    let mut a = broker.client();
    create_topic(&mut a, "events", 4);
    find_coordinator(&mut a, "kip848");
    let md = a.call(12, &MetadataRequest::default().with_topics(None));
    let topic_id = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "events"))
        .map(|t| t.topic_id)
        .expect("topic id");

    // A joins alone and gets every partition at epoch 1.
    let (err, epoch_a, parts) = cg_heartbeat(
        &mut a,
        "member-a",
        0,
        Some(&["events"]),
        Some((&topic_id, &[])),
    );
    assert_eq!((err, epoch_a, parts), (NONE, 1, Some(vec![0, 1, 2, 3])));
    // An unchanged heartbeat carries no assignment.
    assert_eq!(
        cg_heartbeat(&mut a, "member-a", 1, None, None),
        (NONE, 1, None)
    );
    // A full heartbeat restating the same subscription, with librdkafka's empty regex and
    // assignor strings, changes nothing (no new group epoch).
    let same = a.call(
        1,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(gid("kip848"))
            .with_member_id(s("member-a"))
            .with_member_epoch(1)
            .with_subscribed_topic_names(Some(vec![TopicName(s("events"))]))
            .with_subscribed_topic_regex(Some(s("")))
            .with_server_assignor(Some(s(""))),
    );
    assert_eq!((same.error_code, same.member_epoch), (NONE, 1));

    // B joins: epoch 2 target splits the partitions, but B gets nothing A still owns.
    let mut b = broker.client();
    let (err, epoch_b, parts_b) = cg_heartbeat(
        &mut b,
        "member-b",
        0,
        Some(&["events"]),
        Some((&topic_id, &[])),
    );
    assert_eq!((err, epoch_b, parts_b), (NONE, 2, Some(vec![])));
    // A is asked to revoke two partitions and stays at epoch 1 until it confirms.
    let (err, e, kept) = cg_heartbeat(&mut a, "member-a", 1, None, None);
    assert_eq!((err, e), (NONE, 1));
    let kept = kept.expect("revocation is sent");
    assert_eq!(kept.len(), 2);
    let moving: Vec<i32> = (0..4).filter(|p| !kept.contains(p)).collect();
    // B still waits for them.
    assert_eq!(
        cg_heartbeat(&mut b, "member-b", 2, None, None),
        (NONE, 2, None)
    );
    // A confirms it owns only what it kept: it moves to epoch 2 ...
    assert_eq!(
        cg_heartbeat(&mut a, "member-a", 1, None, Some((&topic_id, &kept))),
        (NONE, 2, Some(kept.clone()))
    );
    // ... and B now gets the released partitions.
    assert_eq!(
        cg_heartbeat(&mut b, "member-b", 2, None, None),
        (NONE, 2, Some(moving.clone()))
    );

    // A stale or future epoch is fenced; an unknown member is unknown.
    assert_eq!(
        cg_heartbeat(&mut a, "member-a", 7, None, None).0,
        FENCED_MEMBER_EPOCH
    );
    assert_eq!(
        cg_heartbeat(&mut a, "nobody", 2, None, None).0,
        UNKNOWN_MEMBER_ID
    );

    // Offsets commit with the member epoch; a wrong epoch is stale (113).
    let ok = commit(&mut a, "kip848", 2, "member-a", "events", &[(kept[0], 11)]);
    assert_eq!(ok, [NONE]);
    let stale = commit(&mut a, "kip848", 9, "member-a", "events", &[(kept[0], 12)]);
    assert_eq!(stale, [113]);
    assert_eq!(
        fetch_offsets(&mut a, "kip848", "events", &[kept[0]]),
        [(11, format!("meta-{}", kept[0]))]
    );

    // ConsumerGroupDescribe and ListGroups see a stable consumer group.
    let d = a.call(
        1,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid("kip848")]),
    );
    let g = &d.groups[0];
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.group_epoch,
            g.assignment_epoch
        ),
        (NONE, "Stable", 2, 2)
    );
    assert_eq!(g.assignor_name.as_str(), "uniform");
    let mut described: Vec<(String, Vec<i32>)> = g
        .members
        .iter()
        .map(|m| {
            let mut ps: Vec<i32> = m
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.clone())
                .collect();
            ps.sort_unstable();
            assert_eq!(
                m.assignment.topic_partitions[0].topic_name.as_str(),
                "events"
            );
            (m.member_id.to_string(), ps)
        })
        .collect();
    described.sort();
    assert_eq!(
        described,
        [
            ("member-a".to_string(), kept.clone()),
            ("member-b".to_string(), moving.clone())
        ]
    );
    let listed = c_list_types(&mut a);
    assert_eq!(
        listed,
        [(
            "kip848".to_string(),
            "Stable".to_string(),
            "consumer".to_string()
        )]
    );
    // A classic JoinGroup cannot take over a consumer group.
    let j = a.call(
        5,
        &join_req(
            "kip848",
            "",
            None,
            10_000,
            &[("range", subscription(&["events"]))],
        ),
    );
    assert_eq!(j.error_code, INCONSISTENT_GROUP_PROTOCOL);

    // A leaves (epoch -1): B gets everything at the next epoch.
    assert_eq!(
        cg_heartbeat(&mut a, "member-a", -1, None, None),
        (NONE, -1, None)
    );
    assert_eq!(
        cg_heartbeat(&mut b, "member-b", 2, None, None),
        (NONE, 3, Some(vec![0, 1, 2, 3]))
    );
    // B stops heartbeating: after its 1.5 s session the group is empty.
    std::thread::sleep(Duration::from_millis(2200));
    let d = a.call(
        1,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid("kip848")]),
    );
    assert_eq!(
        (d.groups[0].group_state.as_str(), d.groups[0].members.len()),
        ("Empty", 0)
    );
}

fn c_list_types(c: &mut Client) -> Vec<(String, String, String)> {
    let resp = c.call(5, &ListGroupsRequest::default());
    resp.groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.group_state.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect()
}

#[test]
fn group_max_size_refuses_one_member_too_many() {
    const GROUP_MAX_SIZE_REACHED: i16 = 81;
    let broker = BrokerProcess::start(&["group.initial.rebalance.delay.ms=0", "group.max.size=1"]);
    let meta = subscription(&["t"]);
    let mut a = broker.client();
    find_coordinator(&mut a, "small");
    let ja = join_new(&mut a, "small", 10_000, &meta);
    assert_eq!((ja.error_code, ja.generation_id), (NONE, 1));
    let mut b = broker.client();
    let jb = b.call(
        5,
        &join_req("small", "", None, 10_000, &[("range", meta.clone())]),
    );
    assert_eq!(jb.error_code, GROUP_MAX_SIZE_REACHED);
    // The member already in is untouched.
    assert_eq!(heartbeat(&mut a, "small", 1, &ja.member_id), NONE);
}

#[test]
fn a_group_id_too_long_to_store_is_refused_and_the_broker_carries_on() {
    const INVALID_GROUP_ID: i16 = 24;
    let broker = BrokerProcess::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut c = broker.client();
    let long = "g".repeat(40_000);
    find_coordinator(&mut c, "ok-group");
    // JoinGroup v6+ uses compact strings, so a 40,000-byte id reaches the coordinator.
    let j = c.call(
        7,
        &join_req(&long, "", None, 10_000, &[("range", subscription(&["t"]))]),
    );
    assert_eq!(j.error_code, INVALID_GROUP_ID);
    create_topic(&mut c, "t", 1);
    let resp = c.call(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(gid(&long))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])]),
    );
    assert_eq!(resp.topics[0].partitions[0].error_code, INVALID_GROUP_ID);
    // The coordinator carries on with other groups.
    let joined = join_new(&mut c, "ok-group", 10_000, &subscription(&["t"]));
    assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
}
