"""Analysis steps and the validation gate as the state machine sees them (scripted verdicts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from modelrollout.api import (
    AnalysisKind,
    AnalysisRunPhase,
    MetricResult,
    ModelDeploymentSpec,
    Outcome,
    Phase,
    ValidationResult,
    ValidationStatus,
    Verdict,
)
from modelrollout.core.analysis_policy import evaluate
from modelrollout.core.observation import AnalysisMeasurements
from modelrollout.core.revision import compute_revision
from tests.unit.builders import canary, deployment_spec
from tests.unit.scripted_rollout import ScriptedEvaluator, changed
from tests.unit.simulated_cluster import SimRollout

ANALYSIS = {
    "interval": "30s",
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [
        {"name": "error-rate", "builtin": "errorRate", "max": 0.01},
        {"name": "p99", "builtin": "latencyP99", "max": 0.25},
    ],
}


def spec(
    version: str = "1", *, strategy: dict[str, Any] | None = None, **extra: Any
) -> ModelDeploymentSpec:
    """2 replicas, ANALYSIS; steps setWeight 20, analysis (p99), setWeight 60 unless `strategy`."""
    if strategy is None:
        strategy = canary(
            [{"setWeight": 20}, {"analysis": {"metrics": ["p99"]}}, {"setWeight": 60}]
        )
    return deployment_spec(version, replicas=2, strategy=strategy, analysis=ANALYSIS, **extra)


def at_analysis_step(evaluator: ScriptedEvaluator | None, available: bool = True) -> SimRollout:
    rollout = changed(spec(), spec("2"), evaluator, available)
    rollout.settle()
    assert rollout.status.current_step_index == 1
    return rollout


def background_over_a_pause(
    pause: dict[str, Any], analysis: dict[str, Any]
) -> tuple[ScriptedEvaluator, SimRollout]:
    """Version 1 Healthy, then version 2 asked for: background analysis over a pause step."""
    evaluator = ScriptedEvaluator(AnalysisRunPhase.RUNNING)
    steps = [{"setWeight": 20}, {"pause": pause}, {"setWeight": 60}]
    strategy = {"canary": {"steps": steps, "analysis": analysis}}
    return evaluator, changed(spec(strategy=strategy), spec("2", strategy=strategy), evaluator)


def test_analysis_not_available_pauses_and_never_passes() -> None:
    rollout = at_analysis_step(ScriptedEvaluator(AnalysisRunPhase.SUCCESSFUL), available=False)
    for _ in range(3):
        rollout.cluster.tick(600)
        plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.current_step_index == 1
    assert "analysis is not available" in plan.status.message
    assert plan.analysis_due is None


def test_no_evaluator_also_means_not_available() -> None:
    rollout = at_analysis_step(None)
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert "analysis is not available" in plan.status.message


def test_running_analysis_asks_for_measurements_and_passes_them_through() -> None:
    evaluator = ScriptedEvaluator(AnalysisRunPhase.RUNNING)
    rollout = at_analysis_step(evaluator)
    plan = rollout.reconcile()
    due = plan.analysis_due
    assert due is not None
    assert due.kind == AnalysisKind.STEP
    assert due.step_index == 1
    assert due.canary_revision == rollout.status.canary_revision
    assert due.stable_revision == rollout.status.stable_revision
    assert [m.name for m in due.spec.metrics] == ["p99"]
    assert due.measure_at == rollout.cluster.now + timedelta(seconds=30)
    assert plan.requeue_after == 30
    assert plan.status.phase == Phase.PROGRESSING
    fresh = AnalysisMeasurements(key=due.key, measured_at=rollout.cluster.now, results=())
    other = AnalysisMeasurements(key="someone-else", measured_at=rollout.cluster.now, results=())
    rollout.reconcile(measurements=fresh)
    rollout.reconcile(measurements=other)
    assert evaluator.fresh[-2:] == [fresh, None]


def test_successful_analysis_advances() -> None:
    evaluator = ScriptedEvaluator(AnalysisRunPhase.RUNNING)
    rollout = at_analysis_step(evaluator)
    evaluator.verdict = AnalysisRunPhase.SUCCESSFUL
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 2
    assert "AnalysisSuccessful" in [e.reason for e in plan.events]
    plan = rollout.settle()
    assert plan.status.phase == Phase.HEALTHY
    assert plan.status.history[0].outcome == Outcome.PROMOTED


def test_failed_analysis_rolls_back() -> None:
    evaluator = ScriptedEvaluator(AnalysisRunPhase.RUNNING)
    rollout = at_analysis_step(evaluator)
    stable = rollout.status.stable_revision
    candidate = rollout.status.canary_revision
    evaluator.verdict, evaluator.message = AnalysisRunPhase.FAILED, "p99 0.4 > 0.25"
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.message == f"revision {candidate} rolled back: step 2/3: p99 0.4 > 0.25"
    assert plan.status.aborted_revision == candidate
    assert plan.traffic.stable_revision == stable
    assert plan.traffic.canary_weight == 0
    assert plan.status.history[0].outcome == Outcome.ROLLED_BACK
    assert "p99 0.4 > 0.25" in plan.status.history[0].reason
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "AnalysisFailed")]
    degraded = next(c for c in plan.status.conditions if c.type == "Degraded")
    assert degraded.reason == "AnalysisFailed"
    # The reason survives later decisions and restarts.
    rollout.restart()
    rollout.cluster.tick(60)
    plan = rollout.settle()
    degraded = next(c for c in plan.status.conditions if c.type == "Degraded")
    assert degraded.reason == "AnalysisFailed"


def test_inconclusive_pauses_until_a_person_promotes() -> None:
    evaluator = ScriptedEvaluator(AnalysisRunPhase.INCONCLUSIVE, "too little traffic")
    rollout = at_analysis_step(evaluator)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "AnalysisInconclusive"
    assert plan.analysis_due is None
    rollout.request("promote")
    plan = rollout.settle()
    assert plan.status.phase == Phase.HEALTHY


def test_errors_pause_but_keep_measuring() -> None:
    evaluator = ScriptedEvaluator(AnalysisRunPhase.ERROR, "prometheus unreachable")
    rollout = at_analysis_step(evaluator)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "AnalysisError"
    assert plan.analysis_due is not None
    evaluator.verdict = AnalysisRunPhase.RUNNING
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PROGRESSING


def test_background_analysis_failure_rolls_back() -> None:
    evaluator, rollout = background_over_a_pause({"duration": "10m"}, {"startStep": 1})
    plan = rollout.settle()
    assert plan.analysis_due is not None
    assert plan.analysis_due.kind == AnalysisKind.BACKGROUND
    evaluator.verdict = AnalysisRunPhase.FAILED
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.history[0].outcome == Outcome.ROLLED_BACK


def test_validation_gate_runs_before_any_live_traffic() -> None:
    validation = {
        "dataset": {"uri": "s3://data/holdout.parquet", "format": "parquet"},
        "target": "label",
    }
    rollout = changed(spec(), spec("2", validation=validation), analysis_available=False)
    candidate = compute_revision(rollout.spec)
    plan = rollout.settle()
    assert plan.status.phase == Phase.VALIDATING
    assert plan.validation_due is not None
    assert plan.validation_due.revision == candidate
    assert rollout.cluster.deployments.get(candidate) is None or (
        rollout.cluster.deployments[candidate].replicas == 0
    )
    assert plan.status.canary_weight == 0
    result = ValidationStatus(
        revision=candidate, result=ValidationResult.FAILED, message="accuracy 0.7 < 0.9"
    )
    from modelrollout.core.decide import decide

    obs = replace(rollout.cluster.observe(), validation=result)
    plan = decide("md", "ns", rollout.spec, rollout.status, obs)
    assert plan.status.phase == Phase.DEGRADED
    degraded = next(c for c in plan.status.conditions if c.type == "Degraded")
    assert degraded.reason == "ValidationFailed"
    assert plan.status.validation is not None
    passed = result.model_copy(update={"result": ValidationResult.PASSED})
    plan = decide("md", "ns", rollout.spec, rollout.status, replace(obs, validation=passed))
    assert plan.status.phase == Phase.PROGRESSING
    assert plan.validation_due is None
    assert dict((d.revision, d.replicas) for d in plan.revisions)[candidate] == 1


def test_background_analysis_keeps_judging_during_a_manual_pause() -> None:
    evaluator, rollout = background_over_a_pause({}, {})
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "PauseStep"
    assert plan.analysis_due is not None
    assert plan.analysis_due.kind == AnalysisKind.BACKGROUND
    evaluator.verdict = AnalysisRunPhase.FAILED
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED


def test_an_inconclusive_background_run_during_a_pause_step_does_not_churn() -> None:
    evaluator, rollout = background_over_a_pause({}, {})
    rollout.settle()
    evaluator.verdict = AnalysisRunPhase.INCONCLUSIVE
    plan = rollout.reconcile()
    assert plan.status.pause_reason == "AnalysisInconclusive"
    assert [e.reason for e in plan.events] == ["Paused"]
    before = rollout.status
    rollout.cluster.tick(60)
    plan = rollout.reconcile()
    assert plan.status == before
    assert plan.events == ()


def test_a_step_narrows_the_metrics_and_sets_the_count() -> None:
    from modelrollout.api import AnalysisSpec, AnalysisStepSpec, BackgroundAnalysis
    from modelrollout.core.gates import effective_analysis

    base = AnalysisSpec.model_validate(ANALYSIS)
    narrowed = effective_analysis(base, AnalysisStepSpec(metrics=["p99"], count=5))
    assert [m.name for m in narrowed.metrics] == ["p99"]
    assert narrowed.count == 5
    assert effective_analysis(base, BackgroundAnalysis()).metrics == base.metrics
    assert effective_analysis(base, None) == base


def test_a_failing_metric_source_is_a_warning_event_once_per_cause() -> None:
    rollout = at_analysis_step(None)
    rollout.evaluate = evaluate
    plan = rollout.reconcile()

    def measured(message: str) -> list[str]:
        nonlocal plan
        due = plan.analysis_due
        assert due is not None
        rollout.cluster.now = max(rollout.cluster.now, due.measure_at)
        results = (
            MetricResult(
                metric="p99",
                verdict=Verdict.ERROR,
                message=message,
                measured_at=rollout.cluster.now,
            ),
        )
        plan = rollout.reconcile(AnalysisMeasurements(due.key, rollout.cluster.now, results))
        return [e.message for e in plan.events if e.reason == "MetricSourceError"]

    secret = "Secret ns/prom-auth not found"
    assert measured(secret) == [f"step 2/3: metric p99: {secret}"]
    assert measured(secret) == []  # the same cause again: no new event
    assert secret in plan.status.message  # and the status names it meanwhile
    assert measured("HTTP 401: unauthorized") == ["step 2/3: metric p99: HTTP 401: unauthorized"]
