#!/usr/bin/env python3
"""One consumer-group member of the compat suite's group scenarios, as its own process (so a
scenario can run several members side by side and `kill -9` one), for the Python clients
confluent-kafka and kafka-python. The Java twin is CompatClient's `group` command; kcat is run
directly (compat/group_member.py reads its output).

usage: group_worker.py confluent-kafka|kafka-python <bootstrap> key=value...
  group= topic= partitions=   group id, the subscribed topic and its partition count
  auto_commit=0|1             enable.auto.commit (default 1, as the clients default)
  max_records=N               stop processing after N records (manual mode: exactly N, then the
                              processed offsets can be committed; auto mode: whole poll batches)
  session_ms= heartbeat_ms= instance_id=   session.timeout.ms, heartbeat.interval.ms, group.instance.id
  protocol=consumer           group.protocol (KIP-848; confluent-kafka only)
  assignor=cooperative-sticky partition.assignment.strategy (confluent-kafka only)

stdout: one JSON object per line
  {"ev":"assigned","parts":[..]} / {"ev":"revoked","parts":[..]}   rebalance callbacks
  {"ev":"rec","p":..,"o":..,"k":b64|null,"v":b64|null}               each processed record
  {"ev":"commit_ok","offsets":{p:o}}                                 reply to `commit`
  {"ev":"committed","offsets":{p:o|null}}                            reply to `committed`
  {"ev":"error","msg":..}
stdin commands, one per line: commit (synchronous commit of the processed records' offsets + 1),
committed (the group's committed offsets via the client's committed() API), close (clean close,
then exit 0).
"""
import base64
import json
import os
import queue
import sys
import threading
import time


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


_out_lock = threading.Lock()


def emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def read_commands(q):
    for line in sys.stdin:
        if line.strip():
            q.put(line.strip())
    q.put("close")  # stdin closed: the driver went away


class Worker:
    def __init__(self, opt):
        self.topic = opt["topic"]
        self.group = opt["group"]
        self.partitions = int(opt["partitions"])
        self.auto = opt.get("auto_commit", "1") == "1"
        self.max = int(opt.get("max_records", "0")) or None
        self.session = opt.get("session_ms")
        self.heartbeat = opt.get("heartbeat_ms")
        self.instance = opt.get("instance_id")
        self.protocol = opt.get("protocol")
        self.assignor = opt.get("assignor")
        self.processed = 0
        self.next_offsets = {}  # partition -> last processed offset + 1

    def room(self):
        return None if self.max is None else self.max - self.processed

    def record(self, p, o, k, v):
        emit({"ev": "rec", "p": p, "o": o, "k": b64(k), "v": b64(v)})
        self.processed += 1
        self.next_offsets[p] = o + 1

    def run(self):
        q = queue.Queue()
        threading.Thread(target=read_commands, args=(q,), daemon=True).start()
        while True:
            try:
                cmd = q.get_nowait()
            except queue.Empty:
                cmd = None
            if cmd == "close":
                self.close()
                return
            if cmd == "commit":
                self.commit()
                emit({"ev": "commit_ok", "offsets": self.next_offsets})
            elif cmd == "committed":
                emit({"ev": "committed", "offsets": self.committed()})
            elif cmd is not None:
                emit({"ev": "error", "msg": f"unknown command {cmd}"})
            if self.room() is None or self.room() > 0:
                self.poll()
            else:
                self.idle()


class ConfluentWorker(Worker):
    def __init__(self, bootstrap, opt):
        super().__init__(opt)
        from confluent_kafka import Consumer
        conf = {"bootstrap.servers": bootstrap, "group.id": self.group,
                "enable.auto.commit": self.auto, "auto.offset.reset": "earliest",
                "socket.timeout.ms": 15000}
        if self.session:
            conf["session.timeout.ms"] = int(self.session)
        if self.heartbeat:
            conf["heartbeat.interval.ms"] = int(self.heartbeat)
        if self.instance:
            conf["group.instance.id"] = self.instance
        if self.protocol:
            conf["group.protocol"] = self.protocol  # KIP-848: "consumer"
        if self.assignor:
            conf["partition.assignment.strategy"] = self.assignor  # e.g. cooperative-sticky
        if os.environ.get("COMPAT_RDKAFKA_DEBUG"):  # e.g. cgrp: librdkafka's debug log on stderr
            conf["debug"] = os.environ["COMPAT_RDKAFKA_DEBUG"]
        self.c = Consumer(conf)
        self.c.subscribe([self.topic],
                         on_assign=lambda c, ps: emit({"ev": "assigned", "parts": sorted(p.partition for p in ps)}),
                         on_revoke=lambda c, ps: emit({"ev": "revoked", "parts": sorted(p.partition for p in ps)}),
                         on_lost=lambda c, ps: emit({"ev": "revoked", "lost": True,
                                                     "parts": sorted(p.partition for p in ps)}))

    def poll(self):
        n = min(500, self.room() or 500)
        for m in self.c.consume(num_messages=n, timeout=0.2):
            if m.error() is not None:
                emit({"ev": "error", "msg": str(m.error())})
                continue
            self.record(m.partition(), m.offset(), m.key(), m.value())

    def idle(self):
        time.sleep(0.1)

    def commit(self):
        from confluent_kafka import TopicPartition
        tps = [TopicPartition(self.topic, p, o) for p, o in sorted(self.next_offsets.items())]
        if tps:
            self.c.commit(offsets=tps, asynchronous=False)

    def committed(self):
        from confluent_kafka import TopicPartition
        res = self.c.committed([TopicPartition(self.topic, p) for p in range(self.partitions)], timeout=20)
        return {r.partition: (None if r.offset < 0 else r.offset) for r in res}

    def close(self):
        self.c.close()


class KafkaPythonWorker(Worker):
    def __init__(self, bootstrap, opt):
        super().__init__(opt)
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                emit({"ev": "revoked", "parts": sorted(tp.partition for tp in revoked)})

            def on_partitions_assigned(self, assigned):
                emit({"ev": "assigned", "parts": sorted(tp.partition for tp in assigned)})

        kw = {"bootstrap_servers": bootstrap, "group_id": self.group, "enable_auto_commit": self.auto,
              "auto_offset_reset": "earliest", "request_timeout_ms": 30000}
        if self.session:
            kw["session_timeout_ms"] = int(self.session)
        if self.heartbeat:
            kw["heartbeat_interval_ms"] = int(self.heartbeat)
        if self.instance:
            kw["group_instance_id"] = self.instance
        if os.environ.get("COMPAT_KAFKAPYTHON_DEBUG"):  # kafka-python's debug log on stderr
            import logging
            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        self.c = KafkaConsumer(**kw)
        self.c.subscribe([self.topic], listener=Listener())

    def poll(self):
        n = min(500, self.room() or 500)
        for recs in self.c.poll(timeout_ms=200, max_records=n).values():
            for r in recs:
                self.record(r.partition, r.offset, r.key, r.value)

    def idle(self):
        time.sleep(0.1)

    def commit(self):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata
        offs = {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                for p, o in self.next_offsets.items()}
        if offs:
            self.c.commit(offs)

    def committed(self):
        from kafka import TopicPartition
        return {p: self.c.committed(TopicPartition(self.topic, p)) for p in range(self.partitions)}

    def close(self):
        self.c.close(autocommit=self.auto)


def main():
    kind, bootstrap = sys.argv[1], sys.argv[2]
    opt = dict(a.split("=", 1) for a in sys.argv[3:])
    cls = {"confluent-kafka": ConfluentWorker, "kafka-python": KafkaPythonWorker}[kind]
    try:
        cls(bootstrap, opt).run()
    except Exception as e:  # noqa: BLE001  (reported to the driver, which fails the cell)
        emit({"ev": "error", "msg": f"{type(e).__name__}: {e}"})
        sys.exit(1)


if __name__ == "__main__":
    main()
