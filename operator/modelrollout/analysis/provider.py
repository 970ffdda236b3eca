"""The metric-provider seam: what a source of metrics must do, and nothing more.

A provider only FETCHES raw data for a metric of one measurement; judging is pure
(core/metric_judging.py decides what is needed, in which order, and the verdict). One provider
instance serves the whole operator process (it holds connection pools, credentials and caches);
`open` binds it to one measurement: an AnalysisSpec and the rollout's revisions.

Failures are exceptions with a message meant for status.analysis:
- `MetricFetchError`: the source could not answer (unreachable, timeout, bad query or template,
  credentials): the metric's verdict is Error, and the outcome policy applies onError.
- `MetricNoData`: the source answered with no data at all: no data, never success (onNoData).

Providers are registered in analysis/registry.py; Prometheus (analysis/prometheus_provider.py)
is the one implementation today.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelrollout.api import AnalysisSpec, MetricSpec
from modelrollout.core.metric_judging import FeatureBins, PredictionCounts, Role
from modelrollout.kube.errors import ShellError

# Reads one key of a Secret in a namespace: (namespace, secret, key) -> value.
SecretReader = Callable[[str, str, str], Awaitable[str]]


class MetricFetchError(ShellError):
    """The source could not answer: the metric's verdict is Error, with this message."""

    reason = "MetricSourceError"


class MetricNoData(Exception):
    """The source answered with no data at all (the message says for what)."""


@dataclass(frozen=True)
class MeasuredRevisions:
    """What one measurement is about: a rollout and its canary and stable revisions."""

    namespace: str
    name: str
    canary: str
    stable: str | None

    def revision(self, role: Role) -> str | None:
        return self.canary if role is Role.CANARY else self.stable


@dataclass(frozen=True)
class ProviderContext:
    """What the operator hands every provider when it creates it."""

    read_secret: SecretReader | None
    # Unix time in seconds; tests pass a fixed one.
    clock: Callable[[], float]


class MetricSource(Protocol):
    """A provider bound to one measurement. Each method fetches one kind of raw data for the
    given revisions (roles) and answers for each of them, or raises MetricFetchError /
    MetricNoData. A role of a rollout without a stable is never asked for."""

    async def request_counts(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, float]:
        """Requests each revision served in the metric's window (0 when none were seen)."""
        ...

    async def values(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, float | None]:
        """The metric's value per revision; None or NaN when the source has no number."""
        ...

    async def samples(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, Sequence[float]]:
        """The metric's series over the window per revision (for the Mann-Whitney judge)."""
        ...

    async def predictions(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, PredictionCounts]:
        """Prediction counts per class or cumulative bucket per revision (for drift)."""
        ...

    async def feature_bins(
        self, metric: MetricSpec, roles: Sequence[Role]
    ) -> Mapping[Role, FeatureBins]:
        """Live inputs in the window and the reference profile per revision (inputDrift)."""
        ...


class MetricProvider(Protocol):
    """One per kind and operator process (see analysis/registry.py)."""

    @property
    def queries_sent(self) -> int:
        """Queries sent to the source so far (the batching benchmark counts them)."""
        ...

    async def open(self, spec: AnalysisSpec, target: MeasuredRevisions) -> MetricSource:
        """Bind to one measurement; raises MetricFetchError when that cannot be done
        (e.g. its credentials cannot be read): every metric is then an Error."""
        ...

    async def aclose(self) -> None:
        """Release connections (operator shutdown)."""
        ...
