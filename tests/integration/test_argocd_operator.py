"""Argo CD's health.lua and actions on the objects the real operator writes, through every
state a person meets: a timed pause (Progressing), a manual gate (Suspended), spec.paused
(Suspended), an abort (Degraded), retry, promote-full (Healthy). Actions are applied as Argo CD
applies them: the status part through /status, the spec part as a merge patch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.argocd_lua import ArgoLua, action_patches
from tests.integration.helm_chart import REPO, operator_process
from tests.integration.operator_process import get_md
from tests.testenv.controlplane import ControlPlane

NAME = "churn"


@pytest.fixture
def operator(
    control_plane: ControlPlane, crd: str, namespace: str, tmp_path: Path
) -> Iterator[None]:
    args = ["--standalone", f"--namespace={namespace}", "--metrics-port=0"]
    with operator_process(args, control_plane.kubeconfig, tmp_path / "operator.log"):
        yield


class Md:
    def __init__(self, cp: ControlPlane, namespace: str) -> None:
        self.cp, self.ns = cp, namespace
        self.lua = ArgoLua(REPO / "manifests" / "argocd")

    def get(self) -> dict[str, Any]:
        return get_md(self.cp, self.ns, NAME)

    def wait(self, what: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first observed object (status current with the spec) that satisfies `ok`."""
        deadline = time.monotonic() + 120
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.get()
            st = last.get("status") or {}
            if st.get("observedGeneration") == last["metadata"]["generation"] and ok(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {last.get('status')}")

    def health(self, obj: dict[str, Any]) -> str:
        return str(self.lua.health(obj)["status"])

    def action(self, name: str) -> None:
        obj = self.get()
        assert not self.lua.discovery(obj)[name]["disabled"], f"{name} offered as disabled"
        spec_patch, status_patch = action_patches(obj, self.lua.action(name, obj))
        base = ("patch", "modeldeployment", NAME, "-n", self.ns, "--type=merge")
        if status_patch:
            self.cp.kubectl(*base, "--subresource=status", "-p", json.dumps(status_patch))
        if spec_patch:
            self.cp.kubectl(*base, "-p", json.dumps(spec_patch))

    def set_version(self, version: str) -> None:
        patch = {"spec": {"model": model(version)}}
        self.cp.kubectl(
            "patch", "modeldeployment", NAME, "-n", self.ns, "--type=merge", "-p", json.dumps(patch)
        )


def model(version: str) -> dict[str, Any]:
    return {"name": NAME, "version": version, "format": "skops",
            "uri": f"https://models.example/{NAME}/{version}/model.skops"}  # fmt: skip


def phase(name: str, step: int | None = None) -> Callable[[dict[str, Any]], bool]:
    def ok(obj: dict[str, Any]) -> bool:
        st = obj["status"]
        return st.get("phase") == name and (step is None or st.get("currentStepIndex") == step)

    return ok


def test_health_and_actions_through_a_whole_rollout(
    operator: None, control_plane: ControlPlane, namespace: str
) -> None:
    md = Md(control_plane, namespace)
    manifest = {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "model": model("1"),
            "replicas": 2,
            "strategy": {"canary": {"steps": [
                {"setWeight": 50}, {"pause": {"duration": "4s"}}, {"pause": {}},
            ]}},
        },
    }  # fmt: skip
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert md.health(md.wait("v1 Healthy", phase("Healthy"))) == "Healthy"

    md.set_version("2")
    timed = md.wait("the timed pause", lambda o: o["status"].get("currentStepIndex") == 1)
    assert md.health(timed) == "Progressing"  # ends by itself: nobody has to act
    gate = md.wait("the manual gate", phase("Paused", step=2))
    assert md.health(gate) == "Suspended"

    md.action("pause")
    frozen = md.wait("spec.paused seen", lambda o: o["spec"].get("paused") is True)
    assert md.health(frozen) == "Suspended"
    md.action("resume")
    md.wait("spec.paused cleared", lambda o: o["spec"].get("paused") is False)

    md.action("abort")
    aborted = md.wait("aborted", phase("Degraded"))
    assert md.health(aborted) == "Degraded"
    assert aborted["status"]["canaryWeight"] == 0

    md.action("retry")
    retried = md.wait("retried up to the gate", phase("Paused", step=2))
    assert md.health(retried) == "Suspended"

    md.action("promote-full")
    done = md.wait(
        "promoted", lambda o: phase("Healthy")(o) and not o["status"].get("canaryRevision")
    )
    assert md.health(done) == "Healthy"
    assert done["status"]["stableModelVersion"] == "2"
    assert md.lua.discovery(done)["promote"]["disabled"]
