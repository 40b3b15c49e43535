#!/usr/bin/env python3
"""Replication under faults: a real ZooKeeper, three gregor brokers, confluent-kafka clients.

Each scenario gets a fresh cluster (its own ZooKeeper from scripts/zookeeper.sh and three
brokers on free ports) and a topic with replication factor 3 and min.insync.replicas=2:

  leader-kill9      an idempotent acks=all producer sends unique values while the leader of
                    partition 0 is killed with SIGKILL and later restarted; failover time is
                    printed (kill to the first acknowledged write on the new leader).
  controlled-shutdown  the same with SIGTERM: the leader hands its leaderships over before it
                    stops serving (the hand-over time is printed), then comes back.
  follower-lag      a follower is SIGSTOPped past replica.lag.time.max.ms: it leaves the ISR
                    (writes go on), and rejoins once resumed and caught up.
  isr-of-one        the 2013 Jepsen scenario: both followers stopped, the ISR shrinks to the
                    leader, acks=all writes are refused (NOT_ENOUGH_REPLICAS), the leader is
                    killed, the followers resume, the leader returns: no acknowledged write lost.
  coordinator-kill9 a consumer group commits, its coordinator's broker is killed: a new member
                    resumes at exactly the committed offsets on the new coordinator.
  zombie-leader     the leader is SIGSTOPped past the ZooKeeper session timeout (another broker
                    takes over) and resumed: it must not acknowledge what the new leader lacks.
  zookeeper-restart ZooKeeper is stopped under acks=all load and started again: replication
                    goes on without it, and nothing is lost.
  elect-leaders     with automatic rebalancing off, a preferred-leader election through the
                    admin API (ElectLeaders, what kafka-leader-election.sh sends).
  zookeeper-cut-leader  the leader's ZooKeeper connection stalls (a proxy the test holds)
                    past the session timeout while its clients still reach it: another broker
                    takes over; the cut leader must not acknowledge what the new leader lacks,
                    and follows it once ZooKeeper is back.
  network-partition the brokers run in network namespaces the test makes (veth pairs on a
                    bridge): the leader is isolated while a producer inside its namespace still
                    reaches it, the majority elects another and takes writes, nothing the
                    isolated leader acknowledged may be lost; then a follower is isolated past
                    the lag time and rejoins. Skipped, and said so, without root/iproute2.
  unclean-election  with unclean.leader.election.enable=true the controller elects a live
                    out-of-sync replica on its own when the whole ISR is dead.
  nemesis           one idempotent acks=all producer writes all along while the faults above
                    come one after another (kill -9 of a leader, a follower stopped past the
                    lag, a zombie leader, a broker restarted, ZooKeeper restarted): lost,
                    duplicated and reordered counts must all be 0.
  clients-kill9     each compat client (confluent-kafka, kafka-python, kcat, Java) produces
                    acks=all across a leader's kill -9 and reads everything back, once, while
                    that broker is still down.
  divergent-tail    the leader appends acks=1 records no follower fetched, then dies; a follower
                    takes over at a new leader epoch and takes writes; the old leader returns
                    and must truncate its divergent tail (KIP-101) instead of keeping it.

After each scenario: every acknowledged value is read back once, at the offset its
acknowledgement named (lost / duplicated / moved counts), the ISR is whole again, and the
three replicas of every partition hold the same bytes (segment files compared byte for
byte). Any difference fails the run. Prints one line per scenario; exit 0 only if all pass.

usage: compat-tests/replication_test.py [--broker target/release/gregor] [--only NAME,...]
"""
import argparse
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import ElectionType
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOPIC = "replicated"
PARTITIONS = 3
SESSION_TIMEOUT_MS = 4000
LAG_MS = 3000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(what, timeout, check, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class StallableProxy:
    """A TCP proxy between one broker and ZooKeeper. `stall()` stops forwarding in both
    directions without closing anything: the broker is cut off from ZooKeeper, yet sees
    nothing but silence (its sessions expire on the server), while its clients still reach
    it. `resume()` forwards again what was held."""

    def __init__(self, upstream):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.flowing = threading.Event()
        self.flowing.set()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                return
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                self.flowing.wait()
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stall(self):
        self.flowing.clear()

    def resume(self):
        self.flowing.set()


def sh(*args):
    subprocess.run(list(args), check=True, capture_output=True, text=True)


class Network:
    """A bridge in the test's network namespace and one namespace per broker, joined to the
    bridge by a veth pair: broker i is 10.77.0.i, the test (and ZooKeeper) 10.77.0.254.
    `isolate(i)` takes broker i's link down: it reaches nobody and nobody reaches it, except
    what runs inside its namespace."""
    BRIDGE = "gregorbr0"
    HOST = "10.77.0.254"

    @staticmethod
    def available():
        """Whether this machine lets the test make network namespaces (root and iproute2)."""
        try:
            sh("ip", "netns", "add", "gregor-probe")
            sh("ip", "netns", "del", "gregor-probe")
            return True
        except (OSError, subprocess.CalledProcessError):
            return False

    def __init__(self, ids):
        self.ids = list(ids)
        self.close()  # what a killed earlier run left
        sh("ip", "link", "add", self.BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{self.HOST}/24", "dev", self.BRIDGE)
        sh("ip", "link", "set", self.BRIDGE, "up")
        for i in self.ids:
            ns = self.namespace(i)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", f"gveth{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", f"gveth{i}", "master", self.BRIDGE)
            sh("ip", "link", "set", f"gveth{i}", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.host(i)}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    @staticmethod
    def namespace(i):
        return f"gregorns{i}"

    @staticmethod
    def host(i):
        return f"10.77.0.{i}"

    def isolate(self, i):
        sh("ip", "link", "set", f"gveth{i}", "down")

    def heal(self, i):
        sh("ip", "link", "set", f"gveth{i}", "up")

    def close(self):
        for i in self.ids:
            subprocess.run(["ip", "netns", "del", self.namespace(i)], capture_output=True)
            subprocess.run(["ip", "link", "del", f"gveth{i}"], capture_output=True)
        subprocess.run(["ip", "link", "del", self.BRIDGE], capture_output=True)


class Cluster:
    """ZooKeeper and three brokers, ids 1-3, each with its own data directory."""

    def __init__(self, binary, root, overrides=(), zk_proxies=False, network=None):
        self.binary = binary
        self.overrides = list(overrides)
        self.root = root
        # With a Network each broker runs in its own namespace at its own address.
        self.network = network
        env = dict(os.environ, ZK_TICK_MS="500", ZK_FORCE_SYNC="no", ZK_OWNER_PID=str(os.getpid()))
        if network:
            env["ZK_ADDRESS"] = network.HOST
        self.zk_dir = os.path.join(root, "zk")
        out = subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "start", self.zk_dir],
                             env=env, check=True, capture_output=True, text=True)
        self.zk = out.stdout.strip() + "/gregor"
        # With zk_proxies each broker reaches ZooKeeper through its own StallableProxy.
        self.proxies = {i: StallableProxy(out.stdout.strip().split(",")[0]) for i in (1, 2, 3)} \
            if zk_proxies else {}
        self.ports = {i: (9092 if network else free_port()) for i in (1, 2, 3)}
        self.hosts = {i: (network.host(i) if network else "127.0.0.1") for i in (1, 2, 3)}
        self.procs = {}
        self._starts = {}
        self.stopped = set()
        for i in (1, 2, 3):
            self.start(i)
        for i in (1, 2, 3):
            self.wait_serving(i)
        self.bootstrap = ",".join(self.address(i) for i in (1, 2, 3))
        # Start from a settled cluster: every broker names the controller. Once in CI, under
        # load, a CreateTopics sent right after the brokers started timed out after 30 s and
        # never reached the controller, elected 0.2 s after the brokers served (probably:
        # librdkafka's admin client waits for a controller its first Metadata named as -1).
        # Behind a proxy a broker has also been seen to miss the watch event of the first
        # election and learn the controller from its 10 s reload.
        eventually("every broker knowing the controller", 30, lambda: all(
            AdminClient({"bootstrap.servers": self.address(i)})
            .list_topics(timeout=10).controller_id > 0 for i in (1, 2, 3)), 0.5)

    def address(self, i):
        """Broker i's listener, host:port."""
        return f"{self.hosts[i]}:{self.ports[i]}"

    def log_path(self, i):
        return os.path.join(self.root, f"broker{i}.log")

    def data_dir(self, i):
        return os.path.join(self.root, f"broker{i}")

    def start(self, i):
        inside = ["ip", "netns", "exec", self.network.namespace(i)] if self.network else []
        args = inside + [self.binary,
                "--override", f"broker.id={i}",
                "--override", f"listeners=PLAINTEXT://{self.address(i)}",
                "--override", f"log.dirs={self.data_dir(i)}",
                "--override", f"zookeeper.connect={self.zk_connect(i)}",
                "--override", f"zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}",
                "--override", f"replica.lag.time.max.ms={LAG_MS}",
                "--override", "replica.fetch.backoff.ms=200",
                "--override", "leader.imbalance.check.interval.seconds=5",
                "--override", "offsets.topic.num.partitions=3",
                # Three brokers on one host: no metrics endpoint (they would share 9644).
                "--override", "metrics.port=0"]
        for o in self.overrides:
            args += ["--override", o]
        log = open(self.log_path(i), "a")
        self.procs[i] = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=log)

    def zk_connect(self, i):
        if i in self.proxies:
            return self.proxies[i].address + "/gregor"
        return self.zk

    def wait_serving(self, i):
        def serving():
            if self.procs[i].poll() is not None:
                raise AssertionError(f"broker {i} exited: {self.tail(i)}")
            with open(self.log_path(i)) as f:
                return f.read().count("gregor is serving") >= self.starts(i)
        eventually(f"broker {i} serving", 60, serving, 0.1)

    def starts(self, i):
        """How many times broker `i` has been started in this cluster."""
        return self._starts.get(i, 1)

    def tail(self, i, n=15):
        with open(self.log_path(i)) as f:
            return "".join(f.readlines()[-n:])

    def kill9(self, i):
        self.procs[i].kill()
        self.procs[i].wait()
        self.stopped.add(i)

    def restart(self, i):
        self._starts[i] = self._starts.get(i, 1) + 1
        self.start(i)
        self.wait_serving(i)
        self.stopped.discard(i)

    def stop_signal(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)
        self.stopped.add(i)

    def cont_signal(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.stopped.discard(i)

    def admin(self):
        """An admin client of the brokers that are running (a stopped one answers nothing)."""
        live = [self.address(i) for i in self.ports if i not in self.stopped]
        return AdminClient({"bootstrap.servers": ",".join(live)})

    def close(self):
        for p in self.procs.values():
            try:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                p.wait(timeout=15)
            except Exception:
                p.kill()
        subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "stop", self.zk_dir],
                       capture_output=True)

    # -- metadata ---------------------------------------------------------------------

    def partitions(self, topic=TOPIC):
        """partition -> (leader, replicas, isr) as the cluster answers it now."""
        md = self.admin().list_topics(topic, timeout=10).topics[topic]
        return {p: (m.leader, list(m.replicas), sorted(m.isrs)) for p, m in md.partitions.items()}

    def controller(self):
        return self.admin().list_topics(timeout=10).controller_id

    def leader(self, partition, topic=TOPIC):
        return eventually(f"a leader for partition {partition}", 30,
                          lambda: (lambda l: l if l > 0 else None)(self.partitions(topic)[partition][0]))

    def create_topic(self, topic=TOPIC, partitions=PARTITIONS):
        admin = self.admin()  # kept alive until the futures are done
        fs = admin.create_topics([NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})])
        for f in fs.values():
            f.result(timeout=30)
        eventually("the topic's ISRs", 30,
                   lambda: (lambda ps: len(ps) == partitions and all(len(v[2]) == 3 for v in ps.values()))(
                       self.partitions(topic)))

    def wait_isr_whole(self, timeout=40, topic=TOPIC):
        eventually("every ISR whole again", timeout,
                   lambda: all(v[2] == [1, 2, 3] and v[0] > 0 for v in self.partitions(topic).values()))



class Recorder:
    """An acks=all idempotent producer that records what was acknowledged, and where."""

    def __init__(self, bootstrap, acks="all", idempotent=True, timeout_ms=60000):
        conf = {"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 2,
                "message.timeout.ms": timeout_ms, "retry.backoff.ms": 100,
                # librdkafka backs off metadata refreshes up to 1 s by default, which would
                # add up to a second of client waiting to the failover times measured here.
                "retry.backoff.max.ms": 200,
                # A request to a stopped broker is given up on (and retried elsewhere) after
                # 10 s instead of librdkafka's 30 s; acks=all requests carry it as their timeout.
                "request.timeout.ms": 10000}
        if idempotent:
            conf["enable.idempotence"] = True
        self.p = Producer(conf)
        self.acked = {}       # value -> (partition, offset or None)
        self.ack_times = {}   # value -> time acknowledged
        self.errors = []
        self.n = 0

    def _cb(self, err, msg):
        if err:
            self.errors.append(err)
        else:
            v = msg.value().decode()
            off = msg.offset()
            self.acked[v] = (msg.partition(), off if off is not None and off >= 0 else None)
            self.ack_times[v] = time.time()

    def send(self, prefix, count, partition=None, pause=0.0):
        sent = []
        for _ in range(count):
            v = f"{prefix}-{self.n}"
            self.n += 1
            kw = {"partition": partition} if partition is not None else {}
            self.p.produce(TOPIC, key=v.encode(), value=v.encode(), callback=self._cb, **kw)
            sent.append(v)
            self.p.poll(0)
            if pause:
                time.sleep(pause)
        return sent

    def flush(self, timeout=90):
        left = self.p.flush(timeout)
        assert left == 0, f"{left} messages never answered"


def longest_pause(rec, values):
    """The longest time between two consecutive acknowledgements of `values`, from the
    acknowledgement before the first of them: how long writes stalled."""
    times = sorted(rec.ack_times[v] for v in values if v in rec.ack_times)
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def drain(bootstrap, partitions=PARTITIONS):
    """Every record of the topic's first `partitions` partitions: value -> list of
    (partition, offset)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions)])
    seen = {}
    idle = time.time()
    while time.time() - idle < 6:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            continue
        idle = time.time()
        seen.setdefault(m.value().decode(), []).append((m.partition(), m.offset()))
    c.close()
    return seen


def check_acknowledged(rec, seen, allow_absent=()):
    lost = [v for v in rec.acked if v not in seen]
    dups = [v for v, places in seen.items() if len(places) > 1]
    moved = [v for v, (p, o) in rec.acked.items()
             if v in seen and o is not None and seen[v][0] != (p, o)]
    unknown_offset = sum(1 for (_, o) in rec.acked.values() if o is None)
    summary = (f"acknowledged {len(rec.acked)} (of them {unknown_offset} without an offset), read "
               f"{len(seen)}: lost {len(lost)}, duplicated {len(dups)}, moved {len(moved)}")
    assert not lost, f"{summary}; lost e.g. {lost[:5]}"
    assert not dups, f"{summary}; duplicated e.g. {dups[:5]}"
    assert not moved, f"{summary}; moved e.g. {[(v, rec.acked[v], seen[v]) for v in moved[:5]]}"
    return summary


def segment_bytes(data_dir, partition):
    files = sorted(glob.glob(os.path.join(data_dir, f"{TOPIC}-{partition}", "*.log")))
    return b"".join(open(f, "rb").read() for f in files)


def check_converged(cluster):
    """The three replicas of each partition hold the same bytes (waits while they catch up)."""
    def same():
        for p in range(PARTITIONS):
            copies = [segment_bytes(cluster.data_dir(i), p) for i in (1, 2, 3)]
            if not (copies[0] == copies[1] == copies[2]):
                return None
        return True
    try:
        eventually("identical replicas", 30, same, 0.5)
    except AssertionError:
        sizes = {p: [len(segment_bytes(cluster.data_dir(i), p)) for i in (1, 2, 3)] for p in range(PARTITIONS)}
        raise AssertionError(f"replicas differ: segment bytes per broker {sizes}")
    total = sum(len(segment_bytes(cluster.data_dir(1), p)) for p in range(PARTITIONS))
    return f"replicas identical ({total} bytes per broker)"


# ---- scenarios ----------------------------------------------------------------------------

def leader_kill9(cluster):
    rec = Recorder(cluster.bootstrap)
    rec.send("before", 3000, pause=0.0002)
    rec.flush()
    victim = cluster.leader(0)
    killed = time.time()
    cluster.kill9(victim)
    after = rec.send("after", 3000, partition=0, pause=0.001)
    rec.flush()
    first_ack = min(rec.ack_times[v] for v in after if v in rec.ack_times)
    failover = first_ack - killed
    new_leader = cluster.leader(0)
    assert new_leader != victim, f"partition 0 still led by the killed broker {victim}"
    cluster.restart(victim)
    rec.send("back", 1000)
    rec.flush()
    cluster.wait_isr_whole()
    # auto.leader.rebalance.enable: every partition is led by its preferred replica again.
    back_at = time.time()
    eventually("leadership back on the preferred replicas", 30,
               lambda: all(v[0] == v[1][0] for v in cluster.partitions().values()))
    rebalanced = time.time() - back_at
    summary = check_acknowledged(rec, drain(cluster.bootstrap))
    assert not rec.errors, f"producer errors: {rec.errors[:3]}"
    # The goal is the session timeout + 1 s (5.0 s here); runs on this 2-core machine measure
    # 5.0-5.1 s, with an occasional 6.1 s in CI (a second more in the client after the new
    # leader was elected). The bound catches a regression, not that noise.
    assert failover < SESSION_TIMEOUT_MS / 1000 + 2.5, f"failover took {failover:.1f}s"
    return f"{summary}; failover {failover:.2f}s (kill -9 of broker {victim} to the first ack on broker {new_leader}); preferred leaders restored {rebalanced:.1f}s after the ISR was whole; {check_converged(cluster)}"


def follower_lag(cluster):
    rec = Recorder(cluster.bootstrap)
    # The idempotent producer gets its producer id before the fault: librdkafka asks any broker
    # for it, and a request to the SIGSTOPped one hangs for socket.timeout.ms (60 s), as long
    # as the records' own timeout. Seen once in CI: InitProducerId went to the stopped broker,
    # the first 154 records timed out, the other 1846 went out in one batch 60 s late.
    rec.send("before", 10, partition=0)
    rec.flush()
    leader = cluster.leader(0)
    follower = [b for b in cluster.partitions()[0][1] if b != leader][0]
    cluster.stop_signal(follower)
    stopped = time.time()
    rec.send("during", 2000, partition=0, pause=0.001)
    rec.flush()
    eventually("the stopped follower out of the ISR", 20,
               lambda: follower not in cluster.partitions()[0][2])
    shrunk = time.time() - stopped
    cluster.cont_signal(follower)
    resumed = time.time()
    cluster.wait_isr_whole()
    rejoined = time.time() - resumed
    summary = check_acknowledged(rec, drain(cluster.bootstrap))
    assert not rec.errors, f"producer errors: {rec.errors[:3]}"
    return f"{summary}; follower {follower} left the ISR {shrunk:.1f}s after SIGSTOP (lag {LAG_MS} ms), rejoined {rejoined:.1f}s after SIGCONT; {check_converged(cluster)}"


def shrink_isr_to_leader(cluster):
    """Writes 500 acks=all records to partition 0, then SIGSTOPs both followers until the
    ISR is the leader alone. Returns (the recorder, the leader, the stopped followers)."""
    rec = Recorder(cluster.bootstrap)
    rec.send("whole", 500, partition=0)
    rec.flush()
    leader = cluster.leader(0)
    followers = [b for b in (1, 2, 3) if b != leader]
    for f in followers:
        cluster.stop_signal(f)
    eventually("the ISR shrunk to the leader", 20, lambda: cluster.partitions()[0][2] == [leader])
    return rec, leader, followers


def isr_of_one(cluster):
    rec, leader, followers = shrink_isr_to_leader(cluster)
    # acks=all with one in-sync replica of min.insync.replicas=2: refused, never stored.
    refused = Producer({"bootstrap.servers": cluster.address(leader), "acks": "all",
                        "message.timeout.ms": 3000, "retries": 0})
    errors = []
    for i in range(20):
        refused.produce(TOPIC, value=f"refused-{i}".encode(), partition=0,
                        callback=lambda err, msg: errors.append(err))
    refused.flush(10)
    codes = {e.name() if e else "OK" for e in errors}
    assert len(errors) == 20 and codes <= {"NOT_ENOUGH_REPLICAS", "_MSG_TIMED_OUT"}, codes
    assert "NOT_ENOUGH_REPLICAS" in codes, codes
    cluster.kill9(leader)
    for f in followers:
        cluster.cont_signal(f)
    # The only ISR member is dead: the partition has no leader until it returns.
    time.sleep(SESSION_TIMEOUT_MS / 1000 + 1)
    offline = cluster.partitions()[0][0]
    cluster.restart(leader)
    cluster.wait_isr_whole()
    seen = drain(cluster.bootstrap)
    summary = check_acknowledged(rec, seen)
    stored_refused = [v for v in seen if v.startswith("refused-")]
    assert not stored_refused, f"refused writes were stored: {stored_refused[:3]}"
    return f"{summary}; 20/20 acks=all writes refused with {sorted(codes)}; leader while its only ISR member was dead: {offline}; {check_converged(cluster)}"


def zombie_leader(cluster):
    # librdkafka keeps sending to the stopped leader until its metadata moves on: messages
    # that wait too long expire unacknowledged (counted, not lost).
    rec = Recorder(cluster.bootstrap, timeout_ms=20000)
    rec.send("before", 1000, partition=0)
    rec.flush()
    zombie = cluster.leader(0)
    # A producer that talks to the zombie only: its requests wait in the stopped process.
    stuck = Recorder(cluster.address(zombie), idempotent=False, timeout_ms=15000)
    cluster.stop_signal(zombie)
    stuck.send("to-zombie", 200, partition=0)
    stuck.p.poll(0.5)
    new_leader = eventually("another leader", 30,
                            lambda: (lambda l: l if l not in (zombie, -1) else None)(cluster.partitions()[0][0]))
    rec.send("new-leader", 1000, partition=0, pause=0.001)
    rec.flush()
    cluster.cont_signal(zombie)
    stuck.flush(30)
    rec.send("after", 500)
    rec.flush()
    cluster.wait_isr_whole()
    seen = drain(cluster.bootstrap)
    summary = check_acknowledged(rec, seen)
    zombie_summary = check_acknowledged(stuck, seen)
    expired = sum(1 for e in rec.errors if e.name() == "_MSG_TIMED_OUT")
    assert len(rec.errors) == expired, f"producer errors: {rec.errors[:3]}"
    return (f"{summary}; {expired} expired unacknowledged in the client; zombie {zombie} (new leader {new_leader}) acknowledged {len(stuck.acked)} "
            f"of 200 writes sent to it while stopped, every acknowledged one kept ({zombie_summary}); "
            f"{check_converged(cluster)}")


def divergent_tail(cluster):
    rec = Recorder(cluster.bootstrap)
    rec.send("replicated", 500, partition=0)
    rec.flush()
    old = cluster.leader(0)
    followers = [b for b in (1, 2, 3) if b != old]
    for f in followers:
        cluster.stop_signal(f)
    # Their fetches in flight end (empty) within replica.fetch.wait.max.ms; stopped, they
    # send no more, so nothing written from now on reaches them. The leader drops them from
    # the ISR only after replica.lag.time.max.ms (3 s): it is killed before that.
    time.sleep(1.0)
    lonely = Recorder(cluster.address(old), acks="1", idempotent=False)
    lonely.send("unreplicated", 50, partition=0)
    lonely.flush(1.5)
    assert len(lonely.acked) == 50, f"acks=1 writes: {len(lonely.acked)} acknowledged"
    cluster.kill9(old)
    for f in followers:
        cluster.cont_signal(f)
    new = eventually("a new leader", 30,
                     lambda: (lambda l: l if l not in (old, -1) else None)(cluster.partitions()[0][0]))
    rec.send("new-epoch", 500, partition=0)
    rec.flush()
    cluster.restart(old)
    cluster.wait_isr_whole()
    seen = drain(cluster.bootstrap)
    summary = check_acknowledged(rec, seen)
    kept = [v for v in lonely.acked if v in seen]
    with open(cluster.log_path(old)) as f:
        truncated = "follower truncated its log" in f.read()
    assert truncated, f"broker {old} did not report a truncation"
    converged = check_converged(cluster)
    assert not kept, f"acks=1 records no follower fetched came back: {kept[:3]}"
    return (f"{summary}; the 50 acks=1 records only the dead leader had are gone (Kafka's contract "
            f"for acks=1), broker {old} truncated them instead of keeping a divergent tail; {converged}")


def controlled_shutdown(cluster):
    rec = Recorder(cluster.bootstrap)
    rec.send("before", 2000, partition=0, pause=0.0005)
    rec.flush()
    leader = cluster.leader(0)
    terminated = time.time()
    cluster.procs[leader].send_signal(signal.SIGTERM)
    after = rec.send("after", 3000, partition=0, pause=0.001)
    rec.flush()
    code = cluster.procs[leader].wait(timeout=30)
    exited = time.time() - terminated
    assert code == 0, f"broker {leader} exited with {code}"
    cluster.stopped.add(leader)
    handover = longest_pause(rec, after)
    with open(cluster.log_path(leader)) as f:
        log = f.read()
    assert "no leadership left to move" in log, "the broker did not wait for its leaderships to move"
    new_leader = cluster.leader(0)
    assert new_leader != leader
    cluster.restart(leader)
    cluster.wait_isr_whole()
    summary = check_acknowledged(rec, drain(cluster.bootstrap))
    assert not rec.errors, f"producer errors: {rec.errors[:3]}"
    # The goal is a pause below 1 s; runs here pause 0.1-0.7 s, with an occasional 1.7 s in
    # CI (a follower's 500 ms long poll, its truncation round at the new leader epoch, and the
    # client's metadata refresh add up). The bound catches a regression (a kill-like 4 s
    # failover), not that noise.
    assert handover < 2.5, f"writes stalled {handover:.2f}s"
    return (f"{summary}; SIGTERM of leader {leader} (new leader {new_leader}): writes paused at most "
            f"{handover:.2f}s, the broker exited {exited:.1f}s after SIGTERM; {check_converged(cluster)}")


def coordinator_kill9(cluster):
    rec = Recorder(cluster.bootstrap)
    rec.send("g", 3000)
    rec.flush()
    group = "survivors"
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000}
    first = Consumer(conf)
    first.subscribe([TOPIC])
    consumed = []
    deadline = time.time() + 60
    while len(consumed) < 1500 and time.time() < deadline:
        m = first.poll(0.5)
        if m is not None and not m.error():
            consumed.append(m.value().decode())
    first.commit(asynchronous=False)
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    committed = {tp.partition: tp.offset for tp in first.committed(tps, timeout=10)}
    first.close()
    admin = cluster.admin()
    coordinator = admin.describe_consumer_groups([group])[group].result(timeout=10).coordinator.id
    cluster.kill9(coordinator)
    killed = time.time()
    # A new member of the group, served by the coordinator's successor, starts exactly where
    # the group had committed: the commits were on the other replicas.
    second = Consumer(conf)
    def offsets():
        try:
            return {tp.partition: tp.offset for tp in second.committed(tps, timeout=5)}
        except KafkaException:
            return None  # the coordinator is still being replaced
    resumed = eventually("the group's offsets from the new coordinator", 30, offsets)
    assert resumed == committed, f"committed before the kill {committed}, after {resumed}"
    second.subscribe([TOPIC])
    deadline = time.time() + 60
    rest = []
    while len(consumed) + len(rest) < 3000 and time.time() < deadline:
        m = second.poll(0.5)
        if m is not None and not m.error():
            rest.append(m.value().decode())
    def commit():
        try:
            return second.commit(asynchronous=False)
        except KafkaException:
            return None
    commit_again = eventually("a commit on the new coordinator", 30, commit)
    committed_after = {tp.partition: tp.offset for tp in commit_again if tp.offset >= 0}
    second.close()
    everything = consumed + rest
    dups = len(everything) - len(set(everything))
    missing = set(rec.acked) - set(everything)
    assert not dups and not missing, f"consumed {len(everything)}: {dups} twice, {len(missing)} never"
    admin = cluster.admin()  # kept alive until the future is done
    new_coordinator = admin.describe_consumer_groups([group])[group].result(timeout=10).coordinator.id
    cluster.restart(coordinator)
    cluster.wait_isr_whole()
    return (f"group consumed 1500 and committed {committed}, coordinator "
            f"{coordinator} killed; {time.time() - killed:.1f}s later the group had resumed on "
            f"coordinator {new_coordinator} at exactly the committed offsets, consumed the other "
            f"{len(rest)} (none twice, none missing) and committed again {committed_after}")


def zookeeper_restart(cluster):
    rec = Recorder(cluster.bootstrap)
    rec.send("before", 1000)
    rec.flush()
    env = dict(os.environ, ZK_TICK_MS="500", ZK_FORCE_SYNC="no", ZK_OWNER_PID=str(os.getpid()))
    script = os.path.join(REPO, "scripts/zookeeper.sh")
    subprocess.run([script, "stop", cluster.zk_dir], env=env, check=True, capture_output=True)
    stopped = time.time()
    # Leaders and followers need no ZooKeeper to replicate: acks=all goes on.
    during = rec.send("zk-down", 1500, pause=0.001)
    rec.flush()
    acked_while_down = sum(1 for v in during if v in rec.ack_times and rec.ack_times[v] - stopped < 10)
    port = cluster.zk.split("/")[0].rsplit(":", 1)[1]
    subprocess.run([script, "start", cluster.zk_dir, port], env=env, check=True, capture_output=True)
    rec.send("after", 1000)
    rec.flush()
    cluster.wait_isr_whole()
    summary = check_acknowledged(rec, drain(cluster.bootstrap))
    assert not rec.errors, f"producer errors: {rec.errors[:3]}"
    return (f"{summary}; {acked_while_down} of 1500 acks=all writes acknowledged while ZooKeeper "
            f"was down; {check_converged(cluster)}")


def elect_leaders(cluster):
    rec = Recorder(cluster.bootstrap)
    rec.send("before", 1000)
    rec.flush()
    preferred = cluster.partitions()[0][1][0]
    if cluster.leader(0) == preferred:
        cluster.kill9(preferred)
        eventually("another leader", 30,
                   lambda: (lambda l: l if l not in (preferred, -1) else None)(cluster.partitions()[0][0]))
        cluster.restart(preferred)
    cluster.wait_isr_whole()
    assert cluster.leader(0) != preferred, "auto.leader.rebalance.enable=false, yet leadership moved back"
    admin = cluster.admin()
    tp = TopicPartition(TOPIC, 0)
    lib = os.environ.get("KAFKA_TOOLS_LIB", os.path.join(REPO, "target", "kafka-tools-lib"))
    if glob.glob(os.path.join(lib, "kafka-tools-*.jar")):
        # Kafka's own kafka-leader-election.sh (its class, with the jars log/tests fetched).
        live = ",".join(cluster.address(i) for i in cluster.ports if i not in cluster.stopped)
        out = subprocess.run(
            ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", os.path.join(lib, "*"),
             "org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server", live,
             "--election-type", "PREFERRED", "--topic", TOPIC, "--partition", "0"],
            capture_output=True, text=True, timeout=120)
        said = out.stdout.strip()
        assert f"Successfully completed leader election (PREFERRED) for partitions {TOPIC}-0" in said, said + out.stderr
        how = "kafka-leader-election.sh"
    else:
        result = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
        assert result[tp] is None, f"election failed: {result}"
        how = f"confluent-kafka's elect_leaders (Kafka's tools not in {lib})"
    leader = cluster.leader(0)
    assert leader == preferred, f"partition 0 led by {leader}, preferred {preferred}"
    again = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
    assert again[tp] is not None and again[tp].name() == "ELECTION_NOT_NEEDED", again
    everything = admin.elect_leaders(ElectionType.PREFERRED, None).result(timeout=30)
    rec.send("after", 1000)
    rec.flush()
    summary = check_acknowledged(rec, drain(cluster.bootstrap))
    return (f"{summary}; {how} moved partition 0 back to preferred replica {preferred}, "
            f"then answered ELECTION_NOT_NEEDED; for all partitions it elected "
            f"{len([k for k, v in everything.items() if v is None])} more; {check_converged(cluster)}")


def zookeeper_cut_leader(cluster):
    """The leader of partition 0 loses ZooKeeper (its proxy stalls) past the session timeout
    while its clients still reach it: the controller elects another leader, and the cut
    broker must not acknowledge an acks=all write the new leader lacks. Then its ZooKeeper
    comes back and it follows the new leader."""
    rec = Recorder(cluster.bootstrap, timeout_ms=30000)
    rec.send("before", 1000, partition=0)
    rec.flush()
    zombie = cluster.leader(0)
    # A producer that talks to the cut leader only.
    stuck = Recorder(cluster.address(zombie), idempotent=False, timeout_ms=20000)
    cluster.proxies[zombie].stall()
    cluster.stopped.add(zombie)  # its metadata is stale: ask the others
    cut = time.time()
    while time.time() - cut < SESSION_TIMEOUT_MS / 1000 + 4:
        stuck.send("to-cut-leader", 10, partition=0, pause=0.01)
        stuck.p.poll(0)
    new_leader = eventually("another leader", 30,
                            lambda: (lambda l: l if l not in (zombie, -1) else None)(cluster.partitions()[0][0]))
    rec.send("new-leader", 1000, partition=0, pause=0.001)
    rec.flush()
    cluster.proxies[zombie].resume()
    cluster.stopped.discard(zombie)
    stuck.flush(40)
    rec.send("after", 500)
    rec.flush()
    cluster.wait_isr_whole()
    seen = drain(cluster.bootstrap)
    summary = check_acknowledged(rec, seen)
    cut_summary = check_acknowledged(stuck, seen)
    late = sum(1 for v in stuck.acked if stuck.ack_times[v] - cut > SESSION_TIMEOUT_MS / 1000 + 1)
    expired = sum(1 for e in rec.errors if e.name() == "_MSG_TIMED_OUT")
    assert len(rec.errors) == expired, f"producer errors: {rec.errors[:3]}"
    sent = stuck.n
    return (f"{summary}; {expired} expired unacknowledged in the client (it kept asking the cut "
            f"leader, which still claims the partition); leader {zombie} cut from ZooKeeper (new leader {new_leader}) acknowledged "
            f"{len(stuck.acked)} of {sent} writes sent to it, {late} of them later than the session "
            f"timeout + 1 s, every acknowledged one kept ({cut_summary}); {check_converged(cluster)}")


def restart_zookeeper(cluster):
    """Stops the ZooKeeper server and starts it again on the same port and data."""
    env = dict(os.environ, ZK_TICK_MS="500", ZK_FORCE_SYNC="no", ZK_OWNER_PID=str(os.getpid()))
    script = os.path.join(REPO, "scripts/zookeeper.sh")
    subprocess.run([script, "stop", cluster.zk_dir], env=env, check=True, capture_output=True)
    port = cluster.zk.split("/")[0].rsplit(":", 1)[1]
    time.sleep(2)
    subprocess.run([script, "start", cluster.zk_dir, port], env=env, check=True, capture_output=True)


def nemesis(cluster):
    """Jepsen's Kafka queue workload in small: one idempotent acks=all producer writes to
    every partition all along while a nemesis, one fault after another, kills -9 a leader,
    SIGSTOPs a follower past the lag time, SIGSTOPs a leader past the session timeout (a
    zombie), restarts a broker with SIGTERM and restarts ZooKeeper, healing after each.
    Then: acknowledged / lost / duplicated / reordered counts, and identical replicas."""
    rec = Recorder(cluster.bootstrap, timeout_ms=60000)
    stop = threading.Event()

    def produce():
        while not stop.is_set():
            rec.send("q", 10, pause=0.002)
        rec.flush(120)
    writer = threading.Thread(target=produce)
    writer.start()
    done = []
    try:
        time.sleep(2)
        victim = cluster.leader(0)
        cluster.kill9(victim)
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 2)
        cluster.restart(victim)
        cluster.wait_isr_whole()
        done.append(f"kill -9 of leader {victim}")
        leader = cluster.leader(1)
        follower = [b for b in cluster.partitions()[1][1] if b != leader][0]
        cluster.stop_signal(follower)
        time.sleep(LAG_MS / 1000 + 2)
        cluster.cont_signal(follower)
        cluster.wait_isr_whole()
        done.append(f"SIGSTOP of follower {follower} past the lag time")
        zombie = cluster.leader(2)
        cluster.stop_signal(zombie)
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 3)
        cluster.cont_signal(zombie)
        cluster.wait_isr_whole()
        done.append(f"SIGSTOP of leader {zombie} past the session timeout")
        restarted = cluster.leader(0)
        cluster.procs[restarted].send_signal(signal.SIGTERM)
        cluster.procs[restarted].wait(timeout=30)
        cluster.stopped.add(restarted)
        cluster.restart(restarted)
        cluster.wait_isr_whole()
        done.append(f"SIGTERM and restart of broker {restarted}")
        restart_zookeeper(cluster)
        cluster.wait_isr_whole()
        done.append("ZooKeeper restarted")
        time.sleep(2)
    finally:
        stop.set()
        writer.join(180)
    seen = drain(cluster.bootstrap)
    summary = check_acknowledged(rec, seen)
    # Reordered: two acknowledged values of one partition whose offsets are in the opposite
    # order of their sending (the producer is idempotent: there must be none).
    reordered = 0
    for p in range(PARTITIONS):
        sent = sorted((int(v.split("-")[1]), o) for v, (part, o) in rec.acked.items()
                      if part == p and o is not None)
        reordered += sum(1 for a, b in zip(sent, sent[1:]) if b[1] < a[1])
    assert reordered == 0, f"{summary}; {reordered} reordered"
    assert not rec.errors, f"producer errors: {rec.errors[:3]}"
    return (f"{summary}, reordered 0, producer told of no error, through: {', '.join(done)}; "
            f"{check_converged(cluster)}")


# Run inside the isolated leader's namespace: acks=all writes to partition 0 through that
# broker alone; prints {value: [partition, offset]} of what was acknowledged.
INSIDE_PRODUCER = """
import json, sys, time
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all", "enable.idempotence": False,
              "message.timeout.ms": 20000, "linger.ms": 5})
acked, errors = {}, {}
def cb(err, msg):
    if err is None:
        acked[msg.value().decode()] = [msg.partition(), msg.offset()]
    else:
        errors[err.name()] = errors.get(err.name(), 0) + 1
for k in range(int(sys.argv[3])):
    p.produce(sys.argv[2], value=f"inside-{k}".encode(), partition=0, on_delivery=cb)
    p.poll(0)
    time.sleep(0.02)
p.flush(60)
print(json.dumps({"acked": acked, "errors": errors, "broker": p.list_topics(timeout=5).orig_broker_id}))
"""


class Acknowledged:
    """What check_acknowledged needs of a producer: value -> (partition, offset)."""

    def __init__(self, acked):
        self.acked = acked


def network_partition(cluster):
    """Real network partitions between brokers, in network namespaces the test makes. The
    leader of partition 0 is isolated (its link down) while a producer inside its namespace
    still reaches it: the others elect a new leader, the majority side takes writes, and the
    isolated leader must not acknowledge an acks=all write the new leader lacks. Healed, it
    follows. Then a follower of partition 1 is isolated past the lag time: it leaves the ISR
    while writes go on, and rejoins once healed."""
    net = cluster.network
    rec = Recorder(cluster.bootstrap, timeout_ms=30000)
    rec.send("before", 1000)
    rec.flush()
    old = cluster.leader(0)
    net.isolate(old)
    cluster.stopped.add(old)  # unreachable from here: ask the others
    cut = time.time()
    inside = subprocess.Popen(["ip", "netns", "exec", net.namespace(old), sys.executable, "-c",
                               INSIDE_PRODUCER, cluster.address(old), TOPIC, "300"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    new = eventually("a leader on the majority side", 30,
                     lambda: (lambda l: l if l not in (old, -1) else None)(cluster.partitions()[0][0]))
    elected = time.time() - cut
    rec.send("majority", 1000, partition=0, pause=0.001)
    rec.flush()
    time.sleep(max(0.0, 8 - (time.time() - cut)))  # the inside producer writes ~6 s
    net.heal(old)
    cluster.stopped.discard(old)
    out, _ = inside.communicate(timeout=120)
    report = json.loads(out)
    inside_acked = {v: tuple(po) for v, po in report["acked"].items()}
    # It did reach the isolated broker: every write was answered by it or expired waiting.
    assert report["broker"] == old, report
    assert len(inside_acked) + sum(report["errors"].values()) == 300, report
    cluster.wait_isr_whole()

    follower = [b for b in cluster.partitions()[1][1] if b != cluster.leader(1)][0]
    net.isolate(follower)
    cluster.stopped.add(follower)
    t0 = time.time()

    def shrunk():
        rec.send("follower-cut", 50, partition=1, pause=0.002)
        return follower not in cluster.partitions()[1][2]
    eventually(f"follower {follower} out of the ISR", 30, shrunk, 0.1)
    left = time.time() - t0
    net.heal(follower)
    cluster.stopped.discard(follower)
    rec.flush()
    cluster.wait_isr_whole()
    seen = drain(cluster.bootstrap)
    summary = check_acknowledged(rec, seen)
    inside_summary = check_acknowledged(Acknowledged(inside_acked), seen)
    expired = sum(1 for e in rec.errors if e.name() == "_MSG_TIMED_OUT")
    assert len(rec.errors) == expired, f"producer errors: {rec.errors[:3]}"
    return (f"{summary} ({expired} expired unacknowledged in the client); leader {old} isolated: broker {new} elected {elected:.1f}s later; the "
            f"isolated leader acknowledged {len(inside_acked)} of 300 writes from inside its "
            f"namespace (the others failed: {report['errors']}), every acknowledged one kept "
            f"({inside_summary}); follower {follower} isolated left the "
            f"ISR {left:.1f}s later and rejoined when healed; {check_converged(cluster)}")


def unclean_election(cluster):
    """unclean.leader.election.enable=true on the topic: the ISR of partition 0 shrinks to its
    leader (both followers stopped), the leader is killed, the followers resume. The controller
    elects one of them on its own (Kafka's unclean election) instead of leaving the partition
    offline; what was acknowledged with acks=all before is on it, and the old leader returns
    as a follower of the new history."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    admin = cluster.admin()
    res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC, incremental_configs=[
        ConfigEntry("unclean.leader.election.enable", "true",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(timeout=30)
    rec, leader, followers = shrink_isr_to_leader(cluster)
    cluster.kill9(leader)
    killed = time.time()
    for f in followers:
        cluster.cont_signal(f)
    # (The other follower may be back in its ISR a moment later.)
    new = eventually("an unclean leader", 30,
                     lambda: (lambda l: l if l in followers else None)(cluster.partitions()[0][0]))
    elected = time.time() - killed
    rec.send("unclean", 500, partition=0)
    rec.flush()
    cluster.restart(leader)
    cluster.wait_isr_whole()
    summary = check_acknowledged(rec, drain(cluster.bootstrap))
    assert not rec.errors, f"producer errors: {rec.errors[:3]}"
    with open(cluster.log_path(cluster.controller())) as f:
        said = "unclean leader election" in f.read()
    assert said, "the controller did not report an unclean election"
    return (f"{summary}; leader {leader} killed with an ISR of itself: the controller elected "
            f"{new} uncleanly {elected:.1f}s later; {check_converged(cluster)}")


def clients_across_kill9(cluster):
    """Each client of compat-tests (confluent-kafka, kafka-python, kcat, Java kafka-clients)
    produces with acks=all and idempotence to its own topic (6 partitions, RF 3,
    min.insync.replicas=2): half of the messages, then the leader of partition 0 is killed
    with -9 and the client produces the other half through the failover, then reads every
    partition back from offset 0 while that broker is still down: every message exactly once,
    in order, with its key, value, headers and timestamp. Then the broker returns."""
    from compat.data import compare, make_messages
    from run_cluster import make_client
    partitions, count = 6, 600
    notes = []
    for name in ("confluent-kafka", "kafka-python", "kcat", "java"):
        topic = f"kill9-{name.replace('-', '')}"
        cluster.create_topic(topic, partitions)
        writer = make_client(name, cluster.bootstrap)
        base = int(time.time() * 1000) - 3_600_000 if writer.timestamps else None
        msgs = make_messages(count, partitions, base, writer.header_mode, big=False)
        t0 = int(time.time() * 1000)
        writer.produce(topic, msgs[:count // 2], idempotent=True)
        victim = cluster.leader(0, topic)
        cluster.kill9(victim)
        killed = time.time()
        writer.produce(topic, msgs[count // 2:], idempotent=True)
        across = time.time() - killed
        t1 = int(time.time() * 1000)
        new_leader = cluster.leader(0, topic)
        assert new_leader != victim, f"{name}: partition 0 still led by the killed broker"
        # Read back while the killed broker is still down (its bootstrap address too).
        reader = make_client(name, cluster.bootstrap)
        problems = []
        for p in range(partitions):
            want = sum(1 for m in msgs if m.partition == p)
            got = reader.consume(topic, p, 0, want)
            window = None if writer.timestamps else (t0 - 1000, t1 + 1000)
            problems += compare(msgs, got, p, check_ts=writer.timestamps, ts_window=window)
        assert not problems, f"{name}: read-back differs:\n    " + "\n    ".join(problems[:10])
        cluster.restart(victim)
        cluster.wait_isr_whole(topic=topic)
        notes.append(f"{name}: {count} exactly once, the second half produced in {across:.1f}s "
                     f"across the kill of broker {victim}, all read back with it down")
    return "; ".join(notes)


SCENARIOS = [
    ("leader-kill9", leader_kill9),
    ("controlled-shutdown", controlled_shutdown),
    ("follower-lag", follower_lag),
    ("isr-of-one", isr_of_one),
    ("coordinator-kill9", coordinator_kill9),
    ("zombie-leader", zombie_leader),
    ("zookeeper-restart", zookeeper_restart),
    ("elect-leaders", elect_leaders),
    ("divergent-tail", divergent_tail),
    ("clients-kill9", clients_across_kill9),
    ("zookeeper-cut-leader", zookeeper_cut_leader),
    ("nemesis", nemesis),
    ("network-partition", network_partition),
    ("unclean-election", unclean_election),
]


# Broker settings of single scenarios.
SCENARIO_OVERRIDES = {"elect-leaders": ["auto.leader.rebalance.enable=false"]}

# Scenarios whose brokers reach ZooKeeper through a StallableProxy each.
ZK_PROXIES = {"zookeeper-cut-leader"}

# Scenarios whose brokers run in network namespaces of their own (skipped, and said so, where
# the machine does not allow them).
NETWORK = {"network-partition"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(REPO, "target/release/gregor"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    passed = failed = skipped = 0
    for name, scenario in SCENARIOS:
        if only and name not in only:
            continue
        root = tempfile.mkdtemp(prefix=f"gregor-replication-{name}-")
        cluster = None
        network = None
        started = time.time()
        try:
            overrides = SCENARIO_OVERRIDES.get(name, ())
            if name in NETWORK:
                if not Network.available():
                    skipped += 1
                    print(f"SKIPPED {name}: this machine does not allow network namespaces "
                          f"(needs root and iproute2); network partitions were NOT tested", flush=True)
                    continue
                network = Network((1, 2, 3))
            cluster = Cluster(args.broker, root, overrides, zk_proxies=name in ZK_PROXIES,
                              network=network)
            cluster.create_topic()
            result = scenario(cluster)
            print(f"PASS {name} ({time.time() - started:.0f}s): {result}", flush=True)
            passed += 1
        except Exception as e:
            failed += 1
            print(f"FAIL {name} ({time.time() - started:.0f}s): {e}", flush=True)
            traceback.print_exc()
            if cluster:
                for i in (1, 2, 3):
                    print(f"--- broker {i} log tail ({cluster.log_path(i)})\n{cluster.tail(i)}", flush=True)
        finally:
            if cluster:
                cluster.close()
            if network:
                network.close()
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
