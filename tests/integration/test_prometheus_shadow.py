"""Shadow agreement end to end on processes: a stable model-server process (2 workers) mirrors a
share of its requests to a candidate process named in its --shadow-config file, a real
Prometheus scrapes the stable, and the operator's analysis judges shadowAgreement.

A twin candidate agrees on every row; one whose probabilities are moved to the last class
disagrees on many, and fails. The candidates' own request counters show they only ever saw the
copies: no caller got an answer from them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import skops.io
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelrollout.api import AnalysisSpec, Verdict
from modelrollout.server.shadow import SENDERS
from tests.e2e.prometheus import PrometheusProcess, ScrapeTarget
from tests.integration.measuring import measure_once
from tests.server.process import ServerProcess

NS = "ml"
X, Y = make_classification(n_samples=500, n_features=4, n_informative=3, n_redundant=0,
                           random_state=4)  # fmt: skip


class Load(threading.Thread):
    def __init__(self, servers: list[ServerProcess]) -> None:
        super().__init__(daemon=True)
        self.servers = servers
        self.stopped = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        i = 0
        with httpx.Client(timeout=5) as http:
            while not self.stopped.is_set():
                for server in self.servers:
                    rows = X[i % 400 : i % 400 + 3]
                    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [3, 4],
                                        "data": rows.tolist()}]}  # fmt: skip
                    resp = http.post(f"{server.url}/v2/models/model/infer", json=body)
                    if resp.status_code != 200:
                        self.failures.append(resp.text)
                i += 3
                self.stopped.wait(0.02)


def start(tmp: Path, revision: str, *extra: str) -> ServerProcess:
    args = ["--uri", str(tmp / "model.skops"), "--revision", revision, *extra]
    server = ServerProcess(args, tmp / f"{revision}.log").start()
    assert server.wait_loaded() == 200, server.log()
    return server


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusProcess, Any]]:
    tmp = tmp_path_factory.mktemp("shadow")
    skops.io.dump(LogisticRegression().fit(X, Y), tmp / "model.skops")
    # Each candidate's own --revision is the one the stable's config names, as the operator
    # writes it: its requests and the stable's comparisons share the series key.
    twin = start(tmp, candidate_rev("agree"))
    shifted = start(tmp, candidate_rev("disagree"), "--fault-prediction-shift", "0.8")
    stables = []
    for name, candidate in (("agree", twin), ("disagree", shifted)):
        config = tmp / f"{name}.json"
        config.write_text(
            json.dumps({"target": candidate.url, "percent": 50, "revision": candidate_rev(name)})
        )
        stables.append(
            start(tmp, f"stable-{name}", "--workers", "2", "--shadow-config", str(config))
        )
    load = Load(stables)
    targets = [
        ScrapeTarget(f"127.0.0.1:{s.port}", {"namespace": NS, "name": name})
        for pair, name in zip(
            ((stables[0], twin), (stables[1], shifted)), ("agree", "disagree"), strict=True
        )
        for s in pair
    ]
    try:
        with PrometheusProcess(tmp / "prom", targets) as p:
            load.start()
            ready = "count_over_time(model_shadow_rows_total[10s]) >= 6"
            assert len(p.wait_for(ready, timeout=90, min_series=2)) >= 2
            named = {"twin": twin, "shifted": shifted}
            named |= {f"stable-{n}": s for n, s in zip(("agree", "disagree"), stables, strict=True)}
            yield p, named
    finally:
        load.stopped.set()
        load.join(10)
        for server in [*stables, twin, shifted]:
            server.stop()
    assert load.failures == []


def candidate_rev(name: str) -> str:
    return f"cand-{name}"


def spec(address: str) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "interval": "10s",
            "prometheus": {"address": address},
            "metrics": [{"name": "agreement", "builtin": "shadowAgreement", "min": 0.95}],
        }
    )


async def test_a_twin_agrees_and_a_shifted_candidate_fails(
    prom: tuple[PrometheusProcess, Any],
) -> None:
    p, _ = prom
    agree = await measure_once(spec(p.url), NS, "agree", candidate_rev("agree"), None)
    assert agree["agreement"].verdict is Verdict.SUCCESSFUL, agree["agreement"]
    assert agree["agreement"].value == 1.0
    disagree = await measure_once(spec(p.url), NS, "disagree", candidate_rev("disagree"), None)
    assert disagree["agreement"].verdict is Verdict.FAILED, disagree["agreement"]
    assert disagree["agreement"].value is not None and disagree["agreement"].value < 0.95


def test_candidates_only_saw_the_copies(prom: tuple[PrometheusProcess, Any]) -> None:
    _, servers = prom
    for stable, candidate in (("stable-agree", "twin"), ("stable-disagree", "shifted")):
        served = servers[candidate].counter("model_infer_request_success_total")
        sent = sum(
            servers[stable].counter("model_shadow_requests_total", result=result)
            for result in ("compared", "failed")
        )
        # Read after the candidate: each request it answered is a copy the stable sent, but
        # for at most one in flight per sender and worker.
        assert 0 < served <= sent + SENDERS * 2


async def test_shadow_latency_is_the_candidate_s_as_the_stable_saw_it(
    prom: tuple[PrometheusProcess, Any],
) -> None:
    p, _ = prom
    s = AnalysisSpec.model_validate(
        {
            "interval": "10s",
            "prometheus": {"address": p.url},
            "metrics": [
                {"name": "p99", "builtin": "shadowLatencyP99", "max": 5.0},
                {"name": "tight", "builtin": "shadowLatencyP99", "max": 1e-6},
                {
                    "name": "ratio",
                    "builtin": "shadowLatencyP99",
                    "compareToStable": {"maxRatio": 1e6},
                },
            ],
        }
    )
    r = await measure_once(s, NS, "agree", candidate_rev("agree"), "stable-agree")
    assert r["p99"].verdict is Verdict.SUCCESSFUL and r["p99"].value is not None
    assert r["tight"].verdict is Verdict.FAILED  # some time passed: the value is real
    assert r["ratio"].stable_value is not None and r["ratio"].stable_value > 0
