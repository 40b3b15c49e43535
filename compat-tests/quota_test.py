#!/usr/bin/env python3
"""Client byte-rate quotas through real clients against a real gregor.

Sets `producer_byte_rate=1048576` on client id `limited` with Kafka's own kafka-configs.sh
(ConfigCommand, AlterClientQuotas), checks that `--describe` shows it, then runs two
confluent-kafka producers side by side for WARMUP + MEASURED seconds, each offering 1 KiB
records at 8 MiB/s: `limited`, and `free` (no quota). Over the measured span (after a
warm-up that lets the first second's allowance go by) the limited
producer's acknowledged rate must be within 10% of 1 MiB/s, and the free one must run (within
10%) as fast as it offers (8 MiB/s: paced, so as not to take the machine from suites running
beside it). The limited producer must also have been told to wait (throttle_time_ms, seen in
librdkafka's statistics). Then the quota is removed and the limited producer's rate must
climb above 2 MiB/s. Last, `consumer_byte_rate=1048576` on client id `slow-reader`: its
consumer must read the topic at no more than 1 MiB/s + 15% and not stall (at least a quarter
of it), while a consumer without a quota reads over 20 MiB in 6 s. (librdkafka reads at about
0.7 MiB/s under a 1 MiB/s fetch quota here: the span counted starts before its group join is
done, and each fetch of up to 1 MiB is counted only after it is sent.)

usage: compat-tests/quota_test.py [--broker target/release/gregor] [--kafka-lib DIR]
Exit status 0 on success; prints the rates it measured.
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compat.broker import Broker  # noqa: E402

QUOTA = 1024 * 1024
FREE_PACE = 8 * QUOTA
WARMUP = 3.0
MEASURED = 30.0
VALUE = b"q" * 1024
TOPIC = "quota-topic"


def config_command(lib, bootstrap, *args):
    cmd = ["java", "-XX:TieredStopAtLevel=1", "-Xmx256m", "-cp", os.path.join(lib, "*"),
           "kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"kafka-configs {' '.join(args)} failed: {out.stdout}{out.stderr}")
    return out.stdout


class Producing(threading.Thread):
    """Produces 1 KiB records as fast as librdkafka takes them; records each acknowledged
    record's time."""

    def __init__(self, bootstrap, client_id, stop, pace=None):
        super().__init__(daemon=True)
        self.pace = pace         # bytes/s this producer offers at most (None: as fast as it can)
        from confluent_kafka import Producer
        self.acked = []          # monotonic times of acknowledged records
        self.errors = []
        self.max_throttle_ms = 0
        self.stop = stop

        def stats(text):
            s = json.loads(text)
            for b in s.get("brokers", {}).values():
                self.max_throttle_ms = max(self.max_throttle_ms, b.get("throttle", {}).get("max", 0))

        self.producer = Producer({
            "bootstrap.servers": bootstrap, "client.id": client_id, "acks": 1,
            "linger.ms": 5, "batch.size": 65536, "queue.buffering.max.kbytes": 4096,
            "statistics.interval.ms": 1000, "stats_cb": stats,
        })

    def delivered(self, err, _msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.append(time.monotonic())

    def run(self):
        started, offered = time.monotonic(), 0
        while not self.stop.is_set():
            if self.pace is not None and offered > self.pace * (time.monotonic() - started):
                self.producer.poll(0.01)
                continue
            offered += len(VALUE)
            try:
                self.producer.produce(TOPIC, VALUE, callback=self.delivered)
            except BufferError:
                self.producer.poll(0.05)
                continue
            self.producer.poll(0)
        self.producer.flush(30)

    def rate(self, start, end):
        n = sum(1 for t in self.acked if start <= t < end)
        return n * len(VALUE) / (end - start)


def run_pair(bootstrap, seconds):
    stop = threading.Event()
    # The limited producer offers more than its quota; the free one offers FREE_PACE, well
    # above the quota (paced so that it does not take the machine from suites running beside).
    limited = Producing(bootstrap, "limited", stop, pace=FREE_PACE)
    free = Producing(bootstrap, "free", stop, pace=FREE_PACE)
    t0 = time.monotonic()
    limited.start()
    free.start()
    time.sleep(seconds)
    stop.set()
    limited.join(60)
    free.join(60)
    # Destroyed now, not at exit: their clients would retry the stopped broker meanwhile.
    limited.producer = free.producer = None
    gc.collect()
    return t0, limited, free


def consume_rate(bootstrap, client_id, seconds):
    """Reads the topic from the start for `seconds`; returns (bytes/s after the first 2 s,
    total bytes)."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, "group.id": client_id,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([TOPIC])
    t0 = time.monotonic()
    counted, total = 0, 0
    while time.monotonic() - t0 < seconds:
        for m in c.consume(500, 0.2):
            if m.error() is None:
                total += len(m.value())
                if time.monotonic() - t0 >= 2:
                    counted += len(m.value())
    c.close()
    return counted / (seconds - 2), total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(HERE, "..", "target", "release", "gregor"))
    ap.add_argument("--kafka-lib", default=os.path.join(HERE, "..", "target", "kafka-tools-lib"))
    args = ap.parse_args()
    from confluent_kafka.admin import AdminClient, NewTopic

    broker = Broker(args.broker)
    ok = False
    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])[TOPIC].result(30)

        config_command(args.kafka_lib, broker.bootstrap, "--alter", "--add-config",
                       f"producer_byte_rate={QUOTA}", "--entity-type", "clients", "--entity-name", "limited")
        described = config_command(args.kafka_lib, broker.bootstrap, "--describe",
                                   "--entity-type", "clients", "--entity-name", "limited")
        want = f"producer_byte_rate={QUOTA}"
        if want not in described:
            raise SystemExit(f"kafka-configs --describe does not show {want}: {described!r}")
        print(f"kafka-configs --describe: {described.strip()}")
        time.sleep(2)  # the broker reads quotas every second

        t0, limited, free = run_pair(broker.bootstrap, WARMUP + MEASURED)
        for p in (limited, free):
            if p.errors:
                raise SystemExit(f"delivery errors: {p.errors[:3]}")
        start, end = t0 + WARMUP, t0 + WARMUP + MEASURED
        lim, fr = limited.rate(start, end), free.rate(start, end)
        print(f"limited: {lim / 1048576:.3f} MiB/s (quota 1 MiB/s), told to wait up to "
              f"{limited.max_throttle_ms} ms; free: {fr / 1048576:.3f} MiB/s, over {MEASURED:.0f} s")
        failures = []
        if abs(lim - QUOTA) > 0.10 * QUOTA:
            failures.append(f"the limited producer ran at {lim / 1048576:.3f} MiB/s, not 1 MiB/s +-10%")
        if fr < 0.9 * FREE_PACE:
            failures.append(f"the free producer ran at only {fr / 1048576:.3f} MiB/s of the "
                            f"{FREE_PACE / 1048576:.0f} MiB/s it offered")
        if limited.max_throttle_ms <= 0:
            failures.append("the limited producer was never told to wait (throttle_time_ms)")

        config_command(args.kafka_lib, broker.bootstrap, "--alter", "--delete-config", "producer_byte_rate",
                       "--entity-type", "clients", "--entity-name", "limited")
        # The old window still holds the throttled rate; after it, the producer runs free.
        t0, limited, _ = run_pair(broker.bootstrap, 15.0)
        after = limited.rate(t0 + 3, t0 + 15)
        print(f"after the quota was removed: limited {after / 1048576:.3f} MiB/s")
        if after < 2 * QUOTA:
            failures.append(f"after removal the producer ran at only {after / 1048576:.3f} MiB/s")
        # Fetch: consumer_byte_rate on one client id; a reader without it is not held back.
        config_command(args.kafka_lib, broker.bootstrap, "--alter", "--add-config",
                       f"consumer_byte_rate={QUOTA}", "--entity-type", "clients", "--entity-name", "slow-reader")
        time.sleep(2)
        slow, _ = consume_rate(broker.bootstrap, "slow-reader", 14.0)
        _, fast_total = consume_rate(broker.bootstrap, "fast-reader", 6.0)
        print(f"consumer_byte_rate 1 MiB/s: slow-reader {slow / 1048576:.3f} MiB/s; fast-reader "
              f"read {fast_total / 1048576:.1f} MiB in 6 s")
        # Held to its quota, not stopped (it reads somewhat below it: see the docstring).
        if not 0.25 * QUOTA <= slow <= 1.15 * QUOTA:
            failures.append(f"the slow reader ran at {slow / 1048576:.3f} MiB/s, not within "
                            f"0.25-1.15 MiB/s")
        if fast_total < 20 * QUOTA:
            failures.append(f"the reader without a quota read only {fast_total / 1048576:.1f} MiB in 6 s")
        if failures:
            raise SystemExit("; ".join(failures))
        ok = True
        print("quota test: OK")
    finally:
        broker.stop()
        if not ok:
            print(broker.log_tail(4000))


if __name__ == "__main__":
    main()
