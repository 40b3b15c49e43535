#!/usr/bin/env python3
"""A first end-to-end figure: produce and then consume N records of SIZE bytes with
confluent-kafka (librdkafka) against a running broker, and report messages/s, MB/s and
the broker's resident memory. Not a benchmark suite (that is scripts/bench, to come):
one quick, honest number to compare runs with.

usage: scripts/e2e-throughput.py [--bootstrap 127.0.0.1:9092] [--pid PID] [-n 200000] [--size 1024]
"""
import argparse
import os
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def rss_mib(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--pid", type=int, default=0, help="broker pid, for RSS")
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--acks", default="1")
    args = ap.parse_args()

    topic = f"e2e-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)

    payload = os.urandom(args.size)
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    })
    delivered = [0]

    def on_delivery(err, _msg):
        if err is None:
            delivered[0] += 1

    start = time.perf_counter()
    for _ in range(args.n):
        while True:
            try:
                p.produce(topic, payload, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
    p.flush(120)
    produce_s = time.perf_counter() - start
    rss_after_produce = rss_mib(args.pid)
    assert delivered[0] == args.n, f"only {delivered[0]} of {args.n} acknowledged"

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "e2e-unused",
        "enable.auto.commit": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
    })
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    start = time.perf_counter()
    while got < args.n:
        msgs = c.consume(10_000, timeout=5)
        if not msgs:
            raise SystemExit(f"consumer stalled at {got}")
        for m in msgs:
            if m.error() is None:
                got += 1
    consume_s = time.perf_counter() - start
    c.close()
    mb = args.n * args.size / 1e6
    print(f"records: {args.n} x {args.size} B, acks={args.acks}, 1 partition, confluent-kafka")
    print(f"produce: {args.n / produce_s:,.0f} msg/s, {mb / produce_s:,.1f} MB/s ({produce_s:.2f} s)")
    print(f"consume: {args.n / consume_s:,.0f} msg/s, {mb / consume_s:,.1f} MB/s ({consume_s:.2f} s)")
    if args.pid:
        print(f"broker RSS: {rss_after_produce:.1f} MiB after produce, {rss_mib(args.pid):.1f} MiB after consume")


if __name__ == "__main__":
    main()
