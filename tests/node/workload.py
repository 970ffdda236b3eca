"""What the tests on the real node run and send: model files served inside the cluster,
ModelDeployment manifests, and inference requests through a Service's ClusterIP (kube-proxy)."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from pathlib import Path
from typing import Any

from tests.e2e.harness import FEATURES, X, train_model
from tests.integration.helm_chart import restricted_namespace
from tests.testenv.controlplane import ControlPlane
from tests.testenv.images import ImageArchives
from tests.testenv.node import RealNode

# `make cluster-up`'s showcase serves its model as these tests do.
from tests.testenv.showcase import apply, model_deployment, serve_models
from tests.testenv.waiting import eventually

__all__ = [
    "Load",
    "apply",
    "cluster_ip",
    "failing",
    "faulty",
    "infer",
    "model_deployment",
    "model_files",
    "promote",
    "published_models",
    "serve_models",
    "server_pods",
    "versions_served",
    "wait_proxied",
]

RECENT = 200  # answers kept for Load.recent
SERVER_PORT = 8080  # the model server's HTTP port, on its pods and its Services


def infer_body(row: int) -> bytes:
    """An inference request for row `row` of the harness' data."""
    return json.dumps(
        {"inputs": [{"name": "x", "shape": [1, FEATURES], "datatype": "FP64",
                     "data": [float(v) for v in X[row][:FEATURES]]}]}
    ).encode()  # fmt: skip


INFER_BODY = infer_body(0)


def model_files(tmp: Path) -> dict[str, bytes]:
    """Two versions of a model (the same weights: a response's model_version says which
    revision served it)."""
    model = train_model(tmp / "model.skops").read_bytes()
    return {"v1.skops": model, "v2.skops": model}


def published_models(
    cp: ControlPlane, ns: str, images: ImageArchives, tmp_path: Path
) -> tuple[str, dict[str, str]]:
    """The model files served from a namespace of their own (another test's file server may
    hold other bytes under the same names): their base URL and sha256 digests."""
    restricted_namespace(cp, ns)
    files = model_files(tmp_path)
    base = serve_models(cp, ns, images.server_image, files)
    return base, {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


def faulty(**faults: float) -> dict[str, Any]:
    """The pod template that injects the model server's faults (its `--fault-*` options, by
    their names with underscores: error_rate=0.5, error_after_seconds=20, prediction_shift=0.6)."""
    env = [{"name": f"MODELROLLOUT_FAULT_{key.upper()}", "value": str(value)}
           for key, value in faults.items() if value]  # fmt: skip
    return {"spec": {"containers": [{"name": "server", "env": env}]}}


def failing(rate: float, after_s: float = 0.0) -> dict[str, Any]:
    """Pods that fail a share `rate` of their inference requests with 500, from `after_s`
    seconds after they started."""
    return faulty(error_rate=rate, error_after_seconds=after_s)


def promote(cp: ControlPlane, ns: str, name: str) -> None:
    """The kubectl plugin's promote, as a user runs it."""
    plugin = Path(sys.executable).parent / "kubectl-modelrollout"
    subprocess.run([str(plugin), "promote", name, "-n", ns], env=cp.env(), check=True,
                   capture_output=True, timeout=60)  # fmt: skip


def cluster_ip(cp: ControlPlane, ns: str, service: str) -> str:
    got = json.loads(cp.kubectl("get", "service", service, "-n", ns, "-o", "json").stdout)
    address: str = got["spec"]["clusterIP"]
    return address


def infer(
    address: str,
    name: str,
    timeout: float = 10,
    port: int = SERVER_PORT,
    body: bytes = INFER_BODY,
    host: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """One inference request on a new connection (kube-proxy balances connections): the HTTP
    status and the decoded body. `host`: the Host header (a gateway's route hostname)."""
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if host is not None:
        headers["Host"] = host
    request = urllib.request.Request(
        f"http://{address}:{port}/v2/models/{name}/infer", data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"error": error.read().decode(errors="replace")}


def versions_served(
    address: str, name: str, requests: int, port: int = SERVER_PORT
) -> Counter[str]:
    """Which model version answered each of `requests` inference requests to `address`."""
    seen: Counter[str] = Counter()
    for _ in range(requests):
        status, body = infer(address, name, port=port)
        assert status == 200, (status, body)
        seen[body["model_version"]] += 1
    return seen


def server_pods(cp: ControlPlane, ns: str, name: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(
        cp.kubectl(
            "get", "pods", "-n", ns, "-l", f"modelrollout.io/name={name}", "-o", "json"
        ).stdout
    )["items"]
    return pods


def wait_proxied(node: RealNode, ns: str, name: str, status: dict[str, Any]) -> None:
    """Until kube-proxy balances the `<name>` Service over exactly the ready pods the status
    counts (it follows the EndpointSlices a moment later)."""
    ready = (status.get("readyReplicas") or 0) + (status.get("canaryReadyReplicas") or 0)
    if status.get("canaryRevision") == status.get("stableRevision"):
        ready = status.get("readyReplicas") or 0
    eventually(lambda: node.proxied_endpoints(ns, name, "http") == ready,
               f"kube-proxy balancing over {ready} pods", timeout=60)  # fmt: skip


class Load:
    """Inference requests to `address` from `clients` threads, one new connection each
    (kube-proxy balances connections), until the context ends; counts what answered:
    "200 v1" (status and model version), "500", "error ConnectionRefusedError"..., and when
    each kind of answer came first and last."""

    def __init__(
        self,
        address: str,
        name: str,
        clients: int = 1,
        port: int = SERVER_PORT,
        host: str | None = None,
    ) -> None:
        self.address, self.name, self.port, self.host = address, name, port, host
        self._seen: Counter[str] = Counter()
        self._recent: deque[str] = deque(maxlen=RECENT)
        # Rows drawn at random from the harness' data: predictions vary as in production.
        self._rng = random.Random(7)
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    row = self._rng.randrange(len(X))
                status, body = infer(self.address, self.name, timeout=5, port=self.port,
                                     body=infer_body(row), host=self.host)  # fmt: skip
                key = f"{status} v{body['model_version']}" if status == 200 else str(status)
            except (OSError, ValueError) as error:  # refused, reset, timed out: a failure
                key = f"error {type(getattr(error, 'reason', error)).__name__}"
            with self._lock:
                self._seen[key] += 1
                self._recent.append(key)
                self._first.setdefault(key, time.monotonic())
                self._last[key] = time.monotonic()
            self._stop.wait(0.02)  # at most about 50 requests/s per client: CPU for the node

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._seen)

    def recent(self, answers: int = RECENT) -> Counter[str]:
        """The last `answers` answers (at most RECENT), counted."""
        with self._lock:
            return Counter(list(self._recent)[-answers:])

    def only_recently(self, keys: tuple[str, ...], answers: int = 30) -> bool:
        """The last `answers` answers all came under `keys`."""
        seen = self.recent(answers)
        return seen.total() == answers and set(seen) <= set(keys)

    def answered(self, key: str) -> tuple[float, float] | None:
        """The monotonic times of the first and the last answer counted under `key`."""
        with self._lock:
            return (self._first[key], self._last[key]) if key in self._first else None

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
