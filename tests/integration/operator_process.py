"""Helpers for the operator's integration tests: the operator as a real process, bounded polling,
and ModelDeployment manifests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from modelrollout.api import ModelDeploymentSpec
from modelrollout.core.revision import compute_revision
from tests.testenv.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "manifests" / "crds" / "modelrollout.io_modeldeployments.yaml"
OPERATOR = Path(sys.executable).parent / "modelrollout-operator"
T = TypeVar("T")


class Operator:
    """`modelrollout-operator` serving one namespace, logging to a file."""

    def __init__(
        self,
        cp: ControlPlane,
        namespace: str,
        log_dir: Path,
        *args: str,
        instance: str = "op",
        kubeconfig: Path | None = None,
        launcher: Sequence[str] = (),
    ) -> None:
        """launcher: a command the operator runs under (IsolatedNetwork.argv([]) puts it in a
        network namespace)."""
        self.cp = cp
        self.launcher = tuple(launcher)
        self.kubeconfig = kubeconfig or cp.kubeconfig
        self.namespace = namespace
        self.args = args or ("--standalone",)
        self.instance = instance
        self.log_path = log_dir / f"operator-{instance}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        env["MODELROLLOUT_INSTANCE"] = self.instance
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *self.launcher,
                    str(OPERATOR),
                    "--namespace",
                    self.namespace,
                    "--metrics-port",
                    "0",
                    *self.args,
                ],
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
            terminate(self.proc)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Operator:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop, and print the end of the log: pytest shows it when the test failed."""
        self.stop()
        print(self.log()[-20000:])


def terminate(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL when the process has not exited after `grace` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


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


def phase_is(
    cp: ControlPlane, namespace: str, name: str, phase: str, **fields: Any
) -> Callable[[], dict[str, Any] | None]:
    """A probe: the ModelDeployment once its status, for its current generation, is in `phase`
    with these status `fields`; None until then."""

    def probe() -> dict[str, Any] | None:
        obj = get_md(cp, namespace, name)
        st = obj.get("status") or {}
        ok = st.get("phase") == phase and all(st.get(k) == v for k, v in fields.items())
        ok = ok and st.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if ok else None

    return probe


def model(version: str) -> dict[str, Any]:
    return {
        "name": "fraud",
        "version": version,
        "uri": f"https://models.example/fraud/{version}/model.skops",
        "format": "skops",
    }


def md_manifest(
    name: str, model: dict[str, Any], strategy: dict[str, Any], replicas: int = 3, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": model, "replicas": replicas, "strategy": strategy, **spec},
    }


def canary_md(name: str, version: str, steps: list[dict[str, Any]], replicas: int = 3) -> Any:
    strategy = {"canary": {"steps": steps}}
    return md_manifest(name, model(version), strategy, replicas, revisionHistoryLimit=2)


def revision(manifest: dict[str, Any]) -> str:
    return compute_revision(ModelDeploymentSpec.model_validate(manifest["spec"]))


def with_version(manifest: dict[str, Any], version: str) -> dict[str, Any]:
    """`manifest` as set_version's merge patch leaves it."""
    merged = dict(manifest["spec"]["model"], **model(version))
    return dict(manifest, spec=dict(manifest["spec"], model=merged))


def apply(cp: ControlPlane, namespace: str, manifest: Any) -> None:
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def set_version(cp: ControlPlane, namespace: str, name: str, version: str) -> None:
    patch = {"spec": {"model": model(version)}}
    cp.kubectl(
        "patch", "modeldeployment", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )


def roll_to(cp: ControlPlane, namespace: str, manifest: dict[str, Any], version: str) -> str:
    """Change the model to `version` (as a Git sync would); returns the revision it makes."""
    set_version(cp, namespace, manifest["metadata"]["name"], version)
    return revision(with_version(manifest, version))


def patch_status(cp: ControlPlane, namespace: str, name: str, status: dict[str, Any]) -> None:
    cp.kubectl(
        "patch", "modeldeployment", name, "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip


def control(cp: ControlPlane, namespace: str, name: str, field: str, token: str) -> None:
    """A manual control (promote, promoteFull, abort, retry) as a status-subresource patch."""
    patch_status(cp, namespace, name, {field: token})


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


def healthy_on(cp: ControlPlane, namespace: str, name: str, rev: str) -> dict[str, Any] | None:
    """The status once settled on `rev`, else None (a wait_for probe)."""
    st = status(cp, namespace, name)
    return st if settled_on(st, rev) else None


def in_phase(cp: ControlPlane, namespace: str, name: str, phase: str) -> dict[str, Any] | None:
    """The status while its phase is `phase`, else None (a wait_for probe)."""
    st = status(cp, namespace, name)
    return st if st.get("phase") == phase else None


def apply_and_settle(cp: ControlPlane, namespace: str, manifest: dict[str, Any]) -> str:
    """Apply a first revision and wait until it is Healthy; returns its revision."""
    apply(cp, namespace, manifest)
    rev = revision(manifest)
    name = manifest["metadata"]["name"]
    wait_for(f"{name} {rev} Healthy", lambda: healthy_on(cp, namespace, name, rev))
    return rev


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


def service_account_kubeconfig(cp: ControlPlane, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (a token from the TokenRequest API)."""
    token = cp.kubectl("create", "token", account, "-n", namespace).stdout.strip()
    config = yaml.safe_load(cp.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path
