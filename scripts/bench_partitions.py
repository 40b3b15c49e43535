#!/usr/bin/env python3
"""Many partitions on one gregor broker (benchmark issue, "10,000 partitions" goals): creates
N topics of 10 partitions with confluent-kafka's admin client, then measures the broker's
RSS and open descriptors, the Metadata round trip for all topics (median of 5, measured at
the client, so it includes librdkafka's parsing), the clean-shutdown time, and the time
until the restarted broker answers Metadata after a clean shutdown and after kill -9.

usage: scripts/bench_partitions.py [--topics 1000] [--broker target/release/gregor]
Writes target/bench/partitions.json (a list of {workload, metric, unit, gregor}).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data, port, log):
    """Starts the broker; returns it and the seconds until it answered a Metadata request
    (the listener is bound before the logs are loaded, so a connect alone proves nothing)."""
    from confluent_kafka.admin import AdminClient
    proc = subprocess.Popen([binary, "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
                             "--override", f"log.dirs={data}"], stdout=log, stderr=log)
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            sys.exit(f"broker exited with {proc.returncode}; see its log")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.01)
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
    admin.list_topics(timeout=120)
    return proc, time.monotonic() - t0


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topics", type=int, default=1000, help="topics of 10 partitions each")
    ap.add_argument("--broker", default=os.path.join(ROOT, "target", "release", "gregor"))
    args = ap.parse_args()
    from confluent_kafka.admin import AdminClient, NewTopic

    work = tempfile.mkdtemp(prefix="gregor-partitions-")
    data = os.path.join(work, "data")
    port = free_port()
    log = open(os.path.join(work, "broker.log"), "ab")
    partitions = args.topics * 10
    name = f"{partitions} partitions"
    rows = []

    def row(metric, unit, value):
        rows.append({"workload": name, "metric": metric, "unit": unit, "gregor": round(value, 3)})
        print(f"{name:18s} {metric:40s} {value:10.2f} {unit}", flush=True)

    proc, _ = start(args.broker, data, port, log)
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    t0 = time.monotonic()
    for first in range(0, args.topics, 100):
        batch = [NewTopic(f"t{i:05d}", 10, 1) for i in range(first, min(args.topics, first + 100))]
        for fut in admin.create_topics(batch, request_timeout=120).values():
            fut.result()
    row("create (100 topics per request)", "s", time.monotonic() - t0)
    row("broker RSS", "MiB", rss_mib(proc.pid))
    row("broker open descriptors", "count", len(os.listdir(f"/proc/{proc.pid}/fd")))
    times = []
    for _ in range(5):
        t = time.monotonic()
        md = admin.list_topics(timeout=30)
        times.append(time.monotonic() - t)
        assert len(md.topics) == args.topics, f"metadata lists {len(md.topics)} topics"
    row("Metadata, all topics (client-side)", "ms", statistics.median(times) * 1000)
    del admin
    t = time.monotonic()
    proc.terminate()
    proc.wait()
    row("clean shutdown", "s", time.monotonic() - t)
    proc, up = start(args.broker, data, port, log)
    row("restart until Metadata answers, after clean shutdown", "s", up)
    row("broker RSS after restart", "MiB", rss_mib(proc.pid))
    proc.kill()
    proc.wait()
    proc, up = start(args.broker, data, port, log)
    row("restart until Metadata answers, after kill -9", "s", up)
    proc.terminate()
    proc.wait()
    out = os.path.join(ROOT, "target", "bench")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "partitions.json"), "w") as f:
        json.dump(rows, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {os.path.join(out, 'partitions.json')}")


if __name__ == "__main__":
    main()
