"""Which metric provider measures an analysis: one registration per provider kind.

Adding a provider = a module implementing MetricProvider (analysis/provider.py) and one line in
`REGISTRATIONS`: its kind, how to tell that an AnalysisSpec names it, and how to create it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelrollout.analysis.prometheus_provider import PrometheusProvider
from modelrollout.analysis.provider import MetricFetchError, MetricProvider, ProviderContext
from modelrollout.api import AnalysisSpec


@dataclass(frozen=True)
class Registration:
    kind: str
    # True when the spec names this provider (e.g. spec.analysis.prometheus is set).
    configured: Callable[[AnalysisSpec], bool]
    create: Callable[[ProviderContext], MetricProvider]


REGISTRATIONS: tuple[Registration, ...] = (
    Registration(
        "prometheus", lambda spec: spec.prometheus is not None, PrometheusProvider.from_context
    ),
)


def provider_kind(spec: AnalysisSpec) -> str:
    """The kind of the first registered provider the spec names."""
    for registration in REGISTRATIONS:
        if registration.configured(spec):
            return registration.kind
    raise MetricFetchError("spec.analysis names no metric provider")


def create_providers(context: ProviderContext) -> dict[str, MetricProvider]:
    """One provider of every kind; none connects anywhere before it is used."""
    return {r.kind: r.create(context) for r in REGISTRATIONS}
