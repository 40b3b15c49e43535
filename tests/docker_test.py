#!/usr/bin/env python3
"""The Dockerfile and docker-compose.yml, run for real with Debian's Docker.

Needs root, a built broker (`cargo build --release`: the image copies target/release/gregor)
and the Python clients (scripts/install-deps.sh: confluent-kafka, kazoo). Everything else it
sets up itself, and undoes what it started:

  install     apt-get install docker.io (+ docker-compose, debootstrap) if no Docker engine
              answers and they are missing.
  dockerd     started in the background if none runs, stopped at the end. Flags:
              --iptables=false --ip-forward=false --ip-masq=false, because Docker's own rules
              set the FORWARD policy to DROP, and with bridge-nf-call-iptables=1 (this kernel's
              default) that drops bridged traffic between other tests' network namespaces
              (compat-tests/replication_test.py). Bridge networking still works for what is
              tested here: host <-> container and container <-> container on one bridge need
              neither NAT nor forwarding. Containers get no route to the internet, so the
              ZooKeeper image is built with the host's network.
  base image  debian:bookworm-slim made with `debootstrap --variant=minbase bookworm` (no
              registry is needed), cached as target/docker-test/debian-bookworm-minbase.tar.
              Skipped if the engine already has a debian:bookworm-slim.
  build       `docker build -t gregor .` (Dockerfile) and `docker-compose build zookeeper`
              with docker/compose.debian.yml, the override that replaces the official
              zookeeper:3.8 image (out of reach: no registry) with docker/zookeeper (Debian's
              ZooKeeper 3.8 packages).
  standalone  `docker run -p 127.0.0.1:PORT:PORT gregor` on a free port: produce keyed records
              from the host (confluent-kafka), read back keys, values and offsets, see the
              partitions in the container's /var/lib/gregor, `docker stop` (exit code 0: a
              clean SIGTERM shutdown), `docker start`, read everything again.
  cluster     `docker-compose up` (3 brokers, ZooKeeper) on its own bridge network
              (GREGOR_NET, default 172.28.5.0/24; no host ports, so nothing collides with
              other tests): all 3 brokers in ZooKeeper and in Metadata, a topic with
              replication factor 3 created by `docker-compose exec broker1 gregor topic
              create`, acks=all records read back exactly; `docker-compose restart
              zookeeper` while a producer and a consumer run (no client error, the brokers
              still registered, every acknowledged record consumed, a topic created after
              it gets its replicas); `docker kill` of
              partition 0's leader: a new leader for every partition, every acknowledged
              record still readable, acks=all writes go on; `docker start` of the killed
              broker: it rejoins every ISR. Then `docker-compose down -v`.

Every wait is bounded; the time of each phase is printed. Exits 1 on any failure.
Usage: python3 tests/docker_test.py [--keep-dockerd]
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, "target", "docker-test")
BASE_IMAGE = "debian:bookworm-slim"
BASE_TARBALL = os.path.join(CACHE, "debian-bookworm-minbase.tar")
GREGOR_IMAGE = "gregor"
STANDALONE = "gregor-docker-test-standalone"
PROJECT = "gregordockertest"
NET = os.environ.get("GREGOR_NET", "172.28.5")
QUIET = {"log_level": 2}  # librdkafka: no "connection refused" lines for the killed broker


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print(f"  ok: {what}", flush=True)


def run(cmd, timeout, check_rc=True, capture=False, env=None):
    """Runs cmd (bounded by timeout seconds); returns the CompletedProcess."""
    print(f"  $ {' '.join(cmd)}", flush=True)
    try:
        p = subprocess.run(cmd, timeout=timeout, text=True, env=env,
                           stdout=subprocess.PIPE if capture else None,
                           stderr=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired:
        raise Failure(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} timed out after {timeout}s")
    if check_rc and p.returncode != 0:
        detail = (p.stderr or "").strip()[-2000:] if capture else ""
        raise Failure(f"`{' '.join(cmd)}` exited {p.returncode} {detail}")
    return p


def quiet(cmd, timeout=30):
    """Runs cmd silently; True if it exited 0 (False on timeout or a missing program)."""
    try:
        return subprocess.run(cmd, timeout=timeout, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def wait_for(what, timeout, fn, interval=0.5):
    """Polls fn until it returns a truthy value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except Failure:
            raise
        except Exception as e:  # a broker not up yet, a refused connection: poll again
            last_error = e
        if time.monotonic() >= deadline:
            raise Failure(f"{what}: not within {timeout}s"
                          + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def alive(pid):
    """Whether pid runs (a zombie waiting for its parent does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(dockerd_pid):
    """CPU time (user + sys) spent so far for this test: this process and the children it has
    reaped (apt-get, debootstrap, the docker CLI), dockerd and its containerd while they run,
    and every container (the cpuacct cgroup `docker`, which keeps what removed containers
    used). Without it the phases' wall times would not say which ones load the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(getattr(resource.getrusage(who), f) for who in
                (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
    pids = [dockerd_pid] if dockerd_pid else []
    try:
        with open("/var/run/docker/containerd/containerd.pid") as f:
            pids.append(int(f.read()))
    except (OSError, ValueError):
        pass
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            pass
    try:
        with open("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage") as f:
            total += int(f.read()) / 1e9
    except (OSError, ValueError):
        pass
    return total


class Phases:
    """Wall time and CPU time of each phase (CPU / wall near 2 on this 2-core machine: the phase
    is CPU-bound; near 0: it waits, on the network or on timeouts)."""

    def __init__(self, dockerd):
        self.dockerd = dockerd
        self.times = []
        self.name = None

    def cpu(self):
        return cpu_seconds(self.dockerd.proc.pid if self.dockerd.proc else None)

    def begin(self, name):
        self.end()
        print(f"=== {name}", flush=True)
        self.name, self.start, self.cpu_start = name, time.monotonic(), self.cpu()

    def end(self):
        if self.name:
            self.times.append((self.name, time.monotonic() - self.start,
                               max(0.0, self.cpu() - self.cpu_start)))
            self.name = None

    def report(self):
        self.end()
        print("=== time per phase (wall, CPU)")
        for name, wall, cpu in self.times:
            print(f"  {wall:7.1f} s  {cpu:6.1f} s CPU  {name}")
        wall, cpu = sum(t[1] for t in self.times), sum(t[2] for t in self.times)
        print(f"  {wall:7.1f} s  {cpu:6.1f} s CPU  total")


# --- Docker itself -----------------------------------------------------------------------

def engine_answers():
    return quiet(["docker", "info"], timeout=20)


def compose_command():
    if quiet(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def install_packages():
    """Debian's docker.io (dockerd, the client, containerd, runc), docker-compose (v1.29) and
    debootstrap, whichever are missing."""
    want = []
    if not engine_answers() and not shutil.which("dockerd"):
        want.append("docker.io")
    if compose_command() is None:
        want.append("docker-compose")
    if not shutil.which("debootstrap") and not os.path.exists(BASE_TARBALL):
        want.append("debootstrap")
    if not want:
        print("  nothing to install (docker engine or dockerd, compose and debootstrap present)")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=120"]  # another apt-get running: wait for it
    run(["apt-get", *lock, "update", "-q"], timeout=300, env=env)
    # No recommends: apparmor, git, needrestart and cgroupfs-mount are not needed here.
    run(["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *want],
        timeout=900, env=env)
    check(shutil.which("docker") and (not ("docker.io" in want) or shutil.which("dockerd")),
          f"installed {' '.join(want)} from Debian")


class Dockerd:
    """The dockerd this test started (None if one was already running)."""

    def __init__(self):
        self.proc = None
        self.log_path = os.path.join(CACHE, "dockerd.log")

    def start(self):
        if engine_answers():
            print("  a Docker engine already answers: using it (and leaving it running)")
            return
        # The socket, data-root (/var/lib/docker) and exec-root are Docker's defaults, so the
        # images stay cached between runs and `docker` commands reach this daemon.
        self.had_docker0 = os.path.exists("/sys/class/net/docker0")
        with open("/proc/mounts") as f:
            self.had_netns_mount = " /run/docker/netns/default " in f.read()
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["dockerd", "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        print(f"  started dockerd (pid {self.proc.pid}, log {self.log_path})", flush=True)

        def up():
            if self.proc.poll() is not None:
                raise Failure(f"dockerd exited {self.proc.returncode}: {self.log_tail()}")
            return engine_answers()
        wait_for("dockerd answering", 90, up)
        check(True, "dockerd answers `docker info`")

    def log_tail(self, n=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        containerd_pid = None
        try:
            with open("/var/run/docker/containerd/containerd.pid") as f:
                containerd_pid = int(f.read().strip())
        except (OSError, ValueError):
            pass
        # SIGTERM: dockerd stops its containers (15 s each at most) and its containerd.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
            print(f"  dockerd (pid {self.proc.pid}) stopped, exit {self.proc.returncode}")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            print(f"  dockerd (pid {self.proc.pid}) did not stop on SIGTERM within 60 s: killed")
        # dockerd runs containerd in a process group of its own: make sure it is gone too.
        if containerd_pid:
            for _ in range(100):
                if not alive(containerd_pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(containerd_pid, signal.SIGKILL)
                print(f"  containerd (pid {containerd_pid}) outlived dockerd: killed")
        self.proc = None
        # What dockerd leaves on the host after it stopped: its default bridge and a bind
        # mount of the host's network namespace. Removed if this daemon made them.
        if not self.had_docker0:
            quiet(["ip", "link", "del", "docker0"])
        if not self.had_netns_mount:
            quiet(["umount", "/run/docker/netns/default"])


# --- the base image --------------------------------------------------------------------

def apt_mirror():
    """The Debian mirror apt uses here (for debootstrap), else deb.debian.org."""
    uris = []
    d = "/etc/apt/sources.list.d"
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".sources"):
            with open(os.path.join(d, name)) as f:
                for stanza in f.read().split("\n\n"):
                    fields = dict(line.split(":", 1) for line in stanza.splitlines()
                                  if ":" in line and not line.startswith("#"))
                    if "bookworm" in fields.get("Suites", "").split():
                        uris += fields.get("URIs", "").split()
    if os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
                    uris.append(parts[1])
    uris = [u for u in uris if "security" not in u]
    return uris[0] if uris else "http://deb.debian.org/debian"


def base_image():
    if quiet(["docker", "image", "inspect", BASE_IMAGE]):
        print(f"  {BASE_IMAGE} is already there: using it")
        return
    if not os.path.exists(BASE_TARBALL):
        os.makedirs(CACHE, exist_ok=True)
        rootfs = tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE)
        try:
            run(["debootstrap", "--variant=minbase", "bookworm", rootfs, apt_mirror()],
                timeout=900, capture=True)
            # As the official slim image: no package caches or lists (apt-get update refills them).
            for sub in ["var/cache/apt/archives", "var/lib/apt/lists"]:
                for name in os.listdir(os.path.join(rootfs, sub)):
                    path = os.path.join(rootfs, sub, name)
                    if os.path.isfile(path) and name != "lock":
                        os.remove(path)
            run(["tar", "-C", rootfs, "-cf", BASE_TARBALL + ".tmp", "."], timeout=300)
            os.rename(BASE_TARBALL + ".tmp", BASE_TARBALL)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        check(True, f"debootstrap --variant=minbase bookworm ({apt_mirror()}) -> {BASE_TARBALL}")
    else:
        print(f"  reusing {BASE_TARBALL}")
    run(["docker", "import", "--change", 'CMD ["bash"]', BASE_TARBALL, BASE_IMAGE], timeout=300)
    out = run(["docker", "run", "--rm", BASE_IMAGE, "cat", "/etc/debian_version"],
              timeout=120, capture=True).stdout.strip()
    check(out.startswith("12."), f"{BASE_IMAGE} imported from the debootstrap tree (Debian {out})")


# --- Kafka clients ------------------------------------------------------------------------

def metadata(bootstrap, timeout=5):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, **QUIET}).list_topics(timeout=timeout)


def create_topic(bootstrap, name, partitions, rf):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})  # alive until the answer
    admin.create_topics([NewTopic(name, partitions, rf)], operation_timeout=30)[name].result(60)


def produce(bootstrap, topic, partitions, prefix, n):
    """n keyed records, acks=all and idempotent; returns {(partition, offset): (key, value)} of
    the acknowledged ones (all of them, or Failure)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, **QUIET})
    acked, errors = {}, []

    def report(err, msg):
        if err:
            errors.append(str(err))
        else:
            acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())
    tag = uuid.uuid4().hex[:8]
    for i in range(n):
        key = f"{prefix}-key-{i}".encode()
        value = f"{prefix}-value-{i}-{tag}".encode() * (1 + i % 5)
        p.produce(topic, key=key, value=value, partition=i % partitions, on_delivery=report)
    left = p.flush(60)
    check(left == 0 and not errors and len(acked) == n,
          f"{n} records produced to {topic} with acks=all, all acknowledged"
          + (f" (errors: {errors[:3]}, unflushed {left})" if errors or left else ""))
    return acked


def read_all(bootstrap, topic, partitions, timeout=60):
    """Every record of topic from offset 0 to the high watermark, {(partition, offset): (key, value)}."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"docker-test-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, **QUIET})
    try:
        # Right after a failover a broker may still answer NOT_LEADER: ask again.
        ends = wait_for(f"{topic}'s high watermarks", 30,
                        lambda: {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                                 for p in range(partitions)})
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = {}
        deadline = time.monotonic() + timeout
        while any(sum(1 for (q, _) in got if q == p) < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise Failure(f"reading {topic}: {len(got)} of {sum(ends.values())} records "
                              f"within {timeout}s")
            for m in c.consume(500, timeout=1):
                if m.error():
                    raise Failure(f"reading {topic}: {m.error()}")
                got[(m.partition(), m.offset())] = (m.key(), m.value())
        return got
    finally:
        c.close()


def check_content(got, acked, what):
    check(got == acked,
          f"{what}: {len(got)} records, every key, value and offset as acknowledged"
          if got == acked else
          f"{what}: read {len(got)} records, acknowledged {len(acked)}; missing "
          f"{sorted(set(acked) - set(got))[:5]}, differing "
          f"{[k for k in acked if k in got and got[k] != acked[k]][:5]}")
    for p in {q for q, _ in got}:
        offsets = sorted(o for q, o in got if q == p)
        check(offsets == list(range(len(offsets))),
              f"{what}: partition {p} offsets 0..{len(offsets) - 1} without gaps")


# --- the standalone broker ----------------------------------------------------------------

def standalone(phases):
    phases.begin("standalone broker: docker run")
    quiet(["docker", "rm", "-f", "-v", STANDALONE])  # what a killed earlier run left
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    # Listen on the published port: the broker advertises the port it listens on.
    run(["docker", "run", "-d", "--name", STANDALONE, "-p", f"127.0.0.1:{port}:{port}",
         GREGOR_IMAGE, "--override", f"listeners=PLAINTEXT://0.0.0.0:{port}"], timeout=60)
    md = wait_for("the broker in the container answering Metadata", 60,
                  lambda: metadata(bootstrap))
    broker = next(iter(md.brokers.values()))
    check(len(md.brokers) == 1 and (broker.host, broker.port) == ("127.0.0.1", port),
          f"Metadata through the published port: broker {broker.id} at {broker.host}:{broker.port}")
    topic = "docker-standalone"
    create_topic(bootstrap, topic, 2, 1)
    acked = produce(bootstrap, topic, 2, "standalone", 200)
    check_content(read_all(bootstrap, topic, 2), acked, "read back from the container")
    logdir = run(["docker", "exec", STANDALONE, "ls", "/var/lib/gregor"], timeout=30,
                 capture=True).stdout.split()
    check({f"{topic}-0", f"{topic}-1"} <= set(logdir),
          f"the partitions are in the container's /var/lib/gregor "
          f"({', '.join(d for d in sorted(logdir) if d.startswith(topic))})")
    t0 = time.monotonic()
    run(["docker", "stop", "-t", "30", STANDALONE], timeout=60)
    state = json.loads(run(["docker", "inspect", "-f", "{{json .State}}", STANDALONE],
                           timeout=30, capture=True).stdout)
    check(state["ExitCode"] == 0 and not state["OOMKilled"],
          f"docker stop: gregor (PID 1) shut down on SIGTERM with exit code 0 in "
          f"{time.monotonic() - t0:.1f} s")
    run(["docker", "start", STANDALONE], timeout=60)
    wait_for("the restarted broker answering Metadata", 60,
             lambda: topic in metadata(bootstrap).topics)
    check_content(read_all(bootstrap, topic, 2), acked, "after docker stop + start (same volume)")
    run(["docker", "rm", "-f", "-v", STANDALONE], timeout=60)


# --- the 3-broker cluster -------------------------------------------------------------------

class Cluster:
    def __init__(self, compose):
        # docker/compose.debian.yml: ZooKeeper built from Debian's packages, since the
        # official zookeeper:3.8 image (docker-compose.yml's default) is out of reach here.
        self.cmd = [*compose, "-p", PROJECT, "-f", os.path.join(REPO, "docker-compose.yml"),
                    "-f", os.path.join(REPO, "docker", "compose.debian.yml")]
        self.env = dict(os.environ, GREGOR_NET=NET)
        self.ids = [1, 2, 3]

    def compose(self, *args, timeout=300, capture=False):
        return run([*self.cmd, *args], timeout=timeout, env=self.env, capture=capture)

    def container(self, broker_id):
        return self.compose("ps", "-q", f"broker{broker_id}", capture=True,
                            timeout=60).stdout.strip()

    def bootstrap(self, ids=None):
        return ",".join(f"{NET}.{10 + i}:9092" for i in (ids or self.ids))

    def down(self):
        self.compose("down", "-v", "--remove-orphans", "-t", "30", timeout=180)

    def zk_broker_ids(self):
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=f"{NET}.10:2181", timeout=5)
        zk.start(timeout=10)
        try:
            return sorted(int(i) for i in zk.get_children("/gregor/brokers/ids"))
        finally:
            zk.stop()
            zk.close()


def zookeeper_restart(c, topic, parts, acked):
    """`docker-compose restart zookeeper` while a producer (acks=all, idempotent) and a consumer
    run: the leaders need no ZooKeeper to serve them, so neither sees an error, and the brokers'
    sessions (18 s) outlive the restart. Returns what the producer had acknowledged."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    stop, flushed = threading.Event(), threading.Event()  # flushed: `produced` is final
    produced, errors, consumed = {}, [], {}
    start_offsets = {p: sum(1 for q, _ in acked if q == p) for p in range(parts)}

    def producing():
        p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5, **QUIET})

        def report(err, msg):
            if err:
                errors.append(f"produce: {err}")
            else:
                produced[(msg.partition(), msg.offset())] = (msg.key(), msg.value())
        i = 0
        while not stop.is_set():
            p.produce(topic, key=f"zk-key-{i}".encode(), value=f"zk-value-{i}".encode(),
                      partition=i % parts, on_delivery=report)
            p.poll(0.01)
            i += 1
        if p.flush(60):
            errors.append("produce: unflushed records after 60 s")
        flushed.set()

    def consuming():
        k = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": f"docker-zk-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, **QUIET})
        k.assign([TopicPartition(topic, p, start_offsets[p]) for p in range(parts)])
        # Until the producer is done, then until it has caught up with what was acknowledged.
        deadline = None
        while True:
            if flushed.is_set() and deadline is None:
                deadline = time.monotonic() + 60
            if deadline and (time.monotonic() > deadline or
                             all(key in consumed for key in produced)):
                break
            for m in k.consume(500, timeout=0.5):
                if m.error():
                    errors.append(f"consume: {m.error()}")
                else:
                    consumed[(m.partition(), m.offset())] = (m.key(), m.value())
        k.close()

    threads = [threading.Thread(target=producing), threading.Thread(target=consuming)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        before = len(produced)  # a glance while the producer runs: only compared below
        zk = c.compose("ps", "-q", "zookeeper", capture=True, timeout=60).stdout.strip()

        def started_at():
            return run(["docker", "inspect", "-f", "{{.State.StartedAt}}", zk], timeout=30,
                       capture=True).stdout.strip()
        first_start = started_at()
        t0 = time.monotonic()
        c.compose("restart", "-t", "10", "zookeeper", timeout=120)
        check(started_at() != first_start, f"ZooKeeper's container {zk[:12]} was restarted "
              f"(started {first_start}, now {started_at()})")
        ids = wait_for("ZooKeeper back with the 3 brokers registered", 60,
                       lambda: (z := c.zk_broker_ids()) == c.ids and z)
        check(ids == c.ids, f"ZooKeeper restarted and back in {time.monotonic() - t0:.1f} s: "
              f"/gregor/brokers/ids = {ids} (the brokers' sessions outlived it)")
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    check(not errors, f"no client error across the restart {errors[:3]}")
    check(len(produced) > before > 0, f"{len(produced)} records acknowledged, "
          f"{len(produced) - before} of them from the restart on")
    check(all(consumed.get(key) == value for key, value in produced.items()),
          f"the running consumer received all {len(produced)} acknowledged records "
          f"({len(consumed)} received)")
    # The controller works with the restarted ZooKeeper: a new topic gets its replicas.
    fresh = "docker-after-zk-restart"
    c.compose("exec", "-T", "broker2", "gregor", "topic", "create", fresh, "--partitions", "1",
              "--replication-factor", "3", "--bootstrap-server", f"{NET}.12:9092", timeout=60)
    t = wait_for(f"{fresh}: 3 replicas in sync", 60,
                 lambda: (tm := metadata(c.bootstrap()).topics.get(fresh)) and tm.error is None
                 and tm.partitions and sorted(tm.partitions[0].isrs) == c.ids and tm)
    check(True, f"{fresh} created after the restart: leader {t.partitions[0].leader}, ISR {c.ids}")
    return produced


def cluster(phases, compose):
    c = Cluster(compose)
    phases.begin("cluster: docker-compose build zookeeper (docker/compose.debian.yml)")
    c.down()  # what a killed earlier run left
    c.compose("build", "zookeeper", timeout=900)
    try:
        phases.begin("cluster: docker-compose up, 3 brokers")
        c.compose("up", "-d", timeout=300)
        ids = wait_for("3 brokers registered in ZooKeeper", 120,
                       lambda: (z := c.zk_broker_ids()) == c.ids and z)
        check(ids == c.ids, f"ZooKeeper ({NET}.10:2181) /gregor/brokers/ids = {ids}")
        md = wait_for("3 brokers in Metadata", 60,
                      lambda: (m := metadata(c.bootstrap())) and len(m.brokers) == 3 and m)
        endpoints = {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}
        check(endpoints == {i: f"{NET}.{10 + i}:9092" for i in c.ids},
              f"Metadata lists the 3 brokers at their bridge addresses {endpoints}")

        phases.begin("cluster: replication factor 3, acks=all")
        topic, parts = "docker-replicated", 3
        # With the command-line client inside a broker's container, as docker-compose.yml shows.
        c.compose("exec", "-T", "broker1", "gregor", "topic", "create", topic, "--partitions",
                  str(parts), "--replication-factor", "3", "--bootstrap-server",
                  f"{NET}.11:9092", timeout=60)

        def all_isr_full():
            t = metadata(c.bootstrap()).topics.get(topic)
            return (t and t.error is None and len(t.partitions) == parts and
                    all(sorted(p.isrs) == c.ids and sorted(p.replicas) == c.ids
                        and p.leader in c.ids for p in t.partitions.values()) and t)
        t = wait_for(f"{topic}: 3 replicas in sync for every partition", 60, all_isr_full)
        check(True, f"{topic}: {parts} partitions, replicas and ISR {c.ids}, leaders "
              f"{ {p: t.partitions[p].leader for p in sorted(t.partitions)} }")
        acked = produce(c.bootstrap(), topic, parts, "before-kill", 300)
        check_content(read_all(c.bootstrap(), topic, parts), acked, "read back from the cluster")

        phases.begin("cluster: ZooKeeper container restarted under produce and consume")
        acked.update(zookeeper_restart(c, topic, parts, acked))

        phases.begin("cluster: docker kill of the leader, failover")
        leader = t.partitions[0].leader
        survivors = [i for i in c.ids if i != leader]
        container = c.container(leader)
        check(container, f"partition 0's leader is broker {leader} (container {container[:12]})")
        t0 = time.monotonic()
        run(["docker", "kill", container], timeout=60)

        def new_leaders():
            """The leaders, once every survivor's Metadata names the same live ones."""
            views = []
            for i in survivors:
                tm = metadata(c.bootstrap([i])).topics.get(topic)
                if not tm or not all(p.leader in survivors for p in tm.partitions.values()):
                    return None
                views.append({p: tm.partitions[p].leader for p in sorted(tm.partitions)})
            return views[0] if all(v == views[0] for v in views) else None
        leaders = wait_for("a new leader for every partition", 90, new_leaders)
        check(True, f"broker {leader} killed: new leaders {leaders} after "
              f"{time.monotonic() - t0:.1f} s (ZooKeeper session timeout 18 s)")
        check(c.zk_broker_ids() == survivors,
              f"ZooKeeper /gregor/brokers/ids = {survivors} without the killed broker")
        check_content(read_all(c.bootstrap(survivors), topic, parts), acked,
                      f"read after the kill, from brokers {survivors}")
        more = produce(c.bootstrap(survivors), topic, parts, "after-kill", 100)
        acked.update(more)
        check_content(read_all(c.bootstrap(survivors), topic, parts), acked,
                      "read after acks=all writes to the new leaders")

        phases.begin("cluster: docker start of the killed broker")
        run(["docker", "start", container], timeout=60)
        wait_for(f"broker {leader} back in every ISR", 120, all_isr_full)
        check(c.zk_broker_ids() == c.ids, f"broker {leader} registered again and back in "
              f"every partition's ISR {c.ids}")
        check_content(read_all(c.bootstrap([leader]), topic, parts), acked,
                      f"read again, bootstrapping from the restarted broker {leader}")
    except BaseException:
        print("--- last lines of each container's log", flush=True)
        for service in ["zookeeper", "broker1", "broker2", "broker3"]:
            subprocess.run([*c.cmd, "logs", "--tail", "15", service], env=c.env, timeout=60)
        raise
    finally:
        phases.begin("cluster: docker-compose down -v")
        c.down()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep-dockerd", action="store_true",
                    help="leave the dockerd this test started running (for debugging)")
    args = ap.parse_args()
    # A timeout's SIGTERM goes through the `finally` blocks below like an exception.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    dockerd = Dockerd()
    phases = Phases(dockerd)
    status = 0
    try:
        binary = os.path.join(REPO, "target", "release", "gregor")
        if os.geteuid() != 0:
            raise Failure("needs root (apt-get, dockerd, debootstrap)")
        if not os.path.isfile(binary):
            raise Failure(f"{binary} missing: run `cargo build --release` first")
        try:
            import confluent_kafka  # noqa: F401
            import kazoo  # noqa: F401
        except ImportError as e:
            raise Failure(f"{e}: run scripts/install-deps.sh first")
        os.makedirs(CACHE, exist_ok=True)

        phases.begin("install: docker.io, docker-compose, debootstrap from Debian")
        install_packages()
        phases.begin("dockerd")
        dockerd.start()
        compose = compose_command()
        check(compose is not None, f"compose: {' '.join(compose or ['none'])}")
        print("  " + run(["docker", "version", "-f",
                          "client {{.Client.Version}}, engine {{.Server.Version}}"],
                         timeout=30, capture=True).stdout.strip())
        phases.begin("base image: debootstrap, docker import")
        base_image()
        phases.begin("build: docker build -t gregor .")
        run(["docker", "build", "-t", GREGOR_IMAGE, REPO], timeout=300)
        standalone(phases)
        cluster(phases, compose)
        print("=== PASSED: the Dockerfile (standalone broker) and docker-compose.yml "
              "(3 brokers, failover) work")
    except Failure as e:
        print(f"FAILED: {e}", flush=True)
        status = 1
    except SystemExit as e:
        print(f"FAILED: interrupted ({e.code})", flush=True)
        status = 1
    except Exception:  # a client error, say: still tear down
        traceback.print_exc()
        print("FAILED: unexpected error", flush=True)
        status = 1
    finally:
        quiet(["docker", "rm", "-f", "-v", STANDALONE])
        phases.begin("stop dockerd")
        if status and dockerd.proc is not None:
            print("--- last lines of the dockerd log\n" + dockerd.log_tail())
        if not args.keep_dockerd:
            dockerd.stop()
        phases.report()
    return status


if __name__ == "__main__":
    sys.exit(main())
