"""rskafka adapter: InfluxData's pure-Rust Kafka client (crates.io `rskafka`, its own
implementation of the protocol, not librdkafka), through compat-tests/rust-client
(`rskafka-compat`, a member of the root Cargo workspace, built by
`cargo build --release --workspace` into target/release). It speaks CompatClient.java's
protocol (see compat-tests/rust-client/src/main.rs).

What rskafka cannot do, by design (its README: "No support for offset tracking, consumer groups,
transactions"):
- consumer groups: no JoinGroup/SyncGroup/Heartbeat/OffsetCommit, so every group cell is n/a;
- an idempotent producer: its produce requests carry no producer id (InitProducerId is never
  sent), so idempotent-1k is n/a;
- header lists: a record's headers are a map from name to bytes, so it can neither produce nor
  read back duplicate header names or null header values. Its decoder even rejects a fetched
  record that has a null header value (the whole fetch fails), so it is given, as writer and as
  reader, only messages whose headers have distinct names in name order (header_mode "unique").
"""
import base64
import json
import os
import subprocess

from ..data import Rec
from . import CALL_TIMEOUT, ClientError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _b64(b):
    return "-" if b is None else base64.b64encode(b).decode()


def _unb64(s):
    return None if s is None else base64.b64decode(s)


class RskafkaClient:
    name = "rskafka"
    timestamps = True
    header_mode = "unique"
    # No consumer groups at all (`unsupported` below): every group capability is absent.
    manual_commit = static_membership = cooperative = kip848 = False
    produce_offsets = True
    unsupported = {
        "idempotent": "rskafka has no idempotent producer (its produce requests carry no producer id)",
        "groups": "rskafka has no consumer groups (no JoinGroup/SyncGroup, no offset commits)",
    }

    def __init__(self, bootstrap, binary=None):
        self.bootstrap = bootstrap
        # run_compat.py passes the one beside the broker binary (the same target/release).
        self.binary = binary or os.path.join(REPO, "target", "release", "rskafka-compat")
        if not os.access(self.binary, os.X_OK):
            raise ClientError(f"{self.binary} not built (cargo build --release --workspace)")

    def _run(self, cmd, opts, stdin=None, timeout=CALL_TIMEOUT):
        args = [self.binary, self.bootstrap, cmd] + [f"{k}={v}" for k, v in opts.items()]
        try:
            r = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClientError(f"rskafka {cmd} timed out after {timeout}s")
        lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
        if r.returncode != 0:
            errs = [l["error"] for l in lines if "error" in l]
            detail = f"first error: {errs[0]} ({len(errs)} failed)" if errs else ""
            raise ClientError(f"rskafka {cmd} exit {r.returncode}: {detail} {r.stderr.decode(errors='replace')[-1500:]}")
        return lines

    def create_topic(self, topic, partitions):
        out = self._run("create", {"topic": topic, "partitions": partitions})
        if out != [{"created": True}]:
            raise ClientError(f"unexpected create output {out}")
        return "created"

    def metadata(self, topic):
        return {l["partition"]: l["leader"] for l in self._run("metadata", {"topic": topic})}

    def produce(self, topic, msgs, compression=None, idempotent=False):
        if idempotent:
            raise ClientError(self.unsupported["idempotent"])
        lines = []
        for i, m in enumerate(msgs):
            names = [k for k, _ in m.headers]
            if len(set(names)) != len(names) or any(v is None for _, v in m.headers):
                raise ClientError(f"message {i}: rskafka cannot produce duplicate header names or null "
                                  f"header values: {m.headers}")
            hs = ",".join(base64.b64encode(k.encode()).decode() + ":" + base64.b64encode(v).decode()
                          for k, v in m.headers)
            ts = "-" if m.timestamp is None else str(m.timestamp)
            lines.append(f"{m.partition}\t{ts}\t{_b64(m.key)}\t{_b64(m.value)}\t{hs}\n")
        opts = {"topic": topic}
        if compression:
            opts["compression"] = compression
        out = self._run("produce", opts, stdin="".join(lines).encode())
        if len(out) != len(msgs) or [l["i"] for l in out] != list(range(len(msgs))):
            raise ClientError(f"rskafka produce printed {len(out)} results for {len(msgs)} messages")
        return [(l["partition"], l["offset"]) for l in out]

    def consume(self, topic, partition, start, count, timeout=60):
        out = self._run("consume", {"topic": topic, "partition": partition, "start": start, "count": count,
                                    "timeout_ms": timeout * 1000}, timeout=timeout + 30)
        return [Rec(l["partition"], l["offset"], _unb64(l["key"]), _unb64(l["value"]),
                    [(k, _unb64(v)) for k, v in l["headers"]], l["timestamp"]) for l in out]

    def offsets(self, topic, partition, timestamps=()):
        opts = {"topic": topic, "partition": partition}
        if timestamps:
            opts["ts"] = ",".join(str(t) for t in timestamps)
        out = self._run("offsets", opts)
        if len(out) != 1:
            raise ClientError(f"unexpected offsets output {out}")
        return out[0]["earliest"], out[0]["latest"], out[0]["by_ts"]

    def group_member(self, name, group, topic, partitions, **opts):
        raise ClientError(self.unsupported["groups"])
