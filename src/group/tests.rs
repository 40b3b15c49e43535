//! Deterministic tests of the group coordinator, driven by a `ManualClock`: session expiry,
//! the initial rebalance delay, static member rejoin, KIP-848 revoke-before-assign and
//! revocation timeout, offset expiry, and what each leaves in `__consumer_offsets` (a real
//! partition in a temporary directory, replayed as a new leader would).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use uuid::Uuid;

use super::assignor::TopicAssignment;
use super::classic::GroupState;
use super::consumer::HeartbeatRequest;
use super::coordinator::*;
use super::group_metadata_manager as store;
use crate::clock::{Clock, ManualClock};
use crate::config::{BrokerConfig, GroupConfig};
use crate::metadata::{MetadataImage, PartitionMetadata, TopicMetadata};
use crate::replica::Partition;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 60_000;

/// A coordinator on a manual clock leading the single partition of a one-partition
/// `__consumer_offsets` in a temporary directory.
struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    log: Arc<Partition>,
    gc: GroupCoordinator,
}

fn fixture(tune: impl FnOnce(&mut GroupConfig)) -> Fixture {
    fixture_with(|_| {}, tune)
}

fn fixture_with(
    tune_log: impl FnOnce(&mut crate::config::TopicSettings),
    tune: impl FnOnce(&mut GroupConfig),
) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerConfig::default_standalone();
    let mut settings = crate::config::topic_settings(&BTreeMap::new(), &broker);
    settings.cleanup_policy = "compact".to_string();
    tune_log(&mut settings);
    let log = Arc::new(
        Partition::open(dir.path(), OFFSETS_TOPIC, 0, Uuid::new_v4(), 0, settings)
            .expect("open partition"),
    );
    let mut cfg = broker.group_config();
    tune(&mut cfg);
    let clock = Arc::new(ManualClock::new());
    let gc = GroupCoordinator::with_clock(0, cfg, clock.clone());
    gc.adopt_partition(1, 0, log.clone());
    Fixture {
        _dir: dir,
        clock,
        log,
        gc,
    }
}

impl Fixture {
    fn advance_ms(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }

    fn tick(&self) {
        self.gc.tick(&MetadataImage::default());
    }

    /// The classic groups the log holds, as a new leader would load them.
    fn reload(&self) -> store::Loaded {
        store::load_partition(&self.log, 0, self.clock.read()).expect("load")
    }
}

fn join_req(group: &str, member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: group.to_string(),
        member_id: member_id.to_string(),
        group_instance_id: instance.map(str::to_string),
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from_static(b"sub"))],
        require_known_member_id: false,
        supports_skip_assignment: true,
    }
}

fn sync_req(
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, &str)],
) -> SyncRequest {
    SyncRequest {
        group_id: group.to_string(),
        generation_id: generation,
        member_id: member_id.to_string(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect(),
    }
}

fn answered<T>(p: Pending<T>) -> T {
    match p {
        Pending::Ready(r) => r,
        Pending::Wait(mut rx) => rx.try_recv().expect("answered without waiting"),
    }
}

fn parked<T>(p: Pending<T>) -> tokio::sync::oneshot::Receiver<T> {
    match p {
        Pending::Ready(_) => panic!("answered at once"),
        Pending::Wait(mut rx) => {
            assert!(rx.try_recv().is_err(), "answered already");
            rx
        }
    }
}

#[test]
fn a_coordinator_without_its_offsets_topic_answers_not_coordinator() {
    // Between FindCoordinator creating `__consumer_offsets` and its partitions reaching the
    // coordinator, a JoinGroup must send the client back to FindCoordinator.
    let gc = GroupCoordinator::with_clock(
        0,
        BrokerConfig::default_standalone().group_config(),
        Arc::new(ManualClock::new()),
    );
    let joined = answered(gc.join(join_req("g", "", None)));
    assert_eq!(joined.error, E::NotCoordinator.code());
}

/// One dynamic member joins (no initial delay) and syncs: generation 1, Stable.
fn stable_group_of_one(f: &Fixture, group: &str) -> String {
    let joined = answered(f.gc.join(join_req(group, "", None)));
    assert_eq!(joined.error, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, joined.member_id);
    let synced = answered(f.gc.sync(sync_req(
        group,
        1,
        &joined.member_id,
        &[(&joined.member_id, "a0")],
    )));
    assert_eq!(synced.error, 0);
    assert_eq!(&synced.assignment[..], b"a0");
    joined.member_id
}

#[test]
fn session_expiry_empties_the_group_and_stores_it() {
    let f = fixture(|c| c.initial_rebalance_delay = Duration::ZERO);
    let member = stable_group_of_one(&f, "g");
    f.advance_ms(SESSION_MS as u64 - 1);
    f.tick();
    let d = f.gc.describe("g");
    assert_eq!(d.state, "Stable");
    assert_eq!(d.members.len(), 1);
    // A heartbeat moves the deadline.
    assert_eq!(f.gc.heartbeat("g", 1, &member, None), NONE);
    f.advance_ms(SESSION_MS as u64 - 1);
    f.tick();
    assert_eq!(f.gc.describe("g").state, "Stable");
    f.advance_ms(1);
    f.tick();
    let d = f.gc.describe("g");
    assert_eq!(d.state, "Empty");
    assert!(d.members.is_empty());
    assert_eq!(
        f.gc.heartbeat("g", 1, &member, None),
        E::UnknownMemberId.code()
    );
    // The log says the same: generation 2, no members.
    let loaded = f.reload();
    let g = loaded
        .groups
        .iter()
        .find(|g| g.group_id == "g")
        .expect("stored");
    assert_eq!(g.generation_id, 2);
    assert_eq!(g.state, GroupState::Empty);
    assert!(g.members.is_empty());
}

#[test]
fn initial_rebalance_delay_waits_for_more_members() {
    let f = fixture(|c| c.initial_rebalance_delay = Duration::from_millis(3_000));
    let a = parked(f.gc.join(join_req("g", "", None)));
    f.advance_ms(2_000);
    let b = parked(f.gc.join(join_req("g", "", None)));
    f.advance_ms(999);
    f.tick();
    assert_eq!(f.gc.describe("g").state, "PreparingRebalance");
    // At 3 s a member has arrived during the delay: Kafka waits one more delay.
    f.advance_ms(1);
    f.tick();
    assert_eq!(f.gc.describe("g").state, "PreparingRebalance");
    f.advance_ms(2_999);
    f.tick();
    assert_eq!(f.gc.describe("g").state, "PreparingRebalance");
    f.advance_ms(1);
    f.tick();
    let (mut a, mut b) = (a, b);
    let a = a.try_recv().expect("a answered");
    let b = b.try_recv().expect("b answered");
    assert_eq!((a.error, b.error), (0, 0));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    // The first to join leads and is told every member.
    assert_eq!(a.leader, a.member_id);
    assert_eq!(b.leader, a.member_id);
    let mut ids: Vec<&str> = a.members.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![a.member_id.as_str(), b.member_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(b.members.is_empty());
    assert_eq!(f.gc.describe("g").state, "CompletingRebalance");
}

#[test]
fn static_member_rejoins_without_a_rebalance() {
    let f = fixture(|c| c.initial_rebalance_delay = Duration::ZERO);
    let joined = answered(f.gc.join(join_req("g", "", Some("i1"))));
    assert_eq!(joined.generation_id, 1);
    let old = joined.member_id.clone();
    assert!(old.starts_with("i1-"));
    let synced = answered(f.gc.sync(sync_req("g", 1, &old, &[(&old, "p0,p1")])));
    assert_eq!(&synced.assignment[..], b"p0,p1");
    // The same instance restarts: a new member id, the same generation, the assignment
    // kept; as the leader at v9+ it is told to skip the assignment.
    f.advance_ms(5_000);
    let rejoined = answered(f.gc.join(join_req("g", "", Some("i1"))));
    assert_eq!(rejoined.error, 0);
    assert_ne!(rejoined.member_id, old);
    assert!(rejoined.member_id.starts_with("i1-"));
    assert_eq!(rejoined.generation_id, 1);
    assert_eq!(rejoined.leader, rejoined.member_id);
    assert!(rejoined.skip_assignment);
    let new = rejoined.member_id.clone();
    assert_eq!(f.gc.describe("g").state, "Stable");
    let synced = answered(f.gc.sync(sync_req("g", 1, &new, &[])));
    assert_eq!(&synced.assignment[..], b"p0,p1");
    // The old incarnation is fenced.
    assert_eq!(
        f.gc.heartbeat("g", 1, &old, Some("i1")),
        E::FencedInstanceId.code()
    );
    assert_eq!(f.gc.heartbeat("g", 1, &new, Some("i1")), NONE);
    // The log holds the new member id with its assignment.
    let loaded = f.reload();
    let g = loaded
        .groups
        .iter()
        .find(|g| g.group_id == "g")
        .expect("stored");
    assert_eq!(g.generation_id, 1);
    assert_eq!(g.static_members.get("i1"), Some(&new));
    assert_eq!(
        g.members.get(&new).map(|m| &m.assignment[..]),
        Some(&b"p0,p1"[..])
    );
}

#[test]
fn rejoining_static_member_below_v9_is_told_the_old_leader() {
    let f = fixture(|c| c.initial_rebalance_delay = Duration::ZERO);
    let old = answered(f.gc.join(join_req("g", "", Some("i1")))).member_id;
    answered(f.gc.sync(sync_req("g", 1, &old, &[(&old, "a")])));
    let mut req = join_req("g", "", Some("i1"));
    req.supports_skip_assignment = false;
    let rejoined = answered(f.gc.join(req));
    assert_eq!(rejoined.leader, old);
    assert!(rejoined.members.is_empty());
    assert!(!rejoined.skip_assignment);
}

fn image_with_topic(name: &str, partitions: usize) -> (MetadataImage, Uuid) {
    let id = Uuid::new_v4();
    let mut image = MetadataImage::default();
    let topic = TopicMetadata {
        name: name.to_string(),
        id,
        partitions: (0..partitions)
            .map(|_| PartitionMetadata {
                replicas: vec![0],
                leader: 0,
                leader_epoch: 0,
                isr: vec![0],
                partition_epoch: 0,
            })
            .collect(),
        configs: BTreeMap::new(),
    };
    image.topics.insert(name.to_string(), Arc::new(topic));
    image.topic_names_by_id.insert(id, name.to_string());
    (image, id)
}

fn hb(member_id: &str, epoch: i32, owned: Option<TopicAssignment>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member_id.to_string(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: REBALANCE_MS,
        subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_string()]),
        subscribed_topic_regex: None,
        server_assignor: Some("range".to_string()),
        owned,
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
    }
}

fn parts(id: Uuid, ps: &[i32]) -> TopicAssignment {
    let mut a = TopicAssignment::new();
    if !ps.is_empty() {
        a.insert(id, ps.iter().copied().collect());
    }
    a
}

#[test]
fn kip848_revokes_before_it_assigns() {
    let f = fixture(|_| {});
    let (image, t) = image_with_topic("t", 2);
    // A alone: both partitions, epoch 1.
    let a =
        f.gc.consumer_heartbeat("cg", hb("", 0, None), &image)
            .expect("a joins");
    assert_eq!(a.member_epoch, 1);
    assert_eq!(a.assignment, Some(parts(t, &[0, 1])));
    let a_id = a.member_id;
    // B joins: the target gives it one of A's partitions, which A still owns, so B gets
    // nothing yet, at the new epoch.
    let b =
        f.gc.consumer_heartbeat("cg", hb("", 0, None), &image)
            .expect("b joins");
    assert_eq!(b.member_epoch, 2);
    assert_eq!(b.assignment, Some(TopicAssignment::new()));
    let b_id = b.member_id;
    let d = f.gc.consumer_describe("cg");
    let b_target = d
        .members
        .iter()
        .find(|m| m.member_id == b_id)
        .map(|m| m.target_assignment.clone())
        .expect("b described");
    assert_eq!(b_target.get(&t).map(|s| s.len()), Some(1));
    let moving: i32 = *b_target[&t].iter().next().expect("one partition");
    let keeping = 1 - moving;
    // A is told to give it up, keeping its epoch until it has.
    let a1 =
        f.gc.consumer_heartbeat("cg", hb(&a_id, 1, Some(parts(t, &[0, 1]))), &image)
            .expect("a heartbeat");
    assert_eq!(a1.member_epoch, 1);
    assert_eq!(a1.assignment, Some(parts(t, &[keeping])));
    // B still waits: A has not confirmed.
    let b1 =
        f.gc.consumer_heartbeat("cg", hb(&b_id, 2, None), &image)
            .expect("b heartbeat");
    assert_eq!(b1.member_epoch, 2);
    assert!(b1.assignment.is_none_or(|a| a.is_empty()));
    // A confirms it released the partition: it moves to epoch 2.
    let a2 =
        f.gc.consumer_heartbeat("cg", hb(&a_id, 1, Some(parts(t, &[keeping]))), &image)
            .expect("a confirms");
    assert_eq!(a2.member_epoch, 2);
    // Now B gets it.
    let b2 =
        f.gc.consumer_heartbeat("cg", hb(&b_id, 2, None), &image)
            .expect("b heartbeat");
    assert_eq!(b2.assignment, Some(parts(t, &[moving])));
}

#[test]
fn kip848_member_that_never_revokes_is_removed_after_its_rebalance_timeout() {
    // Sessions outlast the rebalance timeout, so only the revocation deadline can fire.
    let f = fixture(|c| c.consumer_session_timeout = Duration::from_secs(120));
    let (image, t) = image_with_topic("t", 2);
    let a_id =
        f.gc.consumer_heartbeat("cg", hb("", 0, None), &image)
            .expect("a")
            .member_id;
    let b_id =
        f.gc.consumer_heartbeat("cg", hb("", 0, None), &image)
            .expect("b")
            .member_id;
    f.gc.consumer_heartbeat("cg", hb(&a_id, 1, Some(parts(t, &[0, 1]))), &image)
        .expect("a told to revoke");
    f.advance_ms(REBALANCE_MS as u64);
    f.gc.tick(&image);
    let d = f.gc.consumer_describe("cg");
    let ids: Vec<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec![b_id.as_str()]);
}

#[test]
fn offsets_expire_after_retention_and_the_empty_group_goes() {
    let f = fixture(|c| {
        c.offsets_retention = Duration::from_secs(600);
        c.offsets_retention_check_interval = Duration::from_millis(1);
    });
    let exists = |_: &str, _: i32| true;
    let entries = [CommitEntry {
        topic: "t".to_string(),
        partition: 0,
        offset: 42,
        leader_epoch: -1,
        metadata: Some("m".to_string()),
    }];
    let r =
        f.gc.commit_offsets("g", -1, "", None, &entries, &exists)
            .expect("commit");
    assert_eq!(r, vec![Ok(())]);
    let fetched = f.gc.fetch_offsets("g", None).expect("fetch");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].1[0].1.as_ref().map(|v| v.offset), Some(42));
    // Committed, and the group Empty, at the same instant: expiry is due exactly 600 s later.
    f.advance_ms(599_999);
    f.tick();
    let kept = f.gc.fetch_offsets("g", None).expect("fetch");
    assert_eq!(kept[0].1[0].1.as_ref().map(|v| v.offset), Some(42));
    assert_eq!(f.gc.describe("g").state, "Empty");
    f.advance_ms(1);
    f.tick();
    assert!(f.gc.fetch_offsets("g", None).expect("fetch").is_empty());
    assert_eq!(f.gc.describe("g").error, E::GroupIdNotFound.code());
    let loaded = f.reload();
    assert!(loaded.offsets.is_empty());
    assert!(loaded.groups.is_empty());
}

#[test]
fn commits_are_stored_then_visible_and_survive_a_reload() {
    let f = fixture(|c| c.initial_rebalance_delay = Duration::ZERO);
    let member = stable_group_of_one(&f, "g");
    let exists = |t: &str, _: i32| t == "t";
    let entries: Vec<CommitEntry> = [("t", 0, 5), ("t", 1, 6), ("gone", 0, 1)]
        .iter()
        .map(|(t, p, o)| CommitEntry {
            topic: t.to_string(),
            partition: *p,
            offset: *o,
            leader_epoch: 3,
            metadata: None,
        })
        .collect();
    let r =
        f.gc.commit_offsets("g", 1, &member, None, &entries, &exists)
            .expect("commit");
    assert_eq!(r, vec![Ok(()), Ok(()), Err(E::UnknownTopicOrPartition)]);
    assert_eq!(
        f.gc.commit_offsets("g", 7, &member, None, &entries, &exists)
            .err(),
        Some(E::IllegalGeneration)
    );
    let loaded = f.reload();
    let mut offsets: Vec<(String, i32, i64)> = loaded
        .offsets
        .iter()
        .map(|(g, t, p, v)| {
            assert_eq!(g, "g");
            (t.clone(), *p, v.offset)
        })
        .collect();
    offsets.sort();
    assert_eq!(
        offsets,
        vec![("t".to_string(), 0, 5), ("t".to_string(), 1, 6)]
    );
}

#[test]
fn a_failed_append_is_reported_and_changes_nothing_visible() {
    // The coordinator appends with acks=-1: an ISR (of one) below min.insync.replicas=2
    // makes every append fail with NOT_ENOUGH_REPLICAS, which a client sees as
    // COORDINATOR_NOT_AVAILABLE.
    let f = fixture_with(
        |s| s.min_insync_replicas = 2,
        |c| c.initial_rebalance_delay = Duration::ZERO,
    );
    let exists = |_: &str, _: i32| true;
    let entries = [CommitEntry {
        topic: "t".to_string(),
        partition: 0,
        offset: 9,
        leader_epoch: -1,
        metadata: None,
    }];
    let r =
        f.gc.commit_offsets("g", -1, "", None, &entries, &exists)
            .expect("commit");
    assert_eq!(r, vec![Err(E::CoordinatorNotAvailable)]);
    let fetched =
        f.gc.fetch_offsets("g", Some(vec![("t".to_string(), vec![0])]))
            .expect("fetch");
    assert!(fetched[0].1[0].1.is_none(), "not visible: never stored");
    // The leader's SyncGroup: nobody gets an assignment that is not stored; a new rebalance.
    let joined = answered(f.gc.join(join_req("h", "", None)));
    assert_eq!(joined.generation_id, 1);
    let synced = answered(f.gc.sync(sync_req(
        "h",
        1,
        &joined.member_id,
        &[(&joined.member_id, "a")],
    )));
    assert_eq!(synced.error, E::CoordinatorNotAvailable.code());
    assert!(synced.assignment.is_empty());
    assert_eq!(f.gc.describe("h").state, "PreparingRebalance");
    assert!(f.reload().groups.is_empty());
}

#[test]
fn concurrent_commits_leave_memory_and_log_in_the_same_order() {
    // Eight threads commit to the same partitions of one group; each write appends with the
    // coordinator's lock released. (Without the partition's `writes` mutex held from prepare
    // to apply, this fails: memory ends with one commit, the log with another.) Whatever the interleaving, the offset OffsetFetch shows must
    // be the one the log ends with (what a new coordinator would load).
    let f = Arc::new(fixture(|_| {}));
    // Widen the window between append and apply, unevenly, so that without the ordering a
    // later write would often overtake an earlier one there.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let _ = f.gc.after_append.set(Box::new(move || {
        if n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(2)
        {
            std::thread::sleep(Duration::from_micros(300));
        }
    }));
    let threads: Vec<_> = (0..8i64)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                let exists = |_: &str, _: i32| true;
                for i in 0..100i64 {
                    let entries: Vec<CommitEntry> = (0..3)
                        .map(|p| CommitEntry {
                            topic: "t".to_string(),
                            partition: p,
                            offset: t * 1_000 + i,
                            leader_epoch: -1,
                            metadata: None,
                        })
                        .collect();
                    let r = f.gc.commit_offsets("g", -1, "", None, &entries, &exists);
                    assert_eq!(r, Ok(vec![Ok(()); 3]));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("committer");
    }
    let fetched = f.gc.fetch_offsets("g", None).expect("fetch");
    let in_memory: Vec<(i32, i64)> = fetched[0]
        .1
        .iter()
        .map(|(p, v)| (*p, v.as_ref().map_or(-1, |v| v.offset)))
        .collect();
    let loaded = f.reload();
    let mut in_log: Vec<(i32, i64)> = loaded
        .offsets
        .iter()
        .map(|(_, _, p, v)| (*p, v.offset))
        .collect();
    in_log.sort_unstable();
    assert_eq!(in_memory, in_log);
    // One commit's three offsets are one batch: all three come from the same commit.
    assert!(in_memory.iter().all(|(_, o)| *o == in_memory[0].1));
}
