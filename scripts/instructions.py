#!/usr/bin/env python3
"""scripts/instructions: the broker's own cost in instructions, a regression guard that noise
cannot fool.

Wall-clock benchmarks on a shared 2-core machine move by tens of percent from run to run.
Instructions counted by valgrind's callgrind do not: they depend on the binary and its
inputs, not on what else the machine is doing. So this runs the broker under callgrind and
drives it with a fixed workload (target/release/raw_load fixed-produce and fixed-consume: one
connection, one request at a time, the same batches every run; see bench/raw-load), and
counts the broker's user-space instructions for each phase on its own (callgrind_control
zeroes the counters before a phase and dumps them after it). Only the connection's task is
counted (--toggle-collect on serve_connection): from reading the frame to the last byte
written, which is the request path. Timers and other background tasks run for as long as a
phase lasts, and counting them made the figures move by several percent between runs; the
task alone repeats within half a percent. What the kernel does for the
broker (copies, sendfile, TCP) is not counted; the bench (scripts/bench) measures that.

For each workload it reports instructions per MB of record payload, per record and per
request, for produce and for two kinds of fetch, and compares them with the committed baselines in
bench/instructions-baseline.json: a figure more than 10% above its baseline fails the run
(exit 1); one more than 10% below it is reported, so that the baseline can be lowered with
--update once the gain is meant.

  scripts/instructions [--update] [--gregor PATH] [--raw-load PATH]

The broker runs with one tokio worker thread (TOKIO_WORKER_THREADS=1): with several, work
stealing between them adds a varying number of instructions to the same workload.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BASELINE = os.path.join(ROOT, "bench", "instructions-baseline.json")
TOLERANCE = 0.10

# name, record size, records per batch, batches: small batches, so that the per-request costs
# (decode, encode, the partition's append, the socket loop) show beside the per-byte ones
# (the CRC32C of each batch).
WORKLOADS = [("100 B x 100 per batch", 100, 100, 400),
             ("1 KB x 16 per batch", 1024, 16, 400)]

# The phases, in order, on each workload's topic: the produce, then two reads of everything
# it wrote: large fetches (1 MiB: sendfile, few requests) and fetches of about one batch
# each (16 KiB: the per-request cost; batches under 16 KiB are read into memory, not sent
# with sendfile).
PHASES = [("produce", "fixed-produce", []),
          ("fetch 1 MiB", "fixed-consume", ["--max-bytes", str(1 << 20)]),
          ("fetch 16 KiB", "fixed-consume", ["--max-bytes", str(16 << 10)])]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline_s=120):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"instructions: the broker exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"instructions: the broker did not open port {port} in {deadline_s} s")


def run(cmd, what, timeout=300):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"instructions: {what} failed ({out.returncode}): {out.stdout}{out.stderr[-2000:]}")
    return out.stdout


def dumped_total(out_dir, trigger):
    """The instruction total of the callgrind dump made by `callgrind_control -d trigger`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for name in os.listdir(out_dir):
            path = os.path.join(out_dir, name)
            with open(path, errors="replace") as f:
                head = f.read(4096)
            if f"desc: Trigger: dump {trigger}\n" in head:
                m = re.search(r"^summary: (\d+)$", head, re.M)
                if m:
                    return int(m.group(1))
        time.sleep(0.2)
    raise SystemExit(f"instructions: no callgrind dump for {trigger}")


def measure(gregor, raw_load, work):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    out_dir = os.path.join(work, "callgrind")
    os.makedirs(out_dir)
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/callgrind.out",
           "--toggle-collect=gregor::server::connection::serve_connection::{{closure}}",
           gregor, "--override", f"listeners=PLAINTEXT://{bootstrap}",
           "--override", f"log.dirs={work}/data", "--override", "metrics.port=0"]
    log = open(os.path.join(work, "broker.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, TOKIO_WORKER_THREADS="1"))
    figures = {}
    try:
        wait_port(port, proc)
        for i, (name, size, per_batch, batches) in enumerate(WORKLOADS):
            topic = f"instructions-{i}"
            run([gregor, "topic", "create", "--bootstrap-server", bootstrap, topic,
                 "--partitions", "1"], "topic create")
            args = ["--bootstrap", bootstrap, "--topic", topic, "--size", str(size),
                    "--batches", str(batches), "--records-per-batch", str(per_batch)]
            records = per_batch * batches
            mb = records * size / 1e6
            for j, (phase, mode, extra) in enumerate(PHASES):
                trigger = f"w{i}-p{j}"
                run(["callgrind_control", "-z", str(proc.pid)], "callgrind_control -z")
                result = json.loads(run([raw_load, mode, *args, *extra], f"raw_load {mode}").splitlines()[-1])
                if result.get("records") != records:
                    raise SystemExit(f"instructions: {mode} moved {result.get('records')} records, not {records}")
                run(["callgrind_control", "-d", trigger, str(proc.pid)], "callgrind_control -d")
                total = dumped_total(out_dir, trigger)
                figures[f"{name}, {phase}"] = {"per_mb": round(total / mb),
                                               "per_record": round(total / records, 1),
                                               "per_request": round(total / result["requests"])}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--update", action="store_true", help="write the figures as the new baselines")
    ap.add_argument("--gregor", default=os.path.join(ROOT, "target", "release", "gregor"))
    ap.add_argument("--raw-load", default=os.path.join(ROOT, "target", "release", "raw_load"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the callgrind dumps (for callgrind_annotate) and say where")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            raise SystemExit(f"instructions: {tool} not found (Debian's valgrind package)")
    work = tempfile.mkdtemp(prefix="gregor-instructions-")
    try:
        figures = measure(args.gregor, args.raw_load, work)
    finally:
        if args.keep:
            print(f"callgrind dumps (the triggers name workload and phase): {work}/callgrind")
        else:
            shutil.rmtree(work, ignore_errors=True)
    baseline = {}
    if os.path.exists(BASELINE):
        with open(BASELINE) as f:
            baseline = json.load(f)["figures"]
    failed = False
    print(f"{'workload and phase':<38}{'metric':<13}{'now':>12}{'baseline':>12}{'change':>9}")
    for key, now in figures.items():
        for metric, value in now.items():
            base = baseline.get(key, {}).get(metric)
            change = "" if not base else f"{(value - base) / base:+.1%}"
            verdict = ""
            if base and value > base * (1 + TOLERANCE):
                verdict, failed = "  GREW more than 10%", True
            elif base and value < base * (1 - TOLERANCE):
                verdict = "  shrank more than 10% (lower the baseline with --update)"
            print(f"{key:<38}{metric:<13}{value:>12,}{base or 0:>12,}{change:>9}{verdict}")
    if args.update:
        with open(BASELINE, "w") as f:
            json.dump({"about": "broker instructions (callgrind, user space) per MB of record payload, "
                                "per record and per request; written by scripts/instructions --update",
                       "figures": figures}, f, indent=2)
            f.write("\n")
        print(f"wrote {BASELINE}")
        return 0
    if not baseline:
        print(f"instructions: no baseline at {BASELINE}; run with --update")
        return 1
    missing = [k for k in baseline if k not in figures]
    if missing:
        print(f"instructions: baseline entries not measured: {missing}")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
