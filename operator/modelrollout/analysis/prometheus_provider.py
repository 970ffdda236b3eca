"""Prometheus as a metric provider (analysis/provider.py): fetching only, no judging.

One `PrometheusProvider` per operator process holds a `PrometheusClient` (prometheus.py) per
configuration (address, credentials and CA read from Secrets, TLS), and the shared query caches
(batch.py). Built-in metrics use PromQL written once for all rollouts (queries.py), so rollouts
measured in the same interval share one query per built-in; custom queries are rendered and sent
per rollout and revision.

Errors map onto the provider's: EmptyResult -> MetricNoData; any other PrometheusError, a template
error or unreadable credentials -> MetricFetchError, named by class ("Unreachable: ...").
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

from modelrollout.analysis.batch import QueryCache
from modelrollout.analysis.prometheus import (
    BasicAuth,
    EmptyResult,
    PrometheusClient,
    PrometheusConfig,
    PrometheusError,
    Sample,
    Series,
)
from modelrollout.analysis.provider import (
    MeasuredRevisions,
    MetricFetchError,
    MetricNoData,
    ProviderContext,
    SecretReader,
)
from modelrollout.analysis.queries import (
    DEFAULT_LABELS,
    MIN_RATE_WINDOW,
    LabelScheme,
    SeriesKey,
    TemplateError,
    builtin_query,
    distributions,
    input_bins,
    input_reference,
    key_of,
    rate_window,
    render,
    request_rate,
    sample_counts,
    template_variables,
)
from modelrollout.api import (
    SAMPLES_OF,
    AnalysisSpec,
    BuiltinMetric,
    MetricSpec,
    PrometheusSpec,
    parse_duration,
)
from modelrollout.core.metric_judging import FeatureBins, PredictionCounts, Role

T = TypeVar("T")


class MeasurementError(Exception):
    """The Prometheus configuration cannot be used (e.g. its Secrets cannot be read)."""


class PrometheusProvider:
    """One per operator process: Prometheus clients per configuration and the query caches."""

    def __init__(
        self,
        *,
        read_secret: SecretReader | None = None,
        labels: LabelScheme = DEFAULT_LABELS,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_max_age: float = 1.5,
        clock: Callable[[], float] = time.time,
        retries: int = 1,
    ) -> None:
        self.labels = labels
        self._read_secret = read_secret
        self._transport = transport
        self._clock = clock
        self._retries = retries
        self._clients: dict[PrometheusConfig, PrometheusClient] = {}
        self.instant_cache: QueryCache[list[Sample]] = QueryCache(cache_max_age)
        self.range_cache: QueryCache[list[Series]] = QueryCache(cache_max_age)

    @classmethod
    def from_context(cls, context: ProviderContext) -> PrometheusProvider:
        return cls(read_secret=context.read_secret, clock=context.clock)

    @property
    def queries_sent(self) -> int:
        return sum(c.queries_sent for c in self._clients.values())

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def open(self, spec: AnalysisSpec, target: MeasuredRevisions) -> PrometheusSource:
        try:
            client = await self._client(spec.prometheus, target.namespace)
        except (MeasurementError, OSError) as e:
            raise MetricFetchError(str(e)) from e
        return PrometheusSource(self, client, spec, target)

    async def _config(self, prom: PrometheusSpec, namespace: str) -> PrometheusConfig:
        bearer: str | None = None
        basic: BasicAuth | None = None
        ca_file: str | None = None
        if prom.auth is not None or (prom.tls is not None and prom.tls.ca_secret is not None):
            if self._read_secret is None:
                raise MeasurementError("credentials are configured but secrets cannot be read")
            read = self._read_secret
            if prom.auth is not None and prom.auth.bearer_token_secret is not None:
                ref = prom.auth.bearer_token_secret
                bearer = (await read(namespace, ref.name, ref.key)).strip()
            if prom.auth is not None and prom.auth.basic_auth is not None:
                b = prom.auth.basic_auth
                basic = BasicAuth(
                    await read(namespace, b.secret_name, b.username_key),
                    await read(namespace, b.secret_name, b.password_key),
                )
            if prom.tls is not None and prom.tls.ca_secret is not None:
                ca_file = await _ca_file(
                    await read(namespace, prom.tls.ca_secret.name, prom.tls.ca_secret.key)
                )
        return PrometheusConfig(
            address=prom.address,
            timeout=parse_duration(prom.timeout),
            retries=self._retries,
            bearer_token=bearer,
            basic_auth=basic,
            verify=not (prom.tls is not None and prom.tls.insecure_skip_verify),
            ca_file=ca_file,
        )

    async def _client(self, prom: PrometheusSpec, namespace: str) -> PrometheusClient:
        config = await self._config(prom, namespace)
        client = self._clients.get(config)
        if client is None:
            client = PrometheusClient(config, transport=self._transport)
            self._clients[config] = client
        return client

    def now(self) -> float:
        return self._clock()


async def _translated(fetch: Awaitable[T]) -> T:
    """Prometheus' errors as the provider's (the message names the error class)."""
    try:
        return await fetch
    except EmptyResult as e:
        raise MetricNoData(str(e)) from e
    except (PrometheusError, MeasurementError, TemplateError) as e:
        raise MetricFetchError(f"{type(e).__name__}: {e}") from e


class PrometheusSource:
    """The provider bound to one measurement (a MetricSource)."""

    def __init__(
        self,
        provider: PrometheusProvider,
        client: PrometheusClient,
        spec: AnalysisSpec,
        target: MeasuredRevisions,
    ) -> None:
        self._provider = provider
        self._client = client
        self._spec = spec
        self._target = target

    def _window(self, metric: MetricSpec) -> float:
        return parse_duration(metric.window or self._spec.interval)

    def _key(self, role: Role) -> SeriesKey:
        return (self._target.namespace, self._target.name, self._target.revision(role) or "")

    async def request_counts(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, float]:
        return await _translated(self._request_counts(metric, roles))

    async def values(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, float | None]:
        if metric.builtin is not None:
            return await _translated(self._builtin_values(metric.builtin, metric, roles))
        return await _translated(self._custom_values(metric, roles))

    async def samples(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, Sequence[float]]:
        if metric.builtin is not None:
            return await _translated(self._builtin_samples(metric.builtin, metric, roles))
        return await _translated(self._custom_samples(metric, roles))

    async def predictions(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, PredictionCounts]:
        return await _translated(self._predictions(metric, roles))

    # -- built-ins (batched: one query for every rollout) -----------------------------------

    async def feature_bins(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, FeatureBins]:
        return await _translated(self._feature_bins(metric, roles))

    async def _instant(self, query: str) -> list[Sample]:
        return await self._provider.instant_cache.get(
            (self._client.config.address, query),
            lambda: self._client.query(query, allow_empty=True),
        )

    async def _by_revision(self, query: str) -> dict[SeriesKey, float]:
        labels = self._provider.labels
        return {key_of(s.labels, labels): s.value for s in await self._instant(query)}

    async def _request_counts(self, metric: MetricSpec, roles: Sequence[Role]) -> dict[Role, float]:
        window = self._window(metric)
        if metric.builtin is not None and metric.builtin in SAMPLES_OF:
            # Labels (or mirrored requests) may not have come yet: no series is too few samples,
            # never an error.
            query = sample_counts(metric.builtin, window, self._provider.labels)
            counted = await self._by_revision(query)
            return {r: _number(counted.get(self._key(r))) for r in roles}
        rates = await self._by_revision(request_rate(window, self._provider.labels))
        both = (Role.CANARY, Role.STABLE)
        if self._target.stable and not any(self._key(r) in rates for r in both):
            # Not even the stable, which has served traffic all along, has a series: a gap in
            # Prometheus (it restarted, or stopped scraping), not too little traffic on the
            # candidate. An Error does not count and does not stick; "too little traffic" is
            # Inconclusive, which pauses for a person beyond inconclusiveLimit.
            raise MetricFetchError(
                f"NoSeries: Prometheus has no request series of {self._target.namespace}/"
                f"{self._target.name} (revisions {self._target.canary}, {self._target.stable}) "
                f"in the last {window:g}s: restarted, or not scraping the model servers"
            )
        return {r: rates.get(self._key(r), 0.0) * rate_window(window) for r in roles}

    async def _builtin_values(
        self, builtin: BuiltinMetric, metric: MetricSpec, roles: Sequence[Role]
    ) -> dict[Role, float | None]:
        query = builtin_query(builtin, self._window(metric), self._provider.labels)
        values = await self._by_revision(query)
        return {r: values.get(self._key(r)) for r in roles}

    async def _builtin_samples(
        self, builtin: BuiltinMetric, metric: MetricSpec, roles: Sequence[Role]
    ) -> dict[Role, list[float]]:
        assert metric.judge is not None
        labels = self._provider.labels
        step, lookback = _sampling(self._window(metric), metric.judge.min_samples)
        query = builtin_query(builtin, max(2 * step, MIN_RATE_WINDOW), labels)
        end = math.floor(self._provider.now() / step) * step  # on a grid: callers share the query
        series = await self._provider.range_cache.get(
            (self._client.config.address, query, f"{lookback}", f"{step}"),
            lambda: self._client.query_range(query, end - lookback, end, step, allow_empty=True),
        )
        by_key = {key_of(s.labels, labels): s.values for s in series}
        return {r: by_key.get(self._key(r), []) for r in roles}

    async def _predictions(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> dict[Role, PredictionCounts]:
        labels = self._provider.labels
        query = builtin_query(BuiltinMetric.PREDICTION_DRIFT, self._window(metric), labels)
        samples = await self._instant(query)
        by_key = distributions([(s.labels, s.value) for s in samples], labels)
        counts = {k: PredictionCounts(d.classes, d.buckets) for k, d in by_key.items()}
        return {r: counts.get(self._key(r), PredictionCounts()) for r in roles}

    # -- custom PromQL (one query per rollout and revision) ---------------------------------

    async def _feature_bins(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> dict[Role, FeatureBins]:
        labels = self._provider.labels
        live = await self._instant(input_bins(self._window(metric), labels))
        reference = await self._instant(input_reference(labels))

        def grouped(samples: list[Sample], role: Role) -> dict[str, dict[int, float]]:
            out: dict[str, dict[int, float]] = {}
            for s in samples:
                if key_of(s.labels, labels) == self._key(role) and not math.isnan(s.value):
                    bin_index = int(s.labels.get("bin", "0"))
                    out.setdefault(s.labels.get("feature", ""), {})[bin_index] = s.value
            return out

        return {r: FeatureBins(grouped(live, r), grouped(reference, r)) for r in roles}

    def _custom_query(self, metric: MetricSpec, role: Role) -> str:
        assert metric.query is not None
        t = self._target
        variables = template_variables(
            t.namespace, t.name, t.canary, t.stable, self._window(metric), t.revision(role)
        )
        return render(metric.query, variables)

    async def _custom_values(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> dict[Role, float | None]:
        return {r: await _one_value(self._client, self._custom_query(metric, r)) for r in roles}

    async def _custom_samples(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> dict[Role, list[float]]:
        assert metric.judge is not None
        step, lookback = _sampling(self._window(metric), metric.judge.min_samples)
        end = self._provider.now()
        out: dict[Role, list[float]] = {}
        for role in roles:
            series = await self._client.query_range(
                self._custom_query(metric, role), end - lookback, end, step, allow_empty=True
            )
            out[role] = series[0].values if series else []
        return out


def _number(value: float | None) -> float:
    return 0.0 if value is None or math.isnan(value) else value


def _sampling(window: float, min_samples: int) -> tuple[float, float]:
    """Step and lookback of a range query: at least min_samples points, at most 1 per second."""
    step = max(1.0, window / min_samples)
    return step, max(window, step * min_samples)


async def _one_value(client: PrometheusClient, query: str) -> float | None:
    """A custom query must return one number; the first series is taken, empty is no data."""
    samples = await client.query(query)
    value = samples[0].value
    return None if math.isnan(value) else value


async def _ca_file(pem: str) -> str:
    """httpx/ssl want a file: write the CA bundle once per content to a private temp file."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"modelrollout-ca-{digest}.pem"
    if not path.exists():
        await asyncio.to_thread(path.write_text, pem)
    return str(path)
