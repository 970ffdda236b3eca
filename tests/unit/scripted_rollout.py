"""Shared rollout helpers for the state-machine tests: a scripted analysis evaluator, a rollout
that has just been asked for a second revision, and the replicas it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelrollout.api import AnalysisKind, AnalysisRunPhase, AnalysisStatus, ModelDeploymentSpec
from modelrollout.core.evaluation import AnalysisEvaluator, AnalysisOutcome
from modelrollout.core.observation import AnalysisMeasurements
from modelrollout.core.plan import AnalysisRequest
from tests.unit.builders import T0
from tests.unit.simulated_cluster import SimCluster, SimRollout


@dataclass
class ScriptedEvaluator:
    """An evaluator that returns the verdict the test sets (the same inputs give the same
    outcome), and records what it was asked. Background runs stay Running instead of
    Successful, as with the real outcome policy."""

    verdict: AnalysisRunPhase = AnalysisRunPhase.RUNNING
    message: str | None = None  # None: the verdict's own value
    by_kind: dict[AnalysisKind, AnalysisRunPhase] = field(
        default_factory=dict
    )  # overrides `verdict`
    requests: list[AnalysisRequest] = field(default_factory=list)
    fresh: list[AnalysisMeasurements | None] = field(default_factory=list)

    def __call__(
        self,
        request: AnalysisRequest,
        previous: AnalysisStatus | None,
        measurements: AnalysisMeasurements | None,
        now: datetime,
    ) -> AnalysisOutcome:
        self.requests.append(request)
        self.fresh.append(measurements)
        verdict = self.by_kind.get(request.kind, self.verdict)
        if request.kind is AnalysisKind.BACKGROUND and verdict is AnalysisRunPhase.SUCCESSFUL:
            verdict = AnalysisRunPhase.RUNNING  # as the real policy: background runs never complete
        message = verdict.value if self.message is None else self.message
        status = AnalysisStatus(
            revision=request.canary_revision, kind=request.kind.value, message=message
        )
        return AnalysisOutcome(verdict, message, status, now + timedelta(seconds=30))


def changed(
    first: ModelDeploymentSpec,
    second: ModelDeploymentSpec,
    evaluate: AnalysisEvaluator | None = None,
    analysis_available: bool = True,
) -> SimRollout:
    """A rollout settled (Healthy) on `first`, whose spec has just changed to `second`."""
    rollout = SimRollout(first, SimCluster(now=T0), evaluate=evaluate)
    rollout.cluster.analysis_available = analysis_available
    rollout.settle()
    rollout.change_spec(second)
    return rollout


def replicas(rollout: SimRollout) -> dict[str, int]:
    """Replicas per revision, as the simulated cluster runs them."""
    return {r: d.replicas for r, d in rollout.cluster.deployments.items()}
