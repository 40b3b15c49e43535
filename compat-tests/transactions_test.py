#!/usr/bin/env python3
"""Transactions with real clients against one gregor broker (issue 15, first part).

Scenarios (each prints one line; exit 0 only if all pass):
  commit-abort      confluent-kafka and kafka-python transactional producers commit and
                    abort transactions over two partitions: read_committed consumers of both
                    clients see exactly the committed records, read_uncommitted ones see all.
  open-blocks       an open transaction holds read_committed consumers at the last stable
                    offset (a later plain record is not delivered either) until it commits.
  fencing           a second producer with the same transactional.id fences the first: the
                    first one's commit fails with a fencing error, its records never become
                    visible, the second one's transaction commits.
  timeout           a transaction left open past transaction.timeout.ms is aborted by the
                    coordinator: its records never reach read_committed consumers and the
                    producer's commit fails.
  consume-transform-produce
                    confluent-kafka and kafka-python copy an input topic to an output topic in
                    transactions with send_offsets_to_transaction; the copier is killed with -9
                    in the middle of a transaction and restarted: the output read with
                    read_committed holds each input record exactly once, and the group's
                    committed offset is the input's end.
  broker-kill9      kill -9 of the broker right after a commit returned and with another
                    transaction open: after the restart the committed one is visible, the
                    open one is aborted (its producer fenced by the timeout), nothing half.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compat.broker import Broker  # noqa: E402
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

# The coordinator looks for expired transactions this often (Kafka: 10 s).
ABORT_INTERVAL_MS = 500


def create_topics(bootstrap, *specs):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, n, 1) for t, n in specs]).values():
        f.result(30)


def read_all(bootstrap, topic, partitions, level, timeout=20):
    """Every record value of `topic` from offset 0 up to the end a consumer at `level` sees
    (confluent-kafka), in partition order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time()}",
                  "isolation.level": level, "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = {p: [] for p in range(partitions)}
    eof = set()
    deadline = time.monotonic() + timeout
    while len(eof) < partitions and time.monotonic() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            raise RuntimeError(m.error())
        got[m.partition()].append(m.value().decode())
    c.close()
    assert len(eof) == partitions, f"{topic}: no end of partition within {timeout}s at {level}"
    return [v for p in range(partitions) for v in got[p]]


def read_all_kafka_python(bootstrap, topic, partitions, level):
    from kafka import KafkaConsumer, TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level,
                      enable_auto_commit=False, consumer_timeout_ms=4000)
    tps = [KTP(topic, p) for p in range(partitions)]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, 0)
    got = {p: [] for p in range(partitions)}
    for r in c:
        got[r.partition].append(r.value.decode())
    c.close()
    return [v for p in range(partitions) for v in got[p]]


def confluent_txn_producer(bootstrap, txn_id, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def kafka_python_txn_producer(bootstrap, txn_id):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
    p.init_transactions()
    return p


def commit_abort(broker):
    create_topics(broker.bootstrap, ("ca", 2))
    want = []
    p = confluent_txn_producer(broker.bootstrap, "ca-confluent")
    for round_, commit in enumerate([True, False, True]):
        p.begin_transaction()
        for i in range(10):
            v = f"confluent-{round_}-{i}"
            p.produce("ca", value=v.encode(), partition=i % 2)
            if commit:
                want.append(v)
        if commit:
            p.commit_transaction(30)
        else:
            p.flush(30)
            p.abort_transaction(30)
    kp = kafka_python_txn_producer(broker.bootstrap, "ca-kafka-python")
    for round_, commit in enumerate([False, True]):
        kp.begin_transaction()
        for i in range(10):
            v = f"kafka-python-{round_}-{i}"
            kp.send("ca", value=v.encode(), partition=i % 2)
            if commit:
                want.append(v)
        if commit:
            kp.commit_transaction()
        else:
            kp.flush()
            kp.abort_transaction()
    kp.close()
    committed = read_all(broker.bootstrap, "ca", 2, "read_committed")
    everything = read_all(broker.bootstrap, "ca", 2, "read_uncommitted")
    kp_committed = read_all_kafka_python(broker.bootstrap, "ca", 2, "read_committed")
    assert sorted(committed) == sorted(want), f"read_committed: {sorted(set(committed) ^ set(want))[:5]}"
    assert sorted(kp_committed) == sorted(want), "kafka-python read_committed differs"
    assert len(everything) == 50 and set(want) <= set(everything), len(everything)
    return (f"{len(want)} committed of 50 records in 5 transactions (2 aborted) read by "
            f"confluent-kafka and kafka-python with read_committed; read_uncommitted sees all 50")


def open_blocks(broker):
    create_topics(broker.bootstrap, ("ob", 1))
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("ob", value=b"before")
    plain.flush(10)
    p = confluent_txn_producer(broker.bootstrap, "ob-1")
    p.begin_transaction()
    p.produce("ob", value=b"in-txn")
    p.flush(10)
    plain.produce("ob", value=b"after")
    plain.flush(10)
    seen = read_all(broker.bootstrap, "ob", 1, "read_committed", timeout=10)
    assert seen == ["before"], f"while open: {seen}"
    p.commit_transaction(30)
    seen = read_all(broker.bootstrap, "ob", 1, "read_committed", timeout=10)
    assert seen == ["before", "in-txn", "after"], f"after commit: {seen}"
    return "read_committed stopped at the open transaction (1 of 3 records), then read all 3"


def fencing(broker):
    create_topics(broker.bootstrap, ("fe", 1))
    zombie = confluent_txn_producer(broker.bootstrap, "fe-1")
    zombie.begin_transaction()
    zombie.produce("fe", value=b"zombie")
    zombie.flush(10)
    fresh = confluent_txn_producer(broker.bootstrap, "fe-1")
    fresh.begin_transaction()
    fresh.produce("fe", value=b"fresh")
    fresh.commit_transaction(30)
    error = None
    try:
        zombie.produce("fe", value=b"zombie-2")
        zombie.commit_transaction(10)
    except KafkaException as e:
        error = e.args[0]
    assert error is not None, "the fenced producer committed"
    assert error.fatal() or "fenc" in error.str().lower(), f"not a fencing error: {error}"
    seen = read_all(broker.bootstrap, "fe", 1, "read_committed")
    assert seen == ["fresh"], seen
    return f"the first producer failed with {error.name()}; only the second one's record is visible"


def timeout(broker):
    create_topics(broker.bootstrap, ("to", 1))
    p = confluent_txn_producer(broker.bootstrap, "to-1", **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    p.produce("to", value=b"expired")
    p.flush(10)
    time.sleep(2.0 + 3 * ABORT_INTERVAL_MS / 1000 + 1)
    seen = read_all(broker.bootstrap, "to", 1, "read_committed", timeout=10)
    assert seen == [], f"an expired transaction is visible: {seen}"
    everything = read_all(broker.bootstrap, "to", 1, "read_uncommitted", timeout=10)
    assert everything == ["expired"], everything
    failed = None
    try:
        p.commit_transaction(10)
    except KafkaException as e:
        failed = e.args[0]
    assert failed is not None, "the producer committed a transaction the coordinator aborted"
    with open(broker.log_path) as f:
        assert "aborting a transaction past its timeout" in f.read()
    return f"aborted by the coordinator after its 2 s timeout; the producer's commit failed with {failed.name()}"


COPIER = r"""
import os, signal, sys, time
client, bootstrap, txn_id, group, kill_after, end = sys.argv[1:5] + [int(a) for a in sys.argv[5:7]]
source, sink = sys.argv[7], sys.argv[8]
# The partition is assigned, not subscribed: a restarted copier must not wait for the group
# to expire the killed one's membership. It stops once its position reaches the input's end.
copied = 0
def maybe_die():
    if kill_after >= 0 and copied >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
if client == "confluent-kafka":
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(source, 0)])
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    p.init_transactions(30)
    deadline = time.time() + 120
    while time.time() < deadline:
        msgs = [m for m in c.consume(50, 1) if not m.error()]
        if not msgs:
            if c.position([TopicPartition(source, 0)])[0].offset >= end:
                break
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(sink, value=m.value())
            copied += 1
            if copied % 25 == 0:
                p.flush(10)
                maybe_die()
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
    c.close()
else:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, isolation_level="read_committed",
                      auto_offset_reset="earliest", enable_auto_commit=False)
    tp0 = TopicPartition(source, 0)
    c.assign([tp0])
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
    p.init_transactions()
    deadline = time.time() + 120
    while time.time() < deadline:
        batch = c.poll(timeout_ms=1000, max_records=50)
        if not batch:
            if c.position(tp0) >= end:
                break
            continue
        p.begin_transaction()
        offsets = {}
        from kafka.structs import OffsetAndMetadata
        for tp, recs in batch.items():
            for r in recs:
                p.send(sink, value=r.value)
                copied += 1
                if copied % 25 == 0:
                    p.flush()
                    maybe_die()
            offsets[tp] = OffsetAndMetadata(recs[-1].offset + 1, "", -1)
        p.send_offsets_to_transaction(offsets, group)
        p.commit_transaction()
    c.close()
print(copied)
"""


def consume_transform_produce(broker):
    notes = []
    for client in ("confluent-kafka", "kafka-python"):
        tag = client.replace("-", "")
        source, sink = f"ctp-in-{tag}", f"ctp-out-{tag}"
        create_topics(broker.bootstrap, (source, 1), (sink, 1))
        plain = Producer({"bootstrap.servers": broker.bootstrap})
        values = [f"{tag}-{i}" for i in range(300)]
        for v in values:
            plain.produce(source, value=v.encode())
        plain.flush(10)
        group = f"copier-{tag}"
        run = lambda kill_after: subprocess.run(  # noqa: E731
            [sys.executable, "-c", COPIER, client, broker.bootstrap, f"copier-{tag}", group,
             str(kill_after), str(len(values)), source, sink], capture_output=True, text=True,
            timeout=180)
        first = run(130)
        assert first.returncode == -signal.SIGKILL, f"{client}: the copier was not killed: {first.stderr[-2000:]}"
        second = run(-1)
        assert second.returncode == 0, f"{client}: the restarted copier failed: {second.stderr[-2000:]}"
        out = read_all(broker.bootstrap, sink, 1, "read_committed", timeout=30)
        dupes = len(out) - len(set(out))
        assert sorted(out) == sorted(values), (f"{client}: {len(out)} records, {dupes} duplicated, "
                                               f"{len(set(values) - set(out))} missing")
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        committed = c.committed([TopicPartition(source, 0)], 10)[0].offset
        c.close()
        assert committed == 300, f"{client}: committed offset {committed}"
        everything = read_all(broker.bootstrap, sink, 1, "read_uncommitted", timeout=30)
        notes.append(f"{client}: 300 exactly once after a kill -9 at record 130 "
                     f"({len(everything) - 300} aborted copies hidden), committed offset 300")
    return "; ".join(notes)


def broker_kill9(broker):
    create_topics(broker.bootstrap, ("bk", 2))
    done = confluent_txn_producer(broker.bootstrap, "bk-done")
    done.begin_transaction()
    for i in range(20):
        done.produce("bk", value=f"committed-{i}".encode(), partition=i % 2)
    done.commit_transaction(30)
    left_open = confluent_txn_producer(broker.bootstrap, "bk-open", **{"transaction.timeout.ms": 3000})
    left_open.begin_transaction()
    for i in range(20):
        left_open.produce("bk", value=f"open-{i}".encode(), partition=i % 2)
    left_open.flush(10)
    broker.stop(signal.SIGKILL)
    with open(broker.log_path) as f:
        before = f.read().count("completing a transaction left prepared")
    broker.start()
    time.sleep(3 + 3 * ABORT_INTERVAL_MS / 1000 + 1)
    with open(broker.log_path) as f:
        resumed = f.read().count("completing a transaction left prepared") - before
    seen = read_all(broker.bootstrap, "bk", 2, "read_committed", timeout=30)
    assert sorted(seen) == sorted(f"committed-{i}" for i in range(20)), sorted(seen)[:5]
    # A new producer of the open one's id gets a new epoch once the abort is complete.
    again = confluent_txn_producer(broker.bootstrap, "bk-open")
    again.begin_transaction()
    again.produce("bk", value=b"after-restart", partition=0)
    again.commit_transaction(30)
    seen = read_all(broker.bootstrap, "bk", 2, "read_committed", timeout=30)
    assert "after-restart" in seen and not any(v.startswith("open-") for v in seen), seen
    how = ("its markers written by the restarted coordinator" if resumed else
           "its markers written before the kill")
    return (f"after kill -9: the 20 committed records visible ({how}), the 20 of the open "
            "transaction aborted by its timeout, the id usable again")


SCENARIOS = [
    ("commit-abort", commit_abort),
    ("open-blocks", open_blocks),
    ("fencing", fencing),
    ("timeout", timeout),
    ("consume-transform-produce", consume_transform_produce),
    ("broker-kill9", broker_kill9),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", required=True, help="the gregor binary")
    ap.add_argument("--only", help="comma-separated scenario names")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    broker = Broker(args.broker, [
        f"transaction.abort.timed.out.transaction.cleanup.interval.ms={ABORT_INTERVAL_MS}",
        "transaction.state.log.num.partitions=5", "offsets.topic.num.partitions=5"])
    broker.start()
    passed = failed = 0
    try:
        for name, fn in SCENARIOS:
            if only and name not in only:
                continue
            t0 = time.monotonic()
            try:
                note = fn(broker)
                passed += 1
                print(f"PASS {name} ({time.monotonic() - t0:.1f}s): {note}", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {name}:\n{traceback.format_exc()}", flush=True)
        if failed:
            print(broker.log_tail())
    finally:
        broker.stop()
    print(json.dumps({"passed": passed, "failed": failed}))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
