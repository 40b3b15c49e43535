"""Java kafka-clients 4.x adapter: runs compat-tests/java's CompatClient as a subprocess and
reads its JSON lines (see CompatClient.java for the protocol)."""
import base64
import glob
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


class JavaClient:
    name = "java"
    timestamps = True
    header_mode = "full"
    produce_offsets = True
    manual_commit = True
    static_membership = True
    cooperative = True
    kip848 = True

    def __init__(self, bootstrap, java_dir):
        self.bootstrap = bootstrap
        classes = os.path.join(java_dir, "target", "classes")
        jars = sorted(glob.glob(os.path.join(java_dir, "target", "dependency", "*.jar")))
        if not os.path.exists(os.path.join(classes, "CompatClient.class")) or not jars:
            raise ClientError(f"CompatClient not built in {java_dir} (run scripts/install-deps.sh)")
        self.cp = ":".join([classes] + jars)

    def _run(self, cmd, opts, stdin=None, timeout=CALL_TIMEOUT):
        args = ["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx1g",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", self.cp,
                "CompatClient", self.bootstrap, cmd] + [f"{k}={v}" for k, v in opts.items()]
        try:
            r = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClientError(f"java {cmd} timed out after {timeout}s")
        lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
        if r.returncode != 0:
            errs = [l["error"] for l in lines if "error" in l]
            detail = f"first error: {errs[0]} ({len(errs)} failed)" if errs else ""
            raise ClientError(f"java {cmd} exit {r.returncode}: {detail} {r.stderr.decode(errors='replace')[-1500:]}")
        return lines

    def create_topic(self, topic, partitions):
        out = self._run("create", {"topic": topic, "partitions": partitions})
        if out != [{"created": True}]:
            raise ClientError(f"unexpected create output {out}")
        return "created"

    def metadata(self, topic):
        return {l["partition"]: l["leader"] for l in self._run("metadata", {"topic": topic})}

    def produce(self, topic, msgs, compression=None, idempotent=True):
        # The Java producer is idempotent by default; `idempotent` is accepted for symmetry.
        lines = []
        for m in msgs:
            hs = ",".join(base64.b64encode(k.encode()).decode() + ("" if v is None else ":" + base64.b64encode(v).decode())
                          for k, v in m.headers)
            ts = "-" if m.timestamp is None else str(m.timestamp)
            lines.append(f"{m.partition}\t{ts}\t{_b64(m.key)}\t{_b64(m.value)}\t{hs}\n")
        opts = {"topic": topic}
        if compression:
            opts["compression"] = compression
        out = self._run("produce", opts, stdin="".join(lines).encode())
        if len(out) != len(msgs) or [l["i"] for l in out] != list(range(len(msgs))):
            raise ClientError(f"java produce printed {len(out)} results for {len(msgs)} messages")
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
        """A subscribed KafkaConsumer in its own JVM (CompatClient `group`, GroupMember.java)."""
        level = os.environ.get("COMPAT_JAVA_LOG_LEVEL", "warn")  # e.g. info: the coordinator's join log
        argv = ["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m",
                f"-Dorg.slf4j.simpleLogger.defaultLogLevel={level}", "-cp", self.cp,
                "CompatClient", self.bootstrap, "group", f"group={group}", f"topic={topic}",
                f"partitions={partitions}"] + [f"{k}={v}" for k, v in opts.items() if v is not None]
        return Member(name, argv)
