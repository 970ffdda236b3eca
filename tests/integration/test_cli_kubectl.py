"""`kubectl modelrollout` through the real kubectl (plugin discovery on PATH) against the real
API server. Statuses are written through the status subresource, as the operator writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.operator_process import get_md, model, patch_status
from tests.testenv.controlplane import ControlPlane

VENV_BIN = Path(sys.executable).parent


def kubectl_env(cp: ControlPlane) -> dict[str, str]:
    env = cp.env()  # KUBECONFIG and the testenv binaries (the real kubectl) on PATH
    env["PATH"] = f"{cp.bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{env['PATH']}"
    return env


def plugin(cp: ControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(cp.bin_dir / "kubectl"), "modelrollout", *args],
        capture_output=True,
        text=True,
        env=kubectl_env(cp),
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl modelrollout {args}: {result.returncode}\n{result.stderr}")
    return result


def create(cp: ControlPlane, ns: str, name: str, version: str = "2") -> None:
    manifest = {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": model(version),
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }
    cp.kubectl("apply", "-f", "-", input=json.dumps(manifest))


PAUSED = {
    "observedGeneration": 1,
    "phase": "Paused",
    "message": "step 2/2: waiting for promote",
    "stableRevision": "aaaaaaaaaa",
    "stableModelVersion": "1",
    "canaryRevision": "bbbbbbbbbb",
    "canaryModelVersion": "2",
    "currentStepIndex": 1,
    "canaryWeight": 20,
    "pauseReason": "PauseStep",
    "history": [
        {
            "revision": "aaaaaaaaaa",
            "modelVersion": "1",
            "outcome": "Promoted",
            "at": "2026-11-20T10:00:00Z",
            "reason": "all steps passed",
            "model": model("1"),
        }
    ],
}


@pytest.fixture
def paused_md(control_plane: ControlPlane, crd: str, namespace: str) -> str:
    create(control_plane, namespace, "fraud")
    patch_status(control_plane, namespace, "fraud", PAUSED)
    return "fraud"


def test_kubectl_discovers_the_plugin(control_plane: ControlPlane) -> None:
    result = subprocess.run(
        [str(control_plane.bin_dir / "kubectl"), "plugin", "list"],
        capture_output=True,
        text=True,
        env=kubectl_env(control_plane),
        check=False,
    )
    assert str(VENV_BIN / "kubectl-modelrollout") in result.stdout
    help_text = plugin(control_plane, "--help").stdout
    assert "promote" in help_text and "undo" in help_text


def test_status_and_list_show_the_rollout(
    control_plane: ControlPlane, namespace: str, paused_md: str
) -> None:
    text = plugin(control_plane, "status", paused_md, "-n", namespace).stdout
    assert "Phase:      Paused" in text
    assert "[x] 1. setWeight 20%" in text
    assert "[>] 2. pause (until promoted)" in text
    assert "Canary:     bbbbbbbbbb (version 2)" in text and "weight 20%" in text
    assert "Promoted" in text  # the history
    listing = plugin(control_plane, "list", "-n", namespace).stdout.splitlines()
    assert listing[0].split()[:3] == ["NAME", "PHASE", "VERSION"]
    assert listing[1].split()[:7] == [
        "fraud",
        "Paused",
        "2",
        "aaaaaaaaaa",
        "bbbbbbbbbb",
        "20%",
        "2/2",
    ]
    everywhere = plugin(control_plane, "list", "-A").stdout
    assert namespace in everywhere


def test_promote_and_abort_write_fresh_tokens_to_status(
    control_plane: ControlPlane, namespace: str, paused_md: str
) -> None:
    out = plugin(control_plane, "promote", paused_md, "-n", namespace).stdout
    assert "promote requested" in out
    first = get_md(control_plane, namespace, paused_md)["status"]["promote"]
    plugin(control_plane, "promote", paused_md, "-n", namespace)
    second = get_md(control_plane, namespace, paused_md)["status"]["promote"]
    assert first.startswith("kubectl-") and second != first
    plugin(control_plane, "promote", "--full", paused_md, "-n", namespace)
    plugin(control_plane, "abort", paused_md, "-n", namespace)
    status = get_md(control_plane, namespace, paused_md)["status"]
    assert status["promoteFull"].startswith("kubectl-")
    assert status["abort"].startswith("kubectl-")
    assert status["phase"] == "Paused"  # nothing else touched
    assert get_md(control_plane, namespace, paused_md)["metadata"]["generation"] == 1


def test_controls_that_would_do_nothing_are_refused(
    control_plane: ControlPlane, namespace: str, paused_md: str
) -> None:
    result = plugin(control_plane, "retry", paused_md, "-n", namespace, check=False)
    assert result.returncode == 1
    assert "retry applies after a rollback" in result.stderr
    patch_status(control_plane, namespace, paused_md, {"phase": "Healthy", "canaryRevision": None})
    result = plugin(control_plane, "promote", paused_md, "-n", namespace, check=False)
    assert result.returncode == 1
    assert "no rollout in progress" in result.stderr
    assert "promote" not in get_md(control_plane, namespace, paused_md)["status"]


def test_pause_and_resume_flip_spec_paused(
    control_plane: ControlPlane, namespace: str, paused_md: str
) -> None:
    plugin(control_plane, "pause", paused_md, "-n", namespace)
    obj = get_md(control_plane, namespace, paused_md)
    assert obj["spec"]["paused"] is True
    assert obj["metadata"]["generation"] == 2
    plugin(control_plane, "resume", paused_md, "-n", namespace)
    assert get_md(control_plane, namespace, paused_md)["spec"]["paused"] is False


def test_undo_writes_the_older_model_back_into_the_spec(
    control_plane: ControlPlane, namespace: str, paused_md: str
) -> None:
    history = plugin(control_plane, "history", paused_md, "-n", namespace).stdout.splitlines()
    assert history[1].split()[:4] == ["1", "aaaaaaaaaa", "1", "Promoted"]
    out = plugin(control_plane, "undo", paused_md, "-n", namespace, "--to-revision", "1").stdout
    assert "rolled back to revision aaaaaaaaaa (model version 1)" in out
    restored = get_md(control_plane, namespace, paused_md)["spec"]["model"]
    assert {k: restored[k] for k in model("1")} == model("1")


def test_missing_object_and_namespace_flag_errors(
    control_plane: ControlPlane, crd: str, namespace: str
) -> None:
    result = plugin(control_plane, "status", "nope", "-n", namespace, check=False)
    assert result.returncode == 1
    assert f"modeldeployment nope not found in namespace '{namespace}'" in result.stderr
    explicit = plugin(
        control_plane, "list", "-n", namespace, "--kubeconfig", str(control_plane.kubeconfig)
    )
    assert "No modeldeployments found." in explicit.stdout


def test_status_watch_redraws_on_every_change(
    control_plane: ControlPlane, namespace: str, paused_md: str
) -> None:
    proc = subprocess.Popen(
        [str(control_plane.bin_dir / "kubectl"), "modelrollout", "status", paused_md,
         "-n", namespace, "--watch", "--timeout", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kubectl_env(control_plane),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not any("weight 20%" in line for line in seen) and time.monotonic() < deadline:
            seen.append(proc.stdout.readline())
        patch_status(control_plane, namespace, paused_md, {"canaryWeight": 60})
        while not any("weight 60%" in line for line in seen) and time.monotonic() < deadline:
            seen.append(proc.stdout.readline())
        assert any("weight 60%" in line for line in seen), "".join(seen)
        assert sum(line.startswith("--- ") for line in seen) >= 2
    finally:
        proc.kill()
        proc.wait(timeout=10)
