"""Fixtures of the end-to-end tests: the CRDs on the shared control plane, one Env per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import HTTPROUTE_CRD, MD_CRD, Env, environment
from tests.testenv.controlplane import ControlPlane


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_crds(control_plane: ControlPlane) -> None:
    for crd in (MD_CRD, HTTPROUTE_CRD):
        control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/modeldeployments.modelrollout.io", "crd/httproutes.gateway.networking.k8s.io",
    )  # fmt: skip


@pytest.fixture
def env(
    e2e_crds: None, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[Env]:
    with environment(control_plane, namespace, tmp_path) as e:
        yield e
