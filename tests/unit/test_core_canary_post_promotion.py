"""The canary's post-promotion window: all traffic on the candidate, the stable kept up, and an
analysis whose failure rolls back to the stable (strategy.canary.postPromotionAnalysis)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.api import AnalysisKind, AnalysisRunPhase, AnalysisSpec, Outcome, Phase
from modelrollout.cli.render import list_view, status_view
from modelrollout.core.analysis_policy import evaluate
from modelrollout.core.children import OwnerRef, service_manifests
from modelrollout.core.observation import AnalysisMeasurements
from modelrollout.core.plan import Plan, TrafficPlan
from tests.unit.builders import ERROR_RATE_ANALYSIS as ANALYSIS
from tests.unit.builders import GATEWAY_ROUTING as GATEWAY
from tests.unit.fake_metric_provider import FakeMetricProvider
from tests.unit.scripted_rollout import ScriptedEvaluator, replicas
from tests.unit.simulated_cluster import SimRollout
from tests.unit.test_core_bluegreen import by_kind
from tests.unit.test_core_canary import spec, started

STEPS: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}]
POST_INDEX = len(STEPS) + 1
NAME_LABEL, REVISION_LABEL = "modelrollout.io/name", "modelrollout.io/revision"


def in_window(
    verdict: AnalysisRunPhase = AnalysisRunPhase.RUNNING, **extra: Any
) -> tuple[SimRollout, str, str, Plan]:
    """Version 2 taken through its steps (promoted past the pause) into the window."""
    rollout, stable, candidate = started(STEPS, post={}, analysis=ANALYSIS, **extra)
    rollout.cluster.analysis_available = True
    rollout.evaluate = by_kind({AnalysisKind.POST_PROMOTION: verdict})
    rollout.settle()
    assert rollout.status.pause_reason == "PauseStep"
    rollout.request("promote")
    plan = rollout.settle()
    return rollout, stable, candidate, plan


def main_selector(rollout: SimRollout, traffic: TrafficPlan) -> dict[str, str]:
    """The selector of the `<name>` Service clients call."""
    owner = OwnerRef.for_md("md", "uid")
    services = service_manifests(owner, "ns", rollout.spec, traffic)
    main = next(s for s in services if s["metadata"]["name"] == "md")
    selector: dict[str, str] = main["spec"]["selector"]
    return selector


def test_replicas_router_switches_the_service_to_the_candidate_and_keeps_the_stable() -> None:
    rollout, stable, candidate, plan = in_window()
    status = plan.status
    assert status.current_step_index == POST_INDEX
    assert status.phase == Phase.PROGRESSING
    assert status.message.startswith("post-promotion: analysis running")
    assert status.stable_revision == stable  # not promoted yet
    assert status.canary_weight == 100
    assert replicas(rollout) == {stable: 4, candidate: 4}  # the stable stays warm
    assert plan.traffic.active_revision == candidate
    assert main_selector(rollout, plan.traffic) == {NAME_LABEL: "md", REVISION_LABEL: candidate}
    due = plan.analysis_due
    assert due is not None
    assert (due.kind, due.step_index) == (AnalysisKind.POST_PROMOTION, POST_INDEX)
    # Nothing to compare with after promotion: the stable serves no traffic in the window.
    assert due.stable_revision is None


def test_candidate_is_scaled_to_full_size_before_the_window_opens() -> None:
    rollout, stable, candidate = started([{"setWeight": 20}], post={}, analysis=ANALYSIS)
    rollout.cluster.analysis_available = True
    rollout.evaluate = by_kind({})
    rollout.reconcile()
    rollout.cluster.make_all_ready()
    plan = rollout.reconcile()  # step done: promoting, candidate scaled up to spec.replicas
    assert plan.status.current_step_index == 1
    assert replicas(rollout) == {stable: 4, candidate: 4}
    rollout.cluster.make_ready(candidate, 3)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1
    assert plan.traffic.active_revision is None
    assert plan.status.canary_weight < 100
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 2
    assert plan.traffic.active_revision == candidate
    assert "PostPromotionStarted" in [e.reason for e in plan.events]


def test_window_gives_the_candidate_all_traffic_back_only_with_all_pods_ready() -> None:
    rollout, stable, candidate, plan = in_window(routing=GATEWAY)
    assert plan.traffic.canary_weight == 100
    rollout.cluster.make_ready(candidate, 0)
    plan = rollout.reconcile()
    assert (plan.traffic.canary_weight, plan.status.stable_revision) == (0, stable)
    rollout.cluster.make_ready(candidate, 1)
    assert rollout.reconcile().traffic.canary_weight == 0  # not all on one pod of four
    rollout.cluster.make_ready(candidate)
    assert rollout.reconcile().traffic.canary_weight == 100
    # Once it holds the traffic, a scale-up (3/5 ready) does not take it away.
    rollout.change_spec(rollout.spec.model_copy(update={"replicas": 5}))
    plan = rollout.reconcile()
    assert plan.traffic.canary_weight == 100
    assert replicas(rollout)[candidate] == 5


def test_window_scaled_to_zero_gives_the_candidate_no_traffic() -> None:
    rollout, stable, candidate, _ = in_window()
    rollout.change_spec(rollout.spec.model_copy(update={"replicas": 0}))
    rollout.reconcile()
    plan = rollout.reconcile()  # 0 of 0 pods ready is not "all ready"
    assert (plan.traffic.canary_weight, plan.traffic.active_revision) == (0, stable)
    assert replicas(rollout) == {stable: 0, candidate: 0}


def test_passing_post_promotion_analysis_promotes_and_scales_the_old_stable_down() -> None:
    rollout, stable, candidate, _ = in_window()
    rollout.evaluate = by_kind({AnalysisKind.POST_PROMOTION: AnalysisRunPhase.SUCCESSFUL})
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.HEALTHY
    assert plan.status.stable_revision == candidate
    assert plan.status.previous_stable_revision == stable
    assert plan.status.history[0].outcome == Outcome.PROMOTED
    assert plan.status.history[0].reason == "post-promotion analysis passed"
    assert replicas(rollout) == {stable: 0, candidate: 4}
    assert main_selector(rollout, plan.traffic) == {NAME_LABEL: "md"}


def test_failure_in_the_window_rolls_back_to_the_warm_stable_and_sticks() -> None:
    rollout, stable, candidate, plan = in_window(routing=GATEWAY)
    assert plan.traffic.canary_weight == 100  # exact router: the weight itself
    assert plan.traffic.active_revision is None
    assert replicas(rollout) == {stable: 4, candidate: 4}
    rollout.evaluate = by_kind({AnalysisKind.POST_PROMOTION: AnalysisRunPhase.FAILED})
    plan = rollout.reconcile()
    status = plan.status
    assert status.phase == Phase.DEGRADED
    assert status.stable_revision == stable
    assert status.aborted_revision == candidate
    # One router write: all traffic back on the stable, which never stopped running.
    assert (plan.traffic.stable_revision, plan.traffic.canary_weight) == (stable, 0)
    assert replicas(rollout)[stable] == 4
    degraded = next(c for c in status.conditions if c.type == "Degraded")
    assert degraded.reason == "AnalysisFailed"
    assert "post-promotion: error-rate 0.2 > 0.01" in status.message
    assert status.history[0].outcome == Outcome.ROLLED_BACK
    assert status.history[0].reason == "AnalysisFailed: post-promotion: error-rate 0.2 > 0.01"
    # The candidate keeps its pods until the router shows the traffic back on the stable.
    rollout.reconcile()
    assert replicas(rollout) == {stable: 4, candidate: 0}
    # Not retried by itself; `retry` starts it over from its first step.
    rollout.cluster.tick(3600)
    assert rollout.settle().status.phase == Phase.DEGRADED
    rollout.request("retry")
    assert rollout.reconcile().status.current_step_index == 0


def test_failure_with_the_replicas_router_restores_the_shared_service() -> None:
    rollout, stable, candidate, _ = in_window()
    rollout.evaluate = by_kind({AnalysisKind.POST_PROMOTION: AnalysisRunPhase.FAILED})
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.canary_weight == 0
    assert plan.traffic.active_revision is None
    assert replicas(rollout) == {stable: 4, candidate: 0}
    assert main_selector(rollout, plan.traffic) == {NAME_LABEL: "md"}


def test_promote_in_the_window_skips_the_analysis() -> None:
    rollout, stable, candidate, plan = in_window(AnalysisRunPhase.INCONCLUSIVE)
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "AnalysisInconclusive"
    assert plan.status.current_step_index == POST_INDEX
    rollout.request("promote_full")
    plan = rollout.reconcile()
    assert plan.status.stable_revision == candidate
    assert plan.status.previous_stable_revision == stable
    assert "PostPromotionSkipped" in [e.reason for e in plan.events]
    assert plan.status.history[0].reason == (
        "promoted by request (post-promotion analysis skipped)"
    )


def test_promote_full_before_the_window_still_opens_it() -> None:
    rollout, _, candidate = started(STEPS, post={}, analysis=ANALYSIS)
    rollout.cluster.analysis_available = True
    rollout.evaluate = by_kind({})
    rollout.reconcile()
    rollout.request("promote_full")
    plan = rollout.settle()
    assert plan.status.current_step_index == POST_INDEX
    assert plan.status.canary_revision == candidate
    assert plan.status.canary_weight == 100


def test_abort_in_the_window_returns_traffic_to_the_stable() -> None:
    rollout, stable, candidate, _ = in_window(routing=GATEWAY)
    rollout.request("abort")
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.aborted_revision == candidate
    assert plan.traffic.canary_weight == 0
    assert plan.status.history[0].outcome == Outcome.ABORTED
    degraded = next(c for c in plan.status.conditions if c.type == "Degraded")
    assert degraded.reason == "Aborted"
    assert replicas(rollout)[stable] == 4


def test_a_restarted_operator_resumes_the_same_analysis_run() -> None:
    rollout, _, _, plan = in_window()
    before = plan.analysis_due
    assert before is not None
    rollout.cluster.tick(5)
    rollout.restart()
    plan = rollout.reconcile()
    assert plan.status.current_step_index == POST_INDEX
    assert plan.analysis_due is not None
    assert plan.analysis_due.key == before.key  # the same run, not a new one
    assert plan.status.canary_weight == 100


def test_background_analysis_stops_when_the_window_opens() -> None:
    rollout, _, _, _ = in_window(background={})
    rollout.evaluate = asked = ScriptedEvaluator()
    rollout.cluster.tick(30)
    rollout.reconcile()
    assert [r.kind for r in asked.requests] == [AnalysisKind.POST_PROMOTION]


def test_spec_without_the_window_mid_window_promotes() -> None:
    rollout, _, candidate, _ = in_window()
    rollout.change_spec(spec("2", STEPS, analysis=ANALYSIS))  # postPromotionAnalysis removed
    plan = rollout.reconcile()
    assert plan.status.stable_revision == candidate
    assert plan.status.phase == Phase.HEALTHY


def _no_stable_results(analysis: AnalysisSpec, stable: str | None) -> AnalysisMeasurements:
    """What the real measuring code returns for the window's request. Its metric provider holds
    no data and records every fetch: comparisons without a stable are decided before any fetch,
    so none may happen (and no socket is ever opened)."""
    provider = FakeMetricProvider()

    async def measure() -> AnalysisMeasurements:
        runner = AnalysisRunner(providers={"prometheus": provider})
        try:
            results = await runner.measure(analysis, "ns", "md", "cand", stable)
        finally:
            await runner.aclose()
        return AnalysisMeasurements("", datetime.now().astimezone(), tuple(results))

    measured = asyncio.run(measure())
    assert provider.fetched == []
    return measured


COMPARING = {
    "interval": "30s",
    "prometheus": {"address": "http://127.0.0.1:9"},
    "metrics": [
        {"name": "ratio", "builtin": "errorRate", "compareToStable": {"maxRatio": 1.5}},
        {"name": "drift", "builtin": "predictionDrift", "max": 0.2},
    ],
}


def test_judges_that_compare_with_the_stable_never_pass_in_the_window() -> None:
    analysis = AnalysisSpec.model_validate(COMPARING)
    measured = _no_stable_results(analysis, None)
    assert [r.verdict.value for r in measured.results] == ["Inconclusive", "Inconclusive"]
    assert all("no stable" in r.message for r in measured.results)
    # Fed to the real evaluator in the window: onNoData pause -> paused, never promoted.
    rollout, stable, candidate = started(STEPS, post={}, analysis=COMPARING)
    rollout.cluster.analysis_available = True
    rollout.evaluate = evaluate
    rollout.settle()
    rollout.request("promote")
    plan = rollout.settle()
    assert plan.status.current_step_index == POST_INDEX
    for _ in range(3):
        due = plan.analysis_due
        if due is None:
            break
        rollout.cluster.now = max(rollout.cluster.now, due.measure_at)
        fresh = AnalysisMeasurements(due.key, rollout.cluster.now, measured.results)
        plan = rollout.reconcile(fresh)
        rollout.cluster.tick(1)
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "AnalysisInconclusive"
    assert plan.status.stable_revision == stable
    assert plan.status.canary_revision == candidate


def test_kubectl_modelrollout_status_shows_the_window() -> None:
    rollout, _, _, plan = in_window()
    obj = {
        "metadata": {"name": "md", "namespace": "ns", "generation": 2},
        "spec": rollout.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        "status": plan.status.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
    view = status_view(obj, rollout.cluster.now)
    assert "  [x] 2. pause (until promoted)" in view
    assert "  [>] post-promotion analysis (all metrics)" in view
    assert "weight 100%" in view
    row = list_view([obj], rollout.cluster.now, all_namespaces=False).splitlines()[1]
    assert "post-promotion" in row.split()
