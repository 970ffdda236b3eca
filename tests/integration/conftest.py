"""Fixtures shared by the integration tests (the control plane ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator_process import Operator
from tests.testenv.controlplane import ControlPlane


@pytest.fixture
def operator(
    crd: str, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[Operator]:
    """`modelrollout-operator --standalone` serving the test's namespace, as a local process.

    (test_argocd_operator and test_helm_install run the operator their own way, under the same
    fixture name.)"""
    with Operator(control_plane, namespace, tmp_path).start() as op:
        yield op
