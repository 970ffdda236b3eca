"""A canary's shadow step (core/canary.py): the candidate answers mirrored copies of the stable's
requests and no one else, is judged on them, and is promoted or rolled back before it ever takes
live traffic."""

from __future__ import annotations

import json
from typing import Any

from modelrollout.api import AnalysisKind, AnalysisRunPhase, Outcome, Phase
from modelrollout.cli.render import status_view
from modelrollout.core.children import (
    OwnerRef,
    deployment_manifest,
    service_manifests,
    shadow_config_manifest,
)
from modelrollout.core.plan import Plan
from tests.unit.builders import GATEWAY_ROUTING as GATEWAY
from tests.unit.scripted_rollout import ScriptedEvaluator, replicas
from tests.unit.simulated_cluster import SimRollout
from tests.unit.test_core_bluegreen import by_kind
from tests.unit.test_core_bluegreen import started as blue_green_started
from tests.unit.test_core_canary import started

AGREEMENT = {
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [{"name": "agreement", "builtin": "shadowAgreement", "min": 0.98}],
}
STEPS: list[dict[str, Any]] = [
    {"shadow": {"percent": 20, "duration": "2m"}},
    {"analysis": {}},
    {"setWeight": 25},
    {"pause": {}},
]
OWNER = OwnerRef.for_md("md", "uid")


def shadowed(verdict: AnalysisRunPhase, **extra: Any) -> tuple[SimRollout, str, str]:
    rollout, stable, candidate = started(STEPS, analysis=AGREEMENT, **extra)
    rollout.cluster.analysis_available = True
    rollout.evaluate = ScriptedEvaluator(by_kind={AnalysisKind.STEP: verdict})
    return rollout, stable, candidate


def main_selector(rollout: SimRollout, plan: Plan) -> dict[str, str]:
    services = service_manifests(OWNER, "ns", rollout.spec, plan.traffic)
    selector: dict[str, str] = services[0]["spec"]["selector"]
    return selector


def mirrored(rollout: SimRollout, plan: Plan) -> dict[str, Any]:
    config = shadow_config_manifest(OWNER, "ns", rollout.spec, plan.traffic)
    doc: dict[str, Any] = json.loads(config["data"]["shadow.json"])
    return doc


def test_the_candidate_answers_copies_only_then_takes_traffic_when_they_agree() -> None:
    rollout, stable, candidate = shadowed(AnalysisRunPhase.SUCCESSFUL)
    plan = rollout.reconcile()
    assert plan.traffic.mirror_percent == 0  # no ready pod to mirror to yet
    rollout.cluster.make_all_ready()
    plan = rollout.reconcile()
    assert plan.status.phase == Phase.PROGRESSING and "mirrored" in plan.status.message
    assert plan.traffic.canary_weight == 0 and plan.status.canary_weight == 0
    assert plan.traffic.mirror_percent == 20
    assert mirrored(rollout, plan) == {
        "target": "http://md-canary.ns.svc:8080",
        "percent": 20,
        "revision": candidate,
    }
    # Replicas router: the candidate's pods are up, but `<name>` selects only the stable's.
    assert replicas(rollout)[candidate] >= 1
    assert main_selector(rollout, plan) == {
        "modelrollout.io/name": "md",
        "modelrollout.io/revision": stable,
    }
    rollout.cluster.tick(121)
    plan = rollout.settle()  # the shadow step ends; the analysis passes on the copies
    assert plan.status.current_step_index == 3  # at the manual pause after setWeight 25
    assert plan.traffic.mirror_percent == 0 and mirrored(rollout, plan)["percent"] == 0
    assert plan.status.canary_weight > 0


def test_a_candidate_that_disagrees_is_rolled_back_before_any_live_traffic() -> None:
    rollout, stable, candidate = shadowed(AnalysisRunPhase.FAILED)
    rollout.cluster.make_all_ready()
    weights = [rollout.reconcile().status.canary_weight]
    rollout.cluster.tick(121)
    for _ in range(5):
        rollout.cluster.make_all_ready()
        weights.append(rollout.reconcile().status.canary_weight)
    st = rollout.status
    assert st.phase == Phase.DEGRADED and st.aborted_revision == candidate
    assert st.history[0].outcome == Outcome.ROLLED_BACK
    assert weights == [0] * len(weights)  # it never answered a caller
    plan = rollout.reconcile()
    assert plan.traffic.mirror_percent == 0
    assert replicas(rollout)[candidate] == 0 and replicas(rollout)[stable] == 4


def test_with_an_exact_router_the_weight_stays_zero_while_mirroring() -> None:
    rollout, _, _ = shadowed(AnalysisRunPhase.RUNNING, routing=GATEWAY)
    rollout.reconcile()
    rollout.cluster.make_all_ready()
    plan = rollout.reconcile()
    assert plan.traffic.canary_weight == 0 and plan.traffic.mirror_percent == 20
    assert plan.traffic.active_revision is None  # the gateway sends nothing to the candidate


def test_every_server_pod_mounts_the_shadow_config() -> None:
    rollout, _, candidate = shadowed(AnalysisRunPhase.RUNNING)
    d = deployment_manifest(OWNER, "ns", rollout.spec, candidate, 1)
    pod = d["spec"]["template"]["spec"]
    assert {"name": "shadow", "configMap": {"name": "md-shadow", "optional": True}} in pod[
        "volumes"
    ]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODELROLLOUT_SHADOW_CONFIG"] == "/etc/modelrollout/shadow/shadow.json"
    assert {"name": "shadow", "mountPath": "/etc/modelrollout/shadow", "readOnly": True} in (
        container["volumeMounts"]
    )


def test_kubectl_modelrollout_status_shows_the_shadow_phase_and_its_agreement() -> None:
    rollout, _, _ = shadowed(AnalysisRunPhase.RUNNING)
    rollout.reconcile()
    rollout.cluster.make_all_ready()
    rollout.reconcile()
    text = status_view(rollout.as_object(), rollout.cluster.now)
    assert "[>] 1. shadow 20% of live requests for 2m (the candidate answers copies only)" in text
    assert "weight 0%" in text
    assert "mirrored to the candidate" in text


def test_blue_green_mirrors_to_the_preview_before_the_switch() -> None:
    rollout, stable, candidate = blue_green_started(
        shadow={"percent": 30, "duration": "1m"}, prePromotionAnalysis={}, autoPromotion=True
    )
    rollout.evaluate = by_kind({AnalysisKind.PRE_PROMOTION: AnalysisRunPhase.SUCCESSFUL})
    rollout.reconcile()
    rollout.cluster.make_all_ready()
    plan = rollout.reconcile()
    assert plan.status.message.startswith("preview: 30% of live requests mirrored")
    assert plan.traffic.mirror_percent == 30 and plan.traffic.active_revision == stable
    assert mirrored(rollout, plan) == {
        "target": "http://md-preview.ns.svc:8080",
        "percent": 30,
        "revision": candidate,
    }
    assert rollout.evaluate.requests == []  # the pre-promotion analysis waits for the shadow
    rollout.cluster.tick(61)
    plan = rollout.settle()
    assert plan.status.stable_revision == candidate  # analysis passed, switched, promoted
    assert plan.traffic.mirror_percent == 0
