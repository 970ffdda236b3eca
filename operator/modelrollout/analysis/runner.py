"""Measure every metric of an AnalysisSpec once for one rollout -> api MetricResults.

The shell calls `AnalysisRunner.measure` when the core's Plan.analysis_due is due and hands the
results back to `decide` as Observation.measurements. Judging is pure (core/judges.py); this
module only fetches numbers. Built-in metrics go through the shared QueryCache (batch.py), so all
rollouts measured in the same interval share one query per built-in.

Verdicts: a judge's Inconclusive always means "no data / too few samples" (the evaluator applies
onNoData); Error means Prometheus could not answer (unreachable, timeout, bad query).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
from modelrollout.analysis.queries import (
    DEFAULT_LABELS,
    MIN_RATE_WINDOW,
    Distribution,
    LabelScheme,
    SeriesKey,
    TemplateError,
    builtin_query,
    distributions,
    key_of,
    rate_window,
    render,
    request_rate,
    template_variables,
)
from modelrollout.api import (
    AnalysisSpec,
    BuiltinMetric,
    DriftMethod,
    MetricResult,
    MetricSpec,
    PrometheusSpec,
    Verdict,
    parse_duration,
)
from modelrollout.core.judges import (
    Judgement,
    bins_from_cumulative,
    judge_bound,
    judge_drift,
    judge_mann_whitney,
    judge_ratio,
    no_data,
)

# Reads one key of a Secret in a namespace: (namespace, secret, key) -> value.
SecretReader = Callable[[str, str, str], Awaitable[str]]

MAX_MESSAGE = 1024
DEFAULT_DRIFT_MAX = 0.25  # PSI rule of thumb: above 0.25 is a major shift


class MeasurementError(Exception):
    """The metric could not be measured (maps to verdict Error)."""


@dataclass(frozen=True)
class MeasuredRevisions:
    """What one measurement is about."""

    namespace: str
    name: str
    canary: str
    stable: str | None

    def key(self, revision: str) -> SeriesKey:
        return (self.namespace, self.name, revision)


def _window(spec: AnalysisSpec, metric: MetricSpec) -> float:
    return parse_duration(metric.window or spec.interval)


def combine(judgements: Sequence[Judgement]) -> Judgement:
    """Several criteria on one metric: any failure fails; else missing data; else success."""
    for verdict in (Verdict.FAILED, Verdict.INCONCLUSIVE):
        hit = [j for j in judgements if j.verdict is verdict]
        if hit:
            return Judgement(
                verdict,
                judgements[0].value,
                "; ".join(j.bound for j in judgements),
                "; ".join(j.message for j in hit),
                no_data=any(j.no_data for j in hit),
            )
    return Judgement(
        Verdict.SUCCESSFUL,
        judgements[0].value,
        "; ".join(j.bound for j in judgements),
        "; ".join(j.message for j in judgements),
    )


class AnalysisRunner:
    """One per operator process: Prometheus clients per address and the shared query cache."""

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

    @property
    def queries_sent(self) -> int:
        return sum(c.queries_sent for c in self._clients.values())

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

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

    async def measure(
        self,
        spec: AnalysisSpec,
        namespace: str,
        name: str,
        canary: str,
        stable: str | None,
        *,
        metrics: Sequence[str] | None = None,
    ) -> list[MetricResult]:
        """Measure each metric once (concurrently); never raises for a metric's failure."""
        target = MeasuredRevisions(namespace, name, canary, stable)
        chosen = [m for m in spec.metrics if metrics is None or m.name in metrics]
        measured_at = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        try:
            client = await self._client(spec.prometheus, namespace)
        except (MeasurementError, OSError) as e:
            return [_error_result(m.name, str(e), measured_at) for m in chosen]
        outcomes = await asyncio.gather(
            *(self._measure_one(client, spec, m, target) for m in chosen)
        )
        return [
            _result(m.name, outcome, measured_at)
            for m, outcome in zip(chosen, outcomes, strict=True)
        ]

    async def _measure_one(
        self,
        client: PrometheusClient,
        spec: AnalysisSpec,
        metric: MetricSpec,
        target: MeasuredRevisions,
    ) -> tuple[Judgement, float | None] | str:
        try:
            if metric.builtin is not None:
                return await self._builtin(client, spec, metric, target)
            return await self._custom(client, spec, metric, target)
        except EmptyResult as e:
            return (no_data("", f"no data: {e}"), None)
        except (PrometheusError, MeasurementError, TemplateError) as e:
            return f"{type(e).__name__}: {e}"

    # -- built-ins (batched) ------------------------------------------------------------

    async def _instant(self, client: PrometheusClient, query: str) -> list[Sample]:
        return await self.instant_cache.get(
            (client.config.address, query),
            lambda: client.query(query, allow_empty=True),
        )

    async def _by_revision(self, client: PrometheusClient, query: str) -> dict[SeriesKey, float]:
        return {key_of(s.labels, self.labels): s.value for s in await self._instant(client, query)}

    async def _requests(
        self, client: PrometheusClient, window: float, target: MeasuredRevisions, revision: str
    ) -> float:
        rates = await self._by_revision(client, request_rate(window, self.labels))
        return rates.get(target.key(revision), 0.0) * rate_window(window)

    async def _traffic_gate(
        self,
        client: PrometheusClient,
        spec: AnalysisSpec,
        window: float,
        target: MeasuredRevisions,
        revisions: Sequence[str],
    ) -> Judgement | None:
        """No data when a revision had fewer requests than spec.minSamples in the window."""
        for revision in revisions:
            n = await self._requests(client, window, target, revision)
            if n < spec.min_samples:
                role = "canary" if revision == target.canary else "stable"
                return no_data(
                    "", f"too little traffic: {role} {n:.0f} requests (min {spec.min_samples})"
                )
        return None

    async def _builtin(
        self,
        client: PrometheusClient,
        spec: AnalysisSpec,
        metric: MetricSpec,
        target: MeasuredRevisions,
    ) -> tuple[Judgement, float | None]:
        assert metric.builtin is not None
        window = _window(spec, metric)
        if metric.builtin is BuiltinMetric.PREDICTION_DRIFT:
            return await self._drift(client, spec, metric, target, window), None
        needs_stable = metric.compare_to_stable is not None or metric.judge is not None
        if needs_stable and target.stable is None:
            return no_data("", "no stable revision to compare with"), None
        revisions = [target.canary] + ([target.stable] if needs_stable and target.stable else [])
        if metric.builtin is not BuiltinMetric.REQUEST_RATE:
            gate = await self._traffic_gate(client, spec, window, target, revisions)
            if gate is not None:
                return gate, None
        values = await self._by_revision(client, builtin_query(metric.builtin, window, self.labels))
        canary = values.get(target.key(target.canary))
        stable = values.get(target.key(target.stable)) if target.stable else None
        judgements: list[Judgement] = []
        if metric.min is not None or metric.max is not None:
            judgements.append(judge_bound(canary, metric.min, metric.max))
        if metric.compare_to_stable is not None:
            c = metric.compare_to_stable
            judgements.append(judge_ratio(canary, stable, c.min_ratio, c.max_ratio))
        if metric.judge is not None and target.stable is not None:
            judgements.append(
                await self._mann_whitney_builtin(client, metric, window, target, target.stable)
            )
        judged = combine(judgements)
        if judged.value is None and canary is not None and not math.isnan(canary):
            judged = Judgement(judged.verdict, canary, judged.bound, judged.message, judged.no_data)
        return judged, stable

    async def _mann_whitney_builtin(
        self,
        client: PrometheusClient,
        metric: MetricSpec,
        window: float,
        target: MeasuredRevisions,
        stable: str,
    ) -> Judgement:
        assert metric.builtin is not None and metric.judge is not None
        step, lookback = _sampling(window, metric.judge.min_samples)
        query = builtin_query(metric.builtin, max(2 * step, MIN_RATE_WINDOW), self.labels)
        end = math.floor(self._clock() / step) * step  # on a grid: callers share the query
        series = await self.range_cache.get(
            (client.config.address, query, f"{lookback}", f"{step}"),
            lambda: client.query_range(query, end - lookback, end, step, allow_empty=True),
        )
        by_key = {key_of(s.labels, self.labels): s.values for s in series}
        return _mann_whitney(
            metric,
            by_key.get(target.key(target.canary), []),
            by_key.get(target.key(stable), []),
        )

    async def _drift(
        self,
        client: PrometheusClient,
        spec: AnalysisSpec,
        metric: MetricSpec,
        target: MeasuredRevisions,
        window: float,
    ) -> Judgement:
        if target.stable is None:
            return no_data("", "no stable revision to compare predictions with")
        samples = await self._instant(
            client, builtin_query(BuiltinMetric.PREDICTION_DRIFT, window, self.labels)
        )
        dists = distributions([(s.labels, s.value) for s in samples], self.labels)
        empty = Distribution({}, {})
        canary = dists.get(target.key(target.canary), empty)
        stable = dists.get(target.key(target.stable), empty)
        method = metric.drift.method if metric.drift else DriftMethod.PSI
        maximum = metric.max if metric.max is not None else DEFAULT_DRIFT_MAX
        min_samples = max(1, spec.min_samples)
        if canary.classes or stable.classes:
            return judge_drift(
                canary.classes, stable.classes, maximum, method=method, min_samples=min_samples
            )
        return judge_drift(
            bins_from_cumulative(canary.buckets),
            bins_from_cumulative(stable.buckets),
            maximum,
            method=method,
            min_samples=min_samples,
        )

    # -- custom PromQL (one query per rollout and revision) -----------------------------

    async def _custom(
        self,
        client: PrometheusClient,
        spec: AnalysisSpec,
        metric: MetricSpec,
        target: MeasuredRevisions,
    ) -> tuple[Judgement, float | None]:
        assert metric.query is not None
        window = _window(spec, metric)

        def text(revision: str) -> str:
            assert metric.query is not None
            variables = template_variables(
                target.namespace, target.name, target.canary, target.stable, window, revision
            )
            return render(metric.query, variables)

        canary = await _one_value(client, text(target.canary))
        stable: float | None = None
        judgements: list[Judgement] = []
        if metric.min is not None or metric.max is not None:
            judgements.append(judge_bound(canary, metric.min, metric.max))
        if metric.compare_to_stable is not None or metric.judge is not None:
            if target.stable is None:
                return no_data("", "no stable revision to compare with"), None
            if metric.compare_to_stable is not None:
                stable = await _one_value(client, text(target.stable))
                c = metric.compare_to_stable
                judgements.append(judge_ratio(canary, stable, c.min_ratio, c.max_ratio))
            if metric.judge is not None:
                step, lookback = _sampling(window, metric.judge.min_samples)
                end = self._clock()
                xs = await client.query_range(
                    text(target.canary), end - lookback, end, step, allow_empty=True
                )
                ys = await client.query_range(
                    text(target.stable), end - lookback, end, step, allow_empty=True
                )
                judgements.append(
                    _mann_whitney(
                        metric,
                        xs[0].values if xs else [],
                        ys[0].values if ys else [],
                    )
                )
        judged = combine(judgements)
        if judged.value is None:
            judged = Judgement(judged.verdict, canary, judged.bound, judged.message, judged.no_data)
        return judged, stable


def _sampling(window: float, min_samples: int) -> tuple[float, float]:
    """Step and lookback of a range query: at least min_samples points, at most 1 per second."""
    step = max(1.0, window / min_samples)
    return step, max(window, step * min_samples)


def _mann_whitney(metric: MetricSpec, canary: list[float], stable: list[float]) -> Judgement:
    assert metric.judge is not None
    j = metric.judge
    return judge_mann_whitney(
        canary,
        stable,
        direction=j.direction,
        confidence=j.confidence,
        allowed_increase=j.allowed_increase,
        allowed_decrease=j.allowed_decrease,
        min_samples=j.min_samples,
    )


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


def _trim(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _result(
    metric: str, outcome: tuple[Judgement, float | None] | str, measured_at: dt.datetime
) -> MetricResult:
    if isinstance(outcome, str):
        return _error_result(metric, outcome, measured_at)
    judgement, stable = outcome
    if stable is not None and math.isnan(stable):
        stable = None
    return MetricResult(
        metric=metric,
        value=judgement.value,
        stable_value=stable,
        bound=judgement.bound[:256] or None,
        verdict=Verdict(judgement.verdict.value),
        measured_at=measured_at,
        message=_trim(judgement.message),
    )


def _error_result(metric: str, message: str, measured_at: dt.datetime) -> MetricResult:
    return MetricResult(
        metric=metric, verdict=Verdict.ERROR, measured_at=measured_at, message=_trim(message)
    )


def results_by_metric(results: Sequence[MetricResult]) -> Mapping[str, MetricResult]:
    return {r.metric: r for r in results}
