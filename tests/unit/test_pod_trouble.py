"""Why a pod does not run, read from what kubelet and the scheduler wrote into its status."""

from __future__ import annotations

from typing import Any

from modelrollout.core.pod_trouble import PodTrouble, pod_trouble


def pod(
    name: str,
    *,
    waiting: dict[str, str] | None = None,
    container: str = "server",
    deleting: bool = False,
    conditions: list[dict[str, str]] | None = None,
    init: bool = False,
) -> dict[str, Any]:
    state = {"waiting": waiting} if waiting is not None else {"running": {}}
    statuses = [{"name": container, "ready": False, "state": state}]
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": meta, "status": {key: statuses, "conditions": conditions or []}}


NEVER_PULL = {
    "reason": "ErrImageNeverPull",
    "message": 'Container image "m:9" is not present with pull policy of Never',
}


def test_a_missing_image_is_named_with_the_pod_and_kubelet_s_message() -> None:
    trouble = pod_trouble([pod("a", waiting={"reason": "ContainerCreating"}),
                           pod("b", waiting=NEVER_PULL)])  # fmt: skip
    assert trouble == PodTrouble("b", "ErrImageNeverPull", NEVER_PULL["message"])
    assert trouble.describe() == f"pod b: ErrImageNeverPull: {NEVER_PULL['message']}"


def test_pods_on_their_way_or_merely_not_ready_are_no_trouble() -> None:
    assert pod_trouble([pod("a", waiting={"reason": "ContainerCreating"})]) is None
    assert pod_trouble([pod("a", waiting={"reason": "PodInitializing"}, init=True)]) is None
    assert pod_trouble([pod("a")]) is None  # running, readiness not passed yet
    assert pod_trouble([]) is None


def test_a_pod_being_deleted_does_not_count() -> None:
    assert pod_trouble([pod("old", waiting=NEVER_PULL, deleting=True)]) is None


def test_init_containers_crash_loops_and_unschedulable_pods_are_trouble() -> None:
    crash = pod_trouble([pod("a", waiting={"reason": "CrashLoopBackOff"}, init=True)])
    assert crash is not None and crash.describe() == "pod a: CrashLoopBackOff"
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "0/1 nodes are available: 1 Insufficient memory."}  # fmt: skip
    got = pod_trouble([pod("a", conditions=[unschedulable])])
    assert got == PodTrouble("a", "Unschedulable", unschedulable["message"])


def test_only_the_named_container_counts_when_one_is_named() -> None:
    pods = [pod("a", waiting=NEVER_PULL, container="sidecar")]
    assert pod_trouble(pods, "server") is None
    assert pod_trouble(pods) is not None


def test_a_long_message_is_cut() -> None:
    trouble = PodTrouble("a", "ErrImagePull", "x" * 1000)
    assert len(trouble.describe()) < 300 and trouble.describe().endswith("...")
