"""Exact-weight routers and undo: the old stable stays up until the router reads the switch back."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modelrollout.api import ModelDeploymentSpec, Phase
from modelrollout.core.observation import TrafficObservation
from modelrollout.core.revision import compute_revision
from modelrollout.core.routing import canary_replicas_for_weight, effective_weight
from tests.unit.builders import GATEWAY_ROUTING, T0, canary, deployment_spec
from tests.unit.scripted_rollout import replicas
from tests.unit.simulated_cluster import SimCluster, SimRollout


def spec(version: str = "1", **extra: Any) -> ModelDeploymentSpec:
    """3 replicas behind the Gateway API; steps setWeight 30, pause."""
    strategy = canary([{"setWeight": 30}, {"pause": {}}], routing=GATEWAY_ROUTING)
    return deployment_spec(version, strategy=strategy, **extra)


def healthy(**extra: Any) -> SimRollout:
    rollout = SimRollout(spec(**extra), SimCluster(now=T0))
    rollout.settle()
    assert rollout.status.phase == Phase.HEALTHY
    return rollout


def test_replica_arithmetic() -> None:
    assert canary_replicas_for_weight(4, 0) == 0
    assert canary_replicas_for_weight(4, 20) == 1
    assert canary_replicas_for_weight(4, 50) == 4
    assert canary_replicas_for_weight(4, 95) == 16  # capped at 4x the stable
    assert canary_replicas_for_weight(1, 1) == 1
    assert canary_replicas_for_weight(0, 50) == 0
    assert effective_weight(4, 0) == 0
    assert effective_weight(0, 2) == 100
    assert effective_weight(1000, 1) == 1  # some traffic is never reported as none


def test_exact_router_runs_the_canary_at_full_size_and_weights_only_ready_pods() -> None:
    rollout = healthy()
    stable = rollout.status.stable_revision
    rollout.change_spec(spec("2"))
    candidate = compute_revision(rollout.spec)
    plan = rollout.reconcile()
    assert replicas(rollout) == {stable: 3, candidate: 3}
    assert plan.traffic.canary_weight == 0
    rollout.cluster.make_ready(candidate, 2)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 0  # needs all 3 before the first weight
    assert plan.traffic.canary_weight == 0
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.traffic.canary_weight == 30
    assert plan.traffic.canary_revision == candidate
    # The weight is asked for; the step completes once the router reads it back.
    assert plan.status.current_step_index == 0
    assert plan.status.canary_weight == 0
    assert "waiting for the router to confirm" in plan.status.message
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1
    assert plan.status.canary_weight == 30
    assert plan.status.phase == Phase.PAUSED


def test_a_router_that_never_confirms_pauses_the_step_and_goes_on_once_it_does() -> None:
    rollout = healthy()
    rollout.change_spec(spec("2"))
    candidate = compute_revision(rollout.spec)
    rollout.cluster.router_stuck = True
    rollout.reconcile()
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.traffic.canary_weight == 30  # written each time
    assert plan.status.phase == Phase.PROGRESSING and plan.status.current_step_index == 0
    assert plan.requeue_after is not None and plan.requeue_after <= 2
    rollout.cluster.tick(rollout.spec.progress_deadline_seconds + 1)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "WeightNotConfirmed"
    assert "the router holds 0% after 600s" in plan.status.message
    assert plan.status.canary_weight == 0
    assert plan.status.stable_revision != candidate
    rollout.cluster.router_stuck = False
    rollout.reconcile()
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1 and plan.status.canary_weight == 30


def promoting() -> tuple[SimRollout, str, str]:
    """Version 2 paused at 30% behind an exact router, a promote requested: (rollout, stable,
    candidate)."""
    rollout = healthy()
    stable = rollout.status.stable_revision
    assert stable is not None
    rollout.change_spec(spec("2"))
    candidate = compute_revision(rollout.spec)
    rollout.settle()
    rollout.request("promote")
    return rollout, stable, candidate


def test_exact_router_keeps_the_old_stable_until_the_router_reads_the_switch_back() -> None:
    rollout, stable, candidate = promoting()
    # The router still shows the old split (the shell has not written it yet).
    rollout.cluster.router = TrafficObservation(stable, candidate, 30)
    plan = rollout.cluster.reconcile(rollout.spec, rollout.status)
    rollout.status = plan.status
    assert plan.status.stable_revision == candidate
    assert plan.traffic.stable_revision == candidate
    assert plan.traffic.canary_weight == 0
    assert dict((d.revision, d.replicas) for d in plan.revisions)[stable] == 3
    assert plan.requeue_after is not None
    # The simulated shell wrote the router; next decision scales the old stable down.
    plan = rollout.reconcile()
    assert replicas(rollout)[stable] == 0


def test_a_router_never_read_back_keeps_the_old_stable_after_the_promotion() -> None:
    rollout, stable, candidate = promoting()
    for _ in range(3):
        rollout.cluster.router = None  # the routing object could not be read back
        plan = rollout.reconcile()
        assert plan.status.stable_revision == candidate
        assert replicas(rollout)[stable] == 3
        assert plan.requeue_after is not None
    # The last decision's routing was written and reads back: now the old stable goes.
    rollout.reconcile()
    assert replicas(rollout)[stable] == 0


def test_a_first_revision_superseded_before_any_stable_is_scaled_down_without_a_router() -> None:
    rollout = SimRollout(spec("1"), SimCluster(now=T0))
    first = rollout.reconcile().revision
    assert replicas(rollout) == {first: 3}
    rollout.change_spec(spec("2"))
    rollout.reconcile()
    assert rollout.cluster.router is None
    assert replicas(rollout)[first] == 0


def test_rollback_window_keeps_the_previous_revision_warm_and_undo_skips_the_steps() -> None:
    rollout = healthy(rollbackWindow="10m")
    first = rollout.status.stable_revision
    assert first is not None
    rollout.change_spec(spec("2", rollbackWindow="10m"))
    second = compute_revision(rollout.spec)
    rollout.settle()
    rollout.request("promote")
    plan = rollout.settle()
    assert plan.status.stable_revision == second
    assert replicas(rollout) == {first: 3, second: 3}
    assert plan.requeue_after == 600
    # Undo inside the window: the CLI writes the old model back into the spec.
    rollout.cluster.tick(60)
    rollout.change_spec(spec("1", rollbackWindow="10m"))
    plan = rollout.reconcile()
    assert "FastRollback" in [e.reason for e in plan.events]
    plan = rollout.settle()
    assert plan.status.phase == Phase.HEALTHY
    assert plan.status.stable_revision == first
    assert plan.status.previous_stable_revision == second


def test_undo_after_the_window_goes_through_the_steps() -> None:
    rollout = healthy(rollbackWindow="1m")
    rollout.change_spec(spec("2", rollbackWindow="1m"))
    rollout.settle()
    rollout.request("promote")
    rollout.settle()
    rollout.cluster.tick(120)
    plan = rollout.settle()
    first = plan.status.previous_stable_revision
    assert first is not None
    assert replicas(rollout)[first] == 0
    rollout.change_spec(spec("1", rollbackWindow="1m"))
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.canary_revision == first


def test_history_keeps_the_model_needed_for_undo() -> None:
    rollout = healthy()
    rollout.change_spec(spec("2"))
    rollout.settle()
    rollout.request("promote")
    plan = rollout.settle()
    promoted = [h for h in plan.status.history if h.outcome == "Promoted"]
    assert [h.model_version for h in promoted] == ["2", "1"]
    assert promoted[1].model is not None
    assert promoted[1].model.uri == "s3://models/fraud/1.skops"


def test_someone_else_moving_the_weight_is_put_back_and_named_once() -> None:
    rollout = healthy()
    rollout.change_spec(spec("2"))
    plan = rollout.settle()
    assert (plan.status.phase, plan.status.canary_weight) == (Phase.PAUSED, 30)
    router = rollout.cluster.router
    assert router is not None
    # An Argo CD sync of the route from Git: all traffic back on the stable.
    rollout.cluster.router = replace(
        router, canary_weight=0, changed_by="argocd-controller", routing_object="HTTPRoute ns/fraud"
    )
    plan = rollout.reconcile()
    changed = [e.message for e in plan.events if e.reason == "TrafficRoutingChanged"]
    assert changed == [
        f"HTTPRoute ns/fraud was changed by argocd-controller: it sends 0% to revision "
        f"{plan.status.canary_revision}, the rollout 30%; setting it back"
    ]
    assert plan.traffic.canary_weight == 30  # written back
    assert plan.status.canary_weight == 0  # the status claims what the router holds
    assert plan.requeue_after is not None and plan.requeue_after <= 2  # and reads it back soon
    plan = rollout.reconcile()
    assert plan.status.canary_weight == 30
    assert not [e for e in plan.events if e.reason == "TrafficRoutingChanged"]
