"""A real ``modelrollout-server`` process for tests (also usable by e2e tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

SERVER_BIN = Path(sys.executable).with_name("modelrollout-server")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """Starts the server on 127.0.0.1:<free port>; stops it (SIGTERM, then SIGKILL) on exit.

    ``args`` are command-line flags after ``--host/--port``; ``env`` adds MODELROLLOUT_*
    variables. The server's log goes to ``log_path``.
    """

    def __init__(
        self,
        args: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._args = args
        self._env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        cmd = [str(SERVER_BIN), "--host", "127.0.0.1", "--port", str(self.port), *self._args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self._env}
            )
        self.wait_live()
        return self

    def wait_live(self, timeout: float = 60.0) -> None:
        self.poll("/v2/health/live", lambda r: r.status_code == 200, timeout)

    def wait_loaded(self, timeout: float = 60.0) -> int:
        """Wait until the model loaded or failed to; returns /v2/health/ready's status."""

        def settled(_: httpx.Response) -> bool:
            text = self.log()
            return "loaded from" in text or "not served" in text

        self.poll("/v2/health/live", settled, timeout)
        return httpx.get(self.url + "/v2/health/ready").status_code

    def poll(self, path: str, done: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                resp = httpx.get(self.url + path, timeout=2.0)
                if callable(done) and done(resp):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server at {self.url} not settled after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def counter(self, name: str, **labels: str) -> float:
        """A sample of the server's own /metrics, summed over its series with these labels."""
        total = 0.0
        for family in text_string_to_metric_families(httpx.get(self.url + "/metrics").text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
