"""The rollout strategies `decide` knows, and the one a spec names.

A new strategy is one module implementing strategy.RolloutStrategy plus one line in STRATEGIES.
"""

from __future__ import annotations

from modelrollout.api import ModelDeploymentSpec
from modelrollout.core.bluegreen import BLUE_GREEN
from modelrollout.core.canary import CANARY
from modelrollout.core.strategy import RolloutStrategy

# The API admits exactly one strategy per spec (api.Strategy), so at most one of these applies.
STRATEGIES: tuple[RolloutStrategy, ...] = (
    CANARY,
    BLUE_GREEN,
)


def strategy_for(spec: ModelDeploymentSpec) -> RolloutStrategy:
    """The strategy `spec.strategy` names."""
    for strategy in STRATEGIES:
        if strategy.applies_to(spec):
            return strategy
    raise ValueError("spec.strategy names none of the known strategies")
