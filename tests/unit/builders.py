"""Shared test data for the core tests: the clock's start (T0) and ModelDeployment spec builders.

Every spec is the model `fraud` at some version; what a test module needs on top (replicas,
steps, an analysis) it passes as keyword arguments, in its own small `spec` helper.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelrollout.api import ModelDeploymentSpec

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# spec.analysis with one built-in metric, for tests that only need some analysis to run.
ERROR_RATE_ANALYSIS: dict[str, Any] = {
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.01}],
}
# strategy.*.trafficRouting for an exact router.
GATEWAY_ROUTING: dict[str, Any] = {"gatewayAPI": {"httpRoute": "fraud"}}


def model(version: str = "1") -> dict[str, str]:
    """spec.model for version `version` of `fraud`."""
    return {"name": "fraud", "version": version, "uri": f"s3://models/fraud/{version}.skops"}


def canary(
    steps: list[dict[str, Any]],
    *,
    routing: dict[str, Any] | None = None,
    post: dict[str, Any] | None = None,
    background: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """spec.strategy for a canary: `routing` is trafficRouting, `post` postPromotionAnalysis,
    `background` the canary's own (background) analysis; None leaves the field out."""
    strategy: dict[str, Any] = {"steps": steps}
    if routing is not None:
        strategy["trafficRouting"] = routing
    if post is not None:
        strategy["postPromotionAnalysis"] = post
    if background is not None:
        strategy["analysis"] = background
    return {"canary": strategy}


def deployment_spec(version: str = "1", **fields: Any) -> ModelDeploymentSpec:
    """A valid spec: model(version), 3 replicas, a one-step canary (setWeight 50).

    `fields` (wire names: replicas, strategy, analysis, rollbackWindow, model, ...) add to or
    replace those.
    """
    body: dict[str, Any] = {
        "model": model(version),
        "replicas": 3,
        "strategy": canary([{"setWeight": 50}]),
    }
    body.update(fields)
    return ModelDeploymentSpec.model_validate(body)
