"""Go adapters: franz-go (kgo + kadm) and sarama, both in one binary built from compat-tests/go
(`compat-go <lib> <bootstrap> <command> key=value...`, the protocol of CompatClient.java; see
compat-tests/go/main.go). Each call is one process; JSON lines on stdout."""
import base64
import json
import os
import subprocess

from ..data import Rec
from ..group_member import Member
from . import CALL_TIMEOUT, ClientError


def _b64(b):
    return "-" if b is None else base64.b64encode(b).decode()


def _unb64(s):
    return None if s is None else base64.b64decode(s)


class GoClient:
    lib = None                 # the binary's first argument
    timestamps = True
    header_mode = "full"       # null header values round-trip (both encode a nil []byte as -1)
    produce_offsets = True
    # Group capabilities read by compat/group_scenarios.py (both libraries commit on command and
    # have static members; the subclasses say which protocols they speak).
    manual_commit = True
    static_membership = True
    cooperative = False
    kip848 = False

    def __init__(self, bootstrap, go_dir):
        self.bootstrap = bootstrap
        self.binary = os.path.join(go_dir, "bin", "compat-go")
        if not os.access(self.binary, os.X_OK):
            raise ClientError(f"{self.binary} not built (run scripts/install-deps.sh)")

    def _argv(self, cmd, opts):
        return [self.binary, self.lib, self.bootstrap, cmd] + [f"{k}={v}" for k, v in opts.items()
                                                              if v is not None]

    def _run(self, cmd, opts, stdin=None, timeout=CALL_TIMEOUT):
        try:
            r = subprocess.run(self._argv(cmd, opts), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClientError(f"{self.name} {cmd} timed out after {timeout}s")
        lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
        if r.returncode != 0:
            errs = [l["error"] for l in lines if "error" in l]
            detail = f"first error: {errs[0]} ({len(errs)} failed)" if errs else ""
            raise ClientError(f"{self.name} {cmd} exit {r.returncode}: {detail} "
                              f"{r.stderr.decode(errors='replace')[-1500:]}")
        return lines

    def create_topic(self, topic, partitions):
        out = self._run("create", {"topic": topic, "partitions": partitions})
        if out != [{"created": True}]:
            raise ClientError(f"unexpected create output {out}")
        return "created"

    def metadata(self, topic):
        return {l["partition"]: l["leader"] for l in self._run("metadata", {"topic": topic})}

    def produce(self, topic, msgs, compression=None, idempotent=False):
        lines = []
        for m in msgs:
            hs = ",".join(base64.b64encode(k.encode()).decode()
                          + ("" if v is None else ":" + base64.b64encode(v).decode())
                          for k, v in m.headers)
            ts = "-" if m.timestamp is None else str(m.timestamp)
            lines.append(f"{m.partition}\t{ts}\t{_b64(m.key)}\t{_b64(m.value)}\t{hs}\n")
        opts = {"topic": topic, "compression": compression, "idempotent": 1 if idempotent else 0}
        out = self._run("produce", opts, stdin="".join(lines).encode())
        if len(out) != len(msgs) or [l["i"] for l in out] != list(range(len(msgs))):
            raise ClientError(f"{self.name} produce printed {len(out)} results for {len(msgs)} messages")
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
        """A subscribed group member in its own process (compat-go `group`)."""
        return Member(name, self._argv("group", dict(group=group, topic=topic, partitions=partitions, **opts)))


class FranzGoClient(GoClient):
    """franz-go: kgo's producer and group consumer, kadm for the admin side. Classic groups use
    the range balancer (franz-go's own default is cooperative-sticky) unless a scenario asks for
    cooperative-sticky; `protocol=consumer` is kgo.ServerSideBalancer (KIP-848)."""
    name = "franz-go"
    lib = "franz-go"
    cooperative = True
    kip848 = True


class SaramaClient(GoClient):
    """sarama: AsyncProducer, Consumer, ConsumerGroup (range by default, cooperative-sticky on
    request), ClusterAdmin. No KIP-848 consumer."""
    name = "sarama"
    lib = "sarama"
    cooperative = True
    kip848 = False
