"""SIGKILL the operator at each step of a rollout, restart it: it finishes exactly as an
uninterrupted run does, because all rollout state lives in the ModelDeployment's status and the
objects the operator reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelrollout.kube import MODELDEPLOYMENTS, Kube, make_api_client
from tests.integration.operator_process import (
    Operator,
    apply_and_settle,
    canary_md,
    deployments,
    healthy_on,
    roll_to,
    selectors,
    status,
    wait_for,
)
from tests.testenv.controlplane import ControlPlane

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {"duration": "2s"}},
    {"setWeight": 50},
    {"pause": {"duration": "2s"}},
    {"setWeight": 75},
]


def outcome(cp: ControlPlane, ns: str, name: str) -> dict[str, Any]:
    """Everything observable about a finished rollout, free of names and times."""
    st = status(cp, ns, name)
    history = [
        {k: v for k, v in entry.items() if k not in ("at", "message") and not k.endswith("At")}
        for entry in st.get("history", [])
    ]
    return {
        "phase": st.get("phase"),
        "stableRevision": st.get("stableRevision"),
        "canaryRevision": st.get("canaryRevision"),
        "canaryWeight": st.get("canaryWeight"),
        "currentStepIndex": st.get("currentStepIndex"),
        "history": history,
        "deployments": deployments(cp, ns, name),
        "services": {
            service: {k: v for k, v in selector.items() if k != "modelrollout.io/name"}
            for service, selector in selectors(cp, ns, name).items()
        },
    }


def run_rollout(
    cp: ControlPlane, kube: Kube, ns: str, op: Operator, name: str, kill_at_step: int | None
) -> dict[str, Any]:
    v1 = canary_md(name, "1", STEPS)
    r1 = apply_and_settle(cp, ns, v1)
    r2 = roll_to(cp, ns, v1, "2")
    if kill_at_step is not None:

        def at_step() -> bool:
            # The Python client polls in milliseconds (kubectl takes ~0.2 s), so short steps
            # are seen; a step passed between two polls is killed at the next one.
            body = kube.get(MODELDEPLOYMENTS, ns, name) or {}
            st = body.get("status") or {}
            step = st.get("currentStepIndex")
            return st.get("canaryRevision") == r2 and step is not None and step >= kill_at_step

        wait_for(f"{name} at step {kill_at_step}", at_step, interval=0.02)
        op.kill()
        op.start()
    wait_for(f"{name} v2 Healthy", lambda: healthy_on(cp, ns, name, r2))
    wait_for(f"{name} old revision idle", lambda: deployments(cp, ns, name).get(r1) == 0)
    return outcome(cp, ns, name)


@pytest.mark.timeout(900)
def test_sigkill_at_every_step_finishes_like_an_uninterrupted_run(
    crd: str, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kube = Kube(make_api_client(str(control_plane.kubeconfig)))
    with Operator(control_plane, namespace, tmp_path).start() as op:
        reference = run_rollout(control_plane, kube, namespace, op, "ref", None)
        assert reference["phase"] == "Healthy"
        for step in range(len(STEPS)):
            got = run_rollout(control_plane, kube, namespace, op, f"kill{step}", step)
            assert got == reference, f"killed at step {step}"
