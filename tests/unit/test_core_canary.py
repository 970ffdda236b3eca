"""The canary state machine, transition by transition, on the in-memory cluster."""

from __future__ import annotations

from typing import Any

from modelrollout.api import ModelDeploymentSpec, Outcome, Phase
from modelrollout.core.children import REVISION_LABEL, OwnerRef, service_manifests
from modelrollout.core.revision import compute_revision
from tests.unit.builders import T0, canary, deployment_spec
from tests.unit.scripted_rollout import replicas
from tests.unit.simulated_cluster import SimCluster, SimRollout


def spec(
    version: str = "1",
    steps: list[dict[str, Any]] | None = None,
    *,
    routing: dict[str, Any] | None = None,
    post: dict[str, Any] | None = None,
    background: dict[str, Any] | None = None,
    **extra: Any,
) -> ModelDeploymentSpec:
    """4 replicas; steps setWeight 20, pause unless given."""
    strategy = canary(
        steps or [{"setWeight": 20}, {"pause": {}}],
        routing=routing,
        post=post,
        background=background,
    )
    return deployment_spec(version, replicas=4, strategy=strategy, **extra)


def healthy(
    version: str = "1", steps: list[dict[str, Any]] | None = None, **extra: Any
) -> SimRollout:
    """A rollout whose first revision is deployed and Healthy."""
    rollout = SimRollout(spec(version, steps, **extra), SimCluster(now=T0))
    rollout.settle()
    assert rollout.status.phase == Phase.HEALTHY
    return rollout


def started(steps: list[dict[str, Any]] | None = None, **extra: Any) -> tuple[SimRollout, str, str]:
    """A Healthy first revision, then version 2 applied: (rollout, stable, candidate)."""
    rollout = healthy("1", steps, **extra)
    stable = rollout.status.stable_revision
    assert stable is not None
    rollout.change_spec(spec("2", steps, **extra))
    return rollout, stable, compute_revision(rollout.spec)


def test_initial_deployment_goes_live_without_steps() -> None:
    rollout = SimRollout(spec(), SimCluster(now=T0))
    plan = rollout.reconcile()
    revision = compute_revision(rollout.spec)
    assert plan.status.phase == Phase.PROGRESSING
    assert replicas(rollout) == {revision: 4}
    assert plan.traffic.stable_revision is None
    rollout.cluster.make_ready(revision)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.HEALTHY
    assert plan.status.stable_revision == revision
    assert plan.status.history[0].outcome == Outcome.PROMOTED
    assert plan.status.history[0].model is not None
    assert [e.reason for e in plan.events] == ["Promoted"]
    assert plan.status.observed_generation == 1


def test_a_new_object_s_services_are_written_once() -> None:
    # Deploying and then promoting the first revision must not change any Service: at 1,000
    # new objects, each Service apply costs the API server most of a second.
    for extra in ({}, {"routing": {"gatewayAPI": {"httpRoute": "fraud"}}}):
        rollout = SimRollout(spec(**extra), SimCluster(now=T0))
        owner = OwnerRef.for_md("fraud", "uid-1")
        deploying = rollout.reconcile()
        rollout.cluster.make_ready(compute_revision(rollout.spec))
        promoted = rollout.reconcile()
        assert promoted.status.phase == Phase.HEALTHY
        first = service_manifests(owner, "ml", rollout.spec, deploying.traffic)
        assert first == service_manifests(owner, "ml", rollout.spec, promoted.traffic)
        revision = compute_revision(rollout.spec)
        assert first[1]["spec"]["selector"][REVISION_LABEL] == revision


def test_replicas_router_approximates_weight_and_keeps_stable_full() -> None:
    rollout, stable, candidate = started([{"setWeight": 20}, {"setWeight": 50}, {"pause": {}}])
    plan = rollout.reconcile()
    assert plan.status.canary_revision == candidate
    assert replicas(rollout) == {stable: 4, candidate: 1}  # 1/(4+1) = 20%
    assert plan.status.canary_weight == 0  # nothing ready yet: no traffic
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert replicas(rollout) == {stable: 4, candidate: 4}  # aiming at 50%
    assert plan.status.canary_weight == 20  # measured from READY pods
    assert plan.status.current_step_index == 1
    rollout.cluster.make_ready(candidate, 2)
    plan = rollout.reconcile()
    assert plan.status.canary_weight == 33  # 2 of 6 ready pods
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.canary_weight == 50
    assert replicas(rollout)[stable] == 4


def test_timed_pause_requeues_and_continues_after_a_restart() -> None:
    steps = [{"setWeight": 25}, {"pause": {"duration": "2m"}}, {"setWeight": 50}]
    rollout, _, _ = started(steps)
    rollout.reconcile()
    rollout.cluster.make_all_ready()
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1
    assert plan.status.phase == Phase.PROGRESSING
    assert plan.requeue_after == 120
    rollout.cluster.tick(90)
    rollout.restart()
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1
    assert plan.requeue_after == 30
    rollout.cluster.tick(30)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 2


def test_manual_pause_waits_for_promote_and_a_token_acts_once() -> None:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 40}, {"pause": {}}]
    rollout, _, _ = started(steps)
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "PauseStep"
    assert plan.status.current_step_index == 1
    assert plan.requeue_after is None
    rollout.request("promote")
    plan = rollout.settle()
    assert plan.status.current_step_index == 3
    assert plan.status.phase == Phase.PAUSED
    # The same token again (e.g. a re-sent patch) does nothing.
    assert rollout.status.promote == rollout.status.handled_requests.promote
    plan = rollout.settle()
    assert plan.status.current_step_index == 3


def test_promote_full_skips_the_remaining_steps() -> None:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 40}, {"pause": {}}]
    rollout, _, candidate = started(steps)
    rollout.settle()
    rollout.request("promote_full")
    plan = rollout.settle()
    assert plan.status.phase == Phase.HEALTHY
    assert plan.status.stable_revision == candidate
    assert plan.status.history[0].outcome == Outcome.PROMOTED
    assert replicas(rollout)[candidate] == 4


def test_promotion_with_the_replicas_router_waits_for_full_candidate() -> None:
    rollout, stable, candidate = started([{"setWeight": 20}])
    rollout.reconcile()
    rollout.cluster.make_all_ready()
    plan = rollout.reconcile()  # step done; promoting: candidate scaled to spec.replicas
    assert plan.status.stable_revision == stable
    assert replicas(rollout) == {stable: 4, candidate: 4}
    rollout.cluster.make_ready(candidate, 3)
    plan = rollout.reconcile()
    assert plan.status.stable_revision == stable
    assert replicas(rollout)[stable] == 4
    rollout.cluster.make_ready(candidate)
    plan = rollout.reconcile()
    assert plan.status.stable_revision == candidate
    assert plan.status.previous_stable_revision == stable
    assert replicas(rollout) == {stable: 0, candidate: 4}


def test_abort_sends_all_traffic_to_stable_at_once_and_sticks() -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollout, stable, candidate = started(steps)
    rollout.settle()
    assert rollout.status.canary_weight == 50
    rollout.request("abort")
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.aborted_revision == candidate
    assert plan.traffic.stable_revision == stable
    assert plan.traffic.canary_weight == 0
    assert replicas(rollout) == {stable: 4, candidate: 0}
    assert plan.status.history[0].outcome == Outcome.ABORTED
    assert plan.status.history[0].revision == candidate
    degraded = next(c for c in plan.status.conditions if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == ("True", "Aborted")
    assert [e.reason for e in plan.events] == ["Aborted"]
    # Not retried by itself, whatever happens next.
    rollout.cluster.tick(3600)
    plan = rollout.settle()
    assert plan.status.phase == Phase.DEGRADED
    assert replicas(rollout)[candidate] == 0
    assert plan.events == ()
    assert len(plan.status.history) == 2


def test_retry_starts_the_aborted_candidate_from_its_first_step() -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollout, _, candidate = started(steps)
    rollout.settle()
    rollout.request("abort")
    rollout.settle()
    rollout.request("retry")
    plan = rollout.reconcile()
    assert plan.status.aborted_revision is None
    assert plan.status.current_step_index == 0
    assert plan.status.canary_revision == candidate
    assert "RolloutRetried" in [e.reason for e in plan.events]
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.current_step_index == 1


def test_a_new_spec_mid_rollout_starts_over_from_the_new_revision() -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollout, stable, old_candidate = started(steps)
    rollout.settle()
    rollout.change_spec(spec("3", steps))
    new_candidate = compute_revision(rollout.spec)
    plan = rollout.reconcile()
    assert plan.status.canary_revision == new_candidate
    assert plan.status.current_step_index == 0
    assert replicas(rollout) == {stable: 4, old_candidate: 0, new_candidate: 4}
    assert plan.status.history[0].revision == old_candidate
    assert plan.status.history[0].outcome == Outcome.ABORTED
    assert plan.status.stable_revision == stable
    assert plan.status.canary_weight == 0


def test_a_request_sent_as_a_new_revision_starts_lapses_with_a_warning() -> None:
    # The person saw the old candidate paused; the spec changed before the operator read it.
    steps = [{"setWeight": 10}, {"pause": {}}]
    rollout, _, candidate = started(steps)
    rollout.request("promote")
    plan = rollout.reconcile()
    assert plan.status.canary_revision == candidate
    assert plan.status.current_step_index == 0
    lapsed = [e for e in plan.events if e.reason == "RequestLapsed"]
    assert len(lapsed) == 1 and lapsed[0].type == "Warning"
    assert "promote request" in lapsed[0].message and candidate in lapsed[0].message
    plan = rollout.settle()
    assert plan.status.phase == Phase.PAUSED and plan.status.current_step_index == 1
    assert not [e for e in plan.events if e.reason == "RequestLapsed"]


def test_spec_back_to_the_stable_drops_the_candidate() -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollout, stable, candidate = started(steps)
    rollout.settle()
    rollout.change_spec(spec("1", steps))
    plan = rollout.settle()
    assert plan.status.phase == Phase.HEALTHY
    assert plan.status.canary_revision is None
    assert plan.status.stable_revision == stable
    assert replicas(rollout) == {stable: 4, candidate: 0}


def test_spec_paused_freezes_and_the_paused_time_does_not_count() -> None:
    steps = [{"setWeight": 20}, {"pause": {"duration": "60s"}}, {"setWeight": 50}]
    rollout, _, _ = started(steps)
    rollout.settle()
    assert rollout.status.current_step_index == 1
    rollout.cluster.tick(30)
    rollout.change_spec(spec("2", steps, paused=True))
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PAUSED
    assert plan.status.pause_reason == "SpecPaused"
    assert plan.status.canary_weight == 20  # traffic stays as it is
    rollout.cluster.tick(600)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 1
    rollout.change_spec(spec("2", steps, paused=False))
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PROGRESSING
    assert plan.status.current_step_index == 1
    assert plan.requeue_after == 30
    rollout.cluster.tick(30)
    plan = rollout.reconcile()
    assert plan.status.current_step_index == 2


def test_progress_deadline_aborts_a_candidate_whose_pods_never_get_ready() -> None:
    rollout, stable, candidate = started(progressDeadlineSeconds=60)
    plan = rollout.reconcile()
    # Pods are not watched: they are looked at again after 10 s, then as long as waited so far.
    assert plan.requeue_after == 10
    rollout.cluster.tick(25)
    assert rollout.reconcile().requeue_after == 25
    rollout.cluster.tick(36)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.aborted_revision == candidate
    assert plan.status.history[0].reason.startswith("ProgressDeadlineExceeded")
    assert replicas(rollout) == {stable: 4, candidate: 0}


def test_pods_that_cannot_run_are_named_in_the_status_until_the_deadline_aborts() -> None:
    rollout, stable, candidate = started(progressDeadlineSeconds=60)
    rollout.reconcile()
    trouble = 'pod fraud-x: ErrImageNeverPull: image "m:9" is not present with pull policy of Never'
    rollout.cluster.deployments[candidate].trouble = trouble
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PROGRESSING
    assert plan.status.message is not None and plan.status.message.endswith(trouble)
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "PodsNotRunning")]
    assert trouble in plan.events[0].message
    rollout.cluster.tick(10)
    assert not rollout.reconcile().events  # the same trouble is reported once
    rollout.cluster.tick(51)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert trouble in plan.status.history[0].reason
    assert replicas(rollout) == {stable: 4, candidate: 0}


def test_the_first_revision_s_trouble_is_in_its_status() -> None:
    rollout = SimRollout(spec(progressDeadlineSeconds=60), SimCluster(now=T0))
    rollout.reconcile()
    revision = compute_revision(rollout.spec)
    rollout.cluster.deployments[revision].trouble = "pod fraud-y: CrashLoopBackOff"
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PROGRESSING
    assert plan.status.message is not None and "CrashLoopBackOff" in plan.status.message
    rollout.cluster.tick(61)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    assert plan.status.message is not None and "CrashLoopBackOff" in plan.status.message


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    rollout = healthy()
    ready = next(c for c in rollout.status.conditions if c.type == "Ready")
    rollout.cluster.tick(100)
    rollout.change_spec(spec("2"))
    plan = rollout.settle()
    after = next(c for c in plan.status.conditions if c.type == "Ready")
    assert after.last_transition_time == ready.last_transition_time
    progressing = next(c for c in plan.status.conditions if c.type == "Progressing")
    assert progressing.status == "True"
    assert progressing.last_transition_time == rollout.cluster.now
    assert progressing.reason == "PauseStep"
    assert plan.status.observed_generation == 2


def test_old_revisions_are_pruned_past_the_history_limit() -> None:
    rollout = healthy(revisionHistoryLimit=1)
    revisions = [compute_revision(rollout.spec)]
    for version in ("2", "3", "4"):
        rollout.cluster.tick(10)
        rollout.change_spec(spec(version, [{"setWeight": 50}], revisionHistoryLimit=1))
        rollout.settle()
        revisions.append(compute_revision(rollout.spec))
    plan = rollout.settle()
    # stable (4) + previous (3) are protected, plus one more idle revision (2).
    assert set(rollout.cluster.deployments) == set(revisions[1:])
    assert plan.status.stable_revision == revisions[-1]
    assert len(plan.status.history) <= 6


def test_decide_does_not_mutate_its_inputs() -> None:
    rollout = healthy()
    rollout.change_spec(spec("2"))
    before = rollout.status.model_copy(deep=True)
    rollout.request("promote")
    snapshot = rollout.status.model_copy(deep=True)
    from modelrollout.core.decide import decide

    decide("md", "ns", rollout.spec, rollout.status, rollout.cluster.observe())
    assert rollout.status == snapshot
    assert before.promote is None


def test_idle_and_waiting_states_are_fixed_points() -> None:
    """No status churn at idle: deciding again changes nothing and asks for no timer."""
    rollout = healthy()
    rollout.cluster.tick(3600)
    before = rollout.status
    plan = rollout.reconcile()
    assert plan.status == before
    assert plan.events == ()
    assert plan.requeue_after is None
    rollout.change_spec(spec("2"))
    rollout.settle()
    assert rollout.status.phase == Phase.PAUSED
    before = rollout.status
    rollout.cluster.tick(3600)
    plan = rollout.reconcile()
    assert plan.status == before
    assert plan.events == ()
    assert plan.requeue_after is None


def test_a_first_revision_past_its_deadline_is_degraded_but_keeps_trying() -> None:
    rollout = SimRollout(spec(progressDeadlineSeconds=60), SimCluster(now=T0))
    revision = compute_revision(rollout.spec)
    plan = rollout.reconcile()
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert (ready.status, ready.message) == ("False", "no stable revision yet")
    rollout.cluster.tick(61)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.DEGRADED
    degraded = next(c for c in plan.status.conditions if c.type == "Degraded")
    assert degraded.reason == "ProgressDeadlineExceeded"
    assert replicas(rollout) == {revision: 4}
    rollout.cluster.make_ready(revision)
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.HEALTHY
    # An abort request has nothing to return to before the first revision is live.
    fresh = SimRollout(spec("9"), SimCluster(now=T0))
    fresh.reconcile()
    fresh.request("abort")
    plan = fresh.reconcile()
    assert [e.reason for e in plan.events] == ["AbortIgnored"]
    assert plan.status.phase == Phase.PROGRESSING
