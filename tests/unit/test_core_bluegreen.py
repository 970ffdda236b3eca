"""The blue/green state machine: preview, promotion, analysis hooks, scale-down delay."""

from __future__ import annotations

from typing import Any

from modelrollout.api import AnalysisKind, AnalysisRunPhase, ModelDeploymentSpec, Outcome, Phase
from modelrollout.core.revision import compute_revision
from tests.unit.builders import ERROR_RATE_ANALYSIS, T0, deployment_spec
from tests.unit.scripted_rollout import ScriptedEvaluator, replicas
from tests.unit.simulated_cluster import SimCluster, SimRollout


def spec(version: str = "1", **blue_green: Any) -> ModelDeploymentSpec:
    """3 replicas, blue/green with `blue_green` as its fields, an error-rate analysis."""
    strategy = {"blueGreen": blue_green}
    return deployment_spec(version, strategy=strategy, analysis=ERROR_RATE_ANALYSIS)


def by_kind(verdicts: dict[AnalysisKind, AnalysisRunPhase]) -> ScriptedEvaluator:
    """Scripted verdicts per analysis kind (Running for the others)."""
    return ScriptedEvaluator(message="error-rate 0.2 > 0.01", by_kind=verdicts)


def started(**blue_green: Any) -> tuple[SimRollout, str, str]:
    """A Healthy first revision, then a spec change to revision 2."""
    rollout = SimRollout(spec(**blue_green), SimCluster(now=T0))
    rollout.cluster.analysis_available = True
    rollout.settle()
    stable = rollout.status.stable_revision
    assert stable is not None
    rollout.change_spec(spec("2", **blue_green))
    return rollout, stable, compute_revision(rollout.spec)


def test_preview_then_automatic_switch_then_delayed_scale_down() -> None:
    rollout, stable, candidate = started(previewReplicas=1, scaleDownDelaySeconds=30)
    plan = rollout.reconcile()
    assert replicas(rollout) == {stable: 3, candidate: 1}
    assert plan.traffic.active_revision == stable
    assert plan.traffic.preview_revision == candidate
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()  # preview ready -> switching: scale to full size first
    assert plan.status.current_step_index == 2
    assert replicas(rollout) == {stable: 3, candidate: 3}
    assert plan.traffic.active_revision == stable
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.status.stable_revision == candidate
    assert plan.traffic.active_revision == candidate
    assert plan.status.phase == Phase.HEALTHY
    assert replicas(rollout)[stable] == 3  # scaleDownDelaySeconds
    assert plan.requeue_after == 30
    rollout.cluster.tick(30)
    rollout.reconcile()
    assert replicas(rollout)[stable] == 0


def test_manual_promotion_waits_in_paused() -> None:
    rollout, stable, candidate = started(autoPromotion=False)
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "AwaitingPromotion"
    assert plan.traffic.active_revision == stable
    rollout.request("promote")
    plan = rollout.settle()
    assert plan.status.stable_revision == candidate
    assert plan.traffic.active_revision == candidate


def test_auto_promotion_seconds_counts_from_preview_ready() -> None:
    rollout, stable, candidate = started(autoPromotionSeconds=60)
    rollout.reconcile()
    rollout.cluster.tick(45)
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1
    assert plan.requeue_after == 60
    rollout.cluster.tick(59)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1
    assert plan.traffic.active_revision == stable
    rollout.cluster.tick(1)
    plan = rollout.settle()
    assert plan.traffic.active_revision == candidate


def test_pre_promotion_analysis_failure_keeps_the_stable_active() -> None:
    rollout, stable, candidate = started(prePromotionAnalysis={})
    rollout.evaluate = by_kind({AnalysisKind.PRE_PROMOTION: AnalysisRunPhase.RUNNING})
    plan = rollout.settle()
    assert plan.analysis_due is not None
    assert plan.analysis_due.kind == AnalysisKind.PRE_PROMOTION
    assert plan.status.current_step_index == 0
    rollout.evaluate = by_kind({AnalysisKind.PRE_PROMOTION: AnalysisRunPhase.FAILED})
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.traffic.active_revision == stable
    assert replicas(rollout) == {stable: 3, candidate: 0}
    assert plan.status.history[0].outcome == Outcome.ROLLED_BACK


def test_post_promotion_analysis_failure_switches_back() -> None:
    rollout, stable, candidate = started(postPromotionAnalysis={})
    rollout.evaluate = by_kind({})
    plan = rollout.settle()
    assert plan.status.current_step_index == 3
    assert plan.traffic.active_revision == candidate
    assert plan.status.stable_revision == stable
    assert replicas(rollout) == {stable: 3, candidate: 3}
    rollout.evaluate = by_kind({AnalysisKind.POST_PROMOTION: AnalysisRunPhase.FAILED})
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.traffic.active_revision == stable
    # The candidate keeps its pods until the router shows traffic back on the stable.
    assert replicas(rollout)[candidate] == 3
    assert plan.requeue_after == 2.0
    rollout.reconcile()
    assert replicas(rollout) == {stable: 3, candidate: 0}


def test_post_promotion_switches_to_the_candidate_only_with_all_its_pods_ready() -> None:
    rollout, stable, candidate = started(postPromotionAnalysis={})
    rollout.evaluate = by_kind({})
    assert rollout.settle().traffic.active_revision == candidate
    rollout.change_spec(spec("2", postPromotionAnalysis={}).model_copy(update={"replicas": 5}))
    rollout.cluster.make_ready(stable)
    plan = rollout.reconcile()  # 3/5 ready: a scale-up does not switch back
    assert (plan.traffic.active_revision, plan.status.canary_weight) == (candidate, 100)
    rollout.cluster.make_ready(candidate, 0)
    plan = rollout.reconcile()
    assert (plan.traffic.active_revision, plan.status.canary_weight) == (stable, 0)
    rollout.cluster.make_ready(candidate, 4)
    plan = rollout.reconcile()  # back only once all 5 are ready
    assert plan.traffic.active_revision == stable
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.traffic.active_revision == candidate
    assert plan.status.stable_revision == stable  # the analysis still decides


def test_post_promotion_success_promotes() -> None:
    rollout, _, candidate = started(postPromotionAnalysis={})
    rollout.evaluate = by_kind({AnalysisKind.POST_PROMOTION: AnalysisRunPhase.SUCCESSFUL})
    plan = rollout.settle()
    assert plan.status.phase == Phase.HEALTHY
    assert plan.status.stable_revision == candidate


def test_abort_during_preview_and_unavailable_analysis() -> None:
    rollout, stable, candidate = started(prePromotionAnalysis={})
    rollout.cluster.analysis_available = False
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert "analysis is not available" in plan.status.message
    rollout.request("abort")
    plan = rollout.settle()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.aborted_revision == candidate
    assert plan.traffic.active_revision == stable
    assert replicas(rollout)[candidate] == 0


def test_promote_during_post_promotion_analysis_finishes_the_rollout() -> None:
    rollout, stable, candidate = started(postPromotionAnalysis={})
    rollout.evaluate = by_kind({AnalysisKind.POST_PROMOTION: AnalysisRunPhase.INCONCLUSIVE})
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "AnalysisInconclusive"
    assert plan.traffic.active_revision == candidate
    rollout.request("promote")
    plan = rollout.reconcile()
    assert plan.status.stable_revision == candidate
    assert "PostPromotionSkipped" in [e.reason for e in plan.events]
    assert plan.status.history[0].reason == (
        "promoted by request (post-promotion analysis skipped)"
    )
    assert plan.status.previous_stable_revision == stable


def test_spec_paused_holds_the_preview_and_promote_full_switches() -> None:
    rollout = SimRollout(spec(autoPromotion=False), SimCluster(now=T0))
    rollout.settle()
    stable = rollout.status.stable_revision
    paused = ModelDeploymentSpec.model_validate(
        {**spec("2", autoPromotion=False).model_dump(by_alias=True), "paused": True}
    )
    rollout.change_spec(paused)
    candidate = compute_revision(paused)
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "SpecPaused"
    assert plan.status.current_step_index == 0
    assert plan.traffic.active_revision == stable
    rollout.request("promote_full")
    plan = rollout.settle()
    assert plan.status.current_step_index == 2  # promoted past the preview, still frozen
    assert plan.traffic.active_revision == stable
    rollout.change_spec(spec("2", autoPromotion=False))
    plan = rollout.settle()
    assert plan.status.stable_revision == candidate
    assert plan.traffic.active_revision == candidate
