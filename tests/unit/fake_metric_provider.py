"""A metric provider for unit tests: answers from fixed data and records every fetch (no socket)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from modelrollout.analysis.provider import MeasuredRevisions, MetricFetchError
from modelrollout.api import AnalysisSpec, MetricSpec
from modelrollout.core.metric_judging import (
    DataKind,
    FeatureBins,
    MetricData,
    PredictionCounts,
    Role,
)

Fetched = tuple[str, DataKind, tuple[Role, ...]]


@dataclass
class FakeMetricProvider:
    """A MetricProvider. `held` is what the source knows per metric name; `failures` makes one
    kind of fetch of one metric raise; `open_failure` makes binding to a measurement fail."""

    held: Mapping[str, MetricData] = field(default_factory=dict)
    failures: Mapping[tuple[str, DataKind], Exception] = field(default_factory=dict)
    open_failure: str | None = None
    fetched: list[Fetched] = field(default_factory=list)
    opened: list[MeasuredRevisions] = field(default_factory=list)
    closed: bool = False

    @property
    def queries_sent(self) -> int:
        return len(self.fetched)

    async def open(self, spec: AnalysisSpec, target: MeasuredRevisions) -> FakeSource:
        if self.open_failure is not None:
            raise MetricFetchError(self.open_failure)
        self.opened.append(target)
        return FakeSource(self)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeSource:
    provider: FakeMetricProvider

    def _held(self, metric: MetricSpec, kind: DataKind, roles: Sequence[Role]) -> MetricData:
        self.provider.fetched.append((metric.name, kind, tuple(roles)))
        failure = self.provider.failures.get((metric.name, kind))
        if failure is not None:
            raise failure
        return self.provider.held.get(metric.name, MetricData())

    async def request_counts(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, float]:
        held = self._held(metric, DataKind.REQUEST_COUNTS, roles).request_counts
        return {r: held.get(r, 0.0) for r in roles}

    async def values(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, float | None]:
        held = self._held(metric, DataKind.VALUES, roles).values
        return {r: held.get(r) for r in roles}

    async def samples(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, Sequence[float]]:
        held = self._held(metric, DataKind.SAMPLES, roles).samples
        return {r: held.get(r, []) for r in roles}

    async def predictions(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, PredictionCounts]:
        held = self._held(metric, DataKind.PREDICTIONS, roles).predictions
        return {r: held.get(r, PredictionCounts()) for r in roles}

    async def feature_bins(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, FeatureBins]:
        held = self._held(metric, DataKind.FEATURE_BINS, roles).feature_bins
        return {r: held.get(r, FeatureBins()) for r in roles}
