"""Helpers for the chart's tests: the testenv's helm binary and rendering the chart to objects."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.integration.operator_process import terminate
from tests.testenv.controlplane import ControlPlane, default_bin_dir

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelrollout"
T = TypeVar("T")
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"

# Every optional feature on: the largest set of objects and RBAC rules the chart can render.
EVERYTHING = (
    "--set", "peering.enabled=true",
    "--set", "replicaCount=2",
    "--set", "serviceMonitor.enabled=true",
    "--set", "podMonitor.enabled=true",
    "--set", "dashboards.enabled=true",
    "--set", "trafficRouting.gatewayAPI=true",
    "--set", "trafficRouting.istio=true",
    "--set", "trafficRouting.nginx=true",
)  # fmt: skip


def helm_binary() -> str:
    """The helm that tests/testenv/build.sh builds; missing fails the test (CI never skips)."""
    helm = default_bin_dir() / "helm"
    if not os.access(helm, os.X_OK):
        pytest.fail(f"{helm} missing: run `make testenv`", pytrace=False)
    return str(helm)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def template_text(*args: str, namespace: str = "ops", release: str = "mr") -> str:
    return helm("template", release, str(CHART), "--namespace", namespace, *args).stdout


def render(*args: str, namespace: str = "ops", release: str = "mr") -> list[dict[str, Any]]:
    text = template_text(*args, namespace=namespace, release=release)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def granted(objects: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples granted by every Role and ClusterRole."""
    out = set()
    for role in objects:
        if role["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((group, resource, verb))
    return out


@contextlib.contextmanager
def operator_process(
    args: list[str],
    kubeconfig: Path,
    log: Path,
    pod: str = "operator-0",
    pod_namespace: str | None = None,
) -> Iterator[None]:
    """`modelrollout-operator ARGS` as a local process (kwok runs no containers), with the
    environment the chart gives the pod; its log is printed at the end, which pytest shows when
    the test failed."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), POD_NAME=pod, POD_ID=pod)
    if pod_namespace is not None:
        env["POD_NAMESPACE"] = pod_namespace
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "modelrollout-operator"), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        terminate(proc)
        print(log.read_text(errors="replace")[-20000:])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str  # the operator's
    apps: str  # the namespace it watches, where ModelDeployments live


def restricted_namespace(cp: ControlPlane, name: str) -> None:
    cp.create_namespace(name)
    cp.kubectl(
        "label", "namespace", name, RESTRICTED, "pod-security.kubernetes.io/enforce-version=latest"
    )


@contextlib.contextmanager
def installed_release(cp: ControlPlane, *values: str) -> Iterator[Release]:
    """`helm install` into a fresh `restricted` namespace, watching another fresh one."""
    suffix = uuid.uuid4().hex[:6]
    rel = Release(f"mr-{suffix}", f"mr-system-{suffix}", f"apps-{suffix}")
    restricted_namespace(cp, rel.namespace)
    restricted_namespace(cp, rel.apps)
    cp.helm(
        "install", rel.name, str(CHART), "--namespace", rel.namespace,
        "--set", f"watchNamespaces={{{rel.apps}}}", *values, "--wait", "--timeout", "180s",
    )  # fmt: skip
    try:
        yield rel
    finally:
        # Shown by pytest when a test failed: what the apps namespace went through.
        print(cp.kubectl("get", "events", "-n", rel.apps, check=False).stdout[-8000:])
        print(cp.kubectl("get", "modeldeployments", "-n", rel.apps, "-o", "yaml",
                         check=False).stdout[-8000:])  # fmt: skip
        cp.helm("uninstall", rel.name, "--namespace", rel.namespace, check=False)
        for ns in (rel.namespace, rel.apps):
            cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def service_account_kubeconfig(cp: ControlPlane, release: Release, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount (a bound token)."""
    sa = f"{release.name}-modelrollout"
    token = cp.kubectl(
        "create", "token", sa, "-n", release.namespace, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(Path(cp.kubeconfig).read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": sa, "context": {"cluster": cluster["name"], "user": sa,
                                              "namespace": release.apps}}],
        "current-context": sa,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


PEERING_CRDS = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")


def delete_peering_crds_of(cp: ControlPlane, *releases: str) -> None:
    """The chart keeps kopf.dev CRDs on uninstall (shared by every Kopf operator); a test that
    made them removes them again, so later tests find the cluster as it was."""
    for name in PEERING_CRDS:
        result = cp.kubectl("get", "crd", name, "-o", "json", check=False)
        if result.returncode != 0:
            continue
        annotations = json.loads(result.stdout)["metadata"].get("annotations") or {}
        if annotations.get("meta.helm.sh/release-name") in releases:
            # Gone before the next test applies it again (a terminating CRD would vanish then).
            cp.kubectl("delete", "crd", name, "--wait=true", "--timeout=60s", check=False)
