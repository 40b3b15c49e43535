"""A running consumer-group member process, seen from the driver: starts the client's member
process (compat/group_worker.py, CompatClient `group`, or kcat -G), collects its events
(assignment changes, records, command replies) with arrival times in background threads, and
sends it commands (commit / committed / close), or kills it with SIGKILL.

kcat speaks no JSON protocol: its records come as `-J` lines on stdout and its rebalances as
"% Group G rebalanced (memberid M): assigned: t [0], t [3]" lines on stderr; `close` is SIGTERM
(kcat then closes the consumer: LeaveGroup and, with auto-commit, a final commit)."""
import base64
import json
import os
import re
import signal
import subprocess
import threading
import time

from .clients import ClientError

_KCAT_REBALANCE = re.compile(r"% Group \S+ rebalanced \(memberid [^)]*\): (assigned|revoked): ?(.*)")


def _unb64(s):
    return None if s is None else base64.b64decode(s)


class Member:
    def __init__(self, name, argv, kind="json"):
        self.name = name
        self.kind = kind
        self.events = []          # (monotonic time, event dict)
        self.stderr_tail = []
        self.cond = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.threads = [threading.Thread(target=self._read_stdout, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self.threads:
            t.start()

    # ------------------------------------------------------------------ readers
    def _add(self, ev):
        with self.cond:
            self.events.append((time.monotonic(), ev))
            self.cond.notify_all()

    def _read_stdout(self):
        for line in self.proc.stdout:
            line = line.decode(errors="replace").strip()
            if not line:
                continue
            try:
                j = json.loads(line)
            except ValueError:
                self._add({"ev": "error", "msg": f"unparsable output line {line[:200]!r}"})
                continue
            if self.kind == "kcat":
                key, val = j.get("key"), j.get("payload")
                self._add({"ev": "rec", "p": j["partition"], "o": j["offset"],
                           "k": None if key is None else key.encode(),
                           "v": None if val is None else val.encode()})
            elif j.get("ev") == "rec":
                j["k"], j["v"] = _unb64(j["k"]), _unb64(j["v"])
                self._add(j)
            else:
                self._add(j)
        self._add({"ev": "exit"})

    def _read_stderr(self):
        # COMPAT_MEMBER_LOG_DIR=dir keeps each member's whole stderr (client debug logs) there.
        log_dir = os.environ.get("COMPAT_MEMBER_LOG_DIR")
        log = open(os.path.join(log_dir, re.sub(r"[^\w.#'-]", "_", self.name) + ".stderr"), "a") if log_dir else None
        for line in self.proc.stderr:
            line = line.decode(errors="replace").rstrip()
            if log:
                log.write(f"{time.time():.3f} {line}\n")
            self.stderr_tail = (self.stderr_tail + [line])[-30:]
            if self.kind == "kcat":
                m = _KCAT_REBALANCE.search(line)
                if m:
                    parts = sorted(int(x) for x in re.findall(r"\[(\d+)\]", m.group(2)))
                    self._add({"ev": m.group(1), "parts": parts})
                elif "ERROR" in line or "FAIL" in line:
                    self._add({"ev": "error", "msg": line})

    # ------------------------------------------------------------------ queries
    def snapshot(self):
        with self.cond:
            return list(self.events)

    def records(self):
        return [e for _, e in self.snapshot() if e["ev"] == "rec"]

    def rebalances(self):
        """(time, event) for every assigned/revoked callback, in order."""
        return [(t, e) for t, e in self.snapshot() if e["ev"] in ("assigned", "revoked")]

    def assignment(self):
        """The partitions the member holds after its callbacks, or None when it holds none.
        Callbacks are applied incrementally, which fits both protocols: eager (revoked = all
        partitions, then assigned = the new full set) and KIP-848 / cooperative (revoked and
        assigned name only the partitions that move)."""
        held = set()
        for _, e in self.rebalances():
            if e["ev"] == "assigned":
                held |= set(e["parts"])
            else:
                held -= set(e["parts"])
        return tuple(sorted(held)) or None

    def errors(self):
        return [e["msg"] for _, e in self.snapshot() if e["ev"] == "error"]

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                r = pred()
                if r:
                    return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: timed out after {timeout}s waiting for {what}; "
                                         f"rebalances {[e for _, e in self.rebalances()]}, "
                                         f"errors {self.errors()[:3]}, stderr {self.stderr_tail[-5:]}")
                self.cond.wait(min(left, 0.2))

    def exited(self):
        return self.proc.poll() is not None

    # ------------------------------------------------------------------ commands
    def send(self, cmd):
        if self.kind == "kcat":
            raise ClientError(f"kcat takes no command {cmd}")
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, cmd, reply, timeout=40):
        """Sends `cmd` and returns the next `reply` event after it."""
        n = len(self.snapshot())
        self.send(cmd)
        return self.wait_for(lambda: next((e for _, e in self.events[n:] if e["ev"] in (reply, "error")), None),
                             timeout, f"reply {reply} to {cmd}")

    def close(self, timeout=40):
        """Clean close: the consumer's close() (LeaveGroup for dynamic members, commit in
        auto-commit mode); the process must exit 0."""
        if self.exited():
            return self.proc.returncode
        if self.kind == "kcat":
            self.proc.send_signal(signal.SIGTERM)
        else:
            try:
                self.send("close")
            except (BrokenPipeError, OSError):
                pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.name}: did not exit within {timeout}s of a clean close")
        for t in self.threads:
            t.join(10)
        if code != 0:
            raise AssertionError(f"{self.name}: exit {code} after close; errors {self.errors()[:3]}, "
                                 f"stderr {self.stderr_tail[-8:]}")
        return code

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for t in self.threads:
            t.join(10)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
