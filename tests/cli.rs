//! The `gregor` command-line client run as a subprocess against a real broker: topics
//! created, listed, described, reconfigured and deleted; records produced from stdin and
//! consumed back (from the start, an offset, a timestamp, a group's offsets); a group's
//! lag described, reset and the group deleted; Kafka's error names on failure; completions.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::BrokerProcess;

const TOPIC: &str = "cli-topic";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `gregor ARGS --bootstrap-server 127.0.0.1:PORT` with `stdin`.
fn gregor(broker: &BrokerProcess, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .arg("--bootstrap-server")
        .arg(format!("127.0.0.1:{}", broker.port))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gregor");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("gregor output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `gregor ARGS`, which must succeed; its stdout.
fn ok(broker: &BrokerProcess, args: &[&str], stdin: &str) -> String {
    let run = gregor(broker, args, stdin);
    assert_eq!(
        run.code, 0,
        "gregor {args:?} failed: stdout {}\nstderr {}",
        run.stdout, run.stderr
    );
    run.stdout
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// `group describe`'s rows: partition -> (committed, end, lag), and the total lag.
fn lag_of(out: &str) -> (BTreeMap<i64, (i64, i64, i64)>, i64) {
    let mut rows = BTreeMap::new();
    let mut total = None;
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&TOPIC) && cols.len() == 5 {
            let n = |i: usize| cols[i].parse::<i64>().expect("a number");
            rows.insert(n(1), (n(2), n(3), n(4)));
        }
        if let Some(t) = line.strip_prefix("total lag: ") {
            total = Some(t.trim().parse().expect("total lag"));
        }
    }
    (rows, total.expect("a total lag line"))
}

#[test]
fn the_command_line_client_against_a_real_broker() {
    let broker = BrokerProcess::start(&[]);

    // topic create / list / describe / alter-config
    let out = ok(
        &broker,
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            "3",
            "--config",
            "retention.ms=123456789",
        ],
        "",
    );
    assert!(out.contains(&format!("created {TOPIC}")), "{out}");
    let out = ok(&broker, &["topic", "list"], "");
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(TOPIC))
        .unwrap_or_else(|| panic!("{TOPIC} not listed: {out}"));
    assert_eq!(row.split_whitespace().nth(1), Some("3"), "{row}");

    let out = ok(&broker, &["topic", "describe", TOPIC], "");
    assert!(out.contains("partitions: 3\n"), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|c| c.len() == 4 && c[0].parse::<i32>().is_ok())
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    for (i, cols) in rows.iter().enumerate() {
        assert_eq!(cols[0], i.to_string());
        let leader = cols[1];
        assert_eq!(cols[2], format!("[{leader}]"), "replicas: {out}");
        assert_eq!(cols[3], format!("[{leader}]"), "isr: {out}");
    }
    assert!(
        out.contains("  retention.ms=123456789 (DYNAMIC_TOPIC_CONFIG)\n"),
        "{out}"
    );

    ok(
        &broker,
        &[
            "topic",
            "alter-config",
            TOPIC,
            "--set",
            "retention.ms=3600000",
        ],
        "",
    );
    let out = ok(&broker, &["topic", "describe", TOPIC], "");
    assert!(
        out.contains("  retention.ms=3600000 (DYNAMIC_TOPIC_CONFIG)\n"),
        "{out}"
    );
    ok(
        &broker,
        &["topic", "alter-config", TOPIC, "--delete", "retention.ms"],
        "",
    );
    let out = ok(&broker, &["topic", "describe", TOPIC], "");
    assert!(
        out.contains("  retention.ms=604800000 (DEFAULT_CONFIG)\n"),
        "{out}"
    );

    // An error names Kafka's error code and exits non-zero.
    let run = gregor(&broker, &["topic", "create", TOPIC], "");
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        run.stderr
    );

    // produce 100 keyed records with a header from stdin
    let input: String = (0..100).map(|i| format!("key-{i}\tvalue-{i}\n")).collect();
    let before_produce = now_ms();
    let out = ok(
        &broker,
        &[
            "produce",
            TOPIC,
            "--key-separator",
            "\t",
            "--header",
            "source=cli",
        ],
        &input,
    );
    assert!(out.contains("produced 100 records"), "{out}");

    // consume them back as JSON from the start: every key, value, header and offset
    let out = ok(
        &broker,
        &["consume", TOPIC, "--format", "json", "--offset", "start"],
        "",
    );
    let records = json_lines(&out);
    assert_eq!(records.len(), 100, "{out}");
    let mut seen = BTreeMap::new();
    let mut next_offset: BTreeMap<i64, i64> = BTreeMap::new();
    for r in &records {
        assert_eq!(r["topic"], TOPIC);
        let partition = r["partition"].as_i64().expect("partition");
        let offset = r["offset"].as_i64().expect("offset");
        let expected = next_offset.entry(partition).or_insert(0);
        assert_eq!(offset, *expected, "offsets in order without gaps: {r}");
        *expected += 1;
        let key = r["key"].as_str().expect("key");
        let i: u32 = key.strip_prefix("key-").expect("key-N").parse().expect("N");
        assert_eq!(r["value"], format!("value-{i}"));
        assert_eq!(
            r["headers"],
            serde_json::json!([{"key": "source", "value": "cli"}])
        );
        let ts = r["timestamp"].as_i64().expect("timestamp");
        assert!(ts >= before_produce && ts <= now_ms(), "timestamp {ts}");
        assert!(seen.insert(i, partition).is_none(), "key-{i} twice");
    }
    assert_eq!(seen.len(), 100);
    assert!(next_offset.len() > 1, "keys spread over partitions");
    // The same key always lands in the same partition (the default partitioner's hash).
    let one = ok(&broker, &["produce", TOPIC, "--key", "key-7"], "again\n");
    assert!(one.contains("produced 1 records"), "{one}");
    let p7 = seen[&7];
    let out = ok(
        &broker,
        &[
            "consume",
            TOPIC,
            "--partition",
            &p7.to_string(),
            "--offset",
            &next_offset[&p7].to_string(),
            "--print-key",
        ],
        "",
    );
    assert_eq!(out, "key-7\tagain\n");
    next_offset.entry(p7).and_modify(|o| *o += 1);

    // text format, an offset and --num
    let out = ok(
        &broker,
        &[
            "consume",
            TOPIC,
            "--partition",
            "0",
            "--offset",
            "2",
            "--num",
            "3",
            "--format",
            "json",
        ],
        "",
    );
    let offsets: Vec<i64> = json_lines(&out)
        .iter()
        .map(|r| r["offset"].as_i64().expect("offset"))
        .collect();
    assert_eq!(offsets, vec![2, 3, 4]);

    // a group: consume commits, describe shows lag 0, seek to start makes the lag the total
    let total: i64 = next_offset.values().sum();
    assert_eq!(total, 101);
    let out = ok(&broker, &["consume", TOPIC, "--group", "g"], "");
    assert_eq!(out.lines().count(), 101, "{out}");
    let out = ok(&broker, &["group", "describe", "g"], "");
    let (rows, lag) = lag_of(&out);
    assert_eq!(lag, 0, "{out}");
    assert_eq!(rows.len(), 3, "{out}");
    for (p, (committed, end, lag)) in &rows {
        assert_eq!(
            *committed,
            next_offset.get(p).copied().unwrap_or(0),
            "{out}"
        );
        assert_eq!(committed, end);
        assert_eq!(*lag, 0);
    }
    // Consuming again from the group's offsets prints nothing new.
    let out = ok(&broker, &["consume", TOPIC, "--group", "g"], "");
    assert_eq!(out, "");
    let out = ok(&broker, &["group", "list"], "");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().next() == Some("g")),
        "{out}"
    );

    ok(
        &broker,
        &["group", "seek", "g", "--topic", TOPIC, "--to", "start"],
        "",
    );
    let out = ok(&broker, &["group", "describe", "g"], "");
    let (rows, lag) = lag_of(&out);
    assert_eq!(lag, 101, "{out}");
    assert!(
        rows.values().all(|(committed, _, _)| *committed == 0),
        "{out}"
    );
    // From the group's offsets again: everything.
    let out = ok(
        &broker,
        &["consume", TOPIC, "--group", "g", "--num", "5"],
        "",
    );
    assert_eq!(out.lines().count(), 5, "{out}");
    let out = ok(&broker, &["group", "describe", "g"], "");
    assert_eq!(lag_of(&out).1, 96, "{out}");

    let out = ok(&broker, &["group", "delete", "g"], "");
    assert_eq!(out, "deleted g\n");
    let out = ok(&broker, &["group", "list"], "");
    assert!(
        !out.lines()
            .any(|l| l.split_whitespace().next() == Some("g")),
        "{out}"
    );

    // from a timestamp: only what was produced after it
    std::thread::sleep(Duration::from_millis(20));
    let later = now_ms();
    std::thread::sleep(Duration::from_millis(20));
    let late: String = (0..5).map(|i| format!("late-{i}\n")).collect();
    ok(&broker, &["produce", TOPIC, "--partition", "1"], &late);
    let out = ok(
        &broker,
        &["consume", TOPIC, "--timestamp", &later.to_string()],
        "",
    );
    assert_eq!(out, late);
    let out = ok(
        &broker,
        &[
            "consume",
            TOPIC,
            "--timestamp",
            &(now_ms() + 60_000).to_string(),
        ],
        "",
    );
    assert_eq!(out, "");

    // topic delete
    let out = ok(&broker, &["topic", "delete", TOPIC], "");
    assert_eq!(out, format!("deleted {TOPIC}\n"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(&broker, &["topic", "list"], "");
        if !out
            .lines()
            .any(|l| l.split_whitespace().next() == Some(TOPIC))
        {
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = gregor(&broker, &["topic", "describe", TOPIC], "");
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        run.stderr
    );
}

#[test]
fn produce_from_a_file_and_follow() {
    let broker = BrokerProcess::start(&[]);
    ok(
        &broker,
        &["topic", "create", "followed", "--partitions", "1"],
        "",
    );
    // --follow waits for records produced after it started (from the end).
    let mut follower = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args([
            "consume", "followed", "--offset", "end", "--follow", "--num", "3",
        ])
        .arg("--bootstrap-server")
        .arg(format!("127.0.0.1:{}", broker.port))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gregor consume");
    std::thread::sleep(Duration::from_millis(700));
    let path = broker.dir.with_extension("records");
    std::fs::write(&path, "one\ntwo\nthree\n").expect("records file");
    let out = ok(
        &broker,
        &[
            "produce",
            "followed",
            "--file",
            path.to_str().expect("a path"),
        ],
        "",
    );
    assert!(out.contains("produced 3 records"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while follower.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "--follow did not end after --num records"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = follower.wait_with_output().expect("consume output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\nthree\n");
}

#[test]
fn completions_and_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["completions", "bash"])
        .output()
        .expect("gregor completions");
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("_gregor()"), "{script}");
    assert!(script.contains("complete -F _gregor"), "{script}");
    for word in ["topic", "produce", "consume", "group", "alter-config"] {
        assert!(script.contains(word), "{word} missing from the completions");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["topic", "create"])
        .output()
        .expect("gregor topic create");
    assert_eq!(out.status.code(), Some(2), "a usage error");
}
