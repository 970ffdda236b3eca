"""One measurement of an analysis spec by the operator's own runner, as the shell makes it."""

from __future__ import annotations

from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.api import AnalysisSpec, MetricResult


async def measure_once(
    s: AnalysisSpec, namespace: str, name: str, canary: str, stable: str | None
) -> dict[str, MetricResult]:
    """Each metric's result, by metric name."""
    runner = AnalysisRunner()
    try:
        return {r.metric: r for r in await runner.measure(s, namespace, name, canary, stable)}
    finally:
        await runner.aclose()
