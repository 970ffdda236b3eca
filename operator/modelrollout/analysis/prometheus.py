"""Async client for the Prometheus HTTP API (instant and range queries), used by the
Prometheus metric provider (prometheus_provider.py).

Errors form one hierarchy; the provider maps them onto its own (EmptyResult -> no data, the
others -> an Error verdict):

    PrometheusError            anything that went wrong while measuring
    ├── Unreachable            connection refused/reset, DNS, HTTP 5xx, auth rejected (401/403)
    ├── Timeout                no answer in time (client timeout or Prometheus' own, HTTP 503
    │                          with errorType "timeout")
    ├── BadQuery               Prometheus rejected the PromQL (HTTP 400/422, errorType bad_data)
    └── EmptyResult            the query ran but returned no series (no data: never success)

Unreachable and Timeout are retried with exponential backoff; BadQuery and EmptyResult are not.
Tests inject an `httpx.MockTransport`; integration tests run the real Prometheus.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


class PrometheusError(Exception):
    """Base of every error raised while querying Prometheus."""


class Unreachable(PrometheusError):
    """Prometheus could not be reached or answered with a server/auth error."""


class Timeout(PrometheusError):
    """The query did not finish in time."""


class BadQuery(PrometheusError):
    """Prometheus rejected the query (syntax, unknown function, bad parameters)."""


class EmptyResult(PrometheusError):
    """The query returned no series."""


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str


@dataclass(frozen=True)
class PrometheusConfig:
    address: str
    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.2
    bearer_token: str | None = None
    basic_auth: BasicAuth | None = None
    verify: bool = True
    ca_file: str | None = None
    # A tuple, not a dict: configs are hashable (the provider keys its clients by config).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (or a scalar, with no labels)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: (unix time, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points if not math.isnan(v)]


def _timestamp(t: datetime | float) -> str:
    return f"{t.timestamp() if isinstance(t, datetime) else t:.3f}"


def _verify(config: PrometheusConfig) -> ssl.SSLContext | bool:
    if not config.verify:
        return False
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    return True


class PrometheusClient:
    """One client per Prometheus address; reuse it (it keeps a connection pool)."""

    def __init__(
        self,
        config: PrometheusConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.queries_sent = 0  # counted for the batching benchmark and operator metrics
        self._sleep = sleep
        headers = dict(config.headers)
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        auth = (
            httpx.BasicAuth(config.basic_auth.username, config.basic_auth.password)
            if config.basic_auth
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=config.address.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=config.timeout,
            verify=_verify(config),
            transport=transport,
        )

    @property
    def _timeout_param(self) -> str:
        # Prometheus parses durations like 1500ms (no fractional seconds).
        return f"{max(1, round(self.config.timeout * 1000))}ms"

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query(
        self, promql: str, *, at: datetime | float | None = None, allow_empty: bool = False
    ) -> list[Sample]:
        """Instant query. Raises EmptyResult on no series unless allow_empty."""
        params = {"query": promql, "timeout": self._timeout_param}
        if at is not None:
            params["time"] = _timestamp(at)
        data = await self._get("/api/v1/query", params)
        samples = _parse_instant(data)
        if not samples and not allow_empty:
            raise EmptyResult(f"no data for {promql!r}")
        return samples

    async def query_range(
        self,
        promql: str,
        start: datetime | float,
        end: datetime | float,
        step: float,
        *,
        allow_empty: bool = False,
    ) -> list[Series]:
        """Range query (step in seconds). Raises EmptyResult on no series unless allow_empty."""
        params = {
            "query": promql,
            "start": _timestamp(start),
            "end": _timestamp(end),
            "step": f"{step}",
            "timeout": self._timeout_param,
        }
        data = await self._get("/api/v1/query_range", params)
        series = _parse_matrix(data)
        if not series and not allow_empty:
            raise EmptyResult(f"no data for {promql!r}")
        return series

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return await self._get_once(path, params)
            except (Unreachable, Timeout):
                if attempt >= self.config.retries:
                    raise
                await self._sleep(self.config.backoff * 2**attempt)
                attempt += 1

    async def _get_once(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        self.queries_sent += 1
        where = f"{self.config.address}{path}"
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException as e:
            raise Timeout(f"{where}: no answer within {self.config.timeout}s") from e
        except httpx.TransportError as e:
            raise Unreachable(f"{where}: {type(e).__name__}: {e}") from e
        body = _json(response)
        error_type = str(body.get("errorType", ""))
        error = str(body.get("error", ""))
        status = response.status_code
        if status in (400, 422) or error_type in ("bad_data", "execution"):
            raise BadQuery(f"{error_type or status}: {error}".strip())
        if error_type == "timeout" or status == 504:
            raise Timeout(f"{where}: {error or 'query timed out'}")
        if status in (401, 403):
            raise Unreachable(f"{where}: HTTP {status} (authentication rejected)")
        if status >= 300 or body.get("status") != "success":
            raise Unreachable(f"{where}: HTTP {status} {error_type} {error}".strip())
        data = body.get("data")
        if not isinstance(data, dict):
            raise Unreachable(f"{where}: answer without data")
        return data


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _parse_instant(data: Mapping[str, Any]) -> list[Sample]:
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return [Sample({}, float(result[1]))]
    if kind != "vector" or not isinstance(result, list):
        raise BadQuery(f"expected an instant vector, got {kind}")
    return [Sample(dict(r.get("metric", {})), float(r["value"][1])) for r in result]


def _parse_matrix(data: Mapping[str, Any]) -> list[Series]:
    kind = data.get("resultType")
    result = data.get("result")
    if kind != "matrix" or not isinstance(result, list):
        raise BadQuery(f"expected a range vector, got {kind}")
    return [
        Series(
            dict(r.get("metric", {})),
            tuple((float(t), float(v)) for t, v in r.get("values", [])),
        )
        for r in result
    ]
