"""What the transaction tests share (transactions_test.py, txn_cluster_test.py and the
`transactions` scenario of kafka39_interop_test.py): where Kafka puts a transactional id or
a group, reading a topic to the end a consumer at an isolation level sees, and Java's
TxnClient (compat-tests/java)."""
import glob
import json
import os
import subprocess
import time

from confluent_kafka import Consumer, TopicPartition

PARTITION_EOF = -191  # librdkafka's _PARTITION_EOF

JAVA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "java")


def txn_client_argv(bootstrap, *args):
    """The command line of TxnClient (compat-tests/java/src/main/java/TxnClient.java). Raises
    (the scenario fails) if it is not built, or older than its source."""
    classes = os.path.join(JAVA_DIR, "target", "classes")
    built = os.path.join(classes, "TxnClient.class")
    source = os.path.join(JAVA_DIR, "src", "main", "java", "TxnClient.java")
    jars = sorted(glob.glob(os.path.join(JAVA_DIR, "target", "dependency", "*.jar")))
    if not os.path.exists(built) or not jars:
        raise AssertionError(f"the Java client is not built: no {built} or no jars in target/dependency "
                             "(run scripts/install-deps.sh)")
    if os.path.getmtime(source) > os.path.getmtime(built):
        raise AssertionError(f"{built} is older than {source} (run scripts/install-deps.sh)")
    return ["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", ":".join([classes] + jars),
            "TxnClient", bootstrap] + list(args)


def txn_client_run(bootstrap, *args, timeout=90):
    """Runs one TxnClient command to its end; returns its JSON output lines."""
    r = subprocess.run(txn_client_argv(bootstrap, *args), capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"TxnClient {' '.join(args)}: exit {r.returncode}: {r.stderr[-3000:]}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def java_hash(s):
    """Java's String.hashCode (over UTF-16 code units, 32-bit wrapping)."""
    h = 0
    units = s.encode("utf-16-be")
    for k in range(0, len(units), 2):
        h = (31 * h + ((units[k] << 8) | units[k + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def partition_for(key, partitions):
    """Kafka's `Utils.abs(key.hashCode) % partitions`: the partition of __transaction_state
    (a transactional id) or __consumer_offsets (a group) that holds `key`."""
    h = java_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def read_to_end(bootstrap, topic, partitions, level, timeout=20, conf=None,
                transient_errors=False):
    """(partition, offset, value) of every record of `topic` from offset 0 up to the end a
    confluent-kafka consumer at `level` sees (read_committed: the last stable offset), in
    the order read. A consumer error fails the read, unless `transient_errors` (a cluster
    with a broker down: the client retries). Fails if an end is not reached in `timeout`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time()}",
                  "isolation.level": level, "enable.auto.commit": False,
                  "enable.partition.eof": True, **(conf or {})})
    got = []
    eof = set()
    deadline = time.monotonic() + timeout
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        while len(eof) < partitions and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == PARTITION_EOF:
                    eof.add(m.partition())
                elif not transient_errors:
                    raise AssertionError(f"{level} read of {topic}: {m.error()}")
                continue
            eof.discard(m.partition())
            got.append((m.partition(), m.offset(), m.value().decode()))
    finally:
        c.close()
    assert len(eof) == partitions, (f"{topic}: the end of only {sorted(eof)} of {partitions} "
                                    f"partitions within {timeout}s at {level}")
    return got


def values_by_partition(records, partitions):
    """`read_to_end`'s records as {partition: [value, ...]} in offset order."""
    out = {p: [] for p in range(partitions)}
    for p, _, v in sorted(records):
        out[p].append(v)
    return out
