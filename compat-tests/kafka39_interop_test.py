#!/usr/bin/env python3
"""gregor and Apache Kafka 3.9 (ZooKeeper mode) in one cluster, on one real ZooKeeper.

Kafka's ZooKeeper-mode controller protocol both ways: Kafka's controller drives gregor brokers
(UpdateMetadata, LeaderAndIsr, StopReplica to gregor; AlterPartition and ControlledShutdown
from gregor), and a gregor controller drives a Kafka broker (the same requests the other way).
Each scenario starts a fresh ZooKeeper (scripts/zookeeper.sh) and three brokers, ids 1-3:
broker 1 is Apache Kafka 3.9.2 (jars fetched from Maven Central once, compat-tests/kafka39/
pom.xml into target/kafka39-lib), brokers 2 and 3 are gregor. The broker started first wins
the controller election.

  kafka-controller   Kafka 1 first (controller), then gregor 2 and 3. A topic with RF 3 and
                     min.insync.replicas=2 is created through gregor with leaders on all three;
                     an idempotent acks=all producer writes throughout while
                     - a topic created through gregor gets partitions and a config change
                       through Kafka, and every broker shows both;
                     - a dynamic broker config default set through Kafka is in force on
                       gregor's leaders, one removed through gregor is gone on Kafka;
                     - gregor 3 is SIGSTOPped past replica.lag.time.max.ms (not the session):
                       it leaves the ISR of the partitions led by Kafka 1 and by gregor 2 (gregor
                       sends AlterPartition to the Kafka controller) and rejoins once resumed;
                     - gregor 2 gets SIGTERM: ControlledShutdown to the Kafka controller moves
                       its leaderships away before it stops (pause printed), then it returns;
                     - a second topic is deleted through gregor: the Kafka controller's
                       StopReplica deletes gregor's replicas and the deletion completes;
                     - Kafka 3.9's kafka-reassign-partitions moves a partition from gregor
                       3 (leader) and 2 to Kafka 1 and gregor 2: Kafka 1 copies it from
                       gregor, leads it, and gregor 3's replica is deleted.
  migration          three Kafka 3.9 brokers with a topic (RF 3), an idempotent producer's
                     history and a group's committed offsets; each broker in turn is stopped
                     and replaced by gregor on its id, port and data directory while the
                     producer keeps writing, then each back to Kafka the same way. After each
                     direction every acknowledged value is read once, the group's offsets are
                     unchanged and the producer was told of no error.
  gregor-controller  gregor 2 first (controller), then gregor 3 and Kafka 1, talking to each
                     other over SASL_SSL (an INTERNAL listener with PLAIN and PEM stores:
                     inter.broker.listener.name, sasl.mechanism.inter.broker.protocol; the
                     test's clients use PLAINTEXT), so replication and the controller's
                     requests cross TLS and SASL both ways. The topic is
                     created through the Kafka broker (it waits for the gregor controller's
                     UpdateMetadata); then
                     - a topic created through Kafka gets partitions and a config change
                       through gregor, and every broker shows both;
                     - gregor 3 is SIGSTOPped past the lag time: Kafka 1, as leader, sends
                       AlterPartition to the gregor controller, and 3 rejoins once resumed;
                     - Kafka 1 gets SIGTERM: its ControlledShutdown to the gregor controller
                       moves its leaderships away (pause printed), then it returns and leads
                       again after a preferred-leader election;
                     - a second topic is deleted through Kafka: the gregor controller's
                       StopReplica deletes Kafka's replicas before the topic's znodes go;
                     - kafka-reassign-partitions moves a partition from Kafka 1 (leader) and
                       gregor 2 to gregor 3 and 2: gregor 3 copies it from Kafka, leads it,
                       and the gregor controller's StopReplica deletes Kafka's replica;
                     - kafka-features upgrade of transaction.version to 2 (UpdateFeatures at
                       the gregor controller) is refused: the Kafka 3.9 broker's registration
                       does not support it; nothing is finalized.
  transactions       Kafka 1 first (controller), then gregor 2 and 3, all with
                     transaction.state.log.num.partitions=6, replication factor 3, min ISR 2.
                     gregor 2's FindCoordinator (key type 1) creates __transaction_state, whose
                     leaders are spread over all three (Kafka's FindCoordinator (key type 0)
                     creates __consumer_offsets); every broker names the leader of partition
                     abs(Java hashCode) % partitions as an id's or a group's coordinator. Four
                     confluent-kafka transactional producers, two ids coordinated by Kafka 1 and
                     one by each gregor broker, run at once commit, abort, commit, abort, each
                     transaction over all 6 partitions of a topic (RF 3) led by all three, so
                     the markers cross the kinds both ways (WriteTxnMarkers); a Kafka-coordinated
                     one sends offsets for a group gregor coordinates, a gregor-coordinated one
                     for a group Kafka coordinates. Then
                     - read_committed reads exactly the committed records of every partition in
                       each producer's order, read_uncommitted all of them; each partition's
                       high watermark is its records plus one marker a transaction, its last
                       stable offset the same; each group's committed offsets are its last
                       committed transaction's;
                     - KIP-890 verification with raw requests, both ways: Kafka 1 as leader
                       refuses a transactional batch for a partition outside the transaction
                       after asking the gregor coordinator (AddPartitionsToTxn v4+, verify
                       only), gregor as leader the same after asking Kafka's; each appends it
                       once the partition is added, and both transactions are aborted;
                     - gregor 3 is killed with -9 while it coordinates an open transaction with
                       its records written (its partition's next replica is Kafka 1): the commit
                       goes through Kafka's coordinator or the transaction is aborted, never
                       half; new producers of the id commit through Kafka, then through gregor 3
                       again once it is back and leads the partition (state written by each
                       kind, loaded by the other);
                     - the replicas of __transaction_state and of the data topic are identical,
                       and Kafka's DumpLogSegments --transaction-log-decoder reads gregor's
                       __transaction_state files: each id in its hash's partition with the
                       states Kafka's coordinator stores (Empty, then Ongoing, Prepare* and
                       Complete* per transaction, over the partitions it wrote).

  znodes             Kafka 1 and gregor 2, each broker id 1 and alone in its own chroot
                     (/kafka, /gregor), get the same operations: topics created, grown,
                     reconfigured and deleted, dynamic broker configs at both levels, an
                     idempotent producer and a group's commit. The two ZooKeeper trees must
                     agree znode by znode, field by field (ids, times, ports masked; Kafka's
                     null container data against gregor's empty data is the one difference
                     allowed), DescribeConfigs of a topic must be Kafka's (keys, values,
                     sources), every broker key gregor reports must be Kafka's with Kafka's
                     default, and after a clean stop both data directories must hold the same
                     files, Kafka's DumpLogSegments must read each of gregor's log, index and
                     snapshot files exactly as the Kafka broker's own, and the checkpoints
                     must hold the same entries.

After each mixed scenario: every acknowledged value is read back once at its offset (in
transactions: the reads above), the three replicas of every partition hold the same bytes
(Kafka's and gregor's segment files compared byte for byte), and neither side floods its log
with refused or dropped connections (in transactions: checked before the kill -9).

usage: compat-tests/kafka39_interop_test.py [--broker target/release/gregor] [--only NAME,...]
"""
import argparse
import glob
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import tempfile
import time
import traceback

from confluent_kafka.admin import AdminClient, NewTopic

from compat.kafka39 import KAFKA_LIB, fetch_kafka
from compat import wire
from compat.txn import partition_for, read_to_end, values_by_partition
from compat.wire import string16 as s16
import replication_test as rt
from replication_test import Recorder, check_acknowledged, drain, eventually, free_port, longest_pause

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOPIC = rt.TOPIC
PARTITIONS = 6
SESSION_TIMEOUT_MS = 10000  # the most a 500 ms tick allows: ISR shrinks (3 s lag) must not be expiries
LAG_MS = 3000
KAFKA = 1
GREGOR = (2, 3)

LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={path}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.state.change.logger=INFO
"""


class MixedCluster:
    """ZooKeeper and brokers 1-3, each Kafka 3.9 or gregor (`kinds`; by default Kafka 1 and
    gregor 2 and 3), started in `order`. A broker can be replaced by the other kind on the
    same id, port and data directory (`replace`)."""

    def __init__(self, binary, root, order, kinds=None, chroots=None, ids=None, extra=(),
                 secure_inter_broker=False):
        self.binary = binary
        self.root = root
        self.kinds = dict(kinds or {1: "kafka", 2: "gregor", 3: "gregor"})
        # Slot -> broker.id and ZooKeeper chroot (by default: the slot, one cluster "/mixed").
        self.ids = dict(ids or {i: i for i in self.kinds})
        self.chroots = dict(chroots or {i: "/mixed" for i in self.kinds})
        self.extra = list(extra)  # key=value settings for every broker of either kind
        env = dict(os.environ, ZK_TICK_MS="500", ZK_FORCE_SYNC="no", ZK_OWNER_PID=str(os.getpid()))
        self.zk_dir = os.path.join(root, "zk")
        out = subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "start", self.zk_dir],
                             env=env, check=True, capture_output=True, text=True)
        self.zk_servers = out.stdout.strip()
        self.zk = self.zk_servers + "/mixed"
        self.ports = {i: free_port() for i in self.kinds}
        # With secure_inter_broker, the brokers talk to each other on a second listener,
        # INTERNAL: SASL_SSL with PLAIN, the same Kafka keys on both kinds; the test's clients
        # stay on PLAINTEXT.
        self.internal = {}
        if secure_inter_broker:
            from security_test import Certs
            certs = Certs(os.path.join(root, "certs"))
            self.internal = {i: free_port() for i in self.kinds}
            jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                    'username="broker" password="broker-secret" user_broker="broker-secret";')
            self.internal_settings = [
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
                "inter.broker.listener.name=INTERNAL",
                "sasl.mechanism.inter.broker.protocol=PLAIN",
                "listener.name.internal.sasl.enabled.mechanisms=PLAIN",
                f"listener.name.internal.plain.sasl.jaas.config={jaas}",
                "listener.name.internal.ssl.keystore.type=PEM",
                f"listener.name.internal.ssl.keystore.location={certs.p('broker.pem')}",
                "listener.name.internal.ssl.truststore.type=PEM",
                f"listener.name.internal.ssl.truststore.location={certs.p('ca.pem')}",
            ]
        self.procs = {}
        self.starts = {}
        self.stopped = set()
        for i in order:
            self.start(i)
            self.wait_serving(i)
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self.ports.values())

    def log_path(self, i):
        return os.path.join(self.root, f"broker{i}-{self.kinds[i]}.log")

    def data_dir(self, i):
        return os.path.join(self.root, f"broker{i}")

    def listener_settings(self, i):
        if not self.internal:
            return [f"listeners=PLAINTEXT://127.0.0.1:{self.ports[i]}"]
        return [f"listeners=PLAINTEXT://127.0.0.1:{self.ports[i]},INTERNAL://127.0.0.1:{self.internal[i]}"] \
            + self.internal_settings

    def start(self, i):
        key = (i, self.kinds[i])
        self.starts[key] = self.starts.get(key, 0) + 1
        if self.kinds[i] == "kafka":
            props = os.path.join(self.root, f"kafka{i}.properties")
            with open(props, "w") as f:
                f.write("\n".join([
                    f"broker.id={self.ids[i]}",
                    *self.listener_settings(i),
                    f"log.dirs={self.data_dir(i)}",
                    f"zookeeper.connect={self.zk_servers}{self.chroots[i]}",
                    f"zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}",
                    f"replica.lag.time.max.ms={LAG_MS}",
                    "offsets.topic.replication.factor=3",
                    "offsets.topic.num.partitions=3",
                    "group.initial.rebalance.delay.ms=0",
                    "leader.imbalance.check.interval.seconds=5",
                    "controlled.shutdown.retry.backoff.ms=500",
                    "replica.fetch.backoff.ms=200",
                ] + self.extra) + "\n")
            log4j = os.path.join(self.root, f"log4j{i}.properties")
            with open(log4j, "w") as f:
                f.write(LOG4J.format(path=self.log_path(i)))
                if self.internal:
                    # Each SASL login to this broker's INTERNAL listener, from the gregor brokers.
                    f.write("log4j.logger.org.apache.kafka.common.security.authenticator."
                            "SaslServerAuthenticator=DEBUG\n")
            args = ["java", "-Xmx512m", "-Xms128m", "-cp", os.path.join(KAFKA_LIB, "*"),
                    f"-Dlog4j.configuration=file:{log4j}", "kafka.Kafka", props]
        else:
            args = [self.binary,
                    "--override", f"broker.id={self.ids[i]}",
                    "--override", f"log.dirs={self.data_dir(i)}",
                    "--override", f"zookeeper.connect={self.zk_servers}{self.chroots[i]}",
                    "--override", f"zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}",
                    "--override", f"replica.lag.time.max.ms={LAG_MS}",
                    "--override", "replica.fetch.backoff.ms=200",
                    "--override", "leader.imbalance.check.interval.seconds=5",
                    "--override", "offsets.topic.num.partitions=3",
                    # Several brokers on one host: no metrics endpoint (they would share 9644).
                    "--override", "metrics.port=0"]
            for kv in self.listener_settings(i) + self.extra:
                args += ["--override", kv]
        log = open(self.log_path(i) + (".out" if self.kinds[i] == "kafka" else ""), "a")
        self.procs[i] = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=log)

    def wait_serving(self, i):
        kafka = self.kinds[i] == "kafka"
        marker = "started (kafka.server.KafkaServer)" if kafka else "gregor is serving"

        def serving():
            if self.procs[i].poll() is not None:
                raise AssertionError(f"broker {i} exited: {self.tail(i)}")
            if not os.path.exists(self.log_path(i)):
                return False
            with open(self.log_path(i)) as f:
                return f.read().count(marker) >= self.starts[(i, self.kinds[i])]
        eventually(f"broker {i} serving", 90, serving, 0.2)

    def tail(self, i, n=15):
        for path in (self.log_path(i), self.log_path(i) + ".out"):
            if os.path.exists(path):
                with open(path) as f:
                    return "".join(f.readlines()[-n:])
        return ""

    def log(self, i):
        with open(self.log_path(i)) as f:
            return f.read()

    def terminate(self, i):
        """SIGTERM and wait for the exit; returns seconds from the signal to the exit."""
        t0 = time.time()
        self.procs[i].send_signal(signal.SIGTERM)
        self.procs[i].wait(timeout=60)
        self.stopped.add(i)
        return time.time() - t0

    def restart(self, i):
        self.start(i)
        self.wait_serving(i)
        self.stopped.discard(i)

    def replace(self, i, kind):
        """SIGTERM broker `i` and start a `kind` broker on its id, port and data directory."""
        exited = self.terminate(i)
        self.kinds[i] = kind
        self.restart(i)
        return exited

    def stop_signal(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)
        self.stopped.add(i)

    def cont_signal(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.stopped.discard(i)

    def admin(self, only=None):
        ids = [only] if only else [i for i in self.ports if i not in self.stopped]
        return AdminClient({"bootstrap.servers": ",".join(f"127.0.0.1:{self.ports[i]}" for i in ids)})

    def partitions(self, topic=TOPIC, via=None):
        md = self.admin(via).list_topics(topic, timeout=10).topics[topic]
        if md.error is not None:
            return {}
        return {p: (m.leader, list(m.replicas), sorted(m.isrs)) for p, m in md.partitions.items()}

    def create_topic(self, name, via):
        admin = self.admin(via)
        fs = admin.create_topics([NewTopic(name, PARTITIONS, 3, config={"min.insync.replicas": "2"})])
        for f in fs.values():
            f.result(timeout=60)

    def wait_isr_whole(self, topic=TOPIC, timeout=60):
        eventually(f"every ISR of {topic} whole", timeout,
                   lambda: (lambda ps: len(ps) == PARTITIONS and all(
                       v[2] == [1, 2, 3] and v[0] > 0 for v in ps.values()))(self.partitions(topic)))

    def close(self):
        for p in self.procs.values():
            try:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                p.wait(timeout=30)
            except Exception:
                p.kill()
        subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "stop", self.zk_dir],
                       capture_output=True)


def controller_of(cluster):
    return cluster.admin().list_topics(timeout=10).controller_id


def segment_bytes(data_dir, topic, partition):
    files = sorted(glob.glob(os.path.join(data_dir, f"{topic}-{partition}", "*.log")))
    return b"".join(open(f, "rb").read() for f in files)


def check_converged(cluster, topic=TOPIC, empty=()):
    """The three replicas of every partition of `topic` hold the same bytes, and none but the
    partitions `empty` is empty."""
    def same():
        for p in range(PARTITIONS):
            copies = [segment_bytes(cluster.data_dir(i), topic, p) for i in (1, 2, 3)]
            if not (copies[0] == copies[1] == copies[2]) or (not copies[0]) != (p in empty):
                return None
        return True
    try:
        eventually("identical replicas", 30, same, 0.5)
    except AssertionError:
        sizes = {p: [len(segment_bytes(cluster.data_dir(i), topic, p)) for i in (1, 2, 3)]
                 for p in range(PARTITIONS)}
        raise AssertionError(f"replicas differ: segment bytes per broker (Kafka 1, gregor 2, 3) {sizes}")
    total = sum(len(segment_bytes(cluster.data_dir(1), topic, p)) for p in range(PARTITIONS))
    return f"Kafka's and gregor's replicas identical ({total} bytes per broker)"


def check_quiet_logs(cluster):
    """No connection refused or closed over a request either side does not understand, and
    no flood of failed controller connections."""
    for i in GREGOR:
        text = cluster.log(i)
        bad = [l for l in text.splitlines()
               if "cannot serve request" in l or "bad frame" in l]
        assert not bad, f"gregor {i} closed connections: {bad[:3]}"
    kafka = cluster.log(KAFKA)
    flood = [l for l in kafka.splitlines() if " WARN " in l and
             any(f"targetBrokerId={g}" in l or f"id: {g} rack" in l for g in GREGOR)]
    assert len(flood) < 20, f"Kafka logged {len(flood)} warnings about gregor brokers, e.g. {flood[:3]}"
    errors = [l for l in kafka.splitlines() if " ERROR " in l]
    # Kafka's controller interrupts its sender to a broker that has left with a request in
    # flight (the StopReplica it sends after a controlled shutdown) and logs that as an ERROR,
    # whichever kind of broker left.
    departed = [l for l in errors if "fails to send a request to broker" in l]
    others = [l for l in errors if l not in departed]
    assert not others, f"Kafka logged errors: {others[:3]}"
    assert len(departed) <= 2, f"Kafka failed to send to departed brokers {len(departed)} times"
    return (f"Kafka logged {len(flood)} warnings about gregor brokers and "
            f"{len(departed)} interrupted sends to a departed broker, no other errors")


def leaders_spread(cluster):
    eventually("leaders on all three brokers", 60,
               lambda: {v[0] for v in cluster.partitions().values()} == {1, 2, 3})


def follower_lag(cluster, rec, stopped, watched_leader):
    """SIGSTOP `stopped` past the lag time (not the session): it leaves the ISRs of the
    partitions `watched_leader` leads, and rejoins once resumed."""
    led = [p for p, v in cluster.partitions().items() if v[0] == watched_leader]
    assert led, f"broker {watched_leader} leads nothing"
    t0 = time.time()
    cluster.stop_signal(stopped)

    def left_isrs():
        # Writes all along: a leader shrinks the ISR only of a follower that is behind.
        rec.send("lag", 20, pause=0.002)
        return all(stopped not in cluster.partitions()[p][2] for p in led)
    eventually(f"broker {stopped} out of the ISRs led by {watched_leader}",
               SESSION_TIMEOUT_MS / 1000 - 0.5, left_isrs, 0.1)
    left = time.time() - t0
    cluster.cont_signal(stopped)
    t1 = time.time()
    eventually(f"broker {stopped} back in the ISRs", 30,
               lambda: all(stopped in cluster.partitions()[p][2] for p in led), 0.2)
    return (f"follower {stopped} left the ISRs led by {watched_leader} {left:.1f}s after SIGSTOP, "
            f"rejoined {time.time() - t1:.1f}s after SIGCONT")


def controlled_shutdown(cluster, rec, broker):
    before = cluster.partitions()
    led = [p for p, v in before.items() if v[0] == broker]
    assert led, f"broker {broker} leads nothing"
    values = []
    t0 = time.time()
    cluster.procs[broker].send_signal(signal.SIGTERM)
    while cluster.procs[broker].poll() is None and time.time() - t0 < 60:
        values += rec.send("cs", 20, pause=0.002)
    exited = time.time() - t0
    cluster.stopped.add(broker)
    values += rec.send("cs", 200, pause=0.002)
    rec.flush()
    after = cluster.partitions()
    assert all(after[p][0] != broker for p in led), f"still led by {broker}: {after}"
    pause = longest_pause(rec, values)
    cluster.restart(broker)
    cluster.wait_isr_whole()
    return f"SIGTERM of {broker}: writes paused at most {pause:.2f}s, exited {exited:.1f}s after the signal"


def delete_topic(cluster, via):
    name = "doomed"
    cluster.create_topic(name, via)
    cluster.wait_isr_whole(name)
    t0 = time.time()
    admin = cluster.admin(via)
    for f in admin.delete_topics([name]).values():
        f.result(timeout=60)

    def gone():
        dirs = [d for i in (1, 2, 3) for d in glob.glob(os.path.join(cluster.data_dir(i), f"{name}-*"))
                if not d.endswith("-delete")]
        listed = any(name in cluster.admin(i).list_topics(timeout=10).topics for i in (1, 2, 3))
        return not dirs and not listed
    eventually(f"topic {name} deleted on every broker", 60, gone, 0.5)
    return f"deletion through broker {via} completed on all three in {time.time() - t0:.1f}s"


def admin_changes(cluster, via, then_via):
    """A topic created through broker `via`, partitions added and a config changed through
    `then_via`: every broker shows each change."""
    from confluent_kafka.admin import ConfigResource, NewPartitions
    name = "grown"
    admin = cluster.admin(via)
    for f in admin.create_topics([NewTopic(name, 2, 3)]).values():
        f.result(timeout=60)
    other = cluster.admin(then_via)
    for f in other.create_partitions([NewPartitions(name, 4)]).values():
        f.result(timeout=60)

    def grown_everywhere():
        for i in (1, 2, 3):
            md = cluster.admin(i).list_topics(name, timeout=10).topics[name]
            if md.error is not None or len(md.partitions) != 4:
                return False
            if any(p.leader < 1 or sorted(p.isrs) != [1, 2, 3] for p in md.partitions.values()):
                return False
        return True
    eventually("4 in-sync partitions on every broker", 60, grown_everywhere, 0.5)
    resource = ConfigResource(ConfigResource.Type.TOPIC, name, set_config={"retention.ms": "3600000"})
    for f in other.alter_configs([resource]).values():
        f.result(timeout=60)

    def config_everywhere():
        for i in (1, 2, 3):
            asked = cluster.admin(i)  # kept alive until its future is done
            got = asked.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)])
            entries = list(got.values())[0].result(timeout=10)
            if entries["retention.ms"].value != "3600000":
                return False
        return True
    eventually("retention.ms=3600000 on every broker", 60, config_everywhere, 0.5)
    return (f"topic created through broker {via}, partitions added and retention.ms changed "
            f"through broker {then_via}: all three show both")


def config_command(cluster, via, *args):
    """Kafka's own kafka-configs.sh (its ConfigCommand class, from the 3.9 jars) through
    broker `via`: (exit code, output)."""
    out = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", os.path.join(KAFKA_LIB, "*"),
         "kafka.admin.ConfigCommand", "--bootstrap-server", f"127.0.0.1:{cluster.ports[via]}",
         *args], capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


def features_refused_with_kafka(cluster, via):
    """kafka-features.sh upgrade of transaction.version to 2 (Kafka 3.9's FeatureCommand)
    at a gregor controller: refused, since the Kafka 3.9 broker does not support it (its
    registration lists no such feature; a finalized level it does not know would stop it)."""
    def feature_command(*args):
        r = subprocess.run(
            ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", os.path.join(KAFKA_LIB, "*"),
             "org.apache.kafka.tools.FeatureCommand", "--bootstrap-server",
             f"127.0.0.1:{cluster.ports[via]}", *args], capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout + r.stderr
    code, out = feature_command("upgrade", "--feature", "transaction.version=2")
    assert code != 0 and f"broker {KAFKA} does not support transaction.version at level 2" in out, \
        f"upgrade with a Kafka 3.9 broker in the cluster: exit {code}: {out[-2000:]}"
    # Nothing finalized: /feature as the controller keeps it.
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=cluster.zk)
    zk.start(timeout=30)
    try:
        data, _stat = zk.get("/feature")
    finally:
        zk.stop()
        zk.close()
    feature = json.loads(data)
    assert feature.get("features") == {} and feature.get("status") == 1, f"/feature: {feature}"
    return ("kafka-features upgrade transaction.version=2 refused by the gregor controller "
            f"(broker {KAFKA}, Kafka 3.9, does not support it); /feature still finalizes nothing")


def default_broker_configs(cluster, via):
    """`kafka-configs.sh --entity-type brokers --entity-default --describe`: {key: value}."""
    code, out = config_command(cluster, via, "--entity-type", "brokers", "--entity-default",
                               "--describe")
    assert code == 0, out
    return dict(line.strip().split(" ", 1)[0].split("=", 1) for line in out.splitlines()
                if line.startswith("  ") and "=" in line)


def described(cluster, via, kind, name, key=None):
    """DescribeConfigs through broker `via`: {key: (value, source name)}."""
    from confluent_kafka.admin import ConfigResource, ConfigSource
    admin = cluster.admin(via)  # kept alive until the future is done
    types = {"topic": ConfigResource.Type.TOPIC, "broker": ConfigResource.Type.BROKER}
    got = admin.describe_configs([ConfigResource(types[kind], name)])
    entries = list(got.values())[0].result(timeout=10)
    return {k: (e.value, ConfigSource(e.source).name) for k, e in entries.items()
            if key is None or k == key}


def timestamp_types(cluster, topic, partitions, start):
    """The timestamp type of the record at `start[p]` of each partition (confluent's codes:
    1 CreateTime, 2 LogAppendTime)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "stamps",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, start[p]) for p in range(partitions)])
    types = {}
    deadline = time.time() + 30
    while len(types) < partitions and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            types[m.partition()] = m.timestamp()[0]
    c.close()
    return types


def dynamic_broker_configs(cluster):
    """Kafka's dynamic broker configs shared through ZooKeeper both ways: a cluster default
    set through Kafka is in force on gregor's leaders (and reported with Kafka's source), one
    removed through gregor is gone from Kafka's; both refuse a static key alike."""
    from confluent_kafka import Producer
    name = "stamped"
    admin = cluster.admin(2)
    for f in admin.create_topics([NewTopic(name, 3, 3)]).values():
        f.result(timeout=60)
    eventually(f"{name} led by both kinds", 60,
               lambda: {v[0] for v in cluster.partitions(name).values()} & {KAFKA} and
               {v[0] for v in cluster.partitions(name).values()} & set(GREGOR))
    code, out = config_command(cluster, KAFKA, "--entity-type", "brokers", "--entity-default",
                               "--alter", "--add-config",
                               "log.retention.ms=86400000,log.message.timestamp.type=LogAppendTime")
    assert code == 0, f"Kafka refused the default: {out}"
    want = ("86400000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    eventually("retention.ms from the dynamic default on every broker", 30,
               lambda: all(described(cluster, i, "topic", name, "retention.ms")["retention.ms"] == want
                           for i in (1, 2, 3)), 0.5)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})

    def produce_one_each():
        offsets = {}
        for part in range(3):
            p.produce(name, value=b"stamp", partition=part, timestamp=1000,
                      on_delivery=lambda e, m: offsets.__setitem__(m.partition(), m.offset()))
        assert p.flush(30) == 0 and len(offsets) == 3, offsets
        return offsets
    stamped = timestamp_types(cluster, name, 3, produce_one_each())
    assert stamped == {0: 2, 1: 2, 2: 2}, f"timestamp types with LogAppendTime in force: {stamped}"
    # Removed through gregor: Kafka's brokers follow the /config/changes notification.
    code, out = config_command(cluster, 3, "--entity-type", "brokers", "--entity-default",
                               "--alter", "--delete-config", "log.message.timestamp.type")
    assert code == 0, f"gregor refused the removal: {out}"
    assert default_broker_configs(cluster, 2) == {"log.retention.ms": "86400000"}
    eventually("Kafka's default resource without the removed key", 30,
               lambda: default_broker_configs(cluster, KAFKA) == {"log.retention.ms": "86400000"}, 0.5)
    created = timestamp_types(cluster, name, 3, produce_one_each())
    assert created == {0: 1, 1: 1, 2: 1}, f"timestamp types after the removal: {created}"
    refused = {i: config_command(cluster, i, "--entity-type", "brokers", "--entity-default",
                                 "--alter", "--add-config", "num.partitions=7") for i in (KAFKA, 2)}
    for i, (code, out) in refused.items():
        assert code != 0 and "InvalidRequestException" in out and \
            "Cannot update these configs dynamically: Set(num.partitions)" in out, f"broker {i}: {out}"
    code, out = config_command(cluster, 2, "--entity-type", "brokers", "--entity-default",
                               "--alter", "--delete-config", "log.retention.ms")
    assert code == 0, out
    eventually("no dynamic default left", 30, lambda: not default_broker_configs(cluster, KAFKA), 0.5)
    for f in admin.delete_topics([name]).values():
        f.result(timeout=60)
    return ("kafka-configs.sh: a dynamic default set through Kafka is in force on gregor's "
            "leaders (LogAppendTime stamps, retention.ms reported as DYNAMIC_DEFAULT_BROKER_CONFIG "
            "on all three), one removed through gregor is gone on Kafka; num.partitions refused "
            "by both alike")


def run_load(cluster, rec, body):
    rec.send("before", 1000, pause=0.0005)
    notes = body()
    rec.send("after", 1000, pause=0.0005)
    rec.flush()
    seen = drain(cluster.bootstrap, PARTITIONS)
    summary = check_acknowledged(rec, seen)
    return notes, summary


def gregor_cli(cluster, via):
    """`gregor cluster health` asked of broker `via` (either kind: it speaks only the Kafka
    protocol) agrees with what confluent-kafka's admin client reads from the same broker."""
    address = f"127.0.0.1:{cluster.ports[via]}"
    r = subprocess.run([cluster.binary, "cluster", "health", "--bootstrap-server", address],
                       capture_output=True, text=True, timeout=60)
    md = cluster.admin(via).list_topics(timeout=10)
    partitions = sum(len(t.partitions) for t in md.topics.values())
    expected = [
        "healthy: true",
        f"cluster id: {md.cluster_id}",
        f"controller: {md.controller_id}",
        "brokers: 3",
        f"topics: {len(md.topics)}",
        f"partitions: {partitions}",
        "under-replicated partitions: 0",
        "partitions without a leader: 0",
    ] + [f"  {i} 127.0.0.1:{cluster.ports[i]}" for i in sorted(cluster.ports)]
    missing = [line for line in expected if line not in r.stdout.splitlines()]
    assert r.returncode == 0 and not missing, \
        f"gregor cluster health via {cluster.kinds[via]} {via}: exit {r.returncode}, missing {missing}:\n{r.stdout}{r.stderr}"
    return (f"gregor cluster health asked of the {cluster.kinds[via]} broker: healthy, "
            f"{partitions} partitions, as its admin client says")


def gregor_cli_topics(cluster, via, then_via):
    """The gregor client's topic, produce and consume commands against broker `via` (the
    Kafka one): a topic created with a config is described with its partitions and that
    config, 10 keyed records produced through `via` come back through `then_via` (the other
    kind) with the same keys, values and header, and the topic is deleted."""
    name = "cli-made"

    def gregor(server, *args, stdin=""):
        r = subprocess.run([cluster.binary, *args, "--bootstrap-server", f"127.0.0.1:{cluster.ports[server]}"],
                           input=stdin, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"gregor {' '.join(args)} via {cluster.kinds[server]} {server}: exit {r.returncode}:\n{r.stdout}{r.stderr}"
        return r.stdout

    out = gregor(via, "topic", "create", name, "--partitions", "2", "--replication-factor", "2",
                 "--config", "retention.ms=86400000")
    assert f"created {name}" in out, out
    out = gregor(via, "topic", "describe", name)
    rows = [l.split() for l in out.splitlines() if len(l.split()) == 4 and l.split()[0].isdigit()]
    assert "partitions: 2" in out and [r[0] for r in rows] == ["0", "1"], out
    assert all(r[1] in r[2] and len(r[2].split(",")) == 2 for r in rows), f"leader among 2 replicas: {out}"
    assert "  retention.ms=86400000 (DYNAMIC_TOPIC_CONFIG)" in out.splitlines(), out
    records = "".join(f"k{i}\tv{i}\n" for i in range(10))
    out = gregor(via, "produce", name, "--key-separator", "\t", "--header", "from=cli", stdin=records)
    assert "produced 10 records" in out, out
    got = [json.loads(l) for l in gregor(then_via, "consume", name, "--format", "json").splitlines()]
    assert sorted((r["key"], r["value"]) for r in got) == sorted((f"k{i}", f"v{i}") for i in range(10)), got
    assert all(r["topic"] == name and r["headers"] == [{"key": "from", "value": "cli"}] for r in got), got
    for p in (0, 1):
        offsets = [r["offset"] for r in got if r["partition"] == p]
        assert offsets == list(range(len(offsets))), f"partition {p} offsets {offsets}"
    out = gregor(via, "topic", "delete", name)
    assert out == f"deleted {name}\n", out
    eventually(f"{name} deleted", 60,
               lambda: name not in cluster.admin(via).list_topics(timeout=10).topics)
    return (f"gregor topic create/describe/delete, produce and consume asked of the "
            f"{cluster.kinds[via]} broker: 10 records produced through it read back through "
            f"the {cluster.kinds[then_via]} broker {then_via} with their keys, values and header")


REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"


def reassign_across_kinds(cluster, origin, target):
    """Kafka 3.9's kafka-reassign-partitions moves a one-partition topic from brokers `origin`
    to `target` (across the two kinds) while the load runs: the new replica copies every
    byte from a leader of the other kind, leadership moves to the first target replica, and
    the replica left out is deleted by the controller's StopReplica (Kafka renames a deleted
    directory to `*-delete` and removes it later)."""
    from confluent_kafka import Producer
    name = "moving"
    admin = cluster.admin()
    for f in admin.create_topics([NewTopic(name, 1, replica_assignment=[origin])]).values():
        f.result(timeout=60)
    eventually(f"{name} in sync on {origin}", 60,
               lambda: cluster.partitions(name).get(0, (0, [], []))[2] == sorted(origin))
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(2000):
        p.produce(name, key=str(i).encode(), value=b"v" * 500)
    assert p.flush(60) == 0, "records to move not acknowledged"
    plan = os.path.join(cluster.root, "move.json")
    with open(plan, "w") as f:
        json.dump({"version": 1, "partitions": [{"topic": name, "partition": 0, "replicas": target}]}, f)
    t0 = time.time()
    r = subprocess.run(["java", "-cp", os.path.join(KAFKA_LIB, "*"), REASSIGN, "--bootstrap-server",
                        cluster.bootstrap, "--execute", "--reassignment-json-file", plan],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and f"Successfully started partition reassignment for {name}-0" in r.stdout, \
        f"--execute: {r.stdout[-600:]}{r.stderr[-600:]}"
    want = (target[0], target, sorted(target))
    eventually(f"{name} moved to {target}", 60, lambda: cluster.partitions(name).get(0) == want)
    took = time.time() - t0
    removed = [b for b in origin if b not in target]
    added = [b for b in target if b not in origin]

    def copies_settled():
        gone = all(not os.path.exists(os.path.join(cluster.data_dir(b), f"{name}-0")) for b in removed)
        copies = [segment_bytes(cluster.data_dir(b), name, 0) for b in target]
        return gone and copies[0] and all(c == copies[0] for c in copies)
    eventually("the old replica deleted and the new one identical", 30, copies_settled, 0.5)
    r = subprocess.run(["java", "-cp", os.path.join(KAFKA_LIB, "*"), REASSIGN, "--bootstrap-server",
                        cluster.bootstrap, "--verify", "--reassignment-json-file", plan],
                       capture_output=True, text=True, timeout=120)
    assert f"Reassignment of partition {name}-0 is completed." in r.stdout, f"--verify: {r.stdout[-600:]}"
    kinds = lambda bs: "+".join(f"{cluster.kinds[b]} {b}" for b in bs)
    return (f"{name}-0 moved from {kinds(origin)} to {kinds(target)} in {took:.1f}s: "
            f"{kinds(added)} copied {len(segment_bytes(cluster.data_dir(target[0]), name, 0))} bytes "
            f"byte for byte, {kinds(removed)}'s replica deleted")


def kafka_controller(cluster):
    assert controller_of(cluster) == KAFKA, f"controller is {controller_of(cluster)}"
    cluster.create_topic(TOPIC, via=2)
    cluster.wait_isr_whole()
    leaders_spread(cluster)
    cli = [gregor_cli(cluster, KAFKA), gregor_cli(cluster, 2),
           gregor_cli_topics(cluster, KAFKA, then_via=2)]
    rec = Recorder(cluster.bootstrap)

    def body():
        return [admin_changes(cluster, via=2, then_via=KAFKA),
                dynamic_broker_configs(cluster),
                follower_lag(cluster, rec, 3, watched_leader=2),
                controlled_shutdown(cluster, rec, 2),
                delete_topic(cluster, via=3),
                # The Kafka controller moves a partition off gregor leader 3 onto Kafka 1.
                reassign_across_kinds(cluster, origin=[3, 2], target=[KAFKA, 2])]
    notes, summary = run_load(cluster, rec, body)
    log2 = cluster.log(2)
    assert "the controller moved every leadership controller=1" in log2, \
        "gregor 2 did not hear from the Kafka controller that its leaderships moved"
    return "; ".join([summary] + notes + cli + [check_converged(cluster), check_quiet_logs(cluster)])


def kafka_producer_ids(cluster):
    """An idempotent producer bootstrapped from the Kafka broker. Whenever a Kafka broker
    answers InitProducerId it first asks the gregor controller for a block of ids
    (AllocateProducerIds); had that failed, Kafka would have logged an ERROR, which
    `check_quiet_logs` refuses. librdkafka picks the broker it asks, so the block is reported,
    not required."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": f"127.0.0.1:{cluster.ports[KAFKA]}",
                  "enable.idempotence": True, "acks": "all", "message.timeout.ms": 30000})
    results = []
    p.produce(TOPIC, value=b"via-kafka", on_delivery=lambda e, m: results.append(e))
    assert p.flush(40) == 0 and results == [None], f"idempotent produce via Kafka: {results}"
    blocks = cluster.log(2).count("allocated producer ids to a broker broker=1")
    return (f"idempotent producer bootstrapped from Kafka acknowledged; the gregor controller "
            f"handed the Kafka broker {blocks} block(s) of producer ids")


def gregor_controller(cluster):
    assert controller_of(cluster) == 2, f"controller is {controller_of(cluster)}"
    # A Kafka broker knows the other brokers only from its controller's UpdateMetadata.
    eventually("the Kafka broker knowing all three brokers", 30,
               lambda: len(cluster.admin(KAFKA).list_topics(timeout=10).brokers) == 3)
    cluster.create_topic(TOPIC, via=KAFKA)
    cluster.wait_isr_whole()
    leaders_spread(cluster)
    rec = Recorder(cluster.bootstrap)

    def body():
        notes = [admin_changes(cluster, via=KAFKA, then_via=3),
                 follower_lag(cluster, rec, 3, watched_leader=KAFKA),
                 controlled_shutdown(cluster, rec, KAFKA)]
        eventually("Kafka 1 leading again (preferred leader)", 60,
                   lambda: KAFKA in {v[0] for v in cluster.partitions().values()})
        notes.append(delete_topic(cluster, via=KAFKA))
        # The gregor controller moves a partition off Kafka leader 1 onto gregor 3.
        notes.append(reassign_across_kinds(cluster, origin=[KAFKA, 2], target=[3, 2]))
        return notes
    notes, summary = run_load(cluster, rec, body)
    notes.append(kafka_producer_ids(cluster))
    notes.append(features_refused_with_kafka(cluster, via=2))
    kafka = cluster.log(KAFKA)
    assert "Controlled shutdown request returned successfully" in kafka or \
        "Controlled shutdown succeeded" in kafka, "Kafka's controlled shutdown did not succeed"
    if cluster.internal:
        # Only the gregor brokers log in to Kafka's INTERNAL listener (the test's clients use
        # PLAINTEXT); Kafka reaches gregor's only over it, its inter-broker listener.
        logins = kafka.count("Set SASL server state to COMPLETE")
        assert logins > 0, "no gregor broker logged in to Kafka's SASL_SSL inter-broker listener"
        notes.append(f"inter-broker traffic over SASL_SSL: {logins} gregor logins to Kafka's INTERNAL listener")
    return "; ".join([summary] + notes + [check_converged(cluster), check_quiet_logs(cluster)])


def committed_offsets(cluster, group, topic=TOPIC):
    """The group's committed offset per partition of the topic, read by a fresh member."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def commit_some(cluster, group, count):
    """A member of `group` reads `count` records from the start and commits where it is."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    read = 0
    deadline = time.time() + 60
    while read < count and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            read += 1
    c.commit(asynchronous=False)
    c.close()
    assert read == count, f"read {read} of {count}"
    return committed_offsets(cluster, group)


def check_files_read_cleanly(cluster):
    """Neither kind complained about a file the other wrote: producer snapshots, checkpoints,
    meta.properties, partition.metadata."""
    gregor_complaints = ("unreadable leader epoch checkpoint", "corrupt producer state snapshot",
                         "ignoring unreadable checkpoint", "truncated conflicting entries",
                         "-stray", "recovery-aside")
    for path in sorted(glob.glob(os.path.join(cluster.root, "broker*-*.log"))):
        with open(path) as f:
            lines = f.read().splitlines()
        if path.endswith("-gregor.log"):
            bad = [l for l in lines if any(c in l for c in gregor_complaints)]
        else:
            bad = [l for l in lines if (" WARN " in l or " ERROR " in l) and any(
                w in l.lower() for w in ("snapshot", "checkpoint", "meta.properties",
                                         "partition.metadata", "corrupt"))]
        assert not bad, f"{os.path.basename(path)}: {bad[:3]}"
    return "no complaint from either about the other's files"


def migration(cluster):
    """Three Kafka 3.9 brokers replaced by gregor one at a time, each on its predecessor's id,
    port and data directory, while an idempotent producer keeps writing; then back to Kafka
    the same way."""
    eventually("the Kafka brokers knowing each other", 30,
               lambda: len(cluster.admin(1).list_topics(timeout=10).brokers) == 3)
    assert controller_of(cluster) == 1, f"controller is {controller_of(cluster)}"
    cluster.create_topic(TOPIC, via=1)
    cluster.wait_isr_whole()
    rec = Recorder(cluster.bootstrap)
    rec.send("kafka", 1500, pause=0.0005)
    rec.flush()
    group = "migrating"
    committed = commit_some(cluster, group, 600)
    assert sum(o for o in committed.values() if o >= 0) == 600, committed
    notes = []
    for kind in ("gregor", "kafka"):
        t0 = time.time()
        for i in (1, 2, 3):
            rec.send(f"{kind}{i}-before", 300, pause=0.001)
            cluster.replace(i, kind)
            rec.send(f"{kind}{i}-after", 300, pause=0.001)
            cluster.wait_isr_whole(timeout=90)
        rec.flush()
        assert not rec.errors, f"the producer was told {rec.errors[:3]}"
        summary = check_acknowledged(rec, drain(cluster.bootstrap, PARTITIONS))
        after = committed_offsets(cluster, group)
        assert after == committed, f"group offsets {committed} became {after}"
        notes.append(f"all three brokers to {'gregor' if kind == 'gregor' else 'Kafka 3.9'} in "
                     f"{time.time() - t0:.0f}s: {summary}, the group's offsets kept, the "
                     f"producer told of no error")
    return "; ".join(notes + [check_converged(cluster), check_files_read_cleanly(cluster)])


def same_operations(cluster, slot):
    """The operations the znode comparison makes on each one-broker cluster, through its
    broker: topics created, grown, reconfigured and deleted, dynamic broker configs at both
    levels, an idempotent producer and a group's commit."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions
    admin = cluster.admin(slot)
    for f in admin.create_topics([NewTopic("t", 3, 1, config={"retention.ms": "3600000"}),
                                  NewTopic("gone", 1, 1)]).values():
        f.result(timeout=60)
    for f in admin.create_partitions([NewPartitions("t", 4)]).values():
        f.result(timeout=60)
    res = ConfigResource(ConfigResource.Type.TOPIC, "t", incremental_configs=[
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(timeout=60)
    for f in admin.delete_topics(["gone"]).values():
        f.result(timeout=60)
    eventually("topic gone deleted", 60,
               lambda: "gone" not in cluster.admin(slot).list_topics(timeout=10).topics, 0.5)
    for args in (("--entity-default", "--add-config", "log.retention.ms=86400000"),
                 ("--entity-name", str(cluster.ids[slot]), "--add-config", "message.max.bytes=2000000")):
        code, out = config_command(cluster, slot, "--entity-type", "brokers", "--alter", *args)
        assert code == 0, out
    bootstrap = f"127.0.0.1:{cluster.ports[slot]}"
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for part in range(4):
        p.produce("t", value=b"v", key=b"k", partition=part)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("t", 0, 1)], asynchronous=False)
    c.close()


def znode_tree(cluster, chroot):
    """Every znode under `chroot`: path -> (data, ephemeral)."""
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=cluster.zk_servers + chroot)
    zk.start(timeout=30)
    try:
        tree = {}

        def walk(path):
            data, stat = zk.get(path)
            tree[path] = (data, stat.ephemeralOwner != 0)
            for child in sorted(zk.get_children(path)):
                walk(path.rstrip("/") + "/" + child)
        walk("/")
        return tree
    finally:
        zk.stop()
        zk.close()


# Values that differ between any two clusters (random ids, times, ports, session ids).
VOLATILE_FIELDS = {"timestamp", "topic_id", "id", "port", "jmx_port", "endpoints", "host"}


def znode_shape(path, data):
    """What must agree: null or empty data, else the JSON with volatile values masked (or the
    raw text)."""
    if data is None:
        return "null"
    if data == b"":
        return "empty"
    try:
        value = json.loads(data)
    except ValueError:
        return data.decode(errors="replace")

    def mask(v, key=None):
        if key in VOLATILE_FIELDS:
            return "<volatile>"
        if isinstance(v, dict):
            return {k: mask(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [mask(x) for x in v]
        return v
    return mask(value)


def compare_trees(kafka, gregor):
    """Field-by-field differences between two trees; sequential names are compared as the
    multiset of what they hold."""
    def normal(tree):
        out, sequential = {}, {}
        for path, (data, ephemeral) in tree.items():
            base = re.sub(r"_\d{10}$", "_<seq>", path)
            shape = (znode_shape(path, data), ephemeral)
            if base != path:
                sequential.setdefault(base, []).append(json.dumps(shape, sort_keys=True))
            else:
                out[path] = shape
        for base, shapes in sequential.items():
            out[base] = sorted(shapes)
        return out
    k, g = normal(kafka), normal(gregor)
    diffs, dataless = [], []
    # The one field gregor writes differently on purpose: a broker registration's supported
    # features (KIP-584). Kafka 3.9 in ZooKeeper mode lists none; gregor lists
    # transaction.version 0-2, which a controller checks before finalizing a level.
    for path in [p for p in set(k) & set(g) if p.startswith("/brokers/ids/")]:
        kf = k[path][0].pop("features", None) if isinstance(k[path][0], dict) else None
        gf = g[path][0].pop("features", None) if isinstance(g[path][0], dict) else None
        if kf != {} or gf != {"transaction.version": {"min_version": 0, "max_version": 2}}:
            diffs.append(f"{path}: features: Kafka {kf} gregor {gf}")
    for path in sorted(set(k) | set(g)):
        if path not in g:
            diffs.append(f"{path}: only Kafka has it: {k[path]}")
        elif path not in k:
            diffs.append(f"{path}: only gregor has it: {g[path]}")
        elif k[path] == ("null", False) and g[path] == ("empty", False):
            # Kafka creates containers with null data; the Rust ZooKeeper client can only
            # send a byte array, so gregor's are empty. Nothing reads their data.
            dataless.append(path)
        elif k[path] != g[path]:
            diffs.append(f"{path}: Kafka {k[path]} gregor {g[path]}")
    return diffs, dataless


def znodes(cluster):
    """Kafka 3.9 and gregor, each alone in its own chroot of one ZooKeeper, after the same
    operations: the two trees agree znode by znode, field by field."""
    for slot in (1, 2):
        same_operations(cluster, slot)
    # Let both controllers settle (deletions, config-change handling).
    time.sleep(3)
    kafka, gregor = znode_tree(cluster, "/kafka"), znode_tree(cluster, "/gregor")
    diffs, dataless = compare_trees(kafka, gregor)
    assert not diffs, "znode trees differ:\n  " + "\n  ".join(diffs)
    assert "/feature" in gregor, "no /feature"
    described_alike = compare_described_configs(cluster)
    for slot in (1, 2):
        cluster.terminate(slot)
    return (f"Kafka's and gregor's trees agree: {len(kafka)} znodes each, every field alike "
            f"except ids, times and ports ({len(dataless)} containers hold empty data where "
            f"Kafka's hold null; a registration's supported features list transaction.version "
            f"0-2 where Kafka's are empty); {described_alike}; {compare_data_dirs(cluster)}")


def dump_log_segments(files):
    """Kafka's DumpLogSegments (deep iteration, record data, offsets decoded) of `files`:
    file name -> its dump, with times and checksums masked."""
    out = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", os.path.join(KAFKA_LIB, "*"),
         "kafka.tools.DumpLogSegments", "--deep-iteration", "--print-data-log",
         "--offsets-decoder", "--files", ",".join(files)],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    dumps, current = {}, None
    root = os.path.dirname(os.path.dirname(files[0]))
    for line in out.stdout.replace(root, "<dir>").splitlines():
        if line.startswith("Dumping "):
            current = line[len("Dumping <dir>/"):]
            dumps[current] = []
        elif current is not None:
            line = re.sub(r"(CreateTime|crc|timestamp|lastTimestamp|Timestamp)(\W+)-?\d+", r"\1\2<n>", line)
            dumps[current].append(line)
    return dumps


def compare_data_dirs(cluster):
    """After the same operations and a clean stop, Kafka's and gregor's data directories hold
    the same files, and Kafka's DumpLogSegments reads each of gregor's files (log, indexes,
    producer snapshot, group offsets) exactly as the Kafka broker's own, times and checksums
    aside. Kafka keeps a deleted topic's directory a minute longer (file.delete.delay.ms)."""
    def files(slot):
        root = cluster.data_dir(slot)
        return sorted(os.path.relpath(f, root) for f in glob.glob(os.path.join(root, "**"), recursive=True)
                      if os.path.isfile(f) and "-delete" not in f)
    kafka, gregor = files(1), files(2)
    assert kafka == gregor, (f"files only Kafka wrote: {sorted(set(kafka) - set(gregor))}, "
                             f"only gregor: {sorted(set(gregor) - set(kafka))}")
    dumpable = [f for f in kafka if re.search(r"\.(log|index|timeindex|snapshot)$", f)]
    dumps = {slot: dump_log_segments([os.path.join(cluster.data_dir(slot), f) for f in dumpable])
             for slot in (1, 2)}
    differ = [f for f in dumpable if dumps[1].get(f) != dumps[2].get(f)]
    assert not differ, "DumpLogSegments differs:\n" + "\n".join(
        f"{f}:\n  Kafka  {dumps[1].get(f)}\n  gregor {dumps[2].get(f)}" for f in differ[:3])
    batches = sum(1 for d in dumps[2].values() for line in d if line.startswith("baseOffset:"))
    assert batches >= 5, f"only {batches} batches dumped"
    # Checkpoints: the same entries (Kafka writes them in hash order).
    checkpoints = [f for f in kafka if f.endswith("checkpoint")]
    for f in checkpoints:
        lines = {slot: sorted(open(os.path.join(cluster.data_dir(slot), f)).read().splitlines())
                 for slot in (1, 2)}
        assert lines[1] == lines[2], f"{f}: Kafka {lines[1]} gregor {lines[2]}"
    return (f"the data directories hold the same {len(kafka)} files; Kafka's DumpLogSegments "
            f"reads all {len(dumpable)} log, index and snapshot files of gregor's ({batches} "
            f"batches) as Kafka's own, and the {len(checkpoints)} checkpoints hold the same entries")


# Broker keys whose default gregor changes on purpose (each says so in its documentation).
GREGOR_DEFAULTS = {"broker.id", "listeners", "log.dir", "log.dirs", "advertised.listeners",
                   "node.id", "socket.receive.buffer.bytes"}


def compare_described_configs(cluster):
    """DescribeConfigs through Kafka 3.9 and through gregor: a topic's key set and values are
    Kafka 3.9's; every broker key gregor reports is one of Kafka's (its own `cluster.id` and
    `metrics.port` aside), with Kafka's default."""
    kafka_topic, gregor_topic = (described(cluster, slot, "topic", "t") for slot in (1, 2))
    assert set(kafka_topic) == set(gregor_topic), (
        f"topic keys only Kafka reports: {sorted(set(kafka_topic) - set(gregor_topic))}, "
        f"only gregor: {sorted(set(gregor_topic) - set(kafka_topic))}")
    differ = {k: (kafka_topic[k], gregor_topic[k]) for k in kafka_topic
              if kafka_topic[k] != gregor_topic[k]}
    assert not differ, f"topic config values (Kafka, gregor): {differ}"
    kafka_broker = described(cluster, 1, "broker", "1")
    gregor_broker = described(cluster, 2, "broker", "1")
    # gregor's own keys aside (README's key table says "gregor only").
    unknown = sorted(set(gregor_broker) - set(kafka_broker) - {"cluster.id", "metrics.port"})
    assert not unknown, f"broker keys Kafka 3.9 does not have: {unknown}"
    # Keys set in either configuration are the test's choices, not defaults.
    differ = {k: (kafka_broker[k], v) for k, v in gregor_broker.items()
              if k in kafka_broker and k not in GREGOR_DEFAULTS and kafka_broker[k] != v
              and "STATIC_BROKER_CONFIG" not in (kafka_broker[k][1], v[1])}
    assert not differ, f"broker config values (Kafka, gregor): {differ}"
    return (f"DescribeConfigs: the topic's {len(kafka_topic)} keys, values and sources are "
            f"Kafka's; gregor's {len(gregor_broker)} broker keys are Kafka's with its values")


TXN_STATE = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"
OFFSETS_PARTITIONS = 3  # offsets.topic.num.partitions, both kinds
TXN_DATA = "txn-data"
# For both kinds: __transaction_state gets as many partitions as the data topics (PARTITIONS,
# so that wait_isr_whole and check_converged apply to it), RF 3, min ISR 2: with round-robin
# leaders, Kafka 1 and each gregor broker coordinate some transactional ids.
TXN_SETTINGS = [f"transaction.state.log.num.partitions={PARTITIONS}",
                "transaction.state.log.replication.factor=3",
                "transaction.state.log.min.isr=2"]
RECORDS_PER_PARTITION = 5  # per partition and transaction
ROUNDS = ("commit", "abort", "commit", "abort")


def raw_call(cluster, via, api_key, version, body):
    """One request (request header v1, a version that is not flexible) to broker `via` on a
    socket of its own: the response after its correlation id."""
    return wire.raw_call("127.0.0.1", cluster.ports[via], api_key, version, body,
                         client_id="interop", timeout=40)


def find_coordinator(cluster, via, key, key_type):
    """FindCoordinator v1 asked of broker `via` (key type 0 a group, 1 a transactional id):
    (error code, node id)."""
    resp = raw_call(cluster, via, 10, 1, s16(key) + struct.pack(">b", key_type))
    _throttle, error, msg_len = struct.unpack_from(">ihh", resp, 0)
    node = struct.unpack_from(">i", resp, 8 + max(msg_len, 0))[0]
    return error, node


# Errors a transaction coordinator answers while it cannot yet (clients retry them).
COORDINATOR_BUSY = {14, 15, 16, 51}  # loading, not available, not coordinator, concurrent


def raw_init_producer_id(cluster, via, txn_id):
    """InitProducerId v1 for `txn_id` at its coordinator `via`: (producer id, epoch)."""
    body = s16(txn_id) + struct.pack(">i", 60000)

    def call():
        _t, error, pid, epoch = struct.unpack_from(">ihqh", raw_call(cluster, via, 22, 1, body))
        return None if error in COORDINATOR_BUSY else (error, pid, epoch)
    error, pid, epoch = eventually(f"InitProducerId({txn_id})", 30, call, 0.2)
    assert error == 0, f"InitProducerId({txn_id}) at {via}: error {error}"
    return pid, epoch


def raw_add_partition(cluster, via, txn_id, pid, epoch, topic, partition):
    """AddPartitionsToTxn v2 (a client's) of one partition at the coordinator `via`: its error."""
    body = (s16(txn_id) + struct.pack(">qhi", pid, epoch, 1) + s16(topic)
            + struct.pack(">ii", 1, partition))

    def call():
        resp = raw_call(cluster, via, 24, 2, body)
        name_len = struct.unpack_from(">h", resp, 8)[0]
        _count, _p, error = struct.unpack_from(">iih", resp, 10 + name_len)
        return None if error in COORDINATOR_BUSY else (error,)
    return eventually(f"AddPartitionsToTxn({txn_id})", 30, call, 0.2)[0]


def raw_end_txn(cluster, via, txn_id, pid, epoch, commit):
    """EndTxn v1 at the coordinator `via`: its error."""
    body = s16(txn_id) + struct.pack(">qh?", pid, epoch, commit)

    def call():
        _t, error = struct.unpack_from(">ih", raw_call(cluster, via, 26, 1, body))
        return None if error in COORDINATOR_BUSY else (error,)
    return eventually(f"EndTxn({txn_id})", 30, call, 0.2)[0]


def raw_produce(cluster, via, txn_id, pid, epoch, sequence, topic, partition, value):
    """Produce v3 (acks=all) of a one-record transactional batch to the leader `via`:
    (error code, base offset)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    builder = DefaultRecordBatchBuilder(2, 0, 1, pid, epoch, sequence, 1 << 20)
    builder.append(0, int(time.time() * 1000), None, value.encode(), [])
    batch = bytes(builder.build())
    body = (s16(txn_id) + struct.pack(">hii", -1, 30000, 1) + s16(topic)
            + struct.pack(">iii", 1, partition, len(batch)) + batch)
    resp = raw_call(cluster, via, 0, 3, body)
    name_len = struct.unpack_from(">h", resp, 4)[0]
    _count, _p, error, offset = struct.unpack_from(">iihq", resp, 6 + name_len)
    return error, offset


INVALID_TXN_STATE = 48


def verification_across_kinds(cluster, state):
    """KIP-890's verification between the kinds, with raw requests: for an id coordinated
    by one kind, a transactional batch for a partition not added to the transaction is sent
    to a leader of the other kind; then the partition is added (AddPartitionsToTxn v2, a
    client's), the batch sent again, and the transaction aborted (EndTxn).

    Each leader (transaction.partition.verification.enable, the default of both) asks the
    coordinator of the other kind (AddPartitionsToTxn v4+, verify only) and must refuse the
    first batch with INVALID_TXN_STATE, then append the second. Returns ({id: the data
    partition used}, a note)."""
    data = cluster.partitions(TXN_DATA)
    used, notes = {}, []
    for coordinator, leader in ((GREGOR[0], KAFKA), (KAFKA, GREGOR[0])):
        part = min(p for p, v in data.items() if v[0] == leader)
        txn_id = ids_led_by(f"unverified{coordinator}", state, coordinator, 1)[0]
        used[txn_id] = part
        pid, epoch = raw_init_producer_id(cluster, coordinator, txn_id)
        first = raw_produce(cluster, leader, txn_id, pid, epoch, 0, TXN_DATA, part, f"{txn_id}/unadded")
        added = raw_add_partition(cluster, coordinator, txn_id, pid, epoch, TXN_DATA, part)
        second = raw_produce(cluster, leader, txn_id, pid, epoch, 0,
                             TXN_DATA, part, f"{txn_id}/added")
        ended = raw_end_txn(cluster, coordinator, txn_id, pid, epoch, False)
        what = (f"{txn_id} (coordinator {cluster.kinds[coordinator]} {coordinator}) at leader "
                f"{cluster.kinds[leader]} {leader} of {TXN_DATA}-{part}")
        assert added == 0 and second[0] == 0 and ended == 0, \
            f"{what}: AddPartitionsToTxn error {added}, produce once added {second}, EndTxn error {ended}"
        assert first == (INVALID_TXN_STATE, -1), \
            f"{what}: the batch outside the transaction was answered {first}, not INVALID_TXN_STATE"
        other = "its gregor coordinator" if leader == KAFKA else "its Kafka coordinator"
        notes.append(f"{cluster.kinds[leader]} {leader} refused a batch outside the transaction of "
                     f"{txn_id} (INVALID_TXN_STATE) after asking {other}, and appended it once added")
    kafka = cluster.log(KAFKA)
    assert "This suggests verification is not supported" not in kafka, \
        "Kafka 1 skipped verification with a gregor coordinator (AddPartitionsToTxn v4 refused)"
    return used, "; ".join(notes)


def internal_topic(cluster, topic, count, via, key, key_type):
    """FindCoordinator for `key` asked of broker `via` until the internal topic it creates
    exists with `count` partitions, every ISR whole: {partition: (leader, replicas, isr)}."""
    first = find_coordinator(cluster, via, key, key_type)

    def ready():
        ps = cluster.partitions(topic)
        if len(ps) != count or not all(v[0] > 0 and v[2] == [1, 2, 3] for v in ps.values()):
            find_coordinator(cluster, via, key, key_type)
            return None
        return ps
    ps = eventually(f"{topic}: {count} partitions, every ISR whole", 60, ready, 0.5)
    return first, ps


def ids_led_by(prefix, state, broker, count, want=None):
    """`count` names `prefix-N` whose __transaction_state (or __consumer_offsets) partition,
    by Java's hash, is led by `broker` in `state` ({partition: (leader, replicas, isr)});
    `want(partition)` may narrow the partitions."""
    found = []
    for n in range(10000):
        name = f"{prefix}-{n}"
        p = partition_for(name, len(state))
        if state[p][0] == broker and (want is None or want(p)):
            found.append(name)
            if len(found) == count:
                return found
    raise AssertionError(f"no {prefix} name led by {broker}: {state}")


def read_partitions(cluster, topic, level, timeout=30):
    """Every record value of each partition of `topic` from offset 0 to the end a
    confluent-kafka consumer at `level` sees, and that end per partition (read_committed:
    the last stable offset)."""
    from confluent_kafka import Consumer, TopicPartition
    got = values_by_partition(read_to_end(cluster.bootstrap, topic, PARTITIONS, level, timeout),
                              PARTITIONS)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"ends-{time.time()}",
                  "isolation.level": level})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)}
    finally:
        c.close()
    return got, ends


def txn_values(txn_id, round_, partition):
    return [f"{txn_id}/{round_}/{partition}/{i}" for i in range(RECORDS_PER_PARTITION)]


def group_offset(round_, partition):
    """The offset round `round_` commits for `partition` of TXN_DATA in its transaction."""
    return 1000 * (round_ + 1) + partition


def run_transactions(cluster, txn_id, rounds, group=None):
    """A confluent-kafka transactional producer `txn_id` runs one transaction per round, each
    writing RECORDS_PER_PARTITION records to every partition of TXN_DATA (and, with `group`,
    sending the group's offsets to the transaction), committed or aborted as the round says."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    errors = []
    p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id,
                  "linger.ms": 5})
    member = None
    if group:
        member = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                           "enable.auto.commit": False})
    try:
        p.init_transactions(60)
        for r, outcome in enumerate(rounds):
            p.begin_transaction()
            for i in range(RECORDS_PER_PARTITION):
                for part in range(PARTITIONS):
                    p.produce(TXN_DATA, value=txn_values(txn_id, r, part)[i].encode(), partition=part,
                              on_delivery=lambda e, m: e and errors.append(e))
            if group:
                p.send_offsets_to_transaction(
                    [TopicPartition(TXN_DATA, part, group_offset(r, part)) for part in range(PARTITIONS)],
                    member.consumer_group_metadata(), 30)
            if outcome == "commit":
                p.commit_transaction(60)
            else:
                assert p.flush(30) == 0, f"{txn_id}: records of round {r} not acknowledged"
                p.abort_transaction(60)
    finally:
        if member:
            member.close()
    assert not errors, f"{txn_id}: delivery errors {errors[:3]}"


def transaction_log(cluster, slot):
    """Kafka's DumpLogSegments --transaction-log-decoder of every __transaction_state segment
    in broker `slot`'s data directory: (transactional id -> [(state name, partitions,
    producer id, epoch)] in log order per partition, records read, partition of each id)."""
    files = sorted(glob.glob(os.path.join(cluster.data_dir(slot), f"{TXN_STATE}-*", "*.log")))
    assert len(files) >= PARTITIONS, files
    out = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", os.path.join(KAFKA_LIB, "*"),
         "kafka.tools.DumpLogSegments", "--transaction-log-decoder", "--files", ",".join(files)],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    history, where, records = {}, {}, 0
    current = None
    for line in out.stdout.splitlines():
        if line.startswith("Dumping "):
            current = int(re.search(rf"{TXN_STATE}-(\d+)/", line).group(1))
            continue
        # | offset: 3 ... key: transaction_metadata::transactionalId=ID payload: producerId:2000,
        # producerEpoch:0,state=CompleteCommit,partitions=[t-0,t-1],txnLastUpdateTimestamp=...
        m = re.search(r"^\| offset: \d+ .* key: transaction_metadata::transactionalId=(\S+) "
                      r"payload: (.*)$", line)
        if not m:
            continue
        records += 1
        key, payload = m.groups()
        where.setdefault(key, set()).add(current)
        if payload == "<DELETE>":
            history.setdefault(key, []).append(("tombstone", (), None, None))
            continue
        v = re.fullmatch(r"producerId:(-?\d+),producerEpoch:(-?\d+),state=(\w+),partitions=\[(.*)\],"
                         r"txnLastUpdateTimestamp=-?\d+,txnTimeoutMs=\d+", payload)
        assert v, f"DumpLogSegments payload not understood: {payload}"
        parts = tuple(sorted(p for p in v.group(4).split(",") if p))
        history.setdefault(key, []).append((v.group(3), parts, int(v.group(1)), int(v.group(2))))
    assert records, f"DumpLogSegments decoded no record:\n{out.stdout[:2000]}"
    return history, records, where


def expected_states(rounds):
    """The states Kafka's coordinator stores for an id that inits once and runs `rounds`
    (consecutive Ongoing records, one per AddPartitionsToTxn or AddOffsetsToTxn, as one)."""
    states = ["Empty"]
    for outcome in rounds:
        states += ["Ongoing"] + (["PrepareCommit", "CompleteCommit"] if outcome == "commit"
                                 else ["PrepareAbort", "CompleteAbort"])
    return states


def check_transaction_log(cluster, slot, plan):
    """Kafka's DumpLogSegments reads broker `slot`'s __transaction_state files (those it led,
    written by its coordinator, and those it copied): each id of `plan` ({id: (rounds,
    partitions its transactions touch)}) in the partition of its hash, with the states
    Kafka's coordinator stores, one producer id and epoch. Returns (records, history)."""
    history, records, where = transaction_log(cluster, slot)
    for txn_id, (rounds, touched) in plan.items():
        assert where.get(txn_id) == {partition_for(txn_id, PARTITIONS)}, \
            f"{txn_id} in partitions {where.get(txn_id)}"
        seen = history[txn_id]
        states = [s for i, (s, *_r) in enumerate(seen) if not (s == "Ongoing" and i and seen[i - 1][0] == s)]
        assert states == expected_states(rounds), f"{txn_id}: {states}"
        prepared = [parts for s, parts, *_r in seen if s.startswith("Prepare")]
        assert all(parts == touched for parts in prepared), f"{txn_id} prepared with {prepared}, not {touched}"
        assert len({(pid, epoch) for _s, _p, pid, epoch in seen}) == 1, f"{txn_id}: {seen}"
    return records, history


def check_reads(cluster, plan, others=()):
    """read_committed sees exactly the committed transactions' records of `plan` ({id:
    rounds}) in every partition, in each producer's order; read_uncommitted sees all; no
    other records but those of the ids `others`. Returns both reads and each partition's
    high watermark and last stable offset."""
    committed, lso = read_partitions(cluster, TXN_DATA, "read_committed")
    everything, hw = read_partitions(cluster, TXN_DATA, "read_uncommitted")
    for part in range(PARTITIONS):
        for txn_id, rounds in plan.items():
            mine = lambda vs: [v for v in vs if v.split("/")[0] == txn_id]  # noqa: E731
            want = [v for r, o in enumerate(rounds) if o == "commit" for v in txn_values(txn_id, r, part)]
            assert mine(committed[part]) == want, \
                f"read_committed of {txn_id} in partition {part}: {mine(committed[part])} (want {want})"
            want = [v for r in range(len(rounds)) for v in txn_values(txn_id, r, part)]
            assert mine(everything[part]) == want, \
                f"read_uncommitted of {txn_id} in partition {part}: {mine(everything[part])}"
        foreign = [v for v in everything[part] if v.split("/")[0] not in set(plan) | set(others)]
        assert not foreign, f"partition {part}: records of no transaction: {foreign[:5]}"
    return committed, everything, hw, lso


def init(producer):
    """A transactional producer, its id's InitProducerId done."""
    producer.init_transactions(60)
    return producer


def coordinator_kill9(cluster, state):
    """kill -9 of gregor 3 while it coordinates an open transaction whose records are written
    (the id's __transaction_state partition has Kafka 1 next in its replicas, so Kafka takes
    over what gregor stored). The producer's commit goes through the new coordinator or the
    transaction is aborted, never half; gregor 3 returns, leads the partition again and
    coordinates a further transaction of the id from the state Kafka left. Returns (the id,
    whether its first transaction is visible, a note)."""
    from confluent_kafka import KafkaException, Producer
    handover = [p for p, v in state.items() if v[0] == 3 and v[1][:2] == [3, KAFKA]]
    txn_id = ids_led_by("kill", state, 3, 1, want=(lambda p: p in handover) if handover else None)[0]
    partition = partition_for(txn_id, PARTITIONS)
    conf = {"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id, "linger.ms": 5}

    def transaction(producer, round_, commit=True):
        producer.begin_transaction()
        for part in range(PARTITIONS):
            for v in txn_values(txn_id, round_, part):
                producer.produce(TXN_DATA, value=v.encode(), partition=part)
        if commit:
            producer.commit_transaction(60)
        else:
            assert producer.flush(30) == 0, "the open transaction's records not acknowledged"
    p = Producer(conf)
    p.init_transactions(60)
    transaction(p, 0, commit=False)
    t0 = time.time()
    cluster.procs[3].kill()
    cluster.procs[3].wait(10)
    cluster.stopped.add(3)
    outcome, errors = None, []
    while outcome is None and time.time() - t0 < 75:
        try:
            p.commit_transaction(20)
            outcome = "commit"
        except KafkaException as e:
            err = e.args[0]
            errors.append(err.name())
            if err.txn_requires_abort():
                p.abort_transaction(30)
                outcome = "abort"
            elif not err.retriable():
                outcome = f"fatal {err.name()}"
    assert outcome, f"no outcome within 75 s of the kill: {errors}"
    took = time.time() - t0
    successor = cluster.partitions(TXN_STATE)[partition][0]
    assert successor in (KAFKA, 2), f"{TXN_STATE}-{partition} led by {successor} after the kill"
    # A new producer of the id (fencing the first) commits through the successor; then,
    # gregor 3 back and leading the partition again (preferred leader), through gregor 3.
    transaction(init(Producer(conf)), 1)
    cluster.restart(3)
    cluster.wait_isr_whole(TXN_DATA, timeout=60)
    cluster.wait_isr_whole(TXN_STATE, timeout=60)
    eventually(f"gregor 3 leading {TXN_STATE}-{partition} again", 60,
               lambda: cluster.partitions(TXN_STATE)[partition][0] == 3, 0.5)
    transaction(init(Producer(conf)), 2)
    committed, _lso = read_partitions(cluster, TXN_DATA, "read_committed")
    for part in range(PARTITIONS):
        seen = [v for v in committed[part] if v.startswith(txn_id + "/0/")]
        assert seen in ([], txn_values(txn_id, 0, part)), f"partition {part}: half a transaction: {seen}"
        if outcome in ("commit", "abort"):
            assert bool(seen) == (outcome == "commit"), f"partition {part} after {outcome}: {seen}"
        for r in (1, 2):
            got = [v for v in committed[part] if v.startswith(f"{txn_id}/{r}/")]
            assert got == txn_values(txn_id, r, part), f"partition {part}, transaction {r}: {got}"
    visible = any(v.startswith(txn_id + "/0/") for vs in committed.values() for v in vs)
    return txn_id, visible, (
        f"kill -9 of gregor 3 coordinating {txn_id} ({TXN_STATE}-{partition}) with a "
        f"transaction open: {cluster.kinds[successor]} {successor} took over, the commit "
        f"{'returned OK' if outcome == 'commit' else 'ended in ' + outcome} "
        f"{took:.1f}s after the kill (errors on the way: {', '.join(errors) or 'none'}), all its "
        f"{PARTITIONS * RECORDS_PER_PARTITION} records {'visible' if visible else 'hidden'}; a new "
        f"producer of the id committed through {cluster.kinds[successor]} {successor}, and another "
        f"through gregor 3 once it led the partition again")


def transactions(cluster):
    """Transactions across the two kinds: Kafka 1 (controller) and gregor 2 and 3 each
    coordinate transactional ids, whose transactions span partitions led by all three."""
    assert controller_of(cluster) == KAFKA, f"controller is {controller_of(cluster)}"
    cluster.create_topic(TXN_DATA, via=2)
    cluster.wait_isr_whole(TXN_DATA)
    eventually(f"{TXN_DATA} led by all three", 60,
               lambda: {v[0] for v in cluster.partitions(TXN_DATA).values()} == {1, 2, 3})
    # __transaction_state created by gregor (its first FindCoordinator with key type 1),
    # __consumer_offsets by Kafka.
    first, state = internal_topic(cluster, TXN_STATE, PARTITIONS, 2, "first-id", 1)
    leaders = {v[0] for v in state.values()}
    assert leaders == {1, 2, 3} and all(len(v[1]) == 3 for v in state.values()), state
    first_group, offsets = internal_topic(cluster, OFFSETS_TOPIC, OFFSETS_PARTITIONS, KAFKA, "first-group", 0)
    assert {v[0] for v in offsets.values()} == {1, 2, 3}, offsets
    configs = described(cluster, KAFKA, "topic", TXN_STATE)
    assert configs["min.insync.replicas"][0] == "2" and configs["cleanup.policy"][0] == "compact", \
        f"{TXN_STATE} configs as Kafka reads them: {configs}"
    # Two ids coordinated by Kafka 1, one by each gregor; the second Kafka one's offsets go
    # to a group gregor 2 coordinates, gregor 2's to a group Kafka coordinates.
    ids = (ids_led_by("tx", state, KAFKA, 2) + ids_led_by("tx-g2", state, 2, 1)
           + ids_led_by("tx-g3", state, 3, 1))
    groups = {ids[1]: ids_led_by("group", offsets, 2, 1)[0],
              ids[2]: ids_led_by("group", offsets, KAFKA, 1)[0]}
    # Every broker names the same coordinator, the leader of the key's partition by Java's hash.
    asks = [(i, 1, state[partition_for(i, PARTITIONS)][0]) for i in ids] + \
           [(g, 0, offsets[partition_for(g, OFFSETS_PARTITIONS)][0]) for g in groups.values()]
    for key, key_type, want in asks:
        answers = lambda: {via: find_coordinator(cluster, via, key, key_type) for via in (1, 2, 3)}  # noqa: E731
        eventually(f"FindCoordinator({key}) = {want} through every broker", 15,
                   lambda: all(a == (0, want) for a in answers().values()) or None, 0.5)
    # All four producers at once: their transactions interleave in every partition.
    failures = []

    def run(txn_id):
        try:
            run_transactions(cluster, txn_id, ROUNDS, groups.get(txn_id))
        except Exception as e:  # reported below
            failures.append(f"{txn_id} (coordinator {state[partition_for(txn_id, PARTITIONS)][0]}): "
                            f"{type(e).__name__}: {e}")
    t0 = time.time()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1, 120 - (time.time() - t0)))
    assert not any(t.is_alive() for t in threads), "a transactional producer still running after 120 s"
    assert not failures, "transactional producers failed: " + "; ".join(failures)
    took = time.time() - t0
    plan = {i: ROUNDS for i in ids}
    committed, everything, hw, lso = check_reads(cluster, plan)
    transactions_each = len(ids) * len(ROUNDS)
    want_hw = transactions_each * (RECORDS_PER_PARTITION + 1)
    assert hw == {p: want_hw for p in range(PARTITIONS)}, \
        (f"high watermarks {hw}, want {want_hw} ({transactions_each} transactions of "
         f"{RECORDS_PER_PARTITION} records and a marker)")
    assert lso == hw, f"last stable offsets {lso}, high watermarks {hw}"
    last_commit = max(r for r, o in enumerate(ROUNDS) if o == "commit")
    for txn_id, group in groups.items():
        got = committed_offsets(cluster, group, TXN_DATA)
        assert got == {p: group_offset(last_commit, p) for p in range(PARTITIONS)}, \
            f"{group}'s offsets committed by {txn_id}: {got}"
    kinds = lambda b: f"{cluster.kinds[b]} {b}"  # noqa: E731
    coordinators = ", ".join(f"{i} by {kinds(state[partition_for(i, PARTITIONS)][0])}" for i in ids)
    group_notes = ", ".join(
        f"{g} (coordinated by {kinds(offsets[partition_for(g, OFFSETS_PARTITIONS)][0])}) through "
        f"{i}" for i, g in groups.items())
    quiet = check_quiet_logs(cluster)  # before the kill, which Kafka logs at length
    unverified, verified = verification_across_kinds(cluster, state)
    kill_id, kill_visible, kill = coordinator_kill9(cluster, state)
    # The earlier transactions read alike after the kill, the handovers and the restart; the
    # raw transactions were aborted.
    after_committed, after_all, _hw, _lso = check_reads(cluster, plan, others=[kill_id] + list(unverified))
    for txn_id, part in unverified.items():
        assert not [v for v in after_committed[part] if v.startswith(txn_id + "/")], \
            f"{txn_id}: aborted records read_committed"
        assert f"{txn_id}/added" in after_all[part], f"{txn_id}: its record not in {TXN_DATA}-{part}"
    used = {partition_for(i, PARTITIONS) for i in list(plan) + list(unverified) + [kill_id]}
    converged = [check_converged(cluster, TXN_DATA),
                 check_converged(cluster, TXN_STATE, empty=set(range(PARTITIONS)) - used)]
    # Each id's story in gregor 2's __transaction_state files (now the same bytes on all
    # three), as Kafka's decoder reads it.
    touched = tuple(f"{TXN_DATA}-{p}" for p in range(PARTITIONS))
    log_plan = {i: (ROUNDS, tuple(sorted(touched + ((f"{OFFSETS_TOPIC}-{partition_for(groups[i], OFFSETS_PARTITIONS)}",)
                                                    if i in groups else ()))))
                for i in ids}
    log_plan.update({i: (("abort",), (f"{TXN_DATA}-{part}",)) for i, part in unverified.items()})
    records, history = check_transaction_log(cluster, 2, log_plan)
    states = [(s, epoch) for s, _p, _pid, epoch in history[kill_id]]
    epochs = [e for _s, e in states]
    # The last transaction (the third producer's, the highest epoch) committed last; the
    # first one (epoch 0) completed as a commit exactly if its records are visible.
    assert [s for s, _e in states[-2:]] == ["PrepareCommit", "CompleteCommit"] and \
        epochs == sorted(epochs) and states[-1][1] == max(epochs) >= 2 and \
        (("CompleteCommit", 0) in states) == kill_visible, f"{kill_id} in the log: {states}"
    n_committed = sum(len(vs) for vs in committed.values())
    n_all = sum(len(vs) for vs in everything.values())
    return "; ".join([
        f"{TXN_STATE} created through gregor 2 (its first FindCoordinator answered "
        f"(error, node) {first}) with {PARTITIONS} partitions led by {sorted(leaders)}, {OFFSETS_TOPIC} "
        f"through Kafka 1 (its first: {first_group}); every broker's FindCoordinator agrees with "
        f"Java's hash",
        f"{transactions_each} interleaved transactions in {took:.1f}s of {coordinators}, each "
        f"over all {PARTITIONS} partitions of {TXN_DATA} (led by Kafka 1, gregor 2, 3): "
        f"read_committed read exactly the {n_committed} committed records in each producer's "
        f"order, read_uncommitted all {n_all}; every partition's high watermark {want_hw} "
        f"(records and one marker a transaction), last stable offset alike",
        f"offsets sent to transactions for {group_notes}: the last committed round's",
        quiet, verified, kill] + converged + [
        f"Kafka's DumpLogSegments --transaction-log-decoder read gregor 2's {TXN_STATE} "
        f"({records} records): every id's states as Kafka's coordinator stores them"])


SCENARIOS = {
    "kafka-controller": (kafka_controller, (KAFKA, 2, 3)),
    "gregor-controller": (gregor_controller, (2, 3, KAFKA)),
    "migration": (migration, (1, 2, 3)),
    "znodes": (znodes, (1, 2)),
    "transactions": (transactions, (KAFKA, 2, 3)),
}

# One broker of each kind, each the only broker (id 1) of its own cluster.
SEPARATE = {"znodes": dict(kinds={1: "kafka", 2: "gregor"}, chroots={1: "/kafka", 2: "/gregor"},
                           ids={1: 1, 2: 1},
                           extra=["offsets.topic.replication.factor=1",
                                  "transaction.state.log.replication.factor=1",
                                  "transaction.state.log.min.isr=1"])}

KINDS = {"migration": {1: "kafka", 2: "kafka", 3: "kafka"}}

# Settings for every broker of either kind, by scenario.
EXTRA = {"transactions": TXN_SETTINGS}

# Scenarios whose brokers replicate and take their controller's requests over SASL_SSL.
SECURE = {"gregor-controller"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(REPO, "target", "release", "gregor"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    fetch_kafka()
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    failed = 0
    for name in names:
        fn, order = SCENARIOS[name]
        root = tempfile.mkdtemp(prefix=f"gregor-kafka39-{name}-")
        t0 = time.time()
        cluster = None
        try:
            layout = SEPARATE.get(name) or {"kinds": KINDS.get(name),
                                            "secure_inter_broker": name in SECURE,
                                            "extra": EXTRA.get(name, ())}
            cluster = MixedCluster(os.path.abspath(args.broker), root, order, **layout)
            detail = fn(cluster)
            print(f"PASS {name} ({time.time() - t0:.0f}s): {detail}", flush=True)
        except Exception as e:
            failed += 1
            print(f"FAIL {name} ({time.time() - t0:.0f}s): {e}", flush=True)
            traceback.print_exc()
            if cluster:
                for i in cluster.kinds:
                    print(f"--- broker {i} log tail ({root}) ---\n{cluster.tail(i, 25)}", flush=True)
        finally:
            if cluster:
                cluster.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
