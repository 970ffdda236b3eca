"""Argo CD's health check and actions for ModelDeployment, run in Lua 5.1 (LuaJIT via lupa).

Argo CD runs them in gopher-lua (Lua 5.1) with a restricted standard library and the object in
a global `obj`; the sandbox below gives the scripts only base, string, table and math.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.api import ModelDeploymentStatus, PauseReason
from tests.argocd_lua import ArgoLua, action_patches
from tests.unit.control_fields import CONTROL_FIELDS

ARGOCD = Path(__file__).resolve().parents[2] / "manifests" / "argocd"


@pytest.fixture(scope="module")
def lua() -> ArgoLua:
    return ArgoLua(ARGOCD)


def md(status: dict[str, Any] | None, generation: int = 3, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "fraud",
            "namespace": "ml",
            "generation": generation,
            "resourceVersion": "4711",
        },
        "spec": {
            "model": {"name": "m", "version": "2", "uri": "file:///m", "format": "skops"},
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"pause": {}}],
                    "trafficRouting": {"replicas": {}},
                }
            },
            **spec,
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


def st(phase: str, **fields: Any) -> dict[str, Any]:
    return {"observedGeneration": 3, "phase": phase, "message": f"{phase} now", **fields}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (st("Healthy", stableRevision="a"), "Healthy"),
        (st("Pending"), "Progressing"),
        (st("Validating", canaryRevision="b"), "Progressing"),
        (st("Progressing", canaryRevision="b", currentStepIndex=0), "Progressing"),
        (st("Degraded", stableRevision="a", abortedRevision="b"), "Degraded"),
        # A pause step without duration waits for `promote`: a person.
        (
            st("Paused", canaryRevision="b", currentStepIndex=2, pauseReason="PauseStep"),
            "Suspended",
        ),
        # A timed pause ends by itself.
        (
            st("Paused", canaryRevision="b", currentStepIndex=1, pauseReason="PauseStep"),
            "Progressing",
        ),
        # Any other pause (inconclusive analysis, spec.paused, ...) needs a person.
        (st("Paused", canaryRevision="b", pauseReason="AnalysisInconclusive"), "Suspended"),
        (st("Paused", canaryRevision="b"), "Suspended"),
        # Blue/green: the preview is ready and waits for promote.
        (
            st("Paused", canaryRevision="b", currentStepIndex=1, pauseReason="AwaitingPromotion"),
            "Suspended",
        ),
        (st("Paused", canaryRevision="b", pauseReason="SpecPaused"), "Suspended"),
    ],
)
def test_phase_maps_to_health(lua: ArgoLua, status: dict[str, Any], expected: str) -> None:
    health = lua.health(md(status))
    assert health["status"] == expected
    assert health["message"] == status["message"]


def test_a_breached_model_after_promotion_is_degraded(lua: ArgoLua) -> None:
    breach = "revision a: metric inputs value 0.9: psi by feature: amount 0.9 > max 0.2"
    condition = {"type": "ModelHealthy", "status": "False", "reason": "Breached", "message": breach}
    health = lua.health(md(st("Healthy", stableRevision="a", conditions=[condition])))
    assert health == {"status": "Degraded", "message": f"Monitoring: {breach}"}
    fine = {**condition, "status": "True", "reason": "Healthy"}
    assert lua.health(md(st("Healthy", stableRevision="a", conditions=[fine])))["status"] == (
        "Healthy"
    )
    unknown = {**condition, "status": "Unknown", "reason": "NoData"}
    assert lua.health(md(st("Healthy", stableRevision="a", conditions=[unknown])))["status"] == (
        "Healthy"
    )


@pytest.mark.parametrize("reason", list(PauseReason))
def test_every_pause_reason_but_a_pause_step_waits_on_a_person(
    lua: ArgoLua, reason: PauseReason
) -> None:
    # Step 1 is a timed pause: only the pause step itself may end by itself there.
    status = st("Paused", canaryRevision="b", currentStepIndex=1, pauseReason=reason.value)
    expected = "Progressing" if reason is PauseReason.PAUSE_STEP else "Suspended"
    assert lua.health(md(status))["status"] == expected


def test_the_crd_describes_every_pause_reason() -> None:
    description = ModelDeploymentStatus.model_fields["pause_reason"].description or ""
    assert all(f"{reason.value}:" in description for reason in PauseReason)


def test_observed_generation_comes_first(lua: ArgoLua) -> None:
    for phase in ("Healthy", "Degraded", "Paused"):
        health = lua.health(md(st(phase), generation=4))
        assert health == {
            "status": "Progressing",
            "message": "Waiting for the operator to observe generation 4",
        }


def test_no_status_yet_is_progressing(lua: ArgoLua) -> None:
    assert lua.health(md(None))["status"] == "Progressing"
    assert lua.health(md({"observedGeneration": 3}))["status"] == "Progressing"


def test_spec_paused_is_suspended_but_degraded_wins(lua: ArgoLua) -> None:
    paused = md(st("Progressing", canaryRevision="b", currentStepIndex=0), paused=True)
    assert lua.health(paused)["status"] == "Suspended"
    degraded = md(st("Degraded"), paused=True)
    assert lua.health(degraded)["status"] == "Degraded"


def test_known_phases_never_unknown_and_unknown_phase_says_so(lua: ArgoLua) -> None:
    for phase in ("Pending", "Validating", "Progressing", "Paused", "Healthy", "Degraded"):
        assert lua.health(md(st(phase)))["status"] != "Unknown"
    assert lua.health(md(st("Exploded"))) == {
        "status": "Unknown",
        "message": "Unknown phase Exploded",
    }


def test_fallback_message_when_operator_wrote_none(lua: ArgoLua) -> None:
    status = st("Paused", canaryRevision="b", currentStepIndex=2)
    status["message"] = ""
    assert lua.health(md(status))["message"] == "Paused: waiting for promote"


def test_discovery_offers_what_makes_sense(lua: ArgoLua) -> None:
    in_flight = lua.discovery(md(st("Paused", canaryRevision="b", currentStepIndex=2)))
    assert set(in_flight) == {"promote", "promote-full", "abort", "retry", "pause", "resume"}
    assert not in_flight["promote"]["disabled"]
    assert not in_flight["abort"]["disabled"]
    assert in_flight["retry"]["disabled"]
    assert not in_flight["pause"]["disabled"]
    assert in_flight["resume"]["disabled"]
    degraded = lua.discovery(md(st("Degraded", stableRevision="a"), paused=True))
    assert degraded["promote"]["disabled"]
    assert not degraded["retry"]["disabled"]
    assert degraded["pause"]["disabled"]
    assert not degraded["resume"]["disabled"]


@pytest.mark.parametrize(("action", "field"), CONTROL_FIELDS)
def test_control_actions_set_a_token_in_status(lua: ArgoLua, action: str, field: str) -> None:
    before = md(st("Paused", canaryRevision="b", currentStepIndex=2))
    after = lua.action(action, before)
    assert after["status"][field] == "argocd-4711"
    assert after["spec"] == before["spec"]
    others = {k: v for k, v in after["status"].items() if k != field}
    assert others == before["status"]
    # Without a status yet, the action still produces a valid one.
    assert lua.action(action, md(None))["status"] == {field: "argocd-4711"}


def test_pause_and_resume_flip_spec_paused_only(lua: ArgoLua) -> None:
    before = md(st("Progressing", canaryRevision="b", currentStepIndex=0))
    paused = lua.action("pause", before)
    assert paused["spec"]["paused"] is True
    assert paused["status"] == before["status"]
    assert lua.action("resume", paused)["spec"]["paused"] is False


def test_argocd_cm_embeds_the_current_scripts() -> None:
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    data = cm["data"]
    key = "modelrollout.io_ModelDeployment"
    assert data[f"resource.customizations.health.{key}"] == (ARGOCD / "health.lua").read_text()
    actions = yaml.safe_load(data[f"resource.customizations.actions.{key}"])
    assert actions["discovery.lua"] == (ARGOCD / "actions" / "discovery.lua").read_text()
    names = [d["name"] for d in actions["definitions"]]
    assert names == ["promote", "promote-full", "abort", "retry", "pause", "resume"]
    for definition in actions["definitions"]:
        script = (ARGOCD / "actions" / f"{definition['name']}.lua").read_text()
        assert definition["action.lua"] == script


def test_example_application_targets_argocd() -> None:
    app = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert app["kind"] == "Application"
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    pointers = app["spec"]["ignoreDifferences"][0]["jsonPointers"]
    assert "/spec/paused" in pointers


def test_actions_keep_empty_lists_as_lists(lua: ArgoLua) -> None:
    before = md(st("Paused", canaryRevision="b", currentStepIndex=2, conditions=[]))
    before["spec"]["model"]["trustedTypes"] = []
    after = lua.action("promote", before)
    assert after["status"]["conditions"] == []
    assert after["spec"]["model"]["trustedTypes"] == []


def test_action_patches_split_spec_and_status_like_argocd(lua: ArgoLua) -> None:
    before = md(st("Paused", canaryRevision="b", currentStepIndex=2))
    assert action_patches(before, lua.action("abort", before)) == (
        {},
        {"status": {"abort": "argocd-4711"}},
    )
    assert action_patches(before, lua.action("pause", before)) == ({"spec": {"paused": True}}, {})
