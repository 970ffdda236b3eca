"""The runner and the metric-provider seam: fetch what the core asks, turn failures into results;
the Prometheus provider behind it (against an injected httpx transport, no socket)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from modelrollout.analysis.prometheus_provider import PrometheusProvider
from modelrollout.analysis.provider import (
    MeasuredRevisions,
    MetricFetchError,
    MetricNoData,
    ProviderContext,
)
from modelrollout.analysis.queries import error_rate, latency_quantile, request_rate
from modelrollout.analysis.registry import REGISTRATIONS, create_providers, provider_kind
from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.api import AnalysisSpec, MetricResult, Verdict
from modelrollout.core.metric_judging import DataKind, MetricData, Role
from tests.unit.fake_metric_provider import FakeMetricProvider

C, S = Role.CANARY, Role.STABLE
NOW = 1_700_000_000.0
LABELS = {"namespace": "ns", "name": "md"}


def spec(metrics: list[dict[str, Any]], **extra: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "interval": "30s",
            "prometheus": {"address": "http://prom:9090"},
            "metrics": metrics,
            **extra,
        }
    )


async def measure(
    provider: Any, s: AnalysisSpec, stable: str | None = "stab", **kw: Any
) -> dict[str, MetricResult]:
    runner = AnalysisRunner(providers={"prometheus": provider}, clock=lambda: NOW)
    try:
        return {r.metric: r for r in await runner.measure(s, "ns", "md", "cand", stable, **kw)}
    finally:
        await runner.aclose()


# -- the seam, with a fake provider ------------------------------------------------------------


async def test_the_runner_fetches_what_the_core_asks_then_the_core_judges() -> None:
    provider = FakeMetricProvider(
        held={"errors": MetricData(request_counts={C: 100.0, S: 100.0}, values={C: 0.2, S: 0.0})}
    )
    r = await measure(provider, spec([{"name": "errors", "builtin": "errorRate", "max": 0.05}]))
    assert provider.opened == [MeasuredRevisions("ns", "md", "cand", "stab")]
    assert provider.fetched == [
        ("errors", DataKind.REQUEST_COUNTS, (C,)),
        ("errors", DataKind.VALUES, (C, S)),
    ]
    e = r["errors"]
    assert (e.verdict, e.value, e.stable_value, e.message) == (
        Verdict.FAILED,
        0.2,
        0.0,
        "0.2 > max 0.05",
    )
    assert e.measured_at is not None and e.measured_at.timestamp() == NOW
    assert provider.closed


async def test_a_fetch_error_is_an_error_result_with_its_message() -> None:
    provider = FakeMetricProvider(
        held={"ok": MetricData(request_counts={C: 100.0}, values={C: 0.0})},
        failures={("bad", DataKind.VALUES): MetricFetchError("Timeout: no answer within 10s")},
    )
    s = spec(
        [
            {"name": "ok", "builtin": "errorRate", "max": 0.05},
            {"name": "bad", "query": "up", "max": 1},
        ]
    )
    r = await measure(provider, s, stable=None)
    assert r["ok"].verdict is Verdict.SUCCESSFUL  # one metric's failure is its own
    assert r["bad"] == MetricResult(
        metric="bad",
        verdict=Verdict.ERROR,
        measured_at=r["bad"].measured_at,
        message="Timeout: no answer within 10s",
    )


async def test_no_data_from_the_provider_is_inconclusive() -> None:
    provider = FakeMetricProvider(
        failures={("q", DataKind.VALUES): MetricNoData("no data for 'up'")}
    )
    r = await measure(provider, spec([{"name": "q", "query": "up", "max": 1}]))
    assert (r["q"].verdict, r["q"].message) == (Verdict.INCONCLUSIVE, "no data: no data for 'up'")


async def test_a_provider_that_cannot_open_makes_every_metric_an_error() -> None:
    provider = FakeMetricProvider(open_failure="credentials are configured but ...")
    s = spec(
        [
            {"name": "a", "builtin": "errorRate", "max": 0.05},
            {"name": "b", "builtin": "latencyP99", "max": 0.5},
        ]
    )
    r = await measure(provider, s)
    assert [(x.verdict, x.message) for x in r.values()] == [
        (Verdict.ERROR, "credentials are configured but ..."),
    ] * 2
    assert provider.fetched == []


async def test_only_the_chosen_metrics_are_measured() -> None:
    provider = FakeMetricProvider()
    s = spec(
        [
            {"name": "a", "builtin": "requestRate", "min": 1},
            {"name": "b", "builtin": "requestRate", "min": 1},
        ]
    )
    r = await measure(provider, s, metrics=["b"])
    assert list(r) == ["b"]
    assert {m for m, _, _ in provider.fetched} == {"b"}


async def test_a_kind_without_a_provider_is_an_error() -> None:
    runner = AnalysisRunner(providers={"other": FakeMetricProvider()})
    (e,) = await runner.measure(
        spec([{"name": "a", "query": "up", "max": 1}]), "ns", "md", "c", None
    )
    assert (e.verdict, e.message) == (
        Verdict.ERROR,
        "no prometheus metric provider in this operator",
    )


def test_the_registry_picks_prometheus_from_the_spec() -> None:
    assert [r.kind for r in REGISTRATIONS] == ["prometheus"]
    assert provider_kind(spec([{"name": "a", "query": "up", "max": 1}])) == "prometheus"
    providers = create_providers(ProviderContext(read_secret=None, clock=lambda: NOW))
    assert list(providers) == ["prometheus"]
    assert isinstance(providers["prometheus"], PrometheusProvider)
    assert AnalysisRunner().queries_sent == 0


# -- the Prometheus provider behind the seam (injected transport) ------------------------------


def vector(rows: dict[str, float]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {"namespace": "ns", "name": "md", "revision": rev},
                    "value": [NOW, f"{v}"],
                }
                for rev, v in rows.items()
            ],
        },
    }


def prometheus(
    answers: dict[str, dict[str, Any]],
) -> tuple[PrometheusProvider, list[str]]:
    """A provider whose Prometheus answers `answers[query]` (an empty vector otherwise)."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())["query"][0]
        sent.append(query)
        body = answers.get(query, vector({}))
        return httpx.Response(200, content=json.dumps(body).encode())

    transport = httpx.MockTransport(handler)
    return PrometheusProvider(transport=transport, clock=lambda: NOW), sent


async def test_prometheus_builtin_sends_the_request_count_then_the_metric_query() -> None:
    provider, sent = prometheus(
        {
            request_rate(30.0): vector({"cand": 2.0, "stab": 2.0}),  # 60 requests in 30 s
            error_rate(30.0): vector({"cand": 0.1, "stab": 0.0}),
        }
    )
    s = spec([{"name": "errors", "builtin": "errorRate", "compareToStable": {"maxRatio": 2}}])
    r = await measure(provider, s)
    assert sent == [request_rate(30.0), error_rate(30.0)]
    assert r["errors"].verdict is Verdict.FAILED
    assert (r["errors"].value, r["errors"].stable_value) == (float("inf"), 0.0)


async def test_prometheus_low_traffic_sends_no_metric_query() -> None:
    provider, sent = prometheus({request_rate(30.0): vector({"cand": 0.1})})  # 3 requests
    r = await measure(provider, spec([{"name": "p99", "builtin": "latencyP99", "max": 0.5}]))
    assert sent == [request_rate(30.0)]
    assert latency_quantile(30.0) not in sent
    assert r["p99"].message == "too little traffic: canary 3 requests (min 10)"


async def test_prometheus_builtins_of_one_interval_share_queries() -> None:
    provider, sent = prometheus(
        {
            request_rate(30.0): vector({"cand": 2.0, "stab": 2.0}),
            error_rate(30.0): vector({"cand": 0.0, "stab": 0.0}),
        }
    )
    s = spec(
        [
            {"name": "a", "builtin": "errorRate", "max": 0.05},
            {"name": "b", "builtin": "errorRate", "max": 0.01},
        ]
    )
    runner = AnalysisRunner(providers={"prometheus": provider}, clock=lambda: NOW)
    for _ in range(3):
        await runner.measure(s, "ns", "md", "cand", "stab")
    assert sorted(sent) == sorted([request_rate(30.0), error_rate(30.0)])
    assert runner.queries_sent == 2


async def test_prometheus_window_without_stable_sends_nothing() -> None:
    provider, sent = prometheus({})
    s = spec(
        [
            {"name": "ratio", "builtin": "errorRate", "compareToStable": {"maxRatio": 1.5}},
            {"name": "drift", "builtin": "predictionDrift", "max": 0.2},
        ]
    )
    r = await measure(provider, s, stable=None)
    assert sent == []
    assert all(x.verdict is Verdict.INCONCLUSIVE for x in r.values())


async def test_prometheus_custom_empty_is_no_data_and_bad_template_an_error() -> None:
    provider, _ = prometheus({})
    s = spec(
        [
            {"name": "empty", "query": 'up{revision="{{revision}}"}', "max": 1},
            {"name": "tpl", "query": 'x{a="{{nope}}"}', "max": 1},
        ]
    )
    r = await measure(provider, s)
    assert r["empty"].verdict is Verdict.INCONCLUSIVE
    assert r["empty"].message == "no data: no data for 'up{revision=\"cand\"}'"
    assert r["tpl"].verdict is Verdict.ERROR
    assert r["tpl"].message == "TemplateError: unknown placeholder {{nope}}"


async def test_prometheus_unreachable_is_an_error_named_by_class() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = PrometheusProvider(transport=httpx.MockTransport(refuse), retries=0)
    r = await measure(provider, spec([{"name": "e", "builtin": "errorRate", "max": 1}]))
    assert r["e"].verdict is Verdict.ERROR
    assert r["e"].message.startswith("Unreachable: http://prom:9090/api/v1/query: ConnectError")


async def test_prometheus_credentials_without_a_secret_reader_are_an_error() -> None:
    provider, sent = prometheus({})
    s = AnalysisSpec.model_validate(
        {
            "prometheus": {
                "address": "http://prom:9090",
                "auth": {"bearerTokenSecret": {"name": "tok", "key": "token"}},
            },
            "metrics": [{"name": "e", "builtin": "errorRate", "max": 1}],
        }
    )
    r = await measure(provider, s)
    assert (r["e"].verdict, r["e"].message) == (
        Verdict.ERROR,
        "credentials are configured but secrets cannot be read",
    )
    assert sent == []


@pytest.mark.parametrize("reader", ["bearer", "basic"])
async def test_prometheus_reads_credentials_from_secrets(reader: str) -> None:
    headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("authorization", ""))
        return httpx.Response(200, content=json.dumps(vector({"cand": 50.0})).encode())

    read: list[tuple[str, str, str]] = []

    async def read_secret(namespace: str, name: str, key: str) -> str:
        read.append((namespace, name, key))
        return {"token": "t0k\n", "user": "u", "pass": "p"}[key]

    auth: dict[str, Any] = (
        {"bearerTokenSecret": {"name": "s", "key": "token"}}
        if reader == "bearer"
        else {"basicAuth": {"secretName": "s", "usernameKey": "user", "passwordKey": "pass"}}
    )
    s = AnalysisSpec.model_validate(
        {
            "prometheus": {"address": "http://prom:9090", "auth": auth},
            "metrics": [{"name": "rps", "builtin": "requestRate", "min": 1}],
        }
    )
    provider = PrometheusProvider(
        read_secret=read_secret, transport=httpx.MockTransport(handler), clock=lambda: NOW
    )
    r = await measure(provider, s, stable=None)
    assert r["rps"].verdict is Verdict.SUCCESSFUL
    assert all(ns == "ns" for ns, _, _ in read)
    expected: Callable[[str], bool] = (
        (lambda h: h == "Bearer t0k") if reader == "bearer" else (lambda h: h.startswith("Basic "))
    )
    assert headers and all(expected(h) for h in headers)


async def test_prometheus_judge_reads_both_series_from_one_range_query_on_a_grid() -> None:
    ranges: list[dict[str, str]] = []
    points = [[NOW - 30 + i, "0.1"] for i in range(30)]

    def handler(request: httpx.Request) -> httpx.Response:
        params = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        if request.url.path.endswith("/query_range"):
            ranges.append(params)
            body: dict[str, Any] = {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [
                        {"metric": {**LABELS, "revision": rev}, "values": points}
                        for rev in ("cand", "stab")
                    ],
                },
            }
        else:
            body = vector({"cand": 2.0, "stab": 2.0})
        return httpx.Response(200, content=json.dumps(body).encode())

    provider = PrometheusProvider(transport=httpx.MockTransport(handler), clock=lambda: NOW + 0.7)
    s = spec([{"name": "p99", "builtin": "latencyP99", "judge": {"minSamples": 20}}])
    r = await measure(provider, s)
    assert r["p99"].verdict is Verdict.SUCCESSFUL  # the same series on both sides
    assert r["p99"].value == 0.0
    (params,) = ranges
    # step 30 s / 20 = 1.5 s; the end on a multiple of it, so rollouts share the query.
    assert float(params["step"]) == 1.5
    assert float(params["end"]) % 1.5 == 0 and float(params["end"]) <= NOW + 0.7
    assert params["query"] == latency_quantile(4.0)
