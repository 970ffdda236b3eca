"""The operator's status write against a real API server: what a Conflict means for a decision.

A write decided from an object that has since changed only in its metadata (Kopf's own
annotation patches) still lands; one whose spec or status changed (a new revision, a control
request) is refused, so that the decision is made again from what is there now.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.kube import MODELDEPLOYMENTS, Conflict, Kube, make_api_client
from modelrollout.kube.status import write_status_as_decided
from tests.integration.operator_process import (
    apply,
    canary_md,
    control,
    patch_status,
    set_version,
    status,
)
from tests.testenv.controlplane import ControlPlane

NAME = "fraud"
DECIDED = {"phase": "Progressing", "message": "decided from the first read"}


@pytest.fixture
def first_read(crd: str, control_plane: ControlPlane, namespace: str) -> tuple[Kube, Any]:
    """A ModelDeployment with a status, as the operator read it before deciding."""
    apply(control_plane, namespace, canary_md(NAME, "1", [{"setWeight": 50}]))
    patch_status(control_plane, namespace, NAME, {"phase": "Pending"})
    kube = Kube(make_api_client(str(control_plane.kubeconfig)))
    body = kube.get(MODELDEPLOYMENTS, namespace, NAME)
    assert body is not None
    return kube, body


def test_a_write_lands_when_only_metadata_changed_since_the_read(
    first_read: tuple[Kube, Any], control_plane: ControlPlane, namespace: str
) -> None:
    kube, body = first_read
    control_plane.kubectl(
        "annotate", "modeldeployment", NAME, "-n", namespace, "example.com/touched=yes"
    )
    write_status_as_decided(kube, body, DECIDED)
    st = status(control_plane, namespace, NAME)
    assert st["phase"] == "Progressing" and st["message"] == DECIDED["message"]


def test_a_control_request_since_the_read_refuses_the_write(
    first_read: tuple[Kube, Any], control_plane: ControlPlane, namespace: str
) -> None:
    kube, body = first_read
    control(control_plane, namespace, NAME, "promote", "promote-1")
    with pytest.raises(Conflict):
        write_status_as_decided(kube, body, DECIDED)
    st = status(control_plane, namespace, NAME)
    assert st["phase"] == "Pending" and st["promote"] == "promote-1"


def test_a_spec_change_since_the_read_refuses_the_write(
    first_read: tuple[Kube, Any], control_plane: ControlPlane, namespace: str
) -> None:
    kube, body = first_read
    set_version(control_plane, namespace, NAME, "2")
    with pytest.raises(Conflict):
        write_status_as_decided(kube, body, DECIDED)
    assert status(control_plane, namespace, NAME)["phase"] == "Pending"
