"""Prometheus client against an injected transport: parsing, auth, retries, error classes."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from modelrollout.analysis.prometheus import (
    BadQuery,
    BasicAuth,
    EmptyResult,
    PrometheusClient,
    PrometheusConfig,
    PrometheusError,
    Timeout,
    Unreachable,
)

VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {"metric": {"revision": "a"}, "value": [1700000000.0, "0.25"]},
            {"metric": {"revision": "b"}, "value": [1700000000.0, "NaN"]},
        ],
    },
}


def client(
    handler: Callable[[httpx.Request], httpx.Response], **kw: object
) -> tuple[PrometheusClient, list[float]]:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    config = PrometheusConfig(address="http://prom:9090/", **kw)  # type: ignore[arg-type]
    return PrometheusClient(config, transport=httpx.MockTransport(handler), sleep=sleep), sleeps


def reply(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


async def test_instant_query_parses_vector_and_sends_params() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200, VECTOR)

    c, _ = client(handler, timeout=3.0)
    samples = await c.query("up", at=1700000000.5)
    assert (dict(samples[0].labels), samples[0].value) == ({"revision": "a"}, 0.25)
    assert samples[1].value != samples[1].value  # NaN survives parsing
    assert seen[0].url.path == "/api/v1/query"
    assert seen[0].url.params["query"] == "up"
    assert seen[0].url.params["time"] == "1700000000.500"
    assert seen[0].url.params["timeout"] == "3000ms"
    assert c.queries_sent == 1


async def test_range_query_parses_matrix() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"r": "x"}, "values": [[1, "1"], [2, "NaN"], [3, "3.5"]]}],
        },
    }
    c, _ = client(lambda r: reply(200, body))
    (series,) = await c.query_range("x", 1, 3, 1.0)
    assert series.values == [1.0, 3.5]
    assert series.points[0] == (1.0, 1.0)


async def test_scalar_result() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1, "42"]}}
    c, _ = client(lambda r: reply(200, body))
    assert (await c.query("scalar(1)"))[0].value == 42.0


async def test_empty_result_is_its_own_error() -> None:
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    c, _ = client(lambda r: reply(200, body))
    with pytest.raises(EmptyResult):
        await c.query("absent_metric")
    assert await c.query("absent_metric", allow_empty=True) == []


async def test_bad_query_is_not_retried() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}
    c, sleeps = client(lambda r: reply(400, body), retries=3)
    with pytest.raises(BadQuery, match="parse error"):
        await c.query("sum(")
    assert c.queries_sent == 1 and sleeps == []


async def test_server_errors_are_retried_with_backoff_then_unreachable() -> None:
    c, sleeps = client(lambda r: reply(502, {}), retries=2, backoff=0.5)
    with pytest.raises(Unreachable):
        await c.query("up")
    assert c.queries_sent == 3
    assert sleeps == [0.5, 1.0]


async def test_recovers_after_a_transient_error() -> None:
    answers = [reply(503, {}), reply(200, VECTOR)]
    c, _ = client(lambda r: answers.pop(0), retries=2)
    assert len(await c.query("up")) == 2


async def test_connection_error_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    c, _ = client(handler, retries=0)
    with pytest.raises(Unreachable, match="ConnectError"):
        await c.query("up")


async def test_timeouts_are_classified() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    c, _ = client(handler, retries=1)
    with pytest.raises(Timeout):
        await c.query("up")
    assert c.queries_sent == 2
    body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
    c2, _ = client(lambda r: reply(503, body), retries=0)
    with pytest.raises(Timeout):
        await c2.query("up")


async def test_every_error_is_a_prometheus_error() -> None:
    for cls in (Unreachable, Timeout, BadQuery, EmptyResult):
        assert issubclass(cls, PrometheusError)


async def test_bearer_and_basic_auth_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200, VECTOR)

    bearer, _ = client(handler, bearer_token="tok")
    await bearer.query("up")
    assert seen[-1].headers["Authorization"] == "Bearer tok"
    basic, _ = client(handler, basic_auth=BasicAuth("u", "p"))
    await basic.query("up")
    assert seen[-1].headers["Authorization"] == "Basic dTpw"


async def test_auth_rejected_is_unreachable_with_reason() -> None:
    c, _ = client(lambda r: httpx.Response(401, text="Unauthorized"), retries=0)
    with pytest.raises(Unreachable, match="authentication rejected"):
        await c.query("up")
