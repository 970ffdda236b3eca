"""Shadow traffic from the stable's server: an exact share of requests copied to a candidate's
server, its answers compared with the stable's own per request, the caller never waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelrollout.server.app import ServerState
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.loading import ModelSource, describe
from modelrollout.server.metrics import ServerMetrics
from modelrollout.server.shadow import QUEUE_SIZE, SENDERS, Shadow, agreement, parse_config

X, Y = make_classification(n_samples=300, n_features=4, n_informative=2, random_state=3)
CLASSIFIER = LogisticRegression().fit(X, Y)

Factory = Callable[..., Any]


def state(revision: str, faults: FaultConfig | None = None, estimator: Any = CLASSIFIER) -> Any:
    s = ServerState(
        "m", "1", ServerMetrics("m", "1", revision), Faults(faults or FaultConfig()), 1 << 20
    )
    s.set_model(describe(estimator, ModelSource(uri="memory"), "d" * 64))
    return s


def body(rows: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": list(rows.shape),
                        "data": rows.tolist()}]}  # fmt: skip


def shadow_samples(metrics: ServerMetrics) -> dict[tuple[str, str], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, s.labels.get("result", "")): s.value
        for f in text_string_to_metric_families(text)
        if f.name.startswith("model_shadow")
        for s in f.samples
        if s.labels.get("revision") == "cand"
    }


async def until(what: str, probe: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for a condition (the senders work in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def mirrored(client_for: Factory, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    shadows: list[Shadow] = []

    async def make(candidate: ServerState, percent: float) -> tuple[Any, ServerState, Path]:
        cand_client = await client_for(candidate)
        config = tmp_path / "shadow.json"
        url = str(cand_client.make_url("")).rstrip("/")
        config.write_text(json.dumps({"target": url, "percent": percent, "revision": "cand"}))
        stable = state("stable")
        stable.shadow = Shadow(str(config), "m", stable.metrics.shadow)
        await stable.shadow.start()
        shadows.append(stable.shadow)
        return await client_for(stable), stable, config

    yield make
    for shadow in shadows:
        await shadow.stop()


async def test_an_exact_share_is_compared_and_a_twin_agrees_on_every_row(
    mirrored: Callable[..., Any],
) -> None:
    client, stable, _ = await mirrored(state("cand"), 25)
    for i in range(40):
        assert (await client.post("/v2/models/m/infer", json=body(X[i : i + 2]))).status == 200
    await until("10 compared", lambda: shadow_samples(stable.metrics).get(
        ("model_shadow_requests_total", "compared")) == 10)  # fmt: skip
    got = shadow_samples(stable.metrics)
    # Both revisions label the comparison: the candidate judged, the stable that compared.
    assert 'model_shadow_rows_total{model="m",revision="cand",stable_revision="stable"} 20.0' in (
        stable.metrics.exposition().decode()
    )
    assert got[("model_shadow_rows_total", "")] == 20
    assert got[("model_shadow_agreed_rows_total", "")] == 20
    assert got[("model_shadow_proba_abs_diff_total", "")] == 0.0
    assert got[("model_shadow_latency_seconds_count", "")] == 10
    # The stable's own request counter counts only the callers' requests.
    text = stable.metrics.exposition().decode()
    success = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "model_infer_request_success_total"
    ]
    assert success == [40.0]


async def test_a_candidate_that_disagrees_is_measured_per_row(
    mirrored: Callable[..., Any],
) -> None:
    shifted = state("cand", FaultConfig(prediction_shift=0.9))
    client, stable, _ = await mirrored(shifted, 100)
    rows = X[:50]
    assert (await client.post("/v2/models/m/infer", json=body(rows))).status == 200
    await until("compared", lambda: shadow_samples(stable.metrics).get(
        ("model_shadow_rows_total", "")) == 50)  # fmt: skip
    got = shadow_samples(stable.metrics)
    mine = CLASSIFIER.predict(rows)
    theirs = np.argmax(CLASSIFIER.predict_proba(rows) * 0.1 + np.array([0, 0.9]), axis=1)
    assert got[("model_shadow_agreed_rows_total", "")] == int((mine == theirs).sum()) < 50
    assert got[("model_shadow_proba_abs_diff_total", "")] > 0


async def test_the_caller_never_waits_and_a_full_queue_drops_and_counts(
    mirrored: Callable[..., Any],
) -> None:
    slow = state("cand", FaultConfig(latency_ms=60_000))  # answers after the test is over
    client, stable, _ = await mirrored(slow, 100)
    n = SENDERS + QUEUE_SIZE + 20
    for i in range(n):
        assert (await client.post("/v2/models/m/infer", json=body(X[i : i + 1]))).status == 200
    got = shadow_samples(stable.metrics)
    assert got[("model_shadow_requests_total", "dropped")] >= 20
    assert got.get(("model_shadow_requests_total", "compared"), 0) == 0


async def test_the_share_follows_the_file_and_a_bad_file_mirrors_nothing(
    mirrored: Callable[..., Any],
) -> None:
    client, stable, config = await mirrored(state("cand"), 0)
    for i in range(10):
        await client.post("/v2/models/m/infer", json=body(X[i : i + 1]))
    assert shadow_samples(stable.metrics) == {}
    doc = json.loads(config.read_text())
    config.write_text(json.dumps({**doc, "percent": 100}))
    assert stable.shadow is not None

    async def mirrors() -> bool:
        await client.post("/v2/models/m/infer", json=body(X[:1]))
        return bool(shadow_samples(stable.metrics))

    for _ in range(200):  # the file is re-read at most once a second
        if await mirrors():
            break
        await asyncio.sleep(0.02)
    assert stable.shadow.config is not None and stable.shadow.config.percent == 100
    config.write_text("{not json")
    shadow = stable.shadow
    await until("the bad file dropped", lambda: shadow.current() is None)


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"percent": 5, "revision": "r"}, "target"),
        ({"target": "ftp://x", "percent": 5, "revision": "r"}, "target"),
        ({"target": "http://x", "percent": 150, "revision": "r"}, "between 0 and 100"),
        ({"target": "http://x", "percent": True, "revision": "r"}, "number"),
        ({"target": "http://x", "percent": 5}, "revision"),
    ],
)
def test_a_bad_config_is_refused_with_the_reason(doc: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_config(json.dumps(doc))


def test_regressors_compare_absolute_and_relative_differences() -> None:
    mine = {"predict": np.array([10.0, -2.0])}
    theirs = {"predict": np.array([11.0, -2.0])}
    a = agreement(mine, theirs)
    assert (a.rows, a.value_rows, a.agreed) == (2, 2, 1)
    assert a.abs_diff == pytest.approx(1.0) and a.rel_diff == pytest.approx(0.1)
    assert agreement(mine, {}).rows == 0  # no comparable answer: nothing counted
