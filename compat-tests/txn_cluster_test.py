#!/usr/bin/env python3
"""Transactions under faults in a 3-broker cluster: a real ZooKeeper, three gregor brokers
(replication_test.Cluster), confluent-kafka transactional producers and read_committed
consumers. `__transaction_state` has 3 partitions with replication factor 3; data topics
have replication factor 3 and min.insync.replicas=2.

Scenarios (each prints one PASS/FAIL line; exit 0 only if all pass):
  kill-before-commit  a transaction is open with its records written; the broker of its
                      coordinator is killed with -9 before commit_transaction. The commit
                      goes through the new coordinator or fails, never half: read_committed
                      sees all 30 records or none (all of them if the commit returned OK,
                      none if an abort returned OK), and a new producer with the same
                      transactional id inits and commits. The killed broker returns; the
                      replicas converge.
  kill-after-commit   the coordinator's broker is killed with -9 right after
                      commit_transaction returned: the records become visible to
                      read_committed (the new coordinator completes a PrepareCommit that
                      was left behind), the killed broker returns, the replicas converge.
  kill-markers-pending
                      as kill-after-commit, with the leader of one of the transaction's
                      partitions (another broker) SIGSTOPped while the commit is made, so
                      its marker cannot be written before the coordinator dies: the new
                      coordinator must find the transaction in PrepareCommit ("completing a
                      transaction left prepared") and finish it; every record is visible.
  copy-across-kills   consume-transform-produce with exactly-once (send_offsets_to_transaction,
                      read_committed input): the broker of the copier's transaction
                      coordinator, then that of its group coordinator, is killed with -9
                      mid-copy and restarted; the copier (a process of its own) starts over
                      (new producer of the same id, new consumer from the committed offsets)
                      on any error, and is killed with -9 and started again if it stalls
                      (librdkafka can hang past its timeouts after the group coordinator's
                      death). The output holds each of the 900 input records exactly once,
                      in its partition, and the group's committed offsets are the input's
                      ends.
  random-checker      4 transactional producers (threads, ids checker-0..3) run many small
                      transactions over a topic of 6 partitions, randomly committing or
                      aborting, each record naming (producer, transaction, index, count,
                      decision). Two of them have transaction and message timeouts
                      shorter than a failover (records expire, the coordinator aborts
                      and fences). A nemesis meanwhile kills -9 coordinators and partition
                      leaders (restarting them), kills and restarts a broker at once,
                      SIGSTOPs leaders briefly and a coordinator past the ZooKeeper session
                      timeout. Producers that hit a fatal error start a new instance with
                      the same transactional id. The client's belief of each transaction is
                      recorded (committed / aborted / never committed / unknown). At the
                      end, read_committed over every partition: no record of a transaction
                      that was not committed, no transaction seen in part, every committed
                      one seen whole, no record twice.

  transactions-v2     kafka-features.sh upgrades transaction.version to 2 at the controller
                      (in /feature) and every broker advertises it; a Java producer
                      (transactions v2: no AddPartitionsToTxn, the epoch bumped by every
                      EndTxn) runs commit, abort, commit, commit over the 3 partitions, some
                      led by other brokers than its coordinator (whose leaders add them with
                      AddPartitionsToTxn v5): in each partition every transaction is one epoch
                      up and its marker at the next one's epoch; read_committed sees exactly
                      the committed rounds. Then a Java copier (TxnOffsetCommit v5, the
                      group's coordinator on another broker than the transaction's) copies a
                      partition exactly once and commits the group's offset to its end. The
                      level is then downgraded to 0 again.

Every scenario ends with every killed broker back, no transaction left open (the last
stable offset is the high watermark in every partition) and byte-identical replicas of the
data topic and of `__transaction_state`.

usage: compat-tests/txn_cluster_test.py [--broker target/release/gregor] [--only NAME,...]
           [--seed N] [--client-logs] [--client-debug]
  --client-logs   print librdkafka's log lines (hidden: hundreds of "connection refused")
  --client-debug  librdkafka debug logs: random-checker's producers to one file each (in the
                  directory printed; TXN_CLIENT_DEBUG_STDERR=1: to stderr, unbuffered), the
                  copier's processes to copier-N.log in the cluster's directory;
                  TXN_CLIENT_DEBUG names the contexts (default "eos"; "eos,cgrp,protocol"
                  for the copier)
"""
import argparse
import collections
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402

from replication_test import REPO, SESSION_TIMEOUT_MS, Cluster, eventually  # noqa: E402
from compat.txn import partition_for, read_to_end, txn_client_run  # noqa: E402
from compat.wire import fetch_batch_producers, raw_call, string16  # noqa: E402

TXN_TOPIC = "__transaction_state"
TXN_PARTITIONS = 3
OVERRIDES = [
    f"transaction.state.log.num.partitions={TXN_PARTITIONS}",
    "transaction.state.log.replication.factor=3",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms=500",
]
PREPARED_LINE = "completing a transaction left prepared"
TIMEOUT_LINE = "aborting a transaction past its timeout"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# librdkafka's own log lines (a connection refused by a killed broker, ...) are expected
# here by the hundred: only critical ones are printed unless --client-logs.
CLIENT_LOGS = {"log_level": 2}
# --client-debug: random-checker's producers write librdkafka's debug log to files here.
CLIENT_DEBUG_DIR = None


# ---- helpers ------------------------------------------------------------------------------

def txn_partition(txn_id, partitions=TXN_PARTITIONS):
    """Kafka's partition of `__transaction_state` for a transactional id."""
    return partition_for(txn_id, partitions)


def find_coordinator(address, key, key_type=1, timeout=5):
    """A raw FindCoordinator v1 request: (error code, node id)."""
    host, port = address.rsplit(":", 1)
    data = raw_call(host, port, 10, 1, string16(key) + struct.pack(">b", key_type),
                    client_id="txn-cluster-test", timeout=timeout)
    _throttle, error = struct.unpack_from(">ih", data, 0)
    pos = 6
    msg_len = struct.unpack_from(">h", data, pos)[0]
    pos += 2 + max(msg_len, 0)
    node = struct.unpack_from(">i", data, pos)[0]
    return error, node


def live(cluster):
    return [i for i in (1, 2, 3) if i not in cluster.stopped]


def live_bootstrap(cluster):
    return ",".join(cluster.address(i) for i in live(cluster))


def coordinator_of(cluster, txn_id, timeout=30):
    """The broker coordinating `txn_id`: what FindCoordinator answers, once it agrees with
    the metadata leader of the id's `__transaction_state` partition and the broker runs."""
    def ask():
        for i in live(cluster):
            try:
                error, node = find_coordinator(cluster.address(i), txn_id)
            except OSError:
                continue
            if error != 0 or node <= 0 or node in cluster.stopped:
                continue
            try:
                leader = cluster.partitions(TXN_TOPIC)[txn_partition(txn_id)][0]
            except Exception:
                return None
            return node if leader == node else None
        return None
    return eventually(f"the coordinator of {txn_id}", timeout, ask, 0.3)


def ensure_txn_state(cluster):
    """Creates `__transaction_state` (the first FindCoordinator of a transactional id does)
    and waits until its every partition has a leader and three in-sync replicas."""
    coordinator_of(cluster, "bootstrap-txn-state")
    parts = cluster.partitions(TXN_TOPIC)
    assert len(parts) == TXN_PARTITIONS, f"{TXN_TOPIC} has {len(parts)} partitions"
    assert all(len(v[1]) == 3 for v in parts.values()), f"{TXN_TOPIC} replicas: {parts}"
    cluster.wait_isr_whole(topic=TXN_TOPIC)


def wait_healed(cluster, topic, timeout=60):
    cluster.wait_isr_whole(timeout=timeout, topic=topic)
    cluster.wait_isr_whole(timeout=timeout, topic=TXN_TOPIC)


def debug_logger(name):
    """A logger writing librdkafka's debug lines to CLIENT_DEBUG_DIR/name.log (None with
    TXN_CLIENT_DEBUG_STDERR set: librdkafka writes them to stderr itself, as they happen;
    through a logger they are written when the application polls)."""
    if os.environ.get("TXN_CLIENT_DEBUG_STDERR"):
        return None
    import logging
    log = logging.getLogger(f"librdkafka-{name}")
    if not log.handlers:
        log.setLevel(logging.DEBUG)
        log.propagate = False
        handler = logging.FileHandler(os.path.join(CLIENT_DEBUG_DIR, f"{name}.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    return log


def txn_producer(bootstrap, txn_id, init_timeout=60, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id,
            "transaction.timeout.ms": 30000, "message.timeout.ms": 25000,
            "socket.timeout.ms": 10000, "request.timeout.ms": 10000,
            "retry.backoff.ms": 100, "retry.backoff.max.ms": 500, "linger.ms": 5}
    conf.update(CLIENT_LOGS)
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(init_timeout)
    return p


def read_topic(cluster, topic, partitions, level="read_committed", timeout=30):
    """Every record of `topic` up to the end a consumer at `level` sees, from the brokers
    that run: a list of (partition, offset, value)."""
    return read_to_end(live_bootstrap(cluster), topic, partitions, level, timeout,
                       conf={"socket.timeout.ms": 10000, "topic.metadata.refresh.interval.ms": 1000,
                             **CLIENT_LOGS},
                       transient_errors=True)


def end_offsets(cluster, topic, partitions, level):
    """partition -> the end offset ListOffsets answers at `level`: the last stable offset
    (read_committed) or the high watermark (read_uncommitted)."""
    c = Consumer({"bootstrap.servers": live_bootstrap(cluster), "group.id": f"ends-{time.time()}",
                  "isolation.level": level, **CLIENT_LOGS})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in range(partitions)}
    finally:
        c.close()


def check_nothing_open(cluster, topic, partitions, timeout=30):
    """No transaction is left open (hanging) in any partition of `topic`: the last stable
    offset reaches the high watermark everywhere (waits while markers are written)."""
    last = {}

    def closed():
        last["lso"] = end_offsets(cluster, topic, partitions, "read_committed")
        last["hw"] = end_offsets(cluster, topic, partitions, "read_uncommitted")
        return last["lso"] == last["hw"]
    try:
        eventually(f"every transaction of {topic} ended", timeout, closed, 1)
    except AssertionError:
        stuck = {p: (last["lso"][p], last["hw"][p]) for p in range(partitions)
                 if last["lso"][p] != last["hw"][p]}
        raise AssertionError(f"{topic}: a transaction left open (last stable offset, high "
                             f"watermark) per partition: {stuck}")
    return f"no transaction left open (last stable offset = high watermark = {sum(last['hw'].values())} in all)"


def segment_bytes(data_dir, topic, partition):
    d = os.path.join(data_dir, f"{topic}-{partition}")
    try:
        files = sorted(f for f in os.listdir(d) if f.endswith(".log"))
    except FileNotFoundError:
        return b""
    return b"".join(open(os.path.join(d, f), "rb").read() for f in files)


def check_converged(cluster, topics):
    """The three replicas of every partition of `topics` ([(topic, partitions)]) hold the
    same bytes (waits while they catch up)."""
    def same():
        for topic, parts in topics:
            for p in range(parts):
                copies = [segment_bytes(cluster.data_dir(i), topic, p) for i in (1, 2, 3)]
                if not (copies[0] == copies[1] == copies[2]):
                    return None
        return True
    try:
        eventually("identical replicas", 30, same, 0.5)
    except AssertionError:
        sizes = {f"{t}-{p}": [len(segment_bytes(cluster.data_dir(i), t, p)) for i in (1, 2, 3)]
                 for t, n in topics for p in range(n)}
        raise AssertionError(f"replicas differ: segment bytes per broker {sizes}")
    total = sum(len(segment_bytes(cluster.data_dir(1), t, p)) for t, n in topics for p in range(n))
    return f"replicas identical ({total} bytes per broker)"


def log_lines(cluster, i, needle):
    with open(cluster.log_path(i), errors="replace") as f:
        return [ANSI.sub("", line).rstrip() for line in f if needle in ANSI.sub("", line)]


def count_log(cluster, needle):
    return {i: len(log_lines(cluster, i, needle)) for i in (1, 2, 3)}


def restart_all(cluster):
    """Whatever a scenario left killed or stopped runs again."""
    for i in (1, 2, 3):
        if cluster.procs[i].poll() is not None:
            cluster.restart(i)
        elif i in cluster.stopped:
            cluster.cont_signal(i)


def commit_or_abort(p, timeout=30, attempts=3):
    """commit_transaction with the retries the client allows: ("committed" | "aborted" |
    "failed", [(error name, error text)])."""
    names = []
    for _ in range(attempts):
        try:
            p.commit_transaction(timeout)
            return "committed", names
        except KafkaException as e:
            err = e.args[0]
            names.append((err.name(), err.str()))
            if err.retriable():
                continue
            if err.txn_requires_abort():
                try:
                    p.abort_transaction(timeout)
                    return "aborted", names
                except KafkaException as e2:
                    names.append((e2.args[0].name(), e2.args[0].str()))
            return "failed", names
    return "failed", names


# ---- coordinator failover -----------------------------------------------------------------

FAILOVER_TOPIC = "txn-failover"
FAILOVER_PARTITIONS = 3


def failover_setup(cluster):
    if FAILOVER_TOPIC not in cluster.admin().list_topics(timeout=10).topics:
        cluster.create_topic(FAILOVER_TOPIC, FAILOVER_PARTITIONS)
    ensure_txn_state(cluster)


def values_of(seen, prefix):
    """The values of `seen` starting with `prefix`, and how many were read twice."""
    vals = [v for _, _, v in seen if v.startswith(prefix)]
    return set(vals), len(vals) - len(set(vals))


def kill_before_commit(cluster):
    failover_setup(cluster)
    tid = "failover-a"
    want = {f"a-{i}" for i in range(30)}
    p = txn_producer(cluster.bootstrap, tid)
    p.begin_transaction()
    for i in range(30):
        p.produce(FAILOVER_TOPIC, value=f"a-{i}".encode(), partition=i % FAILOVER_PARTITIONS)
    assert p.flush(30) == 0, "records of the open transaction not acknowledged"
    coordinator = coordinator_of(cluster, tid)
    cluster.kill9(coordinator)
    killed = time.time()
    outcome, errors = commit_or_abort(p, timeout=30)
    took = time.time() - killed
    new_coordinator = coordinator_of(cluster, tid)
    assert new_coordinator != coordinator
    # A new producer of the same id inits (fencing the first) and commits, on every partition.
    q = txn_producer(cluster.bootstrap, tid)
    q.begin_transaction()
    after = {f"a-after-{k}" for k in range(FAILOVER_PARTITIONS)}
    for k in range(FAILOVER_PARTITIONS):
        q.produce(FAILOVER_TOPIC, value=f"a-after-{k}".encode(), partition=k)
    q.commit_transaction(30)

    def read():
        seen = read_topic(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS)
        return seen if after <= values_of(seen, "a-after-")[0] else None
    seen = eventually("the second producer's records visible", 40, read, 1)
    got, dups = values_of([s for s in seen if not s[2].startswith("a-after")], "a-")
    verdict = (f"commit after the kill {outcome} in {took:.1f}s (errors {[n + ': ' + t for n, t in errors] or 'none'}); "
               f"read_committed with broker {coordinator} down: {len(got)} of 30, {dups} twice")
    assert dups == 0, verdict
    assert got in (set(), want), f"half a transaction visible: {verdict}"
    if outcome == "committed":
        assert got == want, f"commit returned OK but the records are not visible: {verdict}"
    if outcome == "aborted":
        assert not got, f"abort returned OK but the records are visible: {verdict}"
    cluster.restart(coordinator)
    wait_healed(cluster, FAILOVER_TOPIC)
    again, dups = values_of(read_topic(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS), "a-")
    assert again == got | after and dups == 0, f"after the restart: {len(again)} values, {dups} twice"
    return (f"coordinator {coordinator} killed before the commit (new coordinator "
            f"{new_coordinator}): {verdict}; the same id then inits and commits; after the "
            f"restart the same; {check_nothing_open(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS)}; "
            f"{check_converged(cluster, [(FAILOVER_TOPIC, FAILOVER_PARTITIONS), (TXN_TOPIC, TXN_PARTITIONS)])}")


def kill_after_commit(cluster):
    failover_setup(cluster)
    tid = "failover-b"
    want = {f"b-{i}" for i in range(30)}
    coordinator = coordinator_of(cluster, tid)
    before = count_log(cluster, f"{PREPARED_LINE} transactional_id={tid} ")
    p = txn_producer(cluster.bootstrap, tid)
    p.begin_transaction()
    for i in range(30):
        p.produce(FAILOVER_TOPIC, value=f"b-{i}".encode(), partition=i % FAILOVER_PARTITIONS)
    p.commit_transaction(30)
    cluster.kill9(coordinator)
    killed = time.time()

    def visible():
        got, dups = values_of(read_topic(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS), "b-")
        assert dups == 0, f"{dups} records read twice"
        return got if got == want else None
    try:
        eventually("the committed transaction visible", 40, visible, 1)
    except AssertionError as e:
        raise AssertionError(f"commit returned OK, coordinator {coordinator} killed: {e}")
    seen_after = time.time() - killed
    new_coordinator = coordinator_of(cluster, tid)
    completed = log_lines(cluster, new_coordinator,
                          f"{PREPARED_LINE} transactional_id={tid} ")[before[new_coordinator]:]
    how = (f"the new coordinator {new_coordinator} completed the PrepareCommit left behind"
           if completed else f"its markers were written before the kill (new coordinator {new_coordinator})")
    q = txn_producer(cluster.bootstrap, tid)
    q.begin_transaction()
    q.produce(FAILOVER_TOPIC, value=b"b-after", partition=0)
    q.commit_transaction(30)
    cluster.restart(coordinator)
    wait_healed(cluster, FAILOVER_TOPIC)
    again, dups = values_of(read_topic(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS), "b-")
    assert again == want | {"b-after"} and dups == 0, f"after the restart: {len(again)} values, {dups} twice"
    return (f"coordinator {coordinator} killed right after commit returned: all 30 visible "
            f"{seen_after:.1f}s later ({how}); after the restart the same; "
            f"{check_nothing_open(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS)}; "
            f"{check_converged(cluster, [(FAILOVER_TOPIC, FAILOVER_PARTITIONS), (TXN_TOPIC, TXN_PARTITIONS)])}")


def kill_markers_pending(cluster):
    failover_setup(cluster)
    tid = "failover-c"
    want = {f"c-{i}" for i in range(30)}
    coordinator = coordinator_of(cluster, tid)
    leaders = {p: v[0] for p, v in cluster.partitions(FAILOVER_TOPIC).items()}
    held = [p for p, leader in leaders.items() if leader != coordinator]
    assert held, f"every partition is led by the coordinator {coordinator}: {leaders}"
    stopped = leaders[held[0]]
    before = count_log(cluster, f"{PREPARED_LINE} transactional_id={tid} ")
    p = txn_producer(cluster.bootstrap, tid)
    p.begin_transaction()
    for i in range(30):
        p.produce(FAILOVER_TOPIC, value=f"c-{i}".encode(), partition=i % FAILOVER_PARTITIONS)
    assert p.flush(30) == 0, "records of the open transaction not acknowledged"
    # The leader of partition held[0] stops: the PrepareCommit is stored once it left the
    # ISR of the coordinator's partition, its marker cannot be written before the kill.
    cluster.stop_signal(stopped)
    t0 = time.time()
    try:
        p.commit_transaction(45)
        took = time.time() - t0
        cluster.kill9(coordinator)
    finally:
        cluster.cont_signal(stopped)
    killed = time.time()

    def visible():
        got, dups = values_of(read_topic(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS), "c-")
        assert dups == 0, f"{dups} records read twice"
        return got if got == want else None
    try:
        eventually("the committed transaction visible", 45, visible, 1)
    except AssertionError as e:
        raise AssertionError(f"commit returned OK, coordinator {coordinator} killed while broker "
                             f"{stopped} (leader of partition {held[0]}) was stopped: {e}")
    seen_after = time.time() - killed
    new_coordinator = coordinator_of(cluster, tid)
    completed = log_lines(cluster, new_coordinator,
                          f"{PREPARED_LINE} transactional_id={tid} ")[before[new_coordinator]:]
    assert completed, (f"the new coordinator {new_coordinator} did not say it completed the "
                       f"prepared transaction {tid}")
    cluster.restart(coordinator)
    wait_healed(cluster, FAILOVER_TOPIC)
    again, dups = values_of(read_topic(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS), "c-")
    assert again == want and dups == 0, f"after the restart: {len(again)} values, {dups} twice"
    return (f"broker {stopped} (leader of partition {held[0]}) SIGSTOPped, commit returned after "
            f"{took:.1f}s, coordinator {coordinator} killed: the new coordinator "
            f"{new_coordinator} completed the PrepareCommit, all 30 visible {seen_after:.1f}s "
            f"after the kill; after the restart the same; "
            f"{check_nothing_open(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS)}; "
            f"{check_converged(cluster, [(FAILOVER_TOPIC, FAILOVER_PARTITIONS), (TXN_TOPIC, TXN_PARTITIONS)])}")


# ---- exactly-once copy across coordinator kills ----------------------------------------------

COPY_IN, COPY_OUT, COPY_PARTITIONS, COPY_RECORDS = "copy-in", "copy-out", 3, 900


# The copier, run as its own process (it may have to be killed: see Copier). argv: bootstrap,
# the input's end offsets as "p:offset,...", the librdkafka config as a Python literal.
COPIER_SCRIPT = r"""
import ast, sys, time
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
bootstrap, extra = sys.argv[1], ast.literal_eval(sys.argv[2])
IN, OUT, PARTS = "%s", "%s", %d
def say(*words):
    print(*words, flush=True)
def session():
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "copier",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True,
                  "socket.timeout.ms": 10000, **extra})
    p = None
    try:
        c.assign([TopicPartition(IN, k) for k in range(PARTS)])
        p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "copier",
                      "transaction.timeout.ms": 30000, "socket.timeout.ms": 10000,
                      "request.timeout.ms": 10000, "retry.backoff.max.ms": 500, **extra})
        p.init_transactions(30)
        eof = set()
        while True:
            msgs = []
            for m in c.consume(10, 1):
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        eof.add(m.partition())
                    continue
                msgs.append(m)
                eof.discard(m.partition())
            if not msgs:
                if len(eof) == PARTS:
                    return True
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(OUT, value=m.value(), partition=m.partition())
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 20)
            p.commit_transaction(20)
            say("committed")
            time.sleep(0.1)
    except KafkaException as e:
        err = e.args[0]
        say("error", err.name())
        if p is not None and err.txn_requires_abort():
            try:
                p.abort_transaction(20)
            except KafkaException as e2:
                say("error", e2.args[0].name())
        return False
    finally:
        c.close()
        if p is not None:
            p.purge()
            p.flush(1)
while not session():
    say("restart")
say("done")
""" % (COPY_IN, COPY_OUT, COPY_PARTITIONS)


class Copier:
    """Consume-transform-produce with exactly-once, in a process of its own: reads COPY_IN
    (read_committed, group `copier`) and writes each record to the same partition of
    COPY_OUT in transactions that also commit the consumed offsets
    (send_offsets_to_transaction), ten records at a time. On any error it aborts if it can
    and starts over with a new producer (same transactional id) and a new consumer, which
    resumes at the group's committed offsets.

    A watchdog kills it with -9 (and starts another) when it stalls for STALL_S: librdkafka
    has been seen to hang in send_offsets_to_transaction past its own timeout after the
    group coordinator's broker died (it waited 54 s on the dead broker's handle, which it
    had dropped from its metadata, without looking the coordinator up again). Kafka's
    contract covers that too: the next instance fences the killed one."""
    STALL_S = 25

    def __init__(self, cluster, deadline):
        self.cluster = cluster
        self.deadline = deadline
        self.batches = 0
        self.restarts = 0
        self.killed = 0
        self.errors = []
        self.done = False
        self.failure = None
        self.last_progress = time.time()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.supervise, daemon=True, name="copier")

    def start(self):
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)

    def supervise(self):
        n = 0
        while not self.done and time.time() < self.deadline:
            n += 1
            extra = dict(CLIENT_LOGS)
            if CLIENT_DEBUG_DIR:
                extra = {"debug": os.environ.get("TXN_CLIENT_DEBUG", "eos,cgrp,protocol"), "log_level": 7}
            with open(os.path.join(self.cluster.root, f"copier-{n}.log"), "w") as log:
                proc = subprocess.Popen([sys.executable, "-c", COPIER_SCRIPT, self.cluster.bootstrap,
                                         repr(extra)], stdout=subprocess.PIPE, stderr=log, text=True)
                reader = threading.Thread(target=self.read, args=(proc,), daemon=True)
                reader.start()
                self.last_progress = time.time()
                while proc.poll() is None:
                    if time.time() - self.last_progress > self.STALL_S or time.time() > self.deadline:
                        proc.kill()
                        proc.wait()
                        self.killed += 1
                        break
                    time.sleep(0.2)
                reader.join(5)
            if not self.done and proc.returncode not in (0, -9):
                self.failure = f"the copier exited with {proc.returncode} (see {log.name})"
                return

    def read(self, proc):
        for line in proc.stdout:
            words = line.split()
            if not words:
                continue
            self.last_progress = time.time()
            if words[0] == "committed":
                self.batches += 1
            elif words[0] == "error":
                self.errors.append(words[1])
            elif words[0] == "restart":
                self.restarts += 1
            elif words[0] == "done":
                self.done = True


def copy_across_kills(cluster):
    """Consume-transform-produce with exactly-once: the broker of the copier's transaction
    coordinator, then the broker of its group coordinator, is killed with -9 mid-copy (and
    restarted). The output, read_committed, holds every input record exactly once, in its
    partition; the group's committed offsets are the input's ends."""
    failover_setup(cluster)
    for topic in (COPY_IN, COPY_OUT):
        cluster.create_topic(topic, COPY_PARTITIONS)
    plain = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                      "enable.idempotence": True, **CLIENT_LOGS})
    for i in range(COPY_RECORDS):
        plain.produce(COPY_IN, value=f"in-{i}".encode(), partition=i % COPY_PARTITIONS)
    assert plain.flush(30) == 0, "input not written"
    ends = end_offsets(cluster, COPY_IN, COPY_PARTITIONS, "read_uncommitted")
    copier = Copier(cluster, time.time() + 150)
    copier.start()
    kills = []
    try:
        for what, key_type in (("transaction coordinator", 1), ("group coordinator", 0)):
            mark = copier.batches
            eventually("the copier making progress", 60,
                       lambda: copier.batches >= mark + 5 or copier.done or copier.failure, 0.2)
            if copier.done or copier.failure:
                break
            key = "copier"
            victim = (coordinator_of(cluster, key) if key_type == 1 else eventually(
                "the group coordinator", 30, lambda: (lambda r: r[1] if r[0] == 0 and r[1] > 0 else None)(
                    find_coordinator(live_bootstrap(cluster).split(",")[0], key, key_type=0))))
            at = copier.batches
            cluster.kill9(victim)
            t0 = time.time()
            try:
                eventually(f"the copier making progress with broker {victim} down", 75,
                           lambda: copier.batches >= at + 3 or copier.done or copier.failure, 0.2)
            except AssertionError as e:
                raise AssertionError(f"{what} {victim} killed after {at} transactions: {e}; the "
                                     f"copier: {copier.batches} transactions, {copier.restarts} "
                                     f"restarts, {copier.killed} killed stalled, errors {copier.errors}")
            resumed = time.time() - t0
            cluster.restart(victim)
            wait_healed(cluster, COPY_OUT)
            kills.append(f"{what} {victim} killed after {at} transactions, copying went on "
                         f"{resumed:.1f}s later")
        copier.join(max(1.0, copier.deadline - time.time() + 10))
    finally:
        restart_all(cluster)
    assert not copier.failure, copier.failure
    assert copier.done, f"the copier did not finish within its deadline ({copier.batches} transactions)"
    assert len(kills) == 2, f"the copier finished before the faults: {kills}"
    out = read_topic(cluster, COPY_OUT, COPY_PARTITIONS)
    values = collections.Counter(v for _, _, v in out)
    dups = [v for v, n in values.items() if n > 1]
    missing = [f"in-{i}" for i in range(COPY_RECORDS) if f"in-{i}" not in values]
    moved = [(p, v) for p, _, v in out if int(v.split("-")[1]) % COPY_PARTITIONS != p]
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "copier", **CLIENT_LOGS})
    committed = {tp.partition: tp.offset for tp in
                 c.committed([TopicPartition(COPY_IN, k) for k in range(COPY_PARTITIONS)], timeout=30)}
    c.close()
    everything = read_topic(cluster, COPY_OUT, COPY_PARTITIONS, level="read_uncommitted")
    verdict = (f"{len(out)} records read_committed of {COPY_RECORDS}: {len(dups)} twice, "
               f"{len(missing)} missing, {len(moved)} in another partition; committed offsets "
               f"{committed} (input ends {ends})")
    assert not dups and not missing and not moved, f"{verdict}; e.g. {(dups + missing)[:5]}"
    assert committed == ends, verdict
    return (f"{verdict}; {copier.batches} transactions, {copier.restarts} restarts of the copier "
            f"(errors {dict(collections.Counter(copier.errors)) or 'none'}), {copier.killed} "
            f"copier processes killed after stalling {Copier.STALL_S}s, "
            f"{len(everything) - len(out)} aborted copies hidden; {'; '.join(kills)}; "
            f"{check_nothing_open(cluster, COPY_OUT, COPY_PARTITIONS)}; "
            f"{check_converged(cluster, [(COPY_OUT, COPY_PARTITIONS), (TXN_TOPIC, TXN_PARTITIONS)])}")


# ---- random checker -----------------------------------------------------------------------

CHECKER_TOPIC = "txn-checker"
CHECKER_PARTITIONS = 6
WORKERS = 4
MIN_TXNS = 30
MAX_TXNS = 400


class Worker(threading.Thread):
    """One transactional id's producer: transactions of 1-8 records to random partitions,
    committed (60 %) or aborted. `txns[n]` is what the client believed of transaction n:
      committed        commit_transaction returned OK
      aborted          abort_transaction returned OK (after a failed commit too)
      never-committed  commit was never asked for (it failed before, fatally)
      unknown          commit was asked for and neither it nor an abort answered OK"""

    def __init__(self, cluster, w, seed, stop, deadline):
        super().__init__(daemon=True, name=f"worker-{w}")
        self.cluster = cluster
        self.w = w
        self.txn_id = f"checker-{w}"
        self.rng = random.Random(seed)
        self.stop = stop
        self.deadline = deadline
        self.txns = {}          # n -> dict(count, decision, belief, errors, gen)
        # Producers 0 and 1 wait out every fault; 2 and 3 have transaction and message
        # timeouts shorter than a failover: their records expire (an abortable error) and
        # the coordinator aborts their transactions (fencing them: a fatal error, re-init).
        self.timeouts = [
            {"transaction.timeout.ms": 20000, "message.timeout.ms": 15000,
             "socket.timeout.ms": 10000, "request.timeout.ms": 10000},
            {"transaction.timeout.ms": 6000, "message.timeout.ms": 5000,
             "socket.timeout.ms": 5000, "request.timeout.ms": 5000},
            {"transaction.timeout.ms": 4000, "message.timeout.ms": 3000,
             "socket.timeout.ms": 3000, "request.timeout.ms": 3000},
        ][(0, 0, 1, 2)[w % 4]]
        self.instances = 0      # producer instances made (re-inits after fatal errors)
        self.init_failures = []
        self.error_log = []     # (time, transaction, error name, error text)
        self.debug_log = debug_logger(self.txn_id) if CLIENT_DEBUG_DIR else None
        self.crash = None
        self.closed_ok = False

    def new_producer(self):
        while time.time() < self.deadline:
            self.instances += 1
            p = None
            try:
                conf = {"bootstrap.servers": self.cluster.bootstrap,
                        "transactional.id": self.txn_id,
                        "retry.backoff.ms": 100, "retry.backoff.max.ms": 500,
                        "linger.ms": 2, "on_delivery": self.delivered,
                        **self.timeouts, **CLIENT_LOGS}
                if CLIENT_DEBUG_DIR:
                    # librdkafka's transaction manager, for the record: a file per producer.
                    conf.update({"debug": os.environ.get("TXN_CLIENT_DEBUG", "eos"), "log_level": 7})
                    if self.debug_log:
                        conf["logger"] = self.debug_log
                p = Producer(conf)
                p.init_transactions(30)
                return p
            except KafkaException as e:
                self.init_failures.append(e.args[0].name())
                self.discard(p)
                time.sleep(0.5)
        return None

    def delivered(self, err, msg):
        # Purged: what abort_transaction drops of an aborted transaction's queue (expected).
        if err is not None and err.name() not in ("_PURGE_QUEUE", "_PURGE_INFLIGHT"):
            v = msg.value().decode()
            self.error_log.append((time.time(), int(v.split(":")[1]), f"delivery of {v} to "
                                   f"partition {msg.partition()}: {err.name()}", err.str()))

    @staticmethod
    def discard(p):
        if p is None:
            return
        try:
            p.purge()
            p.flush(1)
        except Exception:
            pass

    def run(self):
        try:
            self.loop()
        except Exception:
            self.crash = traceback.format_exc()

    def loop(self):
        p = None
        n = 0
        while n < MAX_TXNS and time.time() < self.deadline and not (self.stop.is_set() and n >= MIN_TXNS):
            if p is None:
                p = self.new_producer()
                if p is None:
                    break
            commit = self.rng.random() < 0.6
            count = self.rng.randint(1, 8)
            t = {"count": count, "decision": "c" if commit else "a", "belief": None,
                 "errors": [], "gen": self.instances}
            self.txns[n] = t
            commit_asked = False
            try:
                p.begin_transaction()
                for i in range(count):
                    v = f"{self.w}:{n}:{i}:{count}:{t['decision']}"
                    p.produce(CHECKER_TOPIC, value=v.encode(),
                              partition=self.rng.randrange(CHECKER_PARTITIONS))
                    p.poll(0)
                if commit:
                    commit_asked = True
                    outcome, errors = commit_or_abort(p, timeout=15, attempts=2)
                    t["errors"] += [name for name, _ in errors]
                    self.error_log += [(time.time(), n, name, text) for name, text in errors]
                    t["belief"] = {"committed": "committed", "aborted": "aborted"}.get(outcome)
                else:
                    # Written first (abort_transaction would purge what is still queued):
                    # the aborted records are in the log for read_committed to skip.
                    if p.flush(15) != 0:
                        t["errors"].append("flush-timeout")
                    p.abort_transaction(15)
                    t["belief"] = "aborted"
            except (KafkaException, SystemError) as e:
                # confluent-kafka raises a fatal error met inside flush() as a SystemError
                # whose cause is the KafkaException.
                cause = e if isinstance(e, KafkaException) else e.__cause__
                if not isinstance(cause, KafkaException):
                    raise
                err = cause.args[0]
                t["errors"].append(err.name())
                self.error_log.append((time.time(), n, err.name(), err.str()))
                if not err.fatal():
                    try:
                        p.abort_transaction(15)
                        t["belief"] = "aborted"
                    except KafkaException as e2:
                        t["errors"].append(e2.args[0].name())
            if t["belief"] is None:
                # No answer that settles it: this instance is done with; a new one of the
                # same id fences it and finishes (or aborts) what it left.
                t["belief"] = "unknown" if commit_asked else "never-committed"
                self.discard(p)
                p = None
            n += 1
            time.sleep(self.rng.uniform(0.02, 0.15))
        # A last instance of the id: whatever the previous one left open is ended.
        self.discard(p)
        last = self.new_producer()
        if last is not None:
            self.closed_ok = True
            self.discard(last)


def nemesis(cluster, rng, stop_early, started):
    """Faults one after another, each healed before the next: returns what was done."""
    done = []
    faults = ["kill-coordinator", "kill-leader", "stop-leader", "stop-coordinator",
              "kill-restart-fast", "kill-coordinator", "stop-leader", "kill-leader"]
    rng.shuffle(faults)
    for fault in faults:
        if stop_early.is_set():
            break
        time.sleep(rng.uniform(1.0, 3.0))
        tid = f"checker-{rng.randrange(WORKERS)}"
        if "coordinator" in fault:
            victim = coordinator_of(cluster, tid)
            what = f"coordinator of {tid}"
        elif fault == "kill-restart-fast":
            victim = rng.choice([1, 2, 3])
            what = "broker"
        else:
            p = rng.randrange(CHECKER_PARTITIONS)
            victim = cluster.leader(p, CHECKER_TOPIC)
            what = f"leader of partition {p}"
        t0 = time.time()
        if fault.startswith("kill"):
            cluster.kill9(victim)
            if fault != "kill-restart-fast":
                time.sleep(rng.uniform(SESSION_TIMEOUT_MS / 1000, SESSION_TIMEOUT_MS / 1000 + 3))
            cluster.restart(victim)
            how = "kill -9, restart" if fault == "kill-restart-fast" else "kill -9"
        else:
            cluster.stop_signal(victim)
            pause = (rng.uniform(1.0, 2.5) if fault == "stop-leader"
                     else SESSION_TIMEOUT_MS / 1000 + rng.uniform(1.5, 3))
            time.sleep(pause)
            cluster.cont_signal(victim)
            how = f"SIGSTOP {pause:.1f}s"
        wait_healed(cluster, CHECKER_TOPIC)
        done.append(f"t+{t0 - started:.0f}s {how} of broker {victim} ({what}), healed "
                    f"{time.time() - t0:.0f}s later")
    return done


def parse(value):
    w, n, i, count, decision = value.split(":")
    return int(w), int(n), int(i), int(count), decision


def check_transactions(workers, seen):
    """Compares what read_committed saw with what the clients believed: a dict of findings."""
    parts = collections.defaultdict(list)
    for _, _, v in seen:
        w, n, i, count, decision = parse(v)
        parts[(w, n)].append(i)
    out = {"dups": [], "partial": [], "not-committed-seen": [], "committed-missing": [],
           "unknown-seen": 0, "unknown-absent": 0, "unrecorded": []}
    for (w, n), idx in parts.items():
        if len(idx) != len(set(idx)):
            out["dups"].append((w, n))
    for worker in workers:
        for n, t in worker.txns.items():
            idx = set(parts.get((worker.w, n), []))
            whole = idx == set(range(t["count"]))
            if idx and not whole:
                out["partial"].append((worker.w, n, sorted(idx), t["count"], t["belief"]))
            b = t["belief"]
            if b == "committed" and not whole:
                out["committed-missing"].append((worker.w, n, sorted(idx), t["count"]))
            elif b in ("aborted", "never-committed") and idx:
                out["not-committed-seen"].append((worker.w, n, b, t["decision"], t["errors"]))
            elif b == "unknown":
                out["unknown-seen" if idx else "unknown-absent"] += 1
    for (w, n) in parts:
        if n not in workers[w].txns:
            out["unrecorded"].append((w, n))
    return out


def random_checker(cluster, seed):
    rng = random.Random(seed)
    cluster.create_topic(CHECKER_TOPIC, CHECKER_PARTITIONS)
    ensure_txn_state(cluster)
    coordinators = {f"checker-{w}": coordinator_of(cluster, f"checker-{w}") for w in range(WORKERS)}
    prepared_before = count_log(cluster, PREPARED_LINE)
    timeouts_before = count_log(cluster, TIMEOUT_LINE)
    stop = threading.Event()
    started = time.time()
    deadline = started + 150
    workers = [Worker(cluster, w, seed * 100 + w, stop, deadline) for w in range(WORKERS)]
    for w in workers:
        w.start()
    faults = []
    try:
        eventually("every producer past its first transactions", 60,
                   lambda: all(len(w.txns) >= 3 or w.crash for w in workers), 0.5)
        faults = nemesis(cluster, rng, stop, started)
    finally:
        stop.set()
        for w in workers:
            w.join(max(1.0, deadline + 70 - time.time()))
        restart_all(cluster)
    hung = [w.txn_id for w in workers if w.is_alive()]
    assert not hung, f"producers still running past the deadline: {hung}"
    crashed = [(w.txn_id, w.crash) for w in workers if w.crash]
    assert not crashed, f"producer threads crashed: {crashed}"
    wait_healed(cluster, CHECKER_TOPIC)
    beliefs = collections.Counter(t["belief"] for w in workers for t in w.txns.values())
    errors = collections.Counter(e for w in workers for t in w.txns.values() for e in t["errors"])
    with_errors = sum(1 for w in workers for t in w.txns.values() if t["errors"])
    abort_after_commit = sum(1 for w in workers for t in w.txns.values()
                             if t["belief"] == "aborted" and t["decision"] == "c")
    total_txns = sum(beliefs.values())

    # Markers are written after commit returned: wait (bounded) until what read_committed
    # sees settles into whole transactions, then judge the last read.
    last = {}

    def settled():
        seen = read_topic(cluster, CHECKER_TOPIC, CHECKER_PARTITIONS)
        last["seen"] = seen
        last["found"] = check_transactions(workers, seen)
        f = last["found"]
        return not (f["partial"] or f["committed-missing"])
    try:
        eventually("every committed transaction visible whole", 30, settled, 2)
    except AssertionError:
        pass
    seen, found = last["seen"], last["found"]
    everything = read_topic(cluster, CHECKER_TOPIC, CHECKER_PARTITIONS, level="read_uncommitted")
    prepared = {i: c - prepared_before[i] for i, c in count_log(cluster, PREPARED_LINE).items()}
    timed_out = {i: c - timeouts_before[i] for i, c in count_log(cluster, TIMEOUT_LINE).items()}
    at = time.strftime("%H:%M:%S", time.gmtime(started))
    summary = (f"seed {seed}, t+0 = {at} UTC; {WORKERS} producers, {total_txns} transactions: "
               f"{beliefs['committed']} committed, {beliefs['aborted']} aborted, "
               f"{beliefs['never-committed']} never committed, {beliefs['unknown']} unknown "
               f"({found['unknown-seen']} of them visible whole, {found['unknown-absent']} not at all), "
               f"{abort_after_commit} aborted after their commit failed; per producer "
               f"{[len(w.txns) for w in workers]}; {with_errors} transactions met client errors "
               f"{dict(errors) or ''}; "
               f"{sum(w.instances for w in workers)} producer instances "
               f"({sum(len(w.init_failures) for w in workers)} failed inits); "
               f"read_committed {len(seen)} records of {len(everything)} written; "
               f"coordinators at start {coordinators}; "
               f"{len(faults)} faults: {'; '.join(faults)}; "
               f"prepared transactions completed by a new coordinator {sum(prepared.values())}, "
               f"coordinator timeouts {sum(timed_out.values())}")
    problems = []
    if found["dups"]:
        problems.append(f"{len(found['dups'])} transactions with a record read twice, e.g. {found['dups'][:3]}")
    if found["partial"]:
        problems.append(f"{len(found['partial'])} transactions seen in part, e.g. {found['partial'][:3]}")
    if found["not-committed-seen"]:
        problems.append(f"{len(found['not-committed-seen'])} transactions not committed yet visible, "
                        f"e.g. {found['not-committed-seen'][:3]}")
    if found["committed-missing"]:
        problems.append(f"{len(found['committed-missing'])} committed transactions not (wholly) "
                        f"visible, e.g. {found['committed-missing'][:3]}")
    if found["unrecorded"]:
        problems.append(f"records of transactions no producer recorded: {found['unrecorded'][:3]}")
    not_closed = [w.txn_id for w in workers if not w.closed_ok]
    if not_closed:
        problems.append(f"no new producer of {not_closed} could init at the end")
    try:
        open_note = check_nothing_open(cluster, CHECKER_TOPIC, CHECKER_PARTITIONS)
    except AssertionError as e:
        open_note = None
        problems.append(str(e))
    if len(faults) < 4:
        problems.append(f"only {len(faults)} faults injected")
    # The unexpected first: a record or a transaction timing out is what faults do.
    details = sorted((("TIMED_OUT" in name), t - started, w.txn_id, n, name, text)
                     for w in workers for t, n, name, text in w.error_log)
    if details:
        summary += "\n    client errors: " + "\n    ".join(
            f"t+{t:.1f}s {tid} transaction {n}: {name}: {text}" for _, t, tid, n, name, text in details[:20])
    assert not problems, f"{summary}\n    " + "\n    ".join(problems)
    return (f"{summary}; {open_note}; "
            f"{check_converged(cluster, [(CHECKER_TOPIC, CHECKER_PARTITIONS), (TXN_TOPIC, TXN_PARTITIONS)])}")


def feature_command(cluster, *args, bootstrap=None):
    """Kafka's kafka-features.sh (FeatureCommand, the tools jars install-deps fetches); its
    stdout, asserting exit 0."""
    lib = os.path.join(REPO, "target", "kafka-tools-lib")
    assert os.path.isdir(lib), f"{lib} missing (scripts/install-deps.sh)"
    argv = ["java", "-Xmx256m", "-cp", os.path.join(lib, "*"), "org.apache.kafka.tools.FeatureCommand",
            "--bootstrap-server", bootstrap or cluster.bootstrap] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"kafka-features {' '.join(args)}: exit {r.returncode}: {r.stdout} {r.stderr[-2000:]}"
    return r.stdout


def finalized_transaction_version(cluster, i):
    """transaction.version as broker i's ApiVersions answers it (kafka-features describe)."""
    out = feature_command(cluster, "describe", bootstrap=cluster.address(i))
    m = re.search(r"Feature: transaction.version\s.*FinalizedVersionLevel: (\d+)", out)
    return int(m.group(1)) if m else None


def copy_with_java(cluster, source_records, producer_coordinator):
    """Java's copier (transactions v2: TxnOffsetCommit v5, no AddOffsetsToTxn) copies
    partition 0 of the failover topic to a sink topic, for a group whose coordinator is not
    its transaction coordinator (the group's leader adds `__consumer_offsets` to the
    transaction at another broker). Checks the sink and the group's committed offset."""
    sink = "tv2-sink"
    if sink not in cluster.admin().list_topics(timeout=10).topics:
        cluster.create_topic(sink, 1)
    tid = "tv2-copier"
    txn_coordinator = coordinator_of(cluster, tid)
    group = next(g for g in (f"tv2-copy-{n}" for n in range(100))
                 if find_coordinator(cluster.address(live(cluster)[0]), g, key_type=0)[1]
                 not in (txn_coordinator, 0, -1))
    _err, group_coordinator = find_coordinator(cluster.address(live(cluster)[0]), group, key_type=0)
    end = end_offsets(cluster, FAILOVER_TOPIC, 1, "read_committed")[0]
    out = txn_client_run(cluster.bootstrap, "copier", f"source={FAILOVER_TOPIC}", f"sink={sink}",
                         f"txn_id={tid}", f"group={group}", "kill_after=-1", f"end={end}",
                         timeout=180)
    want = [v for p, _o, v in sorted(source_records) if p == 0]
    assert out and out[-1].get("copied") == len(want), f"copier: {out}, {len(want)} to copy"
    got = [v for _p, _o, v in sorted(read_topic(cluster, sink, 1))]
    assert got == want, f"sink holds {len(got)} records, want the {len(want)} of the source in order"
    c = Consumer({"bootstrap.servers": live_bootstrap(cluster), "group.id": group, **CLIENT_LOGS})
    try:
        committed = c.committed([TopicPartition(FAILOVER_TOPIC, 0)], timeout=15)[0].offset
    finally:
        c.close()
    # The offset after the last record copied (a marker may follow it).
    after_last = max(o for p, o, _v in source_records if p == 0) + 1
    assert committed == after_last, f"group {group} committed {committed}, want {after_last}"
    return (f"Java copier (transaction coordinator {txn_coordinator}, group coordinator "
            f"{group_coordinator}): {len(want)} records copied once, committed offset {after_last}")


def transactions_v2(cluster):
    failover_setup(cluster)
    out = feature_command(cluster, "upgrade", "--feature", "transaction.version=2")
    assert "transaction.version was upgraded to 2." in out, out
    try:
        for i in (1, 2, 3):
            eventually(f"broker {i} advertising transaction.version 2", 30,
                       lambda i=i: finalized_transaction_version(cluster, i) == 2, 1)
        leaders = {p: v[0] for p, v in cluster.partitions(FAILOVER_TOPIC).items()}

        def batches(p):
            host, port = cluster.address(leaders[p]).rsplit(":", 1)
            return fetch_batch_producers(host, int(port), FAILOVER_TOPIC, p)
        before = {p: len(batches(p)) for p in leaders}
        tid = "tv2-java"
        coordinator = coordinator_of(cluster, tid)
        remote = sorted(p for p, leader in leaders.items() if leader != coordinator)
        assert remote, f"every partition led by the coordinator {coordinator}: {leaders}"
        outcomes = ["commit", "abort", "commit", "commit"]
        rounds = txn_client_run(cluster.bootstrap, "produce", f"topic={FAILOVER_TOPIC}",
                                f"partitions={FAILOVER_PARTITIONS}", f"txn_id={tid}",
                                f"rounds={','.join(outcomes)}", "count=9", "prefix=tv2")
        assert [r["outcome"] for r in rounds] == outcomes, rounds
        # In every partition (added by its leader, at the coordinator's broker or with
        # AddPartitionsToTxn v5 to it): each transaction one epoch up, and its marker at the
        # epoch of the transaction after it.
        epochs = {}
        for p in sorted(leaders):
            mine = batches(p)[before[p]:]
            assert len({pid for _o, pid, _e, _t, _c in mine}) == 1, f"partition {p}: {mine}"
            marks, data = [], set()
            for _o, _pid, epoch, txn, control in mine:
                assert txn, f"partition {p}: a non-transactional batch {mine}"
                if control:
                    assert data == {epoch - 1}, f"partition {p}: data at {data}, marker at {epoch}: {mine}"
                    marks.append(epoch)
                    data = set()
                else:
                    data.add(epoch)
            e0 = marks[0] - 1 if marks else None
            assert marks == [e0 + r + 1 for r in range(4)] and not data, f"partition {p}: {mine}"
            epochs[p] = marks
        everything = read_topic(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS)
        seen, dups = values_of(everything, "tv2-")
        want = {f"tv2-{r}-{i}" for r in (0, 2, 3) for i in range(9)}
        assert seen == want and dups == 0, f"read_committed: {sorted(seen)} ({dups} twice)"
        copied = copy_with_java(cluster, everything, coordinator)
    finally:
        out = feature_command(cluster, "downgrade", "--feature", "transaction.version=0")
        assert "transaction.version was downgraded to 0." in out, out
    return (f"transaction.version 2 finalized at the controller; coordinator {coordinator}, "
            f"partitions {remote} led elsewhere; markers' epochs per partition {epochs}; "
            f"read_committed: the 27 committed records; {copied}; "
            f"{check_nothing_open(cluster, FAILOVER_TOPIC, FAILOVER_PARTITIONS)}")


# ---- driver -------------------------------------------------------------------------------

FAILOVER_SCENARIOS = [
    ("kill-before-commit", kill_before_commit),
    ("kill-after-commit", kill_after_commit),
    ("kill-markers-pending", kill_markers_pending),
    ("copy-across-kills", copy_across_kills),
    ("transactions-v2", transactions_v2),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=os.path.join(REPO, "target/release/gregor"))
    ap.add_argument("--only", default="")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--client-logs", action="store_true", help="print librdkafka's log lines")
    ap.add_argument("--client-debug", action="store_true",
                    help="random-checker and copy-across-kills: librdkafka's debug log of each "
                         "client to a file (TXN_CLIENT_DEBUG: the contexts)")
    args = ap.parse_args()
    if args.client_logs:
        CLIENT_LOGS.clear()
    if args.client_debug:
        global CLIENT_DEBUG_DIR
        CLIENT_DEBUG_DIR = tempfile.mkdtemp(prefix="gregor-txn-cluster-clients-")
        print(f"librdkafka debug logs of random-checker's producers in {CLIENT_DEBUG_DIR}", flush=True)
    only = set(filter(None, args.only.split(",")))
    seed = args.seed if args.seed is not None else random.randrange(1 << 20)
    passed = failed = 0
    t_start = time.time()

    def run(name, fn, cluster):
        nonlocal passed, failed
        started = time.time()
        try:
            result = fn(cluster)
            print(f"PASS {name} ({time.time() - started:.0f}s): {result}", flush=True)
            passed += 1
        except Exception as e:
            failed += 1
            print(f"FAIL {name} ({time.time() - started:.0f}s): {e}", flush=True)
            traceback.print_exc()
            for i in (1, 2, 3):
                print(f"--- broker {i} log tail ({cluster.log_path(i)})\n{cluster.tail(i)}", flush=True)
            restart_all(cluster)

    groups = [
        ("failover", [(n, f) for n, f in FAILOVER_SCENARIOS if not only or n in only]),
        ("checker", [("random-checker", lambda c: random_checker(c, seed))]
         if not only or "random-checker" in only else []),
    ]
    for group, scenarios in groups:
        if not scenarios:
            continue
        root = tempfile.mkdtemp(prefix=f"gregor-txn-cluster-{group}-")
        cluster = None
        try:
            cluster = Cluster(args.broker, root, OVERRIDES)
            for name, fn in scenarios:
                run(name, fn, cluster)
        except Exception as e:
            failed += 1
            print(f"FAIL {group} cluster ({root}): {e}", flush=True)
            traceback.print_exc()
        finally:
            if cluster:
                cluster.close()
    print(f"{passed} passed, {failed} failed ({time.time() - t_start:.0f}s)")
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
