"""Built-in metrics, custom queries and batching measured on a real Prometheus.

A synthetic exporter plays the model server's metric contract for several revisions with known
rates, so every built-in has an expected value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.api import AnalysisSpec, MetricResult, Verdict
from tests.e2e.prometheus import PrometheusProcess, SyntheticExporter, SyntheticRevision
from tests.integration.measuring import measure_once
from tests.testenv.controlplane import free_port

NS, NAME = "ml", "fraud"
REVISIONS = [
    SyntheticRevision(NS, NAME, "stable1", rps=40.0, error_fraction=0.0, latency_seconds=0.008),
    SyntheticRevision(
        NS,
        NAME,
        "canary1",
        rps=40.0,
        error_fraction=0.1,
        latency_seconds=0.2,
        classes={"0": 0.1, "1": 0.9},
    ),
    # Another rollout, and one with almost no traffic.
    SyntheticRevision(NS, "other", "o1", rps=10.0),
    SyntheticRevision(NS, "quiet", "q1", rps=0.2),
]


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    with (
        SyntheticExporter(REVISIONS) as exporter,
        PrometheusProcess(tmp_path_factory.mktemp("prom"), exporter.targets()) as p,
    ):
        # Enough scrapes for rate() over the windows used below.
        ready = "count_over_time(model_infer_request_success_total[10s]) >= 6"
        assert len(p.wait_for(ready, timeout=60, min_series=len(REVISIONS))) == len(REVISIONS)
        yield p


def spec(address: str, metrics: list[dict[str, Any]], **extra: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {"interval": "5s", "prometheus": {"address": address}, "metrics": metrics, **extra}
    )


async def measure(
    s: AnalysisSpec, name: str = NAME, canary: str = "canary1", stable: str | None = "stable1"
) -> dict[str, MetricResult]:
    return await measure_once(s, NS, name, canary, stable)


async def test_error_rate_latency_and_request_rate(prom: PrometheusProcess) -> None:
    s = spec(
        prom.url,
        [
            {"name": "errors", "builtin": "errorRate", "max": 0.05},
            {"name": "p99", "builtin": "latencyP99", "max": 0.1},
            {"name": "rps", "builtin": "requestRate", "min": 30},
        ],
    )
    r = await measure(s)
    assert r["errors"].verdict is Verdict.FAILED
    assert r["errors"].value == pytest.approx(0.1, abs=0.02)
    assert "> max 0.05" in r["errors"].message
    assert r["p99"].verdict is Verdict.FAILED
    # All canary requests take 0.2 s: the p99 lies in the (0.1, 0.25] bucket.
    assert r["p99"].value is not None and 0.1 < r["p99"].value <= 0.25
    assert r["rps"].verdict is Verdict.SUCCESSFUL
    assert r["rps"].value == pytest.approx(40.0, rel=0.2)
    good = await measure(s, canary="stable1", stable=None)
    assert good["errors"].verdict is Verdict.SUCCESSFUL and good["errors"].value == 0.0
    assert good["p99"].verdict is Verdict.SUCCESSFUL


async def test_compare_to_stable_and_drift(prom: PrometheusProcess) -> None:
    s = spec(
        prom.url,
        [
            {"name": "p99-ratio", "builtin": "latencyP99", "compareToStable": {"maxRatio": 2}},
            {"name": "drift", "builtin": "predictionDrift", "max": 0.2},
            {
                "name": "drift-js",
                "builtin": "predictionDrift",
                "max": 0.5,
                "drift": {"method": "jensenShannon"},
            },
        ],
    )
    r = await measure(s)
    assert r["p99-ratio"].verdict is Verdict.FAILED
    assert r["p99-ratio"].stable_value is not None and r["p99-ratio"].stable_value < 0.01
    # Classes 10/90 against 50/50: PSI = (.1-.5)ln(.2) + (.9-.5)ln(1.8) = 0.879
    assert r["drift"].verdict is Verdict.FAILED
    assert r["drift"].value == pytest.approx(0.879, abs=0.05)
    assert r["drift-js"].verdict is Verdict.SUCCESSFUL
    same = await measure(s, canary="stable1")
    assert same["drift"].verdict is Verdict.SUCCESSFUL
    assert same["drift"].value == pytest.approx(0.0, abs=1e-9)


async def test_custom_query_templating(prom: PrometheusProcess) -> None:
    query = (
        'sum(rate(model_infer_request_failure_total{namespace="{{namespace}}",'
        'name="{{name}}",revision="{{revision}}"}[{{interval}}]))'
    )
    s = spec(
        prom.url,
        [
            {"name": "failures", "query": query, "max": 1.0},
            {"name": "ratio", "query": query, "compareToStable": {"maxRatio": 1.5}},
        ],
    )
    r = await measure(s)
    assert r["failures"].verdict is Verdict.FAILED
    assert r["failures"].value == pytest.approx(4.0, rel=0.25)  # 10% of 40 rps
    # Stable has 0 failures/s: any canary failure is infinitely worse.
    assert r["ratio"].verdict is Verdict.FAILED and r["ratio"].stable_value == 0.0


async def test_too_little_traffic_is_inconclusive(prom: PrometheusProcess) -> None:
    s = spec(prom.url, [{"name": "errors", "builtin": "errorRate", "max": 0.05}], minSamples=20)
    r = await measure(s, name="quiet", canary="q1", stable=None)
    assert r["errors"].verdict is Verdict.INCONCLUSIVE
    assert "too little traffic" in r["errors"].message
    missing = await measure(s, name="nothing", canary="nope", stable=None)
    assert missing["errors"].verdict is Verdict.INCONCLUSIVE
    # A canary without a series next to a stable that has one: too little traffic, too.
    unseen = await measure(s, canary="nope", stable="stable1")
    assert unseen["errors"].verdict is Verdict.INCONCLUSIVE


async def test_no_series_even_for_the_stable_is_an_error_not_too_little_traffic(
    prom: PrometheusProcess,
) -> None:
    """Prometheus restarted or not scraping: a gap in the source, which must not count as the
    candidate's lack of traffic (Inconclusive pauses for a person; an Error goes on by itself)."""
    s = spec(prom.url, [{"name": "errors", "builtin": "errorRate", "max": 0.05}], minSamples=20)
    r = await measure(s, name="nothing", canary="nope", stable="gone")
    assert r["errors"].verdict is Verdict.ERROR
    assert "NoSeries" in r["errors"].message and "ml/nothing" in r["errors"].message


async def test_unreachable_prometheus_is_an_error() -> None:
    s = spec(f"http://127.0.0.1:{free_port()}", [{"name": "e", "builtin": "errorRate", "max": 1}])
    r = await measure(s)
    assert r["e"].verdict is Verdict.ERROR
    assert "Unreachable" in r["e"].message


async def test_bad_custom_query_is_an_error(prom: PrometheusProcess) -> None:
    s = spec(prom.url, [{"name": "bad", "query": "sum(rate(x[1m])", "max": 1}])
    assert (await measure(s))["bad"].verdict is Verdict.ERROR
    s = spec(prom.url, [{"name": "tpl", "query": 'x{a="{{nope}}"}', "max": 1}])
    r = await measure(s)
    assert r["tpl"].verdict is Verdict.ERROR and "unknown placeholder" in r["tpl"].message


@pytest.mark.parametrize("rollouts", [2, 20])
async def test_batched_queries_stay_flat(prom: PrometheusProcess, rollouts: int) -> None:
    s = spec(
        prom.url,
        [
            {"name": "errors", "builtin": "errorRate", "max": 0.05},
            {"name": "p99", "builtin": "latencyP99", "max": 0.1},
            {"name": "drift", "builtin": "predictionDrift", "max": 0.2},
        ],
    )
    runner = AnalysisRunner()
    try:
        results = await asyncio.gather(
            *(
                runner.measure(s, NS, NAME if i % 2 else "other", "canary1", "stable1")
                for i in range(rollouts)
            )
        )
        # errorRate + latencyP99 + predictionDrift + the shared request-count query.
        assert runner.queries_sent == 4
        assert all(len(r) == 3 for r in results)
    finally:
        await runner.aclose()


def test_unit_dir_is_not_needed(tmp_path: Path) -> None:
    # Guard: the exporter paths map to the revisions' targets.
    with SyntheticExporter(REVISIONS[:1]) as exporter:
        (target,) = exporter.targets()
        assert target.labels["__metrics_path__"] == "/t/0"
        assert 'revision="stable1"' in exporter.render(0)
