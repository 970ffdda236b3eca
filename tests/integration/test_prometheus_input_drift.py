"""Input drift against the reference profile: real model-server processes given the profile that
modelrollout-profile wrote from the training data, a real Prometheus, the operator's analysis.

One server gets inputs drawn like the training data, another the same with one feature moved;
inputDrift passes the first and fails the second, naming the moved feature first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.api import AnalysisSpec, MetricResult, Verdict
from modelrollout.profile.__main__ import main as profile_main
from tests.e2e.prometheus import PrometheusProcess, ScrapeTarget
from tests.server.process import ServerProcess

NS = "ml"
COLUMNS = ["amount", "age", "items"]


def draw(rng: np.random.Generator, rows: int, moved: bool) -> np.ndarray[Any, Any]:
    x = np.column_stack(
        [rng.normal(50, 10, rows), rng.normal(40, 12, rows), rng.integers(1, 6, rows)]
    )
    if moved:
        x[:, 0] += 25.0  # amounts grew: 2.5 standard deviations
    return x


class Sender(threading.Thread):
    def __init__(self, targets: list[tuple[ServerProcess, bool]]) -> None:
        super().__init__(daemon=True)
        self.targets = targets
        self.stopped = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        rng = np.random.default_rng(1)
        with httpx.Client(timeout=5) as http:
            while not self.stopped.is_set():
                for server, moved in self.targets:
                    rows = draw(rng, 10, moved)
                    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [10, 3],
                                        "data": rows.tolist()}]}  # fmt: skip
                    resp = http.post(f"{server.url}/v2/models/model/infer", json=body)
                    if resp.status_code != 200:
                        self.failures.append(resp.text)
                self.stopped.wait(0.05)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    tmp = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(0)
    train = pd.DataFrame(draw(rng, 3000, moved=False), columns=COLUMNS)
    label = (train["amount"] + rng.normal(0, 5, 3000) > 50).astype(int)
    skops.io.dump(LogisticRegression().fit(train.to_numpy(), label), tmp / "model.skops")
    train.assign(label=label).to_csv(tmp / "train.csv", index=False)
    code = profile_main(
        [
            "--data", str(tmp / "train.csv"), "--target", "label",
            "--model", str(tmp / "model.skops"), "--out", str(tmp / "profile.json"),
        ]
    )  # fmt: skip
    assert code == 0
    servers = []
    for revision in ("steady", "moved"):
        args = ["--uri", str(tmp / "model.skops"), "--revision", revision,
                "--profile-uri", str(tmp / "profile.json")]  # fmt: skip
        server = ServerProcess(args, tmp / f"{revision}.log").start()
        assert server.wait_loaded() == 200, server.log()
        servers.append(server)
    sender = Sender([(servers[0], False), (servers[1], True)])
    targets = [
        ScrapeTarget(f"127.0.0.1:{s.port}", {"namespace": NS, "name": "fraud"}) for s in servers
    ]
    try:
        with PrometheusProcess(tmp / "prom", targets) as p:
            sender.start()
            ready = "count_over_time(model_input_bin_total[10s]) >= 6"
            assert p.wait_for(ready, timeout=90, min_series=2)
            yield p
    finally:
        sender.stopped.set()
        sender.join(10)
        for server in servers:
            server.stop()
    assert sender.failures == []


async def measure(address: str, revision: str, **metric: Any) -> MetricResult:
    spec = AnalysisSpec.model_validate(
        {
            "interval": "10s",
            "prometheus": {"address": address},
            "metrics": [{"name": "inputs", "builtin": "inputDrift", "max": 0.2, **metric}],
        }
    )
    runner = AnalysisRunner()
    try:
        [result] = await runner.measure(spec, NS, "fraud", revision, None)
        return result
    finally:
        await runner.aclose()


async def test_inputs_like_the_training_data_pass(prom: PrometheusProcess) -> None:
    r = await measure(prom.url, "steady")
    assert r.verdict is Verdict.SUCCESSFUL, r
    assert r.value is not None and r.value < 0.2


async def test_a_moved_feature_fails_and_is_named_first(prom: PrometheusProcess) -> None:
    r = await measure(prom.url, "moved")
    assert r.verdict is Verdict.FAILED, r
    assert r.message.startswith("psi by feature: amount "), r.message
    js = await measure(prom.url, "moved", drift={"method": "jensenShannon"}, max=0.3)
    assert js.verdict is Verdict.FAILED and js.message.startswith(
        "jensenShannon by feature: amount"
    )


async def test_a_server_without_a_profile_is_no_data(prom: PrometheusProcess) -> None:
    r = await measure(prom.url, "no-such-revision")
    assert r.verdict is Verdict.INCONCLUSIVE
    assert "--profile-uri" in r.message
