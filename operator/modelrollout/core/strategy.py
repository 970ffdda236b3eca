"""RolloutStrategy: what `decide` needs from a way of moving traffic to a candidate.

Each strategy is one module implementing it (core/canary.py, core/bluegreen.py);
core/strategy_registry.py lists them and picks the one a spec names (`strategy_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelrollout.api import ModelDeploymentSpec
from modelrollout.core.controls import Controls
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.plan import TrafficPlan
from modelrollout.core.step_outcome import StepResult


@dataclass(frozen=True)
class RolloutLayout:
    """Replicas and traffic while a candidate rolls out next to the stable.

    status.canaryWeight reports `reported_weight`, else `traffic.canary_weight`.
    """

    stable_replicas: int
    candidate_replicas: int
    traffic: TrafficPlan
    # What status.canaryWeight reports when it is not `traffic.canary_weight`: the weight the
    # router reads back, for routers that hold weights themselves.
    reported_weight: int | None = None


class RolloutStrategy(Protocol):
    """One rollout strategy, as the decision uses it. Implementations keep no state: all of it
    lives in the status (status.currentStepIndex and the rest), so any call may be the first."""

    def applies_to(self, spec: ModelDeploymentSpec) -> bool:
        """Whether `spec.strategy` names this strategy."""
        ...

    def step(self, ctx: DecisionState, controls: Controls) -> StepResult:
        """Advance the candidate as far as the observation allows (stable and candidate set).

        May abort the candidate (transitions.abort_candidate); never promotes it itself: a
        PROMOTED result is carried out by `decide`.
        """
        ...

    def rollout_layout(self, ctx: DecisionState) -> RolloutLayout:
        """Replicas and traffic after a step that left the candidate in progress."""
        ...

    def settled_traffic(self, stable: str | None) -> TrafficPlan:
        """Traffic with no candidate taking any: steady on the stable, or after an abort."""
        ...

    def keeps_routed_revisions_warm(self, spec: ModelDeploymentSpec) -> bool:
        """Whether a routing object, not pod counts, decides where traffic goes.

        Then a revision the router may still send traffic to stays up until the router reads
        back the move, and the previous stable stays up after a promotion for
        spec.rollbackWindow (or `scale_down_delay_seconds`, the longer), so a fast rollback
        finds it warm.
        """
        ...

    def scale_down_delay_seconds(self, spec: ModelDeploymentSpec) -> float:
        """How long the previous stable stays up after a promotion, besides rollbackWindow."""
        ...

    def fast_rollback_step_index(self, spec: ModelDeploymentSpec) -> int:
        """status.currentStepIndex a return to the previous stable within spec.rollbackWindow
        starts at: the steps before all traffic moves are skipped."""
        ...
