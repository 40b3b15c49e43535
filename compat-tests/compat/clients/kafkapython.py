"""kafka-python adapter, driven in-process."""
import os
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from ..data import Rec
from ..group_member import Member
from . import CALL_TIMEOUT, ClientError

WORKER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "group_worker.py")


class KafkaPythonClient:
    name = "kafka-python"
    timestamps = True
    header_mode = "nonull"  # KafkaProducer.send rejects None header values
    produce_offsets = True
    manual_commit = True
    static_membership = True
    cooperative = False
    kip848 = False

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def _admin(self):
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=20000)

    def create_topic(self, topic, partitions):
        admin = self._admin()
        try:
            # raise_errors (default) turns a topic error code into an exception.
            admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}},
                                timeout_ms=20000)
        except Exception as e:
            raise ClientError(f"create_topics: {e!r}")
        finally:
            admin.close()
        return "created"

    def metadata(self, topic):
        admin = self._admin()
        try:
            desc = admin.describe_topics([topic])
        finally:
            admin.close()
        if len(desc) != 1:
            raise ClientError(f"describe_topics returned {len(desc)} topics")
        d = desc[0]
        if d.get("error_code"):
            raise ClientError(f"describe_topics: error code {d['error_code']}")
        out = {}
        for p in d["partitions"]:
            pid = p.get("partition_index", p.get("partition"))
            out[pid] = p.get("leader_id", p.get("leader"))
        return out

    def produce(self, topic, msgs, compression=None, idempotent=False):
        p = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", compression_type=compression,
                          linger_ms=5, enable_idempotence=idempotent, request_timeout_ms=30000,
                          max_block_ms=30000)
        try:
            futs = []
            for m in msgs:
                futs.append(p.send(topic, value=m.value, key=m.key, partition=m.partition,
                                   headers=list(m.headers), timestamp_ms=m.timestamp))
            p.flush(CALL_TIMEOUT)
            out = []
            for i, f in enumerate(futs):
                try:
                    md = f.get(timeout=1)
                except Exception as e:
                    raise ClientError(f"message {i}: {e!r}")
                out.append((md.partition, md.offset))
            return out
        finally:
            p.close(timeout=10)

    def _consumer(self):
        return KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="none", request_timeout_ms=30000)

    def consume(self, topic, partition, start, count, timeout=60):
        c = self._consumer()
        out = []
        try:
            tp = TopicPartition(topic, partition)
            c.assign([tp])
            c.seek(tp, start)
            deadline = time.monotonic() + timeout
            while len(out) < count and time.monotonic() < deadline:
                for recs in c.poll(timeout_ms=500, max_records=2000).values():
                    for r in recs:
                        out.append(Rec(r.partition, r.offset, r.key, r.value,
                                       [(k, v) for k, v in (r.headers or [])], r.timestamp))
        except Exception as e:
            raise ClientError(f"consume: {e!r}")
        finally:
            c.close()
        return out[:count]

    def offsets(self, topic, partition, timestamps=()):
        c = self._consumer()
        try:
            tp = TopicPartition(topic, partition)
            lo = c.beginning_offsets([tp])[tp]
            hi = c.end_offsets([tp])[tp]
            by_ts = []
            for ts in timestamps:
                r = c.offsets_for_times({tp: ts})[tp]
                by_ts.append(None if r is None else r.offset)
            return lo, hi, by_ts
        except Exception as e:
            raise ClientError(f"offsets: {e!r}")
        finally:
            c.close()

    def group_member(self, name, group, topic, partitions, **opts):
        """A subscribed group member in its own process (compat/group_worker.py)."""
        argv = [sys.executable, WORKER, self.name, self.bootstrap, f"group={group}", f"topic={topic}",
                f"partitions={partitions}"] + [f"{k}={v}" for k, v in opts.items() if v is not None]
        return Member(name, argv)
