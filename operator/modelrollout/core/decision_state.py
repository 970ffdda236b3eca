"""The working state of one decision: shared by `decide`, the gates and the strategies.

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
from modelrollout.core.plan import Event, TrafficPlan, ValidationRequest

# Requeue soon while waiting for a router to read back a change (routing objects are not watched).
ROUTER_RECHECK_SECONDS = 2.0
# Pods are not watched: while some are not ready, look at them again after as long as the wait
# has lasted so far, within these bounds (a few reads per wait, however many objects wait).
PODS_RECHECK_SECONDS = (10.0, 60.0)


@dataclass
class DecisionState:
    """The status being decided (`st`, a copy) and what the decision has found so far.

    `decide` runs its stages in a fixed order: lifecycle (start, supersede, retry, abort), one
    step (the strategy's, or the first deployment, steady or aborted layout), retain, prune,
    finish. The fields below are written during the stages and read later in the same call;
    who writes and who reads each one, and which write wins:

    - `events`, `deadlines`: appended by anyone, in order; Plan.events keeps that order,
      Plan.requeue_after is the earliest deadline.
    - `desired` (revision -> replicas), `traffic`: written by the step's layout (the strategy's
      rollout layout, or the steady/aborted/initial layout in `decide`); then `decide._retain`
      keeps up what the layout left at 0 or out but may still get traffic, sets every other
      observed revision to 0, and `decide._prune` drops the pruned ones. Only the layout
      writes `traffic`.
    - `progress_reason`: written only by `set_phase`/`pause`, so it belongs to the last phase
      set (the last one wins); read by `decide._finish` for the Progressing condition.
    - `degraded_reason`: written only by `set_phase` when the phase becomes Degraded (the last
      Degraded wins; never cleared, so read it only while the phase is Degraded); read by
      `decide._aborted` (an abort earlier in this decision names its reason, else the reason
      kept in the Degraded condition) and `decide._finish` (the Degraded condition).
    - `pause_reason`: written only by `pause` (the last pause wins; never cleared, so read it only
      while st.phase is Paused); read by the canary's background analysis after the steps ran
      (a pause step lets it run, any other pause holds it back) and by `decide._finish`, which
      turns it into status.pauseReason/pauseStartedAt.
    - `validation_due`: written by `gates.validation_gate` (at most one gate runs per decision);
      read by `decide` into Plan.validation_due.

    Outputs of one step are not kept here but returned: the promotion reason and the analysis to
    measure next travel in the strategy's StepResult.
    """

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
    validation_due: ValidationRequest | None = None
    progress_reason: str = "RolloutComplete"
    degraded_reason: str | None = None
    pause_reason: PauseReason | None = None

    @property
    def now(self) -> datetime:
        return self.obs.now

    def ready(self, revision: str | None) -> int:
        if revision is None:
            return 0
        seen = self.obs.revisions.get(revision)
        return seen.ready_replicas if seen is not None else 0

    def waiting_for_pods(self, revision: str, message: str) -> None:
        """Phase Progressing while `revision`'s pods come up, looked at again now and then; when
        its pods are in trouble (a missing image, a crash loop...) the message says so, with a
        Warning event each time the trouble changes."""
        trouble = self._trouble(revision)
        waited = (
            (self.now - self.st.step_started_at).total_seconds() if self.st.step_started_at else 0
        )
        low, high = PODS_RECHECK_SECONDS
        self.requeue_in(min(max(waited, low), high))
        if trouble is not None:
            if trouble not in (self.st.message or ""):
                self.event("Warning", "PodsNotRunning", f"revision {revision}: {trouble}")
            message = f"{message}: {trouble}"
        self.set_phase(Phase.PROGRESSING, message, "WaitingForPods")

    def trouble_of(self, revision: str | None) -> str:
        """`: <why>` when pods of `revision` are in trouble, for messages; else empty."""
        trouble = self._trouble(revision)
        return f": {trouble}" if trouble else ""

    def _trouble(self, revision: str | None) -> str | None:
        seen = self.obs.revisions.get(revision) if revision is not None else None
        return seen.trouble if seen is not None else None

    def candidate_holds_all_traffic(self, routed_weight: int | None = None) -> bool:
        """Whether the candidate may take all traffic (blue/green switch, canary post-promotion).

        It moves there only with all its pods ready; once there it stays while any pod is ready,
        so a scale-up does not switch back. "There" is the router's read-back (`routed_weight`)
        for routers that hold weights, else status.canaryWeight 100 from the previous decision.
        With none ready (spec.replicas 0 included) the stable takes the traffic back until all
        are ready again.
        """
        ready = self.ready(self.st.canary_revision)
        held = (self.st.canary_weight if routed_weight is None else routed_weight) == 100
        return ready > 0 and (ready >= self.spec.replicas or held)

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type=type_, reason=reason, message=message))

    def requeue_at(self, when: datetime) -> None:
        self.deadlines.append(max(0.0, (when - self.now).total_seconds()))

    def requeue_in(self, seconds: float) -> None:
        self.deadlines.append(max(0.0, seconds))

    def set_phase(self, phase: Phase, message: str, reason: str) -> None:
        """Phase and message of the status; `reason` goes into the Progressing condition, and
        into the Degraded condition when the phase is Degraded. Paused goes through `pause`."""
        assert phase != Phase.PAUSED, "pause() sets Paused: it also records why"
        self._enter_phase(phase, message, reason)
        if phase == Phase.DEGRADED:
            self.degraded_reason = reason

    def pause(self, reason: PauseReason, message: str) -> None:
        """Phase Paused; pauseReason/pauseStartedAt are settled once the decision is complete."""
        self._enter_phase(Phase.PAUSED, message, reason)
        self.pause_reason = reason

    def _enter_phase(self, phase: Phase, message: str, reason: str) -> None:
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
