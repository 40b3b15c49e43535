//! Consumer groups in a 3-broker cluster on a real ZooKeeper: `__consumer_offsets` partitions
//! led by different brokers spread the groups over three coordinators, every broker names the
//! same coordinator for a group, the others answer NOT_COORDINATOR, and when the
//! coordinator's broker restarts the group carries on with its committed offsets once the
//! broker leads its offsets partition again (RF=1 here: moving offsets to another broker is
//! the replication issue's part).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use gregor_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::StrBytes;

const NOT_COORDINATOR: i16 = 16;
const OFFSETS_PARTITIONS: i32 = 6;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

struct ZooKeeper {
    dir: tempfile::TempDir,
    connect: String,
}

impl ZooKeeper {
    fn start() -> ZooKeeper {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(repo.join("scripts/zookeeper.sh"))
            .args(["start", dir.path().to_str().expect("utf-8 path")])
            .env("ZK_TICK_MS", "500")
            .env("ZK_FORCE_SYNC", "no")
            .env("ZK_OWNER_PID", std::process::id().to_string())
            .output()
            .expect("run scripts/zookeeper.sh");
        assert!(
            out.status.success(),
            "zookeeper.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let connect = String::from_utf8_lossy(&out.stdout).trim().to_string();
        ZooKeeper { dir, connect }
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let _ = Command::new("bash")
            .arg(repo.join("scripts/zookeeper.sh"))
            .args(["stop", self.dir.path().to_str().unwrap_or_default()])
            .output();
    }
}

/// Kafka's partition for a group: `abs(String.hashCode) % partitions`.
fn group_partition(group: &str) -> i32 {
    let h = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    (if h == i32::MIN { 0 } else { h.abs() }) % OFFSETS_PARTITIONS
}

fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Coordinator node id per group as one broker answers (FindCoordinator v4, batched).
fn coordinators(c: &mut Client, groups: &[String]) -> BTreeMap<String, (i16, i32)> {
    let resp = c.call(
        4,
        &FindCoordinatorRequest::default()
            .with_coordinator_keys(groups.iter().map(|g| s(g)).collect()),
    );
    resp.coordinators
        .iter()
        .map(|c| (c.key.to_string(), (c.error_code, c.node_id.0)))
        .collect()
}

/// Leader of each `__consumer_offsets` partition as one broker's metadata says.
fn offsets_leaders(c: &mut Client) -> Vec<i32> {
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    let mut leaders: Vec<(i32, i32)> = md
        .topics
        .iter()
        .filter(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| n.as_str() == "__consumer_offsets")
        })
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
        })
        .collect();
    leaders.sort_unstable();
    leaders.into_iter().map(|(_, l)| l).collect()
}

fn commit(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(i32, i64)],
) -> Vec<i16> {
    let resp = c.call(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
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

fn fetch_offsets(c: &mut Client, group: &str) -> (i16, Vec<i64>) {
    let resp = c.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partition_indexes(vec![0, 1, 2])])),
    );
    let offsets = resp
        .topics
        .first()
        .map(|t| t.partitions.iter().map(|p| p.committed_offset).collect())
        .unwrap_or_default();
    (resp.error_code, offsets)
}

#[test]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
fn groups_spread_over_coordinators_and_survive_a_coordinator_restart() {
    let zk = ZooKeeper::start();
    let ids = [1, 2, 3];
    let mut brokers: Vec<BrokerProcess> = ids
        .iter()
        .map(|id| {
            BrokerProcess::start(&[
                &format!("broker.id={id}"),
                &format!("zookeeper.connect={}/groups", zk.connect),
                "zookeeper.session.timeout.ms=4000",
                &format!("offsets.topic.num.partitions={OFFSETS_PARTITIONS}"),
                "offsets.topic.replication.factor=1",
                "group.initial.rebalance.delay.ms=0",
            ])
        })
        .collect();
    let mut c1 = brokers[0].client();
    eventually("three registered brokers", Duration::from_secs(20), || {
        let md = c1.call(12, &MetadataRequest::default().with_topics(None));
        (md.brokers.len() == 3 && md.controller_id.0 > 0).then_some(())
    });
    let create = c1.call(
        7,
        &CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(s("orders")))
                .with_num_partitions(3)
                .with_replication_factor(1)]),
    );
    assert_eq!(create.topics[0].error_code, 0);

    // The first FindCoordinator creates __consumer_offsets; wait until every partition has a
    // leader and all brokers agree on each group's coordinator.
    let groups: Vec<String> = (0..12).map(|i| format!("group-{i}")).collect();
    let leaders = eventually(
        "offsets partitions with leaders",
        Duration::from_secs(30),
        || {
            let found = coordinators(&mut c1, &groups);
            let leaders = offsets_leaders(&mut c1);
            (found.values().all(|(e, _)| *e == 0)
                && leaders.len() == OFFSETS_PARTITIONS as usize
                && leaders.iter().all(|l| *l > 0))
            .then_some(leaders)
        },
    );
    let spread: BTreeSet<i32> = leaders.iter().copied().collect();
    assert_eq!(
        spread,
        BTreeSet::from([1, 2, 3]),
        "offsets leaders {leaders:?}"
    );
    let by_group = eventually(
        "every broker naming the same coordinators",
        Duration::from_secs(15),
        || {
            let answers: Vec<BTreeMap<String, (i16, i32)>> = brokers
                .iter()
                .map(|b| coordinators(&mut b.client(), &groups))
                .collect();
            (answers.iter().all(|a| a == &answers[0])).then(|| answers[0].clone())
        },
    );
    for g in &groups {
        let want = leaders[group_partition(g) as usize];
        assert_eq!(
            by_group[g],
            (0, want),
            "{g} is coordinated by the leader of its partition"
        );
    }
    let used: BTreeSet<i32> = by_group.values().map(|(_, n)| *n).collect();
    assert!(
        used.len() >= 2,
        "12 groups all on one coordinator: {by_group:?}"
    );

    // A group's coordinator serves it; the other brokers say NOT_COORDINATOR.
    let group = "group-0";
    let coord = by_group[group].1;
    let index = |id: i32| ids.iter().position(|b| *b == id).expect("known broker");
    let mut cc = brokers[index(coord)].client();
    let other = ids
        .iter()
        .copied()
        .find(|b| *b != coord)
        .expect("another broker");
    let mut co = brokers[index(other)].client();
    // (Until that broker has applied the image with the offsets topic it says
    // COORDINATOR_NOT_AVAILABLE, also retriable.)
    eventually(
        "NOT_COORDINATOR from another broker",
        Duration::from_secs(15),
        || (commit(&mut co, group, -1, "", &[(0, 1)]) == [NOT_COORDINATOR]).then_some(()),
    );
    assert_eq!(fetch_offsets(&mut co, group).0, NOT_COORDINATOR);

    // A member joins and syncs on the coordinator, and commits.
    let meta = bytes::Bytes::from_static(b"\x00\x00\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff");
    let join = |c: &mut Client, member: &str| {
        c.call(
            5,
            &JoinGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_session_timeout_ms(30_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(s(member))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(meta.clone())]),
        )
    };
    // The coordinator's broker applies a new image (and loads the offsets partition) a
    // moment after the other brokers may already name it: clients retry NOT_COORDINATOR.
    let first = eventually(
        "the coordinator to load its partition",
        Duration::from_secs(15),
        || {
            let r = join(&mut cc, "");
            (r.error_code != NOT_COORDINATOR).then_some(r)
        },
    );
    assert_eq!(first.error_code, 79);
    let joined = join(&mut cc, &first.member_id);
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    let me = joined.member_id.to_string();
    let synced = cc.call(
        5,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(1)
            .with_member_id(s(&me))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&me))
                .with_assignment(bytes::Bytes::from_static(b"all"))]),
    );
    assert_eq!(synced.error_code, 0);
    assert_eq!(
        commit(&mut cc, group, 1, &me, &[(0, 10), (1, 20), (2, 30)]),
        [0, 0, 0]
    );
    assert_eq!(fetch_offsets(&mut cc, group), (0, vec![10, 20, 30]));

    // The coordinator's broker restarts. While it is away its offsets partitions have no
    // leader: the group has no coordinator (a retriable error), never a wrong one.
    let started = Instant::now();
    let b = &mut brokers[index(coord)];
    assert!(b.stop(), "graceful stop");
    let mut c_other = brokers[index(other)].client();
    eventually(
        "the group to lose its coordinator",
        Duration::from_secs(20),
        || {
            let (err, node) = coordinators(&mut c_other, &[group.to_string()])[group];
            assert!(err != 0 || node != coord || started.elapsed() < Duration::from_secs(20));
            (err == 15).then_some(())
        },
    );
    brokers[index(coord)].restart();
    let mut cc = eventually(
        "the coordinator to come back",
        Duration::from_secs(30),
        || {
            let (err, node) = coordinators(&mut c_other, &[group.to_string()])[group];
            (err == 0 && node == coord).then(|| brokers[index(coord)].client())
        },
    );
    // The group carries on: its offsets, its member and its generation.
    let offsets = eventually("offsets to be loaded", Duration::from_secs(15), || {
        let (err, offsets) = fetch_offsets(&mut cc, group);
        (err == 0).then_some(offsets)
    });
    assert_eq!(offsets, [10, 20, 30]);
    let hb = cc.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(1)
            .with_member_id(s(&me)),
    );
    assert_eq!(
        hb.error_code, 0,
        "the member's heartbeat is accepted after the move"
    );
    assert_eq!(commit(&mut cc, group, 1, &me, &[(0, 11)]), [0]);
    assert_eq!(fetch_offsets(&mut cc, group), (0, vec![11, 20, 30]));
    println!(
        "coordinator broker {coord} restarted; group served again after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
