"""kcat adapter (Debian's kcat 1.7.1 / librdkafka 2.0.2), driven as a subprocess.
kcat sets partition, headers and compression per run, not per message, and cannot set
timestamps or report produced offsets: produce() runs once per partition, with the fixed
header set, and returns None; the read-back check covers offsets and content."""
import json
import re
import subprocess

from ..data import KEY_DELIM, Rec, fixed_headers
from ..group_member import Member
from . import CALL_TIMEOUT, ClientError


class KcatClient:
    name = "kcat"
    timestamps = False
    header_mode = "fixed"
    produce_offsets = False
    manual_commit = False
    static_membership = True
    cooperative = False
    kip848 = False

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def _run(self, args, stdin=None, timeout=CALL_TIMEOUT):
        cmd = ["kcat", "-b", self.bootstrap, "-X", "socket.timeout.ms=15000"] + args
        try:
            r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClientError(f"timed out after {timeout}s: {' '.join(cmd[:12])}")
        err = r.stderr.decode(errors="replace").strip()
        if r.returncode != 0:
            raise ClientError(f"exit {r.returncode}: {err[-1500:]}")
        return r.stdout, err

    def create_topic(self, topic, partitions):
        # kcat has no admin API: the topic is auto-created by the broker (num.partitions=3 in
        # the suite's broker config) when kcat first produces to it.
        self._run(["-P", "-t", topic, "-K", KEY_DELIM], stdin=b"create" + KEY_DELIM.encode() + b"x\n")
        return "auto"

    def metadata(self, topic):
        out, _ = self._run(["-L", "-J", "-t", topic], timeout=30)
        md = json.loads(out)
        topics = [t for t in md.get("topics", []) if t.get("topic") == topic]
        if len(topics) != 1:
            raise ClientError(f"topic {topic} not in kcat -L output")
        if topics[0].get("error"):
            raise ClientError(f"kcat -L: {topics[0]['error']}")
        return {p["partition"]: p["leader"] for p in topics[0]["partitions"]}

    def produce(self, topic, msgs, compression=None, idempotent=False):
        want = fixed_headers()
        for m in msgs:
            if m.headers != want or m.timestamp is not None:
                raise ClientError("kcat can only produce the fixed header set without timestamps")
        hargs = []
        for k, v in want:
            hargs += ["-H", f"{k}={v.decode()}"]
        extra = ["-z", compression] if compression else []
        if idempotent:
            extra += ["-X", "enable.idempotence=true"]
        for part in sorted({m.partition for m in msgs}):
            lines = b"".join(m.key + KEY_DELIM.encode() + m.value + b"\n" for m in msgs if m.partition == part)
            _, err = self._run(["-P", "-t", topic, "-p", str(part), "-K", KEY_DELIM, "-X", "acks=all"]
                               + hargs + extra, stdin=lines)
            # kcat's own reports ("% Delivery failed for message: ...", "% ERROR: ...") fail
            # the call; librdkafka's log lines ("%3|<time>|FAIL|...") and its transient
            # errors about a broker that is down (retried by the client) do not.
            transient = ("Local: Broker transport failure", "Local: All broker connections are down")
            reported = [line for line in err.splitlines() if not re.match(r"%\d\|", line)
                        and not any(t in line for t in transient)]
            if any("fail" in line.lower() or "error" in line.lower() for line in reported):
                raise ClientError(f"kcat reported: {reported[-5:]}")
        return None

    def consume(self, topic, partition, start, count, timeout=60):
        out, _ = self._run(["-C", "-t", topic, "-p", str(partition), "-o", str(start), "-c", str(count),
                            "-e", "-J", "-q", "-X", "fetch.wait.max.ms=100"], timeout=timeout)
        recs = []
        for line in out.decode().splitlines():
            if not line.strip():
                continue
            j = json.loads(line)
            h = j.get("headers") or []
            headers = [(h[i], None if h[i + 1] is None else h[i + 1].encode()) for i in range(0, len(h), 2)]
            key = j.get("key")
            val = j.get("payload")
            recs.append(Rec(j["partition"], j["offset"], None if key is None else key.encode(),
                            None if val is None else val.encode(), headers, j["ts"]))
        return recs

    def _query(self, topic, partition, ts):
        out, _ = self._run(["-Q", "-t", f"{topic}:{partition}:{ts}"], timeout=30)
        m = re.search(rb"\[\s*%d\s*\]\s+offset\s+(-?\d+)" % partition, out)
        if not m:
            raise ClientError(f"unexpected kcat -Q output: {out[:300]!r}")
        return int(m.group(1))

    def offsets(self, topic, partition, timestamps=()):
        # kcat -Q sends ListOffsets with the given timestamp: -2 = earliest, -1 = latest.
        lo = self._query(topic, partition, -2)
        hi = self._query(topic, partition, -1)
        by_ts = []
        for ts in timestamps:
            o = self._query(topic, partition, ts)
            by_ts.append(None if o < 0 else o)
        return lo, hi, by_ts

    def group_member(self, name, group, topic, partitions, auto_commit=1, max_records=None,
                     session_ms=None, heartbeat_ms=None, instance_id=None):
        """kcat -G (balanced consumer, librdkafka's auto-commit; kcat cannot commit on demand).
        max_records = -c: kcat exits after that many messages, committing on the way out."""
        if not auto_commit:
            raise ClientError("kcat has no manual commit")
        argv = ["kcat", "-b", self.bootstrap, "-G", group, "-J", "-u", "-X", "auto.offset.reset=earliest",
                "-X", "socket.timeout.ms=15000"]
        for k, v in (("session.timeout.ms", session_ms), ("heartbeat.interval.ms", heartbeat_ms),
                     ("group.instance.id", instance_id)):
            if v is not None:
                argv += ["-X", f"{k}={v}"]
        if max_records:
            argv += ["-c", str(max_records)]
        return Member(name, argv + [topic], kind="kcat")
