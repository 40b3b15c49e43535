#!/usr/bin/env python3
"""Real clients against a running gregor *cluster* (several brokers on ZooKeeper).

For each client: a 6-partition topic (replication factor 3, created with confluent-kafka's
admin API through the last broker) whose leaders must cover every broker; the client
produces 600 messages to all partitions bootstrapping from the first broker (so it must
follow the metadata to the leaders on the other brokers), and reads each partition back
bootstrapping from the last broker; records are compared exactly (offsets, keys, values,
headers, timestamps); then two members of a consumer group of that client (bootstrapping from
the last broker, so they must find the group's coordinator wherever it is) share the
partitions and receive every record exactly once. Prints one line per client and `N passed, N failed`; exit 0 only if all
passed. tests/cluster.rs runs it against a cluster it started.

usage: compat-tests/run_cluster.py --bootstrap h:p,h:p,h:p [--clients confluent-kafka,kcat,...]
"""
import argparse
import os
import sys
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compat.data import compare, make_messages  # noqa: E402

PARTITIONS = 6
MESSAGES = 600


def make_client(name, bootstrap):
    if name == "confluent-kafka":
        from compat.clients.confluent import ConfluentClient
        return ConfluentClient(bootstrap)
    if name == "kafka-python":
        from compat.clients.kafkapython import KafkaPythonClient
        return KafkaPythonClient(bootstrap)
    if name == "kcat":
        from compat.clients.kcat import KcatClient
        return KcatClient(bootstrap)
    if name == "java":
        from compat.clients.java import JavaClient
        return JavaClient(bootstrap, os.path.join(HERE, "java"))
    raise ValueError(f"unknown client {name}")


def create_topic(bootstrap, topic, brokers):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)],
                              request_timeout=30)[topic]
    fut.result(40)
    md = admin.list_topics(topic=topic, timeout=20).topics[topic]
    leaders = {p.id: p.leader for p in md.partitions.values()}
    assert len(leaders) == PARTITIONS, f"metadata shows {len(leaders)} partitions"
    assert set(leaders.values()) == set(brokers), f"leaders {leaders} do not cover brokers {brokers}"
    for p in md.partitions.values():
        assert len(p.replicas) == 3 and sorted(p.isrs) == sorted(p.replicas), \
            f"partition {p.id}: replicas {p.replicas} isr {p.isrs}"
    return leaders


def run(name, addrs, brokers):
    topic = f"cluster-{name.replace('-', '')}-{uuid.uuid4().hex[:6]}"
    leaders = create_topic(addrs[-1], topic, brokers)
    writer = make_client(name, addrs[0])
    reader = make_client(name, addrs[-1])
    base = int(time.time() * 1000) - 3_600_000 if writer.timestamps else None
    msgs = make_messages(MESSAGES, PARTITIONS, base, writer.header_mode, big=False)
    t0 = int(time.time() * 1000)
    writer.produce(topic, msgs)
    t1 = int(time.time() * 1000)
    problems = []
    for p in range(PARTITIONS):
        want = sum(1 for m in msgs if m.partition == p)
        got = reader.consume(topic, p, 0, want)
        window = None if writer.timestamps else (t0 - 1000, t1 + 1000)
        problems += compare(msgs, got, p, check_ts=writer.timestamps, ts_window=window)
    assert not problems, "read-back differs:\n    " + "\n    ".join(problems[:10])
    group_note = consume_as_group(reader, name, topic, msgs)
    return f"{MESSAGES} msgs over {PARTITIONS} partitions led by {sorted(set(leaders.values()))}; {group_note}"


def consume_as_group(client, name, topic, msgs):
    """Two members of one consumer group (bootstrapping from the last broker) must find the
    group's coordinator, wherever in the cluster it is, and share the partitions: every
    record exactly once, with the produced bytes."""
    from compat.group_scenarios import _exactly_once, _finish, _wait_all, _wait_stable
    expected, next_offset = {}, {}
    for m in msgs:
        o = next_offset.get(m.partition, 0)
        next_offset[m.partition] = o + 1
        expected[(m.partition, o)] = (m.key, m.value)
    group = f"cluster-group-{name.replace('-', '')}-{uuid.uuid4().hex[:6]}"
    members = [client.group_member(f"{name}#{i}", group, topic, PARTITIONS) for i in range(2)]
    try:
        asg = _wait_stable(members, PARTITIONS)
        _wait_all(members, expected)
        time.sleep(0.3)
        problems = _exactly_once(members, expected)
        assert not problems, "group consumption: " + "\n    ".join(problems[:5])
        for m in members:
            m.close()
        return f"a 2-member group shared them as {[list(a) for a in asg]}, each record once"
    finally:
        _finish(members)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True, help="comma-separated broker addresses")
    ap.add_argument("--broker-ids", required=True, help="comma-separated ids of those brokers")
    ap.add_argument("--clients", default="confluent-kafka,kafka-python,kcat,java")
    args = ap.parse_args()
    addrs = args.bootstrap.split(",")
    brokers = [int(b) for b in args.broker_ids.split(",")]
    passed = failed = 0
    for name in args.clients.split(","):
        t = time.monotonic()
        try:
            note = run(name, addrs, brokers)
            status = "PASS"
            passed += 1
        except Exception as e:  # noqa: BLE001  (a client raising is a failure of its cell)
            note = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
            status = "FAIL"
            failed += 1
        print(f"[{status}] {name:15s} {time.monotonic() - t:6.1f}s  {note}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
