#!/usr/bin/env python3
"""A rolling restart of a 3-broker gregor cluster under load, as operators do it.

`scripts/cluster.sh start` starts ZooKeeper and three brokers; a 6-partition topic with
replication factor 3 and min.insync.replicas=2 is created. Then, while an idempotent
acks=all producer (confluent-kafka) writes all along and a consumer group member reads
and commits, `scripts/cluster.sh rolling-restart` restarts every broker in turn: SIGTERM
(a controlled shutdown), start again, and wait for `gregor cluster health` (every
partition led, every ISR whole) before the next one.

Checked:
- the script succeeds and every broker restarted through a controlled shutdown;
- the producer was told of no error, and no error the clients treat as fatal occurred;
- every acknowledged record is in the log exactly once, at its acknowledged offset;
- the group member received every acknowledged record (a redelivery after a coordinator
  move is counted, not an error: at-least-once);
- the longest pause between two acknowledgements is printed.

Then `gregor cluster health` must say the truth when the cluster is not healthy: broker 3
is killed with kill -9, health turns false with the partitions it held under-replicated,
and `rolling-restart` refuses to start.

usage: compat-tests/rolling_restart_test.py --broker target/release/gregor
Prints PASS or FAIL with a summary; exits non-zero on failure.
"""
import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TOPIC = "rolling"
PARTITIONS = 6
GROUP = "rolling-group"


def free_base_port():
    """Three consecutive free ports."""
    for _ in range(50):
        base = random.randint(20000, 60000)
        ok = True
        for port in range(base, base + 3):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no three free consecutive ports")


def eventually(what, timeout, check, interval=0.2):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def cluster_sh(env, *args, timeout=600):
    return subprocess.run([os.path.join(REPO, "scripts/cluster.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def health(binary, bootstrap, wait_ms=0):
    r = subprocess.run([binary, "cluster", "health", "--bootstrap-server", bootstrap,
                        "--wait-ms", str(wait_ms)], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


class Load:
    """An idempotent acks=all producer writing all along, and one group member reading."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.stop = threading.Event()
        self.acked = {}        # value -> (partition, offset)
        self.ack_times = []
        self.errors = []
        self.fatal = []
        self.received = {}     # value -> times received by the group member
        self.lock = threading.Lock()
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 120000, "request.timeout.ms": 10000,
            "retry.backoff.ms": 100, "retry.backoff.max.ms": 500,
            "error_cb": self._error})
        self.threads = [threading.Thread(target=self._produce), threading.Thread(target=self._consume)]

    def _error(self, err):
        if err.fatal():
            self.fatal.append(str(err))

    def _delivered(self, err, msg):
        if err:
            self.errors.append(str(err))
            return
        with self.lock:
            self.acked[msg.value().decode()] = (msg.partition(), msg.offset())
            self.ack_times.append(time.time())

    def _produce(self):
        n = 0
        while not self.stop.is_set():
            v = f"r-{n}"
            n += 1
            self.producer.produce(TOPIC, key=v.encode(), value=v.encode(), on_delivery=self._delivered)
            self.producer.poll(0)
            time.sleep(0.004)
        left = self.producer.flush(120)
        if left:
            self.errors.append(f"{left} records never answered")

    def _consume(self):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": GROUP,
                      "auto.offset.reset": "earliest", "enable.auto.commit": True,
                      "auto.commit.interval.ms": 500, "session.timeout.ms": 10000,
                      "error_cb": self._error})
        c.subscribe([TOPIC])
        idle_since = None
        while True:
            m = c.poll(0.5)
            if m is None or m.error():
                if self.stop.is_set():
                    # Past the end of the load: stop once everything acknowledged arrived,
                    # or after 60 s without it.
                    idle_since = idle_since or time.time()
                    with self.lock:
                        done = all(v in self.received for v in self.acked)
                    if done or time.time() - idle_since > 60:
                        break
                if m is not None and m.error() and m.error().fatal():
                    self.fatal.append(str(m.error()))
                continue
            with self.lock:
                v = m.value().decode()
                self.received[v] = self.received.get(v, 0) + 1
        c.close()

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(240)


def drain(bootstrap):
    """Every record of the topic: value -> list of (partition, offset)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    seen, idle = {}, time.time()
    while time.time() - idle < 6:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        idle = time.time()
        seen.setdefault(m.value().decode(), []).append((m.partition(), m.offset()))
    c.close()
    return seen


def run(binary, root):
    base = free_base_port()
    env = dict(os.environ, GREGOR=binary, BASE_PORT=str(base), ZK_TICK_MS="500",
               ZK_FORCE_SYNC="no", ZK_OWNER_PID=str(os.getpid()))
    r = cluster_sh(env, "start", root, "3", timeout=180)
    assert r.returncode == 0, f"cluster.sh start failed: {r.stderr[-2000:]}"
    bootstrap = r.stdout.strip()
    first = bootstrap.split(",")[0]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)
    code, out = health(binary, first, 30000)
    assert code == 0 and "healthy: true" in out and f"partitions: {PARTITIONS}" in out, out

    load = Load(bootstrap)
    load.start()
    time.sleep(3)
    before = len(load.acked)
    started = time.time()
    r = cluster_sh(env, "rolling-restart", root, timeout=900)
    took = time.time() - started
    time.sleep(3)
    load.finish()
    assert r.returncode == 0, f"rolling-restart failed: {r.stderr[-3000:]}"
    restarted = [line for line in r.stderr.splitlines() if "restarted; the cluster is healthy" in line]
    assert len(restarted) == 3, r.stderr
    for i in (1, 2, 3):
        with open(os.path.join(root, f"broker{i}.previous.log")) as f:
            previous = f.read()
        assert "controlled shutdown" in previous and "left the cluster" in previous, \
            f"broker {i} did not go through a controlled shutdown"

    assert not load.errors, f"producer errors: {load.errors[:5]}"
    assert not load.fatal, f"fatal client errors: {load.fatal[:5]}"
    assert len(load.acked) > before + 1000, f"only {len(load.acked) - before} records acknowledged during the restarts"
    seen = drain(bootstrap)
    lost = [v for v in load.acked if v not in seen]
    dups = [v for v, places in seen.items() if len(places) > 1]
    moved = [v for v, (p, o) in load.acked.items() if v in seen and seen[v][0] != (p, o)]
    assert not lost, f"lost {len(lost)} acknowledged, e.g. {lost[:5]}"
    assert not dups, f"{len(dups)} records in the log twice, e.g. {dups[:5]}"
    assert not moved, f"{len(moved)} records not at their acknowledged offset, e.g. {moved[:5]}"
    unread = [v for v in load.acked if v not in load.received]
    assert not unread, f"the group member never received {len(unread)} acknowledged, e.g. {unread[:5]}"
    redelivered = sum(1 for n in load.received.values() if n > 1)
    times = sorted(load.ack_times)
    pause = max((b - a for a, b in zip(times, times[1:])), default=0.0)

    # The health check tells the truth: broker 3 killed, its replicas under-replicated once
    # its session expires, and a rolling restart refused.
    with open(os.path.join(root, "broker3.pid")) as f:
        os.kill(int(f.read()), signal.SIGKILL)
    report = eventually("health to turn false", 30, lambda: (lambda c, o: o if c == 1 else None)(
        *health(binary, first)))
    # Every partition (ours and __consumer_offsets, all with 3 replicas) had one on broker 3.
    total = int(report.split("\npartitions: ")[1].split()[0])
    assert "healthy: false" in report and total > PARTITIONS and \
        f"under-replicated partitions: {total} (" in report, report
    refused = cluster_sh(dict(env, HEALTH_WAIT_MS="2000"), "rolling-restart", root, timeout=120)
    assert refused.returncode != 0 and "not healthy: not restarting broker 1" in refused.stderr, \
        refused.stderr[-2000:]
    return (f"3 brokers restarted in turn in {took:.0f}s under load: acknowledged {len(load.acked)} "
            f"({len(load.acked) - before} during the restarts), lost 0, duplicated 0, moved 0; "
            f"the producer was told of no error; writes paused at most {pause:.2f}s; the group "
            f"member received all ({redelivered} redelivered after a coordinator move); with "
            f"broker 3 killed, health said all {total} partitions under-replicated and "
            f"rolling-restart refused")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(REPO, "target/release/gregor"))
    args = ap.parse_args()
    binary = os.path.abspath(args.broker)
    root = tempfile.mkdtemp(prefix="gregor-rolling-")
    started = time.time()
    try:
        summary = run(binary, root)
        print(f"PASS rolling-restart ({time.time() - started:.0f}s): {summary}", flush=True)
        ok = True
    except Exception as e:  # noqa: BLE001 - reported, then the cluster is stopped
        print(f"FAIL rolling-restart ({time.time() - started:.0f}s): {e}", flush=True)
        for i in (1, 2, 3):
            path = os.path.join(root, f"broker{i}.log")
            if os.path.exists(path):
                with open(path) as f:
                    print(f"--- broker {i} log tail\n{''.join(f.readlines()[-15:])}", flush=True)
        ok = False
    finally:
        cluster_sh(dict(os.environ, GREGOR=binary), "stop", root, timeout=120)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
