"""End-to-end pieces: a model artifact, model-server processes per revision, a load generator
that follows the weights the operator wrote to the HTTPRoute, and the rollout environment.

kwok runs no containers, so the test runs one real `modelrollout-server` per revision itself and
points Prometheus at it with target labels namespace/name/revision, as a Kubernetes service
discovery with relabelling would.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import skops.io
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelrollout.api import ModelDeploymentSpec
from modelrollout.core.revision import compute_revision
from modelrollout.kube import CONFIGMAPS, HTTPROUTES, SERVICES, Kube, make_api_client
from modelrollout.profile.build import build_profile
from tests.e2e.prometheus import PrometheusProcess, ScrapeTarget
from tests.integration.operator_process import Operator, apply, events, settled_on, status
from tests.server.process import ServerProcess
from tests.testenv.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
HTTPROUTE_CRD = REPO / "tests" / "integration" / "crds" / "httproute.yaml"
MD_CRD = REPO / "manifests" / "crds" / "modelrollout.io_modeldeployments.yaml"
NAME = "fraud"
ROUTE = "fraud-route"
FEATURES = 4
X, Y = make_classification(n_samples=600, n_features=FEATURES, n_informative=3, n_redundant=0,
                           random_state=1)  # fmt: skip


def train_model(path: Path) -> Path:
    skops.io.dump(LogisticRegression(max_iter=1000).fit(X, Y), path)
    return path


def write_profile(path: Path, model: Path) -> Path:
    """The reference profile of the training data and the model's predictions on it."""
    estimator = skops.io.load(model)
    profile = build_profile(pd.DataFrame(X), estimator.predict(X))
    path.write_text(profile.model_dump_json())
    return path


def revision_of(manifest: dict[str, Any]) -> str:
    return compute_revision(ModelDeploymentSpec.model_validate(manifest["spec"]))


class Fleet:
    """One modelrollout-server process per revision."""

    def __init__(self, model: Path, log_dir: Path, base_args: tuple[str, ...] = ()) -> None:
        self.model = model
        self.log_dir = log_dir
        # Flags every server gets (a baseline latency); a revision's own flags come later and win.
        self.base_args = base_args
        self.servers: dict[str, ServerProcess] = {}
        self.spares: list[tuple[str, ServerProcess]] = []

    def _spawn(self, revision: str, log: str, faults: tuple[str, ...]) -> ServerProcess:
        args = ["--name", NAME, "--uri", str(self.model), "--format", "skops",
                "--revision", revision, "--version", revision,
                *self.base_args, *faults]  # fmt: skip
        server = ServerProcess(args, self.log_dir / log).start()
        server.wait_loaded()
        return server

    def start(self, revision: str, *faults: str) -> ServerProcess:
        server = self._spawn(revision, f"server-{revision}.log", faults)
        self.servers[revision] = server
        return server

    def start_spare(self, revision: str, *faults: str) -> ServerProcess:
        """A second server of the same revision (other flags), scraped but not yet sent load.

        `swap` then sends the revision's load to it at once: a degradation without the data gap
        a restart would leave in Prometheus.
        """
        server = self._spawn(revision, f"server-{revision}-spare{len(self.spares)}.log", faults)
        self.spares.append((revision, server))
        return server

    def swap(self, revision: str, server: ServerProcess) -> None:
        self.spares = [(r, s) for r, s in self.spares if s is not server]
        self.spares.append((revision, self.servers[revision]))
        self.servers[revision] = server

    def targets(self, namespace: str) -> list[ScrapeTarget]:
        return [
            ScrapeTarget(
                f"127.0.0.1:{s.port}", {"namespace": namespace, "name": NAME, "revision": r}
            )
            for r, s in [*self.servers.items(), *self.spares]
        ]

    def stop(self) -> None:
        for server in [*self.servers.values(), *(s for _, s in self.spares)]:
            server.stop()


@dataclass
class Routing:
    """What the HTTPRoute says now: revision -> weight."""

    weights: dict[str, int] = field(default_factory=dict)


def selected_revision(kube: Kube, namespace: str, service: str) -> str | None:
    """The revision a Service selects (what its endpoints would be on a real cluster)."""
    found = kube.get(SERVICES, namespace, service)
    selector = (found or {}).get("spec", {}).get("selector") or {}
    revision: str | None = selector.get("modelrollout.io/revision")
    return revision


def read_routing(kube: Kube, namespace: str) -> dict[str, int]:
    """Canary through the gateway: the HTTPRoute's backend weights, by the revision selected."""
    route = kube.get(HTTPROUTES, namespace, ROUTE)
    if route is None:
        # Never deleted in these tests: a kube-apiserver that has just restarted answers 404 for
        # custom resources until it has loaded their CRDs. A gateway keeps its last routes then.
        raise LookupError(f"HTTPRoute {namespace}/{ROUTE} not served (yet)")
    weights: dict[str, int] = {}
    for ref in route["spec"]["rules"][0].get("backendRefs", []):
        revision = selected_revision(kube, namespace, ref["name"])
        if revision:
            weights[revision] = weights.get(revision, 0) + int(ref.get("weight", 1))
    return weights


# Share of requests sent to `<name>-preview` while it selects another revision than `<name>`.
PREVIEW_SHARE = 50


def read_blue_green(kube: Kube, namespace: str) -> dict[str, int]:
    """Blue/green: clients call `<name>` (the active revision); while a preview exists, a share
    of the requests goes to `<name>-preview`, as the smoke or shadow traffic that pre-promotion
    analysis needs would on a real cluster (no production client calls the preview)."""
    active = selected_revision(kube, namespace, NAME)
    if active is None:
        return {}
    preview = selected_revision(kube, namespace, f"{NAME}-preview")
    if preview is None or preview == active:
        return {active: 100}
    return {active: 100 - PREVIEW_SHARE, preview: PREVIEW_SHARE}


RoutingReader = Callable[[Kube, str], dict[str, int]]


class LoadGenerator:
    """Sends `rps` inference requests per second, split by the weights `read` returns (default:
    the HTTPRoute's).

    Runs its own event loop in a thread; requests are fired on a fixed schedule (not one after
    another), so a slow revision does not lower the offered load. `changes` records every
    routing change seen (monotonic time, weights) for the benchmark. With `feedback_delay`, the
    truth of each answered row is reported that many seconds later, with the answer's token, to
    a revision picked by the weights as a Service would (often not the one that predicted).
    """

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        fleet: Fleet,
        rps: float,
        read: RoutingReader = read_routing,
        feedback_delay: float | None = None,
    ) -> None:
        self.kube = kube
        self.feedback_delay = feedback_delay
        # Added to every row's first feature: the world moving away from the training data.
        self.shift = 0.0
        # Feedback posts without a 200 answer (the test expects none).
        self.feedback_failed: list[str] = []
        self.read = read
        self.namespace = namespace
        self.fleet = fleet
        self.rps = rps
        self.weights: dict[str, int] = {}
        self.changes: list[tuple[float, dict[str, int]]] = []
        self.sent: dict[str, int] = {}
        # Requests without a 200 answer, per revision (a dead server, a refused connection).
        self.failed: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._rng = random.Random(7)

    def start(self) -> LoadGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def _follow_routing(self) -> None:
        while not self._stop.is_set():
            try:
                weights = await asyncio.to_thread(self.read, self.kube, self.namespace)
            except Exception:  # the API server may be busy; keep the last weights
                weights = self.weights
            if weights != self.weights:
                self.weights = weights
                self.changes.append((time.monotonic(), dict(weights)))
            await asyncio.sleep(0.1)

    def _pick(self) -> str | None:
        live = {r: w for r, w in self.weights.items() if w > 0 and r in self.fleet.servers}
        if not live:
            return None
        return self._rng.choices(list(live), weights=list(live.values()))[0]

    async def _one(self, client: httpx.AsyncClient, revision: str) -> None:
        index = self._rng.randrange(len(X))
        row = (X[index] + np.array([self.shift] + [0.0] * (FEATURES - 1))).tolist()
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, FEATURES],
                            "data": [row]}]}  # fmt: skip
        server = self.fleet.servers[revision]
        answered = False
        with suppress(httpx.HTTPError):
            response = await client.post(
                f"{server.url}/v2/models/{NAME}/infer", json=body, timeout=5
            )
            answered = response.status_code == 200
        self.sent[revision] = self.sent.get(revision, 0) + 1
        if not answered:
            self.failed[revision] = self.failed.get(revision, 0) + 1
        elif self.feedback_delay is not None:
            token = response.json()["parameters"]["feedback_token"]
            await self._report(client, token, int(Y[index]))

    async def _report(self, client: httpx.AsyncClient, token: str, truth: int) -> None:
        assert self.feedback_delay is not None
        await asyncio.sleep(self.feedback_delay)
        revision = self._pick()
        if revision is None:
            return
        server = self.fleet.servers[revision]
        item = {"token": token, "truth": [truth]}
        with suppress(httpx.HTTPError):
            response = await client.post(
                f"{server.url}/v2/models/{NAME}/feedback", json={"feedback": [item]}, timeout=5
            )
            if response.status_code != 200:
                self.feedback_failed.append(response.text)

    async def _main(self) -> None:
        follower = asyncio.create_task(self._follow_routing())
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient() as client:
            period = 1.0 / self.rps
            next_at = time.monotonic()
            while not self._stop.is_set():
                revision = self._pick()
                if revision is not None:
                    task = asyncio.create_task(self._one(client, revision))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            follower.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# Metrics the scenarios share. The first measurement comes ~4 s after the canary gets traffic, so
# an 8 s window may hold only ~80 of its requests: the server spreads injected failures evenly
# (--fault-error-rate), so 5 % is 5 % there, never a lucky draw <= 2 %. For drift, two equal
# models' class counts over 4 s (~80 a side) reach PSI ~0.17 now and then, too close to the bound.
ERRORS: dict[str, Any] = {"name": "error-rate", "builtin": "errorRate", "max": 0.02, "window": "8s"}
DRIFT: dict[str, Any] = {"name": "drift", "builtin": "predictionDrift", "max": 0.2, "window": "8s"}


# 50 %, then analysis once the candidate's traffic has filled a rate() window: measured
# earlier, a thin first window is "too little traffic", which pauses the rollout.
FIRST_STEPS: list[dict[str, Any]] = [
    {"setWeight": 50},
    {"pause": {"duration": "4s"}},
    {"analysis": {}},
]


def md_manifest(
    version: str,
    prometheus: str,
    metrics: list[dict[str, Any]],
    steps: list[dict[str, Any]] | None = None,
    strategy: dict[str, Any] | None = None,
    **analysis: Any,
) -> dict[str, Any]:
    """Version `version` of the ModelDeployment; the strategy defaults to a canary through the
    HTTPRoute with `steps` (default: FIRST_STEPS)."""
    spec_analysis = {
        "interval": "2s",
        "count": 3,
        "prometheus": {"address": prometheus, "timeout": "1s"},
        "metrics": metrics,
        "minSamples": 20,
        **analysis,
    }
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "model": {
                "name": NAME,
                "version": version,
                "uri": f"https://models.example/fraud/{version}/model.skops",
                "format": "skops",
            },
            "replicas": 1,
            "strategy": strategy
            or {
                "canary": {
                    "steps": steps or FIRST_STEPS,
                    "trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE}},
                }
            },
            "analysis": spec_analysis,
            "revisionHistoryLimit": 2,
        },
    }


def http_route(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"backendRefs": [{"name": f"{NAME}-stable", "port": 8080}]}],
        },
    }


def wait_until(what: str, probe: Any, timeout: float = 120.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@dataclass
class Env:
    """One namespace with the operator, Prometheus, model servers and load."""

    cp: ControlPlane
    namespace: str
    prom: PrometheusProcess
    fleet: Fleet
    kube: Kube
    operator: Operator
    load: LoadGenerator | None = None
    read: RoutingReader = read_routing

    def status(self) -> dict[str, Any]:
        return status(self.cp, self.namespace, NAME)

    def apply(self, manifest: dict[str, Any]) -> None:
        apply(self.cp, self.namespace, manifest)

    def add_revision(self, manifest: dict[str, Any], *faults: str) -> str:
        revision = revision_of(manifest)
        self.fleet.start(revision, *faults)
        self.prom.set_targets(self.fleet.targets(self.namespace))
        self.prom.wait_for(f'up{{revision="{revision}"}} == 1', timeout=30)
        return revision

    def healthy_on(self, revision: str) -> dict[str, Any] | None:
        st = self.status()
        return st if settled_on(st, revision) else None

    def deploy_stable(
        self,
        manifest: dict[str, Any],
        rps: float,
        read: RoutingReader = read_routing,
        feedback_delay: float | None = None,
    ) -> str:
        """Version 1 Healthy, then load that follows `read` (the HTTPRoute by default)."""
        self.read = read
        revision = self.add_revision(manifest)
        self.apply(manifest)
        wait_until("stable Healthy", lambda: self.healthy_on(revision))
        self.load = LoadGenerator(
            self.kube, self.namespace, self.fleet, rps, read, feedback_delay
        ).start()
        wait_until("load on stable", lambda: self.load and self.load.weights.get(revision))
        return revision

    def routing(self) -> dict[str, int]:
        return self.read(self.kube, self.namespace)

    def events(self) -> list[dict[str, Any]]:
        return events(self.cp, self.namespace, NAME)


class ShadowProjection:
    """What kubelet and cluster DNS do for the shadow ConfigMap on a real node: its
    `shadow.json` appears as a file in every model-server pod (here: the file every server
    process was given), and the `<name>-canary` Service name reaches the candidate's pods (here:
    the candidate's server process, by the revision the ConfigMap names)."""

    def __init__(self, kube: Kube, namespace: str, fleet: Fleet, path: Path) -> None:
        self.kube, self.namespace, self.fleet, self.path = kube, namespace, fleet, path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ShadowProjection:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        written = None
        while not self._stop.wait(0.3):
            with suppress(Exception):  # no ConfigMap yet, or the API server busy
                config_map = self.kube.get(CONFIGMAPS, self.namespace, f"{NAME}-shadow")
                config = json.loads(config_map["data"]["shadow.json"])
                server = self.fleet.servers.get(config["revision"])
                config["target"] = server.url if server is not None else config["target"]
                if config != written:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(config))
                    tmp.replace(self.path)  # atomic, as kubelet's symlink swap
                    written = config


@contextmanager
def environment(
    cp: ControlPlane, namespace: str, workdir: Path, operator: Operator | None = None
) -> Iterator[Env]:
    """operator: how the operator runs (default: a local process with the admin kubeconfig)."""
    model = train_model(workdir / "model.skops")
    profile = write_profile(workdir / "profile.json", model)
    # 20 ms baseline latency on every server: p99 lands in a well-resolved histogram bucket,
    # so "3x slower" is 60 ms against 20 ms rather than noise between sub-millisecond buckets.
    # Every server counts its inputs on the training data's profile (inputDrift).
    # Every server also mirrors what the shadow ConfigMap says (ShadowProjection writes it).
    shadow = workdir / "shadow.json"
    fleet = Fleet(
        model,
        workdir,
        ("--fault-latency-ms", "20", "--profile-uri", str(profile), "--shadow-config", str(shadow)),
    )
    prom = PrometheusProcess(workdir / "prometheus")
    api = make_api_client(str(cp.kubeconfig))
    kube = Kube(api)
    cp.kubectl("apply", "-f", "-", input=json.dumps(http_route(namespace)))
    operator = operator or Operator(cp, namespace, workdir)
    env = Env(cp, namespace, prom, fleet, kube, operator)
    projection = ShadowProjection(kube, namespace, fleet, shadow).start()
    try:
        prom.start()
        operator.start()
        yield env
    finally:
        projection.stop()
        try:
            print("final status:", json.dumps(env.status(), indent=1)[-6000:])
        except Exception as error:  # only diagnostics
            print("no final status:", error)
        if env.load is not None:
            print("requests sent per revision:", env.load.sent)
            env.load.stop()
        operator.stop()
        prom.stop()
        fleet.stop()
        api.close()
        print(operator.log()[-15000:])  # shown by pytest when the test failed
