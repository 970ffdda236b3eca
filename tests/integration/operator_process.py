"""Helpers for the operator's integration tests: the operator as a real process, bounded polling,
and ModelDeployment manifests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.testenv.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "manifests" / "crds" / "modelrollout.io_modeldeployments.yaml"
OPERATOR = Path(sys.executable).parent / "modelrollout-operator"
T = TypeVar("T")


class Operator:
    """`modelrollout-operator` serving one namespace, logging to a file."""

    def __init__(
        self, cp: ControlPlane, namespace: str, log_dir: Path, *args: str, instance: str = "op"
    ) -> None:
        self.cp = cp
        self.namespace = namespace
        self.args = args or ("--standalone",)
        self.instance = instance
        self.log_path = log_dir / f"operator-{instance}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        env = dict(os.environ, KUBECONFIG=str(self.cp.kubeconfig))
        env["MODELROLLOUT_INSTANCE"] = self.instance
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(OPERATOR), "--namespace", self.namespace, "--metrics-port", "0", *self.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies."""
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 90.0, interval: float = 0.25
) -> T:
    """Poll until probe() returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def install_crds(cp: ControlPlane, path: Path, *names: str) -> None:
    """Apply CRDs and wait until the API server serves them (Established)."""
    cp.kubectl("apply", "--server-side", "-f", str(path))

    def established() -> bool:
        for name in names:
            crd = kubectl_json(cp, "get", "crd", name)
            conditions = crd.get("status", {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return False
        return True

    wait_for(f"CRDs {names} established", established, timeout=60)


def kubectl_json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(cp.kubectl(*args, "-o", "json").stdout)


def get_md(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = kubectl_json(cp, "get", "modeldeployment", name, "-n", namespace)
    return result


def model(version: str) -> dict[str, Any]:
    return {
        "name": "fraud",
        "version": version,
        "uri": f"https://models.example/fraud/{version}/model.skops",
        "format": "skops",
    }


def canary_md(name: str, version: str, steps: list[dict[str, Any]], replicas: int = 3) -> Any:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": model(version),
            "replicas": replicas,
            "strategy": {"canary": {"steps": steps}},
            "revisionHistoryLimit": 2,
        },
    }


def apply(cp: ControlPlane, namespace: str, manifest: Any) -> None:
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def set_version(cp: ControlPlane, namespace: str, name: str, version: str) -> None:
    patch = {"spec": {"model": model(version)}}
    cp.kubectl(
        "patch", "modeldeployment", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )


def control(cp: ControlPlane, namespace: str, name: str, field: str, token: str) -> None:
    """A manual control (promote, promoteFull, abort, retry) as a status-subresource patch."""
    cp.kubectl(
        "patch", "modeldeployment", name, "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": {field: token}}),
    )  # fmt: skip


def settled_on(st: dict[str, Any], revision: str) -> bool:
    """A status that has finished its rollout: Healthy on `revision` with no candidate left."""
    return (
        st.get("phase") == "Healthy"
        and st.get("stableRevision") == revision
        and not st.get("canaryRevision")
    )


def status(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = get_md(cp, namespace, name).get("status") or {}
    return result


def deployments(cp: ControlPlane, namespace: str, name: str) -> dict[str, int]:
    """revision -> spec.replicas of this ModelDeployment's Deployments."""
    items = kubectl_json(
        cp, "get", "deployments", "-n", namespace, "-l", f"modelrollout.io/name={name}"
    )["items"]
    return {
        item["metadata"]["labels"]["modelrollout.io/revision"]: item["spec"]["replicas"]
        for item in items
    }


def selectors(cp: ControlPlane, namespace: str, name: str) -> dict[str, dict[str, str]]:
    """Service name (with the ModelDeployment's name cut off) -> selector."""
    items = kubectl_json(
        cp, "get", "services", "-n", namespace, "-l", f"modelrollout.io/name={name}"
    )["items"]
    return {item["metadata"]["name"].removeprefix(name): item["spec"]["selector"] for item in items}


def events(cp: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl_json(
        cp, "get", "events", "-n", namespace,
        "--field-selector", f"involvedObject.name={name},involvedObject.kind=ModelDeployment",
    )["items"]  # fmt: skip
    return items
