"""The working state of one decision: shared by the canary and blue/green state machines.

Everything here is rebuilt from (spec, status, observation) on every call; nothing survives the
call, so a restarted operator decides exactly as a running one would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from modelrollout.api import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Outcome,
    PauseReason,
    Phase,
)
from modelrollout.core.evaluation import AnalysisEvaluator
from modelrollout.core.history import history_limit, model_of, with_entry
from modelrollout.core.observation import Observation
from modelrollout.core.plan import AnalysisRequest, Event, TrafficPlan, ValidationRequest

# Requeue soon while waiting for a router to read back a change (routing objects are not watched).
ROUTER_RECHECK_SECONDS = 2.0


@dataclass
class DecisionState:
    name: str
    namespace: str
    spec: ModelDeploymentSpec
    obs: Observation
    revision: str
    evaluate: AnalysisEvaluator | None
    st: ModelDeploymentStatus
    events: list[Event] = field(default_factory=list)
    deadlines: list[float] = field(default_factory=list)
    desired: dict[str, int] = field(default_factory=dict)
    traffic: TrafficPlan = field(default_factory=lambda: TrafficPlan(stable_revision=None))
    analysis_due: AnalysisRequest | None = None
    validation_due: ValidationRequest | None = None
    progress_reason: str = "RolloutComplete"
    degraded_reason: str | None = None
    # Why the candidate is promoted, for the history entry.
    promotion_reason: str = "all steps completed"
    # Why the decision pauses (the last pause wins); see reconcile._finish.
    pause_reason: PauseReason | None = None

    @property
    def now(self) -> datetime:
        return self.obs.now

    def ready(self, revision: str | None) -> int:
        if revision is None:
            return 0
        seen = self.obs.revisions.get(revision)
        return seen.ready_replicas if seen is not None else 0

    def candidate_holds_all_traffic(self) -> bool:
        """Whether the candidate may take all traffic (blue/green switch, canary post-promotion).

        It moves there only with all its pods ready; once there (status.canaryWeight 100 from
        the previous decision) it stays while any pod is ready, so a scale-up does not switch
        back. With none ready (spec.replicas 0 included) the stable takes the traffic back until
        all are ready again.
        """
        ready = self.ready(self.st.canary_revision)
        held = self.st.canary_weight == 100
        return ready > 0 and (ready >= self.spec.replicas or held)

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type=type_, reason=reason, message=message))

    def requeue_at(self, when: datetime) -> None:
        self.deadlines.append(max(0.0, (when - self.now).total_seconds()))

    def requeue_in(self, seconds: float) -> None:
        self.deadlines.append(max(0.0, seconds))

    def set_phase(self, phase: Phase, message: str, reason: str) -> None:
        """Phase and message of the status; `reason` goes into the Progressing condition."""
        self.st.phase = phase
        self.st.message = message[:1024]
        self.progress_reason = reason

    def add_history(self, revision: str, version: str, outcome: Outcome, reason: str) -> None:
        model = (
            self.spec.model if revision == self.revision else model_of(self.st.history, revision)
        )
        self.st.history = with_entry(
            self.st.history,
            revision=revision,
            model=model,
            model_version=version,
            outcome=outcome,
            at=self.now,
            reason=reason,
            limit=history_limit(self.spec.revision_history_limit),
        )

    def deadline_passed(self, started: datetime | None, seconds: float) -> bool:
        """True once `seconds` have passed since `started`; otherwise asks for a requeue then."""
        if started is None:
            return False
        end = started + timedelta(seconds=seconds)
        if self.now >= end:
            return True
        self.requeue_at(end)
        return False
