"""Measure every metric of an AnalysisSpec once for one rollout -> api MetricResults.

The shell calls `AnalysisRunner.measure` (through hook.py) when the core's Plan.analysis_due is
due and hands the results back to `decide` as Observation.measurements. For each metric the
runner asks the pure core what to fetch (core/metric_judging.py `next_fetch`), has the metric
provider the spec names fetch it (provider.py, registry.py), and lets the core judge the data
(`judge_metric`). The runner itself decides nothing: it only sequences fetches and turns a
provider's failure into a result.

Verdicts: Inconclusive always means "no data / too few samples" (the evaluator applies onNoData);
Error means the provider could not answer (unreachable, timeout, bad query).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence

from modelrollout.analysis.provider import (
    MeasuredRevisions,
    MetricFetchError,
    MetricNoData,
    MetricProvider,
    MetricSource,
    ProviderContext,
    SecretReader,
)
from modelrollout.analysis.registry import create_providers, provider_kind
from modelrollout.api import AnalysisSpec, MetricResult, MetricSpec
from modelrollout.core.metric_judging import (
    DataKind,
    Fetch,
    MetricData,
    error_result,
    judge_metric,
    next_fetch,
)


class AnalysisRunner:
    """One per operator process: one metric provider per kind (pools and caches live there)."""

    def __init__(
        self,
        *,
        read_secret: SecretReader | None = None,
        clock: Callable[[], float] = time.time,
        providers: Mapping[str, MetricProvider] | None = None,
    ) -> None:
        """`providers` replaces the registered ones by kind (tests inject fakes)."""
        self._clock = clock
        self._providers = (
            dict(providers)
            if providers is not None
            else create_providers(ProviderContext(read_secret, clock))
        )

    @property
    def queries_sent(self) -> int:
        return sum(p.queries_sent for p in self._providers.values())

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()

    def _provider(self, spec: AnalysisSpec) -> MetricProvider:
        kind = provider_kind(spec)
        provider = self._providers.get(kind)
        if provider is None:
            raise MetricFetchError(f"no {kind} metric provider in this operator")
        return provider

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
            source = await self._provider(spec).open(spec, target)
        except MetricFetchError as e:
            return [error_result(m.name, str(e), measured_at) for m in chosen]
        return list(
            await asyncio.gather(
                *(_measure_one(source, spec, m, stable is not None, measured_at) for m in chosen)
            )
        )


async def _measure_one(
    source: MetricSource,
    spec: AnalysisSpec,
    metric: MetricSpec,
    has_stable: bool,
    measured_at: dt.datetime,
) -> MetricResult:
    """Fetch what the core asks for, one fetch at a time, then let it judge."""
    data = MetricData()
    try:
        while (
            fetch := next_fetch(metric, data, has_stable=has_stable, min_samples=spec.min_samples)
        ) is not None:
            data = data.merged(await _fetched(source, metric, fetch))
    except MetricNoData as e:
        data = MetricData(empty=str(e))
    except MetricFetchError as e:
        return error_result(metric.name, str(e), measured_at)
    return judge_metric(
        metric,
        data,
        has_stable=has_stable,
        min_samples=spec.min_samples,
        measured_at=measured_at,
    )


async def _fetched(source: MetricSource, metric: MetricSpec, fetch: Fetch) -> MetricData:
    if fetch.kind is DataKind.REQUEST_COUNTS:
        return MetricData(request_counts=await source.request_counts(metric, fetch.roles))
    if fetch.kind is DataKind.VALUES:
        return MetricData(values=await source.values(metric, fetch.roles))
    if fetch.kind is DataKind.SAMPLES:
        return MetricData(samples=await source.samples(metric, fetch.roles))
    if fetch.kind is DataKind.FEATURE_BINS:
        return MetricData(feature_bins=await source.feature_bins(metric, fetch.roles))
    return MetricData(predictions=await source.predictions(metric, fetch.roles))
