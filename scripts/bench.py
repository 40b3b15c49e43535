#!/usr/bin/env python3
"""scripts/bench: gregor against Apache Kafka on the same machine, in the same run.

Fetches Apache Kafka 4.x (broker and perf tools) from Maven Central once (bench/kafka/pom.xml
into target/bench/kafka-lib), builds the librdkafka load generator (bench/rdkafka_load.c,
Debian's librdkafka-dev), starts Kafka single-node in KRaft mode and gregor standalone, each
with a fresh data directory under one temp folder, and runs every workload against each in
turn, alternating brokers between repeats:

- throughput: rdkafka_load (C, librdkafka) producing then consuming, so the client is not
  the bottleneck; sizes, acks, partitions, producer counts, keyed or not;
- the broker's own limit: raw_load (bench/raw-load, Rust, built into target/release) sends one
  pre-encoded batch over and over (two connections, five requests in flight on each) and
  reads with bare Fetch requests, so no client does per-record work;
- Kafka's own ProducerPerformance and ConsumerPerformance (the JVM client of
  kafka-producer-perf-test / kafka-consumer-perf-test), the same client for both brokers;
- produce latency p50/p99/p99.9 at a fixed offered load (half of Kafka's maximum for that
  workload, measured earlier in the same run), end-to-end latency at fixed rates, and
  Kafka's own EndToEndLatency tool (one record at a time, JVM client);
- broker CPU seconds per GB moved and peak RSS, from /proc;
- transaction rows (full runs, or --only txn): 1 KB records, acks=all, 1 and 16 partitions,
  one transactional producer (rdkafka_load -T: its own transactional.id, begin, N records,
  flush, commit) committing every 100 records (200,000 records, 2,000 transactions) or every
  10,000 (1,000,000 records, 100 transactions): produce throughput, EndTxn latency p50/p99 (the
  rd_kafka_commit_transaction call after a flush, so its records are already acknowledged
  and the call is the EndTxn round trip and librdkafka's own hand-offs), read_committed
  consume throughput, CPU per GB and peak RSS; and an idempotent producer without transactions on the same topics' shape
  ("idempotent (txn baseline)", 500,000 records), so the transactional rows' ratios can be
  set against a baseline from the same run. Null keys (librdkafka's sticky partitioner): a
  transaction of 100 touches one or two of the 16 partitions, one of 10,000 all of them.
  The producer's start-up (init_transactions and the topic's metadata) is not timed. On
  Kafka the AddPartitionsToTxn that follows a commit is often answered
  CONCURRENT_TRANSACTIONS (its markers not yet written; about every other transaction of
  100 when this was written, none on gregor), and librdkafka (Debian's 2.0.2) retries it
  after about 20 ms: that wait, what any librdkafka user sees, is about half of Kafka's time
  in the transactions of 100. With --scale below 1 the 10,000 rows have few transactions: their
  p99 is then close to their maximum;
- TLS rows (full runs, or --only TLS): 1 KB, one partition, acks=1 and acks=all again with
  the clients on TLS (listener SSL) and on TLS with SASL/PLAIN (SASL_SSL), a fresh pair of
  brokers for each with the same listener settings (PEM key store, RSA 2048 certificate from
  a CA made here with openssl; TLS 1.3 negotiated): produce and consume throughput, broker CPU
  per GB, peak RSS, and produce latency at half of Kafka's maximum over that listener;
- full runs also: a large consume from the page cache and from cold segments (page cache
  dropped, where the kernel lets us), many partitions on one broker (create, RSS, Metadata
  time, clean restart, restart after kill -9), and 10,000 idle connections;
- cluster rows (full runs, or --cluster-only): three gregor brokers on one ZooKeeper against
  three Kafka nodes in KRaft combined mode, RF 3 and min.insync.replicas=2, acks=all and 1,
  1 KB and 100 B, 1 and 16 partitions: throughput, CPU per GB and RSS summed over the three
  brokers, produce latency at half of Kafka's maximum; one cluster runs at a time;
- physical limits in the same run: raw sequential disk write (with and without fdatasync)
  and loopback TCP bandwidth, with gregor's throughput as a fraction of them.

--gregor PATH measures that binary instead of target/release/gregor.

--with tansu adds Tansu (tansu-io, a Rust Kafka-compatible broker; the crate from the Rust
registry, built once into target/bench/tansu-<version>) to the plaintext single-node rows, as
two more brokers: its in-memory engine and its SQLite engine. It joins the raw_load and JVM
tool rows; Debian's librdkafka cannot read its ApiVersions answer (see start_tansu), so the
rdkafka_load rows leave it out. Each peer gets its own median and gregor's ratio to it
("peers" in results.json); the goals stay gregor against Kafka.

Each measurement runs --repeat times; medians are reported. Prints one table and writes
target/bench/results.json: a list of {workload, metric, unit, gregor, kafka, ratio, spread},
ratio oriented so that above 1 means gregor is better, spread the [min, max] of each broker's
repeats. Stops everything it started.
"""
import argparse
import base64
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "target", "bench")
LIB = os.path.join(OUT, "kafka-lib")
LOAD = os.path.join(OUT, "rdkafka_load")
# The gregor binary measured: --gregor, else target/release/gregor (built if missing).
GREGOR = os.path.join(ROOT, "target", "release", "gregor")
RAW_LOAD = os.path.join(ROOT, "target", "release", "raw_load")
# --with tansu: Tansu (a Rust Kafka-compatible broker) from the Rust crate registry, built once
# into the bench's cache with its in-memory and SQLite storage engines.
TANSU_VERSION = "0.6.0"
TANSU = os.path.join(OUT, f"tansu-{TANSU_VERSION}", "bin", "tansu")
TANSU_ENGINES = ("memory", "sqlite")
CLK = os.sysconf("SC_CLK_TCK")
# --pin (the default where there are 2 or more CPUs): the brokers (and ZooKeeper) run on
# BROKER_CPUS, this script and every load generator on the others, so that each row says
# what that many cores of broker do and no client takes the broker's core. Empty: no pinning.
BROKER_CPUS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def ensure_tools():
    if not (os.path.isdir(LIB) and any(f.startswith("kafka_2.13") for f in os.listdir(LIB))):
        print("fetching Apache Kafka jars with Maven (once) ...", flush=True)
        subprocess.run(["mvn", "-q", "-B", "-f", os.path.join(ROOT, "bench", "kafka", "pom.xml"),
                        "dependency:copy-dependencies", f"-DoutputDirectory={LIB}"], check=True)
    src = os.path.join(ROOT, "bench", "rdkafka_load.c")
    if not os.path.exists(LOAD) or os.path.getmtime(LOAD) < os.path.getmtime(src):
        if not os.path.exists("/usr/include/librdkafka/rdkafka.h"):
            subprocess.run(["apt-get", "install", "-y", "-q", "librdkafka-dev"], check=True,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        subprocess.run(["cc", "-O2", "-Wall", "-o", LOAD, src, "-lrdkafka", "-lpthread"], check=True)


def ensure_tansu():
    if not os.access(TANSU, os.X_OK):
        print(f"building Tansu {TANSU_VERSION} from the crate registry (once, about 15 minutes) ...", flush=True)
        # Its own lock file (--locked): the versions its authors released with.
        subprocess.run(["cargo", "install", "--locked", "tansu", "--version", TANSU_VERSION,
                        "--features", "dynostore,libsql", "--root", os.path.dirname(os.path.dirname(TANSU))],
                       check=True)


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (utime is [11], stime [12])."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_stats(pid):
    """(cpu seconds, peak RSS MiB, current RSS MiB) of a running process."""
    fields = stat_fields(pid)
    cpu = (int(fields[11]) + int(fields[12])) / CLK
    peak = rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return cpu, peak, rss


def kernel_cpu(pid):
    """CPU seconds a running process spent in the kernel (system time)."""
    return int(stat_fields(pid)[12]) / CLK


def on_broker_cpus(cmd):
    """`cmd` run on the brokers' cores (see BROKER_CPUS)."""
    if not BROKER_CPUS:
        return cmd
    return ["taskset", "-c", ",".join(map(str, BROKER_CPUS))] + cmd


def pin_cpus(spec):
    """--pin: "auto" (brokers on CPU 0, clients on the rest, where there are 2 or more),
    "off", or "B:C" (CPU lists as taskset takes them, e.g. "0:1" or "0-1:2-3")."""
    global BROKER_CPUS
    allowed = sorted(os.sched_getaffinity(0))
    if spec == "off" or (spec == "auto" and len(allowed) < 2):
        return "not pinned"
    if spec == "auto":
        brokers, clients = allowed[:1], allowed[1:]
    else:
        def cpus(text):
            out = []
            for part in text.split(","):
                lo, _, hi = part.partition("-")
                out += range(int(lo), int(hi or lo) + 1)
            return out
        b, _, c = spec.partition(":")
        brokers, clients = cpus(b), cpus(c)
        if set(brokers) & set(clients) or not brokers or not clients:
            raise SystemExit(f"--pin {spec}: two disjoint, non-empty CPU lists are needed")
    BROKER_CPUS = brokers
    # Every client this script starts inherits its affinity.
    os.sched_setaffinity(0, clients)
    return f"brokers on CPU {','.join(map(str, brokers))}, clients on CPU {','.join(map(str, clients))}"


def metadata_ready(bootstrap, timeout=180, client=None):
    """Seconds until the broker answers a Metadata request (a bound port alone proves
    nothing: both brokers bind before their logs are loaded). `client`: librdkafka
    properties of the listener (TLS, SASL)."""
    from confluent_kafka.admin import AdminClient
    t0 = time.monotonic()
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **(client or {})})
    admin.list_topics(timeout=timeout)
    return time.monotonic() - t0


class Broker:
    """One broker process (gregor or Kafka) that can be stopped and started again on the
    same data directory. `client`: the librdkafka properties its listener wants (TLS, SASL),
    empty for PLAINTEXT."""

    def __init__(self, name, cmd, port, log_path, data, wait=True, client=None, librdkafka=True):
        self.name, self.cmd, self.port, self.log_path, self.data = name, cmd, port, log_path, data
        self.bootstrap = f"127.0.0.1:{port}"
        self.client = client or {}
        # False: rdkafka_load (Debian's librdkafka) cannot talk to it; its rows are left out.
        self.librdkafka = librdkafka
        # Below 1: a broker too slow for the rows' record counts moves this share of them
        # (throughput rows only; the rates stay comparable, the totals do not).
        self.records_scale = 1.0
        self.proc = None
        if wait:
            self.start()
        else:
            self.launch()

    def launch(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(on_broker_cpus(self.cmd), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=raise_fd_limit)
        log.close()

    def start(self):
        """Starts the process; returns seconds until Metadata answers."""
        t0 = time.monotonic()
        self.launch()
        self.wait_ready()
        return time.monotonic() - t0

    def wait_ready(self):
        """Waits until the port is open and Metadata answers."""
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{self.name} did not open port {self.port}")
                time.sleep(0.01)
        metadata_ready(self.bootstrap, client=self.client)

    def records(self, wanted):
        """How many of a row's `wanted` records this broker moves (see records_scale)."""
        return max(1000, int(wanted * self.records_scale))

    def stats(self):
        return proc_stats(self.proc.pid)

    def kernel_cpu(self):
        return kernel_cpu(self.proc.pid)

    def stop(self, kill=False):
        """Stops the process; returns seconds it took."""
        t0 = time.monotonic()
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return time.monotonic() - t0


def start_gregor(tmp, tag="", security=None):
    """`security` (a Security): its listener instead of PLAINTEXT, with its server keys."""
    port = free_port()
    data = os.path.join(tmp, f"gregor-data{tag}")
    binary = GREGOR
    protocol = security.protocol if security else "PLAINTEXT"
    extra = [a for k, v in (security.server.items() if security else ()) for a in ("--override", f"{k}={v}")]
    return Broker("gregor", [binary, "--override", f"listeners={protocol}://127.0.0.1:{port}",
                             "--override", f"log.dirs={data}",
                             "--override", "group.initial.rebalance.delay.ms=0",
                             "--override", "offsets.topic.replication.factor=1",
                             "--override", "metrics.port=0"] + extra,
                  port, os.path.join(tmp, f"gregor{tag}.log"), data,
                  client=security.client if security else None)


def start_kafka(tmp, tag="", security=None):
    """`security` (a Security): its listener instead of PLAINTEXT for clients, with the same
    server keys gregor gets; the controller's listener stays PLAINTEXT."""
    port, cport = free_port(), free_port()
    data = os.path.join(tmp, f"kafka-data{tag}")
    cfg = os.path.join(tmp, f"kafka{tag}.properties")
    protocol = security.protocol if security else "PLAINTEXT"
    with open(cfg, "w") as f:
        f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners={protocol}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners={protocol}://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,{protocol}:{protocol}
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
""")
        for k, v in (security.server.items() if security else ()):
            f.write(f"{k}={v}\n")
    log4j = os.path.join(tmp, "log4j2.properties")
    with open(log4j, "w") as f:
        f.write("rootLogger.level=WARN\nrootLogger.appenderRef.stdout.ref=STDOUT\n"
                "appender.stdout.type=Console\nappender.stdout.name=STDOUT\n"
                "appender.stdout.layout.type=PatternLayout\nappender.stdout.layout.pattern=%d %p %m%n\n")
    cp = os.path.join(LIB, "*")
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    jvm = [f"-Dlog4j2.configurationFile={log4j}", "-cp", cp]
    subprocess.run(["java"] + jvm + ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", cfg],
                   check=True, stdout=subprocess.DEVNULL)
    # Kafka's own start script gives the broker a 1 GiB heap and G1.
    return Broker("kafka", ["java", "-Xms1g", "-Xmx1g", "-XX:+UseG1GC"] + jvm + ["kafka.Kafka", cfg],
                  port, os.path.join(tmp, f"kafka{tag}.log"), data,
                  client=security.client if security else None)


def make_certs(d):
    """A CA and the brokers' certificate signed by it (RSA 2048, SAN IP:127.0.0.1), made with
    the openssl CLI as compat-tests/security_test.py makes them. Returns (ca.pem, broker.pem):
    broker.pem holds the unencrypted PKCS#8 key and then the chain, the PEM key store that
    gregor and Kafka both read."""
    os.makedirs(d)
    p = lambda name: os.path.join(d, name)  # noqa: E731

    def openssl(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"openssl {args[0]}: {r.stderr}")
    openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"),
            "-out", p("ca.pem"), "-days", "30", "-subj", "/CN=gregor-bench-ca")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", p("broker.key"),
            "-out", p("broker.csr"), "-subj", "/CN=localhost")
    with open(p("ext.cnf"), "w") as f:
        # Clients check the address they dialled (librdkafka and Kafka's own inter-broker
        # client verify host names by default).
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", p("broker.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p("broker.crt"), "-days", "30", "-sha256", "-extfile", p("ext.cnf"))
    with open(p("broker.pem"), "w") as out:
        for part in ("broker.key", "broker.crt", "ca.pem"):
            with open(p(part)) as f:
                out.write(f.read())
    return p("ca.pem"), p("broker.pem")


SASL_USERS = {"admin": "admin-secret", "alice": "alice-secret"}


def start_tansu(tmp, engine):
    """Tansu on one of its storage engines: `memory` (an in-memory object store, nothing
    written to disk) or `sqlite` (one SQLite file in the run's temp folder).

    Debian's librdkafka 2.0.2 (rdkafka_load's) cannot read Tansu's ApiVersions answer: Tansu
    sends the v3 answer's tagged fields with their values, where Kafka leaves default ones out,
    and librdkafka before 2.2 skips one byte too few of every tagged field (its pull request
    4278) and fails with "Read underflow". So Tansu joins the raw_load rows and the JVM tools'
    rows, not rdkafka_load's."""
    port = free_port()
    data = os.path.join(tmp, f"tansu-{engine}")
    os.makedirs(data, exist_ok=True)
    # Tansu reads a sqlite URL's path without its first slash: an absolute path takes two.
    storage = "memory://tansu/" if engine == "memory" else f"sqlite:///{data}/tansu.db"
    url = f"tcp://127.0.0.1:{port}"
    b = Broker(f"tansu-{engine}", [TANSU, "broker", "--listener-url", url,
                                   "--advertised-listener-url", url, "--storage-engine", storage],
               port, os.path.join(tmp, f"tansu-{engine}.log"), data, librdkafka=False)
    if engine == "sqlite":
        # One SQLite row per record: about 60 MB/s in and 16 MB/s out at 1 KB, 10 and 6 at
        # 100 B, when this was written; at full counts one produce of the 100 B raw row (6 M
        # records) had not ended after 3 minutes.
        b.records_scale = 0.1
    return b


class Security:
    """One client listener's security, the same keys for gregor and Kafka: `protocol` (SSL or
    SASL_SSL), `server` (server.properties keys beyond the listener itself) and `client`
    (librdkafka properties). Each broker's listener is also its inter-broker listener, as
    Kafka requires one among its listeners; on one node nothing flows over it (Kafka's
    broker reaches its controller over the PLAINTEXT CONTROLLER listener)."""

    def __init__(self, protocol, ca, keystore):
        self.protocol = protocol
        self.server = {"inter.broker.listener.name": protocol,
                       "ssl.keystore.type": "PEM", "ssl.keystore.location": keystore,
                       "ssl.truststore.type": "PEM", "ssl.truststore.location": ca,
                       "ssl.client.auth": "none"}
        # librdkafka (2.0.2 here) leaves Nagle on by default. In plaintext a request leaves in
        # one write; over TLS it leaves as several records, and the later ones wait for the
        # broker's delayed ACK: 24-27 ms median produce latency at 1,000 msg/s from either
        # broker, against 1.0-1.6 ms with Nagle off (Kafka's Java client sets TCP_NODELAY too).
        self.client = {"security.protocol": protocol.lower(), "ssl.ca.location": ca,
                       "socket.nagle.disable": "true"}
        if protocol == "SASL_SSL":
            users = " ".join(f'user_{u}="{pw}"' for u, pw in SASL_USERS.items())
            self.server.update({
                "sasl.enabled.mechanisms": "PLAIN",
                "sasl.mechanism.inter.broker.protocol": "PLAIN",
                # username/password: what the broker's own inter-broker client would log in as.
                "listener.name.sasl_ssl.plain.sasl.jaas.config":
                    "org.apache.kafka.common.security.plain.PlainLoginModule required "
                    f'username="admin" password="{SASL_USERS["admin"]}" {users};'})
            self.client.update({"sasl.mechanisms": "PLAIN", "sasl.username": "alice",
                                "sasl.password": SASL_USERS["alice"]})


def tls_session(b):
    """'TLSv1.3 TLS_AES_256_GCM_SHA384'-style: what a client on this machine's OpenSSL (as
    librdkafka's) negotiates with broker `b`, so the rows can say both brokers ran the same."""
    import ssl
    ctx = ssl.create_default_context(cafile=b.client["ssl.ca.location"])
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return f"{t.version()} {t.cipher()[0]}"


class ClusterOf:
    """Three brokers of one kind, measured together: CPU and RSS are their sums."""

    # Measured like a Broker of gregor or Kafka: every client, every record.
    librdkafka = True
    records_scale = 1.0
    records = Broker.records

    def __init__(self, name, brokers, on_stop=None):
        self.name, self.brokers, self.on_stop = name, brokers, on_stop
        self.bootstrap = ",".join(b.bootstrap for b in brokers)
        self.client = {}  # PLAINTEXT
        # Each broker answering Metadata is not yet all three registered (KRaft).
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + 180
        while len(admin.list_topics(timeout=30).brokers) < len(brokers):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: not all {len(brokers)} brokers registered")
            time.sleep(0.5)

    def stats(self):
        s = [b.stats() for b in self.brokers]
        return sum(x[0] for x in s), sum(x[1] for x in s), sum(x[2] for x in s)

    def kernel_cpu(self):
        return sum(b.kernel_cpu() for b in self.brokers)

    def stop(self):
        for b in self.brokers:
            b.stop()
        if self.on_stop:
            self.on_stop()
            self.on_stop = None


def start_gregor_cluster(tmp, tag=""):
    """Three gregor brokers on one ZooKeeper (scripts/zookeeper.sh, Debian's package)."""
    zk_dir = os.path.join(tmp, f"zk{tag}")
    script = os.path.join(ROOT, "scripts", "zookeeper.sh")
    subprocess.run([script, "install"], check=True, capture_output=True)
    connect = subprocess.run(on_broker_cpus([script, "start", zk_dir]), check=True, capture_output=True,
                             text=True).stdout.strip() + "/gregor"
    binary = GREGOR
    brokers = []
    for i in (1, 2, 3):
        port = free_port()
        data = os.path.join(tmp, f"gregor-cluster{tag}-{i}")
        brokers.append(Broker("gregor", [binary, "--override", f"broker.id={i}",
                                         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
                                         "--override", f"log.dirs={data}",
                                         "--override", f"zookeeper.connect={connect}",
                                         "--override", "group.initial.rebalance.delay.ms=0",
                                         # Three brokers on one host: no metrics endpoint.
                                         "--override", "metrics.port=0"],
                              port, os.path.join(tmp, f"gregor-cluster{tag}-{i}.log"), data))
    return ClusterOf("gregor", brokers, lambda: subprocess.run([script, "stop", zk_dir],
                                                                capture_output=True))


def start_kafka_cluster(tmp, tag=""):
    """Three Kafka nodes in KRaft combined mode (broker and controller each), one quorum."""
    ports = {i: (free_port(), free_port()) for i in (1, 2, 3)}
    voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in ports.items())
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log4j = os.path.join(tmp, "log4j2.properties")
    with open(log4j, "w") as f:
        f.write("rootLogger.level=WARN\nrootLogger.appenderRef.stdout.ref=STDOUT\n"
                "appender.stdout.type=Console\nappender.stdout.name=STDOUT\n"
                "appender.stdout.layout.type=PatternLayout\nappender.stdout.layout.pattern=%d %p %m%n\n")
    jvm = [f"-Dlog4j2.configurationFile={log4j}", "-cp", os.path.join(LIB, "*")]
    brokers = []
    for i, (port, cport) in ports.items():
        data = os.path.join(tmp, f"kafka-cluster{tag}-{i}")
        cfg = os.path.join(tmp, f"kafka-cluster{tag}-{i}.properties")
        with open(cfg, "w") as f:
            f.write(f"""process.roles=broker,controller
node.id={i}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
group.initial.rebalance.delay.ms=0
""")
        subprocess.run(["java"] + jvm + ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", cfg],
                       check=True, stdout=subprocess.DEVNULL)
        brokers.append(Broker("kafka", ["java", "-Xms1g", "-Xmx1g", "-XX:+UseG1GC"] + jvm + ["kafka.Kafka", cfg],
                              port, os.path.join(tmp, f"kafka-cluster{tag}-{i}.log"), data, wait=False))
    # The quorum needs its voters up before any node answers Metadata.
    for b in brokers:
        b.wait_ready()
    return ClusterOf("kafka", brokers)


def create_topics(bootstrap, names, partitions, rf=1, client=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, **(client or {})})
    # Replicated topics want two in-sync copies for acks=all, as the cluster rows' goal says.
    config = {"min.insync.replicas": "2"} if rf > 1 else {}
    from confluent_kafka import KafkaError, KafkaException
    for first in range(0, len(names), 100):
        batch = names[first:first + 100]
        deadline = time.monotonic() + 30
        while batch:
            futs = admin.create_topics([NewTopic(n, partitions, rf, config=config) for n in batch],
                                       request_timeout=180)
            retry = []
            for n, fut in futs.items():
                try:
                    fut.result(300)
                except KafkaException as e:
                    # A just-started cluster's controller may not have seen every broker
                    # register yet, though a Metadata answer listed them all.
                    if (e.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
                            and time.monotonic() < deadline):
                        retry.append(n)
                    else:
                        raise
            if retry:
                time.sleep(0.5)
            batch = retry
    if rf > 1:
        wait_in_sync(admin, names, rf)


def wait_in_sync(admin, names, rf, timeout=120):
    """Until every partition of `names` has a leader and all `rf` replicas in its ISR: a
    produce that starts earlier measures the followers' first fetch, not the steady state."""
    deadline = time.time() + timeout
    while True:
        md = admin.list_topics(timeout=30).topics
        lagging = []
        for n in names:
            if n not in md or md[n].error or not md[n].partitions:
                lagging.append(n)
                continue
            lagging += [f"{n}-{p.id}" for p in md[n].partitions.values()
                        if p.leader < 0 or len(p.isrs) < rf]
        if not lagging:
            return
        if time.time() > deadline:
            raise SystemExit(f"partitions not fully in sync after {timeout} s: {lagging[:5]}")
        time.sleep(0.2)


def wait_committed(bootstrap, topic, partitions, records, timeout=300):
    """Seconds until the high watermarks of `topic` add up to `records`: after an acks=1
    produce to a replicated topic, the time the followers need to catch up (consumers read
    only below the high watermark)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    start = time.time()
    try:
        while True:
            committed = sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                            for p in range(partitions))
            if committed >= records:
                return time.time() - start
            if time.time() - start > timeout:
                raise SystemExit(f"{topic}: high watermarks at {committed} of {records} after {timeout} s")
            time.sleep(0.05)
    finally:
        c.close()


# ---- clients ------------------------------------------------------------------------------

def run_json(cmd, what, timeout):
    """Runs a load generator and returns the JSON object it prints last."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{what} failed ({out.returncode}): {out.stdout}{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def rdkafka(mode, *args, timeout=900):
    return run_json([LOAD, mode, *map(str, args)], f"rdkafka_load {mode}", timeout)


def xargs(b):
    """rdkafka_load's -X options for the listener of broker `b` (none for PLAINTEXT)."""
    return [a for k, v in b.client.items() for a in ("-X", f"{k}={v}")]


def raw(mode, *args, timeout=900):
    return run_json([RAW_LOAD, mode, *map(str, args)], f"raw_load {mode}", timeout)


PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def jvm_produce(bootstrap, topic, records, size, acks):
    cmd = ["java", "-Xmx1g", "-cp", os.path.join(LIB, "*"), "org.apache.kafka.tools.ProducerPerformance",
           "--topic", topic, "--num-records", str(records), "--record-size", str(size),
           "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}",
           f"acks={acks}", "linger.ms=5", "batch.size=65536"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900).stdout
    m = None
    for line in out.splitlines():
        m = PERF_LINE.search(line) or m
    if not m:
        raise SystemExit(f"cannot parse ProducerPerformance output:\n{out}")
    return {"msgs": float(m.group(2)), "mbs": float(m.group(3)), "p50_ms": float(m.group(6)),
            "p99_ms": float(m.group(8)), "p999_ms": float(m.group(9))}


def jvm_consume(bootstrap, topic, records, size):
    """Kafka's ConsumerPerformance (a subscribing group member); throughput over its fetch
    time, which excludes the group's join (the two brokers' rebalance delays differ)."""
    cmd = ["java", "-Xmx1g", "-cp", os.path.join(LIB, "*"), "org.apache.kafka.tools.ConsumerPerformance",
           "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
           "--timeout", "60000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = [l for l in proc.stdout.splitlines() if l and l[0].isdigit()]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"ConsumerPerformance failed:\n{proc.stdout}{proc.stderr[-3000:]}")
    f = [x.strip() for x in lines[-1].split(",")]
    # start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s
    msgs, fetch_ms = float(f[4]), float(f[7])
    if msgs < records:
        raise SystemExit(f"ConsumerPerformance read {msgs:.0f} of {records}")
    secs = max(fetch_ms, 1) / 1000
    return {"msgs": msgs / secs, "mbs": msgs * size / secs / 1e6}


# ---- physical limits ----------------------------------------------------------------------

def disk_bandwidth(tmp, mib, tries=3):
    """Raw sequential write MB/s to the data disk, without and with fdatasync: the best of
    `tries` dd runs each (the first write to a fresh file system is the slowest)."""
    res = {"no_fsync": 0.0, "fsync": 0.0}
    for _ in range(tries):
        for name, extra in (("no_fsync", []), ("fsync", ["conv=fdatasync"])):
            path = os.path.join(tmp, "dd.bin")
            out = subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}"] + extra,
                                 capture_output=True, text=True).stderr
            m = re.search(r"copied, ([\d.]+) s", out)
            os.remove(path)
            if m:
                res[name] = max(res[name], mib * 1048576 / float(m.group(1)) / 1e6)
    return res


def loopback_bandwidth(total=4 << 30, chunk=1 << 20):
    """MB/s of one TCP stream over loopback (1 MiB writes and reads)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = [0]

    def sink():
        conn, _ = srv.accept()
        buf = bytearray(chunk)
        while True:
            n = conn.recv_into(buf)
            if not n:
                break
            got[0] += n
        conn.close()

    t = threading.Thread(target=sink)
    t.start()
    c = socket.create_connection(srv.getsockname())
    data = b"\0" * chunk
    t0 = time.perf_counter()
    for _ in range(total // chunk):
        c.sendall(data)
    c.close()
    t.join()
    secs = time.perf_counter() - t0
    srv.close()
    return got[0] / secs / 1e6


def recycled_memory(nbytes):
    """Writes and deletes a scratch file of `nbytes` (plus a tenth) just before a run writes
    about that much, so the run's page-cache writes land in pages the guest has just used.

    On a virtual machine whose host takes freed guest memory back (virtio-balloon free page
    reporting, as on the machines this was written on), the first write to such a page waits
    for the host to fault it in: page-cache writes into memory that was free for a few
    seconds ran at about 0.4 GB/s there, into pages just freed at about 6 GB/s. Without this
    the produce rows measured the host's page faults (87% of the broker's samples in
    copy_folio_from_iter_atomic, both brokers alike) and moved by 3-5x between repeats. The
    scratch file is written by this process (the clients' cores) and deleted unflushed; its
    pages go back to the free lists and the run takes them before the host does."""
    path = os.path.join(OUT, "recycled-memory.scratch")
    chunk = bytes(1 << 20)
    left = int(nbytes * 1.1)
    with open(path, "wb") as f:
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
    os.unlink(path)


def drop_page_cache():
    """True if the kernel dropped its page cache (needs root and a writable /proc/sys)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


# ---- workloads ----------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.samples = {}  # (workload, metric, unit, higher_better) -> {broker: [values]}
        self.order = []

    def add(self, workload, metric, unit, higher_better, broker, value):
        key = (workload, metric, unit, higher_better)
        if key not in self.samples:
            self.samples[key] = {}
            self.order.append(key)
        self.samples[key].setdefault(broker, []).append(value)

    def median(self, workload, metric, broker):
        for key in self.order:
            if key[0] == workload and key[1] == metric:
                vals = self.samples[key].get(broker)
                return statistics.median(vals) if vals else None
        return None

    def rows(self):
        rows = []
        for key in self.order:
            workload, metric, unit, higher = key
            g = self.samples[key].get("gregor")
            k = self.samples[key].get("kafka")
            g = statistics.median(g) if g else None
            k = statistics.median(k) if k else None
            ratio = None
            if g is not None and k is not None and higher is not None:
                ratio = (g / k if k else None) if higher else (k / g if g else None)
            # A median alone hides how far the repeats were apart on this noisy machine.
            spread = {b: [round(min(v), 3), round(max(v), 3)]
                      for b, v in self.samples[key].items() if v}
            row = {"workload": workload, "metric": metric, "unit": unit,
                   "gregor": None if g is None else round(g, 3),
                   "kafka": None if k is None else round(k, 3),
                   "ratio": None if ratio is None else round(ratio, 3),
                   "spread": spread}
            # Other brokers of the run (--with): each one's median and gregor's ratio to it,
            # oriented like "ratio".
            peers = {}
            for b, vals in self.samples[key].items():
                if b in ("gregor", "kafka") or not vals:
                    continue
                p = statistics.median(vals)
                pr = None
                if g is not None and higher is not None:
                    pr = (g / p if p else None) if higher else (p / g if g else None)
                peers[b] = {"value": round(p, 3), "ratio": None if pr is None else round(pr, 3)}
            if peers:
                row["peers"] = peers
            rows.append(row)
        return rows


# The goals (issue: performance that reproduces), as ratios in one run, gregor better above 1.
THROUGHPUT_GOAL = {1024: 1.5, 100: 2.0}  # produce and consume msg/s, by record size
CPU_PER_GB_GOAL = 3.0  # Kafka's CPU seconds per GB over gregor's
P99_GOAL, P999_GOAL = 2.0, 10.0  # produce latency at half of Kafka's maximum
RSS_GOAL = 10.0
UNSTABLE = 0.15  # a row whose repeats spread more than this around their median


def goals(rows):
    """One line per goal and row: met or missed, with the ratio."""
    out = []
    for r in rows:
        ratio, wl, metric = r.get("ratio"), r["workload"], r["metric"]
        size = 1024 if wl.startswith("1 KB") else 100 if wl.startswith("100 B") else None
        goal = None
        if metric in ("produce_msgs", "consume_msgs") and size and "txn" not in wl and "idempotent" not in wl:
            goal = THROUGHPUT_GOAL[size]
        elif metric == "cpu_s_per_gb" and "txn" not in wl and "idempotent" not in wl:
            goal = CPU_PER_GB_GOAL
        elif "fixed load" in wl and metric == "produce_p99_ms":
            goal = P99_GOAL
        elif "fixed load" in wl and metric == "produce_p999_ms":
            goal = P999_GOAL
        elif metric == "peak_rss_mib":
            goal = RSS_GOAL
        if goal is not None and ratio is not None:
            out.append((wl, metric, ratio, goal, ratio >= goal))
    return out


def unstable(rows):
    """Rows whose repeats spread more than UNSTABLE around the median, per broker."""
    out = []
    for r in rows:
        for b, (lo, hi) in (r.get("spread") or {}).items():
            med = r.get(b)
            if med and (hi - lo) / med > UNSTABLE:
                out.append((r["workload"], r["metric"], b, (hi - lo) / med))
    return out


def topic_name(workload, rep):
    return f"b-{re.sub(r'[^a-z0-9]+', '-', workload.lower()).strip('-')}-{rep}"


def on_librdkafka(brokers):
    """The brokers rdkafka_load can talk to (see Broker.librdkafka)."""
    return [b for b in brokers if b.librdkafka]


def warm_up(b, records, txn=False):
    """Not measured: lets the JVM compile its hot paths (and both warm their caches), over
    the listener the rows will use. `txn`: a transactional produce and a read_committed
    consume as well, so that __transaction_state (created on a transactional producer's
    first FindCoordinator) exists and the transactional paths are compiled before the
    transactional rows."""
    if not b.librdkafka:
        return  # nothing to compile, and its rows use no librdkafka
    create_topics(b.bootstrap, ["warm-up"], 1, client=b.client)
    rdkafka("produce", "-b", b.bootstrap, "-t", "warm-up", "-n", records, "-s", 1024, *xargs(b))
    rdkafka("consume", "-b", b.bootstrap, "-t", "warm-up", "-p", 1, "-n", records, *xargs(b))
    if txn:
        create_topics(b.bootstrap, ["warm-up-txn"], 1, client=b.client)
        rdkafka("produce", "-b", b.bootstrap, "-t", "warm-up-txn", "-n", records // 2, "-s", 1024,
                "-a", "all", "-T", 100, *xargs(b))
        rdkafka("consume", "-b", b.bootstrap, "-t", "warm-up-txn", "-p", 1, "-n", records // 2,
                "-X", "isolation.level=read_committed", *xargs(b))


def throughput(res, brokers, w, repeat):
    """Produce then consume, with rdkafka_load or (w["raw"]) raw_load; CPU per GB over
    both. w["txn"]: a transactional producer committing every w["txn"] records (acks=all),
    its commit latency (the EndTxn round trip, see rdkafka_load -T) added as endtxn_p50_ms and
    endtxn_p99_ms, and a read_committed consumer; w["idempotent"]: an idempotent producer
    (the transactional rows' baseline)."""
    name = w["name"]
    for rep in range(repeat):
        for b in (brokers if rep % 2 == 0 else brokers[::-1]):
            if not (w.get("raw") or b.librdkafka):
                continue
            records = b.records(w["records"])
            topic = topic_name(name, rep)
            create_topics(b.bootstrap, [topic], w["partitions"], w.get("rf", 1), client=b.client)
            # Every run starts with no dirty pages: the writeback of the last run's gigabyte
            # otherwise throttles this one's writes, whichever broker made them.
            os.sync()
            recycled_memory(records * w["size"] * w.get("rf", 1))
            cpu0, _, _ = b.stats()
            sys0 = b.kernel_cpu()
            catch_up = None  # seconds the followers took after the produce (rf > 1 only)
            if w.get("raw"):
                acks = -1 if w["acks"] == "all" else w["acks"]
                prod = raw("produce", "--bootstrap", b.bootstrap, "--topic", topic,
                           "--partitions", w["partitions"], "--size", w["size"],
                           "--records", records, "--acks", acks, "--connections", 2)
                cons = raw("consume", "--bootstrap", b.bootstrap, "--topic", topic,
                           "--partitions", w["partitions"], "--size", w["size"],
                           "--records", prod["records"], "--connections", min(2, w["partitions"]))
            else:
                args = ["-b", b.bootstrap, "-t", topic, "-n", records, "-s", w["size"],
                        "-a", w["acks"], "-P", w["producers"], *xargs(b)]
                if w.get("keyed"):
                    args.append("-k")
                if w.get("txn"):
                    args += ["-T", w["txn"]]
                if w.get("idempotent"):
                    args += ["-X", "enable.idempotence=true"]
                prod = rdkafka("produce", *args)
                if w.get("rf", 1) > 1:
                    # The consume measures reading committed records, not the followers'
                    # catching up after an acks=1 produce: that is timed on its own.
                    catch_up = wait_committed(b.bootstrap, topic, w["partitions"], records)
                    res.add(name, "catch_up_s", "s", None, b.name, catch_up)  # not comparable: the produces differ
                # read_committed is librdkafka's default; named here for the transactional rows.
                cons = rdkafka("consume", "-b", b.bootstrap, "-t", topic, "-p", w["partitions"],
                               "-n", records, "-X", "isolation.level=read_committed", *xargs(b))
            cpu1, peak, _ = b.stats()
            sys1 = b.kernel_cpu()
            gb = 2 * records * w["size"] / 1e9
            res.add(name, "produce_msgs", "msg/s", True, b.name, prod["msgs"])
            res.add(name, "produce_mbs", "MB/s", True, b.name, prod["mbs"])
            res.add(name, "consume_msgs", "msg/s", True, b.name, cons["msgs"])
            res.add(name, "consume_mbs", "MB/s", True, b.name, cons["mbs"])
            res.add(name, "cpu_s_per_gb", "s/GB", False, b.name, (cpu1 - cpu0) / gb)
            # Where that CPU went: the kernel's share (copies, TCP, sendfile, page cache) is
            # what no broker code can shorten.
            res.add(name, "cpu_s_per_gb in the kernel", "s/GB", None, b.name, (sys1 - sys0) / gb)
            res.add(name, "peak_rss_mib", "MiB", False, b.name, peak)
            txn_note = ""
            if w.get("txn"):
                res.add(name, "endtxn_p50_ms", "ms", False, b.name, prod["commit_p50_ms"])
                res.add(name, "endtxn_p99_ms", "ms", False, b.name, prod["commit_p99_ms"])
                txn_note = (f"; {prod['transactions']} transactions, EndTxn p50 "
                            f"{prod['commit_p50_ms']:.2f} p99 {prod['commit_p99_ms']:.2f} ms")
            print(f"{name} #{rep + 1} {b.name}: produce {prod['msgs']:,.0f} msg/s {prod['mbs']:.1f} MB/s; "
                  f"consume {cons['msgs']:,.0f} msg/s {cons['mbs']:.1f} MB/s; "
                  f"cpu {(cpu1 - cpu0) / gb:.2f} s/GB; peak RSS {peak:.0f} MiB"
                  + (f"; followers caught up {catch_up:.2f} s after the produce" if catch_up is not None else "")
                  + txn_note, flush=True)


def jvm_tools(res, brokers, name, size, all_records, repeat):
    for rep in range(repeat):
        for b in (brokers if rep % 2 == 0 else brokers[::-1]):
            records = b.records(all_records)
            topic = topic_name("jvm " + name, rep)
            create_topics(b.bootstrap, [topic], 1)
            os.sync()  # no dirty pages left by the last run (see throughput)
            recycled_memory(records * size)
            cpu0, _, _ = b.stats()
            prod = jvm_produce(b.bootstrap, topic, records, size, 1)
            cons = jvm_consume(b.bootstrap, topic, records, size)
            cpu1, _, _ = b.stats()
            gb = 2 * records * size / 1e9
            wl = f"{name} (Kafka perf tools)"
            res.add(wl, "produce_msgs", "msg/s", True, b.name, prod["msgs"])
            res.add(wl, "produce_mbs", "MB/s", True, b.name, prod["mbs"])
            res.add(wl, "produce_p99_ms (at max throughput)", "ms", False, b.name, prod["p99_ms"])
            res.add(wl, "consume_msgs", "msg/s", True, b.name, cons["msgs"])
            res.add(wl, "consume_mbs", "MB/s", True, b.name, cons["mbs"])
            res.add(wl, "cpu_s_per_gb", "s/GB", False, b.name, (cpu1 - cpu0) / gb)
            print(f"{wl} #{rep + 1} {b.name}: produce {prod['msgs']:,.0f} msg/s {prod['mbs']:.1f} MB/s "
                  f"p99 {prod['p99_ms']:.0f} ms; consume {cons['msgs']:,.0f} msg/s", flush=True)


E2E_AVG = re.compile(r"Avg latency: ([\d.]+) ms")
E2E_PCT = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)")


def jvm_end_to_end(res, brokers, size, records, repeat):
    """Kafka's own EndToEndLatency tool (JVM client): one record at a time, each sent with
    acks=1 and read back by a consumer before the next is sent. It prints the average to
    0.1 us and the percentiles in whole milliseconds."""
    wl = f"{size // 1024} KB acks=1 1p, end-to-end one at a time (Kafka's EndToEndLatency)"
    for rep in range(repeat):
        for b in (brokers if rep % 2 == 0 else brokers[::-1]):
            topic = topic_name(wl, rep)
            create_topics(b.bootstrap, [topic], 1)
            cmd = ["java", "-Xmx512m", "-cp", os.path.join(LIB, "*"), "org.apache.kafka.tools.EndToEndLatency",
                   b.bootstrap, topic, str(records), "1", str(size)]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            avg, pct = E2E_AVG.search(out.stdout), E2E_PCT.search(out.stdout)
            if out.returncode != 0 or not (avg and pct):
                raise SystemExit(f"EndToEndLatency failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
            res.add(wl, "e2e_avg_ms", "ms", False, b.name, float(avg.group(1)))
            res.add(wl, "e2e_p99_ms (whole ms)", "ms", False, b.name, float(pct.group(2)))
            print(f"{wl} #{rep + 1} {b.name}: avg {avg.group(1)} ms, p99 {pct.group(2)} ms", flush=True)


def fixed_load_latency(res, brokers, base, size, acks, rate, seconds, repeat, e2e_rates, rf=1):
    """Produce latency at a fixed offered load (records/s), and end-to-end latency at lower
    fixed rates with one record per request (linger 0): 5,000/s, which both brokers keep up
    with, and 20,000/s, which is above what Kafka serves here one record at a time (its
    latency then is queueing). Rates above `rate` are left out."""
    records = max(1000, int(rate * seconds))
    wl = f"{base}, fixed load {rate:,.0f} msg/s"
    e2e_rates = sorted({min(rate, r) for r in e2e_rates})
    brokers = on_librdkafka(brokers)
    for rep in range(repeat):
        for b in (brokers if rep % 2 == 0 else brokers[::-1]):
            topic = topic_name(wl, rep)
            create_topics(b.bootstrap, [topic], 1, rf, client=b.client)
            os.sync()  # no dirty pages left by the last run (see throughput)
            recycled_memory(records * size * rf)
            r = rdkafka("produce", "-b", b.bootstrap, "-t", topic, "-n", records, "-s", size,
                        "-a", acks, "-r", int(rate), *xargs(b))
            for q in ("p50_ms", "p99_ms", "p999_ms"):
                res.add(wl, f"produce_{q}", "ms", False, b.name, r[q])
            res.add(wl, "achieved_msgs", "msg/s", True, b.name, r["msgs"])
            e2e = []
            for e2e_rate in e2e_rates:
                e2e_wl = f"{base}, end-to-end at {e2e_rate:,.0f} msg/s"
                topic = topic_name(e2e_wl, rep)
                create_topics(b.bootstrap, [topic], 1, client=b.client)
                e = rdkafka("e2e", "-b", b.bootstrap, "-t", topic, "-n", int(e2e_rate * seconds),
                            "-s", size, "-a", acks, "-r", int(e2e_rate), *xargs(b))
                for q in ("p50_ms", "p99_ms", "p999_ms"):
                    res.add(e2e_wl, f"e2e_{q}", "ms", False, b.name, e[q])
                e2e.append(f"{e['p99_ms']:.2f} ms at {e2e_rate:,}/s")
            e2e_note = f"; e2e p99 {', '.join(e2e)}" if e2e else ""
            print(f"{wl} #{rep + 1} {b.name}: p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} "
                  f"p99.9 {r['p999_ms']:.2f} ms{e2e_note}", flush=True)


def big_consume(res, brokers, gb):
    """A consumer reading `gb` GB written in 1 KB records, from the page cache and (where
    the kernel lets us drop it) from cold segments."""
    size = 1024
    records = int(gb * 1e9 / size)
    wl = f"{gb:g} GB in 1 KB records, 16p"
    for b in on_librdkafka(brokers):
        topic = topic_name(wl, 0)
        create_topics(b.bootstrap, [topic], 16)
        rdkafka("produce", "-b", b.bootstrap, "-t", topic, "-n", records, "-s", size, "-a", 1,
                "-P", 2, timeout=3600)
        for kind in ("page cache", "cold"):
            if kind == "cold" and not drop_page_cache():
                print("cannot drop the page cache here: no cold-read row", flush=True)
                break
            cpu0, _, _ = b.stats()
            c = rdkafka("consume", "-b", b.bootstrap, "-t", topic, "-p", 16, "-n", records, timeout=3600)
            cpu1, _, _ = b.stats()
            res.add(wl, f"consume_mbs ({kind})", "MB/s", True, b.name, c["mbs"])
            res.add(wl, f"consume cpu_s_per_gb ({kind})", "s/GB", False, b.name, (cpu1 - cpu0) / gb)
            print(f"{wl} {b.name} {kind}: {c['mbs']:.0f} MB/s", flush=True)
        from confluent_kafka.admin import AdminClient
        # Keep the client referenced until the answer arrives (a dropped handle fails it).
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.delete_topics([topic])[topic].result(120)


def many_partitions(res, tmp, starters, topics):
    """`topics` topics of 10 partitions on a fresh broker of each kind."""
    from confluent_kafka.admin import AdminClient
    wl = f"{topics * 10:,} partitions"
    for start in starters:
        b = start(tmp, tag=f"-parts{topics}")
        names = [f"p{i:05d}" for i in range(topics)]
        # A producer on a topic that already exists, for the first 10 s of the creation:
        # creating topics must not stall the partitions already served.
        create_topics(b.bootstrap, ["q-alongside"], 1)
        alongside = {}
        producer = threading.Thread(target=lambda: alongside.update(rdkafka(
            "produce", "-b", b.bootstrap, "-t", "q-alongside", "-n", 20000, "-s", 1024,
            "-a", 1, "-r", 2000, "-l", 0)))
        t0 = time.monotonic()
        producer.start()
        create_topics(b.bootstrap, names, 10)
        # Kafka answers CreateTopics once its controller committed the topics; its broker
        # applies them (creating the logs) later: count until Metadata lists them all.
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        deadline = time.monotonic() + 600
        while len([t for t in admin.list_topics(timeout=60).topics if t.startswith("p")]) < topics:
            if time.monotonic() > deadline:
                raise SystemExit(f"{b.name}: not all {topics} topics visible after 600 s")
            time.sleep(0.5)
        res.add(wl, "create until Metadata lists all (100 topics per request)", "s", False, b.name,
                time.monotonic() - t0)
        producer.join()
        if alongside.get("delivered") != 20000:
            raise SystemExit(f"{b.name}: produce alongside topic creation failed: {alongside}")
        res.add(wl, "produce p99 at 2,000 msg/s while creating (first 10 s)", "ms", False, b.name,
                alongside["p99_ms"])
        time.sleep(2)
        res.add(wl, "broker RSS", "MiB", False, b.name, b.stats()[2])
        res.add(wl, "broker open descriptors", "count", False, b.name,
                len(os.listdir(f"/proc/{b.proc.pid}/fd")))
        times = []
        for _ in range(5):
            t = time.monotonic()
            md = admin.list_topics(timeout=60)
            times.append(time.monotonic() - t)
            if len([n for n in md.topics if n.startswith("p")]) != topics:
                raise SystemExit(f"{b.name} lists {len(md.topics)} topics, wanted {topics}")
        res.add(wl, "Metadata for all topics (client-side)", "ms", False, b.name, statistics.median(times) * 1000)
        del admin
        res.add(wl, "clean shutdown", "s", False, b.name, b.stop())
        res.add(wl, "restart until Metadata answers (after clean shutdown)", "s", False, b.name, b.start())
        res.add(wl, "broker RSS after restart", "MiB", False, b.name, b.stats()[2])
        b.stop(kill=True)
        res.add(wl, "restart until Metadata answers (after kill -9)", "s", False, b.name, b.start())
        b.stop()
        shutil.rmtree(b.data, ignore_errors=True)
        print(f"{wl} {b.name}: done", flush=True)


def idle_connections(res, brokers, count):
    """`count` connections that each sent one ApiVersions request and then stay idle: broker
    RSS added, broker CPU while they sit there for 10 s, and a small produce's latency."""
    raise_fd_limit()
    # ApiVersions v0 request: size, key 18, version 0, correlation id, client id "idle".
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + \
        (4).to_bytes(2, "big") + b"idle"
    req = len(body).to_bytes(4, "big") + body
    wl = f"{count:,} idle connections"
    for b in on_librdkafka(brokers):
        _, _, rss0 = b.stats()
        socks = []
        t0 = time.monotonic()
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", b.port), timeout=30)
            s.sendall(req)
            socks.append(s)
        for s in socks:
            size = int.from_bytes(s.recv(4, socket.MSG_WAITALL), "big")
            if size <= 0 or len(s.recv(size, socket.MSG_WAITALL)) != size:
                raise SystemExit(f"{b.name}: no ApiVersions answer on an idle connection")
        res.add(wl, "open and answer all", "s", False, b.name, time.monotonic() - t0)
        time.sleep(1)
        cpu0, _, rss1 = b.stats()
        time.sleep(10)
        cpu1, _, _ = b.stats()
        res.add(wl, "broker RSS added", "MiB", False, b.name, max(rss1 - rss0, 0.01))
        res.add(wl, "broker CPU while idle (10 s)", "s", False, b.name, max(cpu1 - cpu0, 0.001))
        topic = topic_name(wl, 0)
        create_topics(b.bootstrap, [topic], 1)
        r = rdkafka("produce", "-b", b.bootstrap, "-t", topic, "-n", 5000, "-s", 1024, "-a", 1, "-r", 1000)
        res.add(wl, "produce_p99_ms at 1,000 msg/s alongside", "ms", False, b.name, r["p99_ms"])
        for s in socks:
            s.close()
        print(f"{wl} {b.name}: RSS +{rss1 - rss0:.0f} MiB, idle CPU {cpu1 - cpu0:.2f} s", flush=True)


def tls_rows(res, tmp, n, repeat, only):
    """1 KB, one partition, acks=1 and acks=all with the clients on TLS ("TLS", listener
    SSL) and on TLS with SASL/PLAIN ("TLS+SASL/PLAIN", listener SASL_SSL): throughput, CPU
    per GB and RSS as in the plaintext rows, then produce latency at half of Kafka's maximum
    over the same listener. A fresh gregor and Kafka for each protocol, side by side as the
    plaintext pair was, both given the same Security keys. PLAIN rather than SCRAM: either
    costs only at connect, and PLAIN needs no users created through the broker."""
    ca, keystore = make_certs(os.path.join(tmp, "certs"))
    for protocol, label in (("SSL", "TLS"), ("SASL_SSL", "TLS+SASL/PLAIN")):
        matrix = [dict(name=f"1 KB acks={acks} 1p {label}", size=1024, records=n(500_000),
                       acks=acks, partitions=1, producers=1) for acks in (1, "all")]
        if only:
            matrix = [w for w in matrix if only in w["name"]]
        if not matrix:
            continue
        security = Security(protocol, ca, keystore)
        tag = f"-{protocol.lower()}"
        brokers = []
        try:
            brokers.append(start_gregor(tmp, tag, security))
            brokers.append(start_kafka(tmp, tag, security))
            for b in brokers:
                print(f"{label} {b.name}: {tls_session(b)}", flush=True)
                warm_up(b, n(500_000))
            for w in matrix:
                throughput(res, brokers, w, repeat)
            for w in matrix:
                # The plaintext rows' rule: half of Kafka's maximum, here over this listener.
                kmax = res.median(w["name"], "produce_msgs", "kafka")
                if kmax:
                    fixed_load_latency(res, brokers, w["name"], w["size"], w["acks"],
                                       round(kmax / 2, -3), seconds=10, repeat=repeat, e2e_rates=())
        finally:
            for b in brokers:
                b.stop()


def cluster_rows(res, tmp, n, repeat, only):
    """Three gregor brokers on one ZooKeeper against three Kafka nodes (KRaft), RF 3 and
    min.insync.replicas=2: produce and consume throughput, CPU per GB and RSS summed over the
    three brokers, and produce latency at half of Kafka's maximum. Unlike the single-node
    rows, only one cluster runs at a time (a fresh one for each repeat): an idle three-node
    Kafka beside the measured cluster is enough to move tail latencies on two cores."""
    matrix = [dict(name=f"cluster RF3 {label} acks={acks} {p}p", size=size, records=n(records),
                   acks=acks, partitions=p, producers=1, rf=3)
              for label, size, records in (("1 KB", 1024, 200_000), ("100 B", 100, 1_000_000))
              for acks in ("all", 1) for p in (1, 16)]
    if only:
        matrix = [w for w in matrix if only in w["name"]]
    if not matrix:
        return
    starters = {"gregor": start_gregor_cluster, "kafka": start_kafka_cluster}

    def measure(kind, tag, body):
        cluster = starters[kind](tmp, tag)
        try:
            # Not measured: the JVMs compile their hot paths, both warm their caches.
            create_topics(cluster.bootstrap, ["cluster-warm-up"], 1, 3)
            rdkafka("produce", "-b", cluster.bootstrap, "-t", "cluster-warm-up", "-n", n(200_000),
                    "-s", 1024, "-a", "all")
            rdkafka("consume", "-b", cluster.bootstrap, "-t", "cluster-warm-up", "-p", 1,
                    "-n", n(200_000))
            body(cluster)
        finally:
            cluster.stop()
    for rep in range(repeat):
        for kind in (("gregor", "kafka") if rep % 2 == 0 else ("kafka", "gregor")):
            measure(kind, f"-{rep}", lambda c: [throughput(res, [c], w, 1) for w in matrix])
    for kind in ("gregor", "kafka"):
        def latency(c):
            for w in matrix:
                kmax = res.median(w["name"], "produce_msgs", "kafka")
                if w["partitions"] == 1 and kmax:
                    fixed_load_latency(res, [c], w["name"], w["size"], w["acks"],
                                       round(kmax / 2, -3), seconds=10, repeat=repeat,
                                       e2e_rates=(), rf=3)
        measure(kind, "-latency", latency)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 KB and 100 B, acks=1, 1 partition (< 5 min)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply record counts")
    ap.add_argument("--big-gb", type=float, default=10.0, help="size of the large-consume workload")
    ap.add_argument("--partition-topics", type=int, nargs="*", default=[100, 1000],
                    help="topic counts (of 10 partitions each) for the many-partitions rows")
    ap.add_argument("--idle-connections", type=int, default=10000)
    ap.add_argument("--only", help="run only workloads whose name contains this")
    ap.add_argument("--partitions-only", action="store_true",
                    help="run only the many-partitions rows (see --partition-topics)")
    ap.add_argument("--cluster-only", action="store_true",
                    help="run only the cluster rows: 3 gregor brokers on ZooKeeper against 3 Kafka nodes, RF 3")
    ap.add_argument("--pin", default="auto",
                    help="auto (brokers on CPU 0, clients on the others), off, or BROKER_CPUS:CLIENT_CPUS")
    ap.add_argument("--with", dest="peers", action="append", default=[], choices=["tansu"],
                    help="add a peer to the plaintext rows: tansu (built from the crate registry once; "
                         "its memory and SQLite engines, each a broker of its own)")
    ap.add_argument("--gregor", metavar="PATH",
                    help="the gregor binary to measure (default target/release/gregor, built if missing)")
    args = ap.parse_args()
    raise_fd_limit()
    if "tansu" in args.peers:
        ensure_tansu()  # before pinning: its build uses every core
    pinning = pin_cpus(args.pin)
    print(f"pinning: {pinning}", flush=True)
    global GREGOR
    if args.gregor:
        GREGOR = os.path.abspath(args.gregor)
        if not os.access(GREGOR, os.X_OK):
            raise SystemExit(f"--gregor {args.gregor}: not an executable file")
    elif not os.path.exists(GREGOR):
        subprocess.run(["cargo", "build", "--release", "-p", "gregor"], cwd=ROOT, check=True)
    if not os.path.exists(RAW_LOAD):
        subprocess.run(["cargo", "build", "--release", "-p", "gregor-raw-load"], cwd=ROOT, check=True)
    os.makedirs(OUT, exist_ok=True)
    ensure_tools()

    def n(x):
        return max(1000, int(x * args.scale))

    # name, size, records, acks, partitions, producers, keyed
    matrix = [("1 KB acks=1 1p", 1024, n(500_000), 1, 1, 1, False),
              ("100 B acks=1 1p", 100, n(3_000_000), 1, 1, 1, False)]
    if not args.quick:
        matrix += [("1 KB acks=all 1p", 1024, n(500_000), "all", 1, 1, False),
                   ("100 B acks=all 1p", 100, n(3_000_000), "all", 1, 1, False),
                   ("1 KB acks=1 16p", 1024, n(500_000), 1, 16, 1, False),
                   ("100 B acks=1 16p", 100, n(3_000_000), 1, 16, 1, False),
                   ("1 KB acks=1 16p 4 producers", 1024, n(500_000), 1, 16, 4, False),
                   ("100 B acks=1 16p 4 producers", 100, n(3_000_000), 1, 16, 4, False),
                   ("100 B acks=1 16p 16 producers", 100, n(3_000_000), 1, 16, 16, False),
                   ("100 B acks=1 16p 4 producers keyed", 100, n(3_000_000), 1, 16, 4, True),
                   ("1 KB acks=all 16p 4 producers keyed", 1024, n(500_000), "all", 16, 4, True)]
    matrix = [dict(zip(("name", "size", "records", "acks", "partitions", "producers", "keyed"), m))
              for m in matrix]
    if not args.quick:
        # Transactions (`--only txn`): one transactional producer committing every 100
        # records (2,000 transactions) or every 10,000 (100), and an idempotent producer
        # without transactions as their baseline.
        for p in (1, 16):
            common = dict(size=1024, acks="all", partitions=p, producers=1, keyed=False)
            matrix.append(dict(common, name=f"1 KB acks=all {p}p idempotent (txn baseline)",
                               records=n(500_000), idempotent=True))
            matrix += [dict(common, name=f"1 KB acks=all {p}p txn of {t:,}", txn=t,
                            records=n(records)) for t, records in ((100, 200_000), (10_000, 1_000_000))]
    # The broker's own limit: pre-encoded batches, no client library (bench/raw-load).
    raw_matrix = [("1 KB acks=1 1p", 1024, n(1_000_000), 1, 1),
                  ("100 B acks=1 1p", 100, n(6_000_000), 1, 1)]
    if not args.quick:
        raw_matrix += [("1 KB acks=all 16p", 1024, n(1_000_000), "all", 16)]
    matrix += [{"name": f"{m[0]} (pre-encoded batches)", "size": m[1], "records": m[2], "acks": m[3],
                "partitions": m[4], "producers": 1, "raw": True} for m in raw_matrix]
    if args.only:
        matrix = [w for w in matrix if args.only in w["name"]]

    tmp = tempfile.mkdtemp(prefix="gregor-bench-", dir=OUT)
    brokers = []
    others = []  # the --with peers, for the table
    res = Results()
    started = time.monotonic()
    try:
        disk = disk_bandwidth(tmp, 1024)
        loop = loopback_bandwidth()
        # `--only` naming none of the plaintext rows (e.g. --only TLS) starts no plaintext brokers.
        if not (args.partitions_only or args.cluster_only) and (matrix or not args.only):
            brokers = [start_gregor(tmp), start_kafka(tmp)]
            if "tansu" in args.peers:
                brokers += [start_tansu(tmp, e) for e in TANSU_ENGINES]
            others = brokers[2:]
            for b in brokers:
                warm_up(b, n(200_000 if args.quick else 500_000),
                        txn=any(w.get("txn") for w in matrix))
            for w in matrix:
                throughput(res, brokers, w, args.repeat)
            if not args.only:
                # --quick stays under 5 minutes: fewer JVM records, shorter latency runs.
                jvm = n(250_000 if args.quick else 500_000)
                jvm_tools(res, brokers, "1 KB acks=1 1p", 1024, jvm, args.repeat)
                jvm_tools(res, brokers, "100 B acks=1 1p", 100, 4 * jvm, args.repeat)
                jvm_end_to_end(res, brokers, 1024, 2000 if args.quick else 5000, args.repeat)
                # Latency at half of Kafka's maximum throughput, measured above in this run.
                for base, size, acks in (("1 KB acks=1 1p", 1024, 1),) + (() if args.quick else (("1 KB acks=all 1p", 1024, "all"),)):
                    kmax = res.median(base, "produce_msgs", "kafka")
                    if kmax:
                        fixed_load_latency(res, brokers, base, size, acks, round(kmax / 2, -3),
                                           seconds=5 if args.quick else 10, repeat=args.repeat,
                                           e2e_rates=(5000,) if args.quick else (5000, 20000))
            if not args.quick and not args.only:
                big_consume(res, brokers, args.big_gb)
                idle_connections(res, brokers, args.idle_connections)
            for b in brokers:
                b.stop()
            brokers = []
        if not (args.quick or args.partitions_only or args.cluster_only):
            tls_rows(res, tmp, n, args.repeat, args.only)
        if args.partitions_only or not (args.quick or args.only or args.cluster_only):
            for topics in args.partition_topics:
                many_partitions(res, tmp, (start_gregor, start_kafka), topics)
        if args.cluster_only or not (args.quick or args.partitions_only):
            cluster_rows(res, tmp, n, args.repeat, args.only)
        for name in ("no_fsync", "fsync"):
            res.add("physical limit", f"disk sequential write ({name.replace('_', ' ')})", "MB/s", None,
                    "gregor", disk[name])
        res.add("physical limit", "loopback TCP, one stream", "MB/s", None, "gregor", loop)
        rows = res.rows()
        # Throughput as a fraction of the physical limits, with either load generator.
        for wl in ("1 KB acks=1 1p", "1 KB acks=1 1p (pre-encoded batches)"):
            for metric, limit, what in (("produce_mbs", disk["no_fsync"], "raw disk write"),
                                        ("consume_mbs", loop, "loopback TCP")):
                g, k = res.median(wl, metric, "gregor"), res.median(wl, metric, "kafka")
                if g and limit:
                    rows.append({"workload": wl, "metric": f"{metric.split('_')[0]} as fraction of {what}",
                                 "unit": "fraction", "gregor": round(g / limit, 3),
                                 "kafka": round(k / limit, 3) if k else None, "ratio": None})
    except BaseException:
        # Keep what was measured before the failure (the physical-limit rows are not added).
        with open(os.path.join(OUT, "results.partial.json"), "w") as f:
            json.dump(res.rows(), f, indent=2)
        print(f"failed; what was measured is in {os.path.join(OUT, 'results.partial.json')}", flush=True)
        # And the brokers' logs and configurations: the temp folder goes below.
        logs = os.path.join(OUT, "failed-run-logs")
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs)
        for name in os.listdir(tmp):
            if name.endswith((".log", ".properties")):
                shutil.copy(os.path.join(tmp, name), logs)
        print(f"broker logs of the failed run: {logs}", flush=True)
        raise
    finally:
        for b in brokers:
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    peers = [b.name for b in others]
    print(f"\n{'workload':<44}{'metric':<58}{'gregor':>16}{'kafka':>16}{'ratio':>9}"
          + "".join(f"{p:>16}{'ratio':>9}" for p in peers))
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:,.2f}"  # noqa: E731
        theirs = r.get("peers", {})
        print(f"{r['workload']:<44}{r['metric'] + ' (' + r['unit'] + ')':<58}{fmt(r['gregor']):>16}"
              f"{fmt(r['kafka']):>16}{fmt(r['ratio']):>9}"
              + "".join(f"{fmt(theirs.get(p, {}).get('value')):>16}{fmt(theirs.get(p, {}).get('ratio')):>9}"
                        for p in peers))
    met = goals(rows)
    if met:
        print("\ngoals (ratio in this run against the goal):")
        for wl, metric, ratio, goal, ok in met:
            print(f"  {'met   ' if ok else 'MISSED'} {wl:<44}{metric:<20}{ratio:>7.2f} (goal {goal:g})")
    shaky = unstable(rows)
    if shaky and args.repeat > 1:
        print(f"\nunstable rows (repeats more than {UNSTABLE:.0%} apart around the median):")
        for wl, metric, b, spread in shaky:
            print(f"  {wl:<44}{metric:<40}{b:<8}{spread:.0%}")
    print(f"\nwrote {os.path.join(OUT, 'results.json')} (ratio > 1: gregor better; medians of "
          f"{args.repeat}; {pinning}; {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
