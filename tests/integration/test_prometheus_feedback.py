"""Live accuracy and mean absolute error, judged from ground truth reported to real model-server
processes, scraped by a real Prometheus.

Each rollout has a stable and a candidate server. A client predicts on one of them and reports
the truth a moment later to the OTHER one, as a client behind one Service would (the token makes
it count for the revision that predicted). The candidate's answers are degraded with the server's
own fault flag (probability moved to the last class; an offset for the regressor).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import skops.io
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelrollout.api import AnalysisSpec, Verdict
from tests.e2e.prometheus import PrometheusProcess, ScrapeTarget
from tests.integration.measuring import measure_once
from tests.server.process import ServerProcess

NS = "ml"
X, Y = make_classification(
    n_samples=2000, n_features=6, n_informative=4, class_sep=2.0, random_state=5
)
XR, YR = make_regression(n_samples=2000, n_features=5, random_state=5)
SHIFT = 3.0  # the regressor candidate's offset: its mean absolute error


@dataclass(frozen=True)
class Pair:
    """One rollout: who predicts, who is told the truth."""

    name: str
    stable: ServerProcess
    canary: ServerProcess
    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    labelled: bool = True


class Client(threading.Thread):
    """Predicts 5 rows at a time on each server and reports the truth ~0.5 s later to the
    other server of the rollout (or never, for an unlabelled rollout)."""

    def __init__(self, pairs: list[Pair]) -> None:
        super().__init__(daemon=True)
        self.pairs = pairs
        self.stopped = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        pending: collections.deque[tuple[float, str, dict[str, Any]]] = collections.deque()
        rng = np.random.default_rng(0)
        with httpx.Client(timeout=5) as http:
            while not self.stopped.is_set():
                for pair in self.pairs:
                    for server, other in ((pair.stable, pair.canary), (pair.canary, pair.stable)):
                        rows = rng.choice(len(pair.x), 5)
                        token = self._predict(http, server, pair.x[rows])
                        if token and pair.labelled:
                            item = {"token": token, "truth": pair.y[rows].tolist()}
                            pending.append((time.monotonic() + 0.5, other.url, item))
                while pending and pending[0][0] <= time.monotonic():
                    _, url, item = pending.popleft()
                    resp = http.post(f"{url}/v2/models/model/feedback", json={"feedback": [item]})
                    if resp.status_code != 200:
                        self.errors.append(resp.text)
                self.stopped.wait(0.05)

    def _predict(self, http: httpx.Client, server: ServerProcess, rows: Any) -> str | None:
        tensor = {"name": "x", "datatype": "FP64", "shape": list(rows.shape)}
        body = {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}
        resp = http.post(f"{server.url}/v2/models/model/infer", json=body)
        if resp.status_code != 200:
            self.errors.append(resp.text)
            return None
        return str(resp.json()["parameters"]["feedback_token"])


def serve(tmp: Path, model: Path, revision: str, *extra: str) -> ServerProcess:
    args = ["--uri", str(model), "--revision", revision, "--version", "1", *extra]
    server = ServerProcess(args, tmp / f"{revision}.log").start()
    assert server.wait_loaded() == 200, server.log()
    return server


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    tmp = tmp_path_factory.mktemp("feedback")
    skops.io.dump(LogisticRegression().fit(X, Y), tmp / "classifier.skops")
    skops.io.dump(LinearRegression().fit(XR, YR), tmp / "regressor.skops")
    shift = "--fault-prediction-shift"
    servers = {
        "s1": serve(tmp, tmp / "classifier.skops", "s1"),
        "c1": serve(tmp, tmp / "classifier.skops", "c1", shift, "0.6"),
        "rs1": serve(tmp, tmp / "regressor.skops", "rs1"),
        "rc1": serve(tmp, tmp / "regressor.skops", "rc1", shift, str(SHIFT)),
        "u1": serve(tmp, tmp / "classifier.skops", "u1"),
        "u2": serve(tmp, tmp / "classifier.skops", "u2"),
    }
    pairs = [
        Pair("fraud", servers["s1"], servers["c1"], X, Y),
        Pair("spend", servers["rs1"], servers["rc1"], XR, YR),
        Pair("quiet", servers["u1"], servers["u2"], X, Y, labelled=False),
    ]
    targets = [
        ScrapeTarget(f"127.0.0.1:{server.port}", {"namespace": NS, "name": pair.name})
        for pair in pairs
        for server in (pair.stable, pair.canary)
    ]
    client = Client(pairs)
    try:
        with PrometheusProcess(tmp / "prom", targets) as p:
            client.start()
            # Enough scrapes of labels for increase() over the windows used below.
            ready = "count_over_time(model_feedback_labelled_total[10s]) >= 6"
            assert len(p.wait_for(ready, timeout=90, min_series=4)) >= 4
            yield p
    finally:
        client.stopped.set()
        client.join(10)
        for server in servers.values():
            server.stop()
    assert client.errors == []


def spec(address: str, metrics: list[dict[str, Any]], **extra: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {"interval": "10s", "prometheus": {"address": address}, "metrics": metrics, **extra}
    )


async def test_a_candidate_with_less_live_accuracy_fails_and_the_stable_passes(
    prom: PrometheusProcess,
) -> None:
    s = spec(
        prom.url,
        [
            {"name": "accuracy", "builtin": "accuracy", "min": 0.8},
            {"name": "vs-stable", "builtin": "accuracy", "compareToStable": {"minRatio": 0.95}},
        ],
    )
    r = await measure_once(s, NS, "fraud", "c1", "s1")
    assert r["accuracy"].verdict is Verdict.FAILED, r["accuracy"]
    assert r["accuracy"].value is not None and r["accuracy"].value < 0.8
    assert r["vs-stable"].verdict is Verdict.FAILED, r["vs-stable"]
    stable_accuracy = r["vs-stable"].stable_value
    assert stable_accuracy is not None and stable_accuracy > 0.9
    good = await measure_once(s, NS, "fraud", "s1", None)
    assert good["accuracy"].verdict is Verdict.SUCCESSFUL, good["accuracy"]


async def test_mean_absolute_error_of_a_regressor(prom: PrometheusProcess) -> None:
    s = spec(prom.url, [{"name": "mae", "builtin": "meanAbsoluteError", "max": 1.0}])
    r = await measure_once(s, NS, "spend", "rc1", "rs1")
    assert r["mae"].verdict is Verdict.FAILED
    assert r["mae"].value == pytest.approx(SHIFT, rel=0.01)
    good = await measure_once(s, NS, "spend", "rs1", None)
    assert good["mae"].verdict is Verdict.SUCCESSFUL
    assert good["mae"].value is not None and good["mae"].value < 1e-6


async def test_no_labels_or_too_few_are_never_a_pass(prom: PrometheusProcess) -> None:
    metrics = [{"name": "accuracy", "builtin": "accuracy", "min": 0.5}]
    unlabelled = await measure_once(spec(prom.url, metrics), NS, "quiet", "u2", "u1")
    assert unlabelled["accuracy"].verdict is Verdict.INCONCLUSIVE
    assert unlabelled["accuracy"].message == "too few labelled predictions: canary 0 (min 10)"
    strict = await measure_once(
        spec(prom.url, metrics, minSamples=1_000_000), NS, "fraud", "s1", None
    )
    assert strict["accuracy"].verdict is Verdict.INCONCLUSIVE
    assert "too few labelled predictions" in strict["accuracy"].message
