"""The adapter side of CompatClient's protocol (compat-tests/java/CompatClient.java), shared by
every client that runs as a process of its own per call: Java, the Go binary, the Node.js
script and the rskafka binary. One call is one process: `<prefix> <command> key=value...`,
messages to produce on stdin, one JSON object per line on stdout, `{"error": ...}` lines and a
non-zero exit on failure. A subclass says how to start its process (`_prefix`)."""
import base64
import json
import subprocess

from ..data import Rec
from ..group_member import Member
from . import CALL_TIMEOUT, ClientError


def b64(b):
    return "-" if b is None else base64.b64encode(b).decode()


def unb64(s):
    return None if s is None else base64.b64decode(s)


def message_line(m):
    """partition TAB timestamp|- TAB key|- TAB value|- TAB headers, where headers are
    base64(name):base64(value), or base64(name) alone for a null value, comma-separated."""
    hs = ",".join(base64.b64encode(k.encode()).decode() + ("" if v is None else ":" + b64(v))
                  for k, v in m.headers)
    ts = "-" if m.timestamp is None else str(m.timestamp)
    return f"{m.partition}\t{ts}\t{b64(m.key)}\t{b64(m.value)}\t{hs}\n"


class SubprocessClient:
    # Whether `produce` takes `idempotent=1` (Java's producer is idempotent by default).
    idempotent_option = True

    def _prefix(self):
        """The command line before `<command> key=value...`."""
        raise NotImplementedError

    def _argv(self, cmd, opts):
        return self._prefix() + [cmd] + [f"{k}={v}" for k, v in opts.items() if v is not None]

    def _run(self, cmd, opts, stdin=None, timeout=CALL_TIMEOUT):
        try:
            r = subprocess.run(self._argv(cmd, opts), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClientError(f"{self.name} {cmd} timed out after {timeout}s")
        lines = []
        for line in r.stdout.decode(errors="replace").splitlines():
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
        opts = {"topic": topic, "compression": compression}
        if idempotent and self.idempotent_option:
            opts["idempotent"] = 1
        out = self._run("produce", opts, stdin="".join(message_line(m) for m in msgs).encode())
        if len(out) != len(msgs) or [l.get("i") for l in out] != list(range(len(msgs))):
            raise ClientError(f"{self.name} produce printed {len(out)} results for {len(msgs)} messages")
        return [(l["partition"], l["offset"]) for l in out]

    def consume(self, topic, partition, start, count, timeout=60):
        out = self._run("consume", {"topic": topic, "partition": partition, "start": start, "count": count,
                                    "timeout_ms": timeout * 1000}, timeout=timeout + 30)
        return [Rec(l["partition"], l["offset"], unb64(l["key"]), unb64(l["value"]),
                    [(k, unb64(v)) for k, v in l["headers"]], l["timestamp"]) for l in out]

    def offsets(self, topic, partition, timestamps=()):
        opts = {"topic": topic, "partition": partition}
        if timestamps:
            opts["ts"] = ",".join(str(t) for t in timestamps)
        out = self._run("offsets", opts)
        if len(out) != 1:
            raise ClientError(f"unexpected offsets output {out}")
        return out[0]["earliest"], out[0]["latest"], out[0]["by_ts"]

    def group_member(self, name, group, topic, partitions, **opts):
        """A subscribed group member in its own process (the `group` command)."""
        return Member(name, self._argv("group", dict(group=group, topic=topic, partitions=partitions, **opts)))
