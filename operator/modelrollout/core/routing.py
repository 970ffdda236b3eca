"""Which strategy and router a spec uses, and the replica arithmetic of the replicas router."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentSpec

# With the replicas router the stable keeps spec.replicas; the canary never runs more than this
# many times spec.replicas, so weights above 80% are approximated at 80% until promotion.
MAX_CANARY_FACTOR = 4


def is_blue_green(spec: ModelDeploymentSpec) -> bool:
    return spec.strategy.blue_green is not None


def uses_replica_weights(spec: ModelDeploymentSpec) -> bool:
    """True for the replicas router (weights approximated by replica counts)."""
    strategy = spec.strategy.canary or spec.strategy.blue_green
    return strategy is None or strategy.traffic_routing.replicas is not None


def canary_replicas_for_weight(stable_replicas: int, weight: int) -> int:
    """Canary replicas next to `stable_replicas` so canary/(stable+canary) approximates weight%.

    At least one replica for any weight above zero; capped at MAX_CANARY_FACTOR * stable. A
    ModelDeployment scaled to zero runs no canary either.
    """
    if weight <= 0 or stable_replicas <= 0:
        return 0
    if weight >= 100:
        return MAX_CANARY_FACTOR * stable_replicas
    exact = stable_replicas * weight / (100 - weight)
    return max(1, min(MAX_CANARY_FACTOR * stable_replicas, math.floor(exact + 0.5)))


def effective_weight(stable_ready: int, canary_ready: int) -> int:
    """Percent of traffic the canary gets when a Service spreads requests over ready pods."""
    total = stable_ready + canary_ready
    if total <= 0 or canary_ready <= 0:
        return 0
    return max(1, min(100, math.floor(100 * canary_ready / total + 0.5)))
