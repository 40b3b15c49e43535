"""Starts and stops the gregor broker under test: one process on a free loopback port with a
temporary data directory; restartable on the same port and data (graceful or kill -9); its
stderr goes to a file that the driver prints when something failed."""
import os
import signal
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, binary: str, extra_overrides=()):
        self.binary = os.path.abspath(binary)
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="gregor-compat-")
        self.data_dir = os.path.join(self.workdir, "data")
        self.log_path = os.path.join(self.workdir, "broker.log")
        self.extra = list(extra_overrides)
        self.proc = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=30.0):
        args = [self.binary,
                "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "--override", f"log.dirs={self.data_dir}",
                # Brokers of several suites may run at once: no metrics endpoint (default
                # port 9644) unless extra_overrides set metrics.port.
                "--override", "metrics.port=0"]
        for kv in self.extra:
            args += ["--override", kv]
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"  # plain log text
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode} during startup")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"broker did not listen on {self.port} within {timeout}s")

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Stops the broker; returns its exit code. SIGTERM that is not honoured in time
        is followed by SIGKILL and reported as an error."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError(f"broker ignored signal {sig} for {timeout}s (killed)")

    def restart(self, sig=signal.SIGTERM):
        code = self.stop(sig)
        if sig == signal.SIGTERM and code != 0:
            raise RuntimeError(f"broker exited with code {code} after SIGTERM (expected 0)")
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, max_bytes=20000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                return f.read().decode(errors="replace")
        except OSError:
            return "(no broker log)"
