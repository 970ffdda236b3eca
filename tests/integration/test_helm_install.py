"""helm install on the real control plane, then the operator running with the chart's
ServiceAccount token (as a local process: kwok runs no containers) completes a canary rollout,
driven by the Argo CD Lua actions and the kubectl plugin, in namespaces that enforce the Pod
Security `restricted` profile. Argo CD's health.lua is checked on the objects it really wrote."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.argocd_lua import ArgoLua, action_patches
from tests.integration.helm_chart import (
    CHART,
    REPO,
    Release,
    installed_release,
    operator_process,
    service_account_kubeconfig,
    wait_for,
)
from tests.integration.operator_process import phase_is as md_phase_is
from tests.testenv.controlplane import ControlPlane, free_port

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane) -> Iterator[Release]:
    with installed_release(control_plane) as rel:
        yield rel


def test_helm_install_runs_the_operator_pod_under_restricted(
    control_plane: ControlPlane, release: Release
) -> None:
    cp = control_plane
    status = json.loads(
        cp.helm("status", release.name, "-n", release.namespace, "-o", "json").stdout
    )
    assert status["info"]["status"] == "deployed"
    deployment = json.loads(
        cp.kubectl("get", "deployment", f"{release.name}-modelrollout", "-n", release.namespace,
                   "-o", "json").stdout
    )  # fmt: skip
    assert deployment["status"].get("availableReplicas") == 1
    pods = json.loads(
        cp.kubectl("get", "pods", "-n", release.namespace, "-l",
                   "app.kubernetes.io/component=operator", "-o", "json").stdout
    )["items"]  # fmt: skip
    assert len(pods) == 1  # admitted by Pod Security `restricted`
    # The namespace really enforces it: a pod without the restricted settings is refused.
    bad = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }  # fmt: skip
    result = cp.kubectl(
        "apply", "-n", release.namespace, "-f", "-", input=json.dumps(bad), check=False
    )
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr


def chart_args(cp: ControlPlane, release: Release, liveness: int, metrics: int) -> list[str]:
    """The operator's command line exactly as the chart's Deployment runs it (ports local)."""
    deployment = json.loads(
        cp.kubectl("get", "deployment", f"{release.name}-modelrollout", "-n", release.namespace,
                   "-o", "json").stdout
    )  # fmt: skip
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["modelrollout-operator"]
    args = []
    for arg in container["args"]:
        if arg.startswith("--liveness="):
            arg = f"--liveness=http://127.0.0.1:{liveness}/healthz"
        elif arg.startswith("--metrics-port="):
            arg = f"--metrics-port={metrics}"
        args.append(arg)
    return [*args, "--metrics-address=127.0.0.1"]


@dataclass(frozen=True)
class RunningOperator:
    log: Path
    liveness_port: int
    metrics_port: int


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningOperator]:
    tmp = tmp_path_factory.mktemp("sa-operator")
    kubeconfig = service_account_kubeconfig(control_plane, release, tmp / "kubeconfig")
    running = RunningOperator(tmp / "operator.log", free_port(), free_port())
    args = chart_args(control_plane, release, running.liveness_port, running.metrics_port)
    with operator_process(args, kubeconfig, running.log):
        yield running


def plugin(cp: ControlPlane, *args: str) -> str:
    env = cp.env()
    env["PATH"] = f"{cp.bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        [str(cp.bin_dir / "kubectl"), "modelrollout", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_argocd_action(cp: ControlPlane, lua: ArgoLua, action: str, obj: dict[str, Any]) -> None:
    """What Argo CD does with an action's result: the status part goes to /status."""
    spec_patch, status_patch = action_patches(obj, lua.action(action, obj))
    assert spec_patch or status_patch, f"{action} changed nothing"
    name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
    if status_patch:
        cp.kubectl(
            "patch", "modeldeployment", name, "-n", ns, "--subresource=status", "--type=merge",
            "-p", json.dumps(status_patch),
        )  # fmt: skip
    if spec_patch:
        cp.kubectl(
            "patch", "modeldeployment", name, "-n", ns, "--type=merge", "-p", json.dumps(spec_patch)
        )


def manifest(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": name, "version": version, "format": "skops",
                      "uri": f"https://models.example/{name}/{version}/model.skops"},
            "replicas": 2,
            "strategy": {"canary": {"steps": [
                {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
            ]}},
        },
    }  # fmt: skip


def test_operator_as_the_chart_service_account_completes_a_canary(
    control_plane: ControlPlane, release: Release, operator: RunningOperator
) -> None:
    cp, ns, name = control_plane, release.apps, "fraud"
    lua = ArgoLua(REPO / "manifests" / "argocd")
    cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest(name, "1")))

    def phase_is(phase: str, **fields: Any) -> Callable[[], dict[str, Any] | None]:
        return md_phase_is(cp, ns, name, phase, **fields)

    first = wait_for("v1 Healthy", phase_is("Healthy"))
    stable = first["status"]["stableRevision"]
    assert lua.health(first)["status"] == "Healthy"

    patch = {"spec": {"model": manifest(name, "2")["spec"]["model"]}}
    cp.kubectl("patch", "modeldeployment", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))
    # The replicas router approximates weights with pod counts (25% of 2 pods: 1 of 3 = 33%).
    paused = wait_for("v2 paused after setWeight 25", phase_is("Paused", currentStepIndex=1))
    first_weight = paused["status"]["canaryWeight"]
    assert first_weight > 0
    candidate = paused["status"]["canaryRevision"]
    assert candidate != stable
    assert lua.health(paused)["status"] == "Suspended"
    assert not lua.discovery(paused)["promote"]["disabled"]
    view = plugin(cp, "status", name, "-n", ns)
    assert "[>] 2. pause (until promoted)" in view and f"weight {first_weight}%" in view

    # First gate: Argo CD's promote action; second gate: the kubectl plugin.
    run_argocd_action(cp, lua, "promote", paused)
    second = wait_for("v2 paused after setWeight 50", phase_is("Paused", currentStepIndex=3))
    assert second["status"]["canaryWeight"] > first_weight
    assert lua.health(second)["status"] == "Suspended"
    plugin(cp, "promote", name, "-n", ns)
    done = wait_for("v2 Healthy", phase_is("Healthy", stableRevision=candidate))
    assert lua.health(done)["status"] == "Healthy"
    assert lua.discovery(done)["promote"]["disabled"]
    history = plugin(cp, "history", name, "-n", ns)
    assert candidate in history and "Promoted" in history

    # Abort through Argo CD: Degraded, and health.lua says so.
    patch = {"spec": {"model": manifest(name, "3")["spec"]["model"]}}
    cp.kubectl("patch", "modeldeployment", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))
    third = wait_for("v3 paused after setWeight 25", phase_is("Paused", currentStepIndex=1))
    run_argocd_action(cp, lua, "abort", third)
    aborted = wait_for("v3 aborted", phase_is("Degraded", stableRevision=candidate))
    assert lua.health(aborted)["status"] == "Degraded"
    assert not lua.discovery(aborted)["retry"]["disabled"]

    # Model-server pods of every revision were admitted under `restricted`.
    pods = json.loads(
        cp.kubectl(
            "get", "pods", "-n", ns, "-l", f"modelrollout.io/name={name}", "-o", "json"
        ).stdout
    )["items"]
    revisions = {p["metadata"]["labels"]["modelrollout.io/revision"] for p in pods}
    assert candidate in revisions
    log = operator.log.read_text(errors="replace")
    assert "Forbidden" not in log and " 403" not in log, log[-5000:]


def test_operator_serves_liveness_and_the_metrics_the_dashboard_plots(
    operator: RunningOperator,
) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz") as rsp:
        assert rsp.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as rsp:
        exposition = rsp.read().decode()
    dashboard = json.loads((CHART / "dashboards" / "modelrollout.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    plotted = set(re.findall(r"\b(modelrollout_[a-z_]+)\b", exprs))
    assert plotted
    exported = {line.split("{")[0].split(" ")[0] for line in exposition.splitlines()
                if line and not line.startswith("#")}  # fmt: skip
    assert plotted <= exported, f"plotted but not exported: {sorted(plotted - exported)}"


# What the operator's I/O does (kube/, traffic/, the validation gate), and what it never needs.
ALLOWED = [
    ("patch", "modeldeployments.modelrollout.io/status"),
    ("watch", "modeldeployments.modelrollout.io"),
    ("create", "deployments.apps"),
    ("patch", "deployments.apps"),
    ("delete", "deployments.apps"),
    ("patch", "services"),
    ("create", "events"),
    ("create", "jobs.batch"),
    ("delete", "jobs.batch"),
    ("list", "pods"),
]
DENIED = [
    ("get", "secrets"),
    ("delete", "pods"),
    ("patch", "pods"),
    ("delete", "modeldeployments.modelrollout.io"),
    ("update", "modeldeployments.modelrollout.io"),
    ("create", "httproutes.gateway.networking.k8s.io"),  # routers are off by default
    ("create", "pods/exec"),
]


def test_service_account_has_exactly_the_rights_it_needs(
    control_plane: ControlPlane, release: Release
) -> None:
    who = f"--as=system:serviceaccount:{release.namespace}:{release.name}-modelrollout"

    def can(verb: str, resource: str, namespace: str) -> bool:
        result = control_plane.kubectl("auth", "can-i", verb, resource, "-n", namespace, who,
                                       check=False)  # fmt: skip
        return result.stdout.strip() == "yes"

    for verb, resource in ALLOWED:
        assert can(verb, resource, release.apps), f"cannot {verb} {resource}"
    for verb, resource in DENIED:
        assert not can(verb, resource, release.apps), f"may {verb} {resource}"
    # watchNamespaces: nothing in any other namespace.
    assert not can("create", "deployments.apps", "default")
    assert not can("list", "modeldeployments.modelrollout.io", "default")
