"""The chart's operator pod on the real node: its container's restarts, and a SIGKILL sent to it
the way the kernel's OOM killer or a crashed runtime would end it (no shutdown handler runs)."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.helm_chart import Release
from tests.testenv.node import RealNode


def operator_pod(node: RealNode, release: Release) -> dict[str, Any]:
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=operator"
    got = node.cp.kubectl("get", "pods", "-n", release.namespace, "-l", selector, "-o", "json")
    pods: list[dict[str, Any]] = json.loads(got.stdout)["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def operator_container(node: RealNode, release: Release) -> dict[str, Any]:
    """The operator container's status (restartCount, containerID, state)."""
    statuses: list[dict[str, Any]] = operator_pod(node, release)["status"]["containerStatuses"]
    return statuses[0]


def sigkill_operator(node: RealNode, release: Release) -> int:
    """SIGKILL to the running operator container's process through containerd; the restart
    count before it, for the caller to wait for the kubelet's restart."""
    container = operator_container(node, release)
    assert "running" in container["state"], container
    container_id = container["containerID"].removeprefix("containerd://")
    node.ctr("task", "kill", "--signal", "SIGKILL", container_id)
    restarts: int = container["restartCount"]
    return restarts
