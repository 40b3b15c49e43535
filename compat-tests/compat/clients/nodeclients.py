"""The JavaScript clients: KafkaJS 2.x (`kafkajs`) and Confluent's librdkafka-based
@confluentinc/kafka-javascript (`confluent-js`), both through compat-tests/node/compat_client.js,
which speaks CompatClient.java's protocol (JSON lines on stdout; see the top of that file).
How each library does each command, and why a capability is what it is, is written at the top of
node/kafkajs_client.js and node/confluent_client.js."""
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


class NodeClient:
    lib = None
    timestamps = True
    produce_offsets = True
    manual_commit = True

    def __init__(self, bootstrap, node_dir):
        self.bootstrap = bootstrap
        self.script = os.path.join(node_dir, "compat_client.js")
        if not os.path.isdir(os.path.join(node_dir, "node_modules")):
            raise ClientError(f"{node_dir}/node_modules missing (run scripts/install-deps.sh)")
        r = subprocess.run(["node", "-e", f"require({json.dumps(self.module)})"], cwd=node_dir,
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise ClientError(f"node cannot load {self.module}: {r.stderr.decode(errors='replace')[-800:]}")

    def _argv(self, cmd, opts):
        return ["node", self.script, self.lib, self.bootstrap, cmd] + [f"{k}={v}" for k, v in opts.items()
                                                                     if v is not None]

    def _run(self, cmd, opts, stdin=None, timeout=CALL_TIMEOUT):
        try:
            r = subprocess.run(self._argv(cmd, opts), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClientError(f"{self.name} {cmd} timed out after {timeout}s")
        lines = []
        for line in r.stdout.decode().splitlines():
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    raise ClientError(f"{self.name} {cmd}: unparsable output line {line[:200]!r}")
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
            hs = ",".join(base64.b64encode(k.encode()).decode() + ("" if v is None else ":" + base64.b64encode(v).decode())
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
        """A subscribed group member in its own node process (compat_client.js `group`)."""
        return Member(name, self._argv("group", dict(group=group, topic=topic, partitions=partitions, **opts)))


class KafkaJSClient(NodeClient):
    name = "kafkajs"
    lib = "kafkajs"
    module = "kafkajs"
    # Null header values: KafkaJS's record encoder throws on them (Buffer.byteLength(null)).
    header_mode = "nonull"
    # Per-message offsets are derived from each partition's baseOffset: exact, since KafkaJS
    # sends the messages of one send() for one partition as one record batch (kafkajs_client.js).
    produce_offsets = True
    static_membership = False   # no group.instance.id in KafkaJS
    cooperative = False         # only its own eager round-robin assigner
    kip848 = False


class ConfluentJSClient(NodeClient):
    name = "confluent-js"
    lib = "confluent-js"
    module = "@confluentinc/kafka-javascript"
    # Null header values: the binding rejects them ("Header value must be a string or buffer").
    header_mode = "nonull"
    static_membership = True
    cooperative = True          # librdkafka's cooperative-sticky assignor
    kip848 = True               # librdkafka's group.protocol=consumer
