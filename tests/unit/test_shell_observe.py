"""Observing a ModelDeployment's revisions: their Deployments, and their pods only when needed."""

from __future__ import annotations

from typing import Any

from modelrollout.kube.observe import observe_revisions
from modelrollout.kube.resources import DEPLOYMENTS, PODS
from tests.unit.fake_kube import FakeKube

LABELS = {"modelrollout.io/name": "fraud"}


def deployment(revision: str, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"fraud-{revision}", "namespace": "ml",
                     "labels": {**LABELS, "modelrollout.io/revision": revision}},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": ready},
    }  # fmt: skip


def pod(name: str, revision: str, reason: str) -> dict[str, Any]:
    waiting = {"reason": reason, "message": f'Container image "m:{revision}" is not present'}
    return {
        "metadata": {"name": name, "namespace": "ml",
                     "labels": {**LABELS, "modelrollout.io/revision": revision}},
        "status": {"containerStatuses": [{"name": "server", "state": {"waiting": waiting}}]},
    }  # fmt: skip


def test_pods_are_read_only_for_a_revision_that_is_not_ready() -> None:
    kube = FakeKube()
    kube.add(DEPLOYMENTS, deployment("a", ready=2))
    kube.add(DEPLOYMENTS, deployment("b", ready=0))
    kube.add(PODS, pod("fraud-a-1", "a", "ErrImagePull"))  # a ready revision's pod is not read
    kube.add(PODS, pod("fraud-b-1", "b", "ErrImageNeverPull"))
    seen = observe_revisions(kube, "ml", "fraud")
    assert seen["a"].trouble is None
    assert (
        seen["b"].trouble
        == 'pod fraud-b-1: ErrImageNeverPull: Container image "m:b" is not present'
    )
    assert len(kube.made("list", PODS)) == 1
    kube.make_ready("ml")
    kube.requests.clear()
    assert observe_revisions(kube, "ml", "fraud")["b"].trouble is None
    assert kube.made("list", PODS) == []
