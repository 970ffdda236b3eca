"""Property tests: random sequences of events against the invariants of the rollout engine.

Events: spec changes (new versions, back to old ones, replica changes), pods becoming ready (all
or one at a time) or not, time passing, promote / promoteFull / abort / retry requests,
spec.paused toggles, analysis verdicts, operator restarts (status round-tripped through JSON) and
routers that fail to apply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelrollout.api import AnalysisRunPhase, ModelDeploymentSpec, ModelDeploymentStatus
from modelrollout.api.status import MAX_HISTORY
from modelrollout.core.decide import decide
from modelrollout.core.history import history_limit
from modelrollout.core.observation import Observation
from modelrollout.core.plan import Plan
from modelrollout.core.revision import compute_revision
from modelrollout.core.routing import is_blue_green, uses_replica_weights

# Imported under the name the tests below were written with: Hypothesis derives its
# derandomized examples from their source text, so renaming would change what they explore.
from tests.unit.builders import T0
from tests.unit.scripted_rollout import ScriptedEvaluator as Verdicts
from tests.unit.simulated_cluster import SimCluster, SimRollout

ANALYSIS = {
    "interval": "30s",
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.01}],
}
STRATEGIES: dict[str, dict[str, Any]] = {
    "canary-replicas": {
        "canary": {
            "steps": [
                {"setWeight": 10},
                {"pause": {"duration": "1m"}},
                {"analysis": {}},
                {"setWeight": 60},
                {"pause": {}},
            ],
            "analysis": {"startStep": 1},
        }
    },
    "canary-gateway": {
        "canary": {
            "steps": [{"setWeight": 25}, {"analysis": {}}, {"setWeight": 75}, {"pause": {}}],
            "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
        }
    },
    "canary-background": {
        "canary": {"steps": [{"setWeight": 30}, {"pause": {}}], "analysis": {}},
    },
    "canary-istio-short": {
        "canary": {
            "steps": [{"setWeight": 50}],
            "trafficRouting": {"istio": {"virtualService": "vs"}},
        }
    },
    # The post-promotion window: all traffic on the candidate, the previous stable kept warm.
    "canary-replicas-post": {
        "canary": {
            "steps": [{"setWeight": 25}, {"pause": {"duration": "30s"}}],
            "postPromotionAnalysis": {},
        }
    },
    "canary-gateway-post": {
        "canary": {
            "steps": [{"setWeight": 40}, {"analysis": {}}],
            "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
            "analysis": {},
            "postPromotionAnalysis": {},
        }
    },
    "bluegreen-analysis": {
        "blueGreen": {
            "previewReplicas": 1,
            "prePromotionAnalysis": {},
            "postPromotionAnalysis": {},
            "scaleDownDelaySeconds": 30,
        }
    },
    "bluegreen-manual": {"blueGreen": {"autoPromotion": False, "scaleDownDelaySeconds": 0}},
    "bluegreen-auto-seconds": {"blueGreen": {"autoPromotionSeconds": 45}},
}


def search(examples: int) -> settings:
    """CI: a fixed, derandomized search. ROLLOUT_PROPERTY_EXAMPLES=N: N random examples per test,
    with `--hypothesis-seed` choosing the seed, to look for new counterexamples."""
    more = int(os.environ.get("ROLLOUT_PROPERTY_EXAMPLES", "0"))
    return settings(
        max_examples=more or examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=not more,
        database=None,
    )


def make_spec(strategy: str, version: int, replicas: int, paused: bool) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "m", "version": str(version), "uri": f"s3://m/{version}.skops"},
            "replicas": replicas,
            "strategy": STRATEGIES[strategy],
            "analysis": ANALYSIS,
            "progressDeadlineSeconds": 300,
            "revisionHistoryLimit": 2,
            "rollbackWindow": "5m" if version % 2 else None,
            "paused": paused,
        }
    )


events = st.one_of(
    st.tuples(st.just("tick"), st.sampled_from([1, 10, 30, 61, 120, 400])),
    st.tuples(st.just("ready"), st.integers(0, 3)),
    st.tuples(st.just("ready_all"), st.just(0)),
    st.tuples(st.just("ready_all"), st.just(0)),
    st.tuples(st.just("ready_one"), st.integers(0, 3)),
    st.tuples(st.just("version"), st.integers(1, 4)),
    st.tuples(st.just("unready"), st.integers(0, 3)),
    st.tuples(st.just("version"), st.integers(1, 4)),
    st.tuples(st.just("replicas"), st.integers(0, 4)),
    st.tuples(st.just("control"), st.sampled_from(["promote", "promote_full", "abort", "retry"])),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("verdict"), st.sampled_from(list(AnalysisRunPhase))),
    st.tuples(st.just("restart"), st.just(0)),
    st.tuples(st.just("router_stuck"), st.booleans()),
    st.tuples(st.just("availability"), st.booleans()),
)


# Version 2 switched to, its post-promotion analysis running (strategy bluegreen-analysis).
IN_BLUE_GREEN_WINDOW = [
    ("ready_all", 0),
    ("version", 2),
    ("ready_all", 0),
    ("verdict", AnalysisRunPhase.SUCCESSFUL),
    ("verdict", AnalysisRunPhase.RUNNING),
    ("ready_all", 0),
]


def fully_ready_or_held(
    spec: ModelDeploymentSpec, before: ModelDeploymentStatus, ready: dict[str, int], revision: str
) -> bool:
    """All pods of `revision` ready, or it already held all traffic and still has ready pods."""
    held = before.canary_revision == revision and before.canary_weight == 100
    return ready.get(revision, 0) >= spec.replicas or (held and ready.get(revision, 0) > 0)


def check_invariants(
    spec: ModelDeploymentSpec, before: ModelDeploymentStatus, obs: Observation, plan: Plan
) -> None:
    status = plan.status
    traffic = plan.traffic
    ready = {r: o.ready_replicas for r, o in obs.revisions.items()}
    observed = {r: o.replicas for r, o in obs.revisions.items()}
    desired = {d.revision: d.replicas for d in plan.revisions}
    # Weights within 0..100.
    assert 0 <= traffic.canary_weight <= 100
    assert 0 <= status.canary_weight <= 100
    assert all(n >= 0 for n in desired.values())
    # No traffic to a revision whose pods are not ready.
    if traffic.canary_weight > 0 and traffic.canary_revision is not None:
        assert ready.get(traffic.canary_revision, 0) > 0
    # All traffic moves to a candidate only with all its pods ready; one that already holds it
    # keeps it while it has ready pods (a scale-up does not switch back).
    if traffic.active_revision not in (None, before.stable_revision):
        assert fully_ready_or_held(spec, before, ready, traffic.active_revision or "")
    # A revision becomes stable only with all its pods ready, or holding all traffic already (a
    # post-promotion window scaled up, then promoted).
    if status.stable_revision not in (None, before.stable_revision):
        assert fully_ready_or_held(spec, before, ready, status.stable_revision or "")
    # The aborted candidate gets no traffic.
    if status.aborted_revision is not None and status.aborted_revision == status.canary_revision:
        assert traffic.canary_weight == 0
        assert traffic.active_revision != status.aborted_revision
    # The stable is never scaled down before the candidate holds all traffic.
    old = before.stable_revision
    if old is not None and old in observed:
        target = desired.get(old, 0)
        if target < min(observed[old], spec.replicas):
            assert status.stable_revision not in (None, old)
            new = status.stable_revision or ""
            assert ready.get(new, 0) >= spec.replicas
            routed = is_blue_green(spec) or not uses_replica_weights(spec)
            if routed:
                seen = obs.traffic
                assert seen is not None
                # The read-back sends it nothing (a canary slot at weight 0 gets no traffic).
                assert seen.active_revision != old
                assert seen.canary_revision != old or seen.canary_weight == 0
                assert seen.stable_revision != old or seen.canary_weight == 100
    # Pruning never touches live revisions.
    for revision in plan.prune:
        assert revision not in (status.stable_revision, status.canary_revision)
        assert observed.get(revision, 0) == 0
        assert revision not in desired
    # History bounded.
    assert len(status.history) <= history_limit(spec.revision_history_limit) <= MAX_HISTORY
    # The status is valid on the wire.
    ModelDeploymentStatus.model_validate(status.model_dump(by_alias=True, mode="json"))


def check_pure(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observation, evaluate: Verdicts
) -> Plan:
    """decide twice, and once more after a restart: the same plan every time."""
    first = decide("md", "ns", spec, status, obs, evaluate=evaluate)
    again = decide("md", "ns", spec, status, obs, evaluate=evaluate)
    assert first == again
    restarted = ModelDeploymentStatus.model_validate(
        status.model_dump(by_alias=True, exclude_none=True, mode="json")
    )
    assert decide("md", "ns", spec, restarted, obs, evaluate=evaluate) == first
    return first


def check_converges(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observation, evaluate: Verdicts
) -> None:
    """With the world unchanged, deciding again reaches a fixed point at once (no churn)."""
    plan = decide("md", "ns", spec, status, obs, evaluate=evaluate)
    again = decide("md", "ns", spec, plan.status, obs, evaluate=evaluate)
    assert again.status == plan.status
    assert again.events == ()


@search(400)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    script=st.lists(events, min_size=1, max_size=60),
)
# Regressions: a background verdict pausing during a pause step; a router that lags a promotion.
@example(
    strategy="canary-background",
    script=[
        ("ready_all", 0),
        ("version", 2),
        ("ready_all", 0),
        ("ready_all", 0),
        ("verdict", AnalysisRunPhase.INCONCLUSIVE),
        ("tick", 1),
    ],
)
@example(
    strategy="canary-gateway",
    script=[
        ("ready_all", 0),
        ("version", 2),
        ("ready_all", 0),
        ("control", "promote_full"),
        ("router_stuck", True),
        ("ready_all", 0),
        ("tick", 400),
        ("tick", 400),
        ("router_stuck", False),
        ("tick", 1),
    ],
)
# A router that never confirmed the move: the old stable must stay up after the promotion.
@example(
    strategy="canary-istio-short",
    script=[("router_stuck", True), ("ready_all", 0), ("version", 4), ("ready", 0)],
)
# Post-promotion windows: a scale-up keeps the switch; after switching back (no ready pods) one
# ready pod of two must not take all traffic again.
@example(strategy="bluegreen-analysis", script=[*IN_BLUE_GREEN_WINDOW, ("replicas", 4)])
@example(
    strategy="bluegreen-analysis", script=[*IN_BLUE_GREEN_WINDOW, ("unready", 1), ("ready_one", 1)]
)
# Back to the old stable while the router is stuck before giving the new one any weight: the
# router still sends everything to the old stable, so the never-routed one may go.
@example(
    strategy="canary-istio-short",
    script=[
        ("version", 2),
        ("ready_all", 0),
        ("version", 1),
        ("router_stuck", True),
        ("ready_all", 0),
        ("version", 2),
    ],
)
# A blue/green window scaled up (2 of 3 ready), then promoted by request: the candidate already
# serves everything, so it becomes the stable and its third pod comes as a stable's would.
@example(
    strategy="bluegreen-analysis",
    script=[
        ("ready_all", 0),
        ("version", 4),
        ("control", "promote"),
        ("ready", 0),
        ("replicas", 3),
        ("control", "promote"),
    ],
)
# Scaled to zero: a candidate without ready pods never takes all traffic (0 of 0 is not ready).
@example(
    strategy="canary-replicas-post",
    script=[("ready", 0), ("version", 2), ("replicas", 0), ("tick", 30)],
)
def test_random_event_sequences_keep_the_invariants(
    strategy: str, script: list[tuple[str, Any]]
) -> None:
    version, replicas, paused = 1, 2, False
    evaluate = Verdicts()
    rollout = SimRollout(make_spec(strategy, version, replicas, paused), SimCluster(now=T0))
    rollout.evaluate = evaluate
    rollout.cluster.analysis_available = True
    router_stuck = False
    for kind, value in [("tick", 0), *script]:
        revisions = sorted(rollout.cluster.deployments)
        if kind == "tick":
            rollout.cluster.tick(value)
        elif kind == "ready" and revisions:
            rollout.cluster.make_ready(revisions[value % len(revisions)])
        elif kind == "ready_all":
            rollout.cluster.make_all_ready()
        elif kind == "ready_one" and revisions:  # pods get ready one at a time
            revision = revisions[value % len(revisions)]
            rollout.cluster.make_ready(revision, rollout.cluster.deployments[revision].ready + 1)
        elif kind == "unready" and revisions:
            rollout.cluster.make_ready(revisions[value % len(revisions)], 0)
        elif kind == "version":
            version = value
        elif kind == "replicas":
            replicas = value
        elif kind == "control":
            rollout.request(value)
        elif kind == "pause":
            paused = value
        elif kind == "verdict":
            evaluate.verdict = value
        elif kind == "restart":
            rollout.restart()
        elif kind == "router_stuck":
            router_stuck = value
        elif kind == "availability":
            rollout.cluster.analysis_available = value
        new_spec = make_spec(strategy, version, replicas, paused)
        if new_spec != rollout.spec:
            rollout.change_spec(new_spec)
        obs = rollout.cluster.observe()
        before = rollout.status
        plan = check_pure(rollout.spec, before, obs, evaluate)
        check_invariants(rollout.spec, before, obs, plan)
        router = rollout.cluster.router
        rollout.cluster.apply(plan, rollout.spec)
        if router_stuck:  # the shell failed to write the routing object
            rollout.cluster.router = router
        rollout.status = plan.status
        check_converges(rollout.spec, rollout.status, rollout.cluster.observe(), evaluate)


@dataclass
class CandidatePods:
    """How long the spec's revision has had unready pods, measured here rather than by the core.

    A progressDeadlineSeconds abort is only accepted once its pods truly stayed unready that long.
    """

    deadline: timedelta
    unready_since: datetime | None = None

    def see(self, rollout: SimRollout) -> None:
        pods = rollout.cluster.deployments.get(compute_revision(rollout.spec))
        if pods is not None and pods.ready >= pods.replicas:
            self.unready_since = None
        elif self.unready_since is None:
            self.unready_since = rollout.cluster.now

    def reconcile(self, rollout: SimRollout) -> None:
        """One decision; after a justified deadline abort, a person asks for a retry."""
        self.see(rollout)
        plan = rollout.reconcile()
        if any(e.reason == "ProgressDeadlineExceeded" for e in plan.events):
            assert self.unready_since is not None
            assert rollout.cluster.now - self.unready_since >= self.deadline
            rollout.request("retry")
        self.see(rollout)


@search(60)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    script=st.lists(st.sampled_from(["ready_all", "tick", "promote"]), max_size=30),
)
@example(
    strategy="bluegreen-analysis",
    script=["ready_all", "ready_all", "tick", "tick", "tick", "tick"],
)
def test_a_candidate_whose_pods_get_ready_ends_healthy_or_waits_on_a_person(
    strategy: str, script: list[str]
) -> None:
    """Liveness: with ready pods, passing analysis and promotes, every rollout reaches Healthy.

    Ticks may outlast progressDeadlineSeconds while pods are unready: that abort is right when the
    pods truly were unready that long, and a retry with ready pods must then still end Healthy.
    """
    rollout = SimRollout(make_spec(strategy, 1, 2, False), SimCluster(now=T0))
    rollout.evaluate = Verdicts(AnalysisRunPhase.SUCCESSFUL)
    rollout.cluster.analysis_available = True
    rollout.settle()
    rollout.change_spec(make_spec(strategy, 2, 2, False))
    pods = CandidatePods(timedelta(seconds=rollout.spec.progress_deadline_seconds))
    for action in script:
        if action == "ready_all":
            rollout.cluster.make_all_ready()
        elif action == "tick":
            rollout.cluster.tick(61)
        else:
            rollout.request("promote")
        pods.reconcile(rollout)
    for _ in range(10):
        rollout.request("promote")
        rollout.cluster.tick(61)
        pods.reconcile(rollout)
        for _ in range(20):  # SimRollout.settle, each decision checked
            rollout.cluster.make_all_ready()
            before = rollout.status
            pods.reconcile(rollout)
            if rollout.status == before:
                break
    assert rollout.status.phase == "Healthy"
    assert rollout.status.stable_revision == rollout.reconcile().revision
