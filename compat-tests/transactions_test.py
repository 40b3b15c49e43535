#!/usr/bin/env python3
"""Transactions with real clients against one gregor broker (issue 15).

Clients: confluent-kafka, kafka-python and Java kafka-clients 4.x (compat-tests/java's
TxnClient.java, built by scripts/install-deps.sh; a scenario with a Java part fails if it is
not built; franz-go's from compat-tests/go). A standalone gregor finalizes
transaction.version 2, so Java 4.x and franz-go producers use transactions v2 (KIP-890 part 2: no AddPartitionsToTxn or AddOffsetsToTxn, the epoch bumped
by every EndTxn); confluent-kafka and kafka-python use the classic protocol.

Scenarios (each prints one line; exit 0 only if all pass):
  commit-abort      confluent-kafka, kafka-python and Java transactional producers commit and
                    abort transactions over two partitions: read_committed consumers of the
                    three clients and kcat see exactly the committed records,
                    read_uncommitted ones (confluent-kafka, Java, kcat) see all.
  open-blocks       an open transaction holds read_committed consumers at the last stable
                    offset (a later plain record is not delivered either) until it commits.
  fencing           a second producer with the same transactional.id fences the first: the
                    first one's commit fails with a fencing error, its records never become
                    visible, the second one's transaction commits (confluent-kafka against
                    confluent-kafka, Java against Java: the Java zombie's send and commit fail
                    with ProducerFencedException or InvalidProducerEpochException).
  timeout           a transaction left open past transaction.timeout.ms is aborted by the
                    coordinator: its records never reach read_committed consumers and the
                    producer's commit fails.
  consume-transform-produce
                    confluent-kafka, kafka-python and Java copy an input topic to an output
                    topic in transactions with send_offsets_to_transaction (Java: with
                    consumer.groupMetadata()); the copier is killed with -9 in the middle of a
                    transaction (after 130 records, once some of the open transaction's are
                    flushed) and restarted: the output read with read_committed holds each input
                    record exactly once, the aborted copies are in the log, and the group's
                    committed offset is the input's end.
  broker-kill9      kill -9 of the broker right after a commit returned and with another
                    transaction open: after the restart the committed one is visible, the
                    open one is aborted (its producer fenced by the timeout), nothing half.
  transactions-v2   Java and franz-go (transactions v2) and confluent-kafka (classic)
                    producers each run commit, abort, commit, commit on one partition: the
                    log shows the v2 producers' epoch one higher in every transaction and
                    each marker at the epoch of the transaction after it (franz-go's first
                    transaction may still be classic: it switches once it has seen the
                    feature), the confluent-kafka producer's at one epoch throughout; read_committed (confluent-kafka and Java) sees
                    exactly the committed rounds. (The Java copier of
                    consume-transform-produce runs in transactions v2 too: its offsets go
                    by TxnOffsetCommit v5, which adds __consumer_offsets itself.)
  kill9-markers-pending
                    on a broker of its own with two log directories, one a 24 MiB tmpfs
                    (the scenario mounts it: root): a transaction writes 10 records to a
                    partition on the tmpfs, the tmpfs is then filled, and the commit returns
                    once PrepareCommit is stored while the marker cannot be written (the
                    broker logs that it retries); kill -9, the tmpfs grown, restart: the
                    coordinator completes the PrepareCommit it finds and read_committed
                    sees all 10 records (the deterministic kill -9 between EndTxn and the
                    markers on one broker).
  id-expiry         on a broker of its own with transactional.id.expiration.ms=2000: an id
                    idle past it is forgotten (a tombstone in __transaction_state), and
                    InitProducerId for it then allocates a new producer id at epoch 0; an id
                    with a transaction open as long is kept, and its commit goes through.
"""
import argparse
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compat.broker import Broker  # noqa: E402
from compat.txn import (read_to_end, txn_client_argv, txn_client_run,  # noqa: E402
                        values_by_partition)
from compat.wire import fetch_batch_producers, raw_call, string16  # noqa: E402
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

# The coordinator looks for expired transactions this often (Kafka: 10 s).
ABORT_INTERVAL_MS = 500


def java_argv(broker, *args):
    """The command line of TxnClient against this test's broker."""
    return txn_client_argv(broker.bootstrap, *args)


def java_run(broker, *args, timeout=90):
    """Runs one TxnClient command to its end; returns its JSON output lines."""
    return txn_client_run(broker.bootstrap, *args, timeout=timeout)


def java_read(broker, topic, partitions, *levels):
    """{level: values} as Java consumers at each level read `topic` from 0 to its end offsets."""
    lines = java_run(broker, "read", f"topic={topic}", f"partitions={partitions}",
                     f"levels={','.join(levels)}")
    return {line["level"]: line["values"] for line in lines}


def create_topics(bootstrap, *specs):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, n, 1) for t, n in specs]).values():
        f.result(30)


def read_all(bootstrap, topic, partitions, level, timeout=20):
    """Every record value of `topic` from offset 0 up to the end a consumer at `level` sees
    (confluent-kafka), in partition order."""
    by_partition = values_by_partition(
        read_to_end(bootstrap, topic, partitions, level, timeout), partitions)
    return [v for p in range(partitions) for v in by_partition[p]]


def read_all_kcat(bootstrap, topic, partitions, level):
    """Every value kcat (Debian's, librdkafka 2.0.2) reads from `topic` at `level`, from
    offset 0 to the end (-e), partition by partition."""
    values = []
    for p in range(partitions):
        r = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-p", str(p), "-o", "beginning",
                            "-e", "-q", "-f", "%s\\n", "-X", f"isolation.level={level}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"kcat: exit {r.returncode}: {r.stderr[-1000:]}"
        values += [v for v in r.stdout.split("\n") if v]
    return values


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
    rounds = java_run(broker, "produce", "topic=ca", "partitions=2", "txn_id=ca-java",
                      "rounds=commit,abort,commit", "count=10", "prefix=java")
    assert [r["outcome"] for r in rounds] == ["commit", "abort", "commit"], rounds
    java_values = [v for r in rounds for v in r["values"]]
    assert sorted(java_values) == sorted(f"java-{r}-{i}" for r in range(3) for i in range(10)), java_values
    want += [v for r in rounds if r["outcome"] == "commit" for v in r["values"]]
    produced = ([f"confluent-{r}-{i}" for r in range(3) for i in range(10)] +
                [f"kafka-python-{r}-{i}" for r in range(2) for i in range(10)] + java_values)
    committed = read_all(broker.bootstrap, "ca", 2, "read_committed")
    everything = read_all(broker.bootstrap, "ca", 2, "read_uncommitted")
    kp_committed = read_all_kafka_python(broker.bootstrap, "ca", 2, "read_committed")
    java = java_read(broker, "ca", 2, "read_committed", "read_uncommitted")
    assert len(want) == 50, len(want)
    assert sorted(committed) == sorted(want), f"read_committed: {sorted(set(committed) ^ set(want))[:5]}"
    assert sorted(kp_committed) == sorted(want), "kafka-python read_committed differs"
    assert sorted(java["read_committed"]) == sorted(want), \
        f"Java read_committed: {len(java['read_committed'])} records, differing: {sorted(set(java['read_committed']) ^ set(want))[:5]}"
    assert sorted(everything) == sorted(produced), f"read_uncommitted: {len(everything)} records"
    assert sorted(java["read_uncommitted"]) == sorted(produced), \
        f"Java read_uncommitted: {len(java['read_uncommitted'])} records"
    kcat = {level: read_all_kcat(broker.bootstrap, "ca", 2, level)
            for level in ("read_committed", "read_uncommitted")}
    assert sorted(kcat["read_committed"]) == sorted(want), \
        f"kcat read_committed: {len(kcat['read_committed'])} records"
    assert sorted(kcat["read_uncommitted"]) == sorted(produced), \
        f"kcat read_uncommitted: {len(kcat['read_uncommitted'])} records"
    return (f"{len(want)} committed of 80 records in 8 transactions (3 aborted) of confluent-kafka, "
            f"kafka-python and Java read by those three and kcat with read_committed; "
            f"read_uncommitted (confluent-kafka, Java, kcat) sees all 80")


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
    return (f"confluent-kafka: the first producer failed with {error.name()}, only the second one's "
            f"record is visible; Java: {java_fencing(broker)}")


def java_fencing(broker):
    create_topics(broker.bootstrap, ("fe-java", 1))
    zombie = subprocess.Popen(java_argv(broker, "zombie", "topic=fe-java", "txn_id=fe-java", "prefix=zombie"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()  # its stdout, read by a thread so that every wait is bounded

    def pump():
        for line in zombie.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()

    def next_line(what):
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            raise AssertionError(f"Java zombie: no {what} line within 60 s")
        if line is None:
            zombie.wait(10)
            raise AssertionError(f"Java zombie exited {zombie.returncode} before its {what} line: "
                                 f"{zombie.stderr.read()[-3000:]}")
        return json.loads(line)

    try:
        assert next_line("sent") == {"state": "sent"}
        rounds = java_run(broker, "produce", "topic=fe-java", "partitions=1", "txn_id=fe-java",
                          "rounds=commit", "count=1", "prefix=fresh")
        assert [r["outcome"] for r in rounds] == ["commit"], rounds
        zombie.stdin.write("go\n")
        zombie.stdin.flush()
        done = next_line("done")
        assert zombie.wait(30) == 0, f"Java zombie exited {zombie.returncode}: {zombie.stderr.read()[-3000:]}"
    finally:
        if zombie.poll() is None:
            zombie.kill()
            zombie.wait(10)
    fenced = {"ProducerFencedException", "InvalidProducerEpochException"}
    assert fenced & set(done["send_error"]), f"the zombie's send after the fence: {done}"
    assert fenced & set(done["commit_error"]), f"the zombie's commit after the fence: {done}"
    seen = java_read(broker, "fe-java", 1, "read_committed", "read_uncommitted")
    assert seen["read_committed"] == ["fresh-0-0"], seen
    # The zombie's first record was written (then aborted by the fence), its second refused.
    assert seen["read_uncommitted"] == ["zombie-1", "fresh-0-0"], seen
    return (f"the zombie's send failed with {done['send_error'][0]}, its commit with "
            f"{'/'.join(done['commit_error'])}; Java read_committed sees only the second one's record")


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
    for client in ("confluent-kafka", "kafka-python", "java"):
        tag = client.replace("-", "")
        source, sink = f"ctp-in-{tag}", f"ctp-out-{tag}"
        create_topics(broker.bootstrap, (source, 1), (sink, 1))
        plain = Producer({"bootstrap.servers": broker.bootstrap})
        values = [f"{tag}-{i}" for i in range(300)]
        for v in values:
            plain.produce(source, value=v.encode())
        plain.flush(10)
        group = f"copier-{tag}"
        if client == "java":
            argv = lambda kill_after: java_argv(  # noqa: E731
                broker, "copier", f"source={source}", f"sink={sink}", f"txn_id=copier-{tag}",
                f"group={group}", f"kill_after={kill_after}", f"end={len(values)}")
        else:
            argv = lambda kill_after: [  # noqa: E731
                sys.executable, "-c", COPIER, client, broker.bootstrap, f"copier-{tag}", group,
                str(kill_after), str(len(values)), source, sink]
        run = lambda kill_after: subprocess.run(argv(kill_after), capture_output=True, text=True,  # noqa: E731
                                                timeout=180)
        first = run(130)
        assert first.returncode == -signal.SIGKILL, (f"{client}: the copier was not killed "
                                                     f"(exit {first.returncode}): {first.stderr[-2000:]}")
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
        # The kill came after a flush inside a transaction: its records are in the log, aborted.
        assert len(everything) > 300 and set(everything) == set(values), \
            f"{client}: read_uncommitted {len(everything)} records, {len(set(everything))} distinct"
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


def fill_partition(bootstrap, topic, partition):
    """Produces (acks=1, no retries) into `topic`-`partition` until its disk is full: records
    of a size until one fails, then smaller ones, down to one-byte ones until ten in a row
    fail, so that not even a marker batch (78 bytes) fits. Returns (records
    acknowledged, the first error)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "retries": 0, "linger.ms": 0,
                  "message.timeout.ms": 10000, "enable.idempotence": False})
    acked, errors = 0, []

    def done(err, _msg):
        nonlocal acked
        if err is None:
            acked += 1
        else:
            errors.append(err)
    for size in (256 << 10, 32 << 10, 4 << 10, 512, 64, 1):
        failed_in_a_row = 0
        for _ in range(2000):
            before = len(errors)
            p.produce(topic, value=b"x" * size, partition=partition, on_delivery=done)
            p.flush(15)
            failed_in_a_row = failed_in_a_row + 1 if len(errors) > before else 0
            if failed_in_a_row >= (1 if size > 1 else 10):
                break
        else:
            raise AssertionError(f"{topic}-{partition}: the disk never filled ({acked} acknowledged)")
    return acked, errors[0]


def kill9_markers_pending(broker):
    if os.geteuid() != 0:
        raise AssertionError("this scenario mounts a tmpfs: it needs root")
    work = tempfile.mkdtemp(prefix="gregor-markers-pending-")
    roomy, small = os.path.join(work, "roomy"), os.path.join(work, "small")
    os.makedirs(roomy)
    os.makedirs(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", small], check=True)
    own = Broker(broker.binary, broker.extra + [
        f"log.dirs={roomy},{small}", "transaction.state.log.num.partitions=1"])
    try:
        own.start()
        bs = own.bootstrap
        # New partitions go to the directory with the fewest: find where each landed.
        create_topics(bs, ("mp", 2))
        confluent_txn_producer(bs, "mp-warmup")  # creates __transaction_state
        on_small = [p for p in range(2) if os.path.isdir(os.path.join(small, f"mp-{p}"))]
        txn_on_roomy = os.path.isdir(os.path.join(roomy, "__transaction_state-0"))
        assert on_small and txn_on_roomy, (f"placement: mp on the small disk {on_small}, "
                                           f"__transaction_state-0 on the roomy one {txn_on_roomy}")
        part = on_small[0]
        p = confluent_txn_producer(bs, "mp")
        p.begin_transaction()
        for i in range(10):
            p.produce("mp", value=f"pending-{i}".encode(), partition=part)
        p.flush(30)
        acked, first_error = fill_partition(bs, "mp", part)
        # The commit is answered once PrepareCommit is stored (on the roomy disk); the
        # marker cannot be written to the full one, and is retried.
        p.commit_transaction(30)
        wanted = "transaction markers still not written; retrying"
        eventually_log(own, f"{wanted}", 20)
        own.stop(signal.SIGKILL)
        subprocess.run(["mount", "-o", "remount,size=64m", small], check=True)
        with open(own.log_path) as f:
            before = f.read().count("completing a transaction left prepared transactional_id=mp ")
        own.start()
        eventually_log(own, "completing a transaction left prepared transactional_id=mp ", 30,
                       count_before=before)
        seen = read_all(bs, "mp", 2, "read_committed", timeout=30)
        pending = [v for v in seen if v.startswith("pending-")]
        assert pending == [f"pending-{i}" for i in range(10)], seen[:20]
        assert any(set(v) == {"x"} for v in seen), \
            "the filler records (after the transaction's first offset) are readable too"
        return (f"10 records in a transaction, then the partition's disk filled ({acked} "
                f"records, then {first_error.name()}); commit returned OK with the marker "
                f"unwritable (retried), kill -9, the disk grown, restart: the coordinator "
                f"completed the PrepareCommit it found and read_committed sees all 10")
    finally:
        if own.alive():
            own.stop(signal.SIGKILL)
        subprocess.run(["umount", small], check=False)


def eventually_log(broker, needle, timeout, count_before=0):
    """Waits until `needle` is in the broker's log more than `count_before` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(broker.log_path) as f:
            if f.read().count(needle) > count_before:
                return
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not logged within {timeout}s")


def raw_init_producer_id(bootstrap, transactional_id, timeout_ms=60000):
    """InitProducerId v1 on a socket of its own: (error code, producer id, epoch)."""
    host, port = bootstrap.rsplit(":", 1)
    resp = raw_call(host, port, 22, 1, string16(transactional_id) + struct.pack(">i", timeout_ms),
                    client_id="id-expiry")
    _throttle, error, pid, epoch = struct.unpack_from(">ihqh", resp, 0)
    return error, pid, epoch


def id_expiry(broker):
    own = Broker(broker.binary, broker.extra + [
        "transactional.id.expiration.ms=2000",
        "transaction.remove.expired.transaction.cleanup.interval.ms=300"])
    own.start()
    try:
        bs = own.bootstrap
        create_topics(bs, ("ie", 1))
        idle = confluent_txn_producer(bs, "ie-idle")
        idle.begin_transaction()
        idle.produce("ie", value=b"idle-1")
        idle.commit_transaction(30)
        idle.flush(5)
        error, first_pid, first_epoch = raw_init_producer_id(bs, "ie-idle")
        assert error == 0, f"InitProducerId: error {error}"
        kept = confluent_txn_producer(bs, "ie-open")
        kept.begin_transaction()
        kept.produce("ie", value=b"open-1")
        kept.flush(10)
        deadline = time.monotonic() + 15
        expired = []
        while time.monotonic() < deadline and not expired:
            time.sleep(0.3)
            with open(own.log_path) as f:
                expired = [l for l in f if "transactional id expired" in l]
        assert expired and "ie-idle" in expired[0], f"no expiry logged: {expired}"
        time.sleep(3)  # the open one is idle as long again: it must stay
        with open(own.log_path) as f:
            expired = [l for l in f if "transactional id expired" in l]
        assert len(expired) == 1 and "ie-open" not in expired[0], expired
        error, pid, epoch = raw_init_producer_id(bs, "ie-idle")
        assert error == 0 and pid != first_pid and epoch == 0, \
            f"after expiry: error {error}, producer id {pid} epoch {epoch} (before: {first_pid}/{first_epoch})"
        kept.commit_transaction(30)
        seen = read_all(bs, "ie", 1, "read_committed", timeout=15)
        assert seen == ["idle-1", "open-1"], seen
    finally:
        own.stop()
    return (f"ie-idle forgotten 2 s after its last change: InitProducerId then gave producer id {pid} "
            f"epoch 0 (was {first_pid} epoch {first_epoch}); ie-open, open as long, was kept and committed")


GO_BINARY = os.path.join(HERE, "go", "bin", "compat-go")


def franz_txn(broker, *args, timeout=90):
    """franz-go's transactional producer (compat-go franz-go txn); its JSON output lines."""
    assert os.path.exists(GO_BINARY), f"{GO_BINARY} not built (scripts/install-deps.sh)"
    r = subprocess.run([GO_BINARY, "franz-go", broker.bootstrap, "txn"] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"compat-go txn {' '.join(args)}: exit {r.returncode}: {r.stdout[-2000:]} {r.stderr[-2000:]}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def producer_epochs(broker, topic, producer_id):
    """[(epoch, "data" | "marker")] of `producer_id`'s batches in partition 0, in log order."""
    batches = fetch_batch_producers("127.0.0.1", broker.port, topic, 0)
    return [(epoch, "marker" if control else "data")
            for _off, pid, epoch, _txn, control in batches if pid == producer_id]


def transactions_v2(broker):
    create_topics(broker.bootstrap, ("tv2", 1))
    outcomes = ["commit", "abort", "commit", "commit"]
    rounds = java_run(broker, "produce", "topic=tv2", "partitions=1", "txn_id=tv2-java",
                      f"rounds={','.join(outcomes)}", "count=3", "prefix=java")
    assert [r["outcome"] for r in rounds] == outcomes, rounds
    rounds = franz_txn(broker, "topic=tv2", "txn_id=tv2-franz", f"rounds={','.join(outcomes)}",
                       "count=3", "prefix=franz")
    assert [r["outcome"] for r in rounds] == outcomes, rounds
    p = confluent_txn_producer(broker.bootstrap, "tv2-confluent")
    for round_, outcome in enumerate(outcomes):
        p.begin_transaction()
        for i in range(3):
            p.produce("tv2", value=f"confluent-{round_}-{i}".encode(), partition=0)
        p.flush(30)
        if outcome == "commit":
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    batches = fetch_batch_producers("127.0.0.1", broker.port, "tv2", 0)
    pids = []
    for _off, pid, _epoch, _txn, _control in batches:
        if pid not in pids:
            pids.append(pid)
    assert len(pids) == 3, f"producers {pids} in {batches}"
    notes = []
    # (who, the rounds that must be transactions v2): franz-go decides per transaction and
    # may run its first one before it has seen the finalized feature (then bumps its epoch
    # with InitProducerId on switching, as Java does on an upgrade).
    for (who, v2_from), pid in zip((("Java", 0), ("franz-go", 1)), pids[:2]):
        got = producer_epochs(broker, "tv2", pid)
        rounds_seen, data = [], []
        for epoch, kind in got:
            if kind == "data":
                data.append(epoch)
            else:
                rounds_seen.append((sorted(set(data)), epoch))
                data = []
        assert len(rounds_seen) == 4 and not data, f"{who}: {got}"
        for r, (data_epochs, marker) in enumerate(rounds_seen):
            assert len(data_epochs) == 1, f"{who} round {r}: data at epochs {data_epochs}: {got}"
            if r >= v2_from:
                # Transactions v2: the end bumps the epoch, the marker carries it, and the
                # next transaction starts there.
                assert marker == data_epochs[0] + 1, f"{who} round {r} not v2: {got}"
            if r > v2_from:
                assert data_epochs[0] == rounds_seen[r - 1][1], f"{who} round {r}: {got}"
        markers = [m for _, m in rounds_seen]
        notes.append(f"{who} data epochs {[d[0] for d, _ in rounds_seen]}, markers {markers}")
    confluent = producer_epochs(broker, "tv2", pids[2])
    c0 = confluent[0][0]
    assert all(e == c0 for e, _ in confluent) and sum(k == "marker" for _, k in confluent) == 4, \
        f"confluent-kafka (classic) epochs {confluent}"
    want = [f"{who}-{r}-{i}" for who in ("java", "franz", "confluent") for r in (0, 2, 3)
            for i in range(3)]
    committed = read_all(broker.bootstrap, "tv2", 1, "read_committed")
    assert committed == want, committed
    java_committed = java_read(broker, "tv2", 1, "read_committed")["read_committed"]
    assert java_committed == want, java_committed
    return (f"{'; '.join(notes)}; confluent-kafka epoch {c0} in all {len(confluent)} batches; "
            f"read_committed (confluent-kafka and Java): the {len(want)} committed records in order")


SCENARIOS = [
    ("commit-abort", commit_abort),
    ("open-blocks", open_blocks),
    ("fencing", fencing),
    ("timeout", timeout),
    ("consume-transform-produce", consume_transform_produce),
    ("broker-kill9", broker_kill9),
    ("kill9-markers-pending", kill9_markers_pending),
    ("transactions-v2", transactions_v2),
    ("id-expiry", id_expiry),
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
