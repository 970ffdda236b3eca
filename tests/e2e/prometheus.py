"""A real Prometheus (Debian's /usr/bin/prometheus) for tests, and a tiny static exporter.

`PrometheusProcess` writes a configuration with a 1 s scrape interval and file_sd targets
(labels included), or the `scrape_configs` it is given instead, starts Prometheus on a free port
of the loopback (or of `host`) with a temporary storage dir, waits until it is ready, and stops
it. `stop()` then `start()` restarts it on the same port and storage, which the "Prometheus goes
away during analysis" scenario needs.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import yaml

from tests.server.process import free_port

BINARY = os.environ.get("MODELROLLOUT_PROMETHEUS", "/usr/bin/prometheus")


@dataclass(frozen=True)
class ScrapeTarget:
    """A scrape target `host:port` with the labels Prometheus attaches to its series."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


class PrometheusProcess:
    def __init__(
        self,
        workdir: Path,
        targets: Iterable[ScrapeTarget] = (),
        *,
        scrape_interval: str = "1s",
        web_config: Mapping[str, Any] | None = None,
        tls: bool = False,
        host: str = "127.0.0.1",
        scrape_configs: Sequence[Mapping[str, Any]] | None = None,
        binary: str = BINARY,
    ) -> None:
        """`scrape_configs` replaces the file_sd job (`targets` then unused); `host` is the
        address to listen on; `binary` another Prometheus than Debian's."""
        self.workdir = workdir
        self.binary = binary
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(host)
        self.scrape_interval = scrape_interval
        self.web_config = web_config
        self.tls = tls
        self.host = host
        self.scrape_configs = scrape_configs
        self.username: str | None = None
        self.password: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "prometheus.log"
        self.set_targets(targets)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def set_targets(self, targets: Iterable[ScrapeTarget]) -> None:
        """Replace the file_sd targets (atomically; Prometheus watches the file)."""
        groups = [{"targets": [t.address], "labels": dict(t.labels)} for t in targets]
        tmp = self.workdir / "targets.json.tmp"
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.workdir / "targets.json")

    def _write_config(self) -> list[str]:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": "models",
                    # The model server's own `revision` label wins over the target's.
                    "honor_labels": True,
                    "file_sd_configs": [
                        {"files": [str(self.workdir / "targets.json")], "refresh_interval": "1s"}
                    ],
                }
            ]
            if self.scrape_configs is None
            else [dict(c) for c in self.scrape_configs],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        extra = []
        if self.web_config is not None:
            (self.workdir / "web.yml").write_text(yaml.safe_dump(dict(self.web_config)))
            extra.append(f"--web.config.file={self.workdir / 'web.yml'}")
        return extra

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            return
        extra = self._write_config()
        log = self._log.open("ab")
        self._proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--storage.tsdb.retention.time=2h",
                "--log.level=warn",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"prometheus exited: {self._log.read_text()[-2000:]}")
            if self._ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus not ready in {timeout}s: {self._log.read_text()[-2000:]}")

    def _open(self, path: str, timeout: float) -> Any:
        """GET `path` with this instance's credentials and TLS settings (a context manager)."""
        request = urllib.request.Request(f"{self.url}{path}")
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        context = ssl._create_unverified_context() if self.tls else None
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    def _ready(self) -> bool:
        try:
            with self._open("/-/ready", timeout=1) as r:
                return int(r.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash (`start()` brings it back on the same port and storage)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted, nothing is answered until `thaw()`."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def wait_for(
        self, promql: str, timeout: float = 30.0, min_series: int = 1
    ) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least `min_series` series (test setup)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.instant(promql)
            if len(result) >= min_series or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def instant(self, promql: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": promql})
        with self._open(f"/api/v1/query?{query}", timeout=5) as r:
            body = json.loads(r.read())
        return list(body["data"]["result"])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A scrape cut off by Prometheus' timeout (broken pipe) is not worth a traceback.
        pass


class _TextServer:
    """A loopback HTTP server (a scrape target) answering GET with `body(path)`; None is 404."""

    def __init__(self, body: Callable[[str], str | None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                text = body(self.path)
                if text is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class StaticExporter(_TextServer):
    """Serves a settable Prometheus text exposition on a loopback port (a scrape target)."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        super().__init__(lambda _path: self.text)


@dataclass
class SyntheticRevision:
    """Traffic of one revision as the model server's metric contract would show it."""

    namespace: str
    name: str
    revision: str
    rps: float = 20.0
    error_fraction: float = 0.0
    latency_seconds: float = 0.01
    classes: Mapping[str, float] = field(default_factory=lambda: {"0": 0.5, "1": 0.5})


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class SyntheticExporter(_TextServer):
    """One HTTP server, one path per revision (`__metrics_path__` in its target).

    Counters grow with wall-clock time at the revision's current rates; rates may be changed at
    any time (counters stay monotonic), so tests can degrade a revision mid-analysis.
    """

    def __init__(self, revisions: Iterable[SyntheticRevision]) -> None:
        self.revisions = list(revisions)
        self._lock = threading.Lock()
        now = time.monotonic()
        self._last = [now] * len(self.revisions)
        self._acc: list[dict[str, float]] = [{} for _ in self.revisions]
        super().__init__(self._body)

    def _body(self, path: str) -> str | None:
        try:
            return self.render(int(path.strip("/").split("/")[1]))
        except (IndexError, ValueError):
            return None

    def targets(self) -> list[ScrapeTarget]:
        return [
            ScrapeTarget(
                self.address,
                {
                    "__metrics_path__": f"/t/{i}",
                    "namespace": r.namespace,
                    "name": r.name,
                    "revision": r.revision,
                },
            )
            for i, r in enumerate(self.revisions)
        ]

    def update(self, index: int, **changes: Any) -> None:
        with self._lock:
            self._advance(index)
            for k, v in changes.items():
                setattr(self.revisions[index], k, v)

    def _advance(self, index: int) -> None:
        now = time.monotonic()
        dt = now - self._last[index]
        self._last[index] = now
        r, acc = self.revisions[index], self._acc[index]
        total = r.rps * dt
        acc["failure"] = acc.get("failure", 0.0) + total * r.error_fraction
        acc["success"] = acc.get("success", 0.0) + total * (1 - r.error_fraction)
        acc["count"] = acc.get("count", 0.0) + total
        acc["sum"] = acc.get("sum", 0.0) + total * r.latency_seconds
        for le in LATENCY_BUCKETS:
            if r.latency_seconds <= le:
                acc[f"le{le}"] = acc.get(f"le{le}", 0.0) + total
        for cls, fraction in r.classes.items():
            acc[f"class{cls}"] = acc.get(f"class{cls}", 0.0) + total * fraction

    def render(self, index: int) -> str:
        with self._lock:
            self._advance(index)
            r, acc = self.revisions[index], dict(self._acc[index])
        lbl = f'model="m",version="1",revision="{r.revision}"'
        lines = [
            "# TYPE model_infer_request_success_total counter",
            f"model_infer_request_success_total{{{lbl}}} {acc['success']}",
            "# TYPE model_infer_request_failure_total counter",
            f"model_infer_request_failure_total{{{lbl}}} {acc['failure']}",
            "# TYPE model_infer_request_duration_seconds histogram",
        ]
        for le in LATENCY_BUCKETS:
            count = acc.get(f"le{le}", 0.0)
            lines.append(f'model_infer_request_duration_seconds_bucket{{{lbl},le="{le}"}} {count}')
        lines += [
            f'model_infer_request_duration_seconds_bucket{{{lbl},le="+Inf"}} {acc["count"]}',
            f"model_infer_request_duration_seconds_sum{{{lbl}}} {acc['sum']}",
            f"model_infer_request_duration_seconds_count{{{lbl}}} {acc['count']}",
            "# TYPE model_prediction_class_total counter",
        ]
        for key, value in acc.items():
            if key.startswith("class"):
                lines.append(f'model_prediction_class_total{{{lbl},class="{key[5:]}"}} {value}')
        return "\n".join(lines) + "\n"
