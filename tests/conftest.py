"""Shared fixtures. The control plane starts lazily: only tests that request it pay for it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testenv.controlplane import ControlPlane, TestenvMissing

REPO = Path(__file__).resolve().parent.parent
CRD_DIR = REPO / "manifests" / "crds"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using the control plane carry the `cluster` marker (select with -m cluster), those
    on a real node the `node` marker (-m node)."""
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
        if item.path.parent.name in ("node", "node_teardown"):
            item.add_marker(pytest.mark.node)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One real control plane (etcd, apiserver, controller-manager, scheduler, kwok) per session.

    Missing binaries fail the test rather than skip it: CI must never silently skip these.
    """
    cp = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    try:
        cp.start()
    except TestenvMissing as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace whose default service account exists (pods need it to be admitted)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    control_plane.create_namespace(name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def crd(control_plane: ControlPlane) -> str:
    """The generated ModelDeployment CRD, applied and Established; returns its name."""
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    name = "modeldeployments.modelrollout.io"
    # `kubectl wait` fails outright while the CRD has no conditions yet: poll the condition.
    deadline = time.monotonic() + 60
    while True:
        status = control_plane.kubectl(
            "get", f"crd/{name}", "-o",
            'jsonpath={.status.conditions[?(@.type=="Established")].status}',
            check=False,
        )  # fmt: skip
        if status.stdout.strip() == "True":
            return name
        if time.monotonic() > deadline:
            raise AssertionError(f"CRD {name} not Established: {status.stdout}{status.stderr}")
        time.sleep(0.2)
