#!/usr/bin/env python3
"""gregor's client-compatibility suite: starts ONE gregor broker (free port, temp data dir),
runs the same scenarios with each client (confluent-kafka, kafka-python, kcat, rskafka, Java
kafka-clients 4.x, franz-go, sarama, KafkaJS and @confluentinc/kafka-javascript; see
compat-tests/README.md), prints a client x scenario matrix and closes with the line
`N passed, N failed`.
Exit status 0 only if every cell passed.

usage: compat-tests/run_compat.py [--broker target/release/gregor] [--clients a,b] [--scenarios x,y]
                                  [--matrix-file FILE]
       compat-tests/run_compat.py --combine OUT RUN.json...   (several runs' matrices as one)
"""
import argparse
import json
import os
import shutil
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compat.broker import Broker  # noqa: E402
from compat.clients import ClientError  # noqa: E402
from compat.group_scenarios import GROUP_SCENARIOS  # noqa: E402
from compat.scenarios import SCENARIOS, NotApplicable  # noqa: E402

# Restarts stay last: they bounce the shared broker.
ALL_SCENARIOS = ([s for s in SCENARIOS if not s[0].startswith("restart")] + GROUP_SCENARIOS
                 + [s for s in SCENARIOS if s[0].startswith("restart")])

CELL_TIMEOUT = 300  # seconds for one client x scenario cell


class CellTimeout(Exception):
    pass


def _alarm(_sig, _frame):
    raise CellTimeout(f"cell exceeded {CELL_TIMEOUT}s")


def make_clients(bootstrap, names, bin_dir):
    """Adapters for the requested clients; a client that cannot even be set up fails all its cells.
    bin_dir: the broker binary's directory, where `cargo build --release --workspace` also puts
    compat-tests/rust-client's rskafka-compat."""
    from compat.clients.confluent import ConfluentClient
    from compat.clients.goclients import FranzGoClient, SaramaClient
    from compat.clients.java import JavaClient
    from compat.clients.kafkapython import KafkaPythonClient
    from compat.clients.kcat import KcatClient
    from compat.clients.rskafka import RskafkaClient
    from compat.clients.nodeclients import ConfluentJSClient, KafkaJSClient
    node_dir = os.path.join(HERE, "node")
    makers = {
        "confluent-kafka": lambda: ConfluentClient(bootstrap),
        "kafka-python": lambda: KafkaPythonClient(bootstrap),
        "kcat": lambda: KcatClient(bootstrap),
        "java": lambda: JavaClient(bootstrap, os.path.join(HERE, "java")),
        "franz-go": lambda: FranzGoClient(bootstrap, os.path.join(HERE, "go")),
        "sarama": lambda: SaramaClient(bootstrap, os.path.join(HERE, "go")),
        "rskafka": lambda: RskafkaClient(bootstrap, os.path.join(bin_dir, "rskafka-compat")),
        "kafkajs": lambda: KafkaJSClient(bootstrap, node_dir),
        "confluent-js": lambda: ConfluentJSClient(bootstrap, node_dir),
    }
    clients, broken = [], {}
    for n in names:
        try:
            clients.append(makers[n]())
        except Exception as e:  # noqa: BLE001
            broken[n] = f"setup failed: {e}"
    return clients, broken


def run_record(binary, client_names, cols, results, summary):
    """One run's matrix as plain data (what --matrix-file keeps as JSON for --combine)."""
    return {"broker": binary, "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "summary": summary,
            "clients": client_names, "scenarios": cols,
            "cells": {n: {c: list(results[(n, c)]) for c in cols} for n in client_names}}


def write_matrix_file(path, runs):
    """The matrix of one or more runs as one Markdown table (rows: scenario, columns: client,
    which fits a page better than the printed form), then every cell's time and note; and the
    runs as JSON beside it (FILE with .json), for --combine."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    clients = [n for r in runs for n in r["clients"]]
    cols = []
    for r in runs:
        cols += [c for c in r["scenarios"] if c not in cols]
    cell = {(n, c): v for r in runs for n, row in r["cells"].items() for c, v in row.items()}
    counts = {k: sum(1 for v in cell.values() if v[0] == k) for k in ("PASS", "FAIL", "n/a")}
    with open(path, "w") as f:
        f.write(f"# Client compatibility matrix\n\n**{len(clients)} clients: {counts['PASS']} passed, "
                f"{counts['FAIL']} failed, {counts['n/a']} not applicable**\n\n")
        for r in runs:
            f.write(f"- {r['when']}, broker `{r['broker']}`, {', '.join(r['clients'])}: {r['summary']}\n")
        f.write("\n| scenario | " + " | ".join(clients) + " |\n")
        f.write("|---|" + "---|" * len(clients) + "\n")
        for c in cols:
            f.write(f"| {c} | " + " | ".join(cell.get((n, c), ["-"])[0] for n in clients) + " |\n")
        f.write("\n## Cells\n\n")
        for n in clients:
            for c in cols:
                if (n, c) in cell:
                    status, detail, secs = cell[(n, c)]
                    first = detail.splitlines()[0] if detail else ""
                    f.write(f"- {n} / {c}: {status} ({secs:.1f} s) {first}\n")
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(runs, f, indent=1)
    return counts


def combine(out, inputs):
    """--combine OUT A.json B.json ...: the runs of several suites (each on its own broker) as
    one matrix; exit status 1 if any cell failed or an input is missing."""
    runs = []
    for path in inputs:
        try:
            with open(path) as f:
                runs += json.load(f)
        except (OSError, ValueError) as e:
            print(f"combine: {path}: {e}")
            return 1
    counts = write_matrix_file(out, runs)
    with open(out) as f:
        print(f.read().split("\n## Cells")[0])
    print(f"matrix of {sum(len(r['clients']) for r in runs)} clients written to {out}")
    return 1 if counts["FAIL"] else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(HERE, "..", "target", "release", "gregor"))
    ap.add_argument("--clients", default="confluent-kafka,kafka-python,kcat,rskafka,java,franz-go,sarama,kafkajs,confluent-js")
    ap.add_argument("--scenarios", default=",".join(n for n, _ in ALL_SCENARIOS))
    ap.add_argument("--matrix-file", help="also write the matrix and every cell's note to FILE "
                    "(Markdown), and the run as JSON beside it (FILE with .json)")
    ap.add_argument("--combine", nargs="+", metavar=("OUT", "RUN_JSON"),
                    help="run nothing: write the runs of earlier --matrix-file JSONs as one matrix to OUT")
    args = ap.parse_args()
    if args.combine:
        if len(args.combine) < 2:
            ap.error("--combine OUT RUN_JSON...")
        return combine(args.combine[0], args.combine[1:])
    client_names = args.clients.split(",")
    wanted = args.scenarios.split(",")
    unknown = set(wanted) - {n for n, _ in ALL_SCENARIOS}
    if unknown:
        ap.error(f"unknown scenarios {sorted(unknown)}")
    scenarios = [(n, f) for n, f in ALL_SCENARIOS if n in wanted]

    signal.signal(signal.SIGALRM, _alarm)
    # group.initial.rebalance.delay.ms 500 (Kafka's default 3000) keeps the group cells short.
    # KIP-848 members get the same session timeout and heartbeat interval as the classic ones.
    broker = Broker(args.broker, extra_overrides=["num.partitions=3", "group.initial.rebalance.delay.ms=500",
                                                  "group.consumer.session.timeout.ms=6000",
                                                  "group.consumer.heartbeat.interval.ms=1000"])
    results = {}   # (client, scenario) -> (status, detail, seconds)
    started = time.monotonic()
    try:
        broker.start()
        print(f"broker: {broker.binary} on {broker.bootstrap}, data {broker.data_dir}", flush=True)
        clients, broken = make_clients(broker.bootstrap, client_names, os.path.dirname(broker.binary))
        ctx = {"broker": broker, "clients": clients}
        for sname, fn in scenarios:
            for name in client_names:
                if name in broken:
                    results[(name, sname)] = ("FAIL", broken[name], 0.0)
                    continue
                client = next(c for c in clients if c.name == name)
                t = time.monotonic()
                signal.alarm(CELL_TIMEOUT)
                try:
                    note = fn(ctx, client)
                    status, detail = "PASS", note or ""
                except NotApplicable as e:
                    status, detail = "n/a", str(e)
                except (AssertionError, ClientError, CellTimeout) as e:
                    status, detail = "FAIL", f"{type(e).__name__}: {e}"
                except Exception as e:  # noqa: BLE001  (a client library raising is a failure too)
                    status, detail = "FAIL", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"
                finally:
                    signal.alarm(0)
                if not broker.alive():
                    status = "FAIL"
                    detail += f"\n    broker process died (exit {broker.proc.returncode}); restarting it"
                    broker.start()
                dt = time.monotonic() - t
                results[(name, sname)] = (status, detail, dt)
                print(f"[{status}] {name:15s} {sname:20s} {dt:6.1f}s  {detail.splitlines()[0] if detail else ''}",
                      flush=True)
    except Exception as e:  # noqa: BLE001  (broker failed to start, ...)
        print(f"suite aborted: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
    finally:
        signal.alarm(0)
        try:
            broker.stop()
        except Exception as e:  # noqa: BLE001
            print(f"stopping broker: {e}")
        if broker.proc and broker.proc.poll() is None:
            broker.proc.kill()

    # Cells never run (suite aborted) count as failures, never as passes.
    for sname, _ in scenarios:
        for name in client_names:
            results.setdefault((name, sname), ("FAIL", "not run (suite aborted)", 0.0))

    failed = [(k, v) for k, v in results.items() if v[0] == "FAIL"]
    if failed:
        print("\n=== failures ===")
        not_run = [k for k, v in failed if v[1].startswith("not run")]
        for (name, sname), (_, detail, _) in failed:
            if (name, sname) not in not_run:
                print(f"--- {name} / {sname}:\n    {detail}")
        if not_run:
            print(f"--- {len(not_run)} cells not run because the suite aborted (counted as failed)")
        print("\n=== broker log (tail) ===")
        print(broker.log_tail())

    width = max(len(n) for n in client_names) + 2
    cols = [n for n, _ in scenarios]
    print("\n=== compat matrix (rows: client; compression columns: row client writes, next client reads) ===")
    cw = {c: max(15, len(c)) for c in cols}
    print(" " * width + " ".join(f"{c:>{cw[c]}s}" for c in cols))
    for name in client_names:
        print(f"{name:<{width}}" + " ".join(f"{results[(name, c)][0]:>{cw[c]}s}" for c in cols))
    passed = sum(1 for v in results.values() if v[0] == "PASS")
    skipped = sum(1 for v in results.values() if v[0] == "n/a")
    if failed:
        print(f"compat suite took {time.monotonic() - started:.0f}s; broker data and log kept in {broker.workdir}")
    else:
        shutil.rmtree(broker.workdir, ignore_errors=True)
        print(f"compat suite took {time.monotonic() - started:.0f}s")
    line = f"{passed} passed, {len(failed)} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    if args.matrix_file:
        write_matrix_file(args.matrix_file, [run_record(broker.binary, client_names, cols, results, line)])
        print(f"matrix written to {args.matrix_file}")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
