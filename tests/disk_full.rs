//! A full disk, on a 24 MiB tmpfs mounted by the test: produces fail with
//! KAFKA_STORAGE_ERROR and a rate-limited ERROR names the directory and the free space, reads
//! go on, DeleteRecords and DeleteTopics free space and say so, writes resume, and the
//! broker shuts down cleanly afterwards.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{create_topic, name, produce, BrokerProcess, Client};
use gregor_protocol::kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use gregor_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::*;

const KAFKA_STORAGE_ERROR: i16 = 56;

/// Produces until the disk is full; the offsets acknowledged.
fn fill(c: &mut Client, topic: &str, value: &str) -> Vec<i64> {
    let mut acked = Vec::new();
    for _ in 0..10_000 {
        match produce(c, topic, &[("k", value)]) {
            (0, offset) => acked.push(offset),
            (KAFKA_STORAGE_ERROR, _) => return acked,
            (code, _) => panic!("unexpected produce error {code}"),
        }
    }
    panic!("the 24 MiB disk never filled");
}

fn fetch_first(c: &mut Client, topic: &str, offset: i64) -> (i16, usize) {
    let req = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let p = c.call(12, &req).responses[0].partitions[0].clone();
    (p.error_code, p.records.map_or(0, |r| r.len()))
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df's available bytes")
}

struct Tmpfs {
    mount: std::path::PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let parent = tempfile::tempdir().expect("tempdir");
        let mount = parent.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed (this test needs root)"
        );
        Tmpfs {
            mount,
            _parent: parent,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

#[test]
#[ignore = "needs root to mount a tmpfs: scripts/test.sh runs it"]
fn a_full_disk_fails_writes_loudly_serves_reads_and_frees_space_on_delete() {
    let disk = Tmpfs::mount("24m");
    let data = disk.mount.join("data");
    let mut broker = BrokerProcess::start_in(
        &data,
        &["log.segment.bytes=1048576", "log.cleaner.enable=false"],
    );
    let mut c = broker.client();
    create_topic(&mut c, "fills", &[]);
    let value = "x".repeat(16 * 1024);
    let acked = fill(&mut c, "fills", &value);
    assert!(acked.len() > 500, "only {} records fit", acked.len());
    assert_eq!(
        *acked.last().unwrap(),
        acked.len() as i64 - 1,
        "dense offsets"
    );
    // More failures, then the log: one ERROR naming the directory and the free space, not
    // one per failed request.
    for _ in 0..50 {
        assert_eq!(
            produce(&mut c, "fills", &[("k", &value)]).0,
            KAFKA_STORAGE_ERROR
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !broker.log().contains("log directory is full") {
        assert!(Instant::now() < deadline, "no ERROR: {}", broker.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = broker.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("log directory is full"))
        .collect();
    assert!(
        errors.len() <= 2,
        "{} ERROR lines: not rate-limited",
        errors.len()
    );
    assert!(
        errors[0].contains(&data.display().to_string()) && errors[0].contains("free_bytes"),
        "{}",
        errors[0]
    );
    // Reads go on.
    assert_eq!(fetch_first(&mut c, "fills", 0).0, 0);
    assert!(fetch_first(&mut c, "fills", 0).1 > 16 * 1024);

    // DeleteRecords frees the segments below the new start and answers success.
    let before = free_bytes(&disk.mount);
    let half = acked.len() as i64 / 2;
    let resp = c.call(
        2,
        &DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(name("fills"))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(half)])]),
    );
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "DeleteRecords on a full disk");
    assert_eq!(p.low_watermark, half);
    let freed = free_bytes(&disk.mount);
    assert!(
        freed > before + 8 * 1024 * 1024,
        "{before} -> {freed} bytes free"
    );
    // Writes resume where the log ended.
    assert_eq!(
        produce(&mut c, "fills", &[("k", &value)]),
        (0, acked.len() as i64)
    );

    // Fill again; DeleteTopics frees everything and answers success.
    fill(&mut c, "fills", &value);
    let before = free_bytes(&disk.mount);
    let resp = c.call(
        6,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(name("fills")))
            ]),
    );
    assert_eq!(
        resp.responses[0].error_code, 0,
        "DeleteTopics on a full disk"
    );
    let after = free_bytes(&disk.mount);
    assert!(
        after > before + 16 * 1024 * 1024,
        "{before} -> {after} bytes free"
    );
    create_topic(&mut c, "after", &[]);
    assert_eq!(produce(&mut c, "after", &[("k", &value)]), (0, 0));
    drop(c);

    // Every log closes: a clean shutdown, marked as such.
    assert!(broker.stop());
    assert!(data.join(".kafka_cleanshutdown").exists());
}
