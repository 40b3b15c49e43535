//! Several `log.dirs`, Kafka's JBOD model: partitions spread over the directories and stay
//! where they are, each directory keeps its own checkpoints and clean-shutdown marker, a
//! partition found in two directories stops the start, and a failed disk takes only its own
//! directory offline (KAFKA_STORAGE_ERROR there, the others served) until it is repaired.
//!
//! The failed disk is `crashfs` (tests/power_loss/crashfs.rs) told to answer every request
//! with EIO: those tests need /dev/fuse and root, and `scripts/test.sh` skips them loudly
//! (`failed_disk` in their names) where the machine has no FUSE.

mod common;
#[path = "power_loss/crashfs.rs"]
#[allow(dead_code)] // the power-loss parts
mod crashfs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    name, partitions_in, produce_to, try_create_topic, try_produce, try_read_keyed, BrokerProcess,
    Client,
};
use crashfs::CrashDisk;
use gregor_protocol::kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use gregor_protocol::kafka_protocol::messages::{DescribeLogDirsRequest, MetadataRequest};

const KAFKA_STORAGE_ERROR: i16 = 56;
const LEADER_NOT_AVAILABLE: i16 = 5;

/// One acks=all record keyed `<topic>-<partition>-<n>`: (error code, base offset).
fn produce_one(c: &mut Client, topic: &str, partition: i32, n: i64) -> (i16, i64) {
    produce_to(
        c,
        topic,
        partition,
        &[(&format!("{topic}-{partition}-{n}"), "v")],
    )
}

/// (error code, keys from offset 0 on, at dense offsets) of one partition.
fn fetch_keys(c: &mut Client, topic: &str, partition: i32) -> (i16, Vec<String>) {
    match try_read_keyed(c, topic, partition) {
        Ok(records) => {
            let offsets: Vec<i64> = records.iter().map(|(o, _)| *o).collect();
            assert_eq!(offsets, (0..records.len() as i64).collect::<Vec<_>>());
            (0, records.into_iter().map(|(_, k)| k).collect())
        }
        Err(code) => (code, Vec::new()),
    }
}

fn expected_keys(topic: &str, partition: i32, n: i64) -> Vec<String> {
    (0..n).map(|i| format!("{topic}-{partition}-{i}")).collect()
}

/// The partitions of `topic` whose directories are in `log_dir`.
/// One directory as DescribeLogDirs answers it: (error code, path, [(topic, partition,
/// size)], total bytes, usable bytes).
type DescribedDir = (i16, String, Vec<(String, i32, i64)>, i64, i64);

fn describe_log_dirs(
    c: &mut Client,
    version: i16,
    topics: Option<&[(&str, &[i32])]>,
) -> Vec<DescribedDir> {
    let req = DescribeLogDirsRequest::default().with_topics(topics.map(|t| {
        t.iter()
            .map(|(name_, partitions)| {
                DescribableLogDirTopic::default()
                    .with_topic(name(name_))
                    .with_partitions(partitions.to_vec())
            })
            .collect()
    }));
    c.call(version, &req)
        .results
        .into_iter()
        .map(|r| {
            let mut held: Vec<(String, i32, i64)> = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.to_string(), p.partition_index, p.partition_size))
                })
                .collect();
            held.sort();
            (
                r.error_code,
                r.log_dir.to_string(),
                held,
                r.total_bytes,
                r.usable_bytes,
            )
        })
        .collect()
}

/// Bytes in the `.log` files of partition directory `dir`.
fn segment_bytes(dir: &Path) -> i64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len() as i64)
        .sum()
}

fn log_dirs_override(dirs: &[PathBuf]) -> String {
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    format!("log.dirs={}", list.join(","))
}

#[test]
fn partitions_spread_over_log_dirs_and_each_dir_keeps_its_own_state() {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|d| root.path().join(d))
        .collect();
    let dirs_override = log_dirs_override(&dirs);
    let mut broker = BrokerProcess::start_in(&root.path().join("unused"), &[&dirs_override]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "spread", 6, &[]), 0);
    for d in &dirs {
        assert_eq!(partitions_in(d, "spread").len(), 2, "{}", d.display());
    }
    assert_eq!(try_create_topic(&mut c, "more", 3, &[]), 0);
    for d in &dirs {
        assert_eq!(partitions_in(d, "more").len(), 1, "{}", d.display());
    }
    for p in 0..6 {
        assert_eq!(produce_one(&mut c, "spread", p, 0), (0, 0));
    }
    // One identity in every directory.
    let cluster_ids: Vec<String> = dirs
        .iter()
        .map(|d| {
            let text = std::fs::read_to_string(d.join("meta.properties")).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("cluster.id="))
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(cluster_ids.iter().all(|id| *id == cluster_ids[0]));
    // DescribeLogDirs (kafka-log-dirs.sh): each directory with exactly its partitions and
    // their sizes on disk.
    let described = describe_log_dirs(&mut c, 4, None);
    assert_eq!(described.len(), 3);
    for (d, (error, path, held, total, usable)) in dirs.iter().zip(&described) {
        assert_eq!(
            (*error, path.as_str()),
            (0, d.display().to_string().as_str())
        );
        let mut want: Vec<(String, i32, i64)> = ["more", "spread"]
            .iter()
            .flat_map(|t| {
                partitions_in(d, t).into_iter().map(move |p| {
                    let size = segment_bytes(&d.join(format!("{t}-{p}")));
                    (t.to_string(), p, size)
                })
            })
            .collect();
        want.sort();
        assert_eq!(*held, want, "{}", d.display());
        assert!(*total > 0 && *usable > 0 && usable <= total);
    }
    assert!(described
        .iter()
        .flat_map(|d| &d.2)
        .any(|(_, _, size)| *size > 0));
    // v1, for one partition: only its directory lists it.
    let one = describe_log_dirs(&mut c, 1, Some(&[("spread", &[3])]));
    let listed: Vec<&(String, i32, i64)> = one.iter().flat_map(|d| &d.2).collect();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].0.as_str(), listed[0].1), ("spread", 3));
    drop(c);
    assert!(broker.stop());
    // Each directory: its own marker, and checkpoints naming exactly its partitions.
    for d in &dirs {
        assert!(d.join(".kafka_cleanshutdown").exists(), "{}", d.display());
        let text = std::fs::read_to_string(d.join("recovery-point-offset-checkpoint")).unwrap();
        let mut listed: Vec<String> = text
            .lines()
            .skip(2)
            .map(|l| {
                let mut f = l.split(' ');
                format!("{}-{}", f.next().unwrap(), f.next().unwrap())
            })
            .collect();
        listed.sort();
        let mut held: Vec<String> = partitions_in(d, "spread")
            .iter()
            .map(|p| format!("spread-{p}"))
            .chain(partitions_in(d, "more").iter().map(|p| format!("more-{p}")))
            .collect();
        held.sort();
        assert_eq!(listed, held, "{}", d.display());
    }
    let before: Vec<Vec<i32>> = dirs.iter().map(|d| partitions_in(d, "spread")).collect();
    broker.restart();
    let mut c = broker.client();
    for p in 0..6 {
        assert_eq!(
            fetch_keys(&mut c, "spread", p),
            (0, expected_keys("spread", p, 1))
        );
        assert_eq!(produce_one(&mut c, "spread", p, 1), (0, 1));
    }
    drop(c);
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    for p in 0..6 {
        assert_eq!(
            fetch_keys(&mut c, "spread", p),
            (0, expected_keys("spread", p, 2))
        );
    }
    let after: Vec<Vec<i32>> = dirs.iter().map(|d| partitions_in(d, "spread")).collect();
    assert_eq!(before, after, "partitions stay where they are");
    drop(c);
    assert!(broker.stop());
    // A partition directory in two log directories: the start stops and names both.
    let (held_in, p) = (&dirs[0], before[0][0]);
    let copy = dirs[1].join(format!("spread-{p}"));
    std::fs::create_dir(&copy).unwrap();
    let log = broker
        .try_restart()
        .expect_err("a duplicate must stop the start");
    assert!(
        log.contains("two log directories")
            && log.contains(&held_in.join(format!("spread-{p}")).display().to_string())
            && log.contains(&copy.display().to_string()),
        "{log}"
    );
    std::fs::remove_dir(&copy).unwrap();
    broker.restart();
    let mut c = broker.client();
    assert_eq!(
        fetch_keys(&mut c, "spread", p),
        (0, expected_keys("spread", p, 2))
    );
}

/// Metadata's view of one partition: (error code, leader, offline replicas).
fn partition_metadata(c: &mut Client, topic: &str, partition: i32) -> (i16, i32, Vec<i32>) {
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    let t = md
        .topics
        .iter()
        .find(|t| t.name == Some(name(topic)))
        .unwrap();
    let p = &t.partitions[partition as usize];
    let offline = p.offline_replicas.iter().map(|r| **r).collect();
    (p.error_code, *p.leader_id, offline)
}

#[test]
fn a_log_dir_unreadable_at_start_leaves_its_partitions_offline_never_recreated_empty() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let dirs_override = log_dirs_override(&[a.clone(), b.clone()]);
    let mut broker = BrokerProcess::start_in(&root.path().join("unused"), &[&dirs_override]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "t", 2, &[]), 0);
    let (in_a, in_b) = (partitions_in(&a, "t"), partitions_in(&b, "t"));
    assert_eq!((in_a.len(), in_b.len()), (1, 1));
    for p in 0..2 {
        assert_eq!(produce_one(&mut c, "t", p, 0), (0, 0));
    }
    drop(c);
    assert!(broker.stop());

    // b cannot be read (a file where the directory was): the broker serves a, and b's
    // partition is offline, not created empty in a.
    let saved = root.path().join("b.saved");
    std::fs::rename(&b, &saved).unwrap();
    std::fs::write(&b, b"not a directory").unwrap();
    broker.restart();
    let mut c = broker.client();
    assert_eq!(
        fetch_keys(&mut c, "t", in_a[0]),
        (0, expected_keys("t", in_a[0], 1))
    );
    assert_eq!(
        partition_metadata(&mut c, "t", in_b[0]),
        (LEADER_NOT_AVAILABLE, -1, vec![0])
    );
    assert_eq!(
        produce_one(&mut c, "t", in_b[0], 1).0,
        6,
        "NOT_LEADER_OR_FOLLOWER"
    );
    assert_eq!(partitions_in(&a, "t"), in_a, "nothing recreated in a");
    assert!(
        broker.log().contains("log directory cannot be used"),
        "{}",
        broker.log()
    );
    drop(c);
    assert!(broker.stop());

    // Repaired: both partitions, with their data.
    std::fs::remove_file(&b).unwrap();
    std::fs::rename(&saved, &b).unwrap();
    broker.restart();
    let mut c = broker.client();
    for p in 0..2 {
        assert_eq!(fetch_keys(&mut c, "t", p), (0, expected_keys("t", p, 1)));
        assert_eq!(partition_metadata(&mut c, "t", p), (0, 0, vec![]));
    }
}

/// A crashfs disk mounted at `root/bad`, and a good directory beside it. The disk must be
/// bound before the broker: dropped after it, it is unmounted once the broker is gone.
fn good_dir_and_crashfs(root: &Path) -> (CrashDisk, PathBuf, PathBuf) {
    let good = root.join("good");
    let bad = root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let disk = CrashDisk::mount(&bad).expect("mounting crashfs (needs /dev/fuse and root)");
    (disk, good, bad)
}

#[test]
#[ignore = "needs /dev/fuse and root to mount: scripts/test.sh runs it"]
fn a_failed_disk_takes_its_log_dir_offline_and_the_broker_serves_the_others() {
    let root = tempfile::tempdir().unwrap();
    let (disk, good, bad) = good_dir_and_crashfs(root.path());
    let dirs_override = log_dirs_override(&[good.clone(), bad.clone()]);
    let mut broker = BrokerProcess::start_in(&root.path().join("unused"), &[&dirs_override]);
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "t", 4, &[]), 0);
    let (on_good, on_bad) = (partitions_in(&good, "t"), partitions_in(&bad, "t"));
    assert_eq!((on_good.len(), on_bad.len()), (2, 2));
    for p in 0..4 {
        assert_eq!(produce_one(&mut c, "t", p, 0), (0, 0));
    }

    disk.set_failing(true);
    // The first write there meets EIO and takes the directory offline; the other
    // directory's partitions go on.
    for &p in &on_good {
        assert_eq!(produce_one(&mut c, "t", p, 1), (0, 1));
    }
    for &p in &on_bad {
        assert_eq!(
            produce_one(&mut c, "t", p, 1).0,
            KAFKA_STORAGE_ERROR,
            "t-{p}"
        );
        assert_eq!(fetch_keys(&mut c, "t", p), (KAFKA_STORAGE_ERROR, vec![]));
    }
    for &p in &on_good {
        assert_eq!(fetch_keys(&mut c, "t", p), (0, expected_keys("t", p, 2)));
    }
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    let t = md
        .topics
        .iter()
        .find(|t| t.name == Some(name("t")))
        .unwrap();
    for part in &t.partitions {
        let p = part.partition_index;
        if on_bad.contains(&p) {
            assert_eq!(part.error_code, LEADER_NOT_AVAILABLE, "t-{p}");
            assert_eq!(*part.leader_id, -1);
            assert_eq!(
                part.offline_replicas
                    .iter()
                    .map(|r| **r)
                    .collect::<Vec<_>>(),
                vec![0]
            );
        } else {
            assert_eq!((part.error_code, *part.leader_id), (0, 0), "t-{p}");
            assert!(part.offline_replicas.is_empty());
        }
    }
    let described = describe_log_dirs(&mut c, 4, None);
    assert_eq!(described[1].0, KAFKA_STORAGE_ERROR, "{}", described[1].1);
    assert!(described[1].2.is_empty());
    assert_eq!(described[0].0, 0);
    let on_good_listed: Vec<i32> = described[0].2.iter().map(|(_, p, _)| *p).collect();
    assert_eq!(on_good_listed, on_good);
    assert!(
        broker.log().contains("log directory failed")
            && broker.log().contains(&bad.display().to_string()),
        "{}",
        broker.log()
    );
    // New partitions go to the directory that is left.
    assert_eq!(try_create_topic(&mut c, "after", 2, &[]), 0);
    assert_eq!(partitions_in(&good, "after"), vec![0, 1]);
    assert_eq!(produce_one(&mut c, "after", 1, 0), (0, 0));
    drop(c);
    assert!(broker.stop());
    assert!(good.join(".kafka_cleanshutdown").exists());

    // Repaired: everything acknowledged is there, in both directories.
    disk.set_failing(false);
    assert!(!bad.join(".kafka_cleanshutdown").exists());
    broker.restart();
    let mut c = broker.client();
    for &p in &on_bad {
        assert_eq!(fetch_keys(&mut c, "t", p), (0, expected_keys("t", p, 1)));
        assert_eq!(produce_one(&mut c, "t", p, 1), (0, 1));
    }
    for &p in &on_good {
        assert_eq!(fetch_keys(&mut c, "t", p), (0, expected_keys("t", p, 2)));
    }
    assert_eq!(
        fetch_keys(&mut c, "after", 1),
        (0, expected_keys("after", 1, 1))
    );
    drop(c);
    assert!(broker.stop());
    drop(disk);
}

#[test]
#[ignore = "needs /dev/fuse and root to mount: scripts/test.sh runs it"]
fn a_failed_disk_that_was_the_last_log_dir_halts_the_broker() {
    let root = tempfile::tempdir().unwrap();
    let bad = root.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let disk = CrashDisk::mount(&bad).expect("mounting crashfs (needs /dev/fuse and root)");
    let mut broker = BrokerProcess::start_in(
        &root.path().join("unused"),
        &[&log_dirs_override(std::slice::from_ref(&bad))],
    );
    let mut c = broker.client();
    assert_eq!(try_create_topic(&mut c, "t", 1, &[]), 0);
    assert_eq!(produce_one(&mut c, "t", 0, 0), (0, 0));
    disk.set_failing(true);
    // The request that meets the failure gets no answer: the broker halts, as Kafka's does.
    let _ = try_produce(&mut c, "t", &[("k", "v")], 1_000);
    let status = broker
        .wait_exit(Duration::from_secs(10))
        .expect("the broker halts");
    assert_eq!(status.code(), Some(1));
    assert!(
        broker.log().contains("every log directory has failed"),
        "{}",
        broker.log()
    );
    disk.set_failing(false);
    broker.restart();
    let mut c = broker.client();
    assert_eq!(fetch_keys(&mut c, "t", 0), (0, expected_keys("t", 0, 1)));
    drop(c);
    assert!(broker.stop());
    drop(disk);
}
