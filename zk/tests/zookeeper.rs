//! gregor-zk against a real ZooKeeper (Debian's `zookeeper` package) started by
//! `scripts/zookeeper.sh`: one standalone server per test binary on a free port in a temp
//! dir, each test in its own chroot. The server is stopped by the script's watchdog when this
//! process exits. A missing `zookeeper` package fails the tests (CI installs it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gregor_zk::znode::{new_kafka_uuid, LEADER_RECOVERY_STATE_RECOVERING};
use gregor_zk::{
    paths, BrokerRegistration, Endpoint, PartitionState, TopicAssignment, ZkClient, ZkError,
    ZkEvent,
};
use serde_json::{json, Value};

const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

struct Server {
    connect: String,
    _dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/zookeeper.sh")
}

/// The ZooKeeper shared by the tests of this binary (started on first use).
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        assert!(
            std::path::Path::new(ZK_JAR).exists(),
            "{ZK_JAR} is missing: these tests need Debian's ZooKeeper (apt-get install -y zookeeper, \
             or scripts/zookeeper.sh install)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let started = Instant::now();
        let output = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .env("ZK_TICK_MS", "500")
            .env("ZK_FORCE_SYNC", "no")
            .env("ZK_OWNER_PID", std::process::id().to_string())
            .output()
            .expect("run scripts/zookeeper.sh");
        assert!(
            output.status.success(),
            "scripts/zookeeper.sh start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let connect = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        eprintln!("ZooKeeper at {connect} started in {:?}", started.elapsed());
        Server { connect, _dir: dir }
    })
}

async fn connect(chroot: &str) -> ZkClient {
    let connect_string = format!("{}{}", server().connect, chroot);
    ZkClient::connect(&connect_string, SESSION_TIMEOUT)
        .await
        .expect("connect to ZooKeeper")
}

/// Runs ZooKeeper's own CLI (`org.apache.zookeeper.ZooKeeperMain`) with one command.
async fn zk_cli(args: &[&str]) -> String {
    let mut command = Command::new("java");
    command
        .args([
            "-cp",
            ZK_JAR,
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
        ])
        .arg(&server().connect)
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run zkCli");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `ephemeralOwner` of `path` as printed by zkCli's `stat`.
async fn cli_ephemeral_owner(path: &str) -> String {
    let out = zk_cli(&["stat", path]).await;
    out.lines()
        .find_map(|l| l.strip_prefix("ephemeralOwner = "))
        .unwrap_or_else(|| panic!("no stat for {path} from zkCli:\n{out}"))
        .trim()
        .to_owned()
}

/// The data of `path` as printed by zkCli's `get` (its last non-empty line).
async fn cli_get(path: &str) -> String {
    let out = zk_cli(&["get", path]).await;
    out.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

async fn raw_json(zk: &ZkClient, path: &str) -> Value {
    let (bytes, _) = zk.get_raw(path).await.expect("read").expect("znode exists");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {bytes:?}"))
}

fn plaintext(host: &str, port: i32) -> Endpoint {
    Endpoint {
        listener_name: "PLAINTEXT".into(),
        security_protocol: "PLAINTEXT".into(),
        host: host.into(),
        port,
    }
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn znodes_are_written_in_kafkas_format() {
    let zk = connect("/layout").await;
    zk.ensure_persistent_paths()
        .await
        .expect("persistent paths");

    // Broker registration, v5, ephemeral, epoch = czxid.
    let registration = BrokerRegistration::new(1, &[plaintext("h1", 9092)], Some("r1".into()));
    let epoch = zk.register_broker(&registration).await.expect("register");
    let json = raw_json(&zk, "/brokers/ids/1").await;
    assert_eq!(json["version"], 5);
    assert_eq!(json["host"], "h1");
    assert_eq!(json["port"], 9092);
    assert_eq!(json["jmx_port"], -1);
    assert_eq!(json["endpoints"], json!(["PLAINTEXT://h1:9092"]));
    assert_eq!(
        json["listener_security_protocol_map"],
        json!({"PLAINTEXT": "PLAINTEXT"})
    );
    assert_eq!(json["features"], json!({}));
    assert_eq!(json["rack"], "r1");
    assert!(
        json["timestamp"]
            .as_str()
            .is_some_and(|t| t.parse::<i64>().is_ok()),
        "timestamp is a string of ms: {json}"
    );
    let broker = zk.get_broker(1).await.expect("read").expect("registered");
    assert_eq!(broker.czxid, epoch);
    assert_eq!(broker.value.rack.as_deref(), Some("r1"));

    // Topic with config.
    let assignment = TopicAssignment::new(BTreeMap::from([(0, vec![1, 2]), (1, vec![2, 1])]));
    let config = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
    zk.create_topic("orders", &assignment, &config)
        .await
        .expect("create topic");
    let json = raw_json(&zk, "/brokers/topics/orders").await;
    assert_eq!(json["version"], 3);
    assert_eq!(json["partitions"], json!({"0": [1, 2], "1": [2, 1]}));
    assert_eq!(json["adding_replicas"], json!({}));
    assert_eq!(json["removing_replicas"], json!({}));
    assert_eq!(json["topic_id"].as_str().map(str::len), Some(22));
    assert_eq!(
        raw_json(&zk, "/config/topics/orders").await,
        json!({"version": 1, "config": {"retention.ms": "1000"}})
    );
    assert!(matches!(
        zk.create_topic("orders", &assignment, &config).await,
        Err(ZkError::NodeExists { .. })
    ));

    // Controller and its epoch.
    let won = zk
        .try_elect_controller(1)
        .await
        .expect("elect")
        .expect("sole candidate wins");
    assert_eq!(won.epoch, 1);
    let json = raw_json(&zk, "/controller").await;
    assert_eq!(json["version"], 2);
    assert_eq!(json["brokerid"], 1);
    assert_eq!(json["kraftControllerEpoch"], -1);
    assert!(json["timestamp"].is_string());
    let (epoch_bytes, _) = zk
        .get_raw("/controller_epoch")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(epoch_bytes, b"1");

    // Partition state (fenced by the controller epoch).
    let mut state = PartitionState::new(1, 0, vec![1, 2], won.epoch);
    zk.create_partition_state("orders", 0, &state, Some(&won))
        .await
        .expect("create state");
    assert_eq!(
        raw_json(&zk, &paths::partition_state("orders", 0)).await,
        json!({"version": 1, "leader": 1, "leader_epoch": 0, "isr": [1, 2], "controller_epoch": 1})
    );
    state.leader_recovery_state = LEADER_RECOVERY_STATE_RECOVERING;
    zk.set_partition_state("orders", 0, &state, 0, Some(&won))
        .await
        .expect("set state");
    assert_eq!(
        raw_json(&zk, &paths::partition_state("orders", 0)).await["leader_recovery_state"],
        1
    );

    // Config change notification, delete marker, cluster id, producer ids, seqid.
    let name = zk
        .set_topic_config("orders", &BTreeMap::new())
        .await
        .expect("alter config");
    assert_eq!(name, "config_change_0000000000");
    assert_eq!(
        raw_json(&zk, "/config/changes/config_change_0000000000").await,
        json!({"version": 2, "entity_path": "topics/orders"})
    );
    assert!(zk.mark_topic_for_deletion("orders").await.expect("mark"));
    assert!(!zk
        .mark_topic_for_deletion("orders")
        .await
        .expect("mark again"));
    let cluster_id = zk.get_or_create_cluster_id().await.expect("cluster id");
    assert_eq!(
        raw_json(&zk, "/cluster/id").await,
        json!({"version": "1", "id": cluster_id})
    );
    assert_eq!(
        zk.get_or_create_cluster_id().await.expect("same id"),
        cluster_id
    );
    let block = zk
        .allocate_producer_id_block(1, 1000)
        .await
        .expect("pid block");
    assert_eq!((block.block_start, block.block_end), (0, 999));
    let block = zk
        .allocate_producer_id_block(2, 1000)
        .await
        .expect("pid block");
    assert_eq!((block.block_start, block.block_end), (1000, 1999));
    assert_eq!(
        raw_json(&zk, "/latest_producer_id_block").await,
        json!({"version": 1, "broker": 2, "block_start": "1000", "block_end": "1999"})
    );
    assert_eq!(zk.generate_broker_id(1000).await.expect("seqid"), 1001);
    assert_eq!(zk.generate_broker_id(1000).await.expect("seqid"), 1002);

    // ZooKeeper's own CLI: paths, modes (ephemeral vs persistent) and payloads.
    assert_ne!(
        cli_ephemeral_owner("/layout/brokers/ids/1").await,
        "0x0",
        "broker znode is ephemeral"
    );
    assert_ne!(
        cli_ephemeral_owner("/layout/controller").await,
        "0x0",
        "controller znode is ephemeral"
    );
    for persistent in [
        "/layout/brokers/topics/orders",
        "/layout/controller_epoch",
        "/layout/config/topics/orders",
        "/layout/admin/delete_topics/orders",
        "/layout/cluster/id",
        "/layout/brokers/seqid",
    ] {
        assert_eq!(
            cli_ephemeral_owner(persistent).await,
            "0x0",
            "{persistent} is persistent"
        );
    }
    assert_eq!(cli_get("/layout/controller_epoch").await, "1");
    let state: Value =
        serde_json::from_str(&cli_get("/layout/brokers/topics/orders/partitions/0/state").await)
            .expect("zkCli prints the JSON");
    assert_eq!(state["leader"], 1);
    let broker: Value = serde_json::from_str(&cli_get("/layout/brokers/ids/1").await)
        .expect("zkCli prints the JSON");
    assert_eq!(broker["endpoints"], json!(["PLAINTEXT://h1:9092"]));

    // Deletion by the controller removes the topic's znodes.
    zk.delete_topic_znodes("orders", Some(&won))
        .await
        .expect("delete topic");
    assert!(zk
        .get_topic_assignment("orders")
        .await
        .expect("read")
        .is_none());
    assert!(zk
        .list_topics_marked_for_deletion()
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn stale_zk_version_is_rejected() {
    let zk = connect("/stale").await;
    let state = PartitionState::new(1, 0, vec![1], 1);
    zk.create_partition_state("t", 0, &state, None)
        .await
        .expect("create");
    let current = zk
        .get_partition_state("t", 0)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(current.zk_version, 0);
    let next = PartitionState::new(2, 1, vec![2], 1);
    assert_eq!(
        zk.set_partition_state("t", 0, &next, 0, None)
            .await
            .expect("set at version 0"),
        1
    );
    let err = zk
        .set_partition_state("t", 0, &next, 0, None)
        .await
        .expect_err("stale version");
    assert!(
        matches!(
            err,
            ZkError::BadVersion {
                expected: Some(0),
                ..
            }
        ),
        "{err:?}"
    );
    let stored = zk
        .get_partition_state("t", 0)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (
            stored.value.leader,
            stored.value.leader_epoch,
            stored.zk_version
        ),
        (2, 1, 1)
    );

    // A write fenced by an old controller epoch fails with ControllerMoved and changes nothing.
    let old = zk
        .try_elect_controller(1)
        .await
        .expect("elect")
        .expect("won");
    zk.resign_controller().await.expect("resign");
    let new = zk
        .try_elect_controller(2)
        .await
        .expect("elect")
        .expect("won");
    assert_eq!(new.epoch, old.epoch + 1);
    let err = zk
        .set_partition_state("t", 0, &state, 1, Some(&old))
        .await
        .expect_err("fenced");
    assert!(matches!(err, ZkError::ControllerMoved { .. }), "{err:?}");
    zk.set_partition_state("t", 0, &state, 1, Some(&new))
        .await
        .expect("current controller may write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn controller_election_has_one_winner_and_bumps_the_epoch() {
    let a = connect("/election").await;
    let b = connect("/election").await;
    let (ra, rb) = tokio::join!(a.try_elect_controller(1), b.try_elect_controller(2));
    let (ra, rb) = (ra.expect("a elects"), rb.expect("b elects"));
    assert!(
        ra.is_some() ^ rb.is_some(),
        "exactly one winner: {ra:?} {rb:?}"
    );
    let (winner, loser, loser_id, first) = match ra {
        Some(epoch) => (a, b, 2, epoch),
        None => (b, a, 1, rb.expect("b won")),
    };
    assert_eq!(first.epoch, 1);
    assert_eq!(
        loser.try_elect_controller(loser_id).await.expect("retry"),
        None,
        "controller is taken"
    );
    let current = loser
        .get_controller()
        .await
        .expect("read")
        .expect("controller exists");
    assert_eq!(current.value.brokerid, 3 - loser_id);

    // The winner's session closes: /controller goes away and the other broker takes over.
    let mut controller = loser.watch_data(paths::CONTROLLER);
    assert!(matches!(
        controller.recv().await,
        Some(ZkEvent::Data { data: Some(_), .. })
    ));
    drop(winner);
    let deleted = tokio::time::timeout(Duration::from_secs(10), controller.recv())
        .await
        .expect("watch fires");
    assert!(
        matches!(deleted, Some(ZkEvent::Data { data: None, .. })),
        "{deleted:?}"
    );
    let second = loser
        .try_elect_controller(loser_id)
        .await
        .expect("elect")
        .expect("now wins");
    assert_eq!(second.epoch, 2);
    assert_eq!(
        loser.get_controller_epoch().await.expect("read"),
        Some(second)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn broker_znode_is_ephemeral_and_refuses_a_second_owner() {
    let observer = connect("/ephemeral").await;
    let mut ids = observer.watch_children(paths::BROKER_IDS);
    assert_eq!(
        ids.recv().await,
        Some(ZkEvent::Children {
            path: paths::BROKER_IDS.into(),
            children: vec![]
        })
    );

    let broker = connect("/ephemeral").await;
    let registration = BrokerRegistration::new(7, &[plaintext("h7", 9092)], None);
    let epoch = broker
        .register_broker(&registration)
        .await
        .expect("register");
    // (/brokers/ids itself is created first: an intermediate empty list may come before.)
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ids.recv().await {
                Some(ZkEvent::Children { children, .. }) if children == ["7"] => return,
                Some(ZkEvent::Children { children, .. }) if children.is_empty() => continue,
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await
    .expect("child watch fires");

    // Same id from another session: refused.
    let err = observer
        .register_broker(&registration)
        .await
        .expect_err("id in use");
    assert!(
        matches!(err, ZkError::BrokerIdInUse { broker_id: 7, .. }),
        "{err:?}"
    );

    // Session expiry and re-registration: `expired_session_is_replaced_and_the_broker_re_registers`.
    assert!(epoch > 0, "the broker epoch is the znode czxid: {epoch}");

    // Closing the session removes the ephemeral znode.
    drop(broker);
    eventually("broker 7 to disappear", Duration::from_secs(10), || async {
        observer.get_broker(7).await.expect("read").is_none()
    })
    .await;
    assert_eq!(
        observer.list_broker_ids().await.expect("list"),
        Vec::<i32>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn chroot_is_created_and_isolates_paths() {
    let chroot = format!("/chroot-{}/kafka", new_kafka_uuid().replace('-', "_"));
    let zk = connect(&chroot).await;
    zk.ensure_persistent_paths().await.expect("paths");
    zk.create_topic(
        "t",
        &TopicAssignment::new(BTreeMap::from([(0, vec![1])])),
        &BTreeMap::new(),
    )
    .await
    .expect("create");
    assert_eq!(zk.list_topics().await.expect("list"), vec!["t".to_owned()]);
    let root = connect("").await;
    assert!(root
        .get_raw(&format!("{chroot}/brokers/topics/t"))
        .await
        .expect("read")
        .is_some());
    assert!(root
        .get_raw("/brokers/topics/t")
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        cli_ephemeral_owner(&format!("{chroot}/brokers/topics/t")).await,
        "0x0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn recursive_watch_reports_descendants() {
    let zk = connect("/recursive").await;
    zk.create_recursive(paths::BROKER_TOPICS)
        .await
        .expect("mkdir");
    let mut events = zk
        .watch_recursive(paths::BROKER_TOPICS)
        .await
        .expect("watch");
    zk.create_topic(
        "w",
        &TopicAssignment::new(BTreeMap::from([(0, vec![1])])),
        &BTreeMap::new(),
    )
    .await
    .expect("create");
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("event");
    assert_eq!(
        event,
        Some(ZkEvent::NodeCreated {
            path: "/brokers/topics/w".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn expired_session_is_replaced_and_the_broker_re_registers() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let observer = connect("/expiry").await;
    let broker = connect("/expiry").await;
    let registration = BrokerRegistration::new(9, &[plaintext("h9", 9092)], None);
    let first_epoch = broker
        .register_broker(&registration)
        .await
        .expect("register");
    let mut events = broker.session_events();
    let started = Instant::now();
    broker
        .expire_session_for_tests()
        .await
        .expect("steal and close the session");
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            if event == gregor_zk::SessionEvent::Expired {
                return;
            }
        }
        panic!("session events ended without Expired");
    })
    .await
    .expect("the broker's client sees its session expire");
    eprintln!("session expired {:?} after the steal", started.elapsed());
    assert!(broker.get_broker(9).await.is_err(), "old session is dead");
    eventually(
        "the old ephemeral to go",
        Duration::from_secs(10),
        || async { observer.get_broker(9).await.expect("read").is_none() },
    )
    .await;

    let renewed = broker.reconnect().await.expect("new session");
    assert_ne!(renewed.session_id(), broker.session_id());
    let second_epoch = renewed
        .register_broker(&registration)
        .await
        .expect("re-register");
    assert!(
        second_epoch > first_epoch,
        "new broker epoch {second_epoch} > {first_epoch}"
    );
    let seen = observer
        .get_broker(9)
        .await
        .expect("read")
        .expect("registered");
    assert_eq!(seen.czxid, second_epoch);
    assert_eq!(seen.ephemeral_owner, renewed.session_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a ZooKeeper server (Debian zookeeper package): scripts/test.sh runs it"]
async fn log_dir_events_are_kafkas_sequential_znodes_and_deletion_is_fenced() {
    let zk = connect("/log_dir_events").await;
    // The parent is created on demand (a broker may write before any controller ran).
    let first = zk.announce_log_dir_failure(2).await.expect("announce");
    let second = zk.announce_log_dir_failure(3).await.expect("announce");
    assert_eq!(first, "log_dir_event_0000000000");
    assert_eq!(second, "log_dir_event_0000000001");
    assert_eq!(
        zk.list_log_dir_events().await.expect("list"),
        vec![first.clone(), second.clone()]
    );
    // Read back by ZooKeeper's own CLI: Kafka's JSON.
    let text = cli_get(&format!(
        "/log_dir_events/log_dir_event_notification/{first}"
    ))
    .await;
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(json, serde_json::json!({"version":1,"broker":2,"event":1}));
    assert_eq!(
        zk.get_log_dir_event(&second)
            .await
            .expect("read")
            .map(|e| e.broker),
        Some(3)
    );

    // Deletion is the controller's, fenced by its epoch: a deposed one deletes nothing.
    let fence = zk
        .try_elect_controller(1)
        .await
        .expect("elect")
        .expect("wins");
    let stale = gregor_zk::ControllerEpoch {
        epoch: fence.epoch - 1,
        zk_version: fence.zk_version - 1,
    };
    let err = zk.delete_log_dir_event(&first, &stale).await.unwrap_err();
    assert!(matches!(err, ZkError::ControllerMoved { .. }), "{err:?}");
    assert_eq!(zk.list_log_dir_events().await.expect("list").len(), 2);
    zk.delete_log_dir_event(&first, &fence)
        .await
        .expect("delete");
    // Already gone is fine (a controller that handled it and lost the answer).
    zk.delete_log_dir_event(&first, &fence)
        .await
        .expect("again");
    assert_eq!(zk.list_log_dir_events().await.expect("list"), vec![second]);
    assert_eq!(zk.get_log_dir_event(&first).await.expect("read"), None);
}
