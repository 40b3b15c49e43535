"""confluent-kafka (librdkafka) adapter, driven in-process."""
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ..data import Rec
from ..group_member import Member
from . import CALL_TIMEOUT, ClientError

WORKER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "group_worker.py")


class ConfluentClient:
    name = "confluent-kafka"
    timestamps = True
    header_mode = "full"
    produce_offsets = True
    manual_commit = True
    static_membership = True
    cooperative = True
    kip848 = True

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def _admin(self):
        return AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 15000})

    def create_topic(self, topic, partitions):
        admin = self._admin()  # keep a reference: a collected handle fails its futures
        fut = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                  request_timeout=20)[topic]
        try:
            fut.result(30)
        except KafkaException as e:
            raise ClientError(f"create_topics: {e}")
        return "created"

    def metadata(self, topic):
        admin = self._admin()
        md = admin.list_topics(topic=topic, timeout=20)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            raise ClientError(f"metadata for {topic}: {None if t is None else t.error}")
        return {p.id: p.leader for p in t.partitions.values()}

    def produce(self, topic, msgs, compression=None, idempotent=False):
        p = Producer({
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": idempotent,
            "compression.type": compression or "none",
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            "queue.buffering.max.messages": 200000,
        })
        results = [None] * len(msgs)
        errors = []

        def on_delivery(i):
            def cb(err, m):
                if err is not None:
                    errors.append(f"message {i}: {err}")
                else:
                    results[i] = (m.partition(), m.offset())
            return cb

        for i, m in enumerate(msgs):
            kw = {"partition": m.partition, "key": m.key, "value": m.value, "on_delivery": on_delivery(i)}
            if m.headers:
                kw["headers"] = list(m.headers)
            if m.timestamp is not None:
                kw["timestamp"] = m.timestamp
            while True:
                try:
                    p.produce(topic, **kw)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        left = p.flush(CALL_TIMEOUT)
        if left:
            raise ClientError(f"{left} messages still undelivered after flush({CALL_TIMEOUT})")
        if errors:
            raise ClientError(f"{len(errors)} delivery errors, first: {errors[0]}")
        return results

    def _consumer(self):
        return Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": "compat-unused",  # required by the API; never used to subscribe
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "socket.timeout.ms": 15000,
        })

    def consume(self, topic, partition, start, count, timeout=60):
        c = self._consumer()
        out = []
        try:
            c.assign([TopicPartition(topic, partition, start)])
            deadline = time.monotonic() + timeout
            while len(out) < count and time.monotonic() < deadline:
                for m in c.consume(num_messages=1000, timeout=0.5):
                    if m.error() is not None:
                        raise ClientError(f"consume error: {m.error()}")
                    out.append(Rec(m.partition(), m.offset(), m.key(), m.value(),
                                   list(m.headers() or []), m.timestamp()[1]))
        finally:
            c.close()
        return out[:count] if len(out) > count else out

    def offsets(self, topic, partition, timestamps=()):
        c = self._consumer()
        try:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=20, cached=False)
            by_ts = []
            for ts in timestamps:
                r = c.offsets_for_times([TopicPartition(topic, partition, ts)], timeout=20)[0]
                if r.error is not None:
                    raise ClientError(f"offsets_for_times: {r.error}")
                by_ts.append(None if r.offset < 0 else r.offset)
            return lo, hi, by_ts
        except KafkaException as e:
            raise ClientError(str(e))
        finally:
            c.close()

    def group_member(self, name, group, topic, partitions, **opts):
        """A subscribed group member in its own process (compat/group_worker.py)."""
        argv = [sys.executable, WORKER, self.name, self.bootstrap, f"group={group}", f"topic={topic}",
                f"partitions={partitions}"] + [f"{k}={v}" for k, v in opts.items() if v is not None]
        return Member(name, argv)
