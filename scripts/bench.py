#!/usr/bin/env python3
"""scripts/bench: gregor against Apache Kafka on the same machine, in the same run.

Fetches Apache Kafka 4.x (broker and perf tools) from Maven Central once (bench/kafka/pom.xml
into target/bench/kafka-lib), starts it single-node in KRaft mode and gregor standalone, each
with a fresh data directory under one temp folder, and runs against each in turn:

- Kafka's own ProducerPerformance (the JVM client `kafka-producer-perf-test` uses), for
  throughput and produce latency percentiles;
- a librdkafka consumer (confluent-kafka, partitions assigned, no group) reading everything
  back, so the client is not the bottleneck;
- broker CPU seconds per GB moved and peak RSS, from /proc;
- the disk's raw sequential write bandwidth (with and without fdatasync) as the physical limit.

Each workload runs --repeat times (median reported, both brokers alternating). Prints one table
and writes target/bench/results.json: a list of {workload, metric, unit, gregor, kafka, ratio},
ratio oriented so that above 1 means gregor is better. Stops everything it started.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LIB = os.path.join(ROOT, "target", "bench", "kafka-lib")
OUT = os.path.join(ROOT, "target", "bench")
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not open port {port} in {timeout}s")


def ensure_kafka_jars():
    if os.path.isdir(LIB) and any(f.startswith("kafka_2.13") for f in os.listdir(LIB)):
        return
    print("fetching Apache Kafka jars with Maven (once) ...", flush=True)
    subprocess.run(
        ["mvn", "-q", "-B", "-f", os.path.join(ROOT, "bench", "kafka", "pom.xml"),
         "dependency:copy-dependencies", f"-DoutputDirectory={LIB}"],
        check=True,
    )


def proc_stats(pid):
    """(cpu seconds, peak RSS MiB) of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK
    peak = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cpu, peak


class Broker:
    def __init__(self, name, cmd, port, log_path, env=None):
        self.name, self.port = name, port
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        wait_port(port, self.proc, name)
        self.bootstrap = f"127.0.0.1:{port}"

    def stats(self):
        return proc_stats(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def start_gregor(tmp):
    port = free_port()
    binary = os.path.join(ROOT, "target", "release", "gregor")
    data = os.path.join(tmp, "gregor-data")
    return Broker("gregor", [binary, "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
                             "--override", f"log.dirs={data}"],
                  port, os.path.join(tmp, "gregor.log"))


def start_kafka(tmp):
    port, cport = free_port(), free_port()
    data = os.path.join(tmp, "kafka-data")
    cfg = os.path.join(tmp, "kafka.properties")
    with open(cfg, "w") as f:
        f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
""")
    log4j = os.path.join(tmp, "log4j2.properties")
    with open(log4j, "w") as f:
        f.write("rootLogger.level=WARN\nrootLogger.appenderRef.stdout.ref=STDOUT\n"
                "appender.stdout.type=Console\nappender.stdout.name=STDOUT\n"
                "appender.stdout.layout.type=PatternLayout\nappender.stdout.layout.pattern=%d %p %m%n\n")
    cp = os.path.join(LIB, "*")
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    jvm = ["java", f"-Dlog4j2.configurationFile={log4j}", "-cp", cp]
    subprocess.run(jvm + ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", cfg],
                   check=True, stdout=subprocess.DEVNULL)
    # Kafka's own start script gives the broker a 1 GiB heap.
    return Broker("kafka", ["java", "-Xms1g", "-Xmx1g", "-XX:+UseG1GC"] + jvm[1:] + ["kafka.Kafka", cfg],
                  port, os.path.join(tmp, "kafka.log"))


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def producer_perf(bootstrap, topic, records, size, acks, throughput=-1):
    cmd = ["java", "-Xmx1g", "-cp", os.path.join(LIB, "*"), "org.apache.kafka.tools.ProducerPerformance",
           "--topic", topic, "--num-records", str(records), "--record-size", str(size),
           "--throughput", str(throughput), "--producer-props", f"bootstrap.servers={bootstrap}",
           f"acks={acks}", "linger.ms=5", "batch.size=65536"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    m = None
    for line in out.splitlines():
        m = PERF_LINE.search(line) or m
    if not m:
        raise SystemExit(f"cannot parse ProducerPerformance output:\n{out}")
    return {"msgs": float(m.group(2)), "mbs": float(m.group(3)), "p50": float(m.group(6)),
            "p99": float(m.group(8)), "p999": float(m.group(9))}


def consume_all(bootstrap, topic, partitions, records):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-unused", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, nbytes = 0, 0
    start = time.perf_counter()
    while got < records:
        msgs = c.consume(10000, timeout=10)
        if not msgs:
            raise SystemExit(f"consumer stalled at {got}/{records}")
        for m in msgs:
            if m.error() is None:
                got += 1
                nbytes += len(m.value() or b"")
    secs = time.perf_counter() - start
    c.close()
    return {"msgs": got / secs, "mbs": nbytes / secs / 1e6}


def disk_bandwidth(tmp, mib):
    """Raw sequential write MB/s to the data disk, without and with fdatasync."""
    res = {}
    for name, extra in (("no_fsync", []), ("fsync", ["conv=fdatasync"])):
        path = os.path.join(tmp, "dd.bin")
        out = subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}"] + extra,
                             capture_output=True, text=True).stderr
        m = re.search(r"copied, ([\d.]+) s", out)
        os.remove(path)
        res[name] = mib * 1048576 / float(m.group(1)) / 1e6 if m else 0.0
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 KB and 100 B, acks=1, 1 partition")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--records-1k", type=int, default=500_000)
    ap.add_argument("--records-100b", type=int, default=2_000_000)
    args = ap.parse_args()
    if not os.path.exists(os.path.join(ROOT, "target", "release", "gregor")):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    ensure_kafka_jars()
    os.makedirs(OUT, exist_ok=True)
    workloads = [("1KB acks=1 1p", 1024, args.records_1k, 1, 1),
                 ("100B acks=1 1p", 100, args.records_100b, 1, 1)]
    if not args.quick:
        workloads += [("1KB acks=all 1p", 1024, args.records_1k, "all", 1),
                      ("1KB acks=1 16p", 1024, args.records_1k, 1, 16)]
    tmp = tempfile.mkdtemp(prefix="gregor-bench-", dir=os.path.join(ROOT, "target", "bench"))
    brokers = []
    rows = []
    try:
        disk = disk_bandwidth(tmp, 1024)
        brokers = [start_gregor(tmp), start_kafka(tmp)]
        samples = {}  # (workload, broker) -> list of dicts
        for (name, size, records, acks, parts) in workloads:
            for rep in range(args.repeat):
                for b in brokers:
                    topic = f"bench-{re.sub(r'[^a-z0-9]+', '-', name.lower())}-{rep}"
                    create_topic(b.bootstrap, topic, parts)
                    cpu0, _ = b.stats()
                    prod = producer_perf(b.bootstrap, topic, records, size, acks)
                    cons = consume_all(b.bootstrap, topic, parts, records)
                    cpu1, peak = b.stats()
                    gb = 2 * records * size / 1e9  # in and out
                    sample = {"produce_msgs": prod["msgs"], "produce_mbs": prod["mbs"],
                              "produce_p99_ms": prod["p99"], "produce_p50_ms": prod["p50"],
                              "consume_msgs": cons["msgs"], "consume_mbs": cons["mbs"],
                              "cpu_s_per_gb": (cpu1 - cpu0) / gb, "peak_rss_mib": peak}
                    samples.setdefault((name, b.name), []).append(sample)
                    print(f"{name} #{rep + 1} {b.name}: produce {prod['msgs']:,.0f} msg/s "
                          f"{prod['mbs']:.1f} MB/s p99 {prod['p99']:.0f} ms; consume {cons['msgs']:,.0f} msg/s; "
                          f"cpu {sample['cpu_s_per_gb']:.2f} s/GB; peak RSS {peak:.0f} MiB", flush=True)
        metrics = [("produce_msgs", "msg/s", True), ("produce_mbs", "MB/s", True),
                   ("produce_p50_ms", "ms", False), ("produce_p99_ms", "ms", False),
                   ("consume_msgs", "msg/s", True), ("consume_mbs", "MB/s", True),
                   ("cpu_s_per_gb", "s/GB", False), ("peak_rss_mib", "MiB", False)]
        for (name, *_rest) in workloads:
            for metric, unit, higher_better in metrics:
                g = statistics.median(s[metric] for s in samples[(name, "gregor")])
                k = statistics.median(s[metric] for s in samples[(name, "kafka")])
                if higher_better:
                    ratio = g / k if k else None
                else:
                    ratio = k / g if g else None
                rows.append({"workload": name, "metric": metric, "unit": unit,
                             "gregor": round(g, 3), "kafka": round(k, 3),
                             "ratio": round(ratio, 3) if ratio else None})
        for name in ("no_fsync", "fsync"):
            rows.append({"workload": "disk raw sequential write", "metric": name, "unit": "MB/s",
                         "gregor": round(disk[name], 1), "kafka": round(disk[name], 1), "ratio": 1.0})
        g1k = statistics.median(s["produce_mbs"] for s in samples[("1KB acks=1 1p", "gregor")])
        rows.append({"workload": "1KB acks=1 1p", "metric": "produce_fraction_of_disk_no_fsync",
                     "unit": "fraction", "gregor": round(g1k / disk["no_fsync"], 3) if disk["no_fsync"] else None,
                     "kafka": None, "ratio": None})
    finally:
        for b in brokers:
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    print(f"\n{'workload':<26}{'metric':<36}{'gregor':>14}{'kafka':>14}{'ratio':>8}")
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:,.2f}"  # noqa: E731
        print(f"{r['workload']:<26}{r['metric'] + ' (' + r['unit'] + ')':<36}{fmt(r['gregor']):>14}"
              f"{fmt(r['kafka']):>14}{fmt(r['ratio']):>8}")
    print(f"\nwrote {os.path.join(OUT, 'results.json')} (ratio > 1: gregor better; medians of {args.repeat})")


if __name__ == "__main__":
    sys.exit(main())
