#!/usr/bin/env python3
"""Log compaction through a real client (confluent-kafka / librdkafka) against a real gregor.

Produces 100,000 updates over 1,000 keys (lz4-compressed batches, so the cleaner must
decompress and recompress) into a topic with cleanup.policy=compact and 64 KiB segments,
checks that a record without a key is refused with INVALID_RECORD (87), waits until the
cleaner's checkpoint (`cleaner-offset-checkpoint`) reaches the active segment, then consumes
from offset 0 and asserts the exact content: below the active segment, only the newest record
of each key, each at its original offset; from the active segment on, every record.

usage: compat-tests/compaction_test.py [--broker target/release/gregor]
Exit status 0 on success. Prints the counts it checked.
"""
import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compat.broker import Broker  # noqa: E402

TOPIC = "compacted-updates"
UPDATES = 100_000
KEYS = 1_000


def checkpoint_offset(data_dir, topic):
    path = os.path.join(data_dir, "cleaner-offset-checkpoint")
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return None
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 3 and parts[0] == topic and parts[1] == "0":
            return int(parts[2])
    return None


def active_base(data_dir, topic):
    d = os.path.join(data_dir, f"{topic}-0")
    bases = [int(n[:-4]) for n in os.listdir(d) if n.endswith(".log") and len(n) == 24]
    return max(bases)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(HERE, "..", "target", "release", "gregor"))
    args = ap.parse_args()
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    broker = Broker(args.broker, extra_overrides=["log.cleaner.backoff.ms=200"])
    ok = False
    started = time.monotonic()
    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        fs = admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1, config={
            "cleanup.policy": "compact",
            "segment.bytes": "65536",
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": "86400000",
        })])
        fs[TOPIC].result(timeout=30)

        producer = Producer({
            "bootstrap.servers": broker.bootstrap,
            "compression.type": "lz4",
            "linger.ms": 5,
            "batch.num.messages": 500,
            "acks": "all",
        })
        errors = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append((err, msg.key()))

        for i in range(UPDATES):
            while True:
                try:
                    producer.produce(TOPIC, key=f"key-{i % KEYS:04d}".encode(), value=str(i).encode(),
                                     on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(60)
        assert not errors, f"produce errors: {errors[:3]}"

        # A record without a key is refused: Kafka's INVALID_RECORD (87) for compacted topics.
        refused = []
        keyless = Producer({"bootstrap.servers": broker.bootstrap, "retries": 0})
        keyless.produce(TOPIC, value=b"no key", on_delivery=lambda err, msg: refused.append(err))
        keyless.flush(30)
        assert len(refused) == 1 and refused[0] is not None, f"keyless record accepted: {refused}"
        assert refused[0].code() == KafkaError.INVALID_RECORD, f"wrong error: {refused[0]}"

        # Wait for the cleaner to reach the active segment.
        deadline = time.monotonic() + 40
        while True:
            base = active_base(broker.data_dir, TOPIC)
            cp = checkpoint_offset(broker.data_dir, TOPIC)
            if cp is not None and cp == base:
                break
            assert time.monotonic() < deadline, f"cleaner checkpoint {cp}, active segment base {base}"
            time.sleep(0.2)
        assert base > UPDATES // 2, f"expected many rolled segments, active base {base}"

        consumer = Consumer({
            "bootstrap.servers": broker.bootstrap,
            "group.id": "compaction-check",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while (not got or got[-1][0] < UPDATES - 1) and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=10_000, timeout=1.0):
                if m.error():
                    raise AssertionError(f"consume error: {m.error()}")
                got.append((m.offset(), m.key().decode(), m.value().decode()))
        consumer.close()

        # The model: record i has offset i (one producer, no retries).
        newest_below = {}
        for i in range(base):
            newest_below[i % KEYS] = i
        expected = [(i, f"key-{i % KEYS:04d}", str(i)) for i in sorted(newest_below.values())]
        expected += [(i, f"key-{i % KEYS:04d}", str(i)) for i in range(base, UPDATES)]
        compacted = [r for r in got if r[0] < base]
        keys_below = [r[1] for r in compacted]
        assert len(keys_below) == len(set(keys_below)), "a key appears twice below the active segment"
        assert got == expected, (
            f"content differs: got {len(got)} records, expected {len(expected)}; "
            f"first difference at {next((a, b) for a, b in zip(got, expected) if a != b) if got else None}")
        seg_files = [n for n in os.listdir(os.path.join(broker.data_dir, f"{TOPIC}-0")) if n.endswith(".log")]
        print(f"compaction: {UPDATES} updates over {KEYS} keys; active segment base {base}; "
              f"consumer saw {len(got)} records = {len(compacted)} compacted (one per key) + "
              f"{len(got) - len(compacted)} in the active segment; {len(seg_files)} segment files; "
              f"keyless record refused with {refused[0].name()}; {time.monotonic() - started:.1f}s")
        ok = True
    finally:
        broker.stop()
        if ok:
            shutil.rmtree(broker.workdir, ignore_errors=True)
        else:
            print(f"broker log tail:\n{broker.log_tail()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
