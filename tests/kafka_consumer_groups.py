#!/usr/bin/env python3
"""Apache Kafka's own group tooling against gregor:

1. `kafka-consumer-groups.sh` (class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
   from Maven's kafka-tools 4.x): --list, --describe (offsets and lag), --describe --members
   while a consumer is in the group, --reset-offsets --execute (to-earliest, to-offset, shift-by),
   --delete-offsets and --delete, each checked by reading the committed offsets back through
   confluent-kafka.
2. `kafka-log-dirs.sh --describe` (org.apache.kafka.tools.LogDirsCommand) lists the data
   directory with the topic's partitions and their sizes.
3. `kafka-dump-log.sh --offsets-decoder` (org.apache.kafka.tools.DumpLogSegments) decodes
   gregor's __consumer_offsets segment: the offset commits and group metadata are in Kafka's
   record formats.

usage: tests/kafka_consumer_groups.py --broker target/release/gregor --kafka-lib target/kafka-tools-lib
Prints "N passed, N failed"; exits non-zero on any failure.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "compat-tests"))

from compat.broker import Broker  # noqa: E402
import confluent_kafka as ck  # noqa: E402
from confluent_kafka import TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC = "cli-orders"
GROUP = "cli-group"
PER_PARTITION = 50

passed = 0
failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {what}")
    else:
        failed += 1
        print(f"FAILED: {what}\n    {detail}")


def tool(lib, bootstrap, *args, cls="org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"):
    cmd = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", os.path.join(lib, "*"), cls]
    if bootstrap:
        cmd += ["--bootstrap-server", bootstrap]
    cmd += list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    err = "\n".join(l for l in r.stderr.splitlines() if not l.startswith("SLF4J"))
    return r.returncode, r.stdout, err


def committed(bootstrap, group, partitions=2):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        got = c.committed([TopicPartition(TOPIC, p) for p in range(partitions)], timeout=15)
        return [tp.offset for tp in got]
    finally:
        c.close()


def commit(bootstrap, group, offsets):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in enumerate(offsets)], asynchronous=False)
    finally:
        c.close()


def describe_rows(out):
    """(partition, current offset, log end offset, lag) rows of --describe for TOPIC."""
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] == GROUP and f[1] == TOPIC:
            rows.append((int(f[2]), f[3], f[4], f[5]))
    return sorted(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(HERE, "..", "target", "release", "gregor"))
    ap.add_argument("--kafka-lib", default=os.path.join(HERE, "..", "target", "kafka-tools-lib"))
    args = ap.parse_args()
    lib = os.path.abspath(args.kafka_lib)
    if not glob.glob(os.path.join(lib, "kafka-tools-*.jar")):
        print(f"Kafka's tools are not in {lib} (run log/tests/kafka_dump_log.sh or mvn first)")
        return 1

    broker = Broker(args.broker, extra_overrides=["group.initial.rebalance.delay.ms=0",
                                                  "offsets.topic.num.partitions=5"])
    broker.start()
    bs = broker.bootstrap
    try:
        admin = AdminClient({"bootstrap.servers": bs})
        admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result()
        p = ck.Producer({"bootstrap.servers": bs, "linger.ms": 5})
        for part in range(2):
            for i in range(PER_PARTITION):
                p.produce(TOPIC, key=f"k{i}", value=f"v{i}", partition=part)
        p.flush(30)
        commit(bs, GROUP, [30, 10])
        check("offsets committed through confluent-kafka", committed(bs, GROUP) == [30, 10],
              committed(bs, GROUP))

        code, out, err = tool(lib, bs, "--list")
        check("--list names the group", code == 0 and GROUP in out.split(), f"exit {code}\n{out}\n{err}")

        code, out, err = tool(lib, bs, "--describe", "--group", GROUP)
        rows = describe_rows(out)
        want = [(0, "30", str(PER_PARTITION), str(PER_PARTITION - 30)),
                (1, "10", str(PER_PARTITION), str(PER_PARTITION - 10))]
        check("--describe shows committed offsets, log end offsets and lag", code == 0 and rows == want,
              f"exit {code}, rows {rows}, want {want}\n{out}\n{err}")

        # A live member: --describe --members lists it with its client id and host.
        member = ck.Consumer({"bootstrap.servers": bs, "group.id": "cli-live", "client.id": "cli-member",
                              "auto.offset.reset": "earliest"})
        member.subscribe([TOPIC])
        deadline = time.time() + 30
        while time.time() < deadline and not member.assignment():
            member.poll(0.2)
        code, out, err = tool(lib, bs, "--describe", "--members", "--group", "cli-live")
        line = next((l for l in out.splitlines() if l.startswith("cli-live ")), "")
        check("--describe --members shows the live member (client id, host, 2 partitions)",
              code == 0 and "cli-member" in line and "/127.0.0.1" in line and line.split()[-1] == "2",
              f"exit {code}\n{out}\n{err}")
        code, out, err = tool(lib, bs, "--describe", "--state", "--group", "cli-live")
        check("--describe --state says Stable with the range assignor",
              code == 0 and re.search(r"\brange\b", out) and re.search(r"\bStable\b", out),
              f"exit {code}\n{out}\n{err}")
        code, out, err = tool(lib, bs, "--delete", "--group", "cli-live")
        check("--delete refuses a group with a live member",
              "not empty" in (out + err).lower() or "NonEmptyGroup" in (out + err), f"{out}\n{err}")
        member.close()

        # Offset resets (the group is empty).
        for args_, want, what in [
            (["--to-earliest"], [0, 0], "to-earliest"),
            (["--to-offset", "5"], [5, 5], "to-offset 5"),
            (["--shift-by", "7"], [12, 12], "shift-by 7"),
            (["--to-latest"], [PER_PARTITION, PER_PARTITION], "to-latest"),
        ]:
            code, out, err = tool(lib, bs, "--reset-offsets", "--group", GROUP, "--topic", TOPIC,
                                  *args_, "--execute")
            got = committed(bs, GROUP)
            check(f"--reset-offsets {what} --execute", code == 0 and got == want,
                  f"exit {code}, committed {got}, want {want}\n{out}\n{err}")

        code, out, err = tool(lib, bs, "--delete-offsets", "--group", GROUP, "--topic", f"{TOPIC}:1")
        got = committed(bs, GROUP)
        check("--delete-offsets removes one partition's offset", code == 0 and got == [PER_PARTITION, -1001],
              f"exit {code}, committed {got}\n{out}\n{err}")

        code, out, err = tool(lib, bs, "--delete", "--group", GROUP)
        check("--delete deletes the empty group", code == 0 and "successful" in out.lower(),
              f"exit {code}\n{out}\n{err}")
        code, out, err = tool(lib, bs, "--list")
        check("--list no longer names it", code == 0 and GROUP not in out.split(), f"{out}\n{err}")
        check("its offsets are gone", committed(bs, GROUP) == [-1001, -1001], committed(bs, GROUP))

        # kafka-log-dirs.sh --describe (DescribeCluster, then DescribeLogDirs): the data
        # directory with the topic's partitions and their sizes.
        code, out, err = tool(lib, bs, "--describe", "--topic-list", TOPIC,
                              cls="org.apache.kafka.tools.LogDirsCommand")
        described = {}
        try:
            report = json.loads(out.strip().splitlines()[-1])
            for d in report["brokers"][0]["logDirs"]:
                described[d["logDir"]] = (d["error"], {p["partition"]: p["size"] for p in d["partitions"]})
        except (ValueError, KeyError, IndexError) as e:
            err += f"\nunreadable report: {e}"
        sizes = described.get(os.path.abspath(broker.data_dir), (None, {}))[1]
        check("kafka-log-dirs.sh --describe lists the data directory with the topic's partitions",
              code == 0 and list(described) == [os.path.abspath(broker.data_dir)]
              and described[os.path.abspath(broker.data_dir)][0] is None
              and sorted(sizes) == [f"{TOPIC}-0", f"{TOPIC}-1"] and all(v > 0 for v in sizes.values()),
              f"exit {code}\n{out}\n{err}")

        # Kafka's DumpLogSegments decodes gregor's offsets topic.
        commit(bs, "dump-group", [3, 4])
        del p, admin  # no reconnect noise from idle clients once the broker stops
        broker.stop()
        segs = sorted(glob.glob(os.path.join(broker.data_dir, "__consumer_offsets-*", "*.log")))
        decoded = ""
        for seg in segs:
            code, out, err = tool(lib, None, "--files", seg, "--offsets-decoder",
                                  cls="org.apache.kafka.tools.DumpLogSegments")
            if code != 0:
                check(f"DumpLogSegments --offsets-decoder on {seg}", False, err)
            decoded += out
        commits = re.findall(r'"group":"dump-group","topic":"%s","partition":(\d)\}\}.*?"offset":(\d+)' % TOPIC,
                             decoded)
        check("DumpLogSegments --offsets-decoder reads gregor's offset commits",
              sorted(commits) == [("0", "3"), ("1", "4")], f"found {commits}\n{decoded[-3000:]}")
        check("... and the group metadata written by the live group",
              '"protocolType":"consumer"' in decoded and '"group":"cli-live"' in decoded,
              decoded[-3000:])
    finally:
        if broker.alive():
            broker.stop()
    print(f"{passed} passed, {failed} failed")
    if failed:
        print(broker.log_tail(5000))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
