#!/usr/bin/env python3
"""Captures real Kafka client request frames as a seed corpus for the decode_request fuzz target.

Proxy mode (the default) sits between clients and a broker and saves every request frame that
a client sends:

    scripts/capture-frames.py --listen 9093 --broker 9092 --out DIR --label myclient

Each frame is written without its 4-byte size prefix to
DIR/<label>-<api_key>-v<api_version>-<first 12 hex digits of its sha1>; duplicates and frames
over 64 KiB are skipped. The broker must advertise the proxy's address
(advertised.listeners=PLAINTEXT://127.0.0.1:<listen port>) so that clients keep talking through
the proxy after their first Metadata request. Stops on SIGTERM or SIGINT.

Drive mode regenerates fuzz/corpus/decode_request in one command:

    scripts/capture-frames.py --drive

It copies target/release/gregor to a temporary directory, starts it behind the proxy, runs
confluent-kafka, kafka-python, kcat and Kafka's Java client (each one skipped when it is not
installed; scripts/install-deps.sh installs them all; the Java client's jars are looked for in
compat-tests/java/target/dependency or $CAPTURE_JAVA_DEPS) through admin, produce and
consumer-group steps with bounded time, keeps a few frames of each (client, api key, version)
and prints what it captured, which client calls failed and the broker's WARN/ERROR lines.

Only the Python standard library is needed for the proxy; the client steps import their clients
themselves.
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "fuzz" / "corpus" / "decode_request"
MAX_FRAME = 64 * 1024
# A size prefix outside this range means the stream is not Kafka (or is out of step): the
# proxy then only pipes bytes and stops cutting frames on that connection.
MAX_PLAUSIBLE_FRAME = 100 * 1024 * 1024
FRAME_NAME = re.compile(r"^(?P<label>[A-Za-z0-9_.]+)-(?P<key>-?\d+)-v(?P<ver>-?\d+)-[0-9a-f]{12}$")

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup",
    14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups", 18: "ApiVersions",
    19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch", 32: "DescribeConfigs", 33: "AlterConfigs",
    37: "CreatePartitions", 42: "DeleteGroups", 44: "IncrementalAlterConfigs",
    47: "OffsetDelete", 60: "DescribeCluster", 68: "ConsumerGroupHeartbeat",
    69: "ConsumerGroupDescribe",
}
SERVED_APIS = sorted(API_NAMES)  # protocol/src/versions.rs serves exactly these keys


# ------------------------------------------------------------------------------------------
# Proxy
# ------------------------------------------------------------------------------------------

class FrameStore:
    """Writes request frames to one directory under a client label, once per distinct frame."""

    def __init__(self, out_dir: Path, label: str):
        if not re.fullmatch(r"[A-Za-z0-9_.]+", label):
            raise ValueError(f"label {label!r}: use letters, digits, '_' and '.' only")
        self.out_dir = out_dir
        self.label = label
        self.lock = threading.Lock()
        out_dir.mkdir(parents=True, exist_ok=True)
        self.seen = {name[-12:] for name in os.listdir(out_dir) if FRAME_NAME.match(name)}
        self.saved = 0

    def save(self, frame: bytes) -> None:
        if len(frame) < 4 or len(frame) > MAX_FRAME:
            return
        api_key = int.from_bytes(frame[0:2], "big", signed=True)
        api_version = int.from_bytes(frame[2:4], "big", signed=True)
        digest = hashlib.sha1(frame).hexdigest()[:12]
        with self.lock:
            if digest in self.seen:
                return
            self.seen.add(digest)
            self.saved += 1
        path = self.out_dir / f"{self.label}-{api_key}-v{api_version}-{digest}"
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_bytes(frame)
        tmp.rename(path)


class FrameSplitter:
    """Cuts a client's byte stream into request frames (int32 big-endian size, then the frame)
    and hands each one of at most MAX_FRAME bytes to a callback. Larger frames are skipped
    without being buffered."""

    def __init__(self, on_frame):
        self.on_frame = on_frame
        self.buf = bytearray()
        self.skip = 0          # bytes still to drop of an oversized frame
        self.lost = False      # stream out of step: stop cutting

    def feed(self, data: bytes) -> None:
        if self.lost:
            return
        if self.skip:
            dropped = min(self.skip, len(data))
            self.skip -= dropped
            data = data[dropped:]
        self.buf += data
        while len(self.buf) >= 4:
            size = int.from_bytes(self.buf[:4], "big", signed=True)
            if size < 4 or size > MAX_PLAUSIBLE_FRAME:
                self.lost = True
                self.buf.clear()
                return
            if size > MAX_FRAME:
                available = len(self.buf) - 4
                self.skip = max(0, size - available)
                del self.buf[:4 + min(size, available)]
                continue
            if len(self.buf) < 4 + size:
                return
            frame = bytes(self.buf[4:4 + size])
            del self.buf[:4 + size]
            self.on_frame(frame)


class Proxy:
    """A TCP proxy on 127.0.0.1:listen_port to the broker on 127.0.0.1:broker_port that saves
    the request frames of every connection into a FrameStore."""

    def __init__(self, listen_port: int, broker_port: int, store: FrameStore):
        self.listen_port = listen_port
        self.broker_port = broker_port
        self.store = store
        self.server = None
        self.sockets = set()
        self.threads = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def start(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.listen_port))
        self.server.listen(64)
        self._spawn(self._accept_loop)

    def stop(self) -> None:
        self.stopping.set()
        _shutdown(self.server)
        self.server.close()
        with self.lock:
            for sock in list(self.sockets):
                _shutdown(sock)
        for thread in list(self.threads):
            thread.join(5)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.broker_port), timeout=10)
                upstream.settimeout(None)
            except OSError as e:
                print(f"capture-frames: broker 127.0.0.1:{self.broker_port} unreachable: {e}",
                      file=sys.stderr)
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, upstream))
            splitter = FrameSplitter(self.store.save)
            self._spawn(self._pump, client, upstream, splitter.feed)
            self._spawn(self._pump, upstream, client, None)

    def _pump(self, src: socket.socket, dst: socket.socket, observe) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if observe:
                    observe(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # Either side closing ends the connection both ways; the other pump then sees EOF.
            for sock in (src, dst):
                _shutdown(sock)
            with self.lock:
                for sock in (src, dst):
                    if sock in self.sockets:
                        self.sockets.discard(sock)
                        sock.close()


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def run_proxy(args) -> int:
    store = FrameStore(Path(args.out), args.label)
    proxy = Proxy(args.listen, args.broker, store)
    proxy.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"capture-frames: 127.0.0.1:{args.listen} -> 127.0.0.1:{args.broker}, "
          f"frames to {args.out} as {args.label}", file=sys.stderr)
    stop.wait()
    proxy.stop()
    print(f"capture-frames: {store.saved} new frames", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------
# Client steps (each one runs in its own process: `capture-frames.py --step NAME`)
# ------------------------------------------------------------------------------------------

CF_A, CF_B = "cap-confluent-a", "cap-confluent-b"
KP_A, KP_B = "cap-kafkapython-a", "cap-kafkapython-b"
KCAT_TOPIC = "cap-kcat"
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def sample_records(tag: str):
    """(key, value, headers) triples: null/empty/short keys, tombstones, values from empty to a
    few KiB, no headers, one header, duplicate header keys and a null header value."""
    records = []
    for i in range(12):
        key = [None, b"", f"key-{i}".encode()][i % 3]
        value = None if i == 5 else (f"{tag}-{i}:".encode() * (i * i))[: 40 * i * i]
        headers = [[], [("h", b"v")], [("dup", b"1"), ("dup", b"2"), ("null", None)]][i % 3]
        records.append((key, value, headers))
    return records


def report(what: str, call):
    """Runs one client call; a refusal is reported, never fatal (its request was sent)."""
    try:
        result = call()
        print(f"ok    {what}: {_short(result)}", flush=True)
        return result
    except Exception as e:  # noqa: BLE001 - any client error is only reported
        print(f"error {what}: {type(e).__name__}: {_short(e)}", flush=True)
        return None


def _short(value, limit=300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def settle(futures, timeout=20):
    """Waits for confluent-kafka admin futures (one, or a dict of them)."""
    if isinstance(futures, dict):
        return {k: f.result(timeout) for k, f in futures.items()}
    return futures.result(timeout)


def poll_until(consumer, want: int, seconds: float):
    """Polls a confluent-kafka consumer until `want` records or `seconds` have passed."""
    got = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg)
    return got


def step_confluent_admin(bs: str) -> None:
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, NewPartitions, NewTopic, ResourceType)
    admin = AdminClient({"bootstrap.servers": bs})
    configs = {"retention.ms": "3600000", "cleanup.policy": "delete",
               "max.message.bytes": "2000000"}
    report("create_topics", lambda: settle(admin.create_topics(
        [NewTopic(CF_A, 3, 1, config=configs), NewTopic(CF_B, 2, 1)], operation_timeout=10)))
    report("create_topics validate_only", lambda: settle(admin.create_topics(
        [NewTopic("cap-confluent-v", 5, 1)], validate_only=True)))
    report("list_topics", lambda: admin.list_topics(timeout=10).topics.keys())
    report("describe_topics", lambda: settle(admin.describe_topics(
        TopicCollection([CF_A, CF_B]), include_authorized_operations=True)))
    report("describe_cluster", lambda: settle(admin.describe_cluster(
        include_authorized_operations=True)))
    report("describe_configs", lambda: settle(admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, CF_A), ConfigResource(ResourceType.BROKER, "0")])))
    report("alter_configs", lambda: settle(admin.alter_configs(
        [ConfigResource(ResourceType.TOPIC, CF_B, set_config={"retention.ms": "7200000"})])))
    report("incremental_alter_configs", lambda: settle(admin.incremental_alter_configs([
        ConfigResource(ResourceType.TOPIC, CF_A, incremental_configs=[
            ConfigEntry("retention.ms", "1800000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("max.message.bytes", "", incremental_operation=AlterConfigOpType.DELETE),
        ])])))
    report("create_partitions", lambda: settle(admin.create_partitions(
        [NewPartitions(CF_B, 4)], operation_timeout=10)))


def step_confluent_produce(bs: str) -> None:
    from confluent_kafka import Producer
    now_ms = int(time.time() * 1000)
    for codec in CODECS:
        producer = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all",
                             "compression.type": codec, "linger.ms": 20})
        for i, (key, value, headers) in enumerate(sample_records(codec)):
            producer.produce(CF_A, value, key, partition=i % 3, headers=headers,
                             timestamp=now_ms - 1000 * (12 - i))
            producer.produce(CF_B, value, key, headers=headers)
        report(f"flush {codec}", lambda: producer.flush(15))


def step_confluent_transactional(bs: str) -> None:
    """gregor has no transactions: this only sends FindCoordinator(key_type=transaction)."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bs, "transactional.id": "cap-confluent-tx"})
    report("init_transactions", lambda: producer.init_transactions(5))


def step_confluent_consume(bs: str, protocol: str) -> None:
    from confluent_kafka import Consumer, TopicPartition
    conf = {"bootstrap.servers": bs, "group.id": f"cap-confluent-{protocol}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "group.protocol": protocol}
    if protocol == "classic":
        conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    consumer = Consumer(conf)
    consumer.subscribe([CF_A])
    report("poll", lambda: len(poll_until(consumer, 20, 30)))
    report("commit", lambda: consumer.commit(asynchronous=False))
    parts = consumer.assignment()
    report("committed", lambda: consumer.committed(parts, timeout=10))
    if parts:
        report("seek", lambda: consumer.seek(
            TopicPartition(CF_A, parts[0].partition, 1, leader_epoch=0)))
        report("poll after seek", lambda: len(poll_until(consumer, 3, 5)))
    report("offsets_for_times", lambda: consumer.offsets_for_times(
        [TopicPartition(CF_A, p, int(time.time() * 1000) - 6000) for p in range(3)], timeout=10))
    report("get_watermark_offsets", lambda: consumer.get_watermark_offsets(
        TopicPartition(CF_A, 0), timeout=10))
    report("commit offsets", lambda: consumer.commit(
        offsets=[TopicPartition(CF_A, p.partition, 2) for p in parts], asynchronous=False))
    time.sleep(2)  # a few heartbeats
    report("close", consumer.close)


def step_confluent_groups(bs: str) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec
    admin = AdminClient({"bootstrap.servers": bs})
    groups = ["cap-confluent-classic", "cap-confluent-consumer"]
    report("list_consumer_groups", lambda: settle(admin.list_consumer_groups(request_timeout=10)))
    report("describe_consumer_groups", lambda: settle(admin.describe_consumer_groups(
        groups, include_authorized_operations=True)))
    report("list_consumer_group_offsets", lambda: settle(admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(groups[0])])))
    report("alter_consumer_group_offsets", lambda: settle(admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(groups[0], [TopicPartition(CF_A, 0, 1)])])))
    ts = int(time.time() * 1000) - 8000
    report("list_offsets", lambda: settle(admin.list_offsets({
        TopicPartition(CF_A, 0): OffsetSpec.earliest(),
        TopicPartition(CF_A, 1): OffsetSpec.latest(),
        TopicPartition(CF_A, 2): OffsetSpec.max_timestamp(),
        TopicPartition(CF_B, 0): OffsetSpec.for_timestamp(ts),
    }, isolation_level=IsolationLevel.READ_COMMITTED)))
    report("delete_records", lambda: settle(admin.delete_records([TopicPartition(CF_A, 0, 2)])))
    report("delete_consumer_groups", lambda: settle(admin.delete_consumer_groups(groups)))
    report("delete_topics", lambda: settle(admin.delete_topics([CF_A, CF_B], operation_timeout=10)))


def step_kafkapython_admin(bs: str) -> None:
    from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)
    report("create_topics", lambda: admin.create_topics({
        KP_A: {"num_partitions": 3, "replication_factor": 1,
               "configs": {"retention.ms": "3600000", "segment.bytes": "10485760"}},
        KP_B: {"num_partitions": 2, "replication_factor": 1}}))
    report("create_topics validate_only", lambda: admin.create_topics(
        {"cap-kafkapython-v": {"num_partitions": 1}}, validate_only=True))
    report("list_topics", admin.list_topics)
    report("describe_topics", lambda: admin.describe_topics([KP_A, KP_B]))
    report("describe_cluster", admin.describe_cluster)
    topic = ConfigResource(ConfigResourceType.TOPIC, KP_A)
    report("describe_configs", lambda: admin.describe_configs(
        [topic, ConfigResource(ConfigResourceType.BROKER, "0")], include_synonyms=True,
        config_filter="all"))
    report("alter_configs (AlterConfigs)", lambda: admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, KP_B, {"retention.ms": "7200000"})],
        incremental=False, raise_on_unknown=False))
    report("alter_configs (incremental)", lambda: admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, KP_A, {
            "retention.ms": (AlterConfigOp.SET, "1800000"),
            "segment.bytes": (AlterConfigOp.DELETE, None)})],
        incremental=True, raise_on_unknown=False))
    report("create_partitions", lambda: admin.create_partitions({KP_B: 4}))
    admin.close()


def step_kafkapython_produce(bs: str) -> None:
    from kafka import KafkaProducer
    now_ms = int(time.time() * 1000)
    for codec in CODECS:
        producer = KafkaProducer(bootstrap_servers=bs, linger_ms=20, acks="all",
                                 compression_type=None if codec == "none" else codec)
        for i, (key, value, headers) in enumerate(sample_records(codec)):
            headers = [(k, v or b"") for k, v in headers]  # kafka-python has no null header
            producer.send(KP_A, value=value, key=key, partition=i % 3, headers=headers,
                          timestamp_ms=now_ms - 1000 * (12 - i))
            producer.send(KP_B, value=value, key=key or b"k", headers=headers)
        report(f"flush {codec}", lambda: producer.flush(15))
        producer.close(5)


def step_kafkapython_consume(bs: str) -> None:
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bs, group_id="cap-kafkapython",
                             group_instance_id="cap-kafkapython-static",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=6000, heartbeat_interval_ms=500)
    consumer.subscribe([KP_A])
    got = 0
    deadline = time.monotonic() + 30
    while got < 20 and time.monotonic() < deadline:
        got += sum(len(batch) for batch in consumer.poll(500).values())
    print(f"ok    poll: {got} records")
    report("commit", consumer.commit)
    parts = sorted(consumer.assignment())
    report("committed", lambda: [consumer.committed(tp) for tp in parts])
    if parts:
        report("seek", lambda: consumer.seek(parts[0], 1))
        report("poll after seek", lambda: len(consumer.poll(2000)))
    tps = [TopicPartition(KP_A, p) for p in range(3)]
    report("offsets_for_times", lambda: consumer.offsets_for_times(
        {tp: int(time.time() * 1000) - 6000 for tp in tps}))
    report("beginning_offsets", lambda: consumer.beginning_offsets(tps))
    report("end_offsets", lambda: consumer.end_offsets(tps))
    time.sleep(2)  # a few heartbeats
    report("close", consumer.close)


def step_kafkapython_groups(bs: str) -> None:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient, MemberToRemove
    from kafka.structs import OffsetAndMetadata
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)
    group = "cap-kafkapython"
    report("list_groups", admin.list_groups)
    report("describe_groups", lambda: admin.describe_groups([group]))
    report("list_group_offsets", lambda: admin.list_group_offsets({group: None}))
    report("remove_group_members", lambda: admin.remove_group_members(
        group, [MemberToRemove(group_instance_id="cap-kafkapython-static")]))
    report("alter_group_offsets", lambda: admin.alter_group_offsets(
        group, {TopicPartition(KP_A, 0): OffsetAndMetadata(1, "meta", -1)}))
    report("delete_group_offsets", lambda: admin.delete_group_offsets(
        group, [TopicPartition(KP_A, 1)]))
    report("list_partition_offsets", lambda: admin.list_partition_offsets({
        TopicPartition(KP_A, 0): -2, TopicPartition(KP_A, 1): -1,
        TopicPartition(KP_A, 2): int(time.time() * 1000) - 8000}))
    report("delete_records", lambda: admin.delete_records({TopicPartition(KP_A, 0): 2}))
    report("delete_groups", lambda: admin.delete_groups([group]))
    report("delete_topics", lambda: admin.delete_topics([KP_A, KP_B]))
    admin.close()


PYTHON_STEPS = {
    "confluent-admin": step_confluent_admin,
    "confluent-produce": step_confluent_produce,
    "confluent-transactional": step_confluent_transactional,
    "confluent-consume-classic": lambda bs: step_confluent_consume(bs, "classic"),
    "confluent-consume-consumer": lambda bs: step_confluent_consume(bs, "consumer"),
    "confluent-groups": step_confluent_groups,
    "kafkapython-admin": step_kafkapython_admin,
    "kafkapython-produce": step_kafkapython_produce,
    "kafkapython-consume": step_kafkapython_consume,
    "kafkapython-groups": step_kafkapython_groups,
}

# Kafka's own Java client: compiled with javac into the work directory, run per mode.
JAVA_CLIENT = r"""
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class CaptureClient {
    static final String A = "cap-java-a", B = "cap-java-b";
    static final String[] GROUPS = {"cap-java-classic", "cap-java-consumer"};

    interface Call { Object run() throws Exception; }

    static void report(String what, Call call) {
        try {
            String text = String.valueOf(call.run());
            System.out.println("ok    " + what + ": " + (text.length() > 300 ? text.substring(0, 300) + "..." : text));
        } catch (Exception e) {
            System.out.println("error " + what + ": " + e);
        }
    }

    static Properties props(String bs, Object... kv) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bs);
        for (int i = 0; i < kv.length; i += 2) p.put(kv[i], kv[i + 1]);
        return p;
    }

    public static void main(String[] args) throws Exception {
        String bs = args[1];
        switch (args[0]) {
            case "admin" -> admin(bs);
            case "produce" -> produce(bs);
            case "consume-classic" -> consume(bs, "classic");
            case "consume-consumer" -> consume(bs, "consumer");
            case "groups" -> groups(bs);
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    static void admin(String bs) {
        try (Admin admin = Admin.create(props(bs))) {
            report("createTopics", () -> admin.createTopics(List.of(
                new NewTopic(A, 3, (short) 1).configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete")),
                new NewTopic(B, 2, (short) 1))).all().get(20, TimeUnit.SECONDS));
            report("createTopics validateOnly", () -> admin.createTopics(List.of(new NewTopic("cap-java-v", 5, (short) 1)),
                new CreateTopicsOptions().validateOnly(true)).all().get(20, TimeUnit.SECONDS));
            report("describeCluster", () -> admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true)).nodes().get(20, TimeUnit.SECONDS));
            report("listTopics", () -> admin.listTopics().names().get(20, TimeUnit.SECONDS));
            report("describeTopics", () -> admin.describeTopics(List.of(A, B)).allTopicNames().get(20, TimeUnit.SECONDS));
            ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, A);
            report("describeConfigs", () -> admin.describeConfigs(List.of(topic, new ConfigResource(ConfigResource.Type.BROKER, "0")),
                new DescribeConfigsOptions().includeSynonyms(true).includeDocumentation(true)).all().get(20, TimeUnit.SECONDS));
            report("incrementalAlterConfigs", () -> admin.incrementalAlterConfigs(Map.of(topic, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "1800000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", ""), AlterConfigOp.OpType.DELETE)))).all().get(20, TimeUnit.SECONDS));
            report("createPartitions", () -> admin.createPartitions(Map.of(B, NewPartitions.increaseTo(4))).all().get(20, TimeUnit.SECONDS));
        }
    }

    static void produce(String bs) {
        long now = System.currentTimeMillis();
        for (String codec : new String[] {"none", "gzip", "snappy", "lz4", "zstd"}) {
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props(bs,
                    "compression.type", codec, "linger.ms", "20", "acks", "all",
                    "key.serializer", ByteArraySerializer.class.getName(),
                    "value.serializer", ByteArraySerializer.class.getName()))) {
                for (int i = 0; i < 12; i++) {
                    byte[] key = i % 3 == 0 ? null : ("key-" + i).getBytes();
                    byte[] value = i == 5 ? null : (codec + "-" + i + ":").repeat(i * i).getBytes();
                    RecordHeaders headers = new RecordHeaders();
                    if (i % 2 == 1) headers.add("h", "v".getBytes()).add("dup", null).add("dup", "2".getBytes());
                    producer.send(new ProducerRecord<>(A, i % 3, now - 1000L * (12 - i), key, value, headers));
                    producer.send(new ProducerRecord<>(B, key, value));
                }
                report("flush " + codec, () -> { producer.flush(); return "done"; });
            }
        }
    }

    static void consume(String bs, String protocol) {
        Properties p = props(bs, "group.id", "cap-java-" + protocol, "group.protocol", protocol,
            "auto.offset.reset", "earliest", "enable.auto.commit", "false",
            "key.deserializer", ByteArrayDeserializer.class.getName(),
            "value.deserializer", ByteArrayDeserializer.class.getName());
        if (protocol.equals("classic")) {
            p.put("session.timeout.ms", "6000");
            p.put("heartbeat.interval.ms", "500");
        }
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(A));
            int got = 0;
            long deadline = System.currentTimeMillis() + 30000;
            while (got < 20 && System.currentTimeMillis() < deadline) got += consumer.poll(Duration.ofMillis(500)).count();
            System.out.println("ok    poll: " + got + " records");
            report("commitSync", () -> { consumer.commitSync(); return "done"; });
            Set<TopicPartition> parts = consumer.assignment();
            report("committed", () -> consumer.committed(parts, Duration.ofSeconds(10)));
            for (TopicPartition tp : parts) {
                consumer.seek(tp, new OffsetAndMetadata(1, Optional.of(0), "seek"));
                break;
            }
            report("poll after seek", () -> consumer.poll(Duration.ofSeconds(2)).count());
            Map<TopicPartition, Long> times = new HashMap<>();
            for (int i = 0; i < 3; i++) times.put(new TopicPartition(A, i), System.currentTimeMillis() - 6000);
            report("offsetsForTimes", () -> consumer.offsetsForTimes(times, Duration.ofSeconds(10)));
            report("beginningOffsets", () -> consumer.beginningOffsets(times.keySet(), Duration.ofSeconds(10)));
            report("endOffsets", () -> consumer.endOffsets(times.keySet(), Duration.ofSeconds(10)));
            Map<TopicPartition, OffsetAndMetadata> commits = new HashMap<>();
            for (TopicPartition tp : parts) commits.put(tp, new OffsetAndMetadata(2, Optional.of(0), "meta"));
            report("commitSync offsets", () -> { consumer.commitSync(commits); return "done"; });
            report("heartbeats", () -> { long end = System.currentTimeMillis() + 2000;
                while (System.currentTimeMillis() < end) consumer.poll(Duration.ofMillis(200)); return "done"; });
        }
    }

    @SuppressWarnings("removal") // listConsumerGroups() on purpose: its own ListGroups request
    static void groups(String bs) {
        try (Admin admin = Admin.create(props(bs))) {
            List<String> groups = List.of(GROUPS);
            TopicPartition a0 = new TopicPartition(A, 0), a1 = new TopicPartition(A, 1), a2 = new TopicPartition(A, 2);
            report("listGroups", () -> admin.listGroups().all().get(20, TimeUnit.SECONDS));
            report("listConsumerGroups", () -> admin.listConsumerGroups().all().get(20, TimeUnit.SECONDS));
            report("describeConsumerGroups", () -> admin.describeConsumerGroups(groups,
                new DescribeConsumerGroupsOptions().includeAuthorizedOperations(true)).all().get(20, TimeUnit.SECONDS));
            report("describeClassicGroups", () -> admin.describeClassicGroups(List.of(GROUPS[0])).all().get(20, TimeUnit.SECONDS));
            report("listConsumerGroupOffsets", () -> admin.listConsumerGroupOffsets(GROUPS[0]).partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS));
            report("alterConsumerGroupOffsets", () -> admin.alterConsumerGroupOffsets(GROUPS[0],
                Map.of(a0, new OffsetAndMetadata(1, "meta"))).all().get(20, TimeUnit.SECONDS));
            report("deleteConsumerGroupOffsets", () -> admin.deleteConsumerGroupOffsets(GROUPS[0], Set.of(a1)).all().get(20, TimeUnit.SECONDS));
            report("listOffsets", () -> admin.listOffsets(Map.of(a0, OffsetSpec.earliest(), a1, OffsetSpec.latest(),
                a2, OffsetSpec.maxTimestamp())).all().get(20, TimeUnit.SECONDS));
            report("listOffsets forTimestamp", () -> admin.listOffsets(Map.of(a0, OffsetSpec.forTimestamp(System.currentTimeMillis() - 8000)),
                new ListOffsetsOptions(org.apache.kafka.common.IsolationLevel.READ_COMMITTED)).all().get(20, TimeUnit.SECONDS));
            report("deleteRecords", () -> admin.deleteRecords(Map.of(a0, RecordsToDelete.beforeOffset(2))).all().get(20, TimeUnit.SECONDS));
            report("deleteConsumerGroups", () -> admin.deleteConsumerGroups(groups).all().get(20, TimeUnit.SECONDS));
            report("deleteTopics", () -> admin.deleteTopics(List.of(A, B)).all().get(20, TimeUnit.SECONDS));
        }
    }
}
"""


# ------------------------------------------------------------------------------------------
# Drive mode
# ------------------------------------------------------------------------------------------

@dataclass
class Step:
    name: str
    argv: list
    timeout: float
    stdin: bytes = b""


def python_step(name: str, bs: str, timeout: float = 60) -> Step:
    return Step(name, [sys.executable, __file__, "--step", name, "--bootstrap", bs], timeout)


def has_module(name: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {name}"],
                          capture_output=True).returncode == 0


def confluent_steps(bs: str, _work: Path):
    if not has_module("confluent_kafka"):
        return "confluent_kafka is not installed"
    return [python_step("confluent-admin", bs),
            python_step("confluent-produce", bs),
            python_step("confluent-transactional", bs, timeout=20),
            python_step("confluent-consume-classic", bs),
            python_step("confluent-consume-consumer", bs),
            python_step("confluent-groups", bs)]


def kafkapython_steps(bs: str, _work: Path):
    if not has_module("kafka"):
        return "kafka-python is not installed"
    return [python_step("kafkapython-admin", bs),
            python_step("kafkapython-produce", bs),
            python_step("kafkapython-consume", bs),
            python_step("kafkapython-groups", bs)]


def kcat_steps(bs: str, _work: Path):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if not kcat:
        return "kcat is not installed"
    base = [kcat, "-b", bs, "-q"]
    lines = "".join(f"key-{i}:value {i} " + "x" * (i * 37) + "\n" for i in range(20)).encode()
    steps = [Step("kcat -L", base + ["-L"], 20),
             Step("kcat -L -J -t", base + ["-L", "-J", "-t", KCAT_TOPIC], 20)]
    for codec, extra in (("lz4", ["-p", "0"]), ("zstd", ["-X", "enable.idempotence=true"]),
                         ("gzip", ["-X", "acks=all"]), ("snappy", ["-H", "h=v", "-H", "dup=1"])):
        steps.append(Step(f"kcat -P -z {codec}", base + ["-P", "-t", KCAT_TOPIC, "-K", ":",
                                                          "-z", codec] + extra, 30, lines))
    now_ms = int(time.time() * 1000)
    steps += [
        Step("kcat -C", base + ["-C", "-t", KCAT_TOPIC, "-o", "beginning", "-e", "-c", "40"], 30),
        Step("kcat -C -o -3", base + ["-C", "-t", KCAT_TOPIC, "-p", "0", "-o", "-3", "-e"], 30),
        Step("kcat -Q", base + ["-Q", "-t", f"{KCAT_TOPIC}:0:{now_ms - 60000}",
                                "-t", f"{KCAT_TOPIC}:1:-1", "-t", f"{KCAT_TOPIC}:2:-2"], 20),
        Step("kcat -G", base + ["-G", "cap-kcat-group", "-X", "auto.offset.reset=earliest",
                                "-c", "30", KCAT_TOPIC], 40),
    ]
    return steps


def java_steps(bs: str, work: Path):
    deps = Path(os.environ.get("CAPTURE_JAVA_DEPS", REPO / "compat-tests/java/target/dependency"))
    if not shutil.which("java") or not shutil.which("javac"):
        return "java/javac not found"
    if not list(deps.glob("kafka-clients-*.jar")):
        return f"no kafka-clients jar in {deps} (scripts/install-deps.sh builds it)"
    src = work / "java" / "CaptureClient.java"
    src.parent.mkdir(exist_ok=True)
    src.write_text(JAVA_CLIENT)
    classpath = f"{deps}/*{os.pathsep}{src.parent}"
    run = ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", classpath,
           "CaptureClient"]
    javac = ["javac", "-cp", f"{deps}/*", "-d", str(src.parent), str(src)]
    modes = ("admin", "produce", "consume-classic", "consume-consumer", "groups")
    return [Step("javac", javac, 120)] + [Step(f"java {m}", run + [m, bs], 60) for m in modes]


CLIENTS = {
    "confluent": confluent_steps,
    "kafkapython": kafkapython_steps,
    "kcat": kcat_steps,
    "java": java_steps,
}


def run_step(step: Step, log_path: Path) -> str:
    """Runs one client step in its own process group; returns 'ok', 'exit N' or 'timeout'."""
    with open(log_path, "ab") as log:
        log.write(f"===== {step.name}: {' '.join(map(str, step.argv))}\n".encode())
        log.flush()
        proc = subprocess.Popen(step.argv, stdin=subprocess.PIPE, stdout=log, stderr=log,
                                start_new_session=True)
        try:
            proc.communicate(step.stdin, timeout=step.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return "timeout"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return "ok" if proc.returncode == 0 else f"exit {proc.returncode}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """gregor advertising the proxy's address, run from a private copy of the binary."""

    def __init__(self, binary: Path, work: Path, port: int, advertised_port: int):
        self.binary = work / "gregor"
        shutil.copy2(binary, self.binary)
        self.port = port
        self.log_path = work / "broker.log"
        overrides = {
            "listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{advertised_port}",
            "log.dirs": str(work / "data"),
            "metrics.port": "0",
            "num.partitions": "3",
            "group.initial.rebalance.delay.ms": "500",
            "group.consumer.session.timeout.ms": "6000",
            "group.consumer.heartbeat.interval.ms": "1000",
        }
        self.argv = [str(self.binary)]
        for key, value in overrides.items():
            self.argv += ["--override", f"{key}={value}"]
        self.proc = None

    def start(self, timeout=30.0) -> None:
        env = dict(os.environ, NO_COLOR="1")
        env.setdefault("RUST_LOG", "info")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gregor exited with {self.proc.returncode}; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gregor did not listen on {self.port} within {timeout}s")

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed after ignoring SIGTERM for 30 s"

    def notable_log_lines(self, limit=40):
        """WARN/ERROR lines of the broker log (ANSI colours stripped), most frequent first."""
        counts = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            if re.search(r"\b(WARN|ERROR)\b|panicked", line):
                # drop the timestamp so that repeats collapse
                counts[re.sub(r"^\S*\d{4}-\d\d-\d\dT\S+\s*", "", line)[:240]] += 1
        return counts.most_common(limit)


def select_corpus(staging: Path, per_kind: int):
    """Up to per_kind frames for each (label, api key, version): one frame per distinct length
    (frames of one length mostly differ only in ids and counters), spread over the lengths."""
    kinds = defaultdict(dict)
    for path in sorted(staging.iterdir()):
        m = FRAME_NAME.match(path.name)
        if m:
            kind = (m["label"], int(m["key"]), int(m["ver"]))
            kinds[kind].setdefault(path.stat().st_size, path)
    chosen = []
    for by_length in kinds.values():
        lengths = sorted(by_length)
        if len(lengths) > per_kind:
            step = (len(lengths) - 1) / (per_kind - 1) if per_kind > 1 else 0
            lengths = sorted({lengths[round(i * step)] for i in range(per_kind)})
        chosen += [by_length[n] for n in lengths]
    return chosen


def write_corpus(staging: Path, out: Path, labels, per_kind: int, max_files: int, max_bytes: int):
    """Replaces the driven labels' frames in `out` by a selection from `staging` such that all
    captured frames there (other labels' too) fit the limits. Files not named like captured
    frames (generated seeds, the fuzzer's own finds) are left alone and not counted."""
    out.mkdir(parents=True, exist_ok=True)
    ours, kept = [], []
    for p in out.iterdir():
        m = FRAME_NAME.match(p.name)
        if m:
            (ours if m["label"] in labels else kept).append(p)
    kept_bytes = sum(p.stat().st_size for p in kept)
    for n in range(per_kind, 0, -1):
        chosen = select_corpus(staging, n)
        if (len(chosen) + len(kept) <= max_files
                and sum(p.stat().st_size for p in chosen) + kept_bytes <= max_bytes):
            break
    for p in ours:
        p.unlink()
    for p in chosen:
        shutil.copy2(p, out / p.name)
    return chosen, n


def print_summary(chosen, captured: Counter, labels) -> None:
    kept = Counter()
    versions = defaultdict(set)
    for p in chosen:
        m = FRAME_NAME.match(p.name)
        kind = (m["label"], int(m["key"]))
        kept[kind] += 1
        versions[kind].add(int(m["ver"]))
    print("\nframes per API key and client: kept/captured distinct, then the versions kept")
    print(f"{'key':>4} {'api':<24}" + "".join(f"{label:>18}" for label in labels))
    keys = sorted({key for _, key in captured} | set(API_NAMES))
    for key in keys:
        cells = []
        for label in labels:
            vers = ",".join(str(v) for v in sorted(versions[(label, key)]))
            cells.append(f"{kept[(label, key)]}/{captured[(label, key)]} v{vers}" if vers else "-")
        print(f"{key:>4} {API_NAMES.get(key, '?'):<24}" + "".join(f"{c:>18}" for c in cells))
    sent = {key for _, key in kept}
    missing = [f"{API_NAMES[k]} ({k})" for k in SERVED_APIS if k not in sent]
    print("served APIs no client sent: " + (", ".join(missing) or "none"))
    print(f"total: {len(chosen)} files, {sum(p.stat().st_size for p in chosen)} bytes")


def drive(args) -> int:
    labels = args.clients.split(",")
    unknown = [label for label in labels if label not in CLIENTS]
    if unknown:
        sys.exit(f"unknown clients {unknown}; choose from {','.join(CLIENTS)}")
    binary = Path(args.gregor)
    if not binary.is_file():
        sys.exit(f"{binary} not found: cargo build --release first, or pass --gregor")
    work = Path(tempfile.mkdtemp(prefix="capture-frames-"))
    staging = work / "frames"
    listen_port = args.listen or free_port()
    broker = Broker(binary, work, args.broker or free_port(), listen_port)
    bootstrap = f"127.0.0.1:{listen_port}"

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    results = []
    try:
        broker.start()
        print(f"gregor on {broker.port} (log {broker.log_path}), proxy on {listen_port}")
        for label in labels:
            steps = CLIENTS[label](bootstrap, work)
            if isinstance(steps, str):
                results.append((label, "(all)", f"skipped: {steps}"))
                print(f"{label}: skipped: {steps}")
                continue
            proxy = Proxy(listen_port, broker.port, FrameStore(staging, label))
            proxy.start()
            try:
                for step in steps:
                    started = time.monotonic()
                    outcome = run_step(step, work / f"{label}.log")
                    results.append((label, step.name, outcome))
                    print(f"{label}: {step.name}: {outcome} ({time.monotonic() - started:.1f} s)",
                          flush=True)
            finally:
                proxy.stop()
    except KeyboardInterrupt as e:
        print(f"interrupted ({e}); writing what was captured")
    finally:
        code = broker.stop()
        print(f"gregor stopped: exit {code}")

    staging.mkdir(exist_ok=True)
    captured = Counter()
    for path in staging.iterdir():
        m = FRAME_NAME.match(path.name)
        if m:
            captured[(m["label"], int(m["key"]))] += 1
    chosen, per_kind = write_corpus(staging, Path(args.out), set(labels), args.per_kind,
                                    args.max_files, args.max_bytes)
    print(f"\nwrote {args.out} (at most {per_kind} frames per client, api and version)")
    print_summary(chosen, captured, labels)

    failed = [r for r in results if r[2] != "ok"]
    print("\nsteps that did not end cleanly: " + ("none" if not failed else ""))
    for label, name, outcome in failed:
        print(f"  {label}: {name}: {outcome}")
    print(f"client output: {work}/<client>.log (each line 'ok' or 'error' per call)")
    errors = []
    for label in labels:
        log = work / f"{label}.log"
        if log.exists():
            errors += [f"  {label}: {line}" for line in log.read_text(errors="replace").splitlines()
                       if line.startswith("error ")]
    print("client calls that failed: " + ("none" if not errors else ""))
    print("\n".join(errors))
    notable = broker.notable_log_lines()
    print("broker WARN/ERROR lines (count, line): " + ("none" if not notable else ""))
    for line, count in notable:
        print(f"  {count:>4}  {line}")
    if not args.keep:
        shutil.rmtree(work / "data", ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        (work / "gregor").unlink(missing_ok=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, help="proxy port (proxy mode: 9093; drive: free)")
    parser.add_argument("--broker", type=int, help="broker port (proxy mode: 9092; drive: free)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="corpus directory (%(default)s)")
    parser.add_argument("--label", default="client", help="client name in the file names")
    parser.add_argument("--drive", action="store_true",
                        help="start gregor and the proxy, run the clients, write the corpus")
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help="drive: comma-separated clients (%(default)s)")
    parser.add_argument("--gregor", default=str(REPO / "target/release/gregor"),
                        help="drive: broker binary, copied before it is run (%(default)s)")
    parser.add_argument("--per-kind", type=int, default=6,
                        help="drive: most frames kept per (client, api key, version)")
    parser.add_argument("--max-files", type=int, default=400, help="drive: most captured frames in --out")
    parser.add_argument("--max-bytes", type=int, default=4 * 1024 * 1024,
                        help="drive: most bytes of captured frames in --out")
    parser.add_argument("--keep", action="store_true",
                        help="drive: keep the broker data and all captured frames")
    parser.add_argument("--step", choices=sorted(PYTHON_STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step:
        PYTHON_STEPS[args.step](args.bootstrap)
        return 0
    if args.drive:
        return drive(args)
    args.listen = args.listen or 9093
    args.broker = args.broker or 9092
    return run_proxy(args)


if __name__ == "__main__":
    sys.exit(main())
