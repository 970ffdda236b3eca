"""Model-server pods on the real node, as the operator runs them from the chart: a model read
from a PersistentVolumeClaim (`pvc://`), a scale-down under load that fails no request (the
server drains after SIGTERM), and an image the node does not have, which the status names
until progressDeadlineSeconds aborts the candidate while the stable keeps serving."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helm_chart import Release
from tests.integration.operator_process import get_md, phase_is
from tests.node.workload import (
    Load,
    apply,
    cluster_ip,
    model_deployment,
    model_files,
    server_pods,
    versions_served,
    wait_proxied,
)
from tests.testenv.controlplane import ControlPlane
from tests.testenv.node import RealNode
from tests.testenv.waiting import eventually

CLAIM = "models"


@dataclass(frozen=True)
class ModelVolume:
    """A claim `models` in the apps namespace, bound to a hostPath volume holding the files."""

    claim: str
    sha256: dict[str, str]

    def uri(self, file: str) -> str:
        return f"pvc://{self.claim}/{file}"


@pytest.fixture(scope="module")
def model_volume(real_cluster: ControlPlane, release: Release) -> Iterator[ModelVolume]:
    cp, ns = real_cluster, release.apps
    # Not under pytest's tmp dirs (mode 0700): the server runs as a non-root user.
    directory = Path(tempfile.mkdtemp(prefix="mr-pv-"))
    directory.chmod(0o755)
    with tempfile.TemporaryDirectory() as scratch:
        files = model_files(Path(scratch))
    for file, content in files.items():
        (directory / file).write_bytes(content)
        (directory / file).chmod(0o644)
    volume = f"models-{uuid.uuid4().hex[:6]}"
    apply(cp, ns, {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(directory), "type": "Directory"},
            "claimRef": {"namespace": ns, "name": CLAIM},
        },
    })  # fmt: skip
    apply(cp, ns, {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM},
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "storageClassName": "",
            "volumeName": volume,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    })  # fmt: skip
    cp.kubectl("wait", "--for=jsonpath={.status.phase}=Bound", f"pvc/{CLAIM}", "-n", ns,
               "--timeout=60s", timeout=70)  # fmt: skip
    try:
        yield ModelVolume(CLAIM, {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def deployment_replicas(cp: ControlPlane, ns: str, name: str) -> list[int]:
    """spec.replicas of each Deployment of the ModelDeployment `name`."""
    got = cp.kubectl("get", "deployments", "-n", ns, "-l", f"modelrollout.io/name={name}",
                     "-o", "jsonpath={.items[*].spec.replicas}").stdout  # fmt: skip
    return [int(n) for n in got.split()]


def test_a_model_on_a_claim_serves_and_a_scale_down_under_load_fails_no_request(
    real_node: RealNode, release: Release, model_volume: ModelVolume
) -> None:
    cp, ns, name = real_node.cp, release.apps, "claimed"
    first = model_deployment(
        name, "1", model_volume.uri("v1.skops"), model_volume.sha256["v1.skops"], replicas=3
    )
    apply(cp, ns, first)
    healthy = eventually(phase_is(cp, ns, name, "Healthy"), "v1 from the claim Healthy", 300)
    for pod in server_pods(cp, ns, name):
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["model"]["persistentVolumeClaim"]["claimName"] == CLAIM
    wait_proxied(real_node, ns, name, healthy["status"])
    address = cluster_ip(cp, ns, name)
    assert versions_served(address, name, 20) == Counter({"1": 20})

    with Load(address, name, clients=4) as load:
        eventually(lambda: load.counts().total() >= 50, "load flowing", timeout=60)
        apply(cp, ns, {**first, "spec": {**first["spec"], "replicas": 1}})
        eventually(lambda: deployment_replicas(cp, ns, name) == [1], "the scale-down", 60)
        # Until the two removed pods are gone: they drained and stopped while the load ran.
        eventually(lambda: len(server_pods(cp, ns, name)) == 1, "the pods stopped", timeout=120)
        during = load.counts().total()
        eventually(lambda: load.counts().total() >= during + 50, "load after the scale-down", 60)
    seen = load.counts()
    print(f"requests during the scale-down: {dict(seen)}")
    assert set(seen) == {"200 v1"}, seen


def test_an_image_missing_on_the_node_is_named_until_the_deadline_aborts_it(
    real_node: RealNode, release: Release, model_volume: ModelVolume
) -> None:
    cp, ns, name = real_node.cp, release.apps, "imageless"
    first = model_deployment(
        name,
        "1",
        model_volume.uri("v1.skops"),
        model_volume.sha256["v1.skops"],
        replicas=1,
        progressDeadlineSeconds=120,
    )
    apply(cp, ns, first)
    healthy = eventually(phase_is(cp, ns, name, "Healthy"), "v1 Healthy", timeout=300)
    stable = healthy["status"]["stableRevision"]
    missing: dict[str, Any] = {
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "modelrollout.local/absent:1",
                    "imagePullPolicy": "Never",
                }
            ]
        }
    }
    second = model_deployment(
        name,
        "2",
        model_volume.uri("v2.skops"),
        model_volume.sha256["v2.skops"],
        replicas=1,
        progressDeadlineSeconds=120,
        template=missing,
    )
    apply(cp, ns, second)

    def named() -> dict[str, Any] | None:
        status = get_md(cp, ns, name).get("status") or {}
        return status if "ErrImageNeverPull" in (status.get("message") or "") else None

    waiting = eventually(named, "the status naming ErrImageNeverPull", timeout=120)
    assert waiting["phase"] == "Progressing" and waiting["stableRevision"] == stable, waiting
    assert "modelrollout.local/absent:1" in waiting["message"]
    events = cp.kubectl("get", "events", "-n", ns, "--field-selector",
                        f"involvedObject.name={name},reason=PodsNotRunning", "-o",
                        "jsonpath={.items[*].message}").stdout  # fmt: skip
    assert "ErrImageNeverPull" in events
    wait_proxied(real_node, ns, name, waiting)
    assert versions_served(cluster_ip(cp, ns, name), name, 20) == Counter({"1": 20})

    aborted = eventually(phase_is(cp, ns, name, "Degraded"), "aborted at the deadline", 120)
    status = aborted["status"]
    assert status["stableRevision"] == stable and status["abortedRevision"] != stable, status
    reason = status["history"][0]["reason"]
    assert reason.startswith("ProgressDeadlineExceeded") and "ErrImageNeverPull" in reason
    assert versions_served(cluster_ip(cp, ns, name), name, 20) == Counter({"1": 20})
