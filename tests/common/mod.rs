//! Shared by the integration tests: start the real `gregor` binary on a free port with a
//! temporary data directory, and speak the Kafka protocol to it over a raw socket.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use gregor_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, FetchRequest, ProduceRequest, RequestHeader, ResponseHeader,
    TopicName,
};
use gregor_protocol::kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request, StrBytes,
};
use gregor_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub struct BrokerProcess {
    pub port: u16,
    /// The Prometheus endpoint's port: 0 (off) unless the overrides set `metrics.port`.
    pub metrics_port: u16,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    overrides: Vec<String>,
    /// The open-file limit the broker runs under (util-linux `prlimit`), if not inherited.
    open_file_limit: Option<u32>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl BrokerProcess {
    pub fn start(overrides: &[&str]) -> BrokerProcess {
        Self::start_with(None, None, overrides)
    }

    /// A broker whose data directory is `dir` (which the caller owns).
    pub fn start_in(dir: &Path, overrides: &[&str]) -> BrokerProcess {
        Self::start_with(Some(dir), None, overrides)
    }

    /// A broker whose first listener is PLAINTEXT on `port`; the overrides (more listeners) come
    /// after it, so `listeners=PLAINTEXT://127.0.0.1:<port>,...` may add others.
    pub fn start_on_port(port: u16, overrides: &[&str]) -> BrokerProcess {
        Self::start_with_port(None, None, Some(port), overrides)
    }

    /// A broker whose soft and hard open-file limits are both `limit`.
    pub fn start_with_open_file_limit(limit: u32, overrides: &[&str]) -> BrokerProcess {
        Self::start_with(None, Some(limit), overrides)
    }

    /// A broker on a free port, in `dir` or a temporary directory of its own.
    fn start_with(
        dir: Option<&Path>,
        open_file_limit: Option<u32>,
        overrides: &[&str],
    ) -> BrokerProcess {
        Self::start_with_port(dir, open_file_limit, None, overrides)
    }

    fn start_with_port(
        dir: Option<&Path>,
        open_file_limit: Option<u32>,
        port: Option<u16>,
        overrides: &[&str],
    ) -> BrokerProcess {
        let tmp = match dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("tempdir")),
        };
        let dir = dir
            .map(Path::to_path_buf)
            .or_else(|| tmp.as_ref().map(|t| t.path().to_path_buf()))
            .expect("a data directory");
        // Brokers run side by side here: metrics only where a test asks for them, on the port
        // it chose (the default 9644 would be taken by the first).
        let metrics_port = overrides
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix("metrics.port="))
            .map_or(0, |p| p.parse().expect("metrics.port is a port"));
        let mut b = BrokerProcess {
            port: port.unwrap_or_else(free_port),
            metrics_port,
            dir,
            _tmp: tmp,
            child: None,
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            open_file_limit,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("broker did not start: {log}");
        }
    }

    /// Starts the broker process and waits until it listens; if it exits (or has not
    /// listened after 20 s) instead, its log.
    fn try_spawn(&mut self) -> Result<(), String> {
        let mut cmd = match self.open_file_limit {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg(env!("CARGO_BIN_EXE_gregor"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_gregor")),
        };
        cmd.arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port))
            .arg("--override")
            .arg(format!("log.dirs={}", self.dir.display()))
            .arg("--override")
            .arg("metrics.port=0");
        for o in &self.overrides {
            cmd.arg("--override").arg(o);
        }
        let log = std::fs::File::create(self.dir.with_extension("log")).expect("log file");
        cmd.stdout(Stdio::null()).stderr(log);
        self.child = Some(cmd.spawn().expect("spawn gregor"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                self.kill9();
                return Err(self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident memory of the broker process in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// SIGTERM and wait: a graceful shutdown. Returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        unsafe_kill(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (e.g. "STOP", "CONT") to the running broker.
    pub fn signal(&self, signal: &str) {
        unsafe_kill(self.pid(), signal);
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        self.spawn();
    }

    /// Restarts a stopped broker that may refuse to start: Err with its log if it exits.
    pub fn try_restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "stop the broker first");
        self.try_spawn()
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// One scrape of the broker's `/metrics` (started with `metrics.port`).
    pub fn scrape(&self) -> Scrape {
        assert_ne!(self.metrics_port, 0, "started without metrics.port");
        let (status, body) = http_get(self.metrics_port, "/metrics").expect("scrape /metrics");
        assert_eq!(status, 200, "GET /metrics answered {status}: {body}");
        Scrape::parse(&body)
    }

    /// The TCP ports the broker process listens on (from /proc: its sockets in LISTEN).
    pub fn listening_ports(&self) -> BTreeSet<u16> {
        let pid = self.pid();
        let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("the broker's fds")
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| {
                let l = l.to_string_lossy().into_owned();
                l.strip_prefix("socket:[")?
                    .strip_suffix(']')
                    .map(str::to_owned)
            })
            .collect();
        let mut ports = BTreeSet::new();
        for table in ["tcp", "tcp6"] {
            let text =
                std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                // local_address is hex ip:port; st 0A is LISTEN; the inode is column 9.
                if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                    if let Some(port) = cols[1]
                        .rsplit(':')
                        .next()
                        .and_then(|h| u16::from_str_radix(h, 16).ok())
                    {
                        ports.insert(port);
                    }
                }
            }
        }
        ports
    }
}

/// GET `path` from 127.0.0.1:`port` over HTTP/1.1 (Connection: close): status and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// A parsed Prometheus text exposition: every sample as (name, labels, value).
pub struct Scrape {
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a numeric sample");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closed labels");
                    let mut labels = BTreeMap::new();
                    // Label values here hold no commas or quotes (topic, group, request names).
                    for pair in body.split(',').filter(|p| !p.is_empty()) {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        labels.insert(k.to_string(), v.trim_matches('"').to_string());
                    }
                    (name.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// The sample of `name` whose labels are exactly `labels`, if there is one.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
    }

    /// `get`, or 0 for a series not there yet (a counter nothing has moved).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Whether any sample of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal Kafka client over a blocking socket.
pub struct Client {
    pub stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Client {
            stream,
            correlation: 0,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one response frame; None if the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        if self.stream.read_exact(&mut size).is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// True if the broker closes the connection (EOF or reset) within the read timeout.
    pub fn is_closed_by_broker(&mut self) -> bool {
        let mut buf = [0u8; 1];
        match self.stream.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }

    pub fn encode_request<R: Request>(&mut self, version: i16, req: &R) -> BytesMut {
        self.correlation += 1;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("gregor-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        req.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        frame
    }

    /// Sends a request and decodes its response, checking the correlation id.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.try_call(version, req)
            .expect("broker closed the connection or sent an undecodable response")
    }

    /// `call` for a broker that may die meanwhile: None if the request cannot be sent or
    /// no decodable response comes back.
    pub fn try_call<R: Request>(&mut self, version: i16, req: &R) -> Option<R::Response> {
        let frame = self.encode_request(version, req);
        self.stream.write_all(&frame).ok()?;
        let mut resp = self.read_frame()?;
        let header_version = R::Response::header_version(version);
        let header = ResponseHeader::decode(&mut resp, header_version).ok()?;
        assert_eq!(header.correlation_id, self.correlation);
        let decoded = R::Response::decode(&mut resp, version).ok()?;
        assert_eq!(resp.remaining(), 0, "trailing bytes in response");
        Some(decoded)
    }
}

/// Builds one uncompressed RecordBatch v2 with the given (key, value) records.
pub fn batch(records: &[(&str, &str)], producer: Option<(i64, i16, i32)>, base_ts: i64) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // One batch needs offset - sequence constant; no producer means base sequence -1.
            sequence: if seq >= 0 {
                seq + i as i32
            } else {
                i as i32 - 1
            },
            timestamp: base_ts + i as i64,
            key: Some(Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// A broker process expected to exit during start-up (a refused configuration, an id in
/// use, ...): spawned on a free port without waiting for it to listen.
pub struct FailingBroker {
    child: Option<Child>,
    log_path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl FailingBroker {
    pub fn spawn(overrides: &[&str]) -> FailingBroker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log_path = tmp.path().join("broker.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gregor"));
        cmd.arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", free_port()))
            .arg("--override")
            .arg(format!("log.dirs={}", tmp.path().join("data").display()))
            .arg("--override")
            .arg("metrics.port=0");
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        let log = std::fs::File::create(&log_path).expect("log file");
        cmd.stdout(Stdio::null()).stderr(log);
        FailingBroker {
            child: Some(cmd.spawn().expect("spawn gregor")),
            log_path,
            _tmp: tmp,
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for FailingBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A topic name for requests.
pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Creates a topic of `partitions` partitions (replication factor 1) with `configs`;
/// returns the topic's error code.
pub fn try_create_topic(
    c: &mut Client,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> i16 {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            )]);
    c.call(7, &req).topics[0].error_code
}

/// Creates a one-partition topic with `configs`; the request must succeed.
pub fn create_topic(c: &mut Client, topic: &str, configs: &[(&str, &str)]) {
    assert_eq!(try_create_topic(c, topic, 1, configs), 0);
}

/// (offset, key, value) of every record in a fetch answer.
pub fn records_of(bytes: &Bytes) -> Vec<(i64, String, String)> {
    let mut buf = bytes.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
    sets.into_iter()
        .flat_map(|s| s.records)
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect()
}

/// Produces one batch of (key, value) records to partition 0 with acks=all; returns
/// (error code, base offset).
pub fn produce(c: &mut Client, topic: &str, records: &[(&str, &str)]) -> (i16, i64) {
    produce_to(c, topic, 0, records)
}

/// Produces one batch of (key, value) records to `partition` with acks=all; returns
/// (error code, base offset).
pub fn produce_to(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: &[(&str, &str)],
) -> (i16, i64) {
    let req = produce_request(topic, partition, records, 1_000);
    let p = c.call(9, &req).responses[0].partition_responses[0].clone();
    (p.error_code, p.base_offset)
}

/// `produce` to a broker that may die meanwhile (records stamped from `base_ts`): None
/// once the connection is gone.
pub fn try_produce(
    c: &mut Client,
    topic: &str,
    records: &[(&str, &str)],
    base_ts: i64,
) -> Option<(i16, i64)> {
    let resp = c.try_call(9, &produce_request(topic, 0, records, base_ts))?;
    let p = &resp.responses[0].partition_responses[0];
    Some((p.error_code, p.base_offset))
}

fn produce_request(
    topic: &str,
    partition: i32,
    records: &[(&str, &str)],
    base_ts: i64,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(records, None, base_ts)))])])
}

/// Every record of `topic`'s partition 0 as (offset, key), read from offset 0 to the end;
/// each fetch must succeed and hold only whole, valid batches of keyed records.
pub fn read_keyed(c: &mut Client, topic: &str) -> Vec<(i64, String)> {
    try_read_keyed(c, topic, 0).unwrap_or_else(|code| panic!("fetch answered error {code}"))
}

/// `read_keyed` of any partition: Err with the error code of a fetch that failed.
pub fn try_read_keyed(
    c: &mut Client,
    topic: &str,
    partition: i32,
) -> Result<Vec<(i64, String)>, i16> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let req = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_max_bytes(50 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(10 << 20)])]);
        let resp = c.call(12, &req);
        let p = &resp.responses[0].partitions[0];
        if p.error_code != 0 {
            return Err(p.error_code);
        }
        let mut bytes: Bytes = p.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return Ok(out);
        }
        for set in RecordBatchDecoder::decode_all(&mut bytes).expect("only whole, valid batches") {
            for r in set.records {
                let key = r.key.expect("every record has a key").to_vec();
                out.push((r.offset, String::from_utf8(key).expect("a UTF-8 key")));
                offset = r.offset + 1;
            }
        }
    }
}

/// The partitions of `topic` whose directory is in `log_dir`, sorted (`<topic>-<n>`; a
/// directory being deleted or set aside does not parse). Panics if it cannot be listed.
pub fn partitions_in(log_dir: &Path, topic: &str) -> Vec<i32> {
    let mut found: Vec<i32> = std::fs::read_dir(log_dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", log_dir.display()))
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().to_string();
            file.strip_prefix(&format!("{topic}-"))?.parse().ok()
        })
        .collect();
    found.sort();
    found
}
